"""The ``slimvec`` command: collections from the shell, and the measuring instrument.

Every subcommand is a thin layer over the Python API; errors slimvec raises on purpose (bad
input, missing collection or data, bad spec) are printed as one red line and exit with code 2.
Heavy modules (datasets, encoders, matplotlib, FAISS) are imported only by the commands that
need them, so ``slimvec --help`` stays instant.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import slimvec
from slimvec.errors import InvalidInputError, SlimvecError
from slimvec.validation import check_int

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="slimvec",
    help="Compressed embedding retrieval: collections, benchmarks and spec advice.\n\n"
    "A collection is a directory; its [bold]spec[/] says how vectors are compressed and "
    "searched, e.g. 'binary*40 > f32' (binary first pass keeping 40k candidates, float32 "
    "rescoring). [bold]slimvec advise[/] finds the cheapest spec for your data.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    add_completion=False,
    pretty_exceptions_enable=False,
)
datasets_app = typer.Typer(
    help="List and build the retrieval sets that bench and advise measure on.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(datasets_app, name="datasets")
upgrade_app = typer.Typer(
    help="Move a collection to a new embedding model while search keeps working: begin, "
    "backfill (resumable), status, finish.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(upgrade_app, name="upgrade")


def _console() -> Console:
    """stdout; wide when not a terminal so tables are not squeezed into 80 columns."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def _fail(message: str, code: int = 2) -> typer.Exit:
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code)


