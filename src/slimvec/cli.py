"""The ``slimvec`` command: collections from the shell, and the measuring instrument.

Every subcommand is a thin layer over the Python API; errors slimvec raises on purpose (bad
input, missing collection or data, bad spec) are printed as one red line and exit with code 2.
Heavy modules (datasets, encoders, matplotlib, FAISS) are imported only by the commands that
need them, so ``slimvec --help`` stays instant.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import slimvec
from slimvec.errors import DuplicateIdError, IdKindError, InvalidInputError, SlimvecError
from slimvec.index.calibrate import GOAL
from slimvec.index.sizing import AUTO_ROWS
from slimvec.multivector.collection import MultiVectorCollection
from slimvec.validation import check_int

F = TypeVar("F", bound=Callable[..., Any])

MULTIVECTOR_SPEC = MultiVectorCollection.default_spec
#: Records per ``get`` call when exporting or checking which ids exist (get caps its limit).
GET_PAGE = 10_000
#: Texts embedded per encoder call by ``add``, so its progress bar moves.
EMBED_PIECE = 1024

app = typer.Typer(
    name="slimvec",
    help="Compressed embedding retrieval: collections, benchmarks and spec advice.\n\n"
    "A collection is a directory; its [bold]spec[/] says how vectors are compressed and "
    f"searched. The default, '{slimvec.DEFAULT_SPEC}', is a first pass over 2-bit RaBitQ "
    "codes in RAM that keeps 40 candidates per result asked for (40 x k for a top-k search), "
    "then float32 rescoring of those candidates. That first pass reads every code until the "
    f"collection holds {AUTO_ROWS:,} vectors; from there ('ivf:auto') the codes are grouped "
    "into about sqrt(n) k-means lists and a query reads only the nearest ones: as many as "
    f"were measured, when the lists were trained, to keep {GOAL} of the top-10. "
    "[bold]slimvec advise[/] finds the cheapest spec for your data.\n\n"
    "Files: [bold]add[/] / [bold]upsert[/] read .npy vectors or .jsonl records "
    '{"id", "text", "metadata", "vector"}; [bold]export[/] writes the same records.',
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


#: The library's advice names Python calls; from the shell the same advice names commands and
#: flags. (pattern, replacement with {path} for the command's collection), applied in order.
CLI_WORDS: list[tuple[str, str]] = [
    (r"slimvec\.create\(path, dim=\.\.\.\)", "`slimvec create {path} --dim N`"),
    (r"slimvec\.create\(path, encoder='([^']+)'\)", r"`slimvec create {path} --encoder \1`"),
    (
        r"slimvec\.create\(path, dim, multivector=True, spec=\.\.\.\)",
        "`slimvec create {path} --dim N --multivector`",
    ),
    (r"slimvec\.create\(\.\.\., ids='str'\)", "`slimvec create PATH --ids str`"),
    (r"open it with slimvec\.open", "see it with `slimvec info {path}`"),
    (
        r"dim must be a positive integer, got None",
        "give --dim N (the vector dimension) or --encoder MODEL",
    ),
    (
        r"use upsert\(\) to replace them, or new ids",
        "rerun with --upsert to replace them or --skip-existing to keep them, or give new ids",
    ),
    (
        r"run backfill\(\) until it returns 0 \(or delete them\)",
        "run `slimvec upgrade backfill {path}` until it moves 0 documents (or `slimvec delete` "
        "them)",
    ),
    (r"start one with begin_upgrade", "start one with `slimvec upgrade begin {path} MODEL`"),
    (
        r"backfill\(\) and finish_upgrade\(\) it first",
        "finish it first: `slimvec upgrade backfill {path}`, then `slimvec upgrade finish {path}`",
    ),
    (
        r"add texts with add_texts\(\.\.\.\) or add\(vectors, texts=\.\.\.\)",
        'add records with texts: `slimvec add {path} docs.jsonl` (lines {"id", "text"})',
    ),
    (r"delete the ids, then add_texts", "`slimvec delete` the ids, then `slimvec add`"),
    (r"info\(\)\['id_kind'\]", "`slimvec info {path}` shows id_kind"),
    (r"pass str ids \(e\.g\. str\(i\)\)", "write ids as JSON strings"),
]


def cli_words(message: str, path: Any = None) -> str:
    """``message`` with the library's Python advice (``slimvec.create(...)``, ``backfill()``)
    said as the shell command and flags that do the same."""
    import re
    import shlex

    where = shlex.quote(str(path)) if path is not None else "PATH"
    where = where.replace("\\", "\\\\")  # a replacement template: backslashes are escapes
    for pattern, replacement in CLI_WORDS:
        message = re.sub(pattern, replacement.replace("{path}", where), message)
    return message


def friendly(fn: F) -> F:
    """Turn slimvec's own exceptions into one red line and exit code 2 (no traceback), with
    the library's advice in command-line words."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SlimvecError as exc:
            raise _fail(cli_words(str(exc), kwargs.get("path"))) from None

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
PathArg = Annotated[Path, typer.Argument(help="collection directory")]
FilterOpt = Annotated[
    str | None,
    typer.Option("--filter", help='metadata filter as JSON, e.g. \'{"year": {"$gte": 2020}}\''),
]


