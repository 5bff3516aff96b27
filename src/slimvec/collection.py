"""A collection: a directory of compressed vectors answering top-k queries through a funnel.

Layout::

    MANIFEST.json         commit point (format, spec, segments, tombstones), replaced atomically
    log-<gen>.wal         write-ahead log of small adds and deletes since the last flush
    state-<gen>.npz       fitted transforms and codec calibrations (PCA, int8 ranges, ...)
    segments/seg-<gen>/   ids.npy, original.npy (float32) and one .npy per stored code
    tombstones-<gen>.npy  packed bitmap of deleted rows
    meta-<gen>.sqlite     ids -> rows and per-vector metadata
    bm25-<gen>*           the keyword index over stored texts

Filters (``search(..., filter=...)``, ``count``, ``get``, ``delete(filter=...)``) run over typed
metadata columns (slimvec.search.columns) built in RAM from the live rows' metadata on the
first filtered call after each load, then kept up to date with the log's records;
``update_metadata`` is a log record (kind "meta") like a delete, folded into the metadata
database at the next flush.

**Writes.** Under a lock file, one writer at a time. A small add or any delete is one record
appended to the log and ``fdatasync``-ed: durable when ``add`` returns, no new files. Large
adds, and the log once it holds ``FLUSH_ROWS`` rows, become a segment: new files are written
and fsynced, then the manifest is replaced (the only commit point). Segments are merged in
tiers (``MERGE_FANOUT`` of one size class into one), so their count stays logarithmic, and the
pipeline's calibrations are refitted as the collection grows (``REFIT_GROWTH``).

**Reads.** Every call first checks (two ``stat``s) whether another handle committed, and
catches up: a reader always sees the latest commit, and a load that races a writer's commit
retries instead of reporting damage. Rows in the log are searched like any other: through
the funnel once the pipeline is fitted, exactly before (a collection of a few documents).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from tqdm.auto import tqdm

from slimvec.engine import planner
from slimvec.engine.pin import StaleView, ViewPin, reads, writes
from slimvec.errors import (
    CollectionExistsError,
    CorruptCollectionError,
    DuplicateIdError,
    IdKindError,
    InvalidInputError,
    SpecError,
)
from slimvec.index.ivf import IVF_DIR, IVFIndex, check_nprobe, ivf_dirs, require_faiss
from slimvec.kernels.gather import SegmentRows
from slimvec.kernels.topk import blocked_top, pad_results, select_top
from slimvec.search.columns import MetadataColumns
from slimvec.search.filters import parse_filter
from slimvec.search.funnel import ORIGINAL, Pipeline
from slimvec.search.fusion import check_text_search, fuse
from slimvec.search.result import GetResult, SearchResult
from slimvec.sparse.bm25 import BM25Index
from slimvec.spec import DEFAULT_SPEC, parse_spec
from slimvec.store.files import load_array, load_arrays, save_array, save_arrays
from slimvec.store.growable import GrowableArray, Tombstones
from slimvec.store.idmap import IdMap, as_keys, check_id_kind, new_keys, save_keys
from slimvec.store.lock import LOCK, sweep, write_lock
from slimvec.store.log import (
    FLUSH_BYTES,
    FLUSH_ROWS,
    LogRecord,
    append_record,
    create_log,
    read_log,
)
from slimvec.store.manifest import MANIFEST, Manifest, SegmentEntry
from slimvec.store.meta import MetaStore
from slimvec.store.segments import SEGMENTS_DIR, open_segment, segment_name, write_segment
from slimvec.validation import (
    MAX_ID,
    as_ids,
    as_matrix,
    as_metadata,
    as_texts,
    check_k,
    check_metric,
    normalise,
)

ENCODE_CHUNK = 65_536
#: Segments of one size class (rows within a factor MERGE_FANOUT) merged once this many exist.
MERGE_FANOUT = 8
#: Merges build the merged segment in RAM: runs larger than this stay as they are (such
#: segments come from bulk adds, which are few).
MERGE_MAX_ROWS = 1_000_000
#: Hard cap on segments: past it the two smallest neighbours merge (bounds open files).
MAX_SEGMENTS = 48
#: Calibrations (int8 ranges, binary means, PCA, ...) are refitted when the live vectors reach
#: REFIT_GROWTH x the count they were fitted on, until they were fitted on REFIT_ENOUGH.
REFIT_GROWTH = 4
REFIT_ENOUGH = 65_536
#: Adds of fewer rows than this go to the write-ahead log; larger ones become a segment.
LOG_MAX_ROWS = 64
#: The keyword index writes a file per flush; past this many it is rewritten as one.
MAX_KEYWORD_FILES = 16
#: How often a load that races another process's commit is retried before giving up.
LOAD_RETRIES = 20
#: Prefixes of top-level files the manifest names; others with them are leftovers.
#: ("filters-" and "metaupd-": files of the first filters format, which kept its metadata
#: columns on disk; the columns are now built in RAM, so such files are leftovers.)
_OWN_PREFIXES = ("state-", "tombstones-", "meta-", "bm25-", "log-", "filters-", "metaupd-")
#: Filtered search scores the matching rows exactly (no funnel) when there are at most this
#: many, or when gathering their originals reads fewer bytes than the first pass scans.
EXACT_FILTER_ROWS = 4096
#: Cap on how much a filtered funnel grows its shortlists (by 1 / selectivity). Measured on
#: 50k embedding-like vectors: growing past 2x bought <= 0.005 recall@10 (binary*10) or none
#: (binary*40) for 2-10x the rescoring cost, because the masked first pass already ranks only
#: matching rows.
FILTER_GROWTH_MAX = 2


def _key_array(keys: list[str]) -> np.ndarray:
    """String ids as returned to the caller: a 1-D object array of str."""
    out = np.empty(len(keys), object)
    out[:] = keys
    return out


def _last_rows(ids: np.ndarray, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique ids of rows ``start:stop`` and the last row holding each (an id is live
    in at most its last row: it can only be added again after being deleted)."""
    part = ids[start:stop]
    order = np.lexsort((np.arange(len(part)), part))
    sorted_ids = part[order]
    last = np.ones(len(order), bool)
    last[:-1] = sorted_ids[1:] != sorted_ids[:-1]
    return sorted_ids[last], order[last].astype(np.int64) + start


def _lookup(sorted_ids: np.ndarray, rows: np.ndarray, ids: np.ndarray):
    """(row, found) for each of ``ids`` in an index made by ``_last_rows``."""
    if not len(sorted_ids):
        return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
    pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return rows[pos], sorted_ids[pos] == ids


