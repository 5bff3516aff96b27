"""IVF: the first stage's RaBitQ codes split into k-means lists, so a query reads only a few.

A flat first pass reads every code: its cost grows with the collection (1.6 ms per query at 1M
in a batch, so 16 ms at 10M). ``ivf:N | rabitq... > ...`` (``spec.py``) groups the codes by
their nearest of N centroids; a query scores only the codes of its ``nprobe`` nearest lists
and hands that shortlist to the funnel's later stages as before.

**Training.** The N centroids come from FAISS's k-means (``faiss.Kmeans``) on a sample of the
live vectors as the first stage sees them (after transforms and its ``@D`` prefix), once the
collection holds ``train_rows`` live vectors: ``max(FLAT_ROWS, MIN_PER_LIST * N)``. Before
that search stays the flat scan (``info()["ivf"]`` says so). They are retrained when the live
count reaches ``RETRAIN_GROWTH`` x the count they were trained at, when new rows crowd into a
few lists (their skew, ``sizing.list_skew``, reaches ``REBALANCE_SKEW`` x the skew at
training: rebalanced), and whenever the pipeline is refitted (its space changed). These rules
and their constants live in ``index.sizing``; ``index.training`` trains (large trainings on
the handle's background thread, ``engine.background``).

**``ivf:auto``** (the default spec) is the same index with two choices made for the user: it
stays flat until ``AUTO_ROWS`` live vectors, where the measured flat scan stops being the
cheaper plan, and N is ``suggested_nlist`` of the live count at each training, so a
collection that grows 4x is retrained into 2x the lists (N follows sqrt(n)). Its default
nprobe is measured at each training (``index.calibrate``), not N/16. The manifest records
both.

**Codes.** Each list stores RaBitQ codes of the residual x - c_l to its own centroid (the
flat codes use the data mean): residuals are shorter, so the estimate of <q, x> = <q, c_l> +
<q, x - c_l> is tighter; the scan adds <q, c_l> per probed list.

**Files** (committed with the segments they describe, by the same manifest write)::

    ivf/c<gen>/centroids.npy              (N, d) float32
    ivf/<segment>.c<gen>/nibbles.npy      (blocks * 32 * plane bytes,) uint8: the codes' bit
                                          planes grouped by list, each list in blocks of 32
                                          rows interleaved for the 4-bit table scan
                                          (``kernels.ivfscan``; memory-mapped)
                         scalars.npy      (2, rows) float32: RaBitQ's F and L per position
                         perm.npy         (rows,) int32: the segment row of each position
                         offsets.npy      (N + 1,) int64: list l is offsets[l]:offsets[l+1]

Segments are immutable and so are their lists: every new segment gets lists before the
commit that names it. A log flush, bulk add or compaction builds them from its stored vectors;
a merge (rows unchanged) joins its segments' lists list by list (the same files, without
reading or encoding a vector). The segments the merges no longer take are also joined into one
set that the scan reads instead of their own lists (``index.joined``), so a probed list is
one run rather than a piece per segment. Deleted rows are skipped through the same
allow-mask as everywhere else. The log's rows (at most ``FLUSH_ROWS``, not yet in a
segment) are scanned whole with their flat codes.

**Memory.** Once the lists are trained a collection keeps its segments' flat first-stage codes
memory-mapped instead of in RAM (``Collection._load_once``): unfiltered queries read only the
centroids and the probed lists, and the flat codes' pages are touched only by the filtered
fallback below, merges and compaction.

**Filters.** A filtered search widens ``nprobe`` by 1 / selectivity, and a query whose probed
lists held fewer allowed rows than its shortlist is re-run as the flat masked scan: never
fewer than k results when at least k rows match.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from slimvec.codecs.rabitq import RaBitQCodec
from slimvec.errors import CorruptCollectionError, InvalidInputError
from slimvec.index import sizing
from slimvec.index.calibrate import GOAL
from slimvec.index.joined import joined_dir, joined_rows, rejoin, write_joined
from slimvec.index.legacy import word_major_lists
from slimvec.kernels.ivfscan import (
    ROWS,
    ListSet,
    interleave_rows,
    list_blocks,
    probe_top,
    query_tables,
)
from slimvec.kernels.threads import one_blas_thread
from slimvec.kernels.topk import select_top
from slimvec.search.funnel import ROW_OVERHEAD_BYTES, CodeSource, Pipeline
from slimvec.spec import AUTO_LISTS, MAX_NLIST
from slimvec.store.budget import block_rows
from slimvec.store.files import fsync_dir, load_array, save_array
from slimvec.store.manifest import Manifest, SegmentEntry

IVF_DIR = "ivf"
#: Rows encoded at a time when building lists; assignment works in blocks of ~``ASSIGN_FLOATS``.
CHUNK = 65_536
#: ... and at most this many floats (``CHUNK`` rows of 384 dims).
CHUNK_FLOATS = CHUNK * 384
ASSIGN_FLOATS = 1 << 24
#: (collection path, segment, rows or None) -> that segment's pipeline input, sliceable.
StoredVectors = Callable[..., Any]
_TAG = re.compile(r"^c\d{6,12}$")


def ivf_dirs(manifest: Manifest) -> set[str]:
    """Entries of ``ivf/`` that ``manifest`` names (the rest are leftovers to sweep)."""
    tag = (manifest.extra.get("ivf") or {}).get("centroids")
    if not tag:
        return set()
    joined = joined_dir(manifest)
    return {tag} | {f"{e.name}.{tag}" for e in manifest.segments} | ({joined} if joined else set())


@dataclass
class SegmentLists:
    """One segment's codes grouped by list."""

    start: int  # first global row of the segment
    codes: np.ndarray  # uint8, memory-mapped: ``kernels.ivfscan.interleave``'s layout
    scalars: np.ndarray  # (2, rows) float32, memory-mapped: F and L of each position
    perm: np.ndarray  # (rows,) int32: segment row of each position
    offsets: np.ndarray  # (nlist + 1,) int64

    @cached_property
    def blocks(self) -> np.ndarray:
        """(nlist + 1,) int64: list l's codes are blocks ``blocks[l]:blocks[l + 1]``."""
        return list_blocks(self.offsets)

    def live_sizes(self, deleted: np.ndarray) -> np.ndarray:
        """Live rows per list (``deleted``: the segment's tombstones)."""
        lists = np.repeat(np.arange(len(self.offsets) - 1), np.diff(self.offsets))
        return np.bincount(lists[~deleted[self.perm]], minlength=len(self.offsets) - 1)