@app.command()
@friendly
def create(
    path: Annotated[Path, typer.Argument(help="directory to create (must be new or empty)")],
    dim: Annotated[int | None, typer.Option(help="vector dimension (or give --encoder)")] = None,
    metric: MetricOpt = "cosine",
    spec: Annotated[
        str | None,
        typer.Option(
            help=f"pipeline spec, see `slimvec advise` (default {slimvec.DEFAULT_SPEC!r}; "
            f"multi-vector: {MULTIVECTOR_SPEC!r})"
        ),
    ] = None,
    encoder: Annotated[
        str | None, typer.Option(help="text model name/path, for adding and searching texts")
    ] = None,
    ids: Annotated[
        str,
        typer.Option(
            "--ids",
            help="id kind: int (64-bit integers, assigned when not given) or str (string ids "
            "such as paths or UUIDs)",
        ),
    ] = "int",
    multivector: Annotated[
        bool,
        typer.Option(
            "--multivector",
            help="a collection of token sets (ColBERT-style): MUVERA first pass, exact MaxSim",
        ),
    ] = False,
    pool_factor: Annotated[
        int | None,
        typer.Option(help="with --multivector: keep 1/F of each document's tokens (e.g. 2)"),
    ] = None,
) -> None:
    """Create an empty collection.

    [bold]Example[/]: slimvec create docs.slim --dim 768 --spec "pca:768 | binary:2@192*20 > f32"
    [bold]Example[/]: slimvec create notes.slim --encoder all-MiniLM-L6-v2 --ids str
    [bold]Example[/]: slimvec create colbert.slim --encoder all-MiniLM-L6-v2 --multivector
    """
    if dim is None and encoder is None:
        raise InvalidInputError(
            "give --dim N (the vector dimension) or --encoder MODEL (its dimension is used), "
            f"e.g. slimvec create {path} --encoder all-MiniLM-L6-v2"
        )
    if ids not in ("int", "str"):
        raise InvalidInputError(f"--ids must be int or str, got {ids!r}")
    if pool_factor is not None and not multivector:
        raise InvalidInputError("--pool-factor applies to --multivector collections only")
    options: dict[str, Any] = {} if pool_factor is None else {"pool_factor": pool_factor}
    if multivector and ids == "str":
        raise InvalidInputError(
            "--multivector collections take int ids only for now: drop --ids str and keep "
            'each key in the metadata, e.g. {"text": "...", "metadata": {"key": "doc-1"}}, '
            'found again with --filter \'{"key": "doc-1"}\''
        )
    col = slimvec.create(
        path,
        dim=dim,
        metric=metric,
        spec=spec or slimvec.DEFAULT_SPEC,
        encoder=encoder,
        multivector=multivector,
        ids=ids,
        **options,
    )
    kind = "multi-vector, " if multivector else ""
    _console().print(
        f"created [bold]{escape(str(path))}[/]: {kind}dim {col.dim}, metric {col.metric}, "
        f"spec {escape(col.spec)!r}, {col.id_kind} ids"
    )
    col.close()


def _is_multivector(col: Any) -> bool:
    return isinstance(col, MultiVectorCollection)


