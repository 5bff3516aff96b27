"""Durable, checksummed file writes: data is fsynced before anything refers to it.

Every array file written here gets a sidecar ``<name>.crc32`` (the file's CRC32, zlib's, about
4 GB/s here), written and fsynced with it, before the commit that names the file. Files read
whole (tombstones, fitted state, ids, first-stage codes or their table-scan layout, keyword
index) are verified whenever they are read; memory-mapped ones by :func:`verify_file`
(``slimvec check``), since reading them whole at every open would cost what memory-mapping
saves. A mismatch is a
:class:`CorruptCollectionError` naming the file, never a wrong answer. Files written before
checksums existed have no sidecar and are read unverified.
"""

from __future__ import annotations

import io
import mmap
import os
import threading
import zlib
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.lib.format as npformat

from slimvec.errors import CorruptCollectionError

CHECKSUM_SUFFIX = ".crc32"
#: Bytes read at a time when a checksum is taken (``read(n)`` allocates n bytes up front).
_CHUNK = 1 << 20

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


def file_crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


def _write_checksum(path: Path) -> None:
    """The sidecar of a written (and fsynced) file; it is in the page cache: no disk read."""
    with open(path.with_name(path.name + CHECKSUM_SUFFIX), "w", encoding="ascii") as f:
        f.write(f"{file_crc32(path):08x}\n")
        f.flush()
        os.fsync(f.fileno())


def verify_file(path: Path) -> None:
    """``CorruptCollectionError`` if ``path`` does not match its sidecar checksum (a file
    without one was written before checksums existed and passes)."""
    sidecar = path.with_name(path.name + CHECKSUM_SUFFIX)
    try:
        recorded = sidecar.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptCollectionError(f"{sidecar} is damaged ({exc}); restore it") from exc
    if len(recorded) != 8 or not all(c in "0123456789abcdef" for c in recorded):
        raise CorruptCollectionError(f"{sidecar} is damaged; restore the collection")
    if int(recorded, 16) != file_crc32(path):
        raise CorruptCollectionError(
            f"{path} fails its checksum: it was damaged after it was written; restore the "
            f"collection from a backup"
        )


def save_array(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as a .npy file and its checksum, and fsync both."""
    with open(path, "wb") as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())
    _write_checksum(path)


class ArrayWriter:
    """A .npy file of known dtype and shape written in consecutive row blocks, its checksum
    taken as the bytes pass (``save_array``'s file and sidecar, without the whole array in
    memory or a re-read). Incomplete until ``close``; the sweep removes an abandoned one."""

    def __init__(self, path: Path, dtype: np.dtype, shape: tuple[int, ...]):
        self.path, self.dtype = path, np.dtype(dtype)
        self.left = int(np.prod(shape, dtype=np.int64)) * self.dtype.itemsize
        header = io.BytesIO()
        descr = npformat.dtype_to_descr(self.dtype)
        shape = tuple(int(s) for s in shape)
        npformat.write_array_header_1_0(
            header, {"descr": descr, "fortran_order": False, "shape": shape}
        )
        self.file: IO[bytes] | None = open(path, "wb")  # noqa: SIM115 - closed by close()
        self.crc = 0
        self._put(header.getvalue())

    def _put(self, data: bytes | memoryview) -> None:
        assert self.file is not None
        self.file.write(data)
        self.crc = zlib.crc32(data, self.crc)

    def write(self, block: np.ndarray) -> None:
        """The next rows (or elements) of the array, in its dtype."""
        if block.dtype != self.dtype:
            raise ValueError(f"{self.path.name}: a {block.dtype} block for a {self.dtype} array")
        data = memoryview(np.ascontiguousarray(block)).cast("B")
        if len(data) > self.left:
            raise ValueError(f"{self.path.name}: more data than its shape holds")
        self._put(data)
        self.left -= len(data)

    def close(self) -> None:
        """Check that every byte was written, fsync, then write the checksum sidecar."""
        if self.left:
            raise ValueError(f"{self.path.name}: {self.left} bytes short of its shape")
        assert self.file is not None
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        self.file = None
        sidecar = self.path.with_name(self.path.name + CHECKSUM_SUFFIX)
        with open(sidecar, "w", encoding="ascii") as f:
            f.write(f"{self.crc:08x}\n")
            f.flush()
            os.fsync(f.fileno())

    def abandon(self) -> None:
        """Close the file if ``close`` did not (an exception mid-write)."""
        if self.file is not None:
            self.file.close()
            self.file = None


class RowFile:
    """A .npy file read in slices (``rows[a:b]``, ``rows[indices]``: copies) through its own
    read-only mapping, whose pages are handed back after every read (``MADV_DONTNEED``; they
    stay in the page cache): streaming through a file larger than the add budget leaves the
    process's resident memory bounded, where a plain memory map would keep every page read."""

    def __init__(self, path: Path):
        with open(path, "rb") as f:
            with _HEADER_LOCK:
                major, _ = npformat.read_magic(f)
                header = (npformat.read_array_header_1_0, npformat.read_array_header_2_0)
                shape, fortran, dtype = header[major > 1](f)
            offset = f.tell()
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        if fortran:
            raise ValueError(f"{path} is in Fortran order")
        self._array = np.ndarray(shape, dtype, buffer=self._map, offset=offset)
        self.shape, self.dtype = self._array.shape, self._array.dtype

    def __len__(self) -> int:
        return len(self._array)

    def __getitem__(self, index: Any) -> np.ndarray:
        out = np.array(self._array[index])
        if hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED)
        return out


def load_array(source: Path | IO[bytes], mmap: bool = False) -> np.ndarray:
    """A .npy file (or body) as an array, memory-mapped read-only if ``mmap``; never pickles.
    A file read whole is verified against its checksum first."""
    if isinstance(source, Path) and not mmap:
        verify_file(source)
    with _HEADER_LOCK:
        return np.load(source, mmap_mode="r" if mmap else None, allow_pickle=False)


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz file, read at once (after its checksum); never pickles."""
    verify_file(path)
    with _HEADER_LOCK, np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write named arrays as an uncompressed .npz file and its checksum, and fsync both."""
    with open(path, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    _write_checksum(path)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that readers see the old or the new file, never half."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
