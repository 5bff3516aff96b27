"""Segments: immutable directories of row arrays, one .npy file per array.

A segment holds a contiguous range of global row numbers: ``ids.npy`` (int64), ``original.npy``
(float32, what exact search reads) and one file per stored code key. Arrays a collection keeps
in RAM anyway (ids, first-stage codes) are read into memory; the others are memory-mapped, so
a segment holds at most one file descriptor per memory-mapped key (Python's mmap keeps one),
and tiered merging keeps the segment count logarithmic in the number of writes.

Each segment records the CRC32 of every file in ``CHECKSUMS.json``, written and fsynced with
the files, before the commit that names the segment. The arrays read into memory are verified
whenever a segment is opened (they are read anyway: ids and first-stage codes, about 100
bytes a row); the memory-mapped ones by :func:`verify_segment` (``slimvec check``), since
reading them whole at every open would cost what memory-mapping saves. A mismatch is a
:class:`CorruptCollectionError` naming the file, never a wrong answer. Segments written before
checksums existed have no such file and are not verified.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Collection as Keys
from pathlib import Path

import numpy as np

from slimvec.errors import CorruptCollectionError
from slimvec.store.files import fsync_dir, load_array, save_array

SEGMENTS_DIR = "segments"
CHECKSUMS = "CHECKSUMS.json"
_CHUNK = 16 << 20


def file_crc32(path: Path) -> int:
    """CRC32 of a file's bytes (zlib's, about 4 GB/s here), read in chunks."""
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


def segment_name(generation: int) -> str:
    return f"seg-{generation:06d}"


def write_segment(directory: Path, name: str, arrays: dict[str, np.ndarray]) -> None:
    """Write every array of a new segment and fsync it (the manifest commits it later)."""
    seg = directory / SEGMENTS_DIR / name
    seg.mkdir(parents=True, exist_ok=True)
    sums = {}
    for key, array in arrays.items():
        save_array(seg / f"{key}.npy", array)
        sums[f"{key}.npy"] = file_crc32(seg / f"{key}.npy")  # in the page cache: no disk read
    with open(seg / CHECKSUMS, "w", encoding="utf-8") as f:
        json.dump(sums, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(seg)
    fsync_dir(seg.parent)


def _checksums(seg: Path) -> dict[str, int] | None:
    """The segment's recorded checksums (None: written before checksums existed)."""
    try:
        text = (seg / CHECKSUMS).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        sums = json.loads(text)
        if isinstance(sums, dict) and all(isinstance(v, int) for v in sums.values()):
            return sums
    except (UnicodeDecodeError, json.JSONDecodeError):
        pass
    raise CorruptCollectionError(f"{seg / CHECKSUMS} is damaged; restore from a backup")


def _verify(seg: Path, file: str, sums: dict[str, int] | None) -> None:
    if sums is None:
        return
    if file not in sums:
        raise CorruptCollectionError(f"{seg / CHECKSUMS} does not list {file}; restore it")
    if file_crc32(seg / file) != sums[file]:
        raise CorruptCollectionError(
            f"segment file {seg / file} fails its checksum: it was damaged after it was "
            f"written; restore the collection from a backup"
        )


def verify_segment(directory: Path, name: str) -> list[str]:
    """Every file of a segment against its checksum: the damaged or missing ones' problems."""
    seg = directory / SEGMENTS_DIR / name
    try:
        sums = _checksums(seg)
    except CorruptCollectionError as exc:
        return [str(exc)]
    if sums is None:
        return []
    problems = []
    for file in sorted(sums):
        try:
            _verify(seg, file, sums)
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
    sums = _checksums(seg) if in_memory else None
    out = {}
    for key, (dtype, expected) in layout.items():
        path = seg / f"{key}.npy"
        try:
            if key in in_memory:
                _verify(seg, path.name, sums)
            array = load_array(path, mmap=key not in in_memory)
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
