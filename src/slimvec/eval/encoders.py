"""``slimvec bench --encoders`` / ``advise --target-ndcg``: encoder operating points measured.

For small and medium collections the encoder, not the index, is most of the bill: MiniLM embeds
~70-100 texts/s on two cores, and every document (and query) passes through it. An elastic
encoder (:class:`~slimvec.encoders.ElasticEncoder`) runs only the first L transformer layers
and keeps the first D dimensions, so the encoding cost becomes a dial beside the storage cost.
Whether a (L, D) point is usable depends on the model (a 2D-Matryoshka-trained one keeps far
more quality at shallow depths than a plain one) and on the user's data — so it is measured
here, on the user's own texts and qrels, never extrapolated:

* **texts/s** — documents (and, separately, queries) encoded per second at depth L, timed
  after a warm-up, best of two passes over (at most) the first 200 texts; dims do not change
  the encoding cost, so each depth is encoded once and every D is a prefix of it. Models are
  measured one after the other: on a machine whose load changes, compare the speeds of two
  models of one architecture before trusting a pick between them;
* **nDCG@10 / recall@10** against the qrels, through a real collection of ``spec`` (so the
  figure is what a user gets);
* **RAM/disk bytes per vector and QPS** (batch 100) of a collection of ``spec`` holding at
  least ``SEARCH_DOCS`` vectors at D dims: the user's vectors, padded with noisy copies of
  them when the evaluation set is smaller, so that the timing is of scanning, not of per-call
  overheads.

The advice picks the cheapest point meeting an nDCG@10 target, by a cost model that is
explicit (:class:`Costs`): money to encode ``docs`` documents and ``queries`` queries at the
measured texts/s, to keep the vectors in RAM (and on disk) for ``months``, and to run the
queries at the measured QPS scaled linearly from the timed collection to ``docs`` documents
(a scan's cost grows with the number of vectors; graph indexes would grow slower). Every
term is printed, so a user who weighs them differently sees where the pick comes from.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from slimvec.datasets.base import Dataset
from slimvec.errors import InvalidInputError
from slimvec.eval.bench import SlimvecEngine, exact_top, measure, thread_limit
from slimvec.eval.metrics import Judgements, qrels_recall_at_k
from slimvec.spec import parse_spec
from slimvec.transforms import normalise_rows

DEFAULT_MODEL = "all-MiniLM-L6-v2"
WARMUP_TEXTS = 16
TIMING_TEXTS = 200  # texts/s is timed on (at most) this many texts ...
TIMING_ROUNDS = 2  # ... this many times, the best pass kept
#: Search speed and bytes/vector are measured on at least this many vectors (the user's own,
#: plus noisy copies of them when there are fewer), and at least this many queries, so that a
#: small evaluation set does not time only fixed per-call overheads.
SEARCH_DOCS = 20_000
SEARCH_QUERIES = 200


@dataclass
class Costs:
    """How the advice weighs encoding, storage and search, in one currency.

    ``hour`` is the price of an hour of the machine the measurement ran on (with the threads it
    used); ``ram_gb_month`` / ``disk_gb_month`` price the vectors kept for ``months``; the
    workload is ``docs`` documents encoded and stored and ``queries`` queries encoded and
    searched. The defaults (a 2-vCPU cloud machine, RAM at cloud memory prices) are a starting
    point, not a truth: pass your own.
    """

    docs: float = 1e6
    queries: float = 1e6
    months: float = 1.0
    hour: float = 0.08
    ram_gb_month: float = 3.0
    disk_gb_month: float = 0.1

    @classmethod
    def parse(cls, text: str | None) -> Costs:
        """``"docs=1e6,queries=1e5,hour=0.1"`` -> Costs (unnamed fields keep their defaults)."""
        costs = cls()
        if not text:
            return costs
        names = {f.name for f in fields(cls)}
        for item in text.split(","):
            if not item.strip():
                continue
            key, sep, value = item.partition("=")
            key = key.strip()
            try:
                number = float(value)
            except ValueError:
                number = float("nan")
            if not sep or key not in names or not np.isfinite(number) or number < 0:
                raise InvalidInputError(
                    f"--costs takes comma-separated name=number pairs with names among "
                    f"{', '.join(sorted(names))} and numbers >= 0, e.g. "
                    f"'docs=1e6,queries=1e5,hour=0.08'; got {item.strip()!r}"
                )
            setattr(costs, key, number)
        return costs

    def price(self, point: EncoderPoint) -> dict[str, float]:
        """{"encode", "store", "search", "total"} for ``point`` under this workload."""
        encode_s = self.docs / point.doc_texts_per_s + self.queries / point.query_texts_per_s
        scale = self.docs / max(point.search_docs, 1)
        search_s = self.queries * scale / point.qps
        gb = self.docs / 1e9
        store = (
            self.months
            * gb
            * (
                point.ram_bytes_per_vector * self.ram_gb_month
                + (point.disk_bytes_per_vector or 0.0) * self.disk_gb_month
            )
        )
        out = {
            "encode": encode_s / 3600 * self.hour,
            "store": store,
            "search": search_s / 3600 * self.hour,
        }
        out["total"] = sum(out.values())
        return out

    def describe(self) -> str:
        return (
            f"cost of {self.docs:,.0f} docs encoded + stored {self.months:g} month(s) "
            f"(RAM {self.ram_gb_month:g}/GB-month, disk {self.disk_gb_month:g}/GB-month) + "
            f"{self.queries:,.0f} queries encoded and searched, machine hour {self.hour:g}"
        )


@dataclass
class EncoderPoint:
    """One (model, layers, dims) operating point measured on a dataset."""

    model: str
    layers: int
    depth: int
    dims: int
    full_dims: int
    spec: str
    ndcg10: float
    recall10: float
    doc_texts_per_s: float
    query_texts_per_s: float
    ram_bytes_per_vector: float
    disk_bytes_per_vector: float | None
    qps: float
    search_docs: int
    n_docs: int
    n_queries: int
    cost: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The model identity a collection built at this point records."""
        if (self.layers, self.dims) == (self.depth, self.full_dims):
            return self.model
        return f"{self.model}@layers={self.layers},dims={self.dims}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        cost = out.pop("cost")
        out = {"name": self.name, **out}
        out.update({f"cost_{k}": v for k, v in cost.items()})
        return out


