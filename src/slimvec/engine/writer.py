"""The writer: how a change reaches the disk, and the commit protocol.

**Transactions.** Under a lock file, one writer at a time, on an up-to-date view (log
replayed, leftovers of interrupted writes swept). A change becomes visible only through the
manifest's atomic replacement (``Manifest.commit``), after which the handle loads the new
commit as a new view; on any exception the view is reloaded from disk and uncommitted changes
are dropped.

**Small writes.** A small add, an upsert, a delete or a metadata update is one record appended
to the write-ahead log and ``fdatasync``-ed: durable when the call returns, no new files. The
record is folded into the writer's own view as a reader replaying the log would fold it.

**Segments.** Large adds, and the log once it holds ``FLUSH_ROWS`` rows, become a segment: new
files are written and fsynced, then the manifest is replaced (the only commit point). Segments
are merged in tiers (``MERGE_FANOUT`` of one size class into one), so their count stays
logarithmic, and the pipeline's calibrations are refitted as the collection grows
(``REFIT_GROWTH``); compaction rewrites the live rows into one segment.

**Commit hooks.** What else a commit must carry — the metadata database (rows, string keys,
the log's metadata updates folded in), the keyword index, the IVF lists — is kept up to date
by the :class:`CommitHook` objects in ``Writer.hooks``, each told about every segment commit,
merge and rewrite (a :class:`Commit`) just before the manifest is replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from slimvec.engine.incoming import Incoming, write_blocks
from slimvec.engine.rows import TABLE_FILES
from slimvec.engine.view import CurrentView, View, signature
from slimvec.errors import InvalidInputError
from slimvec.index import sizing
from slimvec.index.ivf import IVF_DIR, ivf_dirs
from slimvec.index.training import StagedLists, in_progress, train_in_commit
from slimvec.search.funnel import ORIGINAL
from slimvec.store.budget import fit_rows
from slimvec.store.files import save_array, save_arrays
from slimvec.store.idmap import new_keys, save_keys
from slimvec.store.lock import LOCK, sweep, write_lock
from slimvec.store.log import FLUSH_BYTES, FLUSH_ROWS, LogRecord, append_record, create_log
from slimvec.store.manifest import MANIFEST, Manifest, SegmentEntry
from slimvec.store.meta import MetaStore
from slimvec.store.segments import (
    SEGMENTS_DIR,
    extend_segment,
    has_files,
    segment_name,
)
from slimvec.validation import MAX_ID

#: Segments of one size class (rows within a factor MERGE_FANOUT) merged once this many exist.
MERGE_FANOUT = 8
#: Runs larger than this stay as they are: a merge copies every row of its run under the
#: write lock (such segments come from bulk adds, which are few).
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
#: Prefixes of top-level files the manifest names; others with them are leftovers.
#: ("filters-" and "metaupd-": files of the first filters format, which kept its metadata
#: columns on disk; the columns are now built in RAM, so such files are leftovers.)
OWN_PREFIXES = ("state-", "tombstones-", "meta-", "bm25-", "log-", "filters-", "metaupd-")


@dataclass
class Commit:
    """One commit being prepared, as the hooks see it. ``kind``: "segment" (rows appended:
    the log's and/or a large add's), "merge" (segments concatenated, rows unchanged) or
    "rewrite" (every live row anew from row 0: compaction, refits)."""

    kind: str
    view: View  # the view the commit is made from; ``view.manifest`` is being edited
    generation: int
    deleted: np.ndarray  # the new commit's tombstones
    start: int = 0  # row number of the first new row
    ids: np.ndarray | None = None  # new rows' internal ids (segment, rewrite)
    metas: list | None = None
    texts: list | None = None
    from_log: int = 0  # how many of the new rows were the log's (already in its indexes)
    refit: bool = False


class CommitHook:
    """Something a commit must keep up to date besides segments and tombstones."""

    def before_commit(self, commit: Commit) -> None:
        raise NotImplementedError


class MetadataHook(CommitHook):
    """The metadata database: new rows' metadata, texts and string keys; the log's metadata
    updates folded in; a fresh database for a rewrite."""

    def before_commit(self, c: Commit) -> None:
        view, m = c.view, c.view.manifest
        if c.kind == "rewrite":
            meta_db = f"meta-{c.generation:06d}.sqlite"
            (view.path / meta_db).unlink(missing_ok=True)
            fresh = MetaStore(view.path / meta_db, create=True)
            fresh.insert(c.ids, 0, c.metas, c.texts)
            if view.idmap is not None:
                save_keys(fresh.db, 0, c.ids, view.idmap.keys_of(c.ids))
            fresh.close()
            m.meta_db = meta_db
            return
        if c.kind != "segment":
            return
        if len(c.ids):
            view.meta.insert(c.ids, c.start, c.metas, c.texts)
            if view.idmap is not None:
                save_keys(view.meta.db, c.start, c.ids, view.idmap.keys_of(c.ids))
        overrides = view.meta_overrides
        if overrides:  # the log's "meta" records, into the metadata database
            rows = np.fromiter(overrides, np.int64, len(overrides))
            view.meta.update_metadata(
                zip(view.ids.array[rows].tolist(), rows.tolist(), overrides.values())
            )


class KeywordHook(CommitHook):
    """The BM25 index: new rows' texts added, one file per flush, compacted when rewritten."""

    def before_commit(self, c: Commit) -> None:
        if c.kind == "merge":
            return
        view, m = c.view, c.view.manifest
        keyword = view.keyword_index(create=c.kind == "segment" and c.texts is not None)
        if keyword is None:
            return
        if c.kind == "segment" and c.texts is not None:
            new_texts = c.texts[c.from_log :]
            keep = [i for i, t in enumerate(new_texts) if t is not None]
            if keep:
                keyword.add(c.ids[c.from_log :][keep], [new_texts[i] for i in keep])
        if c.kind == "rewrite" or len(m.extra.get("bm25", {}).get("files", [])) > MAX_KEYWORD_FILES:
            keyword.compact()  # one file again instead of one per flush
        m.extra["bm25"] = {"files": keyword.save(view.path, c.generation)}


