"""Segments: immutable directories of row arrays, one .npy file per array.

A segment holds a contiguous range of global row numbers: ``ids.npy`` (int64), ``original.npy``
(float32, what exact search reads) and one file per stored code key. Arrays a collection keeps
in RAM anyway (ids, first-stage codes) are read into memory; the others are memory-mapped, so
a segment holds at most one file descriptor per memory-mapped key (Python's mmap keeps one),
and tiered merging keeps the segment count logarithmic in the number of writes.

Every file carries a checksum sidecar (``slimvec.store.files``): the arrays read into memory
are verified at every open, the memory-mapped ones by :func:`verify_segment`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Collection as Keys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from slimvec.errors import CorruptCollectionError
from slimvec.store.files import ArrayWriter, fsync_dir, load_array, verify_file

SEGMENTS_DIR = "segments"


def segment_name(generation: int) -> str:
    return f"seg-{generation:06d}"


def write_segment(
    directory: Path,
    name: str,
    layout: dict[str, tuple[np.dtype, tuple[int, ...]]],
    parts: Iterable[dict[str, np.ndarray]],
) -> None:
    """Write a new segment's arrays and fsync it (the manifest commits it later). ``layout``
    gives each array's dtype and whole shape; ``parts`` yields consecutive row blocks of every
    array (for an add, each block read, checked and encoded just before), so a segment of
    any size is written in bounded memory. An exception from ``parts`` leaves a partial
    segment that no manifest names: the next sweep removes it."""
    seg = directory / SEGMENTS_DIR / name
    seg.mkdir(parents=True, exist_ok=True)
    files = {key: ArrayWriter(seg / f"{key}.npy", *spec) for key, spec in layout.items()}
    try:
        for part in parts:
            for key, block in part.items():
                files[key].write(block)
        for file in files.values():
            file.close()
    finally:
        for file in files.values():
            file.abandon()
    fsync_dir(seg)
    fsync_dir(seg.parent)


def whole(arrays: dict[str, np.ndarray]) -> tuple[dict, list[dict[str, np.ndarray]]]:
    """(layout, parts) of a segment given as whole arrays, for ``write_segment``."""
    return {key: (a.dtype, a.shape) for key, a in arrays.items()}, [arrays]


def has_files(directory: Path, name: str, keys: Keys[str]) -> bool:
    """Whether segment ``name`` holds a file for each of ``keys``."""
    seg = directory / SEGMENTS_DIR / name
    return all((seg / f"{key}.npy").is_file() for key in keys)


def extend_segment(directory: Path, source: str, name: str, arrays: dict[str, np.ndarray]) -> None:
    """A new segment ``name``: the files of ``source`` (hard links, as segments are immutable;
    copies where the filesystem has none) plus ``arrays``, fsynced. Like ``write_segment``, it
    is committed only by the manifest that names it; until then a sweep removes it (its links
    only: ``source``'s files stay)."""
    old, seg = directory / SEGMENTS_DIR / source, directory / SEGMENTS_DIR / name
    seg.mkdir(parents=True, exist_ok=True)
    for path in sorted(old.iterdir()):
        try:
            os.link(path, seg / path.name)
        except OSError:
            shutil.copyfile(path, seg / path.name)
            with open(seg / path.name, "rb+") as f:
                os.fsync(f.fileno())
    write_segment(directory, name, *whole(arrays))


def verify_segment(directory: Path, name: str) -> list[str]:
    """Every file of a segment against its checksum: the damaged or missing ones' problems."""
    seg = directory / SEGMENTS_DIR / name
    problems = []
    for path in sorted(seg.glob("*.npy")):
        try:
            verify_file(path)
        except (CorruptCollectionError, OSError) as exc:
            problems.append(str(exc))
    return problems


Shape = tuple[int | None, ...]


def open_segment(
    directory: Path,
    name: str,
    layout: dict[str, tuple[np.dtype, Shape]],
    in_memory: Keys[str] = (),
) -> dict[str, np.ndarray]:
    """A segment's arrays, checking dtype and shape (``None`` = any length); keys in
    ``in_memory`` are read, the others memory-mapped."""
    seg = directory / SEGMENTS_DIR / name
    out = {}
    for key, (dtype, expected) in layout.items():
        path = seg / f"{key}.npy"
        try:
            array = load_array(path, mmap=key not in in_memory)  # verified if read whole
        except (OSError, ValueError) as exc:
            raise CorruptCollectionError(
                f"segment file {path} is missing or damaged ({exc}); restore from a backup"
            ) from exc
        fits = len(array.shape) == len(expected) and all(
            e is None or e == a for e, a in zip(expected, array.shape, strict=True)
        )
        if not fits or array.dtype != dtype:
            raise CorruptCollectionError(
                f"segment file {path} holds {array.dtype}{array.shape}, expected "
                f"{np.dtype(dtype)}{expected}; the collection is damaged"
            )
        out[key] = array
    return out