def friendly(fn: F) -> F:
    """Turn slimvec's own exceptions into one red line and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SlimvecError as exc:
            raise _fail(str(exc)) from None

    return wrapper  # type: ignore[return-value]


# -- options shared by bench and advise --------------------------------------------------------
DataOpt = Annotated[
    str,
    typer.Option(
        "--data",
        "-d",
        help="'debian' (built offline, embedded with --model) or a directory with vectors.npy, "
        "queries.npy, qrels.tsv (see slimvec.datasets.load_files)",
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(help="embedding model for built-in datasets (default all-MiniLM-L6-v2)"),
]
SizeOpt = Annotated[int | None, typer.Option(help="number of documents (default: the dataset's)")]
QueriesOpt = Annotated[int | None, typer.Option(help="number of queries (default: all)")]
PrefixOpt = Annotated[str, typer.Option(help="file prefix inside a data directory, e.g. 'minilm_'")]
MetricOpt = Annotated[str, typer.Option(help="cosine or ip")]
ThreadsOpt = Annotated[
    int | None, typer.Option(help="cap BLAS/numba/FAISS threads (shared machines: 1 or 2)")
]
EncodersOpt = Annotated[
    bool,
    typer.Option("--encoders", help="measure encoder operating points (layers x dims), not specs"),
]
LayersOpt = Annotated[
    str | None, typer.Option(help="encoder depths to measure, e.g. 2,3,6 (default: a grid)")
]
DimsOpt = Annotated[
    str | None, typer.Option(help="leading dims to keep, e.g. 128,384 (default: a grid)")
]
CostsOpt = Annotated[
    str | None,
    typer.Option(
        help="how encode/store/search are weighed, e.g. 'docs=1e6,queries=1e6,months=1,"
        "hour=0.08,ram_gb_month=3,disk_gb_month=0.1' (these are the defaults)"
    ),
]


def load_data(
    data: str,
    model: str | None = None,
    size: int | None = None,
    queries: int | None = None,
    prefix: str = "",
):
    """A ``Dataset`` with embeddings from a built-in name or a directory, cut to size."""
    from slimvec.datasets import load

    for name, value in (("--size", size), ("--queries", queries)):
        if value is not None:
            check_int(value, name)
    path = Path(data).expanduser()
    if path.exists():
        kwargs: dict[str, Any] = {"prefix": prefix}
        if model is not None:
            kwargs["model"] = model
        dataset = _subset(load(path, **kwargs), size, queries)
    else:
        kwargs = {"model": model or "all-MiniLM-L6-v2"}
        if size is not None:
            kwargs["size"] = size
        if queries is not None:
            kwargs["queries"] = queries
        dataset = load(data, **kwargs)
    if dataset.docs is None or dataset.queries is None:
        raise InvalidInputError(
            f"{data!r} has no document and query vectors; give a directory with vectors.npy "
            f"and queries.npy, or a built-in dataset with --model"
        )
    return dataset


def _subset(dataset, size: int | None, queries: int | None):
    """The first ``size`` documents and ``queries`` queries (qrels kept; unjudged ones drop)."""
    from slimvec.datasets import Dataset

    n = len(dataset.doc_ids) if size is None else min(size, len(dataset.doc_ids))
    m = len(dataset.query_ids) if queries is None else min(queries, len(dataset.query_ids))
    if n == len(dataset.doc_ids) and m == len(dataset.query_ids):
        return dataset

    def cut(items, count):
        return None if items is None else items[:count]

    return Dataset(
        name=f"{dataset.name}[:{n}]",
        doc_ids=dataset.doc_ids[:n],
        query_ids=dataset.query_ids[:m],
        doc_texts=cut(dataset.doc_texts, n),
        query_texts=cut(dataset.query_texts, m),
        qrels={q: dataset.qrels[q] for q in dataset.query_ids[:m] if q in dataset.qrels},
        docs=cut(dataset.docs, n),
        queries=cut(dataset.queries, m),
        model=dataset.model,
    )


# -- collections ---------------------------------------------------------------------------------
@app.command()
@friendly
def create(
    path: Annotated[Path, typer.Argument(help="directory to create (must be new or empty)")],
    dim: Annotated[int | None, typer.Option(help="vector dimension (or give --encoder)")] = None,
    metric: MetricOpt = "cosine",
    spec: Annotated[str, typer.Option(help="pipeline spec, see `slimvec advise`")] = (
        slimvec.DEFAULT_SPEC
    ),
    encoder: Annotated[
        str | None, typer.Option(help="text model name/path, for adding and searching texts")
    ] = None,
) -> None:
    """Create an empty collection.

    [bold]Example[/]: slimvec create docs.slim --dim 768 --spec "pca:768 | binary:2@192*20 > f32"
    """
    col = slimvec.create(path, dim=dim, metric=metric, spec=spec, encoder=encoder)
    _console().print(
        f"created [bold]{escape(str(path))}[/]: dim {col.dim}, metric {col.metric}, "
        f"spec {escape(col.spec)!r}"
    )
    col.close()


def _read_jsonl(file: Path) -> tuple[list[str], list[int] | None, list[dict] | None]:
    from slimvec.datasets.files import iter_jsonl

    return _text_records(file, iter_jsonl(file))


def _read_parquet(file: Path) -> tuple[list[str], list[int] | None, list[dict] | None]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise InvalidInputError(
            f"reading {file.name} needs pyarrow (pip install pyarrow), or convert it to .jsonl"
        ) from exc
    return _text_records(file, enumerate(pq.read_table(file).to_pylist(), 1))


def _text_records(file: Path, records) -> tuple[list[str], list[int] | None, list[dict] | None]:
    """(texts, ids if every record has an int "id", metadata = the other fields)."""
    texts, ids, metas = [], [], []
    for line_no, record in records:
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise InvalidInputError(
                f'{file}:{line_no} needs a "text" string, e.g. {{"id": 1, "text": "..."}}'
            )
        texts.append(record.pop("text"))
        ids.append(record.get("id"))
        metas.append(record or None)
    if not texts:
        raise InvalidInputError(f"{file} holds no texts")
    int_ids = all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
    if int_ids:
        metas = [{k: v for k, v in (m or {}).items() if k != "id"} or None for m in metas]
    return texts, (ids if int_ids else None), (metas if any(metas) else None)


@app.command()
@friendly
def add(
    path: Annotated[Path, typer.Argument(help="collection directory")],
    file: Annotated[Path, typer.Argument(help=".npy vectors (n, dim), or .jsonl/.parquet texts")],
) -> None:
    """Add vectors (.npy) or texts (.jsonl lines {"id", "text", ...}; needs an encoder).

    [bold]Example[/]: slimvec add docs.slim vectors.npy
    """
    col = slimvec.open(path)
    if not file.is_file():
        raise InvalidInputError(
            f"{file} does not exist; give a .npy of vectors (n, {col.dim}) or a .jsonl/.parquet "
            f"of texts"
        )
    suffix = file.suffix.lower()
    with _console().status(f"adding {file.name} ..."):
        if suffix == ".npy":
            try:
                vectors = np.load(file, allow_pickle=False, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise InvalidInputError(f"{file} is not a readable .npy array ({exc})") from exc
            ids = col.add(vectors)
        elif suffix in (".jsonl", ".parquet"):
            texts, given, metas = (_read_jsonl if suffix == ".jsonl" else _read_parquet)(file)
            ids = col.add_texts(texts, ids=given, metadata=metas)
        else:
            raise InvalidInputError(
                f"{file.name}: unknown file type {suffix or '(none)'}; use .npy vectors or "
                f".jsonl/.parquet texts"
            )
    _console().print(
        f"added {len(ids):,} vectors (ids {ids.min()}..{ids.max()}); {escape(str(path))} now "
        f"holds {len(col):,}"
    )
    col.close()


@app.command()
@friendly
def search(
    path: Annotated[Path, typer.Argument(help="collection directory")],
    query_file: Annotated[
        Path | None, typer.Option("--query-file", "-q", help=".npy of query vectors")
    ] = None,
    text: Annotated[
        list[str] | None, typer.Option("--text", "-t", help="query text (repeatable)")
    ] = None,
    k: Annotated[int, typer.Option("-k", help="results per query")] = 10,
    exact: Annotated[bool, typer.Option(help="float32 brute force, for checking")] = False,
    mode: Annotated[
        str, typer.Option(help="for --text: dense, sparse (BM25) or hybrid (fused)")
    ] = "dense",
    show: Annotated[int, typer.Option(help="queries to print")] = 5,
    where: Annotated[
        str | None,
        typer.Option("--filter", help='metadata filter as JSON, e.g. \'{"year": {"$gte": 2020}}\''),
    ] = None,
    nprobe: Annotated[
        int | None,
        typer.Option(help="IVF lists read per query ('ivf:N' collections; more = higher recall)"),
    ] = None,
) -> None:
    """Top-k ids and scores for query vectors or texts.

    [bold]Example[/]: slimvec search docs.slim --query-file queries.npy -k 5
    [bold]Example[/]: slimvec search docs.slim --text "perl html table" --mode hybrid
    [bold]Example[/]: slimvec search docs.slim --text "diff" --filter '{"section": 1}'
    [bold]Example[/]: slimvec search big.slim --query-file queries.npy --nprobe 64
    """
    if (query_file is None) == (not text):
        raise InvalidInputError("give exactly one of --query-file FILE.npy or --text '...'")
    filter_ = _parse_filter_option(where)
    col = slimvec.open(path)
    if query_file is not None:
        if not query_file.is_file():
            raise InvalidInputError(f"{query_file} does not exist; give a .npy of query vectors")
        try:
            queries = np.load(query_file, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"{query_file} is not a readable .npy array ({exc})") from exc
        res = col.search(queries, k=k, exact=exact, filter=filter_, nprobe=nprobe)
        labels = [f"#{i}" for i in range(len(res.ids))]
    else:
        res = col.search_texts(text, k=k, mode=mode, exact=exact, filter=filter_, nprobe=nprobe)
        labels = list(text)
    console = _console()
    for label, ids, scores in list(zip(labels, res.ids, res.scores))[:show]:
        table = Table(title=f"query {escape(label)}", title_justify="left", header_style="bold")
        table.add_column("rank", justify="right")
        table.add_column("id", justify="right")
        table.add_column("score", justify="right")
        table.add_column("text / metadata", overflow="ellipsis", no_wrap=True, max_width=90)
        valid = ids[ids >= 0]
        texts = col.texts(valid) if len(valid) else []
        metas = col.metadata(valid) if len(valid) else []
        for rank, (i, s, t, m) in enumerate(zip(valid, scores, texts, metas), 1):
            extra = t if t is not None else (json.dumps(m) if m else "")
            table.add_row(str(rank), str(i), f"{s:.4f}", escape(extra.replace("\n", " ")))
        console.print(table)
    if len(res.ids) > show:
        console.print(f"... {len(res.ids) - show} more queries (use --show)")
    if res.explain is not None:
        console.print(f"[dim]filter: {res.explain['plan']} - {escape(res.explain['why'])}[/]")
    col.close()


def _int_list(text: str, option: str, example: str) -> list[int]:
    """Comma-separated positive integers, or a one-line error naming the option."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise InvalidInputError(
            f"{option} must be comma-separated positive integers, e.g. {example} (got {text!r})"
        )
    return values