class IVFIndex:
    """The IVF state of a collection's current view: centroids and each segment's lists
    (untrained: ``centroids`` is None and search is flat)."""

    def __init__(self, nlist: int, pipeline: Pipeline, vectors: StoredVectors | None = None):
        #: ``ivf:auto``: ``nlist`` is 0 until the lists are trained, then the N in use
        self.auto = nlist == AUTO_LISTS
        self.nlist = nlist
        self.pipeline = pipeline
        #: a stored segment's pipeline input (``RowFormat.pipeline_input``; a multi-vector
        #: collection re-encodes FDEs from its tokens); needed only to train and build lists
        self.vectors = vectors
        self.stage = pipeline.spec.stages[0]
        codec = pipeline.codecs[pipeline.first_key]
        if not isinstance(codec, RaBitQCodec):  # spec.py refuses such specs
            raise InvalidInputError("'ivf:N' needs a 'rabitq' first stage")
        self.codec = codec
        self.centroids: np.ndarray | None = None
        self._half_norms: tuple[np.ndarray, np.ndarray] | None = None  # (centroids, |c|^2/2)
        self.trained_on = 0
        self.trained_skew: float | None = None  # ``sizing.list_skew`` when trained
        #: what the scan reads: the joined set (``index.joined``) and the lists of the
        #: segments after it
        self.lists: list[SegmentLists] = []
        self.segment_lists: dict[str, SegmentLists] = {}  # every segment's own lists
        self.joined: SegmentLists | None = None
        self._list_set: tuple[list[SegmentLists], ListSet] | None = None
        self.built: set[str] = set()  # complete entries of ivf/ (committed or just written)
        #: ``ivf:auto``'s measured nprobe (``index.calibrate``); None: ``default_nprobe``
        self.nprobe: int | None = None
        self.calibrated_recall: float | None = None

    @property
    def trained(self) -> bool:
        return self.centroids is not None

    @property
    def half_norms(self) -> np.ndarray:
        """|c|^2 / 2 per centroid (L2 nearness = <v, c> - |c|^2 / 2), kept per centroid set."""
        c = self.centroids
        if self._half_norms is None or self._half_norms[0] is not c:
            self._half_norms = (c, 0.5 * np.einsum("ij,ij->i", c, c))
        return self._half_norms[1]

    def list_set(self) -> ListSet:
        """``self.lists`` as the scan takes them (built once per set of lists)."""
        if self._list_set is None or self._list_set[0] is not self.lists:
            segments = [
                {"start": lists.start, "offsets": lists.offsets, "blocks": lists.blocks,
                 "perm": lists.perm, "docs": lists.codes, "w": lists.scalars[0],
                 "lterm": lists.scalars[1]}
                for lists in self.lists
            ]  # fmt: skip
            self._list_set = (self.lists, ListSet.of(segments, self.nlist))
        return self._list_set[1]

    @property
    def train_rows(self) -> int:
        """Live vectors needed before the lists are trained."""
        return sizing.AUTO_ROWS if self.auto else sizing.train_rows(self.nlist)

    @property
    def default_nprobe(self) -> int:
        """Lists a search reads when it names no ``nprobe``: measured for ``ivf:auto``."""
        return self.nprobe or sizing.default_nprobe(self.nlist)

    def lists_for(self, live: int) -> int:
        """Lists to train for ``live`` vectors: the spec's N, or ``ivf:auto``'s choice."""
        return sizing.suggested_nlist(live) if self.auto else self.nlist

    def ram_bytes_per_vector(self, rows: int) -> int:
        """What a trained index needs resident per row to search at speed: the lists (memory-
        mapped, but every query touches its probed ones), ids and tombstones, and a share of
        the centroids. The flat codes are not counted: the IVF search leaves them on disk."""
        share = math.ceil(4 * self.nlist * self.codec.dim / max(rows, 1))
        return sizing.list_bytes_per_vector(self.codec) + ROW_OVERHEAD_BYTES + share

    # -- loading ----------------------------------------------------------------------------
    @classmethod
    def load(
        cls, path: Path, manifest: Manifest, pipeline: Pipeline, vectors: StoredVectors
    ) -> IVFIndex | None:
        """The IVF state ``manifest`` commits (None for a spec without ``ivf:N``)."""
        if pipeline.spec.ivf is None:
            return None
        index = cls(pipeline.spec.ivf, pipeline, vectors)
        info = manifest.extra.get("ivf")
        if not info:
            return index
        tag = info.get("centroids")
        if not isinstance(tag, str) or not _TAG.match(tag):
            raise CorruptCollectionError(f"{path} names IVF centroids {tag!r}: it is damaged")
        if index.auto:
            nlist = info.get("nlist")
            if not _count_in(nlist, MAX_NLIST):
                raise CorruptCollectionError(f"{path} names {nlist!r} IVF lists: it is damaged")
            index.nlist = nlist
            nprobe = info.get("nprobe")
            if nprobe is not None and not _count_in(nprobe, nlist):
                raise CorruptCollectionError(f"{path} names nprobe {nprobe!r}: it is damaged")
            index.nprobe = nprobe
            index.calibrated_recall = info.get("calibrated_recall")
        centroids = _read(path / IVF_DIR / tag / "centroids.npy", False)
        if centroids.shape != (index.nlist, index.codec.dim) or centroids.dtype != np.float32:
            raise CorruptCollectionError(
                f"IVF centroids {path / IVF_DIR / tag} hold {centroids.dtype}{centroids.shape}, "
                f"not float32({index.nlist}, {index.codec.dim}): the collection is damaged; "
                f"restore it from a backup"
            )
        if not np.isfinite(centroids).all():
            raise CorruptCollectionError(f"IVF centroids {path / IVF_DIR / tag} hold NaN or inf")
        index.centroids = centroids
        index.trained_on = int(info.get("trained_on", 0))
        skew = info.get("skew")
        index.trained_skew = float(skew) if isinstance(skew, (int, float)) else None
        index.segment_lists = {
            entry.name: index.open_lists(path / IVF_DIR / f"{entry.name}.{tag}", entry)
            for entry in manifest.segments
        }
        joined = joined_dir(manifest)
        rows = joined_rows(manifest)
        if joined is not None:
            covered = SegmentEntry(name=joined, start=0, rows=rows)
            index.joined = index.open_lists(path / IVF_DIR / joined, covered)
        after = [index.segment_lists[e.name] for e in manifest.segments if e.start >= rows]
        index.lists = ([index.joined] if index.joined is not None else []) + after
        index.built = ivf_dirs(manifest)
        return index

    def open_lists(self, folder: Path, entry: SegmentEntry) -> SegmentLists:
        """Segment ``entry``'s lists, as written in ``folder`` (memory-mapped, checked)."""
        perm = _read(folder / "perm.npy", False)
        offsets = _read(folder / "offsets.npy", False)
        ok = (
            perm.shape == (entry.rows,)
            and perm.dtype == np.int32
            and offsets.shape == (self.nlist + 1,)
            and offsets.dtype == np.int64
            and offsets[0] == 0
            and offsets[-1] == entry.rows
            and bool((np.diff(offsets) >= 0).all())
            and (entry.rows == 0 or 0 <= int(perm.min()) <= int(perm.max()) < entry.rows)
        )
        layout = self._read_codes(folder, entry.rows, offsets) if ok else None
        if layout is None:
            raise CorruptCollectionError(
                f"IVF lists in {folder} do not match segment {entry.name} ({entry.rows} rows, "
                f"{self.nlist} lists): the collection is damaged; restore it from a backup"
            )
        codes, scalars = layout
        return SegmentLists(entry.start, codes, scalars, perm, offsets)

    def _read_codes(
        self, folder: Path, rows: int, offsets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """A segment's list codes and (2, rows) F and L (memory-mapped), or None if their
        sizes are wrong. Lists written before the table scan (``words.npy``: uint64 words,
        blocks of 256 rows word-major; ``factors.npy``: (rows, 2)) are converted in memory;
        the next retrain writes the new layout."""
        fs = self.codec.factor_start
        if not (folder / "nibbles.npy").exists() and (folder / "words.npy").exists():
            words = _read(folder / "words.npy", True)
            factors = _read(folder / "factors.npy", True)
            return word_major_lists(words, factors, offsets, fs)
        codes = _read(folder / "nibbles.npy", True)
        scalars = _read(folder / "scalars.npy", True)
        if codes.shape != (int(list_blocks(offsets)[-1]) * ROWS * fs,) or codes.dtype != np.uint8:
            return None
        if scalars.shape != (2, rows) or scalars.dtype != np.float32:
            return None
        return codes.view(np.ndarray), scalars.view(np.ndarray)

    # -- writing (under the collection's write lock, before its manifest commit) ------------
    def training_due(
        self,
        path: Path,
        manifest: Manifest,
        deleted: np.ndarray,
        refit: bool = False,
        merged: bool = False,
    ) -> bool:
        """Whether ``manifest`` (about to be committed) needs its lists (re)trained: the
        caller then trains them (``index.training``) or calls ``complete``. ``deleted``:
        tombstones of ``manifest``'s rows; ``refit``: the pipeline was refitted; ``merged``:
        the commit concatenates segments, rows unchanged (``complete`` joins their lists).

        Too few live vectors: flat (no lists named), not due. Not trained yet, or refitted
        (the codes' space changed, the old lists no longer describe the codes): due, and
        the manifest names no lists until the caller trains. Grown ``RETRAIN_GROWTH``-fold:
        due. Otherwise the segments new since the lists were trained get lists (``complete``)
        and it is due only if they made the lists lopsided."""
        live = len(deleted) - int(np.count_nonzero(deleted))
        info = manifest.extra.get("ivf")
        if info is None or refit:
            manifest.extra.pop("ivf", None)
            return live >= self.train_rows
        if live >= self.retrain_at(info):
            return True
        self.complete(path, manifest, merged)
        return self.lopsided(path, manifest, info)

    def complete(self, path: Path, manifest: Manifest, merged: bool = False) -> None:
        """Lists under the centroids ``manifest`` names for its segments lacking them, so
        that its commit is complete (nothing to do while flat). ``merged``: a segment made of
        whole listed segments (rows unchanged) gets their lists joined, not rebuilt."""
        info = manifest.extra.get("ivf")
        if info is None:
            return
        tag = info["centroids"]
        for entry in manifest.segments:
            name = f"{entry.name}.{tag}"
            if name not in self.built:
                parts = self._parts_of(entry) if merged else None
                if parts:
                    write_joined(parts, entry.start, path / IVF_DIR / name,
                                 self.codec.factor_start, self.nlist)  # fmt: skip
                else:
                    self.write_lists(path, entry, path / IVF_DIR / name)
                self.built.add(name)
        fsync_dir(path / IVF_DIR)

    def join(self, path: Path, manifest: Manifest, joinable: int, renumbered: bool) -> None:
        """Keep ``manifest``'s joined set (``index.joined``) fitting, and write it again over
        rows ``[0, joinable)`` when they grew enough; after ``complete``."""
        if rejoin(self, path / IVF_DIR, manifest, self.segment_lists, joinable, renumbered):
            self.built.add(joined_dir(manifest))
            fsync_dir(path / IVF_DIR)

    def _parts_of(self, entry: SegmentEntry) -> list[SegmentLists] | None:
        """The current lists that cover exactly ``entry``'s rows, in order (None if any row
        is in none of them)."""
        by_start = {lists.start: lists for lists in self.segment_lists.values()}
        parts, row, stop = [], entry.start, entry.start + entry.rows
        while row < stop and (part := by_start.get(row)) is not None:
            parts.append(part)
            row += len(part.perm)
        return parts if row == stop else None

    def retrain_at(self, info: dict[str, Any]) -> int:
        """Live count at which lists trained as ``info`` (the manifest's) are retrained."""
        return sizing.RETRAIN_GROWTH * max(int(info["trained_on"]), 1)

    def lopsided(self, path: Path, manifest: Manifest, info: dict[str, Any]) -> bool:
        """Whether the lists named by ``info`` became ``REBALANCE_SKEW`` times as skewed as
        they were when trained (lists trained before skew was recorded are not judged;
        deleted rows count: they stay in the lists until a compaction)."""
        trained = info.get("skew")
        if not isinstance(trained, (int, float)):
            return False
        sizes = stored_sizes(path / IVF_DIR, manifest, info["centroids"])
        return sizing.list_skew(sizes) >= sizing.REBALANCE_SKEW * trained

    def fresh(
        self, pipeline: Pipeline | None = None, vectors: StoredVectors | None = None
    ) -> IVFIndex:
        """An untrained index of the same spec (what a training fills in), on this index's
        pipeline or a copy of it (a background training's, safe from later refits)."""
        nlist = AUTO_LISTS if self.auto else self.nlist
        return IVFIndex(nlist, pipeline or self.pipeline, vectors or self.vectors)

    def write_lists(self, path: Path, entry: SegmentEntry, folder: Path) -> None:
        """Assign a segment's rows to their nearest centroid and write its grouped codes."""
        lists = self.group(self.vectors(path, entry), entry.start, viewed=False)
        folder.mkdir(parents=True, exist_ok=True)
        save_array(folder / "nibbles.npy", lists.codes)
        save_array(folder / "scalars.npy", lists.scalars)
        save_array(folder / "perm.npy", lists.perm)
        save_array(folder / "offsets.npy", lists.offsets)
        fsync_dir(folder)

    def group(self, x: np.ndarray, start: int = 0, viewed: bool = True) -> SegmentLists:
        """Rows ``x`` (as the first stage sees them if ``viewed``, else as stored) assigned to
        their nearest centroid, their residual codes grouped by list, in RAM (``write_lists``
        writes them; ``slimvec advise`` searches them in memory)."""
        n = len(x)
        assign = np.empty(n, np.int32)
        codes = np.empty((n, self.codec.width), np.uint8)
        step = self._step(x)
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            view = x[lo:hi] if viewed else self._view(x[lo:hi])
            lists = self.assign(view)
            assign[lo:hi] = lists
            codes[lo:hi] = self.codec.encode(view, origin=self.centroids[lists])
        perm = np.argsort(assign, kind="stable").astype(np.int32)
        offsets = np.zeros(self.nlist + 1, np.int64)
        np.cumsum(np.bincount(assign, minlength=self.nlist), out=offsets[1:])
        fs = self.codec.factor_start
        scalars = np.ascontiguousarray(codes[perm, fs : fs + 8].view(np.float32).T)
        docs = interleave_rows(codes, perm, offsets, fs, self._step(x))
        return SegmentLists(start, docs, scalars, perm, offsets)

    @staticmethod
    def _step(x: Any) -> int:
        """Rows of ``x`` per block: the add budget's (``store.budget``), ``CHUNK_FLOATS``."""
        return max(1, min(CHUNK_FLOATS // max(x.shape[1], 1), block_rows(x.shape[1])))

    def _view(self, x: np.ndarray) -> np.ndarray:
        """What the first stage's codec sees of vectors ``x``."""
        z = self.pipeline.transform(np.asarray(x, np.float32))
        return np.ascontiguousarray(self.pipeline.stage_view(z, self.stage), np.float32)

    def assign(self, view: np.ndarray) -> np.ndarray:
        """Nearest centroid (L2, as k-means assigned its training vectors) of each row."""
        c, half_norms = self.centroids, self.half_norms
        out = np.empty(len(view), np.int32)
        step = max(1, ASSIGN_FLOATS // self.nlist)
        for start in range(0, len(view), step):
            block = view[start : start + step] @ c.T - half_norms
            out[start : start + step] = np.argmax(block, axis=1)
        return out

    # -- searching --------------------------------------------------------------------------
    @one_blas_thread()  # the matmuls here are small; the list scan wants the cores
    def search(
        self,
        queries: np.ndarray,
        k: int,
        source: CodeSource,
        allow: np.ndarray | None,
        flat: Sequence[tuple[int, np.ndarray]],
        committed: int,
        nprobe: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The funnel with an IVF first pass: rows and scores of the top ``k`` per query.

        ``flat``: the flat first-stage codes of every row as (first row, codes) blocks in row
        order (a collection's segments memory-mapped, its log in RAM). Rows from ``committed``
        on (the log's, in no list yet) are scanned there whole; the other blocks are read only
        by the masked flat scan a filtered query falls back to. ``allow`` masks rows
        (tombstones, filters); ``source`` serves the later stages.
        """
        pipeline, codec = self.pipeline, self.codec
        z = pipeline.transform(queries)
        view = np.ascontiguousarray(pipeline.stage_view(z, self.stage), np.float32)
        nq = len(view)
        keep = k * (self.stage.keep or 1)
        total = sum(len(codes) for _, codes in flat)
        allowed = total if allow is None else int(np.count_nonzero(allow))
        nprobe = self.widened(self.nprobe_for(nprobe), allowed, total)
        probes, qa = self.probe(view, nprobe)
        prepared = codec.quantised(codec.prepare(view))
        tables = query_tables(prepared.planes, codec.bits)
        parts_rows, parts_scores = [], []
        seen = np.zeros(nq, np.int64)
        if self.lists:  # every segment's lists in one scan
            rows, scores, seen = probe_top(
                tables, qa, prepared.delta, prepared.lo, prepared.qsums, probes,
                self.list_set(), -codec.half, keep, allow,
            )  # fmt: skip
            parts_rows.append(rows)
            parts_scores.append(scores)
        tail = [
            (max(start, committed), codes[max(0, committed - start) :]) for start, codes in flat
        ]
        tail = [(start, codes) for start, codes in tail if len(codes)]
        if tail:  # the log's rows, not in any list yet: scanned whole
            rows, scores = _flat_scan(codec, prepared, tail, keep, allow)
            parts_rows.append(rows)
            parts_scores.append(scores)
            seen += sum(
                len(codes) if allow is None else int(allow[start : start + len(codes)].sum())
                for start, codes in tail
            )
        cols, scores = select_top(np.concatenate(parts_scores, axis=1), keep)
        rows = np.take_along_axis(np.concatenate(parts_rows, axis=1), cols, axis=1)
        rows = np.where(np.isfinite(scores), rows, -1)
        short = np.flatnonzero(seen < min(keep, allowed))
        if len(short):  # too few allowed rows in the probed lists: the flat masked scan
            flat_rows, flat_scores = _flat_scan(
                codec, codec.prepare(view[short]), flat, keep, allow
            )
            width = rows.shape[1]
            rows[short], scores[short] = flat_rows[:, :width], flat_scores[:, :width]
        return pipeline.refine(queries, z, rows, scores, k, source)

    def probed_fraction(self, nprobe: int | None) -> float:
        """Share of the rows a query's first pass reads (what the planner prices)."""
        return self.nprobe_for(nprobe) / self.nlist

    def nprobe_for(self, nprobe: int | None) -> int:
        """Lists a search reads: its ``nprobe`` or the default, capped at the lists there are."""
        return min(nprobe or self.default_nprobe, self.nlist)

    def widened(self, nprobe: int, allowed: int, total: int) -> int:
        """``nprobe`` grown by 1 / selectivity (a filter passing 10% probes 10x the lists)."""
        if allowed <= 0:
            return nprobe
        return min(self.nlist, math.ceil(nprobe * total / allowed))

    def probe(self, view: np.ndarray, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        """(nq, nprobe) lists nearest each query (L2) and <q, c> for each of them."""
        dots = view @ self.centroids.T
        nearness = dots - self.half_norms
        nprobe = min(nprobe, self.nlist)
        if nprobe < self.nlist:
            probes = np.argpartition(-nearness, nprobe - 1, axis=1)[:, :nprobe]
        else:
            probes = np.broadcast_to(np.arange(self.nlist), nearness.shape)
        return np.ascontiguousarray(probes, np.int64), np.take_along_axis(dots, probes, axis=1)

    # -- reporting --------------------------------------------------------------------------
    def describe(self, deleted: np.ndarray, log_rows: int) -> dict[str, Any]:
        """What ``Collection.info()["ivf"]`` shows: state, list sizes and their imbalance."""
        out: dict[str, Any] = {"nlist": self.nlist or "auto", "auto": self.auto}
        if not self.trained:
            lists = "about sqrt(n)" if self.auto else f"{self.nlist}"
            why = (
                f"below {self.train_rows:,} live vectors the flat scan is as fast and exact"
                if self.auto
                else f"{self.nlist} lists need {self.train_rows:,} live vectors to train"
            )
            out.update(
                state="flat",
                train_at=self.train_rows,
                note=f"searched flat (every code): {why}; then {lists} k-means lists are "
                f"trained and a query reads nprobe of them",
            )
            return out
        out["default_nprobe"] = self.default_nprobe
        sizes = np.zeros(self.nlist, np.int64)
        for lists in self.lists:
            sizes += lists.live_sizes(deleted[lists.start : lists.start + len(lists.perm)])
        mean = sizes.mean()
        out.update(
            state="trained",
            trained_on=self.trained_on,
            retrain_at=sizing.RETRAIN_GROWTH * self.trained_on,
            log_rows_scanned_flat=log_rows,
            joined_rows=0 if self.joined is None else len(self.joined.perm),
            list_pieces=len(self.lists),  # list sets a probed list is read from
            list_sizes={
                "min": int(sizes.min()),
                "max": int(sizes.max()),
                "mean": round(float(mean), 1),
                "imbalance": round(float(sizes.max() / mean), 2) if mean else None,
                "skew": round(sizing.list_skew(sizes), 3),
                "skew_when_trained": self.trained_skew,
                "rebalance_at_skew": None
                if self.trained_skew is None
                else round(sizing.REBALANCE_SKEW * self.trained_skew, 3),
                "empty": int(np.count_nonzero(sizes == 0)),
            },
            sizes=sizes.tolist(),
        )
        if self.auto:
            grown = sizing.RETRAIN_GROWTH * self.trained_on
            out["note"] = (
                f"partitioned by ivf:auto into {self.nlist} lists (about sqrt of the "
                f"{self.trained_on:,} live vectors it was trained on); retrained into "
                f"{sizing.suggested_nlist(grown)} lists at {grown:,}, or sooner if new "
                f"vectors crowd a few lists (skew); default nprobe {self.default_nprobe}: "
                f"measured to keep {self.calibrated_recall} of stored vectors' top-10 "
                f"(goal {GOAL})"
            )
        return out


def stored_sizes(folder: Path, manifest: Manifest, tag: str) -> np.ndarray:
    """Rows per list over ``manifest``'s segments, from their lists' offsets in ``folder``
    (named ``<segment>.<tag>``, or ``<segment>`` in a staging folder when ``tag`` is "")."""
    sizes: np.ndarray | int = 0
    for entry in manifest.segments:
        name = f"{entry.name}.{tag}" if tag else entry.name
        sizes = sizes + np.diff(_read(folder / name / "offsets.npy", False))
    return np.asarray(sizes)


def _flat_scan(
    codec: RaBitQCodec,
    prepared: Any,
    blocks: Sequence[tuple[int, np.ndarray]],
    keep: int,
    allow: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The flat first pass over (first row, codes) blocks, one at a time (memory-mapped
    blocks are read through the page cache, never copied into the process), merged."""
    parts_rows, parts_scores = [], []
    for start, codes in blocks:
        mask = None if allow is None else allow[start : start + len(codes)]
        rows, scores = codec.scan(prepared, codes, keep, mask)
        parts_rows.append(np.where(rows >= 0, rows + start, -1))
        parts_scores.append(scores)
    if len(parts_rows) == 1:
        return parts_rows[0], parts_scores[0]
    cols, scores = select_top(np.concatenate(parts_scores, axis=1), keep)
    rows = np.take_along_axis(np.concatenate(parts_rows, axis=1), cols, axis=1)
    return np.where(np.isfinite(scores), rows, -1), scores


def _count_in(value: Any, high: int) -> bool:
    """Whether a manifest's ``value`` is an int in 1..high (not a bool, float or string)."""
    return not isinstance(value, bool) and isinstance(value, int) and 1 <= value <= high


def _read(path: Path, mmap: bool) -> np.ndarray:
    try:
        return load_array(path, mmap)
    except (OSError, ValueError) as exc:
        raise CorruptCollectionError(
            f"IVF file {path} is missing or damaged ({exc}); restore the collection from a backup"
        ) from exc
