"""``slimvec advise``: the cheapest spec that keeps a recall target on the user's own vectors.

How much compression an embedding tolerates depends on the model and the data, so the advisor
measures instead of guessing. On a sample it evaluates a small grid of funnels:

* first stage (held in RAM, what the user pays for): f32/f16/f8/int8, binary with 1-4 bits
  (1-bit also after a random rotation, ``rot:D``) and RaBitQ with 1-4 bits (``rabitq[:B]``,
  full dimension: its own rotation and per-vector corrections hold recall on data where sign
  bits of raw coordinates lose it, e.g. isotropic or low-intrinsic-dimension vectors),
  at full dimension and at 1/2, 1/4, 1/8 of it, taken as Matryoshka prefixes when the model
  is Matryoshka-trained (``@D`` stages) or as leading PCA components otherwise (``pca:D | ...``);
* rescoring: none, float32, or int8 then float32, with oversampling factors found by bisection
  (the smallest factor that meets the target; larger ones only cost speed at equal RAM).

* IVF (``ivf:N | rabitq... > f32``, N from ``index.sizing.suggested_nlist`` of the sample) for
  each RaBitQ first stage that met the target flat, at its smallest factor, over an ``nprobe``
  sweep (each nprobe one candidate), when the sample holds enough docs to train the lists
  (``index.sizing.train_rows``; below that a collection would search flat, and ``Advice.ivf_note``
  says so).

Candidates are scored in memory with the same :class:`~slimvec.search.funnel.Pipeline` (and
:class:`~slimvec.index.ivf.IVFIndex`) a collection uses, fitting each transform and code once
and reusing it across oversampling factors. The pick is the candidate with the fewest RAM bytes
per vector (ties: higher QPS) that meets ``target_recall`` (recall@k against exact float32) and
the optional constraints; it is then re-measured on a real collection built from the sample
(``Advice.measured``).

**Cheapest, with IVF.** RAM bytes per vector are what a query needs resident to run at speed:
for a flat spec its first-stage code and id/tombstone; for an IVF spec the list rows it scans
(bit planes + 2 factors + a 4-byte position map: 4 bytes less than the flat RaBitQ code, whose
error-bound factors the lists drop), id/tombstone and the centroids' share. An IVF candidate
therefore undercuts its flat twin by a few bytes, but it is only eligible when it is also
faster than that flat twin on the sample: partitions buy speed, so one that does not pay off
at this size (small samples, small lists) is excluded with that reason rather than picked for
a 4-byte saving. Among the sweep's eligible nprobe values, equal RAM makes the fastest one
(usually the smallest nprobe meeting the target) the pick.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from slimvec.capacity import capacity_warning
from slimvec.datasets.base import Dataset
from slimvec.errors import InvalidInputError
from slimvec.eval.bench import (
    BenchRow,
    exact_top,
    pareto_mask,
    prepare_vectors,
    run_bench,
    thread_limit,
)
from slimvec.eval.metrics import recall_at_k
from slimvec.index.ivf import IVFIndex
from slimvec.index.sizing import (
    TRAIN_PER_LIST,
    list_bytes_per_vector,
    nprobe_sweep,
    require_faiss,
    suggested_nlist,
    train_centroids,
    train_rows,
)
from slimvec.search.funnel import ORIGINAL, ROW_OVERHEAD_BYTES, ArrayCodes, Pipeline
from slimvec.spec import parse_spec
from slimvec.transforms import PCARotation, normalise_rows

KEEPS = (2, 5, 10, 20, 40, 80)  # oversampling factors tried for the first stage
MID_KEEP = 3  # int8 middle stage of three-stage funnels: int8 rescoring is near exact
# Full-dim binary:3/4 are left out: they cost as much RAM as int8 on half the dims, with a
# slower kernel. f8 matches int8's size and is tried as a single stage.
FULL_DIM_CODECS = ("int8", "binary", "binary:2", "rabitq", "rabitq:2", "rabitq:3", "rabitq:4")
PREFIX_CODECS = ("int8", "binary:4", "binary:3", "binary:2", "binary")
SINGLE_STAGE = ("f32", "f16", "f8", "int8")
PREFIX_FRACTIONS = (2, 4, 8)
MIN_PREFIX = 32
BATCH = 100
WARMUP = 4
SHORTLIST_WARN = 0.05  # warn when the first stage keeps more than this share of the sample


@dataclass
class Candidate:
    """One evaluated spec. ``recall`` is recall@k against exact float32 on the sample."""

    spec: str
    recall: float
    ram_bytes_per_vector: int
    disk_bytes_per_vector: int  # codes + float32 originals + id; excludes SQLite/manifest
    qps: float
    meets_target: bool = False
    excluded: str | None = None  # why it cannot be picked, if it cannot
    nprobe: int | None = None  # lists searched per query (``ivf:N`` specs)
    flat_qps: float | None = None  # ``ivf:N`` specs: QPS of the same spec without the lists

    @property
    def eligible(self) -> bool:
        return self.excluded is None

    @property
    def label(self) -> str:
        """The spec, with the nprobe to search it with."""
        return self.spec if self.nprobe is None else f"{self.spec} nprobe={self.nprobe}"


@dataclass
class Advice:
    """The recommendation, how it was measured, and what the alternatives trade."""

    spec: str | None  # pasteable into slimvec.create(..., spec=...); None if nothing qualifies
    chosen: Candidate | None
    measured: BenchRow | None  # the chosen spec re-measured on a real collection (the sample)
    runner_ups: list[tuple[str, Candidate]]  # (what it trades, candidate)
    candidates: list[Candidate]
    target_recall: float
    k: int
    max_bytes_per_vector: float | None
    min_qps: float | None
    family: str  # "matryoshka" (prefix dims) or "pca" (leading PCA components)
    family_reason: str
    n_docs: int  # sample sizes actually evaluated
    n_queries: int
    seconds: float
    #: Things the user should know before trusting the pick (sampling, capacity, ...).
    #: Issue 5 (capacity) appends its warning here.
    warnings: list[str] = field(default_factory=list)
    nprobe: int | None = None  # for an ``ivf:N`` pick: lists to read per query
    ivf_note: str = ""  # which IVF candidates were evaluated, or why none were

    def summary(self) -> str:
        """Plain-text report: the pick, its figures, the trade-offs, the warnings."""
        lines = []
        if self.chosen is None:
            best = max(self.candidates, key=lambda c: c.recall)
            lines.append(
                f"No evaluated spec meets recall@{self.k} >= {self.target_recall} within the "
                f"constraints; the best recall was {best.recall:.4f} ({best.spec!r}). Relax the "
                f"target or the constraints."
            )
        else:
            c = self.chosen
            lines.append(f"Recommended spec: {self.spec!r}")
            if self.nprobe is not None:
                lines.append(
                    f"  search with nprobe={self.nprobe} (col.search(q, k, nprobe="
                    f"{self.nprobe}); slimvec search --nprobe {self.nprobe})"
                )
            lines.append(
                f"  recall@{self.k} {c.recall:.4f} vs exact float32 (target {self.target_recall}),"
                f" {c.ram_bytes_per_vector} RAM bytes/vector, ~{c.qps:,.0f} QPS on "
                f"{self.n_docs:,} docs"
            )
            if self.measured is not None:
                m = self.measured
                quality = f", nDCG@10 {m.ndcg10:.4f}" if m.ndcg10 is not None else ""
                lines.append(
                    f"  re-measured on a fresh collection: recall@{self.k} "
                    f"{m.recall[self.k]:.4f}{quality}, RAM {m.ram_bytes_per_vector:,.0f} B/vec, "
                    f"disk {m.disk_bytes_per_vector:,.0f} B/vec, {m.qps:,.0f} QPS, "
                    f"p50 {m.p50_ms:.2f} ms"
                )
        lines.append(f"  dimension reduction: {self.family} ({self.family_reason})")
        if self.ivf_note:
            lines.append(f"  {self.ivf_note}")
        for why, cand in self.runner_ups:
            lines.append(f"  alternative {cand.label!r}: {why}")
        lines.extend(f"  warning: {w}" for w in self.warnings)
        lines.append(
            f"  {len(self.candidates)} candidates evaluated on {self.n_docs:,} docs x "
            f"{self.n_queries} queries in {self.seconds:.1f} s"
        )
        return "\n".join(lines)


class _Evaluator:
    """Scores specs on one sample, fitting each transform and code once."""

    def __init__(
        self, docs: np.ndarray, queries: np.ndarray, truth: np.ndarray, k: int, metric: str
    ):
        self.docs, self.queries, self.truth, self.k, self.metric = docs, queries, truth, k, metric
        self.dim = docs.shape[1]
        self._transformed: dict[str, tuple[list[dict], np.ndarray]] = {}
        self._codes: dict[tuple[str, str], tuple[dict, np.ndarray]] = {}
        self.results: dict[str, Candidate] = {}

    def seed_transform(self, spec_prefix: str, states: list[dict], z: np.ndarray) -> None:
        self._transformed[spec_prefix] = (states, z)

    def _pipeline(self, spec_text: str) -> tuple[Pipeline, ArrayCodes]:
        spec = parse_spec(spec_text)
        pipe = Pipeline(spec, self.dim, self.metric)
        tkey = ", ".join(str(t) for t in spec.transforms)
        if tkey not in self._transformed:
            z = self.docs
            states = []
            for t in pipe.transforms:
                z = t.fit(z).transform(z)
                states.append(t.state())
            self._transformed[tkey] = (states, z)
        states, z = self._transformed[tkey]
        for t, state in zip(pipe.transforms, states):
            if state:
                t.load_state(state)
        codes = {ORIGINAL: self.docs}
        for stage in spec.stages:
            key = pipe.code_key(stage)
            if key == ORIGINAL or key in codes:
                continue
            codec = pipe.codecs[key]
            if (tkey, key) not in self._codes:
                view = pipe.stage_view(z, stage)
                codec.fit(view)
                self._codes[(tkey, key)] = (codec.state(), codec.encode(view))
            state, encoded = self._codes[(tkey, key)]
            if state:
                codec.load_state(state)
            codes[key] = encoded
        return pipe, ArrayCodes(codes)

    def __call__(self, spec_text: str) -> Candidate:
        spec_text = str(parse_spec(spec_text))
        if spec_text in self.results:
            return self.results[spec_text]
        pipe, source = self._pipeline(spec_text)
        recall, qps = self._timed(lambda q: pipe.search(q, self.k, source, None)[0])
        stored = sum(pipe.bytes_per_vector(key) for key in pipe.stored_keys)
        cand = Candidate(
            spec=spec_text,
            recall=recall,
            ram_bytes_per_vector=pipe.ram_bytes_per_vector(),
            disk_bytes_per_vector=stored + 4 * self.dim + ROW_OVERHEAD_BYTES,
            qps=qps,
        )
        self.results[spec_text] = cand
        return cand

    def _timed(self, search: Any) -> tuple[float, float]:
        """(recall@k, QPS at batch ``BATCH``) of ``search`` (queries -> rows) on the sample."""
        q = self.queries
        search(q[:WARMUP])  # compiles kernels on first use
        start = time.perf_counter()
        found = np.concatenate([search(q[s : s + BATCH]) for s in range(0, len(q), BATCH)])
        seconds = time.perf_counter() - start
        return recall_at_k(found, self.truth, self.k), len(q) / seconds

    def ivf(self, flat_spec: str, nlist: int, nprobes: list[int]) -> list[Candidate]:
        """``ivf:nlist | flat_spec`` (no transforms) at each of ``nprobes``: centroids trained
        and lists built once on the sample (as a collection would, in memory), then searched
        per nprobe."""
        flat = self(flat_spec)
        spec_text = str(parse_spec(f"ivf:{nlist} | {flat_spec}"))
        pipe, source = self._pipeline(spec_text)
        index = IVFIndex(parse_spec(spec_text).ivf, pipe)
        view = pipe.stage_view(pipe.transform(self.docs), index.stage)
        rng = np.random.default_rng(0)
        n = len(view)
        sample = view[np.sort(rng.choice(n, min(n, TRAIN_PER_LIST * index.nlist), False))]
        index.centroids = train_centroids(sample, index.nlist)
        index.lists = [index.group(np.ascontiguousarray(view, np.float32))]
        blocks = [(0, source.resident(pipe.first_key))]
        stored = sum(pipe.bytes_per_vector(key) for key in pipe.stored_keys)
        out = []
        for nprobe in nprobes:
            recall, qps = self._timed(
                lambda q, p=nprobe: index.search(q, self.k, source, None, blocks, n, p)[0]
            )
            cand = Candidate(
                spec=spec_text,
                recall=recall,
                ram_bytes_per_vector=index.ram_bytes_per_vector(n),
                disk_bytes_per_vector=stored
                + list_bytes_per_vector(index.codec)
                + 4 * self.dim
                + ROW_OVERHEAD_BYTES,
                qps=qps,
                nprobe=nprobe,
                flat_qps=flat.qps,
            )
            self.results[cand.label] = cand
            out.append(cand)
        return out


def _sample(
    dataset: Dataset, docs: np.ndarray, queries: np.ndarray, n_docs: int, n_queries: int, seed: int
) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """A seeded sub-dataset; relevant docs of sampled queries are kept so qrels stay usable."""
    rng = np.random.default_rng(seed)
    q_rows = np.sort(rng.choice(len(queries), min(n_queries, len(queries)), replace=False))
    if n_docs >= len(docs):
        d_rows = np.arange(len(docs))
    else:
        row_of = {d: i for i, d in enumerate(dataset.doc_ids)}
        wanted = {
            row_of[d]
            for qi in q_rows
            for d in dataset.qrels.get(dataset.query_ids[qi], {})
            if d in row_of
        }
        must = np.fromiter(sorted(wanted), np.int64, len(wanted))[:n_docs]
        rest = np.setdiff1d(np.arange(len(docs)), must)
        d_rows = np.sort(
            np.concatenate([must, rng.choice(rest, n_docs - len(must), replace=False)])
        )
    sub = Dataset(
        name=f"{dataset.name} (sample)",
        doc_ids=[dataset.doc_ids[i] for i in d_rows],
        query_ids=[dataset.query_ids[i] for i in q_rows],
        qrels=dataset.qrels,
        docs=docs[d_rows],
        queries=queries[q_rows],
        model=dataset.model,
    )
    return sub, docs[d_rows], queries[q_rows]


def _prefix_dims(dim: int) -> list[int]:
    dims = []
    for frac in PREFIX_FRACTIONS:
        d = dim // frac // 8 * 8
        if d >= MIN_PREFIX and d not in dims and d < dim:
            dims.append(d)
    return dims


def _choose_family(docs, queries, truth, k, dims, matryoshka, metric):
    """Prefix vs PCA: by the flag, or by which keeps more of the exact top k at dim/4."""
    pca = PCARotation(docs.shape[1]).fit(docs)
    if not dims:
        return "none", "the dimension is too small to truncate", pca
    if matryoshka is not None:
        family = "matryoshka" if matryoshka else "pca"
        return family, "as requested", pca
    d = dims[min(1, len(dims) - 1)]
    norm = normalise_rows if metric == "cosine" else (lambda x: x)
    prefix = exact_top(norm(docs[:, :d].copy()), norm(queries[:, :d].copy()), k)
    rotated = pca.transform(docs)[:, :d].copy(), pca.transform(queries)[:, :d].copy()
    pca_top = exact_top(rotated[0], rotated[1], k)
    r_prefix, r_pca = recall_at_k(prefix, truth, k), recall_at_k(pca_top, truth, k)
    family = "matryoshka" if r_prefix >= r_pca else "pca"
    reason = (
        f"detected: exact search on the first {d} dims keeps recall@{k} {r_prefix:.3f}, on "
        f"{d} PCA components {r_pca:.3f}"
    )
    return family, reason, pca


def _first_stages(dim: int, dims: list[int], family: str) -> list[tuple[str, str]]:
    """(transform prefix, first-stage token) pairs, from largest to smallest dims per codec."""
    stages = [("", codec) for codec in FULL_DIM_CODECS]
    # A random rotation evens out per-dimension variance, which sign bits need (1M sentences:
    # binary*40 recall 0.79 -> 0.87); on well-spread models it is neutral, so it is a candidate.
    stages += [(f"rot:{dim} | ", "binary")]
    transform = "" if family == "matryoshka" else f"pca:{dim} | "
    for codec in PREFIX_CODECS:
        stages += [(transform, f"{codec}@{d}") for d in dims]
    return stages


def _smallest_keep(evaluate, transform, first, keeps, target):
    """The smallest K in ``keeps`` for which ``first*K > f32`` meets ``target``, or None.

    Bisection from the middle (recall grows with K), so the costly large factors are only
    tried when the small ones miss: at most ceil(log2(len(keeps) + 1)) evaluations.
    """
    lo, hi = -1, len(keeps)  # keeps[lo] misses, keeps[hi] meets (virtual ends)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if evaluate(f"{transform}{first}*{keeps[mid]} > f32").recall >= target:
            hi = mid
        else:
            lo = mid
    return keeps[hi] if hi < len(keeps) else None


def _ivf_plan(n: int, any_rabitq: bool) -> tuple[str, int | None]:
    """(what the advice says about IVF, the nlist to evaluate or None)."""
    nlist = suggested_nlist(n)
    need = train_rows(nlist)
    if n < need:
        return (
            f"ivf: not evaluated: the {n:,}-doc sample is below the {need:,} docs IVF lists "
            f"need to train (index.sizing.FLAT_ROWS; a smaller collection searches flat); pass "
            f"a sample of {need:,} or more to evaluate them"
        ), None
    if not any_rabitq:
        return "ivf: not evaluated: no rabitq first stage met the target flat", None
    try:
        require_faiss()
    except ImportError as exc:
        return f"ivf: not evaluated: {exc}", None
    return (
        f"ivf: {nlist} lists on the {n:,}-doc sample, nprobe swept over powers of two up to "
        f"{max(1, nlist // 2)} (from where the probed lists hold twice the shortlist)"
    ), nlist


def _runner_ups(
    chosen: Candidate | None, candidates: list[Candidate]
) -> list[tuple[str, Candidate]]:
    out: list[tuple[str, Candidate]] = []
    eligible = [c for c in candidates if c.eligible]
    if chosen is not None:
        faster = [c for c in eligible if c is not chosen and c.qps > 1.1 * chosen.qps]
        if faster:
            front = pareto_mask([c.ram_bytes_per_vector for c in faster], [c.qps for c in faster])
            faster = sorted(
                (c for c, keep in zip(faster, front) if keep), key=lambda c: c.ram_bytes_per_vector
            )
            for c in faster[:2]:
                out.append(
                    (
                        f"{c.qps / chosen.qps:.1f}x the QPS for {c.ram_bytes_per_vector} RAM B/vec "
                        f"({c.ram_bytes_per_vector / chosen.ram_bytes_per_vector:.1f}x), "
                        f"recall {c.recall:.4f}",
                        c,
                    )
                )
    limit = chosen.ram_bytes_per_vector if chosen is not None else np.inf
    smaller = [c for c in candidates if c.ram_bytes_per_vector < limit]
    if smaller:
        front = pareto_mask([c.ram_bytes_per_vector for c in smaller], [c.recall for c in smaller])
        smaller = sorted((c for c, keep in zip(smaller, front) if keep), key=lambda c: -c.recall)
        for c in smaller[:2]:
            why = f"only {c.ram_bytes_per_vector} RAM B/vec"
            if chosen is not None:
                why += f" ({chosen.ram_bytes_per_vector / c.ram_bytes_per_vector:.1f}x less)"
            out.append((f"{why} at recall {c.recall:.4f} ({c.excluded})", c))
    return out


def pick(
    candidates: list[Candidate],
    target_recall: float,
    max_bytes_per_vector: float | None = None,
    min_qps: float | None = None,
) -> Candidate | None:
    """Sort ``candidates`` by RAM bytes/vector (then QPS, best first), mark each with whether
    and why it cannot be picked, and return the first that can (None if none). An IVF
    candidate no faster than its flat twin (``flat_qps``) cannot be picked."""
    candidates.sort(key=lambda c: (c.ram_bytes_per_vector, -c.qps, c.label))
    for c in candidates:
        c.meets_target = c.recall >= target_recall
        c.excluded = None
        if not c.meets_target:
            c.excluded = f"recall {c.recall:.4f} < {target_recall}"
        elif c.flat_qps is not None and c.qps <= c.flat_qps:
            c.excluded = (
                f"no faster than its flat scan here ({c.qps:,.0f} vs {c.flat_qps:,.0f} QPS)"
            )
        elif max_bytes_per_vector is not None and c.ram_bytes_per_vector > max_bytes_per_vector:
            c.excluded = f"RAM {c.ram_bytes_per_vector} B/vec > {max_bytes_per_vector:g}"
        elif min_qps is not None and c.qps < min_qps:
            c.excluded = f"QPS {c.qps:,.0f} < {min_qps:g}"
    return next((c for c in candidates if c.eligible), None)


def advise(
    dataset: Dataset,
    target_recall: float = 0.99,
    max_bytes_per_vector: float | None = None,
    min_qps: float | None = None,
    sample: int = 10_000,
    n_queries: int = 200,
    matryoshka: bool | None = None,
    k: int = 10,
    metric: str = "cosine",
    verify: bool = True,
    seed: int = 0,
    threads: int | None = None,
) -> Advice:
    """The cheapest spec (RAM bytes/vector, then QPS) meeting recall@k >= ``target_recall``.

    ``sample`` docs and ``n_queries`` queries are drawn (seeded) from ``dataset``;
    ``max_bytes_per_vector`` bounds RAM bytes/vector and ``min_qps`` the QPS measured on the
    sample (batch 100). ``matryoshka`` forces prefix (True) or PCA (False) dimension reduction;
    ``None`` detects it. ``verify`` re-measures the pick on a real collection. ``threads``
    caps BLAS/numba/FAISS threads (see :func:`slimvec.eval.bench.thread_limit`).
    """
    with thread_limit(threads):
        started = time.perf_counter()
        if not 0 < target_recall <= 1:
            raise InvalidInputError(f"target_recall must be in (0, 1], got {target_recall!r}")
        for name, value in (("max_bytes_per_vector", max_bytes_per_vector), ("min_qps", min_qps)):
            if value is not None and value <= 0:
                raise InvalidInputError(f"{name} must be positive, got {value!r}")
        if sample < 2 * k or n_queries < 1:
            raise InvalidInputError(
                f"sample ({sample}) must hold at least 2*k docs and n_queries ({n_queries}) >= 1"
            )
        docs, queries = prepare_vectors(dataset, metric)
        if len(docs) < 2 * k:
            raise InvalidInputError(f"advise needs at least {2 * k} documents, got {len(docs)}")
        warnings = []
        if len(docs) > sample:
            warnings.append(
                f"figures are for a {sample:,}-doc sample of {len(docs):,}; on the full collection "
                f"the same oversampling keeps somewhat less recall (more near neighbours compete) "
                f"and QPS scales down with size; re-check with `slimvec bench` or a larger sample"
            )
        sub, docs, queries = _sample(dataset, docs, queries, sample, n_queries, seed)
        n = len(docs)
        truth = exact_top(docs, queries, k)
        dim = docs.shape[1]
        dims = _prefix_dims(dim)
        family, reason, pca = _choose_family(docs, queries, truth, k, dims, matryoshka, metric)
        evaluate = _Evaluator(docs, queries, truth, k, metric)
        evaluate.seed_transform(f"pca:{dim}", [pca.state()], pca.transform(docs))
        keeps = tuple(f for f in KEEPS if f * k <= n // 4) or (1,)

        for spec in SINGLE_STAGE:
            evaluate(spec)
        pruned: set[str] = set()
        ivf_firsts = []
        for transform, first in _first_stages(dim, dims, family):
            codec = first.split("@")[0]
            if codec in pruned:  # a larger prefix of this codec already missed: smaller ones will
                continue
            keep = _smallest_keep(evaluate, transform, first, keeps, target_recall)
            if keep is None:
                if "@" in first:
                    pruned.add(codec)
                continue
            if codec.startswith("binary") and keep >= 2 * MID_KEEP:
                evaluate(f"{transform}{first}*{keep} > int8*{MID_KEEP} > f32")
            if codec.startswith("rabitq") and not transform:
                ivf_firsts.append(f"{first}*{keep} > f32")
        ivf_note, nlist = _ivf_plan(n, bool(ivf_firsts))
        for first in ivf_firsts if nlist else ():
            shortlist = k * (parse_spec(first).stages[0].keep or 1)
            evaluate.ivf(first, nlist, nprobe_sweep(nlist, n, shortlist))

        candidates = list(evaluate.results.values())
        chosen = pick(candidates, target_recall, max_bytes_per_vector, min_qps)
        if chosen is not None:
            stages = parse_spec(chosen.spec).stages
            shortlist = (stages[0].keep or 1) * k if len(stages) > 1 else 0
            if shortlist > SHORTLIST_WARN * n:
                warnings.append(
                    f"the first stage shortlists {shortlist} candidates per query, "
                    f"{shortlist / n:.0%} of the {n:,}-doc sample; on a larger collection the same "
                    f"oversampling keeps less recall, so advise on a larger sample if you have one"
                )
            parsed = parse_spec(chosen.spec)
            final_dim = parsed.stages[-1].dims or parsed.output_dim(dim)
            capacity = capacity_warning(int(final_dim), len(dataset.doc_ids))
            if capacity:
                warnings.append(capacity)
            if chosen.nprobe is not None and len(dataset.doc_ids) > n:
                full = suggested_nlist(len(dataset.doc_ids))
                warnings.append(
                    f"the IVF pick was measured with {nlist} lists, fit for the {n:,}-doc "
                    f"sample; for all {len(dataset.doc_ids):,} docs use about ivf:{full} and "
                    f"start from nprobe ~ {max(1, round(chosen.nprobe * full / nlist))} (the "
                    f"same share of the lists), then check with `slimvec bench --specs`"
                )
        measured = None
        if chosen is not None and verify:
            measured = run_bench(
                sub,
                [chosen.spec],
                k_values=(k,),
                progress=False,
                metric=metric,
                latency_queries=50,
                nprobes=None if chosen.nprobe is None else [chosen.nprobe],
            )[0]
        return Advice(
            spec=None if chosen is None else chosen.spec,
            chosen=chosen,
            measured=measured,
            runner_ups=_runner_ups(chosen, candidates),
            candidates=candidates,
            target_recall=target_recall,
            k=k,
            max_bytes_per_vector=max_bytes_per_vector,
            min_qps=min_qps,
            family=family,
            family_reason=reason,
            n_docs=n,
            n_queries=len(queries),
            seconds=time.perf_counter() - started,
            warnings=warnings,
            nprobe=None if chosen is None else chosen.nprobe,
            ivf_note=ivf_note,
        )


def advice_to_dict(advice: Advice) -> dict[str, Any]:
    """JSON-ready form of an :class:`Advice` (for ``slimvec advise --json``)."""
    from dataclasses import asdict

    out = {key: value for key, value in asdict(advice).items() if key not in ("runner_ups",)}
    out["measured"] = advice.measured.to_dict() if advice.measured is not None else None
    out["runner_ups"] = [{"why": why, **asdict(c)} for why, c in advice.runner_ups]
    return out
