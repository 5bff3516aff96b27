"""Durable file writes: data is fsynced before anything refers to it."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import IO

import numpy as np

#: NumPy parses .npy headers with ``ast.literal_eval``, and CPython 3.11's AST constructor is
#: not thread-safe: threads parsing at once can raise a spurious ``SystemError: AST constructor
#: recursion depth mismatch`` (python/cpython#106905; seen in the server's thread pool, where
#: readers reopen segments while requests decode bodies). Every slimvec load takes this lock.
_HEADER_LOCK = threading.Lock()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_array(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as a .npy file and fsync it."""
    with open(path, "wb") as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def load_array(source: Path | IO[bytes], mmap: bool = False) -> np.ndarray:
    """A .npy file (or body) as an array, memory-mapped read-only if ``mmap``; never pickles."""
    with _HEADER_LOCK:
        return np.load(source, mmap_mode="r" if mmap else None, allow_pickle=False)


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz file, read at once; never pickles."""
    with _HEADER_LOCK, np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write named arrays as an uncompressed .npz file and fsync it."""
    with open(path, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that readers see the old or the new file, never half."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
