"""One writer at a time: an advisory lock file held for the length of each write."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK = "LOCK"


@contextmanager
def write_lock(directory: Path) -> Iterator[None]:
    with open(directory / LOCK, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
