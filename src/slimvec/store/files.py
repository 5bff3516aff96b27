"""Durable file writes: data is fsynced before anything refers to it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


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
