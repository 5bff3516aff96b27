"""The pipeline spec: one readable string that says how a collection stores and searches vectors.

Grammar (spaces are free)::

    spec       := [transforms "|"] stage (">" stage)*
    transforms := transform ("," transform)*
    transform  := "ivf:" N        partition the first stage's codes into N lists (k-means
                                  centroids); a search scans only the ``nprobe`` nearest
                                  lists. Needs a ``rabitq`` first stage (codes of residuals
                                  to the list centroid); at most once, written first
                | "ivf:auto"      the same, partitioned only once the collection is large
                                  enough to gain from it, into N ~ sqrt(n) lists that follow
                                  its size (the default)
                | "mrl:" D        Matryoshka prefix of D dims, re-normalised
                | "pca:" D        rotation fitted on the collection's vectors, keeping D dims
                | "rot:" D        random orthogonal rotation (evens out variance before
                                  binary codes), keeping D dims
    stage      := codec ["@" D] ["*" F | "*auto"]
    codec      := "f32" | "f16" | "f8" | "int8" | "binary" [":" B]     (B = 1..4 bits per dim)
                | "rabitq" [":" B] ["/q" Q]  RaBitQ codes, B = 1..8 bits per dim (default 1),
                                  scanned with queries quantised to Q = 1..8 bits (default 4)
                | "maxsim" [":res" B | ":rq" B | ":pq" M]  multi-vector collections only,
                                  last stage: exact MaxSim over the stored token vectors;
                                  ``:resB`` stores them as PLAID-style residual codes (centroid
                                  id + B = 1, 2 or 4 bits per dim), ``:rqB`` as rotated
                                  residuals with a per-token scale (B bits per dim + 2 bytes),
                                  ``:pqM`` as product-quantised residuals (centroid id + one
                                  byte for each of M subspaces) instead of the token_code

Stages run left to right. The first scans compact codes held in RAM over the whole collection;
each later one rescores only the shortlist the previous stage kept, reading its codes from
memory-mapped files. ``*F`` says how many candidates a stage keeps: ``F * k`` (default 10 for
every stage but the last, which keeps ``k``). ``@D`` makes a stage use only the first D dims of
the transformed vector (re-normalised for cosine, as Matryoshka models are trained), so
``f16@128*10 > f32`` is MRL adaptive retrieval: a 128-d first pass, full-dimension rescoring.

``*auto`` (a first ``rabitq`` stage only) sizes the shortlist per query from the estimator's
error bound instead of a fixed factor: every candidate whose upper bound reaches the k-th best
lower bound is kept (at most ``AUTO_CAP * k``).

``rabitq`` stores a random rotation, the data centroid and four scalars per vector beside the
bits, and scores with RaBitQ's unbiased inner-product estimator (``codecs/rabitq.py``); ``/qQ``
only changes the first-pass scan (rescoring stages use the float query).

``ivf:N`` (``index/ivf.py``) is not a transform of the vectors: it says how the first stage's
codes are laid out and which of them a query reads. Until the collection holds enough vectors
to train N centroids, search stays a flat scan (``info()["ivf"]`` says which). ``ivf:auto``
stays flat below the measured crossover (``index.sizing.AUTO_ROWS``) and picks N itself.

Examples: ``"ivf:1024 | rabitq:2*40 > f32"``, ``"binary*40 > f32"``, ``"rabitq:4*4 > f32"``,
``"rabitq/q8*20 > f32"``, ``"pca:256 | binary*20 > int8*4 > f32"``,
``"mrl:512 | binary@128*30 > f16"``. ``str(parse_spec(s))`` gives the canonical spelling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise

from slimvec.errors import SpecError

#: Chosen by measurement (benchmarks/default_spec.py, BENCHMARKS.md "Default spec"): the only
#: cheap first pass that held recall@10 >= 0.99 on every set tried (MiniLM, Gemma, low-rank,
#: isotropic Gaussian), where "binary*40 > f32" fell to 0.70 (isotropic) and 0.91 (1M low-rank).
#: ``ivf:auto`` partitions it once the collection passes the flat scan's crossover
#: (benchmarks/auto_index.py, BENCHMARKS.md "The default as a collection grows").
DEFAULT_SPEC = "ivf:auto | rabitq:2*40 > f32"
DEFAULT_KEEP = 10
#: Limits that keep a hostile or mistyped spec from asking for absurd work or memory.
MAX_KEEP = 10_000
MAX_DIM = 65_536
#: ``keep`` value meaning ``*auto`` (shortlist sized by the error bound), and its cap (x k).
AUTO = 0
AUTO_CAP = 200
TRANSFORM_KINDS = ("mrl", "pca", "rot")
#: ``Spec.ivf`` of ``ivf:auto``: the number of lists is chosen when they are trained.
AUTO_LISTS = 0
#: Largest ``ivf:N`` (each list costs a centroid and an offset; more lists than this would not
#: hold enough vectors each on one machine).
MAX_NLIST = 1 << 20
CODEC_KINDS = ("f32", "f16", "f8", "int8", "binary", "rabitq", "maxsim")
DEFAULT_QBITS = 4
#: Bits per dim each multi-bit codec accepts.
BIT_RANGES = {"binary": (1, 4), "rabitq": (1, 8)}
#: Residual bits per dim of ``maxsim:resB`` token codes.
RESIDUAL_BITS = (1, 2, 4)

_TRANSFORM_RE = re.compile(r"^(?P<kind>[a-z0-9]+):(?P<dim>\d+)$")
_STAGE_RE = re.compile(
    r"^(?P<codec>[a-z0-9]+)(?::(?P<res>res|rq|pq)?(?P<bits>\d+))?(?:/q(?P<qbits>\d+))?(?:@(?P<dims>\d+))?"
    r"(?:\*(?P<keep>\d+|auto))?$"
)


@dataclass(frozen=True)
class TransformSpec:
    kind: str
    dim: int

    def __str__(self) -> str:
        return f"{self.kind}:{self.dim}"


@dataclass(frozen=True)
class StageSpec:
    codec: str
    bits: int = 1
    dims: int | None = None
    keep: int | None = None
    qbits: int = DEFAULT_QBITS  # query bits of a rabitq scan
    res: int | None = None  # ``maxsim:resB``: residual bits of the stored token codes
    pq: int | None = None  # ``maxsim:pqM``: subspaces of product-quantised token residuals
    rq: int | None = None  # ``maxsim:rqB``: bits per dim of rotated, scaled token residuals

    @property
    def token_code(self) -> str | None:
        """The compressed token code a ``maxsim:resB`` or ``maxsim:pqM`` stage stores."""
        if self.res is not None:
            return f"res{self.res}"
        if self.rq is not None:
            return f"rq{self.rq}"
        return None if self.pq is None else f"pq{self.pq}"

    @property
    def code_key(self) -> str:
        """Identifies the stored code: stages with equal keys share one file."""
        multi = self.codec in BIT_RANGES and self.bits != 1
        name = f"{self.codec}{self.bits}" if multi else self.codec
        return name if self.dims is None else f"{name}@{self.dims}"

    def __str__(self) -> str:
        text = self.codec
        if self.codec in BIT_RANGES and self.bits != 1:
            text += f":{self.bits}"
        if self.res is not None:
            text += f":res{self.res}"
        if self.pq is not None:
            text += f":pq{self.pq}"
        if self.rq is not None:
            text += f":rq{self.rq}"
        if self.codec == "rabitq" and self.qbits != DEFAULT_QBITS:
            text += f"/q{self.qbits}"
        if self.dims is not None:
            text += f"@{self.dims}"
        if self.keep == AUTO:
            text += "*auto"
        elif self.keep is not None:
            text += f"*{self.keep}"
        return text


@dataclass(frozen=True)
class Spec:
    transforms: tuple[TransformSpec, ...]
    stages: tuple[StageSpec, ...]
    #: ``ivf:N``: lists the first stage's codes are split into (``AUTO_LISTS``: ``ivf:auto``)
    ivf: int | None = None

    def __str__(self) -> str:
        stages = " > ".join(str(s) for s in self.stages)
        prefix = [] if self.ivf is None else [f"ivf:{self.ivf or 'auto'}"]
        prefix += [str(t) for t in self.transforms]
        if not prefix:
            return stages
        return ", ".join(prefix) + " | " + stages

    def output_dim(self, input_dim: int) -> int:
        """Dimension of vectors after the transforms, for an input of ``input_dim``."""
        dim = input_dim
        for t in self.transforms:
            dim = t.dim
        return dim

    @property
    def reranks_tokens(self) -> bool:
        """True when the last stage is exact MaxSim over token vectors (multi-vector)."""
        return self.stages[-1].codec == "maxsim"

    def vector_stages(self) -> Spec:
        """The spec without a trailing ``maxsim`` stage: what runs on (FDE) vectors."""
        return Spec(self.transforms, self.stages[:-1], self.ivf) if self.reranks_tokens else self

    def check_dim(self, input_dim: int) -> None:
        """Raise ``SpecError`` if the spec cannot apply to vectors of ``input_dim`` dims."""
        dim = input_dim
        for t in self.transforms:
            if t.dim > dim:
                raise SpecError(
                    f"'{t}' asks for {t.dim} dims but its input has only {dim}; "
                    f"use a value <= {dim}"
                )
            dim = t.dim
        for s in self.stages:
            if s.dims is not None and s.dims > dim:
                raise SpecError(
                    f"stage '{s}' uses {s.dims} dims but the transformed vectors have {dim}"
                )
            if s.codec == "binary" and (s.dims or dim) % 8:
                raise SpecError(
                    f"stage '{s}' packs sign bits into bytes and needs a dimension that is a "
                    f"multiple of 8 (got {s.dims or dim}); pick another @D or pca:D"
                )


def parse_spec(text: str) -> Spec:
    """Parse a spec string (see the module docstring); raise ``SpecError`` saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"a spec must be a non-empty string such as {DEFAULT_SPEC!r}")
    parts = text.split("|")
    if len(parts) > 2:
        raise SpecError(f"{text!r}: use '|' once, between the transforms and the stages")
    transforms: list[TransformSpec] = []
    nlist = None
    if len(parts) == 2:
        for token in _tokens(parts[0], ",", text):
            if token.startswith("ivf"):
                if nlist is not None:
                    raise SpecError(f"{text!r}: give 'ivf:N' once")
                nlist = _parse_nlist(token, text)
            else:
                transforms.append(_parse_transform(token, text))
    stage_tokens = _tokens(parts[-1], ">", text)
    stages = [_parse_stage(tok, text) for tok in stage_tokens]
    stages = _fill_keep(stages, text)
    if nlist is not None:
        _check_ivf_stage(stages[0], text)
    return Spec(tuple(transforms), tuple(stages), nlist)


