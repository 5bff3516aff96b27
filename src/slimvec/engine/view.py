"""A view: what a handle reads — one commit loaded, with the log's records folded in.

A collection directory holds::

    MANIFEST.json         commit point (format, spec, segments, tombstones), replaced atomically
    log-<gen>.wal         write-ahead log of small adds and deletes since the last flush
    state-<gen>.npz       fitted transforms and codec calibrations (PCA, int8 ranges, ...)
    segments/seg-<gen>/   ids.npy, original.npy (float32) and one .npy per stored code;
                          fastscan*.npy: a RaBitQ first stage's codes again, laid out for
                          the flat table scan (``rows.TABLE_FILES``, ``kernels.flatscan``)
    tombstones-<gen>.npy  packed bitmap of deleted rows
    meta-<gen>.sqlite     ids -> rows and per-vector metadata
    bm25-<gen>*           the keyword index over stored texts
    ivf-<gen>/            an ``ivf:N`` collection's inverted lists (slimvec.index.ivf)

:meth:`View.load` reads the manifest and what it names: the row format and its fitted
pipeline (:mod:`slimvec.engine.rows`), every segment's arrays (memory-mapped; the first-stage
codes and the ids read into RAM, or, when every segment carries the table-scan files, those
files instead of the codes), the tombstones, the metadata database, the string-id map,
the IVF lists; then it replays the log, whose rows join the view in RAM (:class:`Tail`). Rows
in the log are searched like any other: through the funnel once the pipeline is fitted,
exactly before (a collection of a few documents).

The keyword index and the typed metadata columns that filters run over
(slimvec.search.columns) are built on first use, then kept up to date with the log's records;
``update_metadata`` is a log record (kind "meta") like a delete, held in RAM here and folded
into the metadata database at the next flush (:mod:`slimvec.engine.writer`).

A view changes only under the handle's exclusive pin (:mod:`slimvec.engine.pin`): when the log
it read grows (:meth:`View.replay_log`) or its own writer appends. A new commit is a new view.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from slimvec.engine.ids import Keys
from slimvec.engine.pin import StaleView
from slimvec.engine.rows import TABLE_FILES, RowFormat
from slimvec.errors import CorruptCollectionError, InvalidInputError
from slimvec.index.ivf import IVFIndex
from slimvec.kernels.flatscan import FlatBlocks, FlatCodes
from slimvec.kernels.gather import SegmentRows
from slimvec.search.columns import MetadataColumns
from slimvec.search.filters import parse_filter
from slimvec.search.funnel import ORIGINAL, ROW_OVERHEAD_BYTES
from slimvec.sparse.bm25 import BM25Index
from slimvec.store.files import load_array, load_arrays
from slimvec.store.growable import GrowableArray, Tombstones
from slimvec.store.idmap import IdMap
from slimvec.store.log import LogRecord, read_log
from slimvec.store.manifest import MANIFEST, Manifest, SegmentEntry
from slimvec.store.meta import MetaStore
from slimvec.store.segments import has_files, open_segment

#: How often a load that races another process's commit is retried before giving up.
LOAD_RETRIES = 20


def signature(path: Path | str) -> tuple[int, int, int] | None:
    """Identifies one committed manifest (each commit is a new file, so a new inode)."""
    try:
        st = os.stat(os.path.join(path, MANIFEST))
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


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


class Tail:
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


class View:
    """One commit of a collection directory plus the log records folded into it."""

    path: Path
    manifest: Manifest
    rows: RowFormat
    meta: MetaStore

    @classmethod
    def load(cls, path: Path, row_format: type[RowFormat], previous: View | None = None) -> View:
        """The latest commit under ``path``; ``previous`` (the handle's last view) lends its
        opened segments, metadata database and string-id map where they are still valid."""
        self = cls()
        self.path, self.dir = path, str(path)  # dir: for the stat calls of every read
        self.signature = signature(self.dir)
        manifest = Manifest.load(path)
        try:
            rows = row_format(manifest)
        except InvalidInputError as exc:
            raise CorruptCollectionError(f"{path / MANIFEST} has an unusable spec: {exc}") from exc
        self.manifest, self.rows, self.pipeline = manifest, rows, rows.pipeline
        if manifest.state_file:
            try:
                rows.load_state(load_arrays(path / manifest.state_file))
            except (OSError, ValueError, KeyError) as exc:
                raise CorruptCollectionError(
                    f"fitted state {manifest.state_file} is missing or damaged ({exc})"
                ) from exc
        # None without "ivf:N"
        self.ivf = IVFIndex.load(path, manifest, self.pipeline, rows.pipeline_input)
        self._open_segments(previous)
        self.deleted = Tombstones(self._load_tombstones())
        self.fitted_on = manifest.fitted_on or (
            manifest.segments[0].rows if manifest.segments else 0
        )
        meta_path = path / manifest.meta_db
        reuse = previous is not None and previous.meta is not None
        self.meta = previous.meta if reuse and previous.meta.path == meta_path else None
        if self.meta is None:
            self.meta = MetaStore(meta_path)
        try:
            old_map = None if previous is None else previous.idmap
            self.idmap = (
                IdMap.refreshed(old_map, self.meta.db, self.meta.path, manifest.rows)
                if manifest.extra.get("id_kind") == "str"
                else None
            )
            self.keys = Keys(self.idmap, self.live_rows_of)  # the caller's ids
            self.tail = Tail(manifest.dim)
            self.bm25: BM25Index | None = None  # loaded on first use
            self.id_index: tuple | None = None
            #: Metadata of segment rows replaced by the log's "meta" records (row ->
            #: metadata); folded into the metadata database at the next flush.
            self.meta_overrides: dict[int, dict | None] = {}
            self.columns: MetadataColumns | None = None  # built on the first filtered call
            #: (rows, log records) the columns have seen: later log records are applied
            self.columns_seen = (0, 0)
            self.next_id = manifest.next_id
            #: Serialises the parts built on first use (keyword index, filter columns) that
            #: two readers of this view may ask for at once.
            self.lazy = threading.RLock()
            if manifest.log:
                self.replay_log()
        except BaseException:
            if previous is None or self.meta is not previous.meta:
                self.meta.close()
            raise
        return self

    def _open_segments(self, previous: View | None) -> None:
        manifest, first = self.manifest, self.pipeline.first_key
        # Trained IVF lists, or the table-scan files of every segment, serve the first pass:
        # the segments' flat codes then stay memory-mapped (read for shortlists, merges and a
        # filtered query's fallback), not copied into RAM. Segments written before the table
        # files existed are scanned from their codes until a write converts them (writer).
        trained = self.ivf is not None and self.ivf.trained
        tables = (
            self.rows.table_scan
            and not trained
            and bool(manifest.segments)
            and all(has_files(self.path, e.name, TABLE_FILES) for e in manifest.segments)
        )
        mapped = trained or tables
        self.tables = self._open_tables(previous) if tables else None
        in_memory = ("ids",) if mapped else ("ids", first)
        reusable = {} if previous is None else previous.opened
        held = {} if previous is None else previous._rows_in_ram(first, manifest.state_file)
        opened, ids, resident = {}, [], []
        for entry in manifest.segments:
            shapes = self.rows.layout(entry.rows)
            wanted = {k: v for k, v in shapes.items() if k not in in_memory}
            arrays = reusable.get(entry.name)
            if arrays is None or not wanted.keys() <= arrays.keys():
                arrays = open_segment(self.path, entry.name, wanted)
            opened[entry.name] = arrays
            seg_ids, seg_codes = held.get(entry.name, (None, None))
            if seg_ids is None or (not mapped and seg_codes is None):  # not read (verified) yet
                keys = {k: shapes[k] for k in in_memory}
                read = open_segment(self.path, entry.name, keys, in_memory)
                seg_ids, seg_codes = read["ids"], read.get(first)
            ids.append(seg_ids)
            if not mapped:
                resident.append(seg_codes)
        self.opened = opened  # segment name -> arrays
        self.segments = [(entry, opened[entry.name]) for entry in manifest.segments]
        self.starts = np.array([e.start for e in manifest.segments], np.int64)
        #: per stored array, its segments read as one (built on first use)
        self.segment_rows: dict[str, SegmentRows] = {}
        dtype, shape = self.rows.layout(0)[first]
        #: Row number of ``resident_codes``' first row: 0 when it holds every row's first-
        #: stage code, the committed row count when only the log's are (segments mapped).
        self.resident_start = manifest.rows if mapped else 0
        self.resident_codes = GrowableArray(
            np.concatenate(resident) if resident else np.empty(shape, dtype)
        )
        self.ids = GrowableArray(np.concatenate(ids) if ids else np.empty(0, np.int64))

    def _open_tables(self, previous: View | None) -> FlatBlocks:
        """Every segment's table-scan files, read into RAM (verified) as one ``FlatBlocks``;
        a segment the last view read is copied from it (segments are immutable)."""
        held = {} if previous is None or previous.tables is None else previous.table_spans
        parts, spans, block = [], {}, 0
        for entry in self.manifest.segments:
            span = held.get(entry.name)
            if span is not None:
                docs, factors = previous.tables.segment(*span)
            else:
                layout = self.rows.table_layout(entry.rows)
                read = open_segment(self.path, entry.name, layout, TABLE_FILES)
                docs, factors = (read[key] for key in TABLE_FILES)
            parts.append((entry.start, entry.rows, docs, factors))
            blocks = len(factors)
            spans[entry.name] = (block, blocks)
            block += blocks
        #: segment name -> (first block, blocks) in ``tables``
        self.table_spans = spans
        return FlatBlocks.of(parts)

    def _rows_in_ram(self, first: str, state_file: str | None) -> dict[str, tuple]:
        """Segment name -> (ids, first-stage codes or None) as this view holds them in RAM:
        segments are immutable, so the next view copies these instead of reading and
        verifying the files again (codes only while the fitted state is the same)."""
        codes_valid = (
            self.resident_start == 0
            and self.pipeline.first_key == first
            and self.manifest.state_file == state_file
        )
        ids, codes = self.ids.array, self.resident_codes.array
        return {
            entry.name: (
                ids[entry.start : entry.start + entry.rows],
                codes[entry.start : entry.start + entry.rows] if codes_valid else None,
            )
            for entry, _ in self.segments
        }

    def _load_tombstones(self) -> np.ndarray:
        rows = self.manifest.rows
        if not self.manifest.tombstones:
            return np.zeros(rows, bool)
        try:
            packed = load_array(self.path / self.manifest.tombstones)
            return np.unpackbits(packed, count=rows).astype(bool)
        except (OSError, ValueError) as exc:
            raise CorruptCollectionError(f"tombstone file is missing or damaged ({exc})") from exc

    def describe(self, **given: Any) -> dict[str, Any]:
        """``info()`` of this view; ``given``: what the handle adds (path, count, ...), each
        in its place."""
        pipeline, ivf, total = self.pipeline, self.ivf, len(self.ids.array)
        disk = _disk_bytes(self.path)
        ram_per_vector = pipeline.ram_bytes_per_vector()  # memory-mapped files not counted
        if self.tables is not None and total:  # the table-scan files, not the flat codes
            held = self.tables.docs.nbytes + self.tables.factors.nbytes
            ram_per_vector = round(held / self.manifest.rows) + ROW_OVERHEAD_BYTES
        if ivf is not None and ivf.trained:  # the lists, not the flat codes
            ram_per_vector = ivf.ram_bytes_per_vector(max(total, 1))
        m = self.manifest
        return {
            "path": given["path"],
            "count": given["count"],
            "deleted": total - self.live_count,
            "dim": m.dim,
            "metric": m.metric,
            "spec": m.spec,
            "encoder": m.extra.get("encoder"),
            "segments": len(m.segments),
            "log_rows": len(self.tail),
            "calibration": given["calibration"],
            "ram_bytes_per_vector": ram_per_vector,
            "disk_bytes_per_vector": round(disk / total, 1) if total else None,
            "float32_bytes_per_vector": 4 * m.dim,
            "code_bytes_per_vector": {
                key: pipeline.bytes_per_vector(key) for key in pipeline.codecs
            },
            "upgrade": given["upgrade"],
            "id_kind": self.keys.kind,
            "ivf": None if ivf is None else ivf.describe(self.deleted.array, len(self.tail)),
        }

    def close(self) -> None:
        self.meta.close()
        self.segments, self.opened, self.ivf, self.segment_rows = [], {}, None, {}
        self.tables = None

    # -- the log, folded in -----------------------------------------------------------------
    def stale(self) -> bool:
        """Whether another handle committed since this view was loaded (two ``stat``s), or
        a finished model upgrade moved the collection."""
        if signature(self.dir) != self.signature or "moved_to" in self.manifest.extra:
            return True
        if not self.manifest.log:
            return False
        try:
            size = os.stat(os.path.join(self.dir, self.manifest.log)).st_size
        except FileNotFoundError:  # a flush replaced the log between the two stats
            return True
        return size > self.tail.end

    def replay_log(self) -> None:
        """Apply the log records committed since the view last read it."""
        records, end = read_log(self.path / self.manifest.log, self.tail.end)
        for record in records:
            self.apply(record)
        self.tail.end = end

    def apply(self, record: LogRecord) -> None:
        """Fold one log record (replayed, or just appended by this handle) into the view."""
        tail = self.tail
        if record.kind in ("add", "upsert"):
            ids, x = record.arrays["ids"], record.arrays["x"]
            if record.kind == "upsert":  # the replaced rows go in the same record
                rows, hit = self.live_rows_of(record.arrays["replaced"])
                self.deleted.mark(rows[hit])
            if self.idmap is not None:
                self.idmap.learn(ids, record.info.get("keys") or [])
            if len(x) and x.shape[1] != self.manifest.dim:
                raise CorruptCollectionError(f"the log of {self.path} holds vectors of another dim")
            tail.x.append(x)
            tail.meta.extend(record.info.get("metadata") or [None] * len(ids))
            tail.texts.extend(record.info.get("texts") or [None] * len(ids))
            self.ids.append(ids)
            self.deleted.append(np.zeros(len(ids), bool))
            if self.fitted:
                first = self.pipeline.first_key
                codes = {ORIGINAL: x, **self.pipeline.encode(x)}
                self.resident_codes.append(codes[first])
                for key, code in codes.items():
                    if key not in (first, ORIGINAL):
                        tail.codes.setdefault(key, GrowableArray(code[:0])).append(code)
            self.next_id = max(self.next_id, int(ids.max()) + 1)
        elif record.kind == "delete":
            rows, hit = self.live_rows_of(record.arrays["ids"])
            self.deleted.mark(rows[hit])
        elif record.kind == "meta":
            rows, hit = self.live_rows_of(record.arrays["ids"])
            metas = record.info.get("metadata") or []
            if len(metas) != len(rows):
                raise CorruptCollectionError(f"the log of {self.path} holds a bad meta record")
            committed = self.manifest.rows
            for row, live, meta in zip(rows.tolist(), hit.tolist(), metas):
                if not live:
                    continue
                if row >= committed:
                    tail.meta[row - committed] = meta
                else:
                    self.meta_overrides[row] = meta
        else:
            raise CorruptCollectionError(f"the log of {self.path} holds a {record.kind!r} record")
        tail.records.append(record)
        if self.bm25 is not None:
            bm25_apply(self.bm25, record)

    # -- rows -------------------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        """Whether the pipeline's calibrations exist (after the first segment); before, the
        few rows in the log are searched exactly."""
        return bool(self.manifest.segments)

    @property
    def live_count(self) -> int:
        return len(self.deleted.array) - self.deleted.count

    def live_rows(self) -> np.ndarray:
        return np.flatnonzero(~self.deleted.array)

    def live_rows_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row of each id, whether it is live). Segment rows are looked up in an index built
        once per view, the log's few rows on the fly: a single add costs O(log n), not a
        sort of every id."""
        ids = np.asarray(ids, np.int64)
        all_ids = self.ids.array
        if not len(all_ids):
            return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
        committed = self.manifest.rows
        if self.id_index is None:
            self.id_index = _last_rows(all_ids, 0, committed)
        rows, found = _lookup(*self.id_index, ids)
        if len(all_ids) > committed:  # the log's rows are newer: they win
            t_rows, t_found = _lookup(*_last_rows(all_ids, committed, len(all_ids)), ids)
            rows = np.where(t_found, t_rows, rows)
            found |= t_found
        return rows, found & ~self.deleted.array[rows]

    # -- stored arrays (the funnel's ``CodeSource``) ----------------------------------------
    def resident(self, key: str) -> np.ndarray:
        """All rows of the first-stage code, held in RAM. The flat first pass reads it; an
        IVF collection whose lists are trained searches those and its ``flat_blocks``
        instead, so this copy is only made if another path asks."""
        if key != self.pipeline.first_key:
            raise InvalidInputError(
                f"{key!r} is not held in RAM; only the first stage's codes "
                f"({self.pipeline.first_key!r}) are"
            )
        if self.resident_start:
            return np.concatenate([codes for _, codes in self.flat_blocks()])
        return self.resident_codes.array

    def scanned(self, key: str) -> np.ndarray | FlatCodes:
        """What the flat first pass scans (the funnel asks): the resident codes, or once every
        segment carries the table-scan files, those (in RAM) and the log's codes."""
        if self.tables is None or key != self.pipeline.first_key:
            return self.resident(key)
        return FlatCodes(
            self.tables,
            self.resident_codes.array,
            self.resident_start,
            lambda rows: self.gather(key, rows),
        )

    def flat_blocks(self) -> list[tuple[int, np.ndarray]]:
        """The first-stage codes of every row as (first row, codes) blocks: one in-memory
        block, or the segments' memory-mapped codes then the log's."""
        if not self.resident_start:
            return [(0, self.resident_codes.array)]
        first = self.pipeline.first_key
        blocks = [(entry.start, arrays[first]) for entry, arrays in self.segments]
        return [*blocks, (self.resident_start, self.resident_codes.array)]

    def gather(self, key: str, rows: np.ndarray) -> np.ndarray:
        """Rows of one stored array (``ids``, ``original`` or a code key), in the order given."""
        if key == "ids":
            return self.ids.array[rows]
        committed = self.manifest.rows
        in_tail = rows >= committed
        if key == self.pipeline.first_key and (self.fitted or not in_tail.any()):
            resident = self.resident_codes.array
            if not self.resident_start:
                return resident[rows]  # segments and the log's encoded rows
            out = np.empty((len(rows), *resident.shape[1:]), resident.dtype)
            out[in_tail] = resident[rows[in_tail] - self.resident_start]
            if not in_tail.all():
                out[~in_tail] = self._gather_segments(key, rows[~in_tail])
            return out
        if not in_tail.any():
            return self._gather_segments(key, rows)
        tail = self.tail.x if key == ORIGINAL else self.tail.codes[key]
        out = np.empty((len(rows), *tail.array.shape[1:]), tail.array.dtype)
        out[in_tail] = tail.array[rows[in_tail] - committed]
        if not in_tail.all():
            out[~in_tail] = self.gather(key, rows[~in_tail])
        return out

    def _gather_segments(self, key: str, rows: np.ndarray) -> np.ndarray:
        return self._segment_reader(key).take(rows)

    def _segment_reader(self, key: str) -> SegmentRows:
        reader = self.segment_rows.get(key)
        if reader is None:
            reader = SegmentRows([arrays[key] for _, arrays in self.segments], self.starts)
            self.segment_rows[key] = reader
        return reader

    def dots(self, key: str, rows: np.ndarray, queries: np.ndarray) -> np.ndarray | None:
        """(nq, c) inner products of ``queries`` with the float32 originals at ``rows``
        (nq, c; -1: none, -inf), read in place (the funnel's rescoring), or None where this
        view keeps them otherwise (then the funnel gathers them)."""
        if key != ORIGINAL or not self.segments or ORIGINAL not in self.segments[0][1]:
            return None
        committed = self.manifest.rows
        in_tail = rows >= committed
        out = self._segment_reader(key).dots(np.where(in_tail, -1, rows), queries)
        if out is not None and in_tail.any():  # the log's rows, in RAM: float64 sums too
            i, c = np.nonzero(in_tail)
            x = self.tail.x.array[rows[i, c] - committed].astype(np.float64)
            out[i, c] = np.einsum("nd,nd->n", x, np.asarray(queries, np.float64)[i])
        return out

    def originals(self, entry: SegmentEntry, arrays: dict[str, np.ndarray]) -> np.ndarray:
        if ORIGINAL in arrays:
            return arrays[ORIGINAL]
        codes = self.resident_codes.array  # spec "f32": the first stage is the original
        return codes[entry.start : entry.start + entry.rows]

    # -- metadata and texts of rows ---------------------------------------------------------
    def _rows_column(self, rows: np.ndarray, lookup, tail: list) -> list:
        """Values for live ``rows``: SQLite (by id) for segment rows, RAM for log rows.

        SQLite holds one entry per id, and another process's flush replaces an upserted id's
        entry in place before it commits: a view older than that commit then finds no entry for
        a row it holds live. That is :class:`StaleView` (the read runs again, on the new view
        once the writer has committed), never a ``None`` served as the row's metadata."""
        committed = self.manifest.rows
        ids = self.ids.array[rows]
        wanted = ids[rows < committed].tolist()
        found = lookup(wanted, committed)
        if len(found) < len(set(wanted)):
            raise StaleView
        return [
            found.get(i) if r < committed else tail[r - committed]
            for r, i in zip(rows.tolist(), ids.tolist())
        ]

    def texts_of_rows(self, rows: np.ndarray) -> list[str | None]:
        return self._rows_column(rows, self.meta.texts, self.tail.texts)

    def meta_of_rows(self, rows: np.ndarray) -> list[dict | None]:
        out = self._rows_column(rows, self.meta.metadata, self.tail.meta)
        overrides = self.meta_overrides
        if overrides:
            for i, row in enumerate(rows.tolist()):
                if row in overrides:
                    out[i] = overrides[row]
        return out

    # -- filters (slimvec.search.filters / columns) -----------------------------------------
    def allow(self, filter: Any) -> np.ndarray:  # noqa: A002
        """Live rows whose metadata matches ``filter`` (validated first: nothing runs on a
        malformed filter)."""
        node = parse_filter(filter)
        deleted = self.deleted.array
        allow = self.filter_columns().mask(node, len(deleted))
        return allow & ~deleted

    def filter_columns(self) -> MetadataColumns:
        """Typed metadata columns of the rows, built from the metadata on first use (segments'
        metadata from SQLite, the log's from RAM); the log records that come later are
        applied to them (new rows appended, rows a "meta" record rewrote replaced), so a
        write costs the next filtered call its own rows, not a rebuild. Deleted rows are
        masked by the tombstones at query time."""
        with self.lazy:
            return self._updated_columns()

    def _updated_columns(self) -> MetadataColumns:
        rows, records = len(self.ids.array), self.tail.records
        if self.columns is None:
            live = self.live_rows()
            columns = MetadataColumns.from_metadata(live, self.meta_of_rows(live))
            for field in self.manifest.extra.get("indexes", []):
                # a field that now holds mixed types stays unindexed (filters on it explain)
                with contextlib.suppress(InvalidInputError):
                    columns.create_index(field)
            self.columns = columns
        elif self.columns_seen != (rows, len(records)):
            known, seen = self.columns_seen
            rewritten = [r.arrays["ids"] for r in records[seen:] if r.kind == "meta"]
            if rewritten:
                changed, hit = self.live_rows_of(np.concatenate(rewritten))
                changed = np.unique(changed[hit & (changed < known)])
                self.columns.drop_rows(changed)
                self.columns.append(changed, self.meta_of_rows(changed))
            new = np.arange(known, rows)
            new = new[~self.deleted.array[new]]
            if len(new):
                self.columns.append(new, self.meta_of_rows(new))
        self.columns_seen = (rows, len(records))
        return self.columns

    # -- the keyword index (slimvec.sparse.bm25) --------------------------------------------
    def keyword_index(self, create: bool = False) -> BM25Index | None:
        """The BM25 index over stored texts (loaded on first use, log replayed into it), or
        None if there is none. Files a writer replaced under this view: :class:`StaleView`."""
        with self.lazy:
            if self.bm25 is not None:
                return self.bm25
            recorded = self.manifest.extra.get("bm25")
            if recorded:
                try:
                    index = BM25Index.load(self.path, recorded["files"])
                except CorruptCollectionError:
                    if signature(self.path) != self.signature:
                        raise StaleView from None  # a writer replaced them meanwhile
                    raise
            elif create or any(r.info.get("texts") for r in self.tail.records):
                index = BM25Index(**self.manifest.extra.get("keyword_options", {}))
            else:
                return None
            for record in self.tail.records:
                bm25_apply(index, record)
            self.bm25 = index
            return index


def bm25_apply(index: BM25Index, record: LogRecord) -> None:
    """Fold one log record into a keyword index."""
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


class CurrentView:
    """A handle's current view, and how it moves to a newer commit: a load that races another
    process's commit (files swept under it) is retried, and only damage that persists is
    reported; a catch-up replays the log's new records, or loads a new view after a commit.
    ``on_load(view)`` runs after every swap (the handle drops what belonged to the old one)."""

    def __init__(self, path: Path, row_format: type[RowFormat], pin: Any, on_load: Any = None):
        self.path, self.row_format, self.pin, self.on_load = path, row_format, pin, on_load
        self.view: View | None = None
        self.load()

    def load(self) -> None:
        """Make the latest commit the current view. Inside a read, whose view is pinned, it
        cannot: :class:`StaleView` has the read run again on a new view instead."""
        if not self.pin.holds_exclusive and self.pin.pinned:
            raise StaleView
        for attempt in range(LOAD_RETRIES):
            before = signature(self.path)
            try:
                view = View.load(self.path, self.row_format, self.view)
                break
            except CorruptCollectionError:
                if attempt == LOAD_RETRIES - 1 or signature(self.path) == before:
                    raise
        old, self.view = self.view, view
        if old is not None and old.meta is not view.meta:
            old.meta.close()
        if self.on_load is not None:
            self.on_load(view)

    def stale(self) -> bool:
        """Whether another handle committed since the view was loaded (two ``stat``s), or a
        finished model upgrade moved the collection."""
        return self.view.stale()

    def mark_stale(self) -> None:
        """The next catch-up reloads (the pinned view was found swept under a read)."""
        self.view.signature = None

    def catch_up(self, follow_move: bool = True) -> None:
        """Load the latest commit, or only replay the log records appended since (under the
        exclusive pin: no call is reading the view meanwhile). When a finished model upgrade
        moved the collection, follow it to the new space, as ``slimvec.open`` of the path
        would (unless ``follow_move`` is off: the finishing transaction itself stays)."""
        view = self.view
        if signature(view.dir) != view.signature:
            self.load()
        elif view.manifest.log:
            try:
                view.replay_log()
            except CorruptCollectionError:  # swept by a flush meanwhile: reload
                self.load()
        moved = self.view.manifest.extra.get("moved_to")
        if moved and follow_move:
            self.move(self.path / moved)

    def move(self, path: Path) -> None:
        """Follow the collection to ``path`` (a finished model upgrade's new space)."""
        self.close()
        self.view, self.path = None, path
        self.load()

    def keyword_index(self) -> BM25Index | None:
        """The view's keyword index; under the exclusive pin, files a writer replaced meanwhile
        are reloaded (inside a read, :class:`StaleView` re-runs the read)."""
        try:
            return self.view.keyword_index()
        except StaleView:
            if not self.pin.holds_exclusive:
                raise
            self.load()
            return self.view.keyword_index()

    def close(self) -> None:
        if self.view is not None:
            self.view.close()
