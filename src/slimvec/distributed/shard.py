"""One shard: an ordinary slimvec collection directory served by one Ray actor.

The actor holds the directory open between calls (RAM codes resident, memory maps warm). Ray
restarts it when its process dies (``max_restarts``); a restart runs ``__init__`` again, which
reopens the directory at its last committed state — slimvec's atomic commits are what make
that safe, so nothing here tracks in-flight writes. Replicas are further actors serving the
same directory read-only (it must be on a filesystem every node sees); the primary writes.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import ray

import slimvec
from slimvec.validation import MAX_K


class Shard:
    """The actor's body. Methods take and return plain arrays so calls stay cheap to pickle."""

    def __init__(self, path: str, index: int):
        self.path = path
        self.index = index
        self.col = slimvec.open(path)

    def ready(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}

    def refresh(self) -> None:
        """Reopen the directory to see the primary's latest commit (replicas only)."""
        self.col.close()
        self.col = slimvec.open(self.path)

    # -- writes (primary only) ----------------------------------------------------------------
    def add(self, vectors: np.ndarray, ids: Any, metadata: Any, texts: Any) -> int:
        self.col.add(vectors, ids=ids, metadata=metadata, texts=texts)
        return len(ids)

    def upsert(self, vectors: np.ndarray, ids: Any, metadata: Any, texts: Any) -> int:
        self.col.upsert(vectors, ids=ids, metadata=metadata, texts=texts)
        return len(ids)

    def delete(self, ids: Any) -> int:
        return self.col.delete(ids)

    def delete_where(self, filter: Any) -> int:  # noqa: A002
        return self.col.delete(filter=filter)

    def update_metadata(self, ids: Any, metadatas: Any, filter: Any, merge: Any) -> int:  # noqa: A002
        return self.col.update_metadata(ids, metadatas, filter=filter, merge=merge)

    def create_index(self, field: str) -> None:
        self.col.create_index(field)

    def compact(self) -> None:
        self.col.compact()

    def set_target_recall(self, target: float | None) -> None:
        self.col.set_target_recall(target)

    # -- reads --------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, options: dict[str, Any]):
        res = self.col.search(queries, k=k, **options)
        return res.ids, res.scores, res.explain

    def search_sparse(self, queries: list[str], k: int, filter: Any = None):  # noqa: A002
        """BM25 top-k over this shard's texts, or None when it holds no texts (the router
        refuses only when no shard has any)."""
        if not self.col.has_texts:
            return None
        res = self.col.search_texts(queries, k=k, mode="sparse", filter=filter)
        return res.ids, res.scores

    def contains(self, ids: Any) -> np.ndarray:
        """Whether each id is live here (looked up by id, not a pass over every row)."""
        found = self.col.get(ids, limit=None, vectors=False).ids
        return np.isin(np.asarray(ids), found)

    def live_ids(self) -> np.ndarray:
        return self.col.live_ids()

    def count(self, filter: Any = None) -> int:  # noqa: A002
        return self.col.count(filter=filter)

    def get(self, ids: Any, filter: Any, vectors: bool) -> tuple:  # noqa: A002
        """Live ``ids`` (those matching ``filter``, if given) with their payloads."""
        res = self.col.get(ids, filter=filter, limit=None, vectors=vectors)
        return res.ids, res.metadata, res.texts, res.vectors

    def get_first(self, filter: Any, n: int | None, vectors: bool) -> tuple:  # noqa: A002
        """The first ``n`` live rows (all if None) matching ``filter`` in id order (keys in
        string order), with their payloads: this shard's part of a sharded ``get`` page.

        Where row order is id order (int ids the router assigned, no upsert since), the local
        collection's own page is that order: only ``n`` rows are read. Otherwise every
        matching id is listed and sorted first."""
        live = self.col.live_ids()
        in_order = live.dtype != object and bool(np.all(live[1:] > live[:-1]))
        limit = n if n is not None and n <= MAX_K else None
        if filter is None:
            ids = live if in_order else live[np.argsort(live, kind="stable")]
        elif in_order:
            res = self.col.get(filter=filter, limit=limit, vectors=vectors)
            return res.ids[:n], res.metadata[:n], res.texts[:n], _head(res.vectors, n)
        else:
            ids = self.col.get(filter=filter, limit=None, vectors=False).ids
            ids = ids[np.argsort(ids, kind="stable")]
        ids = ids[:n]
        if not len(ids):
            empty = np.empty((0, self.col.dim), np.float32) if vectors else None
            return ids, [], [], empty
        return self.get(ids, None, vectors)

    def metadata(self, ids: Any) -> list[dict | None]:
        return self.col.metadata(ids)

    def texts(self, ids: Any) -> list[str | None]:
        return self.col.texts(ids)

    def live_recall(self) -> dict[str, Any]:
        return self.col.live_recall()

    def info(self) -> dict[str, Any]:
        info = self.col.info()
        disk = sum(f.stat().st_size for f in self.col.path.rglob("*") if f.is_file())
        rows = info["count"] + info["deleted"]  # tombstoned rows stay resident until compact
        info.update(self.ready(), disk_bytes=disk, ram_bytes=rows * info["ram_bytes_per_vector"])
        return info


def _head(array: np.ndarray | None, n: int | None) -> np.ndarray | None:
    return None if array is None else array[:n]


#: The Ray actor class; ``ShardedCollection`` sets restarts, resources and placement per call.
ShardActor = ray.remote(Shard)