def _read_npy(file: Path) -> np.ndarray:
    try:
        return np.load(file, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{file} is not a readable .npy array ({exc})") from exc


def _check_input_file(file: Path, col: Any) -> str:
    """The file's suffix once it is known to exist and be a kind ``add`` reads."""
    from slimvec.datasets.records import SUFFIXES

    if not file.is_file():
        raise InvalidInputError(
            f"{file} does not exist; give a .npy of vectors (n, {col.dim}) or a .jsonl/.parquet "
            f'of records {{"id", "text", "metadata", "vector"}}'
        )
    suffix = file.suffix.lower()
    if suffix != ".npy" and suffix not in SUFFIXES:
        raise InvalidInputError(
            f"{file.name}: unknown file type {suffix or '(none)'}; use .npy vectors or "
            f".jsonl/.parquet records"
        )
    return suffix


def _shown_ids(ids: Any) -> str:
    """'ids 0..299' for integers (lowest..highest), the first and last for strings."""
    ids = np.asarray(ids)
    if not len(ids):
        return "no ids"
    if ids.dtype.kind in "iu":
        return f"ids {ids.min()}..{ids.max()}"
    return f"ids {ids[0]!r}" if len(ids) == 1 else f"ids {ids[0]!r}..{ids[-1]!r}"


def _live_among(col: Any, ids: list[Any]) -> set[Any]:
    """Which of ``ids`` the collection holds (a page at a time: ``get`` caps its limit)."""
    found: set[Any] = set()
    for start in range(0, len(ids), GET_PAGE):
        page = ids[start : start + GET_PAGE]
        found.update(col.get(page, limit=None, vectors=False).ids.tolist())
    return found


def _embed_records(col: Any, records: Any, bar: Any) -> Any:
    """The records' vectors: as given, or their texts embedded by the collection's encoder
    (token sets in a multi-vector collection), in pieces so ``bar`` moves."""
    if records.vectors is not None:
        bar.update(len(records))
        return records.vectors if _is_multivector(col) else np.stack(records.vectors)
    encoder = col.encoder
    texts = records.texts
    parts: list[Any] = []
    for start in range(0, len(texts), EMBED_PIECE):
        piece = texts[start : start + EMBED_PIECE]
        if _is_multivector(col):
            parts += encoder.encode_tokens(piece, kind="doc", progress=False)
        else:
            parts.append(encoder.encode(piece, kind="doc", progress=False))
        bar.update(len(piece))
    return parts if _is_multivector(col) else np.concatenate(parts)


def _write_records(col: Any, records: Any, mode: str, bar: Any) -> Any:
    """Store one batch of records (``mode``: add or upsert); returns the ids stored."""
    if isinstance(col, slimvec.UpgradingCollection):  # it routes texts (no upsert yet)
        bar.update(len(records))
        return col.add_texts(records.texts, ids=records.ids, metadata=records.metadata_or_none())
    vectors = _embed_records(col, records, bar)
    args = {"metadata": records.metadata_or_none(), "texts": records.texts_or_none()}
    if mode == "upsert":
        return col.upsert(vectors, ids=records.ids, **args)
    return col.add(vectors, ids=records.ids, **args)


def _existing(col: Any, records: Any, mode: str) -> tuple[Any, int]:
    """Check the file's ids against the collection once, before anything is embedded or
    written: ``add`` refuses ids already stored, ``skip-existing`` drops their records.
    Returns (records to write, how many of the file's ids are stored)."""
    if isinstance(col, slimvec.UpgradingCollection):
        if mode != "add" or records.vectors is not None:
            raise InvalidInputError(
                "during a model upgrade `slimvec add` takes text records without --upsert or "
                "--skip-existing; finish the upgrade first (`slimvec upgrade backfill`, "
                "`slimvec upgrade finish`)"
            )
        return records, 0  # the collection refuses stored ids itself
    if records.ids is None:
        return records, 0
    live = _live_among(col, records.ids)
    if live and mode == "add":
        shown = [i for i in records.ids if i in live][:5]
        raise DuplicateIdError(
            f"{len(live):,} ids of {records.source.name} are already in the collection (e.g. "
            f"{', '.join(map(repr, shown))}): rerun with --upsert to replace them or "
            f"--skip-existing to keep them; nothing was added"
        )
    if live and mode == "skip-existing":
        records = records.take(i for i, x in enumerate(records.ids) if x not in live)
    return records, len(live)


def _add_file(path: Path, file: Path, mode: str, batch: int) -> None:
    """The body of ``add`` and ``upsert``: read and check the whole file, then store
    ``batch`` records per commit under one progress bar."""
    from tqdm.auto import tqdm

    from slimvec.datasets.records import read_records
    from slimvec.encoders.base import PROGRESS_MIN_TEXTS

    batch = check_int(batch, "--batch-size")
    col = slimvec.open(path)
    suffix = _check_input_file(file, col)
    if suffix == ".npy":
        if mode != "add":
            raise InvalidInputError(
                "--upsert and --skip-existing match records by id, and a .npy holds no ids: "
                'use a .jsonl of {"id": ..., "vector": [...]} records'
            )
        if _is_multivector(col):
            raise InvalidInputError(
                f"{path} is a multi-vector collection: give a .jsonl whose records have texts "
                f'or a "vector" list of token vectors'
            )
        ids = col.add(_read_npy(file), progress=True)  # memory-mapped: streamed from disk
        _console().print(
            f"added {len(ids):,} vectors ({_shown_ids(ids)}); {escape(str(path))} now holds "
            f"{len(col):,}"
        )
        _close_after_training(col)
        return
    records = read_records(file, col.id_kind, col.dim, multivector=_is_multivector(col))
    if records.vectors is None:
        col.encoder  # noqa: B018 - no encoder: the error now, before any work
    if mode == "upsert" and records.ids is None:
        raise InvalidInputError(
            f'upsert replaces records by id: every record of {file.name} needs an "id"'
        )
    before, in_file = len(col), len(records)
    records, stored_before = _existing(col, records, mode)
    stored = [np.empty(0, np.int64 if col.id_kind == "int" else object)]
    with tqdm(
        total=len(records),
        desc=f"{mode} {file.name}",
        unit="doc",
        disable=records.vectors is not None or len(records) < PROGRESS_MIN_TEXTS,
    ) as bar:
        for start in range(0, len(records), batch):
            part = records.take(range(start, min(start + batch, len(records))))
            stored.append(np.asarray(_write_records(col, part, mode, bar)))
    ids = np.concatenate(stored)
    verb = "upserted" if mode == "upsert" else "added"
    what = "vectors" if records.vectors is not None else "documents"
    details = [_shown_ids(ids)] if len(ids) else []
    if mode == "upsert":
        details.append(f"{stored_before:,} replaced, {len(ids) - stored_before:,} new")
    if mode == "skip-existing":
        details.append(f"{in_file - len(ids):,} already present, skipped")
    _console().print(
        f"{verb} {len(ids):,} {what} ({'; '.join(details)}); {escape(str(path))} now holds "
        f"{len(col):,} (was {before:,})"
    )
    _close_after_training(col)


def _close_after_training(col: Any) -> None:
    """Close, saying so first when an IVF training runs in the background: closing waits
    for its lists to commit (searches work meanwhile and after an interruption)."""
    if not col.wait_for_index(timeout=0):  # a training is running
        _console().print(
            "training the IVF lists in the background; waiting for them to commit "
            "(Ctrl-C leaves the collection searchable as it is: its next write trains again)"
        )
    col.close()


BatchOpt = Annotated[
    int,
    typer.Option(
        help="records embedded and committed together; an interrupted run keeps the batches "
        "it committed (rerun with --skip-existing or --upsert)"
    ),
]


@app.command()
@friendly
def add(
    path: PathArg,
    file: Annotated[Path, typer.Argument(help=".npy vectors (n, dim), or .jsonl/.parquet records")],
    upsert: Annotated[
        bool, typer.Option("--upsert", help="replace the records whose ids exist (add the rest)")
    ] = False,
    skip_existing: Annotated[
        bool,
        typer.Option(
            "--skip-existing",
            help="keep the records whose ids exist, add the rest (resumes an interrupted add "
            "without embedding again what is stored)",
        ),
    ] = False,
    batch_size: BatchOpt = 10_000,
) -> None:
    """Add vectors (.npy) or records (.jsonl/.parquet, one per line: {"id", "text",
    "metadata", "vector"}).

    Records keep their "id" (an integer, or a string in an --ids str collection); without ids
    they are assigned. "text" is embedded by the collection's encoder unless the record has a
    "vector"; other fields are metadata. Ids already stored are an error unless --upsert
    (replace) or --skip-existing (keep) says what to do, so running an ingest again is safe.

    [bold]Example[/]: slimvec add docs.slim vectors.npy
    [bold]Example[/]: slimvec add notes.slim notes.jsonl --upsert
    """
    if upsert and skip_existing:
        raise InvalidInputError("give --upsert (replace existing ids) or --skip-existing, not both")
    mode = "upsert" if upsert else "skip-existing" if skip_existing else "add"
    _add_file(path, file, mode, batch_size)


@app.command("upsert")
@friendly
def upsert_command(
    path: PathArg,
    file: Annotated[Path, typer.Argument(help=".jsonl/.parquet records, each with an id")],
    batch_size: BatchOpt = 10_000,
) -> None:
    """Add records, replacing those whose ids exist (vector, text and metadata); the same as
    [bold]slimvec add --upsert[/].

    [bold]Example[/]: slimvec upsert notes.slim changed.jsonl
    """
    _add_file(path, file, "upsert", batch_size)


def _cli_ids(col: Any, given: list[str]) -> list[Any]:
    """Ids typed on the command line, as the collection's kind (integers parsed)."""
    if col.id_kind == "str":
        return list(given)
    out = []
    for text in given:
        try:
            out.append(int(text))
        except ValueError:
            raise IdKindError(
                f"{col.path} has integer ids, got {text!r}; string ids need a collection made "
                f"with `slimvec create PATH --ids str`"
            ) from None
    return out


@app.command()
@friendly
def get(
    path: PathArg,
    ids: Annotated[list[str] | None, typer.Argument(help="ids to show (default: all)")] = None,
    where: FilterOpt = None,
    limit: Annotated[
        int, typer.Option(help="most records to print (ids given: all of them)")
    ] = 100,
    offset: Annotated[int, typer.Option(help="records to skip first")] = 0,
    vectors: Annotated[bool, typer.Option("--vectors", help="include the stored vectors")] = False,
) -> None:
    """Print records as JSON lines (the shape add reads): by id, by --filter, or all.

    Ids come out in the order asked; an id not in the collection is named on stderr and the
    exit code is 1.

    [bold]Example[/]: slimvec get notes.slim doc-1 doc-2
    [bold]Example[/]: slimvec get docs.slim --filter '{"year": 2024}' --limit 10
    """
    from slimvec.datasets.records import record_lines

    col = slimvec.open(path)
    if vectors and _is_multivector(col):
        raise InvalidInputError(
            "--vectors: a multi-vector collection's token vectors are not exported"
        )
    filter_ = _parse_filter_option(where)
    wanted = _cli_ids(col, ids) if ids else None
    limit_ = None if wanted is not None and where is None else limit  # every id asked for
    res = col.get(wanted, filter=filter_, limit=limit_, offset=offset, vectors=vectors)
    order = range(len(res.ids))
    if wanted is not None:  # the order asked, whatever order storage gives
        position = {i: n for n, i in enumerate(res.ids.tolist())}
        order = [position[i] for i in dict.fromkeys(wanted) if i in position]
    lines = record_lines(
        [res.ids[n] for n in order],
        [res.texts[n] for n in order],
        [res.metadata[n] for n in order],
        None if res.vectors is None else res.vectors[list(order)],
    )
    for line in lines:
        typer.echo(line)
    col.close()
    if wanted is not None:
        missing = [i for i in dict.fromkeys(wanted) if i not in set(res.ids.tolist())]
        if missing and filter_ is None:
            shown = ", ".join(map(repr, missing[:10])) + (" ..." if len(missing) > 10 else "")
            Console(stderr=True, soft_wrap=True).print(
                f"[yellow]not found:[/] {escape(shown)} ({len(missing)} of {len(wanted)} ids)"
            )
            raise typer.Exit(1)


@app.command()
@friendly
def count(path: PathArg, where: FilterOpt = None) -> None:
    """Print how many documents the collection holds, or how many match --filter.

    [bold]Example[/]: slimvec count docs.slim --filter '{"lang": "en"}'
    """
    col = slimvec.open(path)
    typer.echo(col.count(_parse_filter_option(where)))
    col.close()


@app.command()
@friendly
def delete(
    path: PathArg,
    ids: Annotated[list[str] | None, typer.Argument(help="ids to delete")] = None,
    where: FilterOpt = None,
) -> None:
    """Delete documents by id or by --filter, in one commit (compact reclaims the space).

    [bold]Example[/]: slimvec delete notes.slim doc-1 doc-2
    [bold]Example[/]: slimvec delete docs.slim --filter '{"year": {"$lt": 2000}}'
    """
    if bool(ids) == (where is not None):
        raise InvalidInputError("give the ids to delete or --filter JSON (one of them)")
    col = slimvec.open(path)
    if ids:
        deleted = col.delete(_cli_ids(col, ids))
    else:
        deleted = col.delete(filter=_parse_filter_option(where))
    _console().print(f"deleted {deleted:,}; {escape(str(path))} now holds {len(col):,}")
    col.close()


@app.command()
@friendly
def export(
    path: PathArg,
    out: Annotated[
        Path | None, typer.Argument(help="file to write (.jsonl); default: standard output")
    ] = None,
    where: FilterOpt = None,
    vectors: Annotated[
        bool | None,
        typer.Option(
            "--vectors/--no-vectors",
            help="write each record's stored vector (default: when the collection has no "
            "encoder, whose documents came in as vectors)",
        ),
    ] = None,
) -> None:
    """Write every record (or those matching --filter) as JSON lines that add reads back:
    {"id", "text", "metadata", "vector"}.

    Vectors are written by default only for collections without an encoder: a collection
    with one re-embeds its texts on add (same model, same vectors), so its file stays small.
    Stored vectors are as searched (unit length in cosine collections).

    [bold]Example[/]: slimvec export notes.slim notes.jsonl && slimvec add copy.slim notes.jsonl
    """
    from slimvec.datasets.records import write_records

    col = slimvec.open(path)
    has_encoder = col.info().get("encoder") is not None
    if vectors is None:
        vectors = not has_encoder and not _is_multivector(col)
    if vectors and _is_multivector(col):
        raise InvalidInputError(
            "--vectors: a multi-vector collection's token vectors are not exported; export "
            "its texts (--no-vectors) and add them to a collection with the same encoder"
        )
    filter_ = _parse_filter_option(where)
    total = col.count(filter_)
    written = 0
    stream = open(out, "w", encoding="utf-8") if out is not None else None  # noqa: SIM115
    try:
        sink = stream if stream is not None else sys.stdout
        while written < total:
            page = col.get(filter=filter_, limit=GET_PAGE, offset=written, vectors=vectors)
            if not len(page.ids):
                break
            written += write_records(sink, page.ids, page.texts, page.metadata, page.vectors)
        sink.flush()
    finally:
        if stream is not None:
            stream.close()
    note = "" if vectors else " (no vectors: add re-embeds the texts)"
    message = f"exported {written:,} records of {escape(str(path))}{note}"
    if out is not None:
        _console().print(f"{message} to {escape(str(out))}")
    else:
        Console(stderr=True).print(message)
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
        found = ids != None if ids.dtype == object else ids >= 0  # noqa: E711 - elementwise
        valid = ids[found]  # padding (-1, or None for string ids) left out
        texts = col.texts(valid) if len(valid) else []
        metas = col.metadata(valid) if len(valid) else []
        for rank, (i, s, t, m) in enumerate(zip(valid, scores, texts, metas), 1):
            extra = t if t is not None else (json.dumps(m) if m else "")
            table.add_row(str(rank), escape(str(i)), f"{s:.4f}", escape(extra.replace("\n", " ")))
        console.print(table)
    if len(res.ids) > show:
        console.print(f"... {len(res.ids) - show} more queries (use --show)")
    if res.explain is not None:
        console.print(f"[dim]plan: {res.explain['plan']} - {escape(res.explain['why'])}[/]")
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
def info(
    path: PathArg,
    json_out: Annotated[
        bool, typer.Option("--json", help="print info() as JSON (every field, in full)")
    ] = False,
) -> None:
    """Count, spec and bytes per vector (RAM and disk) of a collection.

    [bold]Example[/]: slimvec info docs.slim
    """
    col = slimvec.open(path)
    details = col.info()
    col.close()
    if json_out:
        typer.echo(json.dumps(details, indent=2, default=str))
        return
    table = Table(show_header=False, title=escape(str(path)), title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in info_rows(details, _disk_total(path)):
        table.add_row(key, escape(value))
    _console().print(table)


def info_rows(details: dict[str, Any], disk_bytes: int | None = None) -> list[tuple[str, str]]:
    """``info()`` as (field, text) rows for people: the calibration said in words, IVF list
    sizes summarised (count, min/mean/max, imbalance; ``--json`` has every size), disk as a
    total beside the per-vector figure."""
    rows = []
    for key, value in details.items():
        if key == "calibration" and isinstance(value, dict):
            text = _calibration_text(value)
        elif key == "ivf" and isinstance(value, dict):
            text = _ivf_text(value)
        elif key == "quality" and isinstance(value, dict):
            text = _quality_text(value)
        elif key == "encoder" and isinstance(value, dict):
            text = (
                f"{value.get('name')} ({value.get('dim')}-d, fingerprint "
                f"{value.get('fingerprint')})"
            )
        elif key == "disk_bytes_per_vector" and disk_bytes is not None:
            rows.append(("disk_bytes", f"{disk_bytes:,} ({_size(disk_bytes)})"))
            text = _per_vector_disk(value, details.get("count", 0) + details.get("deleted", 0))
        elif isinstance(value, dict):
            text = ", ".join(f"{k}: {v}" for k, v in value.items())
        else:
            text = str(value)
        rows.append((key, text))
    return rows


def _quality_text(quality: dict[str, Any]) -> str:
    plans = [
        f"{kind} {p['estimate']:.3f} ({p['interval'][0]:.3f}-{p['interval'][1]:.3f}, "
        f"n={p['samples']})"
        for kind, p in quality["plans"].items()
        if p["estimate"] is not None
    ]
    target = quality["target_recall"]
    text = "; ".join(plans) or "not measured yet"
    return text + (f"; target {target}" if target is not None else "") + " (slimvec quality)"


def _calibration_text(cal: dict[str, Any]) -> str:
    """The calibration state; ``refit_at`` only once there is a fit to refit (before the
    first fit the rows are searched exactly, and the note says when the fit happens)."""
    if cal.get("note"):
        return str(cal["note"])
    text = f"fitted on {cal.get('fitted_on', 0):,} rows"
    refit = cal.get("refit_at")
    return text + (f"; refitted at {refit:,} rows" if refit else "; final (no more refits)")


def _ivf_text(ivf: dict[str, Any]) -> str:
    parts = [f"{ivf.get('state', '?')}", f"nlist {ivf.get('nlist')}"]
    if "default_nprobe" in ivf:
        parts.append(f"default nprobe {ivf['default_nprobe']}")
    sizes = ivf.get("list_sizes")
    if isinstance(sizes, dict):
        parts.append(
            f"list sizes min {sizes.get('min'):,} / mean {sizes.get('mean'):,} / max "
            f"{sizes.get('max'):,}, imbalance {sizes.get('imbalance')} (largest / mean), "
            f"{sizes.get('empty', 0)} empty"
        )
    for key in ("trained_on", "retrain_at", "train_at", "log_rows_scanned_flat"):
        if key in ivf:
            parts.append(f"{key.replace('_', ' ')} {ivf[key]:,}")
    if ivf.get("note"):
        parts.append(str(ivf["note"]))
    return "; ".join(parts)


#: Below this many rows a collection's disk is mostly fixed files (manifest, calibration
#: state, metadata database, keyword index), so bytes per vector says little about its codes.
PER_VECTOR_MIN_ROWS = 1_000


def _per_vector_disk(value: Any, rows: int) -> str:
    if value is None:
        return "None"
    if rows < PER_VECTOR_MIN_ROWS:
        return f"{value:,} (mostly fixed files at {rows:,} rows; see disk_bytes)"
    return f"{value:,}"


def _disk_total(path: Path) -> int | None:
    """Bytes of every file under the collection directory (None if it cannot be read)."""
    import os

    total = 0
    try:
        for root, _, files in os.walk(path):
            for name in files:
                try:
                    total += os.stat(os.path.join(root, name)).st_size
                except FileNotFoundError:  # swept by another process meanwhile
                    continue
    except OSError:
        return None
    return total


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TB"  # pragma: no cover


@app.command("quality")
@friendly
def quality_command(
    path: PathArg,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="write a PNG of recall over time here")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print info()['quality']")] = False,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="set the recall@k the collection holds, a number in (0, 1] (committed with "
            "it: every process searching it turns its speed knobs to keep it); 'none' clears "
            "it (only measure)",
        ),
    ] = None,
) -> None:
    """Live recall: recall@k measured on a sample of the searches the collection answered,
    per plan kind, with its 95 % interval, the target it holds and the adjustments made.
    With --target, first set the target (col.set_target_recall).

    [bold]Example[/]: slimvec quality docs.slim --plot recall.png; slimvec quality docs.slim
    --target 0.95
    """
    col = slimvec.open(path)
    try:
        if target is not None:
            col.set_target_recall(_target_value(target))
        report = col.live_recall()
        history = col.quality.history() if hasattr(col, "quality") else {}
    finally:
        col.close()
    if json_out:
        typer.echo(json.dumps(report, indent=2))
        return
    console = _console()
    target = report["target_recall"]
    table = Table(title=f"live recall of {escape(str(path))}", title_justify="left")
    for column in ("plan", "recall@k", "95 % interval", "samples", "setting", "last change"):
        table.add_column(column)
    for kind, plan in report["plans"].items():
        setting = plan.get("setting") or {}  # a combined report (an upgrade's) has none
        shown = "exact" if setting.get("exact") else f"x{setting['scale']:g}" if setting else "-"
        of = f" of {plan['window']:,}" if "window" in plan else ""
        estimate = "-" if plan["estimate"] is None else f"{plan['estimate']:.3f}"
        if plan["below_target"]:
            estimate = f"[red]{estimate}[/]"
        table.add_row(
            kind, estimate, "{:.3f} - {:.3f}".format(*plan["interval"]),
            f"{plan['samples']:,}{of} ({plan['total_samples']:,} in all)",
            shown, _when(plan["last_change"]),
        )  # fmt: skip
    console.print(table)
    if not report["plans"]:
        console.print(
            "no searches measured yet: a share of queries is sampled as they run (exact "
            "plans are not: their recall is 1)"
        )
    sampling = (
        f"; sampling {report['rate']:.1%}; dropped {report['dropped']:,} (a commit between)"
        if "rate" in report
        else ""
    )
    console.print(
        f"target: {target if target is not None else 'none (--target to hold one)'}{sampling}"
    )
    for adjustment in report["adjustments"][-10:]:
        console.print(
            f"  {_when(adjustment['time'])} {adjustment['plan']}: step "
            f"{adjustment['from']['step']} -> {adjustment['to']['step']} "
            f"({escape(adjustment['why'])})"
        )
    if plot is not None:
        from slimvec.eval.plots import plot_recall

        console.print(f"wrote {escape(str(plot_recall(history, report, plot)))}")


