"""Training IVF lists apart from the commit that names them.

Training a collection's lists means k-means on a sample, every segment's codes regrouped under
the new centroids and (``ivf:auto``) the nprobe measured: 5 s at 100k vectors, 28 s at 640k.
Done inside a commit, the add that crosses a training point pays all of it while the write
lock is held. So a training is *staged*: everything is written to a folder of its own,
``ivf/.train-<pid>-<n>/``, from a snapshot of the collection, while readers keep searching
the state they have (flat, or the old lists). Then, under the write lock, the segments
committed since the snapshot get their lists too, the staged folders are renamed to the names
the next commit gives them, and that commit names them: readers move to the new lists in one
step, as with any commit.

The staged folder belongs to a live process: the sweep that removes an interrupted write's
leftovers spares ``.train-<pid>-*`` while process ``pid`` runs (``in_progress``), and removes
it once that process is gone (killed mid-training: the next write trains again).

A staging is discarded instead of installed if the collection moved under it: its pipeline
refitted (the codes' space changed; the refit trains its own lists) or other lists committed
(another handle trained first). A commit that trains itself stages and installs in one go
(``train_in_commit``); ``engine.background`` runs large trainings on a thread.
"""

from __future__ import annotations

import itertools
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from slimvec.index import sizing
from slimvec.index.calibrate import calibrate
from slimvec.index.ivf import IVF_DIR, IVFIndex, StoredVectors, stored_sizes
from slimvec.index.joined import rejoin
from slimvec.store.files import fsync_dir, save_array
from slimvec.store.manifest import Manifest, SegmentEntry

#: Prefix of a staging folder in ``ivf/``: ``.train-<pid>-<n>``.
STAGING = ".train-"
_numbers = itertools.count()


def in_progress(folder: Path) -> set[str]:
    """Staging folders in ``folder`` (a collection's ``ivf/``) whose process still runs: the
    sweep must spare them."""
    if not folder.is_dir():
        return set()
    return {
        child.name
        for child in folder.iterdir()
        if child.name.startswith(STAGING) and _running(child.name[len(STAGING) :].split("-")[0])
    }


def _running(pid: str) -> bool:
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def opened_inputs(vectors: StoredVectors, path: Path, manifest: Manifest) -> StoredVectors:
    """``vectors`` with ``manifest``'s segments opened now: a training reading them later
    still can after a merge or compaction swept their files (the mappings stay valid)."""
    opened = {entry.name: vectors(path, entry) for entry in manifest.segments}

    def read(where: Path, entry: SegmentEntry, rows: np.ndarray | None = None) -> Any:
        x = opened.get(entry.name)
        if x is None:  # a segment committed since
            return vectors(where, entry, rows)
        return x if rows is None else x[rows]

    return read


def basis(manifest: Manifest) -> tuple[Any, ...]:
    """What lists trained on ``manifest`` depend on: the fitted pipeline and the lists in
    use. Installing is refused once either changed."""
    info = manifest.extra.get("ivf") or {}
    return manifest.state_file, manifest.fitted_on, info.get("centroids")


class StagedLists:
    """A training's files in their staging folder, until ``install`` or ``discard``."""

    def __init__(self, index: IVFIndex, path: Path):
        """``index``: an untrained index of the collection's spec and pipeline (``fresh``)."""
        self.index, self.path = index, path
        self.folder = path / IVF_DIR / f"{STAGING}{os.getpid()}-{next(_numbers)}"
        self.staged: set[str] = set()  # segments whose lists are in the folder
        self.info: dict[str, Any] = {}  # what the manifest will record of these lists
        self.basis: tuple[Any, ...] | None = None

    def train(self, manifest: Manifest, deleted: np.ndarray) -> None:
        """Centroids for ``manifest``'s live rows (``deleted``: its tombstones), lists for
        every one of its segments and, for ``ivf:auto``, the nprobe that holds recall."""
        index = self.index
        self.folder.mkdir(parents=True)
        live = len(deleted) - int(np.count_nonzero(deleted))
        nlist = index.lists_for(live)
        n = min(live, sizing.TRAIN_PER_LIST * nlist)
        rng = np.random.default_rng(manifest.generation + 1)
        rows = np.sort(rng.choice(np.flatnonzero(~deleted), n, replace=False))
        parts = []
        for e in manifest.segments:
            mine = rows[(rows >= e.start) & (rows < e.start + e.rows)] - e.start
            x = index.vectors(self.path, e, mine)
            step = index._step(x)
            parts += [index._view(x[lo : lo + step]) for lo in range(0, len(x), step)]
        index.nlist = nlist
        index.centroids = sizing.train_centroids(np.concatenate(parts), nlist)
        index.trained_on = live
        centroids = self.folder / "centroids"
        centroids.mkdir()
        save_array(centroids / "centroids.npy", index.centroids)
        fsync_dir(centroids)
        self.info = {"trained_on": live, "sample": n, "nlist": nlist}
        self.basis = basis(manifest)
        self.build(manifest)
        self.info["skew"] = round(sizing.list_skew(stored_sizes(self.folder, manifest, "")), 3)
        if index.auto:  # the nprobe that holds recall on these lists
            index.lists = [index.open_lists(self.folder / e.name, e) for e in manifest.segments]
            seen = replace(manifest, extra={**manifest.extra, "ivf": self.info})
            nprobe, recall = calibrate(index, self.path, seen, deleted)
            self.info.update(nprobe=nprobe, calibrated_recall=round(recall, 4))

    def build(self, manifest: Manifest) -> None:
        """Lists for the segments of ``manifest`` not staged yet (new since the snapshot)."""
        for entry in manifest.segments:
            if entry.name not in self.staged:
                self.index.write_lists(self.path, entry, self.folder / entry.name)
                self.staged.add(entry.name)
        fsync_dir(self.folder)

    def fits(self, manifest: Manifest) -> bool:
        """Whether these lists can serve ``manifest``: same fitted pipeline and no other
        lists committed since the snapshot."""
        return basis(manifest) == self.basis

    def install(self, manifest: Manifest, joinable: int = 0) -> None:
        """Under the write lock, before ``manifest``'s commit: lists for its segments new
        since the snapshot, the staged files renamed to the names this commit gives them,
        the rows ``[0, joinable)`` joined into one set (``index.joined``), and the manifest
        told."""
        self.build(manifest)
        tag = f"c{manifest.generation + 1:06d}"
        ivf = self.path / IVF_DIR
        moves = [(self.folder / "centroids", ivf / tag)] + [
            (self.folder / e.name, ivf / f"{e.name}.{tag}") for e in manifest.segments
        ]
        for source, target in moves:
            shutil.rmtree(target, ignore_errors=True)  # an interrupted attempt's leftover
            source.rename(target)
        self.discard()  # lists of segments merged away since: gone before the commit shows
        manifest.extra["ivf"] = {"centroids": tag, **self.info}
        rejoin(self.index, ivf, manifest, {}, joinable, renumbered=False)
        fsync_dir(ivf)

    def discard(self) -> None:
        """Remove what is left of the staging folder (installed or not)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def train_in_commit(
    index: IVFIndex, path: Path, manifest: Manifest, deleted: np.ndarray, joinable: int = 0
) -> None:
    """Train ``index``'s lists for ``manifest`` (about to be committed) and name them in it
    (``joinable``: see ``StagedLists.install``)."""
    staged = StagedLists(index.fresh(), path)
    try:
        staged.train(manifest, deleted)
        staged.install(manifest, joinable)
    finally:
        staged.discard()
