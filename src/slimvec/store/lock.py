"""One writer at a time: an advisory lock file held for the length of each write, and the
sweep of files an interrupted write left behind (run by the next writer, under the lock)."""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from slimvec.store.files import CHECKSUM_SUFFIX

LOCK = "LOCK"
#: Suffixes SQLite adds to a database's name for its journal files. A hot journal belongs to
#: the database: deleting it while the database is named would lose a rollback (and data).
_SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")


@contextmanager
def write_lock(directory: Path) -> Iterator[None]:
    with open(directory / LOCK, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def sweep(
    directory: Path, named: set[str], prefixes: Iterable[str], subdirs: dict[str, set[str]]
) -> None:
    """Under the write lock: remove top-level files starting with one of ``prefixes`` that the
    manifest does not name (``named``), and entries of each ``subdirs[name]`` directory not in
    its set. SQLite journals of a named database are kept (SQLite rolls them back itself), and
    so are the checksum sidecars of named files."""
    prefixes = tuple(prefixes)
    keep = set(named)
    keep.update(n + s for n in named for s in (*_SQLITE_SIDE_FILES, CHECKSUM_SUFFIX))
    for child in directory.iterdir():
        if child.name in keep or child.is_dir():
            continue
        if child.name.startswith(prefixes) or child.name.endswith(".tmp"):
            child.unlink(missing_ok=True)
    for sub, live in subdirs.items():
        folder = directory / sub
        if folder.is_dir():
            for child in folder.iterdir():
                if child.name not in live:
                    shutil.rmtree(child, ignore_errors=True)
