"""Pinning a handle's view for the length of a call, so that threads can share one handle.

A handle's view (the manifest it loaded, the segments it opened, the log rows folded in, the
metadata database, the keyword index, the filter columns) changes only when the handle catches
up with another handle's commit or makes a write of its own. Those changes take the pin
exclusively; every other call takes it shared. So any number of threads read one view at once
(nothing on the search path waits for another search), a catch-up waits for the calls in
flight and holds new ones off until it is done (a steady stream of readers cannot starve it),
and no call ever mixes two views: the allow-mask of a filter, the scan, the rescoring gather
and the metadata lookups all see the same commit.

Calls nest: a call made inside another (``search_texts`` → ``search``) runs on its caller's
pin. A read that finds the view it pinned swept away under it (another process compacted and
removed files it had not opened yet) raises :class:`StaleView`; :func:`reads` catches it up
and runs the call again, which is safe because reads change nothing (backing off briefly: a
writer may be between its data files and its commit); a read that keeps finding that for
``STALE_RETRIES`` tries reports ``CorruptCollectionError``.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from slimvec.errors import CorruptCollectionError

F = TypeVar("F", bound=Callable[..., Any])

#: How often a read whose view was swept under it is caught up and run again.
STALE_RETRIES = 20


class StaleView(Exception):
    """Raised inside a pinned read whose view can no longer be read; the call is re-run."""


class ViewPin:
    """A shared/exclusive pin with writer preference, re-entrant within a thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._waiting = 0  # exclusive requests queued: new readers wait behind them
        self._owner: int | None = None  # thread holding it exclusively
        self._depth = 0  # that thread's nesting
        self._local = threading.local()  # per thread: shared nesting depth
        #: Serialises lazily built parts of a view (keyword index, filter columns, encoder)
        #: that two readers of one view may ask for at once.
        self.lazy = threading.RLock()

    def shared_depth(self) -> int:
        return getattr(self._local, "depth", 0)

    @property
    def holds_exclusive(self) -> bool:
        """Whether the calling thread holds the pin exclusively (it may change the view)."""
        return self._owner == threading.get_ident()

    @property
    def pinned(self) -> bool:
        """Whether the calling thread is inside a call (shared or exclusive)."""
        return self.holds_exclusive or self.shared_depth() > 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        if self.pinned:  # nested in this thread's call: same view
            self._local.depth = self.shared_depth() + 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        with self._cond:
            while self._owner is not None or self._waiting:
                self._cond.wait()
            self._readers += 1
        self._local.depth = 1
        try:
            yield
        finally:
            self._local.depth = 0
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        me = threading.get_ident()
        if self._owner == me:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        if self.shared_depth():
            raise RuntimeError(
                "a read of this collection tried to change its view; this is a slimvec bug"
            )
        with self._cond:
            self._waiting += 1
            try:
                while self._owner is not None or self._readers:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._owner, self._depth = me, 1
        try:
            yield
        finally:
            with self._cond:
                self._owner = None
                self._cond.notify_all()


def reads(method: F) -> F:
    """Run a read on one pinned view: catch up first (exclusively, only when another handle
    committed), then run on the shared pin; re-run if the view was swept under it."""

    @functools.wraps(method)
    def call(self, *args: Any, **kwargs: Any) -> Any:
        pin: ViewPin = self._pin
        if pin.pinned:
            return method(self, *args, **kwargs)
        for attempt in range(STALE_RETRIES):
            if self._stale():
                with pin.exclusive():
                    self._catch_up()
            with pin.shared():
                try:
                    return method(self, *args, **kwargs)
                except StaleView:
                    self._mark_stale()
            # a writer may be between its data files and its commit: give it the moment
            time.sleep(min(0.05, 0.0005 * 2**attempt))
        raise CorruptCollectionError(
            f"{getattr(self, 'path', 'the collection')}: a read kept finding files that do not "
            f"match the last commit (metadata rows missing) for {STALE_RETRIES} tries; another "
            f"process may be writing continuously, or the files are damaged: slimvec check"
        )

    return call  # type: ignore[return-value]


def writes(method: F) -> F:
    """Run a write (or anything that changes the view) with the pin held exclusively, on
    the latest commit."""

    @functools.wraps(method)
    def call(self, *args: Any, **kwargs: Any) -> Any:
        pin: ViewPin = self._pin
        if pin.holds_exclusive:
            return method(self, *args, **kwargs)
        with pin.exclusive():
            if self._stale():
                self._catch_up()
            return method(self, *args, **kwargs)

    return call  # type: ignore[return-value]