class IVFHook(CommitHook):
    """An ``ivf:N`` collection's lists: built for segments lacking them; trained or retrained
    when due, in this commit or (a ``trainer``, large enough, no refit) after it, on the
    handle's trainer thread (``engine.background``): ``due`` then tells the writer to call
    ``trainer`` with the new view at the end of the write."""

    def __init__(self) -> None:
        self.trainer: Callable[[View], None] | None = None
        self.due = False

    def before_commit(self, c: Commit) -> None:
        ivf, path, m = c.view.ivf, c.view.path, c.view.manifest
        self.due = False
        if ivf is None:
            return
        joinable, merged = joinable_rows(m.segments), c.kind == "merge"
        if ivf.training_due(path, m, c.deleted, c.refit, merged):
            live = len(c.deleted) - int(np.count_nonzero(c.deleted))
            if self.trainer is None or c.refit or live < sizing.BACKGROUND_ROWS:
                train_in_commit(ivf, path, m, c.deleted, joinable)
                return
            ivf.complete(path, m, merged)  # this commit keeps the lists in use (or stays flat)
            self.due = True
        ivf.join(path, m, joinable, renumbered=c.kind == "rewrite")


def joinable_rows(segments: list[SegmentEntry]) -> int:
    """Where the last segment ends that the tier merges never take again (eight of its size
    class would pass ``MERGE_MAX_ROWS``): the rows an IVF joined set may cover
    (``index.joined``) without a merge straddling its end."""
    final = [e for e in segments if MERGE_FANOUT ** (_tier(e.rows) + 1) > MERGE_MAX_ROWS]
    return max((e.start + e.rows for e in final), default=0)


def _tier(rows: int) -> int:
    """A segment's size class: rows within a factor ``MERGE_FANOUT``."""
    return int(np.log(max(rows, 1)) / np.log(MERGE_FANOUT))