def _target_value(text: str) -> Any:
    """``--target``: None for 'none', else the number; other text is passed on for
    ``set_target_recall`` to refuse with the library's message."""
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _when(stamp: float | None) -> str:
    import time

    return "-" if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


@app.command("check")
@friendly
def check_command(
    path: PathArg,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="salvage a damaged write-ahead log: every valid record into a new log; "
            "the damaged file is kept beside it and the lost byte spans are printed",
        ),
    ] = False,
) -> None:
    """Read every file of a collection and report damage (exit code 1 if any).

    Opening a collection verifies what it reads into memory; this also reads the
    memory-mapped arrays whole against their checksums, the SQLite database, the fitted state
    and the write-ahead log, then opens the collection and asks it a question.

    [bold]Example[/]: slimvec check docs.slim
    """
    from slimvec.check import check

    report = check(path, repair=repair)
    console = _console()
    console.print(f"checked {len(report.checked)} files of {escape(report.path)}")
    for line in report.repaired:
        console.print(f"[yellow]repaired[/] {escape(line)}")
    for line in report.problems:
        console.print(f"[red]damaged[/] {escape(line)}")
    if not report.ok:
        raise typer.Exit(1)
    console.print("[green]ok[/]")


@app.command()
@friendly
def compact(path: PathArg) -> None:
    """Rewrite live vectors into one segment, reclaiming the space of deleted ones.

    [bold]Example[/]: slimvec compact docs.slim
    """
    col = slimvec.open(path)
    before = _disk_total(path)
    col.compact()
    after = col.info()
    col.close()
    disk = _disk_total(path)
    message = (
        f"compacted {escape(str(path))}: {after['count']:,} vectors in {after['segments']} "
        f"segment(s); disk {_size(before or 0)} -> {_size(disk or 0)}"
    )
    if after["count"] >= PER_VECTOR_MIN_ROWS:
        message += f" ({after['disk_bytes_per_vector']:,} bytes/vector)"
    elif disk is not None and before is not None and disk > before:
        message += (
            f" (a segment's fixed files - calibration state, metadata database, keyword index "
            f"- outweigh {after['count']:,} vectors; they are paid once per collection)"
        )
    _console().print(message)


