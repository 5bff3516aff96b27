"""``slimvec bench``: every spec of a grid measured on one dataset, in one run.

Each spec becomes a real collection (``slimvec.create`` in a scratch directory, then ``add``),
so the figures are what a user gets: recall@k against exact float32 search, nDCG@10/MRR@10
against qrels when the dataset has them, RAM and disk bytes per vector (``col.info()``), build
time, throughput at batch 100 and single-query latency. With ``baselines=True`` FAISS indexes
run on the same vectors and queries in the same process, so ratios between rows are fair.

Timings are as noisy as the machine: compare rows of one run, never numbers across runs.
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import slimvec
from slimvec.datasets.base import Dataset
from slimvec.engine import planner
from slimvec.errors import InvalidInputError
from slimvec.eval.metrics import Judgements, mrr_at_k, ndcg_at_k, recall_at_k
from slimvec.kernels.topk import blocked_top, select_top
from slimvec.spec import AUTO_LISTS, parse_spec
from slimvec.transforms import normalise_rows
from slimvec.validation import as_matrix, check_int, check_metric

QUALITY_K = 10  # nDCG, MRR and the QPS pass are measured at this k
BATCH = 100
DEEP_QUERIES = 200  # recall@k for k > QUALITY_K uses this many queries (see run_bench)


#: First stages of the IVF specs in the default grid: the two measured at 1M (BENCHMARKS.md
#: "IVF"), 1-bit and 2-bit RaBitQ with float32 rescoring.
IVF_STAGES = ("rabitq*40 > f32", "rabitq:2*20 > f32")


def ivf_specs(n: int) -> tuple[list[str], str]:
    """``ivf:N`` specs for ``n`` vectors (N from ``index.sizing.suggested_nlist``) and a line
    saying why, or why there are none: below the rows an IVF collection needs to train its
    lists it stays a flat scan, so an IVF row would only repeat the flat one."""
    from slimvec.index import sizing

    nlist = sizing.suggested_nlist(n)
    need = sizing.train_rows(nlist)
    if n < need:
        return [], (
            f"no ivf: rows: {n:,} docs < {need:,}, the rows an IVF collection needs to train "
            f"its lists (index.sizing.FLAT_ROWS; below it search stays flat)"
        )
    try:
        sizing.require_faiss()
    except ImportError as exc:  # MissingDependencyError
        return [], f"no ivf: rows: {exc}"
    return [f"ivf:{nlist} | {stages}" for stages in IVF_STAGES], (
        f"ivf: rows: {nlist} lists (~sqrt of {n:,} docs), nprobe swept over powers of two up "
        f"to {max(1, nlist // 2)} (from where the probed lists hold twice the shortlist)"
    )


def default_specs(dim: int, n: int | None = None) -> list[str]:
    """A small grid spanning the trade-offs, for ``dim``-dim vectors (``slimvec bench``);
    with ``n`` (the docs to index) also IVF specs when ``n`` is enough to train them."""
    quarter = max(8, dim // 4 // 8 * 8)
    specs = [
        "f32",
        "f16",
        "int8*4 > f32",
        "binary*40 > f32",
        "binary*20 > int8*4 > f32",
        "binary:2*10 > f32",
        f"f16@{quarter}*20 > f32",
        f"pca:{dim} | binary:2@{quarter}*20 > f32",
        "binary",
    ]
    if n is not None:
        specs += ivf_specs(n)[0]
    return specs if dim % 8 == 0 else [s for s in specs if "binary" not in s]


@dataclass
class BenchRow:
    """One configuration's measurements. ``recall[k]`` is recall@k against exact float32."""

    name: str
    engine: str  # "slimvec" or "faiss"
    recall: dict[int, float]
    ndcg10: float | None
    mrr10: float | None
    ram_bytes_per_vector: float
    disk_bytes_per_vector: float | None
    build_seconds: float
    qps: float
    p50_ms: float
    p99_ms: float
    n_docs: int
    n_queries: int
    dim: int
    dataset: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def quality(self, metric: str = "recall@10") -> float | None:
        """A quality figure by name: ``recall@K``, ``ndcg@10`` or ``mrr@10``."""
        if metric.startswith("recall@"):
            return self.recall.get(int(metric.split("@")[1]))
        return {"ndcg@10": self.ndcg10, "mrr@10": self.mrr10}.get(metric)

    def to_dict(self) -> dict[str, Any]:
        """Flat dict (``recall@1``, ``recall@10``, ...), for CSV and JSON."""
        out = asdict(self)
        recall = out.pop("recall")
        extra = out.pop("extra")
        flat: dict[str, Any] = {"name": out.pop("name"), "engine": out.pop("engine")}
        flat.update({f"recall@{k}": v for k, v in sorted(recall.items())})
        flat.update({"ndcg@10": out.pop("ndcg10"), "mrr@10": out.pop("mrr10")})
        flat.update(out)
        flat.update(extra)
        return flat