@dataclass
class EncoderAdvice:
    """The cheapest point meeting ``target_ndcg`` (None when no point does), and all points."""

    target_ndcg: float
    costs: Costs
    points: list[EncoderPoint]
    chosen: EncoderPoint | None

    def summary(self) -> str:
        if self.chosen is None:
            best = max(self.points, key=lambda p: p.ndcg10)
            return (
                f"no operating point reaches nDCG@10 >= {self.target_ndcg:g}; the best is "
                f"{best.name} at {best.ndcg10:.4f}: lower the target or measure another model"
            )
        c = self.chosen
        return (
            f"cheapest point with nDCG@10 >= {self.target_ndcg:g}: {c.name} (layers={c.layers}, "
            f"dims={c.dims}, spec {c.spec!r}): nDCG@10 {c.ndcg10:.4f}, "
            f"{c.doc_texts_per_s:,.0f} docs/s, {c.ram_bytes_per_vector:,.0f} B/vector in RAM; "
            f"total {c.cost['total']:.2f} = encode {c.cost['encode']:.2f} + store "
            f"{c.cost['store']:.2f} + search {c.cost['search']:.2f} ({self.costs.describe()})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_ndcg": self.target_ndcg,
            "costs": asdict(self.costs),
            "chosen": None if self.chosen is None else self.chosen.to_dict(),
            "points": [p.to_dict() for p in self.points],
        }


def parse_ints(text: str | None, option: str) -> list[int] | None:
    """``"2,3,6"`` -> [2, 3, 6]; None stays None (the default grid); anything else is an error."""
    if text is None:
        return None
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise InvalidInputError(
            f"{option} takes comma-separated positive integers, e.g. 2,3,6 (got {text!r})"
        )
    return sorted(set(values))


def check_target(target: float) -> float:
    """An nDCG@10 target must lie in (0, 1]."""
    if isinstance(target, bool) or not isinstance(target, int | float) or not 0 < target <= 1:
        raise InvalidInputError(
            f"target nDCG@10 must be a number in (0, 1], e.g. 0.9 (got {target!r})"
        )
    return float(target)


