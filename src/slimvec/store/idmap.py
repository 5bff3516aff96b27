"""String ids: the caller's keys ("doc-1", UUIDs, file paths) over the int64 ids used inside.

A collection is created with an id kind (``slimvec.create(path, dim, ids="str")``; the default
stays ``"int"``), recorded in the manifest and reported by ``info()["id_kind"]``. Everything
below the collection (segments, tombstones, the log, BM25, filters) keeps working on int64 ids;
a string collection gives each stored key an internal id from its counter and never reuses
one, so a key that is replaced (``upsert``) or deleted and added again gets a fresh internal id.
That is what keeps replacement atomic: the old and the new row never share an id, so their
metadata rows in SQLite never collide before the commit that swaps them.

Where the mapping lives, following the collection's commit protocol:

- rows in the write-ahead log: the keys travel in the ``add`` / ``upsert`` record itself
  (``info["keys"]``), so the record that commits the vectors commits their keys;
- rows in segments: a ``keys(row PRIMARY KEY, id, key)`` table in the metadata database,
  written before the manifest commit; rows at or past the manifest's row count are leftovers
  of an interrupted commit, ignored by readers and replaced by the next writer (the rule the
  ``items`` table follows).

In RAM, :class:`IdMap` holds key -> id dicts (one for the committed rows, one for the log's)
and an object array indexed by internal id, so mapping a search result back to keys is one
NumPy gather over the ``k`` ids, never a Python loop over results. The committed part is
extended incrementally as the row count grows and reloaded only when the metadata database
is replaced (a compaction).
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from slimvec.errors import DuplicateIdError, IdKindError, InvalidInputError
from slimvec.validation import check_utf8

ID_KINDS = ("int", "str")
#: Longest key accepted (characters): keys are held in RAM and in every log record.
MAX_KEY_CHARS = 4096

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS keys "
    "(row INTEGER PRIMARY KEY, id INTEGER NOT NULL, key TEXT NOT NULL)"
)


def check_id_kind(kind: Any) -> str:
    if kind not in ID_KINDS:
        raise InvalidInputError(
            f"ids must be 'int' (int64 ids, the default) or 'str' (string ids such as UUIDs "
            f"or paths), got {kind!r}"
        )
    return kind


def as_keys(ids: Any, n: int | None = None, unique: bool = True) -> list[str]:
    """String ids as a list of ``n`` keys (any count if ``n`` is None); ints are refused with
    an ``IdKindError`` (a string collection never casts)."""
    if isinstance(ids, str):
        ids = [ids]
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1:
            raise InvalidInputError(f"ids must be 1-D, got shape {ids.shape}")
        ids = ids.tolist()
    try:
        keys = list(ids)
    except TypeError as exc:
        raise InvalidInputError(f"ids must be a list of strings, got {type(ids).__name__}") from exc
    if n is not None and len(keys) != n:
        raise InvalidInputError(f"got {len(keys)} ids for {n} vectors; give one id per vector")
    bad = [k for k in keys if not isinstance(k, str)]
    if bad:
        raise IdKindError(
            f"this collection has string ids, got {type(bad[0]).__name__} {bad[0]!r}; pass "
            f"str ids (e.g. str(i)) — a collection holds one id kind (info()['id_kind'])"
        )
    for i, key in enumerate(keys):
        check_utf8(key, f"ids[{i}]")
    empty_or_long = [k for k in keys if not k or len(k) > MAX_KEY_CHARS]
    if empty_or_long:
        raise InvalidInputError(
            f"string ids must have 1..{MAX_KEY_CHARS} characters, got {empty_or_long[0][:40]!r}"
        )
    if unique and len(set(keys)) != len(keys):
        seen: set[str] = set()
        dup = [k for k in keys if k in seen or seen.add(k)]
        raise DuplicateIdError(f"ids repeat within the batch: {dup[:10]}; each id must be unique")
    return keys


def new_keys(n: int) -> list[str]:
    """Fresh random keys (UUID4 strings) for adds that give no ids."""
    return [str(uuid.uuid4()) for _ in range(n)]


def save_keys(db: sqlite3.Connection, first_row: int, ids: np.ndarray, keys: np.ndarray) -> None:
    """Record the keys of rows ``first_row, first_row + 1, ...`` (before the manifest commit
    that makes those rows exist); leftovers of an interrupted commit are dropped first."""
    with db:
        db.execute(_SCHEMA)
        db.execute("DELETE FROM keys WHERE row >= ?", (first_row,))
        db.executemany(
            "INSERT INTO keys (row, id, key) VALUES (?, ?, ?)",
            zip(range(first_row, first_row + len(ids)), ids.tolist(), list(keys)),
        )


class IdMap:
    """key <-> internal id of one view: the committed rows' mapping (from SQLite, extended as
    the collection grows) plus the log's (learned as its records are replayed)."""

    def __init__(self, path: Path):
        self.path = path  # the metadata database this was read from
        self.rows = 0  # committed rows read so far
        self._committed: dict[str, int] = {}
        self._committed_len = 0  # entries of _by_id that come from committed rows
        self._log: dict[str, int] = {}
        self._by_id = np.empty(0, object)  # internal id -> key (None: unknown)
        self._len = 0

    @classmethod
    def refreshed(
        cls, previous: IdMap | None, db: sqlite3.Connection, path: Path, rows: int
    ) -> IdMap:
        """The map of a view with ``rows`` committed rows in database ``path``: ``previous``
        extended by the rows committed since it was read, or read afresh after a compaction;
        the log's part is always dropped (the caller replays the log)."""
        idmap = previous
        if idmap is None or idmap.path != path or idmap.rows > rows:
            idmap = cls(path)
        idmap._forget_log()
        if rows > idmap.rows:
            idmap._read(db, idmap.rows, rows)
        return idmap

    def _read(self, db: sqlite3.Connection, start: int, stop: int) -> None:
        exists = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='keys'")
        found = (
            db.execute(
                "SELECT id, key FROM keys WHERE row >= ? AND row < ? ORDER BY row", (start, stop)
            ).fetchall()
            if exists.fetchone()
            else []
        )
        if found:
            ids = np.fromiter((i for i, _ in found), np.int64, len(found))
            keys = [k for _, k in found]
            self._committed.update(zip(keys, ids.tolist()))  # later rows win
            self._store(ids, keys)
        self._committed_len = self._len
        self.rows = stop

    def _forget_log(self) -> None:
        self._log.clear()
        self._by_id[self._committed_len : self._len] = None
        self._len = self._committed_len

    def _store(self, ids: np.ndarray, keys: list[str]) -> None:
        need = int(ids.max()) + 1
        if need > len(self._by_id):
            grown = np.full(max(need, 2 * len(self._by_id), 16), None, object)
            grown[: self._len] = self._by_id[: self._len]
            self._by_id = grown
        values = np.empty(len(keys), object)
        values[:] = keys
        self._by_id[ids] = values
        self._len = max(self._len, need)

    def learn(self, ids: np.ndarray, keys: list[str]) -> None:
        """Keys of rows added by a log record (or about to be committed as a segment: a
        failed commit reloads the view, which drops them)."""
        if len(ids) != len(keys):
            raise InvalidInputError(f"{len(keys)} keys for {len(ids)} ids")
        if len(ids):
            self._log.update(zip(keys, np.asarray(ids).tolist()))
            self._store(np.asarray(ids, np.int64), keys)

    def ids_of(self, keys: list[str]) -> np.ndarray:
        """Internal id of each key (-1 where it was never stored; the id of a deleted key
        is returned too: liveness is the collection's business)."""
        log, committed = self._log, self._committed
        return np.fromiter((log.get(k, committed.get(k, -1)) for k in keys), np.int64, len(keys))

    def keys_of(self, ids: np.ndarray) -> np.ndarray:
        """Key of each internal id, as an object array of the same shape (None for -1)."""
        ids = np.asarray(ids)
        out = np.full(ids.shape, None, object)
        known = (ids >= 0) & (ids < self._len)
        out[known] = self._by_id[ids[known]]
        return out