# -- engines ---------------------------------------------------------------------------------
class Engine:
    """Something that indexes vectors and answers top-k with document rows."""

    name: str
    engine: str

    def build(self, docs: np.ndarray, workdir: Path) -> None:
        raise NotImplementedError

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        raise NotImplementedError

    def sizes(self) -> tuple[float, float | None]:
        """(RAM bytes/vector, disk bytes/vector) after ``build``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release files and memory."""


class SlimvecEngine(Engine):
    engine = "slimvec"

    def __init__(self, spec: str, metric: str = "cosine"):
        self.spec = str(parse_spec(spec))
        self.name = self.spec
        self.metric = metric
        self.col: slimvec.Collection | None = None
        self.nprobe: int | None = None  # lists read per query ("ivf:N" specs)

    def build(self, docs: np.ndarray, workdir: Path) -> None:
        self.col = slimvec.create(workdir / "collection", docs.shape[1], self.metric, self.spec)
        self.col.add(docs, ids=np.arange(len(docs), dtype=np.int64))

    def nprobes(self, sweep: Sequence[int] | None) -> list[int | None]:
        """The ``nprobe`` values to measure once built: ``sweep`` within 1..nlist, or by
        default ``index.sizing.nprobe_sweep`` for the collection's size and k=10 shortlist, for
        an IVF collection whose lists are trained; else [None] (one row: a flat spec, or an
        IVF one still searched flat)."""
        ivf = self.col.info()["ivf"]
        if ivf is None or ivf["state"] != "trained":
            return [None]
        from slimvec.index.sizing import nprobe_sweep

        nlist = ivf["nlist"]
        if not sweep:
            shortlist = QUALITY_K * (parse_spec(self.spec).stages[0].keep or 1)
            return nprobe_sweep(nlist, len(self.col), shortlist)
        return sorted({p for p in sweep if 1 <= p <= nlist}) or [nlist]

    def use_nprobe(self, nprobe: int | None) -> None:
        self.nprobe = nprobe
        self.name = self.spec if nprobe is None else f"{self.spec} nprobe={nprobe}"

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        with planner.funnel_only():  # the spec's own codes, not the exact plan of a small set
            return self.col.search(queries, k=k, nprobe=self.nprobe).ids  # ids = rows

    def sizes(self) -> tuple[float, float | None]:
        info = self.col.info()
        return float(info["ram_bytes_per_vector"]), info["disk_bytes_per_vector"]

    def close(self) -> None:
        if self.col is not None:
            self.col.close()
            self.col = None


def _faiss():
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise InvalidInputError(
            "FAISS baselines need faiss-cpu: pip install 'slimvec[bench]' (or faiss-cpu==1.15.1)"
        ) from exc
    return faiss


class _FaissIndexEngine(Engine):
    """A FAISS index searched by inner product; sizes from its serialised bytes."""

    engine = "faiss"

    def __init__(self) -> None:
        self.index = None
        self.n = 0

    def make(self, dim: int, n: int):
        raise NotImplementedError

    def build(self, docs: np.ndarray, workdir: Path) -> None:
        self.index = self.make(docs.shape[1], len(docs))
        if not self.index.is_trained:
            self.index.train(docs)
        self.index.add(docs)
        self.n = len(docs)

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        return self.index.search(queries, k)[1]

    def sizes(self) -> tuple[float, float | None]:
        nbytes = _faiss().serialize_index(self.index).nbytes / max(self.n, 1)
        return float(nbytes), float(nbytes)

    def close(self) -> None:
        self.index = None


class FaissFlat(_FaissIndexEngine):
    name = "faiss Flat f32 (exact)"

    def make(self, dim: int, n: int):
        return _faiss().IndexFlatIP(dim)


