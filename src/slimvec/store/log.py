"""The write-ahead log: small writes become durable with one append and one ``fdatasync``.

Writing a segment costs a directory, a file per code and half a dozen fsyncs; an application
that adds one document per request cannot pay that per document. So small adds and deletes
are *records* appended to the log file the manifest names (``log-<gen>.wal``); a record is
committed once it is completely on disk with a valid checksum. Readers replay the log after
the segments; the writer folds it into a segment (a *flush*) once it holds ``FLUSH_ROWS``
rows or ``FLUSH_BYTES`` bytes, and that flush commits through the manifest like any write.

Record layout (little-endian)::

    magic "SVL1" | u32 header length | u64 body length | u32 crc32(header + body)
    header: JSON {"kind": "add" | "delete", "arrays": {name: [dtype, shape]}, ...}
    body:   the arrays' bytes, one after the other (C order)

Replay stops at the first record that is incomplete or fails its checksum when nothing valid
follows it: that is the tail of a writer killed mid-append (never acknowledged), and the next
append overwrites it. A bad record *followed by a valid one* cannot come from a crash (appends
are sequential and each starts where the last valid record ends): it is damage to an
acknowledged record, and replay refuses it with :class:`CorruptCollectionError` instead of
silently dropping every later record (which the next append would then overwrite). The file
is never truncated or rewritten in place; a flush starts a new log file.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slimvec.errors import CorruptCollectionError

MAGIC = b"SVL1"
_HEAD = struct.Struct("<4sIQI")
#: A flush folds the log into a segment once it holds this many added rows ...
FLUSH_ROWS = 4096
#: ... or this many bytes (large vectors, many deletes).
FLUSH_BYTES = 64 * 1024 * 1024


@dataclass
class LogRecord:
    kind: str  # "add" or "delete"
    arrays: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)  # JSON-able: metadata, texts, ...

    def to_bytes(self) -> bytes:
        arrays = {k: np.ascontiguousarray(v) for k, v in self.arrays.items()}
        header = json.dumps(
            {
                "kind": self.kind,
                "arrays": {k: [v.dtype.str, list(v.shape)] for k, v in arrays.items()},
                "info": self.info,
            },
            separators=(",", ":"),
        ).encode()
        body = b"".join(v.tobytes() for v in arrays.values())
        crc = zlib.crc32(body, zlib.crc32(header))
        return _HEAD.pack(MAGIC, len(header), len(body), crc) + header + body


def _parse(header: bytes, body: bytes) -> LogRecord:
    spec = json.loads(header)
    arrays, at = {}, 0
    for name, (dtype, shape) in spec["arrays"].items():
        dt = np.dtype(dtype)
        size = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        arrays[name] = np.frombuffer(body, dt, count=size // dt.itemsize, offset=at).reshape(shape)
        at += size
    return LogRecord(spec["kind"], arrays, spec.get("info", {}))


def read_log(path: Path, start: int = 0) -> tuple[list[LogRecord], int]:
    """Committed records from byte ``start`` on, and the byte offset where they end."""
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read()
    except FileNotFoundError as exc:
        raise CorruptCollectionError(
            f"write-ahead log {path} is missing; restore the collection from a backup"
        ) from exc
    records, at = [], 0
    while (end := _valid_record_end(data, at)) is not None:
        head_len = _HEAD.unpack_from(data, at)[1]
        header = data[at + _HEAD.size : at + _HEAD.size + head_len]
        body = data[at + _HEAD.size + head_len : end]
        try:
            records.append(_parse(header, body))
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptCollectionError(
                f"write-ahead log {path} holds a bad record ({exc})"
            ) from exc
        at = end
    later = _next_valid_record(data, at)
    if later is not None:
        raise CorruptCollectionError(
            f"write-ahead log {path} is damaged at byte {start + at}: the record there fails "
            f"its checksum but acknowledged records follow it (from byte {start + later}); "
            f"nothing was dropped or overwritten. Restore the collection from a backup"
        )
    return records, start + at


def _valid_record_end(data: bytes, at: int) -> int | None:
    """Where the record starting at ``at`` ends, if it is complete with a valid checksum."""
    if at + _HEAD.size > len(data):
        return None
    magic, head_len, body_len, crc = _HEAD.unpack_from(data, at)
    end = at + _HEAD.size + head_len + body_len
    if magic != MAGIC or end > len(data):
        return None
    if zlib.crc32(data[at + _HEAD.size : end]) != crc:
        return None
    return end


def _next_valid_record(data: bytes, after: int) -> int | None:
    """Start of the first valid record past a bad one at ``after`` (None: a torn tail)."""
    at = data.find(MAGIC, after + 1)
    while at != -1:
        if _valid_record_end(data, at) is not None:
            return at
        at = data.find(MAGIC, at + 1)
    return None


def salvage_log(path: Path) -> tuple[list[LogRecord], list[tuple[int, int]]]:
    """Every valid record of a damaged log, and the byte spans skipped to reach them (a torn
    tail is a last span ending at the file's size). For ``slimvec check --repair``."""
    data = path.read_bytes()
    records, lost, at = [], [], 0
    while at < len(data):
        end = _valid_record_end(data, at)
        if end is None:
            later = _next_valid_record(data, at)
            lost.append((at, len(data) if later is None else later))
            if later is None:
                break
            at = later
            continue
        head_len = _HEAD.unpack_from(data, at)[1]
        records.append(_parse(data[at + _HEAD.size : at + _HEAD.size + head_len],
                              data[at + _HEAD.size + head_len : end]))  # fmt: skip
        at = end
    return records, lost


def append_record(path: Path, offset: int, record: LogRecord) -> int:
    """Write ``record`` at ``offset`` (the end of the committed records) and make it durable;
    returns the new end. Bytes past ``offset`` (a torn record) are overwritten."""
    blob = record.to_bytes()
    fd = os.open(path, os.O_WRONLY)
    try:
        written = os.pwrite(fd, blob, offset)
        if written != len(blob):
            raise OSError(f"short write to {path}: {written} of {len(blob)} bytes")
        os.fdatasync(fd)
    finally:
        os.close(fd)
    return offset + len(blob)


def create_log(path: Path) -> None:
    """An empty, durable log file (named by the manifest only after this returns)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
