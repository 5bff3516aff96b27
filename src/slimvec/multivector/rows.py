"""The row format of a multi-vector collection (see :mod:`slimvec.engine.rows`).

A row is a token set: pooled (optional), turned into one Fixed Dimensional Encoding whose
inner product approximates Chamfer similarity, and the FDE goes through the same funnel as
single-vector rows (any codecs, any oversampling, ``ivf:N`` lists). The spec's last stage,
``maxsim``, rescores the final shortlist exactly over the stored token vectors (float16, int8
or, with ``maxsim:resB`` / ``rqB`` / ``pqM``, residual codes; memory-mapped, compiled kernel). Exact
search is brute-force MaxSim over every item (over the stored codes).

Segment files: ``tokens.npy`` (all tokens of the segment, CSR), ``token_offsets.npy``
(rows + 1) and the FDE codes; no float32 FDE "originals" are kept (they would be 40 KB/item),
so IVF lists are trained on and built from FDEs re-encoded from the stored tokens
(:class:`StoredFDEs`, a few thousand documents at a time).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slimvec.engine.incoming import Stored
from slimvec.engine.rows import Layout, RowFormat
from slimvec.errors import SpecError
from slimvec.index.sizing import require_faiss
from slimvec.kernels.maxsim import (
    PQ_PREFIX,
    Codebook,
    TokenCodes,
    is_code_kind,
    maxsim,
    token_rows,
)
from slimvec.kernels.pqres import PQResidualCodebook, check_subspaces
from slimvec.kernels.residual import ResidualCodebook, check_bits
from slimvec.kernels.rotres import RotatedResidualCodebook
from slimvec.kernels.topk import pad_results, select_top
from slimvec.multivector.incoming import TokenIncoming, normalise_sets, placed, widths
from slimvec.multivector.pooling import TokenPooler
from slimvec.multivector.rerank import SegmentedTokens, rerank
from slimvec.search.funnel import Pipeline
from slimvec.spec import parse_spec
from slimvec.store.budget import weighted_starts
from slimvec.store.manifest import Manifest, SegmentEntry
from slimvec.store.segments import open_segment
from slimvec.transforms.fde import FDE, pack_token_sets

TOKENS = "tokens"
OFFSETS = "token_offsets"
#: int8 FDE first pass, exact MaxSim over 30k candidates. Measured on the Debian set with
#: MiniLM tokens: an int8 or f16 FDE pass keeps f32's recall, 1-bit Hamming over FDEs does
#: not (0.44 of exact MaxSim's top-10), so binary is not the default here.
DEFAULT_SPEC = "int8*30 > maxsim"
#: Largest block of re-encoded FDEs (floats) an IVF build holds at once.
FDE_BLOCK_FLOATS = 16 * 1024 * 1024


@dataclass
class TokenQueries:
    """Validated query token sets and their FDEs; selected (``q[rows]``), copied and joined
    (``np.concatenate``) like the query matrices of single-vector rows (the live-recall
    monitor samples queries that way)."""

    tokens: np.ndarray  # (T, dim) float32, CSR
    offsets: np.ndarray  # (nq + 1,)
    fde: np.ndarray  # (nq, fde_dim)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: Any) -> TokenQueries:
        rows = np.arange(len(self))[index].reshape(-1)
        tokens, offsets = TokenCodes(self.tokens, self.offsets).gather(rows)
        return TokenQueries(tokens, offsets, self.fde[rows])

    def copy(self) -> TokenQueries:
        return TokenQueries(self.tokens.copy(), self.offsets.copy(), self.fde.copy())

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        if func is not np.concatenate:
            return NotImplemented
        parts = args[0]
        lengths = np.concatenate([np.diff(p.offsets) for p in parts])
        offsets = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        tokens = np.concatenate([p.tokens for p in parts])
        return TokenQueries(tokens, offsets, np.concatenate([p.fde for p in parts]))


class TokenRows(RowFormat):
    """Token sets: MUVERA encodings for the funnel, stored tokens for exact MaxSim."""

    #: Token sets are stored as segments (the log holds single vectors), and the FDE codes'
    #: calibration stays the first add's (refitting would re-encode every token set). An add
    #: streams a block of documents at a time (``multivector.incoming``), and so do merges
    #: and compactions (``StoredTokens``).
    logs_adds = False
    plans_exact = False
    refits = False

    def __init__(self, manifest: Manifest):
        self.dim, self.metric = manifest.dim, manifest.metric
        self.fde, self.pooler, self.token_code, self.pipeline = self._build(manifest)
        self.token_calibration: dict[str, np.ndarray] = {}
        self.partitioned = bool(manifest.extra.get("ivf"))  # IVF lists trained

    @classmethod
    def check(cls, manifest: Manifest) -> Pipeline:
        return cls._build(manifest)[3]

    @staticmethod
    def _build(manifest: Manifest) -> tuple[FDE, TokenPooler, str, Pipeline]:
        spec = parse_spec(manifest.spec)
        if spec.ivf is not None:
            require_faiss()
        if not spec.reranks_tokens:
            raise SpecError(
                f"{manifest.spec!r}: a multi-vector spec ends with the exact 'maxsim' stage, "
                f"e.g. {DEFAULT_SPEC!r}"
            )
        config = manifest.extra["multivector"]
        fde = FDE(**config["fde"])
        if fde.dim != manifest.dim:
            raise SpecError(f"FDE token dim {fde.dim} differs from the collection's {manifest.dim}")
        code = config["token_code"]
        if not is_code_kind(code):
            raise SpecError(f"unknown token code {code!r}")
        last = spec.stages[-1]
        compressed = code.startswith(("res", "rq", PQ_PREFIX))
        if (last.token_code is not None or compressed) and last.token_code != code:
            raise SpecError(
                f"{manifest.spec!r} and token_code {code!r} disagree: residual token codes are "
                f"chosen by the spec's last stage ('maxsim:res2', 'maxsim:rq2', 'maxsim:pq32')"
            )
        if last.res is not None or last.rq is not None:
            check_bits(last.res or last.rq, fde.dim)
        if last.pq is not None:
            check_subspaces(last.pq, fde.dim)
        pipeline = Pipeline(spec.vector_stages(), fde.out_dim, "ip", originals=False)
        return fde, TokenPooler(config["pool_factor"]), config["token_code"], pipeline

    # -- storing ----------------------------------------------------------------------------
    @property
    def residual_bits(self) -> int | None:
        """Bits per dim of ``resB`` and ``rqB`` token codes."""
        return int(self.token_code[-1]) if self.token_code.startswith(("res", "rq")) else None

    @property
    def pq_subspaces(self) -> int | None:
        prefixed = self.token_code.startswith(PQ_PREFIX)
        return int(self.token_code[len(PQ_PREFIX) :]) if prefixed else None

    @property
    def token_bytes(self) -> int:
        """Stored bytes per token vector."""
        if self.residual_bits is not None:
            scale = 2 if self.token_code.startswith("rq") else 0
            return 2 + self.dim * self.residual_bits // 8 + scale
        if self.pq_subspaces is not None:
            return 2 + self.pq_subspaces
        return self.dim * (2 if self.token_code == "f16" else 1)

    def layout(self, rows: int, sizes: np.ndarray | None = None) -> Layout:
        token_dtype = np.dtype(np.float16 if self.token_code == "f16" else np.uint8)
        tokens = None if sizes is None else int(sizes.sum())
        layout = {
            "ids": (np.dtype(np.int64), (rows,)),
            TOKENS: (token_dtype, (tokens, self.token_bytes // token_dtype.itemsize)),
            OFFSETS: (np.dtype(np.int64), (rows + 1,)),
        }
        for key in self.pipeline.stored_keys:
            codec = self.pipeline.codecs[key]
            layout[key] = (codec.code_dtype, (rows, codec.code_width))
        return layout

    def _tokens_in(self, token_sets: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
        tokens, offsets = pack_token_sets(token_sets, self.dim, what)
        if self.metric == "cosine":
            tokens = normalise_sets(tokens, offsets, what)
        return tokens, offsets

    def stream(self, token_sets: Any) -> TokenIncoming:
        return TokenIncoming(token_sets, self)

    def fit_first(self, x: TokenIncoming, seed: int) -> None:
        """Fit the FDE codes and the token codes on an add's documents (a seeded sample past
        ``fit_rows`` of their mean width)."""
        tokens, offsets = x.tokens(x.fit_docs(seed))
        self.fit(self.fde.encode_packed(tokens, offsets, query=False), (tokens, offsets))

    def encode_block(self, x: TokenIncoming, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Documents ``lo:hi`` of an add: token codes, their offsets in the segment (the
        first block writes the leading 0) and FDE codes."""
        fde, tokens, offsets = x.block(lo, hi)
        codes = TokenCodes.encode(
            tokens,
            offsets,
            kind=self.token_code,
            low=self.token_calibration.get("low"),
            step=self.token_calibration.get("step"),
            codebook=self._codebook(),
        )
        return {
            TOKENS: codes.codes,
            OFFSETS: placed(x.offsets, lo, hi),
            **self.pipeline.encode(fde),
        }

    def fit(self, x: np.ndarray, extra: Any) -> None:
        self.pipeline.fit(x)
        if self.token_code == "int8":
            codes = TokenCodes.encode(*extra, kind="int8")
            self.token_calibration = {"low": codes.low, "step": codes.step}
        elif self.residual_bits is not None:
            # the first batch's tokens, like every calibration (refits are off for tokens)
            book = self._codebook_kind().fit(extra[0], self.residual_bits)
            self.token_calibration = book.state()
        elif self.pq_subspaces is not None:
            self.token_calibration = PQResidualCodebook.fit(extra[0], self.pq_subspaces).state()

    def state(self) -> dict[str, np.ndarray]:
        state = self.pipeline.state()
        state.update({f"tokens.{k}": v for k, v in self.token_calibration.items()})
        state.update({f"fde.{k}": v for k, v in self.fde.state().items()})
        return state

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.pipeline.load_state(state)
        self.token_calibration = {
            k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("tokens.")
        }
        fde_state = {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("fde.")}
        if fde_state:
            self.fde.load_state(fde_state)

    def _codebook_kind(self) -> type[Codebook]:
        if self.pq_subspaces is not None:
            return PQResidualCodebook
        return RotatedResidualCodebook if self.token_code.startswith("rq") else ResidualCodebook

    def _codebook(self) -> Codebook | None:
        if self.residual_bits is None and self.pq_subspaces is None:
            return None
        return self._codebook_kind()(**self.token_calibration)

    def pipeline_input(
        self, path: Path, entry: SegmentEntry, rows: np.ndarray | None = None
    ) -> StoredFDEs:
        """Document FDEs of a stored segment's ``rows`` (all if None), re-encoded from its
        tokens block by block as they are sliced (what IVF lists train on and are built from)."""
        layout = {k: v for k, v in self.layout(entry.rows).items() if k in (TOKENS, OFFSETS)}
        arrays = open_segment(path, entry.name, layout)
        docs = np.arange(entry.rows) if rows is None else np.asarray(rows, np.int64)
        return StoredFDEs(self._codes(arrays), docs, self.fde)

    def stored(self, view: Any, rows: np.ndarray) -> StoredTokens:
        return StoredTokens(view, rows)

    # -- searching --------------------------------------------------------------------------
    def queries_in(self, queries: Any) -> TokenQueries:
        tokens, offsets = self._tokens_in(queries, "queries")
        return TokenQueries(tokens, offsets, self.fde.encode_packed(tokens, offsets, query=True))

    def _segment_tokens(self, view: Any, index: int) -> TokenCodes:
        return self._codes(view.segments[index][1])

    def _codes(self, arrays: dict[str, np.ndarray]) -> TokenCodes:
        return TokenCodes(
            arrays[TOKENS],
            np.asarray(arrays[OFFSETS]),
            self.token_calibration.get("low"),
            self.token_calibration.get("step"),
            self._codebook(),
        )

    def approximate(self, view: Any, q: TokenQueries, k: int, allow: np.ndarray | None):
        rows, _ = self.pipeline.search(q.fde, k, view, allow)
        return self._rerank(view, q, rows, k)

    def ivf_search(
        self, view: Any, q: TokenQueries, k: int, allow: np.ndarray | None, nprobe: int | None
    ):
        rows, _ = super().ivf_search(view, q.fde, k, allow, nprobe)
        return self._rerank(view, q, rows, k)

    def _rerank(self, view: Any, q: TokenQueries, rows: np.ndarray, k: int):
        """Exact MaxSim of each query against its candidate rows, keeping the best ``k``."""
        segments = SegmentedTokens(view.starts, lambda i: self._segment_tokens(view, i))
        return rerank(q.tokens, q.offsets, segments, rows, k)

    def score_rows(self, view: Any, q: TokenQueries, k: int, rows: np.ndarray):
        """Exact MaxSim of every query against the same candidate ``rows`` (a filter's)."""
        return self._rerank(view, q, np.broadcast_to(rows, (len(q), len(rows))), k)

    def stored_tokens(self, view: Any) -> int:
        return sum(len(arrays[TOKENS]) for _, arrays in view.segments)

    def first_bytes_ratio(self, view: Any) -> float:
        per_item = max(self.stored_tokens(view) / max(view.manifest.rows, 1), 1.0)
        first = self.pipeline.bytes_per_vector(self.pipeline.first_key)
        return first / (per_item * self.token_bytes)

    def exact(self, view: Any, q: TokenQueries, k: int, allow: np.ndarray | None):
        """Brute-force MaxSim over every live item (for checking the funnel)."""
        parts_rows, parts_scores = [], []
        for s, (entry, _) in enumerate(view.segments):
            scores = maxsim(q.tokens, q.offsets, self._segment_tokens(view, s))
            if allow is not None:
                scores[:, ~allow[entry.start : entry.start + entry.rows]] = -np.inf
            cols, best = select_top(scores, k)
            parts_rows.append(cols + entry.start)
            parts_scores.append(best)
        cols, scores = select_top(np.concatenate(parts_scores, axis=1), k)
        rows = np.take_along_axis(np.concatenate(parts_rows, axis=1), cols, axis=1)
        return pad_results(rows, scores, k)