class FaissHNSWSQ8(_FaissIndexEngine):
    def __init__(self, m: int = 32, ef_search: int = 128):
        super().__init__()
        self.m, self.ef_search = m, ef_search
        self.name = f"faiss HNSW{m},SQ8 ef{ef_search}"

    def make(self, dim: int, n: int):
        faiss = _faiss()
        return faiss.IndexHNSWSQ(
            dim, faiss.ScalarQuantizer.QT_8bit, self.m, faiss.METRIC_INNER_PRODUCT
        )

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        self.index.hnsw.efSearch = max(self.ef_search, k)
        return super().search(queries, k)


class FaissIVFPQ(_FaissIndexEngine):
    """IVF with about sqrt(n) lists (capped so each list gets ~39 training points), PQ with
    one 8-bit sub-quantiser per 16 dims, ``nprobe`` lists searched."""

    def __init__(self, nprobe: int = 16):
        super().__init__()
        self.nprobe = nprobe
        self.name = "faiss IVFPQ"

    def make(self, dim: int, n: int):
        faiss = _faiss()
        nlist = max(1, min(int(np.sqrt(n)), n // 39))
        m = max(d for d in range(1, max(dim // 16, 1) + 1) if dim % d == 0)
        self.name = f"faiss IVF{nlist},PQ{m} nprobe{min(self.nprobe, nlist)}"
        index = faiss.IndexIVFPQ(
            faiss.IndexFlatIP(dim), dim, nlist, m, 8, faiss.METRIC_INNER_PRODUCT
        )
        index.nprobe = min(self.nprobe, nlist)
        # nlist already leaves >= 39 points per list; PQ's 256 centroids per sub-space may get
        # fewer on small sets, which FAISS would warn about on every sub-quantiser.
        index.pq.cp.min_points_per_centroid = 1
        self._quantizer = index.quantizer  # keep the Python object alive with the index
        return index


class FaissBinaryRefine(Engine):
    """Sign bits in ``IndexBinaryFlat`` (RAM), then float32 rescoring of ``keep * k``
    candidates read from a memory-mapped file, like slimvec's ``binary*40 > f32``."""

    engine = "faiss"

    def __init__(self, keep: int = 40):
        self.keep = keep
        self.name = f"faiss BinaryFlat*{keep} > f32"
        self.index = None
        self.originals: np.ndarray | None = None

    def build(self, docs: np.ndarray, workdir: Path) -> None:
        faiss = _faiss()
        self.dim = docs.shape[1]
        self.index = faiss.IndexBinaryFlat(self.dim)
        self.index.add(np.packbits(docs > 0, axis=1))
        path = workdir / "originals.npy"
        np.save(path, docs)
        self.originals = np.load(path, mmap_mode="r")
        self.n = len(docs)

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        _, cand = self.index.search(np.packbits(queries > 0, axis=1), k * self.keep)
        safe = np.maximum(cand, 0)
        flat = safe.ravel()
        order = np.argsort(flat, kind="stable")  # sequential reads from the memory map
        vecs = np.empty((len(flat), self.dim), np.float32)
        vecs[order] = self.originals[flat[order]]
        scores = np.einsum("qcd,qd->qc", vecs.reshape(*cand.shape, self.dim), queries)
        scores[cand < 0] = -np.inf
        cols, _ = select_top(scores, k)
        return np.take_along_axis(cand, cols, axis=1)

    def sizes(self) -> tuple[float, float | None]:
        ram = self.index.code_size
        return float(ram), float(ram + 4 * self.dim)

    def close(self) -> None:
        self.index = None
        self.originals = None


def faiss_baselines() -> list[Engine]:
    """The FAISS peers of issue 3: exact flat, binary + refine, HNSW-SQ8, IVF-PQ."""
    _faiss()
    return [FaissFlat(), FaissBinaryRefine(), FaissHNSWSQ8(), FaissIVFPQ()]


# -- measuring ---------------------------------------------------------------------------------
def prepare_vectors(dataset: Dataset, metric: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """Validated float32 docs and queries (unit-norm for cosine), or a clear error."""
    check_metric(metric)
    if dataset.docs is None or dataset.queries is None:
        raise InvalidInputError(
            f"dataset {dataset.name!r} has no embeddings; embed it first (e.g. "
            f"slimvec.datasets.load({dataset.name!r}, model=...)) or pass vectors"
        )
    docs = as_matrix(dataset.docs, np.shape(dataset.docs)[-1], "dataset docs")
    queries = as_matrix(dataset.queries, docs.shape[1], "dataset queries")
    if metric == "cosine":
        docs, queries = normalise_rows(docs), normalise_rows(queries)
    return docs, queries


def exact_top(docs: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Rows of the exact float32 top k by inner product (the truth every recall is against)."""
    k = min(k, len(docs))
    rows, _ = blocked_top(lambda a, b: queries @ docs[a:b].T, len(docs), len(queries), k)
    return rows


def _batched(
    search: Callable[[np.ndarray, int], np.ndarray], q: np.ndarray, k: int, batch: int
) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    parts = [np.asarray(search(q[s : s + batch], k)) for s in range(0, len(q), batch)]
    return np.concatenate(parts), time.perf_counter() - start


def measure(
    engine: Engine,
    docs: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    judgements: Judgements | None,
    k_values: Sequence[int],
    workdir: Path,
    latency_queries: int = 100,
    batch: int = BATCH,
    dataset: str = "",
    deep_queries: int = DEEP_QUERIES,
) -> BenchRow:
    """Build ``engine`` on ``docs`` and measure it against ``truth`` (exact rows)."""
    start = time.perf_counter()
    engine.build(docs, workdir)
    build = time.perf_counter() - start
    return measure_built(
        engine,
        build,
        docs,
        queries,
        truth,
        judgements,
        k_values,
        latency_queries,
        batch,
        dataset,
        deep_queries,
    )


def measure_built(
    engine: Engine,
    build: float,
    docs: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    judgements: Judgements | None,
    k_values: Sequence[int],
    latency_queries: int = 100,
    batch: int = BATCH,
    dataset: str = "",
    deep_queries: int = DEEP_QUERIES,
) -> BenchRow:
    """``measure`` of an engine already built (in ``build`` seconds): each ``nprobe`` of an
    IVF sweep is one such row over the same collection."""
    n = len(docs)
    qk = min(QUALITY_K, n)
    engine.search(queries[:batch], qk)  # warm-up: compiled kernels, page cache
    found_q, seconds = _batched(engine.search, queries, qk, batch)
    recall = {}
    for k in k_values:
        kk = min(k, n)
        if kk == qk:
            recall[int(k)] = recall_at_k(found_q, truth, kk)
            continue
        # deep searches shortlist keep * k candidates per query: fewer queries, smaller batches
        m = len(queries) if kk < qk else min(deep_queries, len(queries))
        step = max(1, batch * qk // kk)
        found = _batched(engine.search, queries[:m], kk, step)[0]
        recall[int(k)] = recall_at_k(found, truth[:m], kk)
    ndcg = mrr = None
    if judgements is not None:
        ndcg = ndcg_at_k(found_q, judgements, qk)
        mrr = mrr_at_k(found_q, judgements, qk)
    lat = []
    for i in range(min(latency_queries, len(queries))):
        t = time.perf_counter()
        engine.search(queries[i : i + 1], qk)
        lat.append(time.perf_counter() - t)
    ram, disk = engine.sizes()
    return BenchRow(
        name=engine.name,
        engine=engine.engine,
        recall=recall,
        ndcg10=ndcg,
        mrr10=mrr,
        ram_bytes_per_vector=ram,
        disk_bytes_per_vector=disk,
        build_seconds=build,
        qps=len(queries) / seconds,
        p50_ms=float(np.percentile(lat, 50) * 1e3) if lat else float("nan"),
        p99_ms=float(np.percentile(lat, 99) * 1e3) if lat else float("nan"),
        n_docs=n,
        n_queries=len(queries),
        dim=docs.shape[1],
        dataset=dataset,
        extra=_ivf_extra(engine),
    )


def _ivf_extra(engine: Engine) -> dict[str, Any]:
    """For an ``ivf:N`` spec: its spec, nprobe (None: still searched flat) and nlist, which
    group a sweep's rows into one curve (``plots.plot_frontiers``)."""
    if not isinstance(engine, SlimvecEngine) or parse_spec(engine.spec).ivf is None:
        return {}
    nlist = parse_spec(engine.spec).ivf
    if nlist == AUTO_LISTS:  # the default: flat by design while small, not "untrained"
        if engine.nprobe is None:
            return {}
        nlist = engine.col.info()["ivf"]["nlist"]
    return {"spec": engine.spec, "nprobe": engine.nprobe, "nlist": nlist}


@contextmanager
def thread_limit(threads: int | None) -> Iterator[None]:
    """Cap BLAS (through threadpoolctl, when installed), numba and FAISS threads for a block.

    On a shared machine oversubscribed thread pools spin and can make BLAS calls 20x slower;
    a cap keeps a run's figures comparable. ``None`` leaves every library as it is.
    """
    if threads is None:
        yield
        return
    threads = check_int(threads, "threads")
    import numba

    before_numba = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    faiss = before_faiss = None
    try:
        import faiss

        before_faiss = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(threads)
    except ImportError:
        faiss = None
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            yield
        else:
            with threadpool_limits(limits=threads, user_api="blas"):
                yield
    finally:
        numba.set_num_threads(before_numba)
        if faiss is not None:
            faiss.omp_set_num_threads(before_faiss)


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Callable[[str], None]]:
    if not enabled:
        yield lambda _name: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]bench[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("", total=total)
        started = False

        def step(name: str) -> None:
            nonlocal started
            if started:
                bar.advance(task)
            started = True
            bar.update(task, description=name)

        yield step
        bar.advance(task)


def run_bench(
    dataset: Dataset,
    specs: Sequence[str],
    k_values: Sequence[int] = (1, 10, 100),
    baselines: bool = False,
    workdir: str | Path | None = None,
    progress: bool = True,
    metric: str = "cosine",
    latency_queries: int = 100,
    deep_queries: int = DEEP_QUERIES,
    threads: int | None = None,
    nprobes: Sequence[int] | None = None,
) -> list[BenchRow]:
    """Measure each spec (and, with ``baselines``, FAISS peers) on ``dataset``.

    Recall@k is against exact float32 search over the same (normalised, for cosine) vectors,
    computed once with NumPy. Each spec is searched once per k, since funnels shortlist
    ``keep * k`` candidates and a k=100 search would flatter recall@10; recall@k for k > 10
    uses the first ``deep_queries`` queries only (a k=100 funnel reads 10x more candidates).
    QPS is over all queries in batches of 100 at k=10; latency over the first
    ``latency_queries`` single queries.
    ``workdir`` keeps the built collections (one sub-directory per row); by default they go to
    a temporary directory that is removed. ``threads`` caps BLAS, numba and FAISS threads
    (see :func:`thread_limit`). An ``ivf:N`` spec whose lists trained is built once and
    measured at each of ``nprobes`` (default ``index.sizing.nprobe_sweep(N)``): one row each.
    """
    ks = sorted({int(k) for k in k_values})
    if not ks or ks[0] < 1:
        raise InvalidInputError(f"k_values must be positive integers, got {list(k_values)!r}")
    if not specs and not baselines:
        raise InvalidInputError("nothing to measure: pass at least one spec or baselines=True")
    docs, queries = prepare_vectors(dataset, metric)
    engines: list[Engine] = [SlimvecEngine(s, metric) for s in specs]  # parses every spec first
    for eng in engines:
        parse_spec(eng.spec).check_dim(docs.shape[1])
    if baselines:
        engines += faiss_baselines()
    judgements = (
        Judgements.from_qrels(dataset.qrels, dataset.query_ids, dataset.doc_ids)
        if dataset.qrels
        else None
    )
    if judgements is not None and not judgements.judged.any():
        judgements = None
    truth = exact_top(docs, queries, max(ks))
    rows = []
    with thread_limit(threads), tempfile.TemporaryDirectory(prefix="slimvec-bench-") as tmp:
        base = Path(workdir) if workdir is not None else Path(tmp)
        with _progress(progress, len(engines)) as step:
            for i, eng in enumerate(engines):
                step(eng.name)
                sub = base / f"{i:02d}-{eng.engine}"
                sub.mkdir(parents=True, exist_ok=True)
                try:
                    start = time.perf_counter()
                    eng.build(docs, sub)
                    build = time.perf_counter() - start
                    sweep = eng.nprobes(nprobes) if isinstance(eng, SlimvecEngine) else [None]
                    for nprobe in sweep:
                        if isinstance(eng, SlimvecEngine):
                            eng.use_nprobe(nprobe)
                        rows.append(
                            measure_built(
                                eng,
                                build,
                                docs,
                                queries,
                                truth,
                                judgements,
                                ks,
                                latency_queries=latency_queries,
                                dataset=dataset.name,
                                deep_queries=deep_queries,
                            )
                        )
                finally:
                    eng.close()
    return rows


# -- frontiers and output -------------------------------------------------------------------------
def pareto_mask(cost: Sequence[float], quality: Sequence[float]) -> np.ndarray:
    """True where no other point is at least as cheap and as good, and strictly better in one."""
    c = np.asarray(cost, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    mine_c, other_c = c[:, None], c[None, :]  # [i, j]: is point j better than point i?
    mine_q, other_q = q[:, None], q[None, :]
    no_worse = (other_c <= mine_c) & (other_q >= mine_q)
    dominated = no_worse & ((other_c < mine_c) | (other_q > mine_q))
    return ~dominated.any(axis=1)


COLUMNS = (
    ("recall@1", "R@1", "{:.3f}"),
    ("recall@10", "R@10", "{:.3f}"),
    ("recall@100", "R@100", "{:.3f}"),
    ("ndcg@10", "nDCG@10", "{:.3f}"),
    ("mrr@10", "MRR@10", "{:.3f}"),
    ("ram_bytes_per_vector", "RAM B/vec", "{:,.0f}"),
    ("disk_bytes_per_vector", "disk B/vec", "{:,.0f}"),
    ("build_seconds", "build s", "{:.2f}"),
    ("qps", "QPS@100", "{:,.0f}"),
    ("p50_ms", "p50 ms", "{:.2f}"),
    ("p99_ms", "p99 ms", "{:.2f}"),
)


def bench_table(rows: Sequence[BenchRow], title: str | None = None):
    """A ``rich.table.Table`` of the rows; recall columns follow the measured k values."""
    from rich.table import Table

    dicts = [r.to_dict() for r in rows]
    present = [c for c in COLUMNS if any(d.get(c[0]) is not None for d in dicts)]
    extra_recall = sorted(
        {key for d in dicts for key in d if key.startswith("recall@")} - {c[0] for c in COLUMNS},
        key=lambda s: int(s.split("@")[1]),
    )
    present = [(key, key.replace("recall", "R"), "{:.3f}") for key in extra_recall] + present
    table = Table(title=title, header_style="bold", pad_edge=False)
    table.add_column("config", overflow="fold", min_width=16)
    for _, header, _ in present:
        table.add_column(header, justify="right", no_wrap=True)
    for d in dicts:
        style = "cyan" if d["engine"] == "faiss" else None
        cells = [d["name"]]
        for key, _, fmt in present:
            value = d.get(key)
            cells.append("-" if value is None else fmt.format(value))
        table.add_row(*cells, style=style)
    return table


def print_table(rows: Sequence[BenchRow], console=None, title: str | None = None) -> None:
    """Print the bench table to the terminal (or the given rich ``Console``)."""
    from rich.console import Console

    if console is None:
        console = Console()
        if not console.is_terminal:  # files and pipes: do not squeeze into 80 columns
            console = Console(width=180)
    console.print(bench_table(rows, title))


def write_csv(rows: Sequence[BenchRow], path: str | Path) -> Path:
    """One line per row, columns as in :meth:`BenchRow.to_dict`."""
    path = Path(path)
    dicts = [r.to_dict() for r in rows]
    fields = list(dict.fromkeys(key for d in dicts for key in d))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(dicts)
    return path


def write_json(rows: Sequence[BenchRow], path: str | Path) -> Path:
    """A JSON list of :meth:`BenchRow.to_dict` objects."""
    path = Path(path)
    path.write_text(json.dumps([r.to_dict() for r in rows], indent=2) + "\n")
    return path


def read_json(path: str | Path) -> list[BenchRow]:
    """Rows back from :func:`write_json` (e.g. to re-plot a past run)."""
    rows = []
    for d in json.loads(Path(path).read_text()):
        recall = {
            int(key.split("@")[1]): d.pop(key) for key in list(d) if key.startswith("recall@")
        }
        known = {f for f in BenchRow.__dataclass_fields__ if f not in ("recall", "extra")}
        d["ndcg10"], d["mrr10"] = d.pop("ndcg@10", None), d.pop("mrr@10", None)
        kwargs = {key: d.pop(key) for key in list(d) if key in known}
        rows.append(BenchRow(recall=recall, extra=d, **kwargs))
    return rows