# -- model upgrades ----------------------------------------------------------------------------
CollectionArg = Annotated[Path, typer.Argument(help="collection directory")]


def _open_upgrade(path: Path) -> tuple[Any, Any]:
    col = slimvec.open(path)
    if not isinstance(col, slimvec.UpgradingCollection):
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
    col = slimvec.open(path).begin_upgrade(
        model, adapter=adapter, keep_old_encoder=not adapter_only
    )
    _print_status(path, col.upgrade)
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
    col, _ = _open_upgrade(path)
    done = col.finish_upgrade()
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

    With a --sample large enough to train IVF lists (index.sizing.FLAT_ROWS, 20,000) it also
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
    create: Annotated[
        bool, typer.Option("--create", help="make ROOT if it does not exist (a typo otherwise)")
    ] = False,
    models: Annotated[
        str | None,
        typer.Option(
            help="models a create may name as its encoder, comma-separated (none by default)"
        ),
    ] = None,
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
    if not root.is_dir():
        if root.exists() or not create:
            raise _fail(
                f"{root} is not a directory; give the directory holding the collections, or "
                f"--create to make a new, empty one"
            )
        root.mkdir(parents=True)
    limits = Limits(max_body_bytes=max_body_mb << 20, max_batch=max_batch, max_k=max_k)
    config = ServeConfig(
        root=str(root.resolve()),
        key_file=None if api_key_file is None else str(api_key_file.resolve()),
        bench_plot=None if bench_plot is None else str(bench_plot.resolve()),
        limits={k: getattr(limits, k) for k in ("max_body_bytes", "max_batch", "max_k")},
        models=[m.strip() for m in (models or "").split(",") if m.strip()],
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

    key = new_key(key_file, name, role, collection or None)
    scope = ", ".join(collection) if collection else "every collection"
    Console(stderr=True, soft_wrap=True).print(
        f"[bold]new {escape(role)} key {escape(name)!r}[/] for {escape(scope)}, added to "
        f"{escape(str(key_file))} as a hash. [bold yellow]It is shown only this once[/]: copy it "
        f"now (clients send it in the api-key header); to replace a lost key, add a new one."
    )
    print(key)  # alone on stdout, so KEY=$(slimvec apikey ...) captures just the key


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