def _signature(path: Path | str) -> tuple[int, int, int] | None:
    """Identifies one committed manifest (each commit is a new file, so a new inode)."""
    try:
        st = os.stat(os.path.join(path, MANIFEST))
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _disk_bytes(path: Path) -> int:
    """Bytes of the files under ``path``. Another process may sweep files meanwhile (a
    compaction's old segments): those are skipped, not an error, as ``os.walk`` skips
    directories that vanish."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
    return total


class _Tail:
    """Rows the log added since the last flush: their vectors, metadata and texts, in RAM."""

    def __init__(self, dim: int):
        self.x = GrowableArray.empty(np.float32, dim)
        self.codes: dict[str, GrowableArray] = {}
        self.meta: list[dict | None] = []
        self.texts: list[str | None] = []
        self.records: list[LogRecord] = []  # replayed into the keyword index when it loads
        self.end = 0  # byte offset of the end of the committed log records

    def __len__(self) -> int:
        return len(self.texts)


class Collection:
    """Open with :func:`slimvec.open` or make with :func:`slimvec.create`, not directly."""

    #: Whether small adds go to the write-ahead log (multi-vector adds always make segments).
    logs_adds: ClassVar[bool] = True
    #: Whether the planner may answer with exact float32 search where it costs less than the
    #: funnel (multi-vector exact search is MaxSim over every token: never cheaper).
    plans_exact: ClassVar[bool] = True

    def __init__(self, path: str | Path, encoder: Any = None):
        self.path = Path(path)
        self._dir = str(self.path)  # for the stat calls of every read (no Path joins)
        self._closed = False
        self._meta: MetaStore | None = None
        self._idmap: IdMap | None = None  # string-id collections only (slimvec.store.idmap)
        self._open: dict[str, dict[str, np.ndarray]] = {}  # segment name -> arrays
        self._upgrade: Any = None
        self._encoder = None
        #: The manifest's encoder record ``_encoder`` was checked against: a commit that
        #: changes the record (a finished model upgrade) drops the loaded model.
        self._encoder_record: dict | None = None
        self._pin = ViewPin()  # threads sharing this handle: see slimvec.engine.pin
        self._load()
        if encoder is not None:
            self._encoder = self._checked_encoder(encoder)

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        dim: int | None = None,
        metric: str = "cosine",
        spec: str = DEFAULT_SPEC,
        encoder: Any = None,
        extra: dict[str, Any] | None = None,
        keyword: dict[str, Any] | None = None,
        ids: str = "int",
    ) -> Collection:
        directory = Path(path)
        model = None
        if encoder is not None:
            from slimvec.encoders import encoder_spec, get_encoder

            model = get_encoder(encoder)
            if dim is not None and dim != model.dim:
                raise InvalidInputError(
                    f"dim={dim} but encoder {model.name!r} gives {model.dim}-dim vectors; "
                    f"leave dim out to take the encoder's"
                )
            dim = model.dim
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise InvalidInputError(f"dim must be a positive integer, got {dim!r}")
        check_metric(metric)
        manifest = Manifest(dim=int(dim), metric=metric, spec=str(parse_spec(spec)))
        manifest.extra.update(extra or {})
        if check_id_kind(ids) == "str":
            manifest.extra["id_kind"] = "str"
        if keyword:
            BM25Index(**keyword)  # validates the options
            manifest.extra["keyword_options"] = dict(keyword)
        if model is not None:
            manifest.extra["encoder"] = encoder_spec(model)
        cls._check_config(manifest)
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            what = "a collection" if (directory / MANIFEST).exists() else "other files"
            raise CollectionExistsError(
                f"{str(directory)!r} already holds {what}; open it with slimvec.open, or pick "
                f"a new path"
            )
        directory.mkdir(parents=True, exist_ok=True)
        MetaStore(directory / manifest.meta_db, create=True).close()
        manifest.log = "log-000000.wal"
        create_log(directory / manifest.log)
        manifest.save(directory)
        return cls(directory, encoder=model)

    @classmethod
    def _check_config(cls, manifest: Manifest) -> Pipeline:
        """The manifest's pipeline, or a clear error if its spec cannot work (``create`` calls
        this before anything is written)."""
        spec = parse_spec(manifest.spec)
        if spec.reranks_tokens:
            raise SpecError(
                f"{manifest.spec!r}: 'maxsim' reranks token vectors and needs a multi-vector "
                f"collection: slimvec.create(path, dim, multivector=True, spec=...)"
            )
        if spec.ivf is not None:
            require_faiss()
        return Pipeline(spec, manifest.dim, manifest.metric)

    # -- loading: a consistent view of the latest commit --------------------------------------
    def _load(self) -> None:
        """Load the latest commit; a load that races another process's commit (files swept
        under it) retries, and only damage that persists is reported. Inside a read, whose
        view is pinned, it cannot: the read is run again on a new view instead."""
        if not self._pin.holds_exclusive and self._pin.pinned:
            raise StaleView
        for attempt in range(LOAD_RETRIES):
            before = _signature(self.path)
            try:
                self._load_once()
                return
            except CorruptCollectionError:
                if attempt == LOAD_RETRIES - 1 or _signature(self.path) == before:
                    raise

    def _load_once(self) -> None:
        signature = _signature(self.path)
        manifest = Manifest.load(self.path)
        try:
            pipeline = self._make_pipeline(manifest)
        except InvalidInputError as exc:
            raise CorruptCollectionError(
                f"{self.path / MANIFEST} has an unusable spec: {exc}"
            ) from exc
        self._manifest, self.pipeline = manifest, pipeline
        if manifest.extra.get("encoder") != self._encoder_record:
            self._encoder = None  # another model now (a finished upgrade): load it by name
        if manifest.state_file:
            try:
                self._load_state(load_arrays(self.path / manifest.state_file))
            except (OSError, ValueError, KeyError) as exc:
                raise CorruptCollectionError(
                    f"fitted state {manifest.state_file} is missing or damaged ({exc})"
                ) from exc
        first = pipeline.first_key
        layout = self._layout(0)
        self._ivf = IVFIndex.load(self.path, manifest, pipeline)  # None without "ivf:N"
        # Trained IVF lists serve the first pass: the segments' flat codes then stay memory-
        # mapped (read only by a filtered query's flat fallback), not copied into RAM.
        mapped = self._ivf is not None and self._ivf.trained
        in_memory = ("ids",) if mapped else ("ids", first)
        opened, ids, resident = {}, [], []
        for entry in manifest.segments:
            shapes = self._layout(entry.rows)
            wanted = {k: v for k, v in shapes.items() if k not in in_memory}
            arrays = self._open.get(entry.name)
            if arrays is None or not wanted.keys() <= arrays.keys():
                arrays = open_segment(self.path, entry.name, wanted)
            opened[entry.name] = arrays
            read = open_segment(self.path, entry.name, {k: shapes[k] for k in in_memory}, in_memory)
            ids.append(read["ids"])
            if not mapped:
                resident.append(read[first])
        self._segments = [(entry, opened[entry.name]) for entry in manifest.segments]
        self._open = opened
        self._starts = np.array([e.start for e in manifest.segments], np.int64)
        #: per stored array, its segments read as one (rebuilt when the segments change)
        self._segment_rows: dict[str, tuple[list, SegmentRows]] = {}
        dtype, shape = layout[first]
        #: Row number of ``_resident``'s first row: 0 when it holds every row's first-stage
        #: code, the committed row count when only the log's are (segments memory-mapped).
        self._resident_start = manifest.rows if mapped else 0
        self._resident = GrowableArray(
            np.concatenate(resident) if resident else np.empty(shape, dtype)
        )
        self._ids = GrowableArray(np.concatenate(ids) if ids else np.empty(0, np.int64))
        self._deleted = Tombstones(self._load_tombstones())
        self._bm25: BM25Index | None = None  # loaded on first use
        if (
            self._upgrade is not None
            and not self._upgrade.matches(manifest.extra.get("upgrade"))
            and not manifest.extra.get("moved_to")  # kept for _follow_move (its model)
        ):
            self._upgrade = None  # changed elsewhere
        self._fitted_on = manifest.fitted_on or (
            manifest.segments[0].rows if manifest.segments else 0
        )
        if self._meta is None or self._meta.path != self.path / manifest.meta_db:
            meta = MetaStore(self.path / manifest.meta_db)
            if self._meta is not None:
                self._meta.close()
            self._meta = meta
        self._tail = _Tail(self.dim)
        self._idmap = (
            IdMap.refreshed(self._idmap, self._meta.db, self._meta.path, manifest.rows)
            if manifest.extra.get("id_kind") == "str"
            else None
        )
        self._id_index = None
        #: Metadata of segment rows replaced by the log's "meta" records (row -> metadata);
        #: folded into the metadata database at the next flush.
        self._meta_overrides: dict[int, dict | None] = {}
        self._columns: MetadataColumns | None = None  # built on the first filtered call
        #: (rows, log records) the columns have seen: later log records are applied to them
        self._columns_seen = (0, 0)
        self._next_id = manifest.next_id
        self._signature = signature
        if manifest.log:
            self._replay_log()

    def _replay_log(self) -> None:
        """Apply the log records committed since the view last read it."""
        records, end = read_log(self.path / self._manifest.log, self._tail.end)
        for record in records:
            self._apply(record)
        self._tail.end = end

    def _apply(self, record: LogRecord) -> None:
        tail = self._tail
        if record.kind in ("add", "upsert"):
            ids, x = record.arrays["ids"], record.arrays["x"]
            if record.kind == "upsert":  # the replaced rows go in the same record
                rows, hit = self._live_rows_of(record.arrays["replaced"])
                self._deleted.mark(rows[hit])
            if self._idmap is not None:
                self._idmap.learn(ids, record.info.get("keys") or [])
            if len(x) and x.shape[1] != self.dim:
                raise CorruptCollectionError(f"the log of {self.path} holds vectors of another dim")
            tail.x.append(x)
            tail.meta.extend(record.info.get("metadata") or [None] * len(ids))
            tail.texts.extend(record.info.get("texts") or [None] * len(ids))
            self._ids.append(ids)
            self._deleted.append(np.zeros(len(ids), bool))
            if self.fitted:
                codes = {ORIGINAL: x, **self.pipeline.encode(x)}
                self._resident.append(codes[self.pipeline.first_key])
                for key, code in codes.items():
                    if key not in (self.pipeline.first_key, ORIGINAL):
                        tail.codes.setdefault(key, GrowableArray(code[:0])).append(code)
            self._next_id = max(self._next_id, int(ids.max()) + 1)
        elif record.kind == "delete":
            rows, hit = self._live_rows_of(record.arrays["ids"])
            self._deleted.mark(rows[hit])
        elif record.kind == "meta":
            rows, hit = self._live_rows_of(record.arrays["ids"])
            metas = record.info.get("metadata") or []
            if len(metas) != len(rows):
                raise CorruptCollectionError(f"the log of {self.path} holds a bad meta record")
            committed = self._manifest.rows
            for row, live, meta in zip(rows.tolist(), hit.tolist(), metas):
                if not live:
                    continue
                if row >= committed:
                    tail.meta[row - committed] = meta
                else:
                    self._meta_overrides[row] = meta
        else:
            raise CorruptCollectionError(f"the log of {self.path} holds a {record.kind!r} record")
        tail.records.append(record)
        if self._bm25 is not None:
            self._bm25_apply(self._bm25, record)

    def _sync(self) -> None:
        """Catch up with commits made through other handles, where this call may: a read
        runs on the view pinned when it began (see :mod:`slimvec.engine.pin`)."""
        self._require_open()
        if self._pin.holds_exclusive and self._stale():
            self._catch_up(follow_move=False)

    def _stale(self) -> bool:
        """Whether another handle committed since this view was loaded (two ``stat``s), or
        a finished model upgrade moved the collection."""
        if self._closed:
            return False  # the call itself says so
        if _signature(self._dir) != self._signature or "moved_to" in self._manifest.extra:
            return True
        if not self._manifest.log:
            return False
        try:
            size = os.stat(os.path.join(self._dir, self._manifest.log)).st_size
        except FileNotFoundError:  # a flush replaced the log between the two stats
            return True
        return size > self._tail.end

    def _catch_up(self, follow_move: bool = True) -> None:
        """Load the latest commit, or only replay the log records appended since (the
        exclusive pin is held: no call is reading this view meanwhile). A call's first
        catch-up follows a finished upgrade's move; one inside a write (the finishing
        transaction itself) stays where it is."""
        self._require_open()
        if _signature(self._dir) != self._signature:
            self._load()
        elif self._manifest.log:
            try:
                self._replay_log()
            except CorruptCollectionError:  # swept by a flush meanwhile: reload
                self._load()
        moved = self._manifest.extra.get("moved_to")
        if moved and follow_move:
            self._follow_move(moved)

    def _mark_stale(self) -> None:
        """The next catch-up reloads (the pinned view was found swept under a read)."""
        self._signature = None

    def _follow_move(self, moved_to: str) -> None:
        """A model upgrade finished (here or in another process): this handle becomes one of
        the new space, as ``slimvec.open`` of the path would be, with the new model (the one
        this handle's upgrade used, or else loaded by the name the new space records)."""
        model = None
        if self._upgrade is not None:  # its new space is the caller's to close
            model, self._upgrade = self._upgrade.new_space._encoder, None
        if self._meta is not None:
            self._meta.close()
            self._meta = None
        self.path = self.path / moved_to
        self._dir, self._open, self._idmap = str(self.path), {}, None
        self._load()
        if model is not None:
            self._encoder = self._checked_encoder(model)

    def _require_open(self) -> None:
        if self._closed:
            raise InvalidInputError(
                f"collection {str(self.path)!r} is closed; open it again with slimvec.open"
            )

    # -- what a row is: hooks that a multi-vector collection overrides -----------------------
    def _make_pipeline(self, manifest: Manifest) -> Pipeline:
        return self._check_config(manifest)

    def _layout(self, rows: int) -> dict[str, tuple[np.dtype, tuple[int | None, ...]]]:
        """dtype and shape of every array a segment of ``rows`` rows holds."""
        layout = {
            "ids": (np.dtype(np.int64), (rows,)),
            ORIGINAL: (np.dtype(np.float32), (rows, self.dim)),
        }
        for key in self.pipeline.stored_keys:
            codec = self.pipeline.codecs[key]
            layout[key] = (codec.code_dtype, (rows, codec.code_width))
        return layout

    def _ingest(self, vectors: Any) -> tuple[np.ndarray, Any]:
        """Validate user input; return the pipeline's input vectors and what else to store."""
        x = as_matrix(vectors, self.dim)
        return (normalise(x) if self.metric == "cosine" else x), None

    def _fit(self, x: np.ndarray, extra: Any) -> None:
        self.pipeline.fit(x)

    def _state(self) -> dict[str, np.ndarray]:
        return self.pipeline.state()

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        self.pipeline.load_state(state)

    def _row_arrays(self, x: np.ndarray, extra: Any) -> dict[str, np.ndarray]:
        """Arrays stored per row besides ids and codes."""
        return {ORIGINAL: x}

    def _queries_in(self, queries: Any) -> np.ndarray:
        q = as_matrix(queries, self.dim, "queries", allow_single=True)
        return normalise(q, "queries") if self.metric == "cosine" else q

    def _approximate(self, q: Any, k: int, allow: np.ndarray | None):
        return self.pipeline.search(q, k, self, allow)

    def _compact_arrays(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Every stored array of these rows, as a new segment would hold them."""
        return {key: self.gather(key, rows) for key in self._layout(0)}

    def _load_tombstones(self) -> np.ndarray:
        rows = self._manifest.rows
        if not self._manifest.tombstones:
            return np.zeros(rows, bool)
        try:
            packed = load_array(self.path / self._manifest.tombstones)
            return np.unpackbits(packed, count=rows).astype(bool)
        except (OSError, ValueError) as exc:
            raise CorruptCollectionError(f"tombstone file is missing or damaged ({exc})") from exc

    # -- properties -------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self._manifest.dim

    @property
    def metric(self) -> str:
        return self._manifest.metric

    @property
    def spec(self) -> str:
        return self._manifest.spec

    @property
    def fitted(self) -> bool:
        """Whether the pipeline's calibrations exist (after the first segment); before, the
        few rows in the log are searched exactly."""
        return bool(self._manifest.segments)

    @property
    @reads
    def own_count(self) -> int:
        """Live vectors in this collection's own rows (the old space during an upgrade)."""
        self._sync()
        return len(self._deleted.array) - self._deleted.count

    @reads
    def __len__(self) -> int:
        """Live vectors (in both spaces while a model upgrade is in progress)."""
        own = self.own_count
        if self.upgrade is None:
            return own
        status = self.upgrade.status()
        return status.old_count + status.new_count - status.in_both

    def __repr__(self) -> str:
        if self._closed:
            return f"Collection({str(self.path)!r}, closed)"
        return f"Collection({str(self.path)!r}, dim={self.dim}, n={len(self)}, spec={self.spec!r})"

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the interface sibling packages (compat, multivector, server, ...) build on ----------
    @property
    @reads
    def manifest(self) -> Manifest:
        """The committed manifest of the current view (edit it only inside ``transaction``)."""
        self._sync()
        return self._manifest

    @contextmanager
    def transaction(self) -> Iterator[Manifest]:
        """Hold the write lock on an up-to-date view (log replayed, leftovers swept) and
        yield its manifest. A change becomes visible only through ``manifest.commit(path)``;
        on any exception the view is reloaded from disk (uncommitted changes are dropped)."""
        self._require_open()
        with write_lock(self.path):
            self._sync()
            self._sweep()
            try:
                yield self._manifest
            except BaseException:
                self._load()
                raise
            if _signature(self.path) != self._signature:  # committed without reloading
                self._load()
                self._sweep()

    @reads
    def refresh(self) -> Collection:
        """Catch up with other processes' commits now (every call does this itself)."""
        self._sync()
        return self

    @reads
    def prepare_queries(self, queries: Any) -> Any:
        """Validated (and, for cosine, normalised) queries for :meth:`search_rows`."""
        return self._queries_in(queries)

    @reads
    def search_rows(self, queries: Any, k: int, exact: bool = False) -> SearchResult:
        """Top-``k`` over this collection's own rows for ``prepare_queries`` output (an upgrade
        in progress is not consulted: that is the caller's business)."""
        self._sync()
        return self._search_own(queries, k, exact)

    @reads
    def stored_ids(self) -> np.ndarray:
        """The id of every stored row in row order, deleted rows included (until compaction
        they keep their vectors: a model upgrade pairs them with the new model's)."""
        self._sync()
        return self._ids.array

    @reads
    def rows_of(self, ids: Any) -> tuple[np.ndarray, np.ndarray]:
        """(row of each id, whether it is live); rows of ids that are not live are meaningless."""
        self._sync()
        return self._live_rows_of(np.asarray(ids, np.int64))

    @reads
    def ids_without_text(self, ids: np.ndarray) -> np.ndarray:
        """Those of ``ids`` stored without a text."""
        self._sync()
        rows, live = self._live_rows_of(np.asarray(ids, np.int64))
        texts = self._texts_of_rows(rows[live])
        return np.asarray(ids)[live][[t is None for t in texts]]

    @property
    @reads
    def version(self) -> tuple[int, int]:
        """Changes with every commit, log appends included (a key for caches)."""
        self._sync()
        return self._manifest.generation, self._tail.end

    @property
    @reads
    def next_id(self) -> int:
        """The smallest id above every id this collection has stored."""
        self._sync()
        return self._next_id

    @property
    @reads
    def has_texts(self) -> bool:
        """Whether texts are stored (so a keyword index exists)."""
        return self._keyword_index() is not None

    @writes
    def attach_encoder(self, encoder: Any) -> Any:
        """Use this ``Encoder`` object (it must be the recorded model); returns it."""
        self._encoder = self._checked_encoder(encoder)
        return self._encoder

    @writes
    def delete_own(self, ids: Any) -> int:
        """Delete from this collection's own rows (never from an upgrade's new space)."""
        return self._delete_rows(ids)

    # -- writing ----------------------------------------------------------------------------
    @writes
    def add(
        self,
        vectors: Any,
        ids: Any = None,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        texts: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Store vectors (n, dim); returns their int64 ids (given, or assigned increasing).

        ``metadata`` (one JSON-able dict per vector) and ``texts`` (the source text, kept for
        keyword search and re-embedding) are optional. Durable when it returns.
        """
        self._require_open()
        x, extra = self._ingest(vectors)
        given = None if ids is None else self._user_ids(ids, len(x))
        metas = as_metadata(metadata, len(x))
        if texts is not None:
            texts = as_texts(texts)
            if len(texts) != len(x):
                raise InvalidInputError(f"got {len(texts)} texts for {len(x)} vectors")
        with self.transaction():
            keys = None
            if self._idmap is not None:  # string ids: fresh internal ids under the keys
                keys = given if given is not None else new_keys(len(x))
                self._reject_live_duplicates(self._idmap.ids_of(keys), keys)
                given = None
            new_ids = given if given is not None else self._next_ids(len(x))
            self._reject_live_duplicates(new_ids)
            if self.upgrade is not None:
                self.upgrade.new_space._reject_live_duplicates(new_ids)
            info: dict[str, Any] = {"metadata": metas, "texts": texts}
            if keys is not None:
                info["keys"] = keys
            if self.logs_adds and self._manifest.log and len(x) < LOG_MAX_ROWS:
                self._log(LogRecord("add", {"ids": new_ids, "x": x}, info))
            else:
                self._commit_new_rows(x, extra, new_ids, keys, metas, texts)
        return new_ids if keys is None else _key_array(keys)

    def _commit_new_rows(self, x, extra, ids, keys, metas, texts) -> None:
        """New rows as one segment commit (the log's rows folded in), then merges."""
        if keys is not None:  # saved by the commit; a failed one reloads the view
            self._idmap.learn(ids, keys)
        self._commit_segment(x, extra, ids, metas, texts)
        self._maintain()

    @writes
    def upsert(
        self,
        vectors: Any,
        ids: Any,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        texts: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Store vectors under ``ids``, replacing the current vector, metadata and text of
        those that exist (the others are added); returns the ids.

        Atomic: one log record tombstones the replaced rows and adds the new ones, so a
        reader (or a restart after a crash) sees every old row or every new one, never both
        or neither. Large upserts are folded into a segment right after that record; a large
        one that replaces nothing is committed as a segment directly, as ``add`` does.
        """
        self._require_open()
        if not self.logs_adds:
            raise InvalidInputError(
                f"{type(self).__name__} does not support upsert yet; delete the ids, then add"
            )
        if ids is None:
            raise InvalidInputError("upsert needs the ids to replace or add; add() makes new ones")
        x, _ = self._ingest(vectors)
        user = self._user_ids(ids, len(x))
        metas = as_metadata(metadata, len(x))
        if texts is not None:
            texts = as_texts(texts)
            if len(texts) != len(x):
                raise InvalidInputError(f"got {len(texts)} texts for {len(x)} vectors")
        if self.upgrade is not None:
            raise InvalidInputError(
                "upsert during a model upgrade is not supported yet; delete, then add_texts"
            )
        with self.transaction():
            info: dict[str, Any] = {"metadata": metas, "texts": texts}
            if self._idmap is not None:
                old, new_ids = self._idmap.ids_of(user), self._next_ids(len(x))
                info["keys"] = user
            else:
                old = new_ids = user
            _, live = self._live_rows_of(old)
            if not live.any() and len(x) >= LOG_MAX_ROWS:  # replaces nothing: an add's commit
                self._commit_new_rows(x, None, new_ids, info.get("keys"), metas, texts)
            else:
                self._ensure_log()
                arrays = {"ids": new_ids, "x": x, "replaced": old[live]}
                self._log(LogRecord("upsert", arrays, info))
        return _key_array(user) if self._idmap is not None else user

    def _log(self, record: LogRecord) -> None:
        """Append a record (durable on return), then flush if the log has grown enough."""
        self._tail.end = append_record(self.path / self._manifest.log, self._tail.end, record)
        self._apply(record)
        if len(self._tail) >= FLUSH_ROWS or self._tail.end >= FLUSH_BYTES:
            self._flush()
            self._maintain()

    def _flush(self) -> None:
        """Fold the log into the segments now, if it holds anything."""
        if self._manifest.log and self._tail.records:
            self._commit_segment(None, None, np.empty(0, np.int64), None, None)

    def _commit_segment(self, x, extra, ids, metas, texts) -> None:
        """One commit of the log's rows followed by ``x`` (may be None) as a new segment,
        the log's deletes as a tombstone file, and a fresh log. The pipeline is fitted first
        if it never was (on every row of this segment, the log's included)."""
        m, tail = self._manifest, self._tail
        generation = m.generation + 1
        if len(tail):  # single-vector collections only (multi-vector adds never log)
            n_new = 0 if x is None else len(x)
            x = tail.x.array if x is None else np.concatenate([tail.x.array, x])
            ids = np.concatenate([self._ids.array[m.rows :], ids])
            metas = tail.meta + (metas or [None] * n_new)
            texts = (
                None
                if texts is None and not any(tail.texts)
                else (tail.texts + (texts or [None] * n_new))
            )
        if x is not None and len(x):
            if not self.fitted:
                self._fit(x, extra)
                self._save_state(generation, len(x))
            arrays = {"ids": ids, **self._row_arrays(x, extra), **self._encode(x)}
            name = segment_name(generation)
            write_segment(self.path, name, arrays)
            self._meta.insert(ids, m.rows, metas, texts)
            if self._idmap is not None:
                save_keys(self._meta.db, m.rows, ids, self._idmap.keys_of(ids))
            keyword = self._keyword_index(create=texts is not None)
            if keyword is not None and texts is not None:
                new_texts = texts[len(tail) :]
                if any(t is not None for t in new_texts):
                    keep = [i for i, t in enumerate(new_texts) if t is not None]
                    keyword.add(ids[len(tail) :][keep], [new_texts[i] for i in keep])
            m.segments.append(SegmentEntry(name=name, start=m.rows, rows=len(ids)))
            m.rows += len(ids)
            m.next_id = max(m.next_id, int(ids.max()) + 1)
        keyword = self._keyword_index()
        if keyword is not None:
            if len(m.extra.get("bm25", {}).get("files", [])) > MAX_KEYWORD_FILES:
                keyword.compact()  # one file again instead of one per flush
            self._save_keyword_index(keyword, generation)
        if self._meta_overrides:  # the log's "meta" records, into the metadata database
            rows = np.fromiter(self._meta_overrides, np.int64, len(self._meta_overrides))
            self._meta.update_metadata(
                zip(self._ids.array[rows].tolist(), rows.tolist(), self._meta_overrides.values())
            )
        self._deleted.append(np.zeros(m.rows - len(self._deleted.array), bool))
        self._ivf_before_commit(self._deleted.array[: m.rows])
        self._write_tombstones(generation)
        m.next_id = max(m.next_id, self._next_id)
        self._start_log(generation)
        m.commit(self.path)
        self._load()
        self._sweep()  # the old log

    def _save_state(self, generation: int, fitted_on: int) -> None:
        state = self._state()
        m = self._manifest
        m.state_file = None
        if state:
            m.state_file = f"state-{generation:06d}.npz"
            save_arrays(self.path / m.state_file, state)
        m.fitted_on = fitted_on

    def _write_tombstones(self, generation: int) -> None:
        m = self._manifest
        deleted = self._deleted.array[: m.rows]
        count = int(np.count_nonzero(deleted))
        if count != m.deleted or (count and m.tombstones is None):
            m.tombstones = None
            if count:
                m.tombstones = f"tombstones-{generation:06d}.npy"
                save_array(self.path / m.tombstones, np.packbits(deleted))
            m.deleted = count

    def _maintain(self) -> None:
        """After a segment was added: refit calibrations that the collection outgrew, and
        merge segments so their count stays logarithmic (bounded work, under the lock)."""
        live = self.own_count
        if (
            self.refits
            and self._fitted_on < REFIT_ENOUGH
            and live >= REFIT_GROWTH * max(self._fitted_on, 1)
            and self.upgrade is None
        ):
            self._rewrite(refit=True)
            return
        while (run := self._merge_candidate()) is not None:
            self._merge(*run)

    #: Whether ``_maintain`` may refit (multi-vector collections cannot re-derive their
    #: pipeline input from stored arrays cheaply, so they keep their first calibration).
    refits: ClassVar[bool] = True

    def _merge_candidate(self) -> tuple[int, int] | None:
        """(first, stop) segment indices of a run to merge, or None: MERGE_FANOUT neighbours
        of one size class, or past MAX_SEGMENTS the smallest neighbouring pair."""
        entries = self._manifest.segments
        tiers = [int(np.log(max(e.rows, 1)) / np.log(MERGE_FANOUT)) for e in entries]
        for stop in range(len(entries), MERGE_FANOUT - 1, -1):
            first = stop - MERGE_FANOUT
            rows = sum(e.rows for e in entries[first:stop])
            if len(set(tiers[first:stop])) == 1 and rows <= MERGE_MAX_ROWS:
                return first, stop
        if len(entries) > MAX_SEGMENTS:
            pairs = [entries[i].rows + entries[i + 1].rows for i in range(len(entries) - 1)]
            i = int(np.argmin(pairs))
            if pairs[i] <= MERGE_MAX_ROWS:
                return i, i + 2
        return None

    def _merge(self, first: int, stop: int) -> None:
        """Concatenate segments ``first:stop`` (deleted rows included: row numbers, metadata
        and tombstones stay valid) into one. One commit."""
        m = self._manifest
        run = m.segments[first:stop]
        rows = np.arange(run[0].start, run[-1].start + run[-1].rows)
        name = segment_name(m.generation + 1)
        write_segment(self.path, name, self._compact_arrays(rows))
        merged = SegmentEntry(name=name, start=run[0].start, rows=len(rows))
        m.segments[first:stop] = [merged]
        self._ivf_before_commit(self._deleted.array[: m.rows])
        m.commit(self.path)
        self._load()
        self._sweep()

    def _encode(self, x: np.ndarray) -> dict[str, np.ndarray]:
        chunks = range(0, len(x), ENCODE_CHUNK)
        parts = [
            self.pipeline.encode(x[start : start + ENCODE_CHUNK])
            for start in tqdm(
                chunks, desc="encoding", unit="chunk", disable=len(chunks) < 8 or None
            )
        ]
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    def _next_ids(self, n: int) -> np.ndarray:
        start = self._next_id
        if start + n - 1 > MAX_ID:
            raise InvalidInputError(
                f"automatic ids would pass the largest id {MAX_ID} (ids up to {start - 1} are "
                f"taken); give explicit ids below it"
            )
        return np.arange(start, start + n, dtype=np.int64)

    def _live_rows(self) -> np.ndarray:
        return np.flatnonzero(~self._deleted.array)

    @reads
    def live_ids(self) -> np.ndarray:
        """Ids of this collection's own live vectors, in row order (the caller's ids: strings
        in a string-id collection)."""
        self._sync()
        return self._external_ids(self._ids.array[~self._deleted.array])

    def _live_rows_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row of each id, whether it is live). Segment rows are looked up in an index built
        once per commit, the log's few rows on the fly: a single add costs O(log n), not a
        sort of every id."""
        ids = np.asarray(ids, np.int64)
        if not len(self._ids.array):
            return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
        if self._id_index is None or self._id_index[0] != self._manifest.generation:
            self._id_index = (
                self._manifest.generation,
                *_last_rows(self._ids.array, 0, self._manifest.rows),
            )
        _, seg_ids, seg_rows = self._id_index
        rows, found = _lookup(seg_ids, seg_rows, ids)
        committed = self._manifest.rows
        if len(self._ids.array) > committed:  # the log's rows are newer: they win
            tail_ids, tail_rows = _last_rows(self._ids.array, committed, len(self._ids.array))
            t_rows, t_found = _lookup(tail_ids, tail_rows, ids)
            rows = np.where(t_found, t_rows, rows)
            found |= t_found
        return rows, found & ~self._deleted.array[rows]

    def _reject_live_duplicates(self, ids: np.ndarray, keys: list[str] | None = None) -> None:
        _, live = self._live_rows_of(ids)
        clash = ids[live] if keys is None else np.asarray(keys, object)[live]
        if len(clash):
            raise DuplicateIdError(
                f"ids already in the collection: {clash[:10].tolist()}"
                f"{' ...' if len(clash) > 10 else ''}; use upsert() to replace them, or new ids"
            )

    # -- the caller's ids: int64, or strings mapped to internal ids (slimvec.store.idmap) -----
    @property
    def id_kind(self) -> str:
        """ "int" or "str": the kind of id this collection takes and returns (chosen at create)."""
        return "str" if self._manifest.extra.get("id_kind") == "str" else "int"

    def _user_ids(self, ids: Any, n: int | None = None, unique: bool = True, dedupe: bool = True):
        """Validated caller ids: a list of keys (string collections) or an int64 array;
        ``n``: the count they must have; ``unique=False`` accepts repeats (dropped unless
        ``dedupe=False``). The wrong kind raises ``IdKindError``, never a cast."""
        if self._idmap is not None:
            keys = as_keys(ids, n, unique=unique)
            return list(dict.fromkeys(keys)) if not unique and dedupe else keys
        array = np.atleast_1d(np.asarray(ids))
        strings = (
            [i for i in array.ravel().tolist() if isinstance(i, str)]
            if array.dtype.kind in "USO"
            else []
        )
        if strings:
            raise IdKindError(
                f"this collection has int64 ids, got a string id {strings[0]!r}; create "
                f"the collection with slimvec.create(..., ids='str') to use string ids"
            )
        if not unique:
            if not dedupe:
                return array.astype(np.int64) if array.size else np.empty(0, np.int64)
            array = np.unique(array)
        return as_ids(array, len(array) if n is None else n)

    def _internal_ids(self, user: Any) -> np.ndarray:
        """Internal int64 ids of validated caller ids (-1 for unknown string ids)."""
        if self._idmap is not None:
            return self._idmap.ids_of(user)
        return np.asarray(user, np.int64)

    def _external_ids(self, ids: np.ndarray) -> np.ndarray:
        """Caller ids of internal ids (None for -1 in a string collection)."""
        return ids if self._idmap is None else self._idmap.keys_of(ids)

    def _user_result(self, result: SearchResult) -> SearchResult:
        """A search result in the caller's ids: one gather over the k ids per query."""
        if self._idmap is None:
            return result
        return SearchResult(self._idmap.keys_of(result.ids), result.scores, result.explain)

    def _require_live(self, user: Any, internal: np.ndarray, what: str) -> np.ndarray:
        """Rows of ``internal`` ids, or an error naming the caller ids that are not live."""
        rows, hit = self._live_rows_of(internal)
        if not hit.all():
            missing = [u for u, h in zip(np.asarray(user, object).tolist(), hit) if not h]
            raise InvalidInputError(
                f"ids not in the collection: {missing[:10]}; nothing was {what}"
            )
        return rows

    # -- text -------------------------------------------------------------------------------
    @property
    @reads
    def encoder(self):
        """The collection's text encoder (loaded on first use and checked against the manifest)."""
        with self._pin.lazy:
            if self._encoder is None:
                recorded = self._manifest.extra.get("encoder")
                if recorded is None:
                    raise InvalidInputError(
                        f"collection {str(self.path)!r} has no encoder, so it takes vectors, "
                        f"not texts; create it with slimvec.create(path, "
                        f"encoder='all-MiniLM-L6-v2')"
                    )
                from slimvec.encoders import get_encoder

                self._encoder = self._checked_encoder(get_encoder(recorded["name"]))
            return self._encoder

    def _checked_encoder(self, encoder: Any):
        from slimvec.encoders import encoder_spec, get_encoder
        from slimvec.encoders.base import model_mismatch

        model = get_encoder(encoder)
        recorded = self._manifest.extra.get("encoder")
        if recorded is None:
            raise InvalidInputError(
                f"collection {str(self.path)!r} was created without an encoder; it cannot take one"
            )
        found = encoder_spec(model)
        field = model_mismatch(recorded, found)
        if field is not None:
            raise InvalidInputError(
                f"encoder {found['name']!r} ({found['dim']}-d, fingerprint "
                f"{found['fingerprint']}) is not the model this collection was built with "
                f"({recorded['name']!r}, {recorded['dim']}-d, fingerprint "
                f"{recorded['fingerprint']}): its {field} differs. Vectors of different "
                f"models must not be mixed; use the original model"
            )
        self._encoder_record = recorded
        return model

    def add_texts(
        self,
        texts: Sequence[str],
        ids: Any = None,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Embed ``texts`` with the collection's encoder and store them; returns their ids."""
        self._require_open()
        texts = as_texts(texts)
        if self.upgrade is not None:
            return self.upgrade.add_texts(texts, ids=ids, metadata=metadata, batch_size=batch_size)
        vectors = self._embed(texts, "doc", batch_size)
        return self.add(vectors, ids=ids, metadata=metadata, texts=texts)

    # -- model upgrades (see slimvec.compat.upgrade) ----------------------------------------
    @property
    @reads
    def upgrade(self) -> Any:
        """The model upgrade in progress (a ``slimvec.compat.upgrade.Upgrade``), or None."""
        self._sync()
        if "upgrade" not in self._manifest.extra:
            return None
        with self._pin.lazy:
            if self._upgrade is None:
                from slimvec.compat.upgrade import Upgrade

                self._upgrade = Upgrade.load(self)
            return self._upgrade

    @writes
    def begin_upgrade(self, encoder: Any, **options: Any) -> Any:
        """Start moving to a new embedding model without re-indexing first; returns the
        ``Upgrade`` (with its adapter quality report). See ``slimvec.compat.upgrade``."""
        from slimvec.compat.upgrade import begin_upgrade

        self._require_open()
        if self._idmap is not None:
            raise InvalidInputError(
                "model upgrades of string-id collections are not supported yet; re-embed into "
                "a new collection (slimvec.create(..., ids='str')) instead"
            )
        self._upgrade = begin_upgrade(self, encoder, **options)
        return self._upgrade

    def backfill(self, batch_size: int = 256, **options: Any) -> int:
        """Re-embed stored texts with the new model, a batch at a time (resumable)."""
        return self._require_upgrade().backfill(batch_size=batch_size, **options)

    @writes
    def finish_upgrade(self) -> Collection:
        """Make the new model's space the collection once every vector was backfilled."""
        return self._require_upgrade().finish()

    def _require_upgrade(self) -> Any:
        upgrade = self.upgrade
        if upgrade is None:
            raise InvalidInputError("no model upgrade in progress; start one with begin_upgrade")
        return upgrade

    @reads
    def search_texts(
        self,
        queries: Sequence[str] | str,
        k: int = 10,
        mode: str = "dense",
        *,
        fusion: str = "rrf",
        weights: Sequence[float] | None = None,
        rrf_constant: float = 60.0,
        candidates: int | None = None,
        exact: bool = False,
        filter: Any = None,  # noqa: A002
        nprobe: int | None = None,
    ) -> SearchResult:
        """Search by text: ``mode`` "dense" (the encoder + funnel), "sparse" (BM25 over the
        stored texts) or "hybrid" (both, fused).

        Hybrid fuses each side's top ``candidates`` (default ``max(10k, 100)``) by reciprocal
        rank fusion (``fusion="rrf"``, ``rrf_constant``) or a weighted sum of min-max
        normalised scores (``fusion="weighted"``); ``weights`` = (dense, sparse). RRF is the
        safe default; where one side is far stronger (BM25 on exact-term queries) the weighted
        sum keeps it from being diluted. ``filter``: as in :meth:`search`, for every mode;
        ``nprobe``: as in :meth:`search`, for the dense side.
        """
        self._sync()
        queries, k, depth = check_text_search(queries, k, mode, fusion, candidates)
        if nprobe is not None:
            if mode == "sparse":
                raise InvalidInputError(
                    "nprobe sets the IVF lists the dense search reads; mode='sparse' (BM25) "
                    "reads none: leave nprobe out or use mode='dense' or 'hybrid'"
                )
            self._check_nprobe(nprobe)
        upgrade = self.upgrade
        if filter is not None:
            self._no_filter_during_upgrade("search_texts")
            parse_filter(filter)
        if mode == "dense":
            if filter is not None:
                return self.search(self._embed(queries, "query", None), k, exact, filter, nprobe)
            if upgrade is not None:
                return upgrade.search_texts(queries, k, exact=exact)
            return self.search(self._embed(queries, "query", None), k=k, exact=exact, nprobe=nprobe)
        if not self.has_texts and (upgrade is None or not upgrade.has_keyword_index):
            raise InvalidInputError(
                f"collection {str(self.path)!r} holds no texts, so it has no keyword index; add "
                f"texts with add_texts(...) or add(vectors, texts=...)"
            )
        allow_ids = None if filter is None else self._ids.array[self._allow(filter)]
        if mode == "sparse":
            return self._user_result(SearchResult(*self._keyword_search(queries, k, allow_ids)))
        if upgrade is not None:
            dense = upgrade.search_texts(queries, depth, exact=exact)
        else:
            q = self._embed(queries, "query", None)
            dense = self._search_ids(q, depth, exact, filter, nprobe)
        sparse = self._keyword_search(queries, depth, allow_ids)
        return self._user_result(
            SearchResult(*fuse([dense, sparse], k, fusion, weights=weights, constant=rrf_constant))
        )

    def _keyword_search(
        self, queries: list[str], k: int, allow_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """BM25 top-k, among ``allow_ids`` if given (during a model upgrade, which refuses
        filters, the upgrade merges both spaces' indexes)."""
        if self.upgrade is not None:
            return self.upgrade.keyword_search(queries, k)
        return self.keyword_search_own(queries, k, allow_ids)

    @reads
    def keyword_search_own(
        self, queries: list[str], k: int, allow_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """BM25 top-k over this collection's own texts (among ``allow_ids`` if given):
        (ids, scores), -1 / -inf padded."""
        index = self._keyword_index()
        if index is None:
            nq = len(queries)
            return np.full((nq, k), -1, np.int64), np.full((nq, k), -np.inf, np.float32)
        return index.search(queries, k, allow_ids=allow_ids)

    def _keyword_index(self, create: bool = False) -> BM25Index | None:
        """The BM25 index over stored texts (loaded on first use, log replayed into it), or
        None if there is none."""
        self._sync()
        with self._pin.lazy:
            return self._bm25 if self._bm25 is not None else self._load_keyword_index(create)

    def _load_keyword_index(self, create: bool) -> BM25Index | None:
        recorded = self._manifest.extra.get("bm25")
        if recorded:
            try:
                index = BM25Index.load(self.path, recorded["files"])
            except CorruptCollectionError:
                before = self._signature
                self._load()  # a writer may have replaced those files meanwhile
                if self._signature == before:
                    raise
                return self._keyword_index(create)
        elif create or any(r.info.get("texts") for r in self._tail.records):
            index = BM25Index(**self._manifest.extra.get("keyword_options", {}))
        else:
            return None
        for record in self._tail.records:
            self._bm25_apply(index, record)
        self._bm25 = index
        return index

    @staticmethod
    def _bm25_apply(index: BM25Index, record: LogRecord) -> None:
        ids = record.arrays["ids"]
        if record.kind == "delete":
            index.delete(ids)
            return
        if record.kind == "upsert":
            index.delete(record.arrays["replaced"])
        texts = record.info.get("texts")
        if texts:
            index.delete(ids)  # an id deleted and re-added in the log
            index.add(ids, texts)

    def _save_keyword_index(self, keyword: BM25Index, generation: int) -> None:
        self._manifest.extra["bm25"] = {"files": keyword.save(self.path, generation)}

    def _embed(self, texts: list[str], kind: str, batch_size: int | None) -> Any:
        return self.encoder.encode(texts, kind=kind, batch_size=batch_size)

    @reads
    def texts(self, ids: Any) -> list[str | None]:
        """The stored text of each id (None where none was stored or the id is unknown)."""
        return self._per_id(ids, self._texts_of_rows, "texts")

    @reads
    def metadata(self, ids: Any) -> list[dict | None]:
        """Metadata stored with each id (None where none was given or the id is unknown)."""
        return self._per_id(ids, self._meta_of_rows, "metadata")

    def _per_id(self, ids: Any, of_rows, what: str) -> list:
        """Look ids up in this space, and during an upgrade in the new space for the rest."""
        self._sync()
        wanted = self._internal_ids(self._user_ids(ids, unique=False, dedupe=False))
        rows, live = self._live_rows_of(wanted)
        found = of_rows(rows[live])
        out: list = [None] * len(wanted)
        for i, value in zip(np.flatnonzero(live).tolist(), found):
            out[i] = value
        upgrade = self.upgrade
        if upgrade is not None and not live.all():
            rest = np.flatnonzero(~live)
            others = getattr(upgrade.new_space, what)(wanted[rest])
            for i, value in zip(rest.tolist(), others):
                out[i] = value
        return out

    def _rows_column(self, rows: np.ndarray, lookup, tail: list) -> list:
        """Values for live ``rows``: SQLite (by id) for segment rows, RAM for log rows."""
        committed = self._manifest.rows
        ids = self._ids.array[rows]
        found = lookup(ids[rows < committed].tolist(), committed)
        return [
            found.get(i) if r < committed else tail[r - committed]
            for r, i in zip(rows.tolist(), ids.tolist())
        ]

    def _texts_of_rows(self, rows: np.ndarray) -> list[str | None]:
        return self._rows_column(rows, self._meta.texts, self._tail.texts)

    def _meta_of_rows(self, rows: np.ndarray) -> list[dict | None]:
        out = self._rows_column(rows, self._meta.metadata, self._tail.meta)
        overrides = self._meta_overrides
        if overrides:
            for i, row in enumerate(rows.tolist()):
                if row in overrides:
                    out[i] = overrides[row]
        return out

    @writes
    def delete(self, ids: Any = None, filter: Any = None) -> int:  # noqa: A002
        """Tombstone the vectors with these ids, or (``filter``) whose metadata matches, in
        one commit (one log record); returns how many were deleted.

        During a model upgrade the ids may live in either space; both are handled."""
        self._require_open()
        if filter is not None:
            if ids is not None:
                raise InvalidInputError("give ids or filter to delete, not both")
            self._no_filter_during_upgrade("delete")
            parse_filter(filter)  # a malformed filter fails before the lock is taken
            return self._delete_rows(None, filter)
        if ids is None:
            raise InvalidInputError("give the ids to delete, or filter={...}")
        if self.upgrade is not None:
            return self.upgrade.delete(ids)
        return self._delete_rows(ids)

    def _delete_rows(self, ids: Any, filter: Any = None) -> int:  # noqa: A002
        """Delete from this collection's own rows; with ``filter``, the matching rows are
        chosen under the write lock (one atomic log record)."""
        if filter is None:
            user = self._user_ids(ids, unique=False)
            if not len(user):
                return 0
        with self.transaction():
            if filter is not None:
                wanted = np.unique(self._ids.array[self._allow(filter)])
                if not len(wanted):
                    return 0
            else:
                wanted = self._internal_ids(user)
                self._require_live(user, wanted, "deleted")
            self._ensure_log()
            self._log(LogRecord("delete", {"ids": wanted}))
        return len(wanted)

    def _ensure_log(self) -> None:
        """Under the lock: a collection written before the log existed starts one."""
        if not self._manifest.log:
            self._start_log(self._manifest.generation + 1)
            self._manifest.commit(self.path)
            self._load()

    def _start_log(self, generation: int) -> None:
        """Name a new, empty log in the manifest (committed by the caller)."""
        self._manifest.log = f"log-{generation:06d}.wal"
        create_log(self.path / self._manifest.log)

    @writes
    def flush(self) -> None:
        """Fold the write-ahead log into a segment now (writes do it when it is full)."""
        with self.transaction():
            self._flush()
            self._maintain()

    @writes
    def compact(self) -> None:
        """Rewrite the live vectors into one segment, reclaiming space held by deleted ones
        (and refitting calibrations the collection has outgrown)."""
        with self.transaction():
            self._flush()
            m = self._manifest
            refit = self.refits and self.own_count >= REFIT_GROWTH * max(self._fitted_on, 1)
            if m.deleted == 0 and len(m.segments) <= 1 and not refit:
                return
            self._rewrite(refit=refit and self._fitted_on < REFIT_ENOUGH)

    def _rewrite(self, refit: bool) -> None:
        """All live rows into one new segment with a fresh metadata database; with ``refit``
        the pipeline is first refitted on (a sample of) them and every code re-encoded."""
        m = self._manifest
        live = self._live_rows()
        generation = m.generation + 1
        if refit and len(live):
            sample = live
            if len(live) > REFIT_ENOUGH:
                rng = np.random.default_rng(generation)
                sample = np.sort(rng.choice(live, REFIT_ENOUGH, replace=False))
            self._fit(self.gather(ORIGINAL, sample), None)
            self._save_state(generation, len(sample))
            originals = self.gather(ORIGINAL, live)
            arrays = {"ids": self._ids.array[live], ORIGINAL: originals}
            arrays.update(self._encode(originals))
        else:
            arrays = self._compact_arrays(live)
        name = segment_name(generation)
        write_segment(self.path, name, arrays)
        ids = arrays["ids"]
        meta_db = f"meta-{generation:06d}.sqlite"
        (self.path / meta_db).unlink(missing_ok=True)
        fresh = MetaStore(self.path / meta_db, create=True)
        fresh.insert(ids, 0, self._meta_of_rows(live), self._texts_of_rows(live))
        if self._idmap is not None:
            save_keys(fresh.db, 0, ids, self._idmap.keys_of(ids))
        fresh.close()
        keyword = self._keyword_index()
        if keyword is not None:
            keyword.compact()
            self._save_keyword_index(keyword, generation)
        m.segments = [SegmentEntry(name=name, start=0, rows=len(live))] if len(live) else []
        m.rows = len(live)
        m.deleted = 0
        m.tombstones = None
        m.meta_db = meta_db
        self._ivf_before_commit(np.zeros(m.rows, bool), refit=refit)
        m.commit(self.path)
        self._load()
        self._sweep()

    def _ivf_before_commit(self, deleted: np.ndarray, refit: bool = False) -> None:
        """Before a commit that changes segments: train or retrain the IVF centroids when due
        and build the lists of segments lacking them (``deleted``: the new rows' tombstones)."""
        if self._ivf is not None:
            self._ivf.prepare_commit(self.path, self._manifest, deleted, refit)

    def _sweep(self) -> None:
        """Remove files of interrupted writes (anything the manifest does not name)."""
        m = self._manifest
        subdirs = {SEGMENTS_DIR: {e.name for e in m.segments}, IVF_DIR: ivf_dirs(m)}
        sweep(self.path, m.files | {MANIFEST, LOCK}, _OWN_PREFIXES, subdirs)

    # -- reading ----------------------------------------------------------------------------
    @reads
    def resident(self, key: str) -> np.ndarray:
        """All rows of the first-stage code, held in RAM (the funnel's ``CodeSource``). The
        flat first pass reads it; an IVF collection whose lists are trained searches those
        and its ``_flat_blocks`` instead, so this copy is only made if another path asks."""
        if key != self.pipeline.first_key:
            raise InvalidInputError(
                f"{key!r} is not held in RAM; only the first stage's codes "
                f"({self.pipeline.first_key!r}) are"
            )
        if self._resident_start:
            return np.concatenate([codes for _, codes in self._flat_blocks()])
        return self._resident.array

    def _flat_blocks(self) -> list[tuple[int, np.ndarray]]:
        """The first-stage codes of every row as (first row, codes) blocks: one in-memory
        block, or the segments' memory-mapped codes then the log's."""
        if not self._resident_start:
            return [(0, self._resident.array)]
        first = self.pipeline.first_key
        blocks = [(entry.start, arrays[first]) for entry, arrays in self._segments]
        return [*blocks, (self._resident_start, self._resident.array)]

    @reads
    def gather(self, key: str, rows: np.ndarray) -> np.ndarray:
        """Rows of one stored array (``ids``, ``original`` or a code key), in the order given."""
        if key == "ids":
            return self._ids.array[rows]
        committed = self._manifest.rows
        in_tail = rows >= committed
        if key == self.pipeline.first_key and (self.fitted or not in_tail.any()):
            if not self._resident_start:
                return self._resident.array[rows]  # segments and the log's encoded rows
            resident = self._resident.array
            out = np.empty((len(rows), *resident.shape[1:]), resident.dtype)
            out[in_tail] = resident[rows[in_tail] - self._resident_start]
            if not in_tail.all():
                out[~in_tail] = self._gather_segments(key, rows[~in_tail])
            return out
        if not in_tail.any():
            return self._gather_segments(key, rows)
        tail = self._tail.x if key == ORIGINAL else self._tail.codes[key]
        out = np.empty((len(rows), *tail.array.shape[1:]), tail.array.dtype)
        out[in_tail] = tail.array[rows[in_tail] - committed]
        if not in_tail.all():
            out[~in_tail] = self.gather(key, rows[~in_tail])
        return out

    def _gather_segments(self, key: str, rows: np.ndarray) -> np.ndarray:
        cached = self._segment_rows.get(key)
        if cached is None or cached[0] is not self._segments:
            arrays = [arrays[key] for _, arrays in self._segments]
            cached = (self._segments, SegmentRows(arrays, self._starts))
            self._segment_rows[key] = cached
        return cached[1].take(rows)

    @reads
    def search(
        self,
        queries: Any,
        k: int = 10,
        exact: bool = False,
        filter: Any = None,  # noqa: A002
        nprobe: int | None = None,
    ) -> SearchResult:
        """Top-``k`` ids and scores per query; ``exact=True`` scans the float32 originals.

        ``filter`` restricts results to vectors whose metadata matches (see
        :mod:`slimvec.search.filters`); results are never short when at least ``k`` match,
        and ``res.explain`` says which plan ran. ``nprobe``: lists an ``ivf:N`` collection
        reads per query (default ``index.ivf.default_nprobe``: 1/16 of the lists; more = higher
        recall, slower).

        During a model upgrade ``queries`` are the old model's vectors (what existing clients
        send) and reach the backfilled documents through the upgrade's old → new bridge; for
        the new model's vectors use ``col.upgrade.search_vectors``.
        """
        return self._user_result(self._search_ids(queries, k, exact, filter, nprobe))

    def _search_ids(
        self,
        queries: Any,
        k: int,
        exact: bool,
        filter: Any,  # noqa: A002
        nprobe: int | None = None,
    ) -> SearchResult:
        """``search`` in internal ids (what fusion, BM25 and upgrades work with)."""
        self._sync()
        if nprobe is not None:
            self._check_nprobe(nprobe)
        if filter is not None:
            self._no_filter_during_upgrade("search")
            q = self._queries_in(queries)
            return self._search_filtered(q, check_k(k), exact, filter, nprobe)
        if "upgrade" in self._manifest.extra:  # it validates the queries against this space
            return self.upgrade.search_vectors(old_queries=queries, k=k, exact=exact)
        return self._search_own(self._queries_in(queries), check_k(k), exact, nprobe)

    def _check_nprobe(self, nprobe: Any) -> None:
        if self._ivf is None:
            raise InvalidInputError(
                f"nprobe applies to partitioned ('ivf:N | ...') collections; this one's spec "
                f"is {self.spec!r}: leave nprobe out"
            )
        check_nprobe(nprobe, self._ivf.nlist)

    def _first_pass(self, q: Any, k: int, allow: np.ndarray | None, nprobe: int | None):
        """The funnel, with an IVF first pass once the collection's lists are trained."""
        if self._ivf is not None and self._ivf.trained:
            blocks = self._flat_blocks()
            return self._ivf.search(q, k, self, allow, blocks, self._manifest.rows, nprobe)
        return self._approximate(q, k, allow)

    # -- filters (see slimvec.search.filters / columns) -------------------------------------
    def _no_filter_during_upgrade(self, what: str) -> None:
        if self.upgrade is not None:
            raise InvalidInputError(
                f"{what} with a filter is not supported during a model upgrade yet; finish "
                f"the upgrade (backfill, finish_upgrade) or search without filter"
            )

    def _search_filtered(self, q: Any, k: int, exact: bool, filter: Any, nprobe=None):  # noqa: A002
        """The planner: few matching rows are scored exactly; otherwise the first pass scans
        with the filter as its allow-mask and every shortlist grows by 1 / selectivity (up to
        ``FILTER_GROWTH_MAX``) so that the filtered top-k keeps its recall."""
        nq = len(q)
        start = time.perf_counter()
        allow = self._allow(filter)
        matching = int(np.count_nonzero(allow))
        live = self.own_count
        explain: dict[str, Any] = {
            "matching": matching,
            "live": live,
            "selectivity": matching / live if live else 0.0,
            "filter_ms": round(1000 * (time.perf_counter() - start), 3),
        }
        limit = max(EXACT_FILTER_ROWS, len(allow) * self._first_bytes_ratio())
        if matching == 0:
            rows = np.full((nq, k), -1, np.int64)
            scores = np.full((nq, k), -np.inf, np.float32)
            missing = self._filter_columns().missing_fields(parse_filter(filter))
            why = "no live vector matches the filter"
            if missing:
                why += f" (no vector has the field {', '.join(map(repr, missing))})"
            explain.update(plan="empty", why=why)
        elif (plan := self._plan(nq, matching, exact, nprobe))["plan"] == "exact-scan":
            rows, scores = self._exact(q, min(k, matching), allow)
            explain.update(plan)
        elif matching <= limit:
            rows, scores = self._score_rows(q, min(k, matching), np.flatnonzero(allow))
            explain.update(
                plan="exact-rows",
                why=f"{matching:,} matching rows <= {int(limit):,}: scoring them exactly "
                f"costs less than a first pass",
            )
        else:
            growth = int(min(FILTER_GROWTH_MAX, max(1, round(live / matching))))
            rows, scores = self._first_pass(q, min(k * growth, matching), allow, nprobe)
            rows, scores = rows[:, :k], scores[:, :k]
            explain.update(
                plan="masked-funnel",
                why=f"{matching:,} matching rows: first pass with the filter as allow-mask, "
                f"shortlists grown x{growth}",
                growth=growth,
            )
        rows, scores = pad_results(rows, scores, k)
        explain["total_ms"] = round(1000 * (time.perf_counter() - start), 3)
        ids = np.where(rows >= 0, self._ids.array[np.maximum(rows, 0)], -1)
        return SearchResult(ids=ids, scores=scores, explain=explain)

    def _first_bytes_ratio(self) -> float:
        """First-pass bytes per row over exact-scoring bytes per row (the exact-rows plan
        wins while it reads fewer bytes than the first pass)."""
        return self.pipeline.bytes_per_vector(self.pipeline.first_key) / (4 * self.dim)

    def _score_rows(self, q: np.ndarray, k: int, rows: np.ndarray):
        """Exact top-``k`` among ``rows`` (gathered originals, in blocks)."""
        found, scores = blocked_top(
            lambda a, b: q @ self.gather(ORIGINAL, rows[a:b]).T, len(rows), len(q), k
        )
        return np.where(found >= 0, rows[np.maximum(found, 0)], -1), scores

    def _allow(self, filter: Any) -> np.ndarray:  # noqa: A002
        """Live rows whose metadata matches ``filter`` (validated first: nothing runs on a
        malformed filter)."""
        node = parse_filter(filter)
        deleted = self._deleted.array
        allow = self._filter_columns().mask(node, len(deleted))
        return allow & ~deleted

    def _filter_columns(self) -> MetadataColumns:
        """Typed metadata columns of the rows, built from the metadata on first use after each
        load (segments' metadata from SQLite, the log's from RAM); the log records that come
        later are applied to them (new rows appended, rows a "meta" record rewrote replaced),
        so a write costs the next filtered call its own rows, not a rebuild. Deleted rows are
        masked by the tombstones at query time."""
        with self._pin.lazy:
            return self._updated_columns()

    def _updated_columns(self) -> MetadataColumns:
        rows, records = len(self._ids.array), self._tail.records
        if self._columns is None:
            live = self._live_rows()
            columns = MetadataColumns.from_metadata(live, self._meta_of_rows(live))
            for field in self._manifest.extra.get("indexes", []):
                # a field that now holds mixed types stays unindexed (filters on it explain)
                with contextlib.suppress(InvalidInputError):
                    columns.create_index(field)
            self._columns = columns
        elif self._columns_seen != (rows, len(records)):
            known, seen = self._columns_seen
            rewritten = [r.arrays["ids"] for r in records[seen:] if r.kind == "meta"]
            if rewritten:
                changed, hit = self._live_rows_of(np.concatenate(rewritten))
                changed = np.unique(changed[hit & (changed < known)])
                self._columns.drop_rows(changed)
                self._columns.append(changed, self._meta_of_rows(changed))
            new = np.arange(known, rows)
            new = new[~self._deleted.array[new]]
            if len(new):
                self._columns.append(new, self._meta_of_rows(new))
        self._columns_seen = (rows, len(records))
        return self._columns

    @reads
    def count(self, filter: Any = None) -> int:  # noqa: A002
        """Live vectors, or those whose metadata matches ``filter``."""
        if filter is None:
            return len(self)
        self._sync()
        self._no_filter_during_upgrade("count")
        return int(np.count_nonzero(self._allow(filter)))

    @reads
    def get(
        self,
        ids: Any = None,
        filter: Any = None,  # noqa: A002
        limit: int | None = 100,
        offset: int = 0,
        vectors: bool | None = None,
    ) -> GetResult:
        """Live vectors' ids, metadata and texts, ``limit`` from ``offset`` (``limit=None``:
        all); restricted to ``ids`` (in the order given, each once) and/or ``filter`` (in
        insertion order). Ids that are not live are left out. ``vectors`` (default: when
        ``ids`` are given) adds the stored float32 vectors."""
        self._sync()
        self._no_filter_during_upgrade("get")
        if limit is not None:
            limit = check_k(limit)
        if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or offset < 0:
            raise InvalidInputError(f"offset must be a non-negative integer, got {offset!r}")
        if ids is not None:  # by id, in the order asked (each once): no pass over every row
            asked = self._user_ids(ids, unique=False, dedupe=False)
            rows, hit = self._live_rows_of(self._internal_ids(asked))
            rows = rows[hit]
            rows = rows[np.sort(np.unique(rows, return_index=True)[1])]
            if filter is not None:
                rows = rows[self._allow(filter)[rows]]
        else:
            rows = np.flatnonzero(~self._deleted.array if filter is None else self._allow(filter))
        rows = rows[offset : None if limit is None else offset + limit]
        if vectors is None:
            vectors = ids is not None
        return GetResult(
            ids=self._external_ids(self._ids.array[rows]),
            metadata=self._meta_of_rows(rows),
            texts=self._texts_of_rows(rows),
            vectors=(
                (self.gather(ORIGINAL, rows) if len(rows) else np.empty((0, self.dim), np.float32))
                if vectors
                else None
            ),
        )

    @writes
    def update_metadata(
        self,
        ids: Any = None,
        metadatas: Sequence[dict[str, Any] | None] | None = None,
        filter: Any = None,  # noqa: A002
        merge: dict[str, Any] | None = None,
    ) -> int:
        """Replace the metadata of live ``ids`` (one dict, or None to clear, per id) in one
        commit (one log record); returns how many were updated. Unknown ids: an error,
        nothing written.

        With ``merge`` (one dict) instead of ``metadatas``: merge it into the metadata of
        the live rows matching ``filter`` (and among ``ids``, if given). The rows are chosen
        and read under the write lock and written as one log record, so a concurrent
        writer's change is never lost between the read and the write."""
        self._require_open()
        self._no_filter_during_upgrade("update_metadata")
        if merge is not None:
            return self._merge_metadata(ids, metadatas, filter, merge)
        if filter is not None:
            raise InvalidInputError(
                "filter selects the rows of update_metadata(filter=..., merge={...}); to "
                "replace metadata per id, give ids and metadatas"
            )
        if ids is None:
            raise InvalidInputError("give the ids to update (or filter=... with merge={...})")
        user = self._user_ids(ids)
        metas = as_metadata(metadatas, len(user))
        if metas is None:
            raise InvalidInputError("give one metadata dict (or None) per id")
        if not len(user):
            return 0
        with self.transaction():
            wanted = self._internal_ids(user)
            self._require_live(user, wanted, "updated")
            self._ensure_log()
            self._log(LogRecord("meta", {"ids": wanted}, {"metadata": metas}))
        return len(wanted)

    def _merge_metadata(self, ids: Any, metadatas: Any, filter: Any, merge: Any) -> int:  # noqa: A002
        if metadatas is not None:
            raise InvalidInputError(
                "give metadatas (replaces each id's metadata) or merge (one dict merged into "
                "every selected row), not both"
            )
        if not isinstance(merge, dict):
            raise InvalidInputError(f"merge must be one metadata dict, got {merge!r}")
        try:
            as_metadata([merge], 1)  # JSON-able, string keys
        except InvalidInputError as exc:
            raise InvalidInputError(str(exc).replace("metadata[0]", "merge", 1)) from None
        if ids is None and filter is None:
            raise InvalidInputError(
                "update_metadata(merge=...) needs a filter or ids to select rows"
            )
        user = None if ids is None else self._user_ids(ids)
        if filter is not None:
            parse_filter(filter)  # a malformed filter fails before the lock is taken
        with self.transaction():
            allow = ~self._deleted.array if filter is None else self._allow(filter)
            if user is not None:
                chosen = np.zeros_like(allow)
                chosen[self._require_live(user, self._internal_ids(user), "updated")] = True
                allow &= chosen
            rows = np.flatnonzero(allow)
            if not len(rows):
                return 0
            metas = [{**(m or {}), **merge} for m in self._meta_of_rows(rows)]
            self._ensure_log()
            self._log(LogRecord("meta", {"ids": self._ids.array[rows]}, {"metadata": metas}))
        return len(rows)

    @writes
    def create_index(self, field: str) -> None:
        """Keep a sorted index of a metadata field (keyword or numeric): equality and range
        filters on it then cost in proportion to the matching rows, not the collection. The
        field is recorded in the manifest; the index itself lives in RAM."""
        if not isinstance(field, str) or not field:
            raise InvalidInputError(f"field must be a non-empty string, got {field!r}")
        with self.transaction() as m:
            self._filter_columns().create_index(field)  # refuses a mixed-type field
            indexes = list(m.extra.get("indexes", []))
            if field in indexes:
                return
            m.extra["indexes"] = [*indexes, field]
            m.commit(self.path)

    def _search_own(self, q: Any, k: int, exact: bool, nprobe: int | None = None) -> SearchResult:
        """Top-``k`` over this collection's own rows for validated queries ``q``; the work is
        sized by the live count, the result padded to ``k``."""
        deleted = self._deleted.array
        live = len(deleted) - self._deleted.count
        nq = len(q)
        if live == 0:
            return SearchResult(
                ids=np.full((nq, k), -1, np.int64), scores=np.full((nq, k), -np.inf, np.float32)
            )
        allow = ~deleted if live < len(deleted) else None
        work = min(k, live)
        explain = self._plan(nq, live, exact, nprobe)
        if explain["plan"] == "exact-scan":
            rows, scores = self._exact(q, work, allow)
        else:
            rows, scores = self._first_pass(q, work, allow, nprobe)
        rows, scores = pad_results(rows, scores, k)
        ids = np.where(rows >= 0, self._ids.array[np.maximum(rows, 0)], -1)
        return SearchResult(ids=ids, scores=scores, explain=explain)

    def _plan(self, nq: int, rows: int, exact: bool, nprobe: int | None) -> dict[str, Any]:
        """``explain`` of the plan for ``nq`` queries over ``rows`` live (or matching) rows:
        exact when asked or not fitted yet, else the cheaper of exact and the funnel."""
        if exact:
            return {"plan": "exact-scan", "why": "exact=True"}
        if not self.fitted:
            return {"plan": "exact-scan", "why": "pipeline not fitted yet"}
        if not self.plans_exact:
            return {"plan": "funnel", "why": "the funnel is the only approximate plan"}
        scanned = 1.0
        if self._ivf is not None and self._ivf.trained:
            scanned = self._ivf.probed_fraction(nprobe)
        code_bytes = self.pipeline.bytes_per_vector(self.pipeline.first_key)
        return planner.choose(nq, rows, self.dim, code_bytes, scanned).explain()

    def _exact(self, q: np.ndarray, k: int, allow: np.ndarray | None):
        parts = [(e.start, e.rows, self._originals(e, arrays)) for e, arrays in self._segments]
        if len(self._tail):
            parts.append((self._manifest.rows, len(self._tail), self._tail.x.array))
        parts_rows, parts_scores = [], []
        for start, n, original in parts:
            seg_allow = None if allow is None else allow[start : start + n]
            rows, scores = blocked_top(
                lambda a, b, o=original: q @ np.asarray(o[a:b]).T, n, len(q), k, seg_allow
            )
            parts_rows.append(np.where(rows >= 0, rows + start, -1))
            parts_scores.append(scores)
        cols, scores = select_top(np.concatenate(parts_scores, axis=1), k)
        rows = np.take_along_axis(np.concatenate(parts_rows, axis=1), cols, axis=1)
        return np.where(np.isfinite(scores), rows, -1), scores

    def _originals(self, entry: SegmentEntry, arrays: dict[str, np.ndarray]) -> np.ndarray:
        if ORIGINAL in arrays:
            return arrays[ORIGINAL]
        return self._resident.array[entry.start : entry.start + entry.rows]  # spec "f32"

    @reads
    def info(self) -> dict[str, Any]:
        """Counts, spec, what each vector costs in RAM and on disk, and any model upgrade."""
        self._sync()
        total = len(self._ids.array)
        disk = _disk_bytes(self.path)
        ram_per_vector = self.pipeline.ram_bytes_per_vector()  # memory-mapped files not counted
        if self._ivf is not None and self._ivf.trained:  # the lists, not the flat codes
            ram_per_vector = self._ivf.ram_bytes_per_vector(max(total, 1))
        upgrade = self.upgrade
        refit_at = (
            REFIT_GROWTH * self._fitted_on
            if self.refits and self.fitted and self._fitted_on < REFIT_ENOUGH
            else None
        )
        return {
            "path": str(self.path),
            "count": len(self),
            "deleted": total - self.own_count,
            "dim": self.dim,
            "metric": self.metric,
            "spec": self.spec,
            "encoder": self._manifest.extra.get("encoder"),
            "segments": len(self._manifest.segments),
            "log_rows": len(self._tail),
            "calibration": {
                "fitted_on": self._fitted_on,
                "refit_at": refit_at,
                "note": None
                if self.fitted
                else f"not fitted yet: the first {FLUSH_ROWS} rows are searched exactly, then "
                f"the pipeline is fitted on them",
            },
            "ram_bytes_per_vector": ram_per_vector,
            "disk_bytes_per_vector": round(disk / total, 1) if total else None,
            "float32_bytes_per_vector": 4 * self.dim,
            "code_bytes_per_vector": {
                key: self.pipeline.bytes_per_vector(key) for key in self.pipeline.codecs
            },
            "upgrade": None if upgrade is None else upgrade.describe(),
            "id_kind": self.id_kind,
            "ivf": None
            if self._ivf is None
            else self._ivf.describe(self._deleted.array, len(self._tail)),
        }

    @writes
    def close(self) -> None:
        """Release files (and an upgrade's new space); every later call raises."""
        if self._closed:
            return
        if self._upgrade is not None:
            self._upgrade.close()
            self._upgrade = None
        if self._meta is not None:
            self._meta.close()
            self._meta = None
        self._segments, self._open, self._ivf = [], {}, None
        self._segment_rows = {}
        self._closed = True

    # -- JSON records (MBAT; see slimvec.encoders.mbat) -------------------------------------
    def add_json(self, records: Any, ids: Any = None, metadata: Any = None) -> np.ndarray:
        """Encode JSON records with the collection's ``JSONEncoder`` and add them."""
        from slimvec.encoders.mbat import add_json

        return add_json(self, records, ids=ids, metadata=metadata)

    def search_json(self, partial_records: Any, k: int = 10) -> SearchResult:
        """Search with (partial) JSON records; fields a query leaves out do not count."""
        from slimvec.encoders.mbat import search_json

        return search_json(self, partial_records, k=k)