def _parse_nlist(token: str, text: str) -> int:
    if token.replace(" ", "") == "ivf:auto":
        return AUTO_LISTS
    m = re.match(r"^ivf:(\d+)$", token.replace(" ", ""))
    if not m:
        raise SpecError(
            f"{text!r}: {token!r} is not 'ivf:N' (N lists, e.g. 'ivf:1024 | rabitq:2*40 > f32') "
            f"or 'ivf:auto'"
        )
    nlist = int(m[1])
    if not 1 <= nlist <= MAX_NLIST:
        raise SpecError(f"{text!r}: 'ivf:{nlist}' needs from 1 to {MAX_NLIST} lists")
    return nlist


def _check_ivf_stage(first: StageSpec, text: str) -> None:
    if first.codec != "rabitq":
        raise SpecError(
            f"{text!r}: 'ivf:N' partitions RaBitQ codes (stored as residuals to their list's "
            f"centroid) and needs a 'rabitq' first stage, e.g. 'ivf:1024 | rabitq:2*40 > f32'"
        )
    if first.keep == AUTO:
        raise SpecError(
            f"{text!r}: '*auto' sizes shortlists from the flat codes' error bound and does not "
            f"combine with 'ivf:N' yet; give a factor, e.g. 'rabitq*40'"
        )