def _parse_filter_option(text: str | None) -> dict | None:
    """``--filter`` JSON text as a dict (validated later, with the collection's fields)."""
    if text is None:
        return None
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise InvalidInputError(
            f'--filter must be JSON, e.g. --filter \'{{"year": {{"$gte": 2020}}}}\' '
            f"(double quotes inside single quotes); {exc}"
        ) from exc
    return parsed


@app.command()
@friendly
def info(path: Annotated[Path, typer.Argument(help="collection directory")]) -> None:
    """Count, spec and bytes per vector (RAM and disk) of a collection.

    [bold]Example[/]: slimvec info docs.slim
    """
    col = slimvec.open(path)
    table = Table(show_header=False, title=escape(str(path)), title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in col.info().items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        table.add_row(key, escape(str(value)))
    _console().print(table)
    col.close()


@app.command()
@friendly
def compact(path: Annotated[Path, typer.Argument(help="collection directory")]) -> None:
    """Rewrite live vectors into one segment, reclaiming the space of deleted ones.

    [bold]Example[/]: slimvec compact docs.slim
    """
    col = slimvec.open(path)
    before = col.info()["disk_bytes_per_vector"]
    col.compact()
    after = col.info()
    _console().print(
        f"compacted {escape(str(path))}: {after['count']:,} vectors in {after['segments']} "
        f"segment(s); disk {before} -> {after['disk_bytes_per_vector']} bytes/vector"
    )
    col.close()


# -- model upgrades ----------------------------------------------------------------------------
CollectionArg = Annotated[Path, typer.Argument(help="collection directory")]


def _open_upgrade(path: Path) -> tuple[Any, Any]:
    col = slimvec.open(path)
    if col.upgrade is None:
        raise InvalidInputError(
            f"no model upgrade in progress in {str(path)!r}; start one with "
            f"`slimvec upgrade begin {path} MODEL`"
        )
    return col, col.upgrade


def _print_status(path: Path, up: Any) -> None:
    table = Table(show_header=False, title=f"upgrade of {escape(str(path))}", title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in up.describe().items():
        shown = (
            f"{value:.1%}"
            if key == "backfilled"
            else f"{value:.3f}"
            if isinstance(value, float)
            else str(value)
        )
        table.add_row(key.replace("_", " "), escape(shown))
    _console().print(table)


@upgrade_app.command("begin")
@friendly
def upgrade_begin(
    path: CollectionArg,
    model: Annotated[str, typer.Argument(help="the new model: a name or a local path")],
    adapter: Annotated[
        str,
        typer.Option(help="auto, scores, procrustes, linear or mlp (auto picks by held-out fit)"),
    ] = "auto",
    adapter_only: Annotated[
        bool,
        typer.Option(
            "--adapter-only",
            help="search the old documents through the adapter, not the old model (for a "
            "retired old model)",
        ),
    ] = False,
) -> None:
    """Start an upgrade: new documents go to the new model, old ones stay searchable.

    Embeds a 5% sample (200-5,000 documents, and sentences of them as queries) with both models
    and fits the adapters and score calibration; then run [bold]slimvec upgrade backfill[/].

    [bold]Example[/]: slimvec upgrade begin docs.slim multilingual-e5-small-q4
    """
    col = slimvec.open(path)
    up = col.begin_upgrade(model, adapter=adapter, keep_old_encoder=not adapter_only)
    _print_status(path, up)
    col.close()


@upgrade_app.command("backfill")
@friendly
def upgrade_backfill(
    path: CollectionArg,
    batch_size: Annotated[int, typer.Option(help="documents re-embedded per commit")] = 256,
    limit: Annotated[int | None, typer.Option(help="re-embed at most this many now")] = None,
) -> None:
    """Re-embed old documents with the new model (resumable: rerun after an interruption).

    [bold]Example[/]: slimvec upgrade backfill docs.slim --limit 100000
    """
    col, up = _open_upgrade(path)
    moved = up.backfill(batch_size=batch_size, limit=limit, progress=True)
    _console().print(f"moved {moved:,} documents to the new model")
    _print_status(path, up)
    col.close()


@upgrade_app.command("status")
@friendly
def upgrade_status(path: CollectionArg) -> None:
    """How far an upgrade is, and how good its adapter is.

    [bold]Example[/]: slimvec upgrade status docs.slim
    """
    col, up = _open_upgrade(path)
    _print_status(path, up)
    col.close()


@upgrade_app.command("finish")
@friendly
def upgrade_finish(path: CollectionArg) -> None:
    """Make the new model's space the collection (after a complete backfill).

    [bold]Example[/]: slimvec upgrade finish docs.slim
    """
    col, up = _open_upgrade(path)
    done = up.finish()
    _console().print(
        f"{escape(str(path))} now uses {escape(done.encoder.name)}: {len(done):,} documents"
    )
    col.close()


# -- measuring ---------------------------------------------------------------------------------
@app.command()
@friendly
def capacity(
    dim: Annotated[int, typer.Option("--dim", help="embedding dimension to assess")],
    k: Annotated[int, typer.Option("-k", help="relevant documents per query")] = 2,
    docs: Annotated[
        int | None, typer.Option("--docs", help="corpus size to compare with the estimate")
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="small dims only (~20 s)")] = False,
) -> None:
    """Estimate how many documents a --dim embedding can tell apart (LIMIT diagnostic).

    Free-embedding experiment (Weller et al. 2025) at small dims, cubic fit, extrapolated.

    [bold]Example[/]: slimvec capacity --dim 384 --docs 1000000 --quick
    """
    from slimvec.capacity import capacity_command

    capacity_command(dim, k=k, quick=quick, n_docs=docs)


@app.command()
@friendly
def bench(
    data: DataOpt,
    model: ModelOpt = None,
    size: SizeOpt = None,
    queries: QueriesOpt = None,
    prefix: PrefixOpt = "",
    specs: Annotated[
        str | None,
        typer.Option(help="specs separated by ';' (default: a grid for the data's dimension)"),
    ] = None,
    baselines: Annotated[
        bool, typer.Option(help="also run FAISS Flat, BinaryFlat+refine, HNSW-SQ8, IVF-PQ")
    ] = False,
    k: Annotated[str, typer.Option(help="recall@k values, comma-separated")] = "1,10,100",
    out_dir: Annotated[
        Path | None, typer.Option(help="write bench.csv, bench.json and bench.png here")
    ] = None,
    quality: Annotated[
        str, typer.Option(help="plot quality axis: recall@10, ndcg@10, mrr@10, ...")
    ] = "recall@10",
    metric: MetricOpt = "cosine",
    threads: ThreadsOpt = None,
    encoders: EncodersOpt = False,
    layers: LayersOpt = None,
    dims: DimsOpt = None,
    costs: CostsOpt = None,
    nprobe: Annotated[
        str | None,
        typer.Option(
            help="nprobe values for 'ivf:N' specs, comma-separated (default: powers of two "
            "from N/256 to N/2 and the default nprobe)"
        ),
    ] = None,
) -> None:
    """Measure specs on a dataset: recall vs exact float32, nDCG/MRR, bytes, build time, speed.

    The default grid adds 'ivf:N' specs (N ~ sqrt(docs)) when the data is large enough to
    train their lists; each is measured at every nprobe of a sweep (one row each, a
    recall/QPS curve in the PNG).

    With [bold]--encoders[/]: measure encoder operating points instead (first L layers x first
    D dims of each --model, ';'-separated) on the data's texts and qrels: nDCG@10, texts/s,
    bytes/vector, QPS and cost; --out-dir gets encoders.csv/.json/.png.

    [bold]Example[/]: slimvec bench --data debian --size 3000 --baselines --out-dir results
    [bold]Example[/]: slimvec bench --data ./mydata --specs "f32; binary*40 > f32; int8*4 > f32"
    [bold]Example[/]: slimvec bench --data ./mytexts --encoders --layers 2,3,6 --dims 128,384
    """
    if not encoders and (layers or dims or costs):
        raise InvalidInputError("--layers, --dims and --costs need --encoders")
    if encoders:
        bench_encoders(data, model, size, queries, specs, layers, dims, costs, threads, out_dir)
        return
    from slimvec.eval.bench import (
        default_specs,
        ivf_specs,
        print_table,
        run_bench,
        write_csv,
        write_json,
    )

    k_values = _int_list(k, "-k", "1,10,100")
    nprobes = _int_list(nprobe, "--nprobe", "8,16,32") if nprobe is not None else None
    dataset = load_data(data, model, size, queries, prefix)
    n_docs = len(dataset.doc_ids)
    spec_list = (
        [s.strip() for s in specs.split(";") if s.strip()]
        if specs
        else default_specs(dataset.dim, n_docs)
    )
    for spec in spec_list:
        slimvec.parse_spec(spec).check_dim(dataset.dim)
    console = _console()
    console.print(
        f"[bold]{escape(dataset.name)}[/]: {n_docs:,} docs x {dataset.dim} dims, "
        f"{len(dataset.query_ids):,} queries"
        + (f", qrels for {len(dataset.qrels):,}" if dataset.qrels else ", no qrels")
    )
    if not specs:
        console.print(escape(ivf_specs(n_docs)[1]))
    rows = run_bench(
        dataset,
        spec_list,
        k_values=k_values,
        baselines=baselines,
        metric=metric,
        threads=threads,
        nprobes=nprobes,
    )
    untrained = {r.name for r in rows if r.extra.get("spec") and r.extra.get("nprobe") is None}
    for name in sorted(untrained):
        console.print(
            f"[yellow]{escape(name)}[/]: its lists did not train on {n_docs:,} docs (see "
            f"info()['ivf']['train_at']), so its row is a flat scan"
        )
    print_table(rows, console=console)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        written = [write_csv(rows, out_dir / "bench.csv"), write_json(rows, out_dir / "bench.json")]
        try:
            from slimvec.eval.plots import plot_frontiers

            written.append(plot_frontiers(rows, out_dir / "bench.png", quality=quality))
        except ImportError:
            console.print(
                "[yellow]matplotlib is missing: no plot[/] (pip install 'slimvec[bench]')"
            )
        console.print("wrote " + ", ".join(escape(str(p)) for p in written))


@app.command()
@friendly
def advise(
    data: DataOpt,
    model: ModelOpt = None,
    size: SizeOpt = None,
    queries: QueriesOpt = None,
    prefix: PrefixOpt = "",
    target_recall: Annotated[
        float, typer.Option(help="recall@10 vs exact float32 the spec must keep")
    ] = 0.99,
    max_bytes_per_vector: Annotated[
        float | None, typer.Option(help="RAM budget per vector (bytes)")
    ] = None,
    min_qps: Annotated[float | None, typer.Option(help="minimum QPS (batch 100, sample)")] = None,
    sample: Annotated[int, typer.Option(help="documents to evaluate on")] = 10_000,
    sample_queries: Annotated[int, typer.Option(help="queries to evaluate with")] = 200,
    matryoshka: Annotated[
        bool | None,
        typer.Option(
            "--matryoshka/--no-matryoshka",
            help="reduce dims by model prefixes / by PCA (default: detect)",
        ),
    ] = None,
    show_all: Annotated[bool, typer.Option("--all", help="list every candidate")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the advice here")] = None,
    metric: MetricOpt = "cosine",
    threads: ThreadsOpt = None,
    target_ndcg: Annotated[
        float | None,
        typer.Option(
            help="advise an encoder operating point (layers x dims of --model, ';'-separated) "
            "instead of a spec: the cheapest one with this nDCG@10 on the data's texts and qrels"
        ),
    ] = None,
    layers: LayersOpt = None,
    dims: DimsOpt = None,
    spec: Annotated[str, typer.Option(help="with --target-ndcg: the collection spec")] = "f32",
    costs: CostsOpt = None,
    plot: Annotated[
        Path | None, typer.Option(help="with --target-ndcg: write nDCG vs texts/s here (PNG)")
    ] = None,
) -> None:
    """The cheapest spec (RAM bytes/vector) that keeps a recall target on your data.

    With a --sample large enough to train IVF lists (index.ivf.FLAT_ROWS, 20,000) it also
    tries 'ivf:N' specs over an nprobe sweep, and can recommend one with its nprobe when it
    is the cheapest meeting the target and faster than the flat scan it partitions.

    With [bold]--target-ndcg[/]: the cheapest encoder operating point (encode + store + search,
    weighed by --costs) keeping that nDCG@10 on your texts and qrels.

    [bold]Example[/]: slimvec advise --data debian --target-recall 0.99 --max-bytes-per-vector 64
    [bold]Example[/]: slimvec advise --data ./mytexts --target-ndcg 0.9 --layers 2,3,6
    """
    if target_ndcg is None and (layers or dims or costs or plot):
        raise InvalidInputError("--layers, --dims, --costs and --plot need --target-ndcg")
    if target_ndcg is not None:
        advise_encoders(
            data,
            model,
            size,
            queries,
            target_ndcg,
            layers,
            dims,
            spec,
            costs,
            threads,
            json_out,
            plot,
        )
        return
    from slimvec.eval.advise import advice_to_dict
    from slimvec.eval.advise import advise as run_advise

    dataset = load_data(data, model, size, queries, prefix)
    console = _console()
    with console.status(f"evaluating specs on {escape(dataset.name)} ..."):
        advice = run_advise(
            dataset,
            target_recall=target_recall,
            max_bytes_per_vector=max_bytes_per_vector,
            min_qps=min_qps,
            sample=sample,
            n_queries=sample_queries,
            matryoshka=matryoshka,
            metric=metric,
            threads=threads,
        )
    console.print(candidates_table(advice, show_all))
    console.print(escape(advice.summary()))
    if json_out is not None:
        json_out.write_text(json.dumps(advice_to_dict(advice), indent=2) + "\n")
        console.print(f"wrote {escape(str(json_out))}")
    if advice.spec is None:
        raise typer.Exit(1)


def candidates_table(advice, show_all: bool = False) -> Table:
    """Candidates on the RAM/recall or RAM/QPS frontier (or all), the pick starred."""
    from slimvec.eval.bench import pareto_mask

    cands = advice.candidates
    ram = [c.ram_bytes_per_vector for c in cands]
    keep = pareto_mask(ram, [c.recall for c in cands])
    ok = np.array([c.eligible for c in cands])
    if ok.any():
        fast = pareto_mask(np.where(ok, ram, np.inf), [c.qps if c.eligible else 0 for c in cands])
        keep |= fast & ok
    table = Table(
        title=f"candidates ({'all' if show_all else 'frontier'} of {len(cands)})",
        title_justify="left",
        header_style="bold",
    )
    for name, justify in (
        ("", "left"),
        ("spec", "left"),
        (f"recall@{advice.k}", "right"),
        ("RAM B/vec", "right"),
        ("disk B/vec", "right"),
        ("QPS", "right"),
        ("status", "left"),
    ):
        table.add_column(name, justify=justify)
    for c, shown in zip(cands, keep):
        if not (show_all or shown or c is advice.chosen):
            continue
        star = "★" if c is advice.chosen else ""
        style = "bold green" if star else (None if c.eligible else "dim")
        table.add_row(
            star,
            escape(c.label),
            f"{c.recall:.4f}",
            f"{c.ram_bytes_per_vector:,}",
            f"{c.disk_bytes_per_vector:,}",
            f"{c.qps:,.0f}",
            escape(c.excluded or "ok"),
            style=style,
        )
    return table


# -- datasets ----------------------------------------------------------------------------------
@datasets_app.command("list")
@friendly
def datasets_list() -> None:
    """Known datasets and what is already built in the cache.

    [bold]Example[/]: slimvec datasets list
    """
    from slimvec.datasets import list_datasets

    table = Table(header_style="bold")
    for column in ("name", "description", "cached", "embeddings", "location"):
        table.add_column(column, overflow="fold")
    for entry in list_datasets():
        cached = entry.get("cached")
        table.add_row(
            escape(str(entry.get("name"))),
            escape(str(entry.get("description", ""))),
            "-" if cached is None else ("yes" if cached else "no"),
            escape(", ".join(entry.get("embeddings") or []) or "-"),
            escape(str(entry.get("location", ""))),
        )
    _console().print(table)


@datasets_app.command("build")
@friendly
def datasets_build(
    name: Annotated[str, typer.Argument(help="dataset name, e.g. debian")],
    model: ModelOpt = None,
    size: SizeOpt = None,
    queries: QueriesOpt = None,
) -> None:
    """Build (fetch, parse, embed) a dataset into the cache, so bench/advise start at once.

    [bold]Example[/]: slimvec datasets build debian --size 3000 --model all-MiniLM-L6-v2
    """
    dataset = load_data(name, model, size, queries)
    _console().print(
        f"[bold]{escape(dataset.name)}[/]: {len(dataset.doc_ids):,} docs, "
        f"{len(dataset.query_ids):,} queries, dim {dataset.dim}, model {escape(str(dataset.model))}"
        f", qrels for {len(dataset.qrels):,} queries"
    )


# -- server ------------------------------------------------------------------------------------
@app.command()
@friendly
def serve(
    root: Annotated[
        Path, typer.Argument(help="directory holding the collections (one per subdirectory)")
    ],
    host: Annotated[
        str, typer.Option(help="address to bind; non-loopback needs API keys")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    api_key_file: Annotated[
        Path | None,
        typer.Option(help="TOML file of hashed API keys (make one with slimvec apikey)"),
    ] = None,
    workers: Annotated[int, typer.Option(help="worker processes sharing the directory")] = 1,
    insecure: Annotated[
        bool, typer.Option(help="allow a non-loopback address without API keys")
    ] = False,
    max_body_mb: Annotated[int, typer.Option(help="largest request body, MiB")] = 256,
    max_batch: Annotated[int, typer.Option(help="most vectors or texts per add")] = 200_000,
    max_k: Annotated[int, typer.Option(help="largest k a search may ask for")] = 10_000,
    bench_plot: Annotated[
        Path | None, typer.Option(help="PNG for the page (default: newest bench.png under ROOT)")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve the collections under ROOT over HTTP: REST API, web page, Python client.

    Routes follow Qdrant's: PUT /collections/NAME (create), POST .../points (add),
    POST .../search, POST .../points/delete, GET /collections/NAME (info); /docs has them all,
    /metrics is Prometheus, / is a page listing the collections with a search box.
    From Python: [bold]slimvec.connect(url, api_key=...)[/] gives collections with the local API.

    [bold]Example[/]: slimvec serve ./collections --port 8000
    [bold]Example[/]: slimvec apikey keys.toml writer --role read-write && slimvec serve
    ./collections --host 0.0.0.0 --api-key-file keys.toml --workers 2
    """
    import ipaddress

    try:
        from slimvec.server.app import Limits, ServeConfig
        from slimvec.server.app import serve as run_server
        from slimvec.server.auth import KeyFile
    except ImportError as exc:
        raise _fail(
            f"slimvec serve needs the server extra: pip install 'slimvec[server]' ({exc})"
        ) from None
    keys = KeyFile.load(api_key_file) if api_key_file is not None else None
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and (keys is None or len(keys) == 0) and not insecure:
        raise _fail(
            f"refusing to serve {host} without API keys: anyone who can reach it could read and "
            f"write every collection. Pass --api-key-file keys.toml (slimvec apikey makes one), "
            f"or --insecure if the network is trusted"
        )
    if workers < 1:
        raise _fail("--workers must be at least 1")
    root.mkdir(parents=True, exist_ok=True)
    limits = Limits(max_body_bytes=max_body_mb << 20, max_batch=max_batch, max_k=max_k)
    config = ServeConfig(
        root=str(root.resolve()),
        key_file=None if api_key_file is None else str(api_key_file.resolve()),
        bench_plot=None if bench_plot is None else str(bench_plot.resolve()),
        limits={k: getattr(limits, k) for k in ("max_body_bytes", "max_batch", "max_k")},
    )
    run_server(config, host=host, port=port, workers=workers, log_level=log_level)


@app.command()
@friendly
def apikey(
    key_file: Annotated[Path, typer.Argument(help="TOML key file (created if missing)")],
    name: Annotated[str, typer.Argument(help="a name for the key, e.g. ci-reader")],
    role: Annotated[str, typer.Option(help="read-only or read-write")] = "read-only",
    collection: Annotated[
        list[str] | None, typer.Option(help="allow only this collection (repeatable)")
    ] = None,
) -> None:
    """Add an API key for slimvec serve and print it once (only its hash is stored).

    [bold]Example[/]: slimvec apikey keys.toml app --role read-write --collection docs
    """
    from slimvec.server.auth import new_key

    print(new_key(key_file, name, role, collection or None))


# -- encoder operating points (bench --encoders, advise --target-ndcg) --------------------------
def _text_dataset(data: str, size: int | None, queries: int | None):
    """A dataset with texts and qrels (no embedding: the encoders are what is measured)."""
    from slimvec.datasets import load

    for name, value in (("--size", size), ("--queries", queries)):
        if value is not None:
            check_int(value, name)
    path = Path(data).expanduser()
    if path.exists():
        return _subset(load(path), size, queries)
    kwargs = {k: v for k, v in (("size", size), ("queries", queries)) if v is not None}
    return load(data, **kwargs)


def _models(model: str | None) -> list[str]:
    from slimvec.eval.encoders import DEFAULT_MODEL

    names = [m.strip() for m in (model or DEFAULT_MODEL).split(";") if m.strip()]
    if not names:
        raise InvalidInputError("--model names no model; e.g. --model all-MiniLM-L6-v2")
    return names


def _one_spec(specs: str | None) -> str:
    given = [s.strip() for s in (specs or "f32").split(";") if s.strip()] or ["f32"]
    if len(given) > 1:
        raise InvalidInputError(
            f"--encoders measures one spec per run (the collection every point is stored in); "
            f"got {len(given)}: pass one, e.g. --specs 'binary*40 > f32'"
        )
    return given[0]


def encoder_table(points, chosen=None) -> Table:
    """One row per (model, layers, dims): quality, encoding speed, bytes, QPS and cost."""
    table = Table(title="encoder operating points", title_justify="left", header_style="bold")
    for name in (
        "",
        "model",
        "L",
        "D",
        "nDCG@10",
        "recall@10",
        "docs/s",
        "queries/s",
        "RAM B/vec",
        "QPS",
        "encode",
        "store",
        "search",
        "total",
    ):
        table.add_column(name, justify="left" if name in ("", "model") else "right")
    for p in points:
        star = "★" if p is chosen else ""
        table.add_row(
            star,
            escape(Path(p.model).name or p.model),
            str(p.layers),
            str(p.dims),
            f"{p.ndcg10:.4f}",
            f"{p.recall10:.4f}",
            f"{p.doc_texts_per_s:,.1f}",
            f"{p.query_texts_per_s:,.1f}",
            f"{p.ram_bytes_per_vector:,.0f}",
            f"{p.qps:,.0f}",
            *(f"{p.cost[k]:,.2f}" for k in ("encode", "store", "search", "total")),
            style="bold green" if star else None,
        )
    return table


def _measure_encoder_grid(data, model, size, queries, layers, dims, costs, spec, threads):
    """The (layers x dims) grid of ``bench --encoders`` / ``advise --target-ndcg``, measured
    under a status line; returns (console, points, costs)."""
    from slimvec.eval.encoders import Costs, measure_encoders, parse_ints

    dataset = _text_dataset(data, size, queries)
    grid_l, grid_d = parse_ints(layers, "--layers"), parse_ints(dims, "--dims")
    models = _models(model)
    price = Costs.parse(costs)
    console = _console()
    with console.status("measuring encoders ...") as status:
        points = measure_encoders(
            dataset,
            models,
            grid_l,
            grid_d,
            spec,
            threads,
            price,
            progress=lambda label: status.update(escape(label)),
        )
    return console, points, price


def bench_encoders(
    data: str,
    model: str | None,
    size: int | None,
    queries: int | None,
    specs: str | None,
    layers: str | None,
    dims: str | None,
    costs: str | None,
    threads: int | None,
    out_dir: Path | None,
) -> None:
    """``slimvec bench --encoders``: the table, and with ``out_dir`` CSV, JSON and a PNG."""
    import csv

    from slimvec.eval.encoders import plot_encoders

    console, points, price = _measure_encoder_grid(
        data, model, size, queries, layers, dims, costs, _one_spec(specs), threads
    )
    console.print(encoder_table(points))
    console.print(escape(price.describe()))
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        rows = [p.to_dict() for p in points]
        with open(out_dir / "encoders.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        (out_dir / "encoders.json").write_text(json.dumps(rows, indent=1) + "\n")
        written = [out_dir / "encoders.csv", out_dir / "encoders.json"]
        try:
            written.append(plot_encoders(points, out_dir / "encoders.png"))
        except ImportError:
            console.print(
                "[yellow]matplotlib is missing: no plot[/] (pip install 'slimvec[bench]')"
            )
        console.print("wrote " + ", ".join(escape(str(p)) for p in written))


def advise_encoders(
    data: str,
    model: str | None,
    size: int | None,
    queries: int | None,
    target_ndcg: float,
    layers: str | None,
    dims: str | None,
    spec: str,
    costs: str | None,
    threads: int | None,
    json_out: Path | None,
    plot: Path | None,
) -> None:
    """``slimvec advise --target-ndcg``: the grid's table, the pick starred, exit 1 if none."""
    from slimvec.eval.encoders import check_target, choose, plot_encoders

    check_target(target_ndcg)
    console, points, price = _measure_encoder_grid(
        data, model, size, queries, layers, dims, costs, spec, threads
    )
    advice = choose(points, target_ndcg, price)
    console.print(encoder_table(points, advice.chosen))
    console.print(escape(advice.summary()))
    if json_out is not None:
        json_out.write_text(json.dumps(advice.to_dict(), indent=2) + "\n")
        console.print(f"wrote {escape(str(json_out))}")
    if plot is not None:
        console.print(f"wrote {escape(str(plot_encoders(points, plot, advice.chosen)))}")
    if advice.chosen is None:
        raise typer.Exit(1)


if __name__ == "__main__":  # pragma: no cover
    app()
