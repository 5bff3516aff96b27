"""Ids, metadata and texts in SQLite: ``items(id PRIMARY KEY, row, meta JSON, text)``.

The manifest, not SQLite, decides what is committed: rows at or past the manifest's row count
are leftovers of an interrupted add, ignored by readers and replaced by the next writer.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slimvec.errors import CorruptCollectionError

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS items "
    "(id INTEGER PRIMARY KEY, row INTEGER NOT NULL, meta TEXT, text TEXT)"
)


class MetaStore:
    def __init__(self, path: Path, create: bool = False):
        self.path = path
        try:
            uri = f"file:{path}?mode={'rwc' if create else 'rw'}"
            self.db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            #: One statement at a time: threads sharing a collection handle share this
            #: connection (sqlite3 leaves serialising its use to the caller).
            self.lock = threading.Lock()
            self.db.execute("PRAGMA synchronous=FULL")
            if create:
                self.db.execute(_SCHEMA)
                self.db.commit()
            self.db.execute("SELECT count(*) FROM items").fetchone()
        except (sqlite3.DatabaseError, sqlite3.OperationalError) as exc:
            raise CorruptCollectionError(
                f"metadata database {path} is damaged or not SQLite ({exc}); restore from a backup"
            ) from exc

    def insert(
        self,
        ids: np.ndarray,
        first_row: int,
        metadata: Sequence[dict[str, Any] | None] | None,
        texts: Sequence[str] | None = None,
    ) -> None:
        """Record ids at rows ``first_row, first_row + 1, ...`` in one transaction.

        Rows from an interrupted add are dropped first; ``INSERT OR REPLACE`` lets an id whose
        earlier vector was deleted be added again (callers reject ids that are still live).
        """
        metas: Iterable[str | None] = (
            (json.dumps(m) if m is not None else None for m in metadata)
            if metadata is not None
            else (None for _ in range(len(ids)))
        )
        rows = range(first_row, first_row + len(ids))
        text_values: Iterable[str | None] = texts if texts is not None else (None for _ in rows)
        with self.db:
            self.db.execute("DELETE FROM items WHERE row >= ?", (first_row,))
            self.db.executemany(
                "INSERT OR REPLACE INTO items (id, row, meta, text) VALUES (?, ?, ?, ?)",
                zip(ids.tolist(), rows, metas, text_values),
            )

    def update_metadata(self, items: Iterable[tuple[int, int, dict | None]]) -> None:
        """Replace the metadata of (id, row, metadata) items in one transaction (the
        collection folding its log's "meta" records)."""
        values = [(json.dumps(m) if m is not None else None, i, r) for i, r, m in items]
        with self.db:
            self.db.executemany("UPDATE items SET meta = ? WHERE id = ? AND row = ?", values)

    def metadata(self, ids: Sequence[int], committed_rows: int) -> dict[int, dict | None]:
        found = self._column("meta", ids, committed_rows)
        return {i: json.loads(m) if m is not None else None for i, m in found.items()}

    def texts(self, ids: Sequence[int], committed_rows: int) -> dict[int, str | None]:
        return self._column("text", ids, committed_rows)

    def _column(self, column: str, ids: Sequence[int], committed_rows: int) -> dict[int, Any]:
        """``column`` of the committed rows with these ids (SQLite caps bound parameters)."""
        out: dict[int, Any] = {}
        for start in range(0, len(ids), 900):
            chunk = list(ids[start : start + 900])
            marks = ",".join("?" * len(chunk))
            query = f"SELECT id, {column} FROM items WHERE id IN ({marks}) AND row < ?"
            with self.lock:
                out.update(self.db.execute(query, (*chunk, committed_rows)).fetchall())
        return out

    def close(self) -> None:
        self.db.close()