def default_layers(depth: int) -> list[int]:
    """A third, half, two thirds and all of the depth: {2, 3, 4, 6} for a 6-layer model."""
    return sorted({max(1, depth // 3), max(1, depth // 2), max(1, 2 * depth // 3), depth})


def default_dims(full: int) -> list[int]:
    """All, two thirds, a third and a sixth of the dims (multiples of 8 when possible)."""
    return sorted({full, *(max(8, full * k // 6 // 8 * 8) for k in (4, 2, 1))} - {0})


def _check_grid(
    values: Sequence[int] | None, top: int, default: list[int], what: str, model: str
) -> list[int]:
    if values is None:
        return [v for v in default if v <= top]
    bad = [v for v in values if not 1 <= v <= top]
    if bad:
        unit = "transformer layers" if what == "layers" else "output dimensions"
        raise InvalidInputError(
            f"{what} {bad} outside 1..{top}: {model!r} has {top} {unit}; pass --{what} "
            f"with values in 1..{top}"
        )
    return sorted(set(values))


def text_judgements(dataset: Dataset) -> Judgements:
    """The qrels of a dataset with texts, or a clear error saying what is missing."""
    if not dataset.doc_texts or not dataset.query_texts:
        raise InvalidInputError(
            f"measuring encoders needs texts: {dataset.name!r} has no "
            f"{'document' if not dataset.doc_texts else 'query'} texts; give a directory with "
            f"docs.jsonl and queries.jsonl ({{'id': ..., 'text': ...}} per line) and qrels.tsv"
        )
    judgements = Judgements.from_qrels(dataset.qrels or {}, dataset.query_ids, dataset.doc_ids)
    if not judgements.judged.any():
        raise InvalidInputError(
            f"measuring encoders needs relevance judgements: {dataset.name!r} has no qrels.tsv "
            f"line naming one of its queries and documents (query_id doc_id relevance)"
        )
    return judgements


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _padded(x: np.ndarray, rows: int, seed: int) -> np.ndarray:
    """``x`` followed by noisy unit-norm copies of its rows, ``rows`` in all (at least len(x))."""
    extra = rows - len(x)
    if extra <= 0:
        return x
    rng = np.random.default_rng(seed)
    copies = x[rng.integers(0, len(x), extra)]
    copies = copies + rng.standard_normal(copies.shape, dtype=np.float32) * (
        0.1 / np.sqrt(x.shape[1])
    )
    return np.concatenate([x, normalise_rows(copies.astype(np.float32))])


def _measure_point(spec: str, d, q, judgements, search_docs: int, work: Path):
    """(quality row on the real vectors, speed/bytes row on the padded ones, top-10 rows)."""
    engine = SlimvecEngine(spec)
    (work / "quality").mkdir(parents=True)
    try:
        quality = measure(
            engine, d, q, exact_top(d, q, 10), judgements, [10], work / "quality", latency_queries=0
        )
        found = engine.search(q, min(10, len(d)))
    finally:
        engine.close()
    big_d = _padded(d, search_docs, 1)
    big_q = _padded(q, SEARCH_QUERIES, 2)
    engine = SlimvecEngine(spec)
    (work / "speed").mkdir()
    try:
        speed = measure(
            engine,
            big_d,
            big_q,
            exact_top(big_d, big_q, 10),
            None,
            [10],
            work / "speed",
            latency_queries=0,
        )
    finally:
        engine.close()
    return quality, speed, found


def _timed_encode(encoder, texts: list[str], kind: str) -> tuple[np.ndarray, float]:
    """(vectors of ``texts``, texts/s): the best of ``TIMING_ROUNDS`` timed passes over the
    first ``TIMING_TEXTS`` texts (the first pass doubles as the encoding when that is all of
    them), so a burst of load on a shared machine does not decide a depth's speed alone."""
    encoder.encode(texts[:WARMUP_TEXTS], kind=kind, progress=False)  # first calls allocate
    sample = texts[:TIMING_TEXTS]
    best, vectors = 0.0, None
    for _ in range(TIMING_ROUNDS):
        start = time.perf_counter()
        out = encoder.encode(sample, kind=kind, progress=False)
        best = max(best, len(sample) / max(time.perf_counter() - start, 1e-9))
        vectors = out if vectors is None else vectors
    if len(sample) < len(texts):
        vectors = encoder.encode(texts, kind=kind, progress=False)
    return vectors, best


def measure_encoders(
    dataset: Dataset,
    models: Sequence[str] = (DEFAULT_MODEL,),
    layers: Sequence[int] | None = None,
    dims: Sequence[int] | None = None,
    spec: str = "f32",
    threads: int | None = None,
    costs: Costs | None = None,
    progress: Any = None,
    search_docs: int = SEARCH_DOCS,
) -> list[EncoderPoint]:
    """Every (layers, dims) point of every model in ``models`` measured on ``dataset``'s texts.

    ``layers``/``dims`` default to :func:`default_layers`/:func:`default_dims` of each model;
    values outside 1..depth or 1..the model's dimension raise ``InvalidInputError`` before
    anything is encoded. ``progress`` is called with a short label before each step;
    ``search_docs`` is the size of the collection QPS and bytes/vector are measured on.
    """
    from slimvec.encoders import ElasticEncoder

    judgements = text_judgements(dataset)
    parse_spec(spec)
    costs = costs or Costs()
    doc_texts, query_texts = list(dataset.doc_texts), list(dataset.query_texts)
    plans = []
    for model in models:  # check every grid before the (slow) encoding starts
        full = ElasticEncoder(model)
        grid_l = _check_grid(layers, full.depth, default_layers(full.depth), "layers", model)
        grid_d = _check_grid(dims, full.full_dim, default_dims(full.full_dim), "dims", model)
        for d in grid_d:
            parse_spec(spec).check_dim(d)
        plans.append((model, full.depth, full.full_dim, grid_l, grid_d))
    points = []
    with (
        thread_limit(threads),
        _torch_threads(threads),
        tempfile.TemporaryDirectory(prefix="slimvec-encoders-") as tmp,
    ):
        for model, depth, full_dim, grid_l, grid_d in plans:
            for n_layers in sorted(grid_l, reverse=True):
                if progress is not None:
                    progress(f"{model} layers={n_layers}: encoding {len(doc_texts):,} docs")
                encoder = ElasticEncoder(model, layers=n_layers)
                docs, doc_speed = _timed_encode(encoder, doc_texts, "doc")
                queries, query_speed = _timed_encode(encoder, query_texts, "query")
                for n_dims in sorted(grid_d, reverse=True):
                    d = normalise_rows(np.ascontiguousarray(docs[:, :n_dims]))
                    q = normalise_rows(np.ascontiguousarray(queries[:, :n_dims]))
                    row, speed, found = _measure_point(
                        spec,
                        d,
                        q,
                        judgements,
                        max(search_docs, len(d)),
                        Path(tmp) / f"{len(points):04d}",
                    )
                    point = EncoderPoint(
                        model=encoder.name.split("@")[0],
                        layers=n_layers,
                        depth=depth,
                        dims=n_dims,
                        full_dims=full_dim,
                        spec=str(parse_spec(spec)),
                        ndcg10=float(row.ndcg10),
                        recall10=qrels_recall_at_k(found, judgements, min(10, len(d))),
                        doc_texts_per_s=doc_speed,
                        query_texts_per_s=query_speed,
                        ram_bytes_per_vector=speed.ram_bytes_per_vector,
                        disk_bytes_per_vector=speed.disk_bytes_per_vector,
                        qps=speed.qps,
                        search_docs=speed.n_docs,
                        n_docs=len(d),
                        n_queries=len(q),
                    )
                    point.cost = costs.price(point)
                    points.append(point)
    return points


def choose(points: Sequence[EncoderPoint], target_ndcg: float, costs: Costs) -> EncoderAdvice:
    """The cheapest point (total cost; ties: higher nDCG@10) with nDCG@10 >= ``target_ndcg``."""
    target = check_target(target_ndcg)
    ok = [p for p in points if p.ndcg10 >= target]
    chosen = min(ok, key=lambda p: (p.cost["total"], -p.ndcg10)) if ok else None
    return EncoderAdvice(target, costs, list(points), chosen)


def advise_encoder(
    dataset: Dataset,
    target_ndcg: float,
    models: Sequence[str] = (DEFAULT_MODEL,),
    layers: Sequence[int] | None = None,
    dims: Sequence[int] | None = None,
    spec: str = "f32",
    costs: Costs | None = None,
    threads: int | None = None,
    progress: Any = None,
) -> EncoderAdvice:
    """Measure the grid (:func:`measure_encoders`) and pick with :func:`choose`."""
    check_target(target_ndcg)
    costs = costs or Costs()
    points = measure_encoders(dataset, models, layers, dims, spec, threads, costs, progress)
    return choose(points, target_ndcg, costs)


def plot_encoders(
    points: Sequence[EncoderPoint], path: str | Path, chosen: EncoderPoint | None = None
) -> Path:
    """nDCG@10 against documents encoded per second, one marker per (model, layers, dims):
    colour = model, marker = dims, label = layers; the advised point ringed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator

    if not points:
        raise InvalidInputError("no encoder points to plot")
    models = list(dict.fromkeys(p.model for p in points))
    dims = sorted({p.dims for p in points}, reverse=True)
    markers = "os^DvP*X<>"
    colours = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(10, 6.5))
    for p in points:
        ax.scatter(
            p.doc_texts_per_s,
            p.ndcg10,
            color=colours(models.index(p.model) % 10),
            marker=markers[dims.index(p.dims) % len(markers)],
            s=60,
            alpha=0.85,
        )
        ax.annotate(
            f"L{p.layers}",
            (p.doc_texts_per_s, p.ndcg10),
            xytext=(4, 3),
            textcoords="offset points",
            fontsize=8,
        )
    if chosen is not None:
        ax.scatter(
            chosen.doc_texts_per_s,
            chosen.ndcg10,
            s=300,
            facecolors="none",
            edgecolors="black",
            linewidths=1.5,
            label="advised",
        )
    for i, m in enumerate(models):
        ax.scatter([], [], color=colours(i % 10), marker="o", label=Path(m).name or m)
    for i, d in enumerate(dims):
        ax.scatter([], [], color="grey", marker=markers[i % len(markers)], label=f"{d} dims")
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_xlabel("documents encoded per second (measured; log scale)")
    ax.set_ylabel("nDCG@10 (qrels)")
    first = points[0]
    ax.set_title(
        f"encoder operating points: {first.n_docs:,} docs, {first.n_queries:,} queries, "
        f"spec {first.spec!r}"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