def _tokens(part: str, sep: str, text: str) -> list[str]:
    tokens = [t.strip().lower() for t in part.split(sep)]
    if any(not t for t in tokens):
        raise SpecError(f"{text!r}: empty element around {sep!r}")
    return tokens


def _parse_transform(token: str, text: str) -> TransformSpec:
    m = _TRANSFORM_RE.match(token)
    if not m or m["kind"] not in TRANSFORM_KINDS:
        raise SpecError(
            f"{text!r}: unknown transform {token!r}; transforms are 'mrl:D' (Matryoshka prefix), "
            f"'pca:D' (fitted rotation) and 'rot:D' (random rotation), e.g. 'pca:256 | binary*40'"
        )
    dim = int(m["dim"])
    if not 1 <= dim <= MAX_DIM:
        raise SpecError(f"{text!r}: {token!r} needs a dimension from 1 to {MAX_DIM}")
    return TransformSpec(m["kind"], dim)


def _parse_stage(token: str, text: str) -> StageSpec:
    m = _STAGE_RE.match(token.replace(" ", ""))
    if not m or m["codec"] not in CODEC_KINDS:
        raise SpecError(
            f"{text!r}: unknown stage {token!r}; a stage is CODEC[@DIMS][*KEEP] with CODEC one "
            f"of {', '.join(CODEC_KINDS)} (binary may take :2..:4 bits, rabitq :1..:8 bits and "
            f"/q1../q8 query bits), e.g. 'binary*40' or 'rabitq:4/q8*4'"
        )
    if m["codec"] == "maxsim" and m["dims"]:
        raise SpecError(f"{text!r}: 'maxsim' scores whole token vectors and takes no '@D'")
    codec = m["codec"]
    if m["res"] == "pq":
        subspaces = int(m["bits"])
        if codec != "maxsim" or subspaces < 1:
            raise SpecError(
                f"{text!r}: product-quantised token codes are spelled 'maxsim:pqM' with M >= 1 "
                f"subspaces (got {token!r})"
            )
        if m["qbits"] or m["keep"]:
            raise SpecError(f"{text!r}: 'maxsim:pq{subspaces}' takes no '/q' or '*'")
        return StageSpec(codec, pq=subspaces)
    if m["res"]:
        res, kind = int(m["bits"]), m["res"]
        if codec != "maxsim" or res not in RESIDUAL_BITS:
            raise SpecError(
                f"{text!r}: residual token codes are spelled 'maxsim:{kind}B' with B in "
                f"{RESIDUAL_BITS} (got {token!r})"
            )
        if m["qbits"] or m["keep"]:
            raise SpecError(f"{text!r}: 'maxsim:{kind}{res}' takes no '/q' or '*'")
        return StageSpec(codec, **{kind: res})
    bits = int(m["bits"]) if m["bits"] else 1
    if m["bits"] and codec not in BIT_RANGES:
        raise SpecError(f"{text!r}: only 'binary' and 'rabitq' take a bit count (got {token!r})")
    low, high = BIT_RANGES.get(codec, (1, 1))
    if not low <= bits <= high:
        raise SpecError(f"{text!r}: {codec} codes take {low} to {high} bits per dim (got {bits})")
    qbits = int(m["qbits"]) if m["qbits"] else DEFAULT_QBITS
    if m["qbits"] and codec != "rabitq":
        raise SpecError(f"{text!r}: only 'rabitq' takes query bits '/qQ' (got {token!r})")
    if not 1 <= qbits <= 8:
        raise SpecError(f"{text!r}: rabitq quantises queries to 1 to 8 bits (got /q{qbits})")
    dims = int(m["dims"]) if m["dims"] else None
    keep = None if not m["keep"] else AUTO if m["keep"] == "auto" else int(m["keep"])
    if keep == AUTO and codec != "rabitq":
        raise SpecError(
            f"{text!r}: '*auto' sizes the shortlist from RaBitQ's error bound and needs a "
            f"'rabitq' stage, e.g. 'rabitq*auto > f32'"
        )
    if dims is not None and dims < 8:
        raise SpecError(f"{text!r}: '@{dims}' is too few dims; use at least 8")
    if keep is not None and keep != AUTO and not 1 <= keep <= MAX_KEEP:
        raise SpecError(f"{text!r}: '*{keep}' must keep from 1x to {MAX_KEEP}x k candidates")
    if dims is not None and dims > MAX_DIM:
        raise SpecError(f"{text!r}: '@{dims}' is more dims than the limit of {MAX_DIM}")
    return StageSpec(codec, bits, dims, keep, qbits)


def _fill_keep(stages: list[StageSpec], text: str) -> list[StageSpec]:
    if stages[-1].keep is not None:
        raise SpecError(
            f"{text!r}: the last stage returns exactly k results; drop its '*{stages[-1].keep}'"
        )
    if any(s.codec == "maxsim" for s in stages[:-1]) or stages[0].codec == "maxsim":
        raise SpecError(
            f"{text!r}: 'maxsim' reranks a shortlist and must be the last stage after a "
            f"vector stage, e.g. 'binary*40 > f16*10 > maxsim'"
        )
    if any(s.keep == AUTO for s in stages[1:]):
        raise SpecError(f"{text!r}: only the first stage can size its shortlist with '*auto'")
    filled = [
        StageSpec(
            s.codec, s.bits, s.dims, s.keep if s.keep is not None else DEFAULT_KEEP, s.qbits, s.res
        )
        for s in stages[:-1]
    ]
    for before, after in pairwise(filled):
        if before.keep != AUTO and after.keep > before.keep:
            raise SpecError(
                f"{text!r}: stage '{after}' keeps more candidates than '{before}' gives it; "
                f"keep factors must not increase along the funnel"
            )
    return [*filled, stages[-1]]