class Writer:
    """The writes of one handle, made on its current view (``current.view``); after each
    commit, or to drop uncommitted changes, ``current.load()`` makes the latest commit the
    handle's view."""

    def __init__(self, current: CurrentView):
        self.current = current
        self.ivf = IVFHook()
        self.hooks: list[CommitHook] = [MetadataHook(), KeywordHook(), self.ivf]

    @contextmanager
    def transaction(self, sync: Callable[[], None]) -> Iterator[Manifest]:
        """Hold the write lock on an up-to-date view and yield its manifest (see the module
        docstring); ``sync`` catches the handle up once the lock is held. A training the
        last commit left due starts at the end, from the state the whole write left."""
        path = self.current.view.path
        with write_lock(path):
            sync()
            self.sweep()
            self.ivf.due = False
            try:
                yield self.current.view.manifest
            except BaseException:
                self.current.load()
                self.sweep()  # what the failed write left (a partly written segment)
                raise
            if signature(path) != self.current.view.signature:  # committed without reloading
                self.current.load()
                self.sweep()
            if self.ivf.due:  # only ever set with a trainer
                self.ivf.trainer(self.current.view)

    # -- the log ----------------------------------------------------------------------------
    def log(self, record: LogRecord) -> None:
        """Append a record (durable on return), then flush if the log has grown enough."""
        view = self.current.view
        view.tail.end = append_record(view.path / view.manifest.log, view.tail.end, record)
        view.apply(record)
        if len(view.tail) >= FLUSH_ROWS or view.tail.end >= FLUSH_BYTES:
            self.flush()
            self.maintain()

    def add(self, x, given, metas, texts, progress=None):
        """New rows (``x``: an ``Incoming`` or checked rows): ids (string keys under fresh
        internal ids) checked against the live ones, then one log record (a small add) or a
        segment commit. Returns (internal ids, keys or None)."""
        view, keys = self.current.view, None
        if view.idmap is not None:
            keys = given if given is not None else new_keys(len(x))
            view.keys.reject_live_duplicates(view.idmap.ids_of(keys), keys)
            given = None
        new_ids = given if given is not None else self.next_ids(len(x))
        view.keys.reject_live_duplicates(new_ids)
        info: dict[str, Any] = {"metadata": metas, "texts": texts}
        if keys is not None:
            info["keys"] = keys
        if view.rows.logs_adds and view.manifest.log and len(x) < LOG_MAX_ROWS:
            rows = x.all() if isinstance(x, Incoming) else x
            self.log(LogRecord("add", {"ids": new_ids, "x": rows}, info))
        else:
            self.commit_rows(x, new_ids, keys, metas, texts, progress)
        return new_ids, keys

    def upsert(self, x, user, metas, texts) -> None:
        """Rows under the caller's ids ``user``, replacing the live ones: one log record
        (tombstones and new rows together), or a segment commit if it replaces nothing."""
        view = self.current.view
        info: dict[str, Any] = {"metadata": metas, "texts": texts}
        if view.idmap is not None:
            old, new_ids = view.idmap.ids_of(user), self.next_ids(len(x))
            info["keys"] = user
        else:
            old = new_ids = user
        _, live = view.live_rows_of(old)
        if not live.any() and len(x) >= LOG_MAX_ROWS:  # replaces nothing: an add's commit
            self.commit_rows(x, new_ids, info.get("keys"), metas, texts)
        else:
            self.record("upsert", {"ids": new_ids, "x": x, "replaced": old[live]}, info)

    def record(self, kind: str, arrays: dict[str, np.ndarray], info: dict | None = None) -> None:
        """One log record (a delete, a metadata update, an upsert), the log started first if
        the collection was written before the log existed."""
        self.ensure_log()
        self.log(LogRecord(kind, arrays, info or {}))

    def delete(self, user: Any, filter: Any) -> int:  # noqa: A002
        """Tombstone the rows of caller ids ``user`` (every one live) or, with ``filter``,
        those whose metadata matches (chosen here, under the write lock), as one log record;
        returns how many."""
        view = self.current.view
        if filter is not None:
            wanted = np.unique(view.ids.array[view.allow(filter)])
        else:
            wanted = view.keys.internal(user)
            view.keys.require_live(user, wanted, "deleted")
        if len(wanted):
            self.record("delete", {"ids": wanted})
        return len(wanted)

    def set_metadata(self, user: Any, metas: list[dict | None]) -> int:
        """Replace the metadata of live caller ids ``user`` (one log record)."""
        keys = self.current.view.keys
        wanted = keys.internal(user)
        keys.require_live(user, wanted, "updated")
        self.record("meta", {"ids": wanted}, {"metadata": metas})
        return len(wanted)

    def merge_metadata(self, user: Any, filter: Any, merge: dict) -> int:  # noqa: A002
        """Merge ``merge`` into the metadata of the live rows ``filter`` matches (among caller
        ids ``user``, if given): chosen, read and written under the write lock as one log
        record, so a concurrent writer's change is never lost between the read and the
        write."""
        view = self.current.view
        allow = ~view.deleted.array if filter is None else view.allow(filter)
        if user is not None:
            chosen = np.zeros_like(allow)
            chosen[view.keys.require_live(user, view.keys.internal(user), "updated")] = True
            allow &= chosen
        rows = np.flatnonzero(allow)
        if len(rows):
            metas = [{**(m or {}), **merge} for m in view.meta_of_rows(rows)]
            self.record("meta", {"ids": view.ids.array[rows]}, {"metadata": metas})
        return len(rows)

    def ensure_log(self) -> None:
        """A collection written before the log existed starts one."""
        view = self.current.view
        if not view.manifest.log:
            self._start_log(view, view.manifest.generation + 1)
            view.manifest.commit(view.path)
            self.current.load()

    def _start_log(self, view: View, generation: int) -> None:
        """Name a new, empty log in the manifest (committed by the caller)."""
        view.manifest.log = f"log-{generation:06d}.wal"
        create_log(view.path / view.manifest.log)

    def next_ids(self, n: int) -> np.ndarray:
        start = self.current.view.next_id
        if start + n - 1 > MAX_ID:
            raise InvalidInputError(
                f"automatic ids would pass the largest id {MAX_ID} (ids up to {start - 1} are "
                f"taken); give explicit ids below it"
            )
        return np.arange(start, start + n, dtype=np.int64)

    # -- segments ---------------------------------------------------------------------------
    def flush(self) -> None:
        """Fold the log into the segments now, if it holds anything."""
        view = self.current.view
        if view.manifest.log and view.tail.records:
            self.commit_segment(None, np.empty(0, np.int64), None, None)

    def commit_rows(self, x, ids, keys, metas, texts, progress=None) -> None:
        """New rows as one segment commit (the log's rows folded in), then merges."""
        if keys is not None:  # saved by the commit; a failed one reloads the view
            self.current.view.idmap.learn(ids, keys)
        self.commit_segment(x, ids, metas, texts, progress)
        self.maintain()

    def commit_segment(self, x, ids, metas, texts, progress=None) -> None:
        """One commit of the log's rows followed by ``x`` (may be None) as a new segment,
        the log's deletes as a tombstone file, and a fresh log. The pipeline is fitted first
        if it never was (on this segment's rows, the log's included: ``_fit``). Rows are
        read, checked and encoded block by block as the segment is written (``write_blocks``)."""
        view = self.current.view
        m, tail = view.manifest, view.tail
        generation, start = m.generation + 1, m.rows
        if isinstance(x, np.ndarray):  # checked rows (an upsert's)
            x = Incoming(x, cosine=False)
        if len(tail):  # single-vector collections only (multi-vector adds never log)
            n_new = 0 if x is None else len(x)
            x = (x if x is not None else Incoming(tail.x.array[:0], False)).after(tail.x.array)
            ids = np.concatenate([view.ids.array[m.rows :], ids])
            metas = tail.meta + (metas or [None] * n_new)
            texts = (
                None
                if texts is None and all(t is None for t in tail.texts)  # "" is a text
                else (tail.texts + (texts or [None] * n_new))
            )
        if x is not None and len(x):
            if not view.fitted:
                self._fit(view, x, generation)
            name = segment_name(generation)

            def block(lo: int, hi: int) -> dict[str, np.ndarray]:
                return {"ids": ids[lo:hi], **view.rows.encode_block(x, lo, hi)}

            write_blocks(view, name, len(x), block, progress, x)
            m.segments.append(SegmentEntry(name=name, start=m.rows, rows=len(ids)))
            m.rows += len(ids)
            m.next_id = max(m.next_id, int(ids.max()) + 1)
        view.deleted.append(np.zeros(m.rows - len(view.deleted.array), bool))
        deleted = view.deleted.array[: m.rows]
        self._run_hooks(
            Commit("segment", view, generation, deleted, start, ids, metas, texts, len(tail))
        )
        self._write_tombstones(view, generation, deleted)
        m.next_id = max(m.next_id, view.next_id)
        self._start_log(view, generation)
        self._commit(view)

    def _run_hooks(self, commit: Commit) -> None:
        for hook in self.hooks:
            hook.before_commit(commit)

    def _commit(self, view: View) -> None:
        view.manifest.commit(view.path)
        self.current.load()
        self.sweep()  # the replaced files

    def install_lists(self, staged: StagedLists) -> bool:
        """Commit lists trained apart (``index.training``) if they still fit the collection;
        whether they were."""
        view = self.current.view
        if view.ivf is None or not staged.fits(view.manifest):
            return False
        staged.install(view.manifest, joinable_rows(view.manifest.segments))
        self._commit(view)
        return True

    def _save_state(self, view: View, generation: int, fitted_on: int) -> None:
        state = view.rows.state()
        m = view.manifest
        m.state_file = None
        if state:
            m.state_file = f"state-{generation:06d}.npz"
            save_arrays(view.path / m.state_file, state)
        m.fitted_on = fitted_on

    def _write_tombstones(self, view: View, generation: int, deleted: np.ndarray) -> None:
        m = view.manifest
        count = int(np.count_nonzero(deleted))
        if count != m.deleted or (count and m.tombstones is None):
            m.tombstones = None
            if count:
                m.tombstones = f"tombstones-{generation:06d}.npy"
                save_array(view.path / m.tombstones, np.packbits(deleted))
            m.deleted = count

    def _fit(self, view: View, x: Any, generation: int) -> None:
        """Fit on the first segment's rows (a sample of them past ``fit_rows``: they stand
        for all of them, so refits come as if every row had been taken)."""
        view.rows.fit_first(x, generation)
        self._save_state(view, generation, len(x))

    def create_index(self, field: str) -> None:
        """Record a sorted index of metadata ``field`` (built in RAM by the filter columns,
        which refuse a field of mixed types)."""
        view = self.current.view
        view.filter_columns().create_index(field)
        indexes = list(view.manifest.extra.get("indexes", []))
        if field not in indexes:
            view.manifest.extra["indexes"] = [*indexes, field]
            view.manifest.commit(view.path)

    # -- upkeep: refits, merges, compaction -------------------------------------------------
    def refit_due(self, view: View) -> bool:
        return view.rows.refits and view.live_count >= REFIT_GROWTH * max(view.fitted_on, 1)

    def maintain(self) -> None:
        """After a segment was added: refit calibrations that the collection outgrew, and
        merge segments so their count stays logarithmic (bounded work, under the lock)."""
        view = self.current.view
        upgrading = "upgrade" in view.manifest.extra
        if view.fitted_on < REFIT_ENOUGH and self.refit_due(view) and not upgrading:
            self.rewrite(refit=True)
            return
        self.add_tables()
        while (run := self._merge_candidate()) is not None:
            self._merge(*run)

    def add_tables(self) -> None:
        """Segments written before the table-scan files existed get them (a collection is
        converted at its first write that commits: until then its view scans the codes): each
        becomes a new segment of hard links to its files plus the new ones, one commit each
        (``extend_segment``; kill -9 leaves the last commit, the sweep removes the rest)."""
        view = self.current.view
        if not view.rows.table_scan:
            return
        for i, entry in enumerate(list(view.manifest.segments)):
            if has_files(view.path, entry.name, TABLE_FILES):
                continue
            view = self.current.view
            m = view.manifest
            rows = np.arange(entry.start, entry.start + entry.rows)
            codes = {view.pipeline.first_key: view.gather(view.pipeline.first_key, rows)}
            generation = m.generation + 1
            name = segment_name(generation)
            extend_segment(view.path, entry.name, name, view.rows.table_arrays(codes))
            m.segments[i] = SegmentEntry(name=name, start=entry.start, rows=entry.rows)
            self._run_hooks(Commit("merge", view, generation, view.deleted.array[: m.rows]))
            self._commit(view)

    def _merge_candidate(self) -> tuple[int, int] | None:
        """(first, stop) segment indices of a run to merge, or None: MERGE_FANOUT neighbours
        of one size class, or past MAX_SEGMENTS the smallest neighbouring pair."""
        entries = self.current.view.manifest.segments
        tiers = [_tier(e.rows) for e in entries]
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
        view = self.current.view
        m = view.manifest
        run = m.segments[first:stop]
        rows = np.arange(run[0].start, run[-1].start + run[-1].rows)
        generation = m.generation + 1
        name = segment_name(generation)
        stored = view.rows.stored(view, rows)
        write_blocks(view, name, len(rows), stored.block, source=stored)
        m.segments[first:stop] = [SegmentEntry(name=name, start=run[0].start, rows=len(rows))]
        self._run_hooks(Commit("merge", view, generation, view.deleted.array[: m.rows]))
        self._commit(view)

    def compact(self) -> None:
        """Flush, then rewrite the live rows into one segment if anything is to be gained
        (deleted rows, several segments, calibrations outgrown)."""
        self.flush()
        view = self.current.view
        m, refit = view.manifest, self.refit_due(view)
        if m.deleted == 0 and len(m.segments) <= 1 and not refit:
            self.add_tables()
            return
        self.rewrite(refit=refit and view.fitted_on < REFIT_ENOUGH)

    def rewrite(self, refit: bool) -> None:
        """All live rows into one new segment with a fresh metadata database; with ``refit``
        the pipeline is first refitted on (a sample of) them and every code re-encoded."""
        view = self.current.view
        m = view.manifest
        live = view.live_rows()
        generation = m.generation + 1
        if refit and len(live):
            sample, limit = live, min(REFIT_ENOUGH, fit_rows(m.dim))  # the add budget's
            if len(live) > limit:
                rng = np.random.default_rng(generation)
                sample = np.sort(rng.choice(live, limit, replace=False))
            view.rows.fit(view.gather(ORIGINAL, sample), None)
            self._save_state(view, generation, len(sample))

            def block(lo: int, hi: int) -> dict[str, np.ndarray]:
                originals = view.gather(ORIGINAL, live[lo:hi])
                codes = view.pipeline.encode(originals)
                return {"ids": view.ids.array[live[lo:hi]], ORIGINAL: originals, **codes}

            source = None
        else:
            source = view.rows.stored(view, live)
            block = source.block
        name = segment_name(generation)
        if len(live):  # else no segment is named (an empty one has nothing to write)
            write_blocks(view, name, len(live), block, source=source)
        ids = view.ids.array[live]
        commit = Commit(
            "rewrite",
            view,
            generation,
            np.zeros(len(live), bool),
            ids=ids,
            metas=view.meta_of_rows(live),  # read before the manifest below changes
            texts=view.texts_of_rows(live),
            refit=refit,
        )
        m.segments = [SegmentEntry(name=name, start=0, rows=len(live))] if len(live) else []
        m.rows = len(live)
        m.deleted = 0
        m.tombstones = None
        self._run_hooks(commit)
        self._commit(view)

    def sweep(self) -> None:
        """Remove files of interrupted writes (anything the manifest does not name)."""
        view = self.current.view
        m = view.manifest
        training = in_progress(view.path / IVF_DIR)  # other handles' trainings, still running
        subdirs = {SEGMENTS_DIR: {e.name for e in m.segments}, IVF_DIR: ivf_dirs(m) | training}
        sweep(view.path, m.files | {MANIFEST, LOCK}, OWN_PREFIXES, subdirs)


def describe_refits(view: View) -> dict[str, Any]:
    """``info()["calibration"]``: what the calibrations were fitted on, when they refit."""
    refit_at = (
        REFIT_GROWTH * view.fitted_on
        if view.rows.refits and view.fitted and view.fitted_on < REFIT_ENOUGH
        else None
    )
    return {
        "fitted_on": view.fitted_on,
        "refit_at": refit_at,
        "note": None
        if view.fitted
        else f"not fitted yet: the first {FLUSH_ROWS} rows are searched exactly, then "
        f"the pipeline is fitted on them",
    }
