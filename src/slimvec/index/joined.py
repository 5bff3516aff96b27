"""Joined lists: one list set over the first rows of a collection, so that a probed list is
read in one run instead of one piece per segment.

Each segment's lists are immutable files, so after many adds a probed list is many pieces,
each ending in a partly empty block of 32 rows and each a separate pass of the scan. On 10M
rows in 20 segments the same codes joined into one set searched 1.4-1.9x faster, single
queries 4.2 ms instead of 7.3-10.8 (BENCHMARKS.md "Joined lists at 10M").

The joined set covers rows ``[0, rows)`` (the manifest's ``extra["ivf"]["joined"]``: its
name and ``rows``). ``rows`` is where a segment ends that the tier merges never take again
(``engine.writer.joinable_rows``), so the merges of smaller segments before it keep its rows
as they are. The segments' own lists stay on disk (a merge joins them; a dropped set falls
back on them); the scan reads the set for the rows it covers and the segments' own lists
after it. The set is dropped when its rows are renumbered (compaction), when a segment
straddles its end, and when the lists are retrained (a new ``extra["ivf"]``); it is written
again, inside a commit, once the joinable rows have grown by ``JOIN_GROWTH``, so rewriting it
costs a bounded number of copies per row added.

A merge's lists are joined the same way (``write_joined``): a row's residual code depends only
on the row and its centroid, so joining is a copy of codes, not a re-encoding.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slimvec.kernels.ivfscan import ROWS, deinterleave, interleave, list_blocks
from slimvec.store.files import ArrayWriter, fsync_dir, save_array
from slimvec.store.manifest import Manifest

#: The joined set is written again once the joinable rows grew by this share of its rows.
JOIN_GROWTH = 0.25
#: Rows ``perm`` (int32) can number.
MAX_ROWS = 2**31 - 1
#: Rows joined per run of whole lists (bounded memory while joining).
RUN_ROWS = 65_536
_NAME = re.compile(r"^j\d{6,12}$")
#: An ``index.ivf.SegmentLists`` (not imported: ivf.py calls this module).
Lists = Any


def joined_rows(manifest: Manifest) -> int:
    """Rows the joined set ``manifest`` names covers, 0 when it names none or its set no
    longer matches the segments (one straddles its end: it is dropped at the next commit)."""
    joined = (manifest.extra.get("ivf") or {}).get("joined")
    if not isinstance(joined, dict):
        return 0
    rows, name = joined.get("rows"), joined.get("name")
    if isinstance(rows, bool) or not isinstance(rows, int) or not isinstance(name, str):
        return 0
    if not _NAME.match(name) or not 0 < rows <= manifest.rows:
        return 0
    if any(e.start < rows < e.start + e.rows for e in manifest.segments):
        return 0
    return rows


def joined_dir(manifest: Manifest) -> str | None:
    """The ``ivf/`` entry of ``manifest``'s joined set, if it names one that still fits."""
    if not joined_rows(manifest):
        return None
    info = manifest.extra["ivf"]
    return f"{info['joined']['name']}.{info['centroids']}"


def rejoin(
    index: Any,
    folder: Path,
    manifest: Manifest,
    segment_lists: dict[str, Lists],
    joinable: int,
    renumbered: bool,
) -> bool:
    """Before ``manifest``'s commit (its lists complete): drop a joined set that no longer
    fits, and write a new one over rows ``[0, joinable)`` when they grew enough (whether it
    did), in the collection's ``ivf/`` ``folder``. ``segment_lists``: every listed segment's
    own lists by name (``index.open_lists`` opens those written in this commit);
    ``renumbered``: the commit rewrites every row."""
    info = manifest.extra.get("ivf")
    if info is None:
        return False
    rows = 0 if renumbered else joined_rows(manifest)
    if not rows:
        info.pop("joined", None)
    joinable = min(joinable, MAX_ROWS)
    grown = [e for e in manifest.segments if e.start >= rows and e.start + e.rows <= joinable]
    if joinable - rows < max(1, JOIN_GROWTH * rows) or len(grown) + bool(rows) < 2:
        return False
    tag = info["centroids"]
    parts = [index.joined] if rows else []
    for e in grown:
        own = segment_lists.get(e.name)
        parts.append(own if own is not None else index.open_lists(folder / f"{e.name}.{tag}", e))
    name = f"j{manifest.generation + 1:06d}"
    write_joined(parts, 0, folder / f"{name}.{tag}", index.codec.factor_start, index.nlist)
    info["joined"] = {"name": name, "rows": joinable}
    return True


def write_joined(parts: Sequence[Lists], start: int, folder: Path, width: int, nlist: int) -> None:
    """Write the lists of ``parts`` (consecutive rows, in order) as one set from row
    ``start``: each list their lists' rows part by part, which is what encoding the same rows
    as one segment writes, without reading or encoding a vector. Streamed a run of lists at a
    time into the files (``ArrayWriter``): the memory is a run's, whatever the rows."""
    offsets = np.zeros(nlist + 1, np.int64)
    np.cumsum(sum(np.diff(part.offsets) for part in parts), out=offsets[1:])
    n = int(offsets[-1])
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "nibbles": ArrayWriter(folder / "nibbles.npy", np.uint8,
                               (int(list_blocks(offsets)[-1]) * ROWS * width,)),
        "scalars": ArrayWriter(folder / "scalars.npy", np.float32, (2, n)),
        "perm": ArrayWriter(folder / "perm.npy", np.int32, (n,)),
    }  # fmt: skip
    try:
        for a, b, order in _list_runs(parts, offsets):
            runs = [(part, part.offsets[a], part.offsets[b]) for part in parts]
            codes = [
                deinterleave(_blocks_of(part, a, b, width), part.offsets[a : b + 1] - lo, width)
                for part, lo, _ in runs
            ]
            files["nibbles"].write(
                interleave(np.concatenate(codes)[order], offsets[a : b + 1] - offsets[a])
            )
            perm = [part.perm[lo:hi] + (part.start - start) for part, lo, hi in runs]
            files["perm"].write(np.concatenate(perm)[order].astype(np.int32))
        for scalar in (0, 1):  # the (2, n) file holds every F, then every L
            for a, b, order in _list_runs(parts, offsets):
                values = [part.scalars[scalar, part.offsets[a] : part.offsets[b]]
                          for part in parts]  # fmt: skip
                files["scalars"].write(np.concatenate(values)[order])
        for writer in files.values():
            writer.close()
    finally:
        for writer in files.values():
            writer.abandon()
    save_array(folder / "offsets.npy", offsets)
    fsync_dir(folder)


def _list_runs(parts: Sequence[Lists], offsets: np.ndarray) -> Iterator:
    """(a, b, order) for runs of whole lists a..b-1 of about ``RUN_ROWS`` joined rows:
    ``order`` puts the parts' rows of those lists, concatenated part by part, into joined list
    order (list by list, the parts in order, each part's rows in its own order)."""
    a, nlist = 0, len(offsets) - 1
    while a < nlist:
        b = max(a + 1, int(np.searchsorted(offsets, offsets[a] + RUN_ROWS, side="right")) - 1)
        b = min(b, nlist)
        labels = np.concatenate(
            [np.repeat(np.arange(a, b), np.diff(part.offsets[a : b + 1])) for part in parts]
        )
        yield a, b, np.argsort(labels, kind="stable")
        a = b


def _blocks_of(part: Lists, a: int, b: int, width: int) -> np.ndarray:
    """The interleaved codes of lists a..b-1 of ``part`` (whole blocks)."""
    return part.codes[part.blocks[a] * ROWS * width : part.blocks[b] * ROWS * width]
