"""A handle's background trainer: large IVF trainings run beside the writes, not inside them.

When a commit finds a large training due (``engine.writer.IVFHook``: the collection crossed
``ivf:auto``'s threshold or grew ``RETRAIN_GROWTH``-fold), the writer commits without it and,
at the end of the write, calls :meth:`BackgroundTraining.start` with the new view. A thread
then trains from a snapshot of that commit (its manifest, tombstones, a copy of its fitted
pipeline, and its segments' files opened, so that a merge sweeping them meanwhile does not
matter) into a staging folder (``index.training``), without the write lock: the add that
crossed returns at once, later writes go on, and every reader keeps the state it had (the flat
scan, or the old lists with lists for new segments). Finally the thread takes the handle's pin
and the write lock like any write, builds lists for the segments committed meanwhile (a round
or two of them first outside the lock, so the lock is held briefly) and commits; readers move
to the new lists at their next call.

A training the collection outgrew while it ran (its committed rows reached ``RETRAIN_GROWTH``
times the snapshot's live rows: a bulk load) is not installed, since its lists would be
retrained at once: the thread takes a new snapshot of the collection as it is and trains that
instead, so a 10M load trains on millions of rows once rather than listing them all under
centroids fitted on its first million. A training that no longer fits (the pipeline was
refitted, or another handle committed lists first) is dropped; an error is kept for
``info()`` and logged, and the next commit that finds the training due starts it again, as
does the next write after a process killed mid-training (its staging folder is swept once
the process is gone). :meth:`wait` blocks until the current training is done;
``Collection.close`` waits for it, so lists paid for are not lost.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from slimvec.engine.pin import ViewPin
from slimvec.engine.view import View
from slimvec.engine.writer import Writer
from slimvec.errors import CorruptCollectionError
from slimvec.index import sizing
from slimvec.index.training import StagedLists, opened_inputs
from slimvec.store.manifest import Manifest

log = logging.getLogger("slimvec")

THREAD_NAME = "slimvec-ivf-training"
#: Rounds of lists built outside the lock for segments committed while the training ran.
CATCH_UP_ROUNDS = 3


class BackgroundTraining:
    """One handle's trainer thread (at most one training at a time)."""

    def __init__(
        self, writer: Writer, pin: ViewPin, transaction: Callable, closed: Callable[[], bool]
    ):
        """The handle's ``writer`` calls ``start`` when a large training is due
        (``engine.writer.IVFHook.trainer``); ``_install`` commits through the handle's ``pin`` and
        ``transaction`` like any write, unless the handle is ``closed()``."""
        self._writer, self._pin, self._transaction = writer, pin, transaction
        self._closed = closed
        writer.ivf.trainer = self.start
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self.last: dict[str, Any] | None = None  # how the last training ended

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self, view: View) -> None:
        """Train lists for ``view`` (just committed, under the write lock) on the thread,
        unless a training is already running."""
        with self._lock:
            if self.running:
                return
            self._started = time.monotonic()
            self._thread = threading.Thread(
                target=self._run, args=(_snapshot(view),), name=THREAD_NAME
            )
            self._thread.daemon = True  # a killed process trains again at its next write
            self._thread.start()

    def _run(self, snapshot: Snapshot) -> None:
        staged, restarts, outcome = snapshot[0], 0, "dropped: the handle was closed"
        try:
            while snapshot is not None:
                staged, manifest, deleted = snapshot
                staged.train(manifest, deleted)
                self._catch_up(staged)  # returns at once if outgrown already
                if _outgrown(staged):  # a bulk load ran past it: train on what is there now
                    staged.discard()
                    snapshot, restarts = self._latest(), restarts + 1
                    continue
                installed = self._install(staged)
                outcome = "installed" if installed else "dropped: the collection changed under it"
                break
        except Exception as exc:  # kept for info(); the next commit that finds it due retries
            log.warning("slimvec: background IVF training of %s failed: %r", staged.path, exc)
            outcome = f"failed: {exc!r}"
        finally:
            staged.discard()
        self.last = {
            "outcome": outcome,
            "trained_on": staged.info.get("trained_on"),
            "restarted_outgrown": restarts,
            "seconds": round(time.monotonic() - self._started, 2),
        }

    def _latest(self) -> Snapshot | None:
        """A snapshot of the collection's latest commit, taken as ``start``'s is (under the
        handle's pin and the write lock); None once the handle is closed."""
        with self._pin.exclusive():
            if self._closed():
                return None
            with self._transaction():
                return _snapshot(self._writer.current.view)

    @staticmethod
    def _catch_up(staged: StagedLists) -> None:
        """Lists for segments committed while the training ran, built outside the lock. A
        merge may sweep such a segment before it is read (its files are not held open like
        the snapshot's): then the rest is left to ``_install``, which builds under the lock."""
        for _ in range(CATCH_UP_ROUNDS):
            latest = Manifest.load(staged.path)
            if not staged.fits(latest) or {e.name for e in latest.segments} <= staged.staged:
                return
            if _outgrown(staged, latest):
                return
            try:
                staged.build(latest)
            except (OSError, CorruptCollectionError):
                return

    def _install(self, staged: StagedLists) -> bool:
        """Commit ``staged`` as a write like any other (the handle's pin, the write lock, the
        latest view); whether the lists still fitted the collection."""
        with self._pin.exclusive():
            if self._closed():
                return False
            with self._transaction():
                return self._writer.install_lists(staged)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the running training (if any) is done; whether none is running."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running

    def describe(self) -> dict[str, Any] | None:
        """What ``info()["ivf"]["training"]`` shows: running since when, or how the last
        training ended; None if this handle never trained in the background."""
        if self.running:
            return {
                "state": "running in the background",
                "seconds": round(time.monotonic() - self._started, 1),
                "note": "searches use the current state until the new lists commit",
            }
        return self.last


#: What a training starts from: its staging, the manifest and the tombstones it trains on.
Snapshot = tuple[StagedLists, Manifest, Any]


def _snapshot(view: View) -> Snapshot:
    """Train from ``view`` (its latest commit, under the write lock): a copy of the fitted
    pipeline (safe from later refits), of the manifest and tombstones, and its segments' input
    files opened (safe from a merge's sweep)."""
    rows = copy.deepcopy(view.rows)
    manifest = copy.deepcopy(view.manifest)
    inputs = opened_inputs(rows.pipeline_input, view.path, manifest)
    staged = StagedLists(view.ivf.fresh(rows.pipeline, inputs), view.path)
    return staged, manifest, view.deleted.array[: manifest.rows].copy()


def _outgrown(staged: StagedLists, latest: Manifest | None = None) -> bool:
    """Whether the collection (its ``latest`` commit) has grown ``RETRAIN_GROWTH``-fold past
    the live rows ``staged`` trains on, while its lists still stand to be installed."""
    latest = latest or Manifest.load(staged.path)
    trained_on = int(staged.info.get("trained_on") or 0)
    return staged.fits(latest) and latest.rows >= sizing.RETRAIN_GROWTH * max(trained_on, 1)