@dataclass
class StoredFDEs:
    """FDEs of stored documents ``docs``, computed when sliced: ``x[a:b]`` or ``x[rows]``
    decodes those documents' tokens and encodes them (rows as ``(len, fde_dim)`` float32)."""

    codes: TokenCodes
    docs: np.ndarray
    fde: FDE

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.docs), self.fde.out_dim

    def __len__(self) -> int:
        return len(self.docs)

    def __getitem__(self, index: Any) -> np.ndarray:
        docs = self.docs[index]
        out = np.empty((len(docs), self.fde.out_dim), np.float32)
        step = max(1, FDE_BLOCK_FLOATS // self.fde.out_dim)
        for lo in range(0, len(docs), step):
            tokens, offsets = self.codes.gather(docs[lo : lo + step])
            out[lo : lo + step] = self.fde.encode_packed(tokens, offsets, query=False)
        return out


class StoredTokens(Stored):
    """Stored documents ``rows`` of ``view`` on their way into a new segment (a merge, a
    compaction). Their token counts, read from the segments' offsets, lay out the new token
    file and cut the blocks by the add's rule (``incoming.widths``: a document's tokens x dim
    plus its FDE, in floats, where a copy holds only their codes); each block copies its
    documents' token codes as stored (nothing decoded or re-encoded) and gathers the rest."""

    def __init__(self, view: Any, rows: np.ndarray):
        super().__init__(view, rows, [k for k in view.rows.layout(0) if k not in (TOKENS, OFFSETS)])
        counts = [offsets[local + 1] - offsets[local] for offsets, _, local in self._segments()]
        self.sizes = np.concatenate(counts) if counts else np.zeros(0, np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)])  # in the new segment
        self.widths = widths(self.sizes, view.rows)

    def starts(self, width: int) -> np.ndarray:
        """First documents of the blocks (by their own widths, as ``TokenIncoming.starts``)."""
        return weighted_starts(self.widths)

    def block(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        arrays = super().block(lo, hi)
        parts = [
            tokens[token_rows(offsets, local)[0]]
            for offsets, tokens, local in self._segments(lo, hi)
        ]
        return {**arrays, TOKENS: np.concatenate(parts), OFFSETS: placed(self.offsets, lo, hi)}

    def _segments(self, lo: int = 0, hi: int | None = None) -> Iterator[tuple]:
        """(token offsets, tokens, local document numbers) of each segment holding some of
        documents ``lo:hi`` (sorted rows: one run per segment), in order."""
        rows = self.rows[lo:hi]
        segment = np.searchsorted(self.view.starts, rows, side="right") - 1
        for s in np.unique(segment):
            entry, arrays = self.view.segments[s]
            local = rows[segment == s] - entry.start
            yield np.asarray(arrays[OFFSETS]), arrays[TOKENS], local
