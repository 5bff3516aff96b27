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
    def add(self, vectors: np.ndarray, ids: np.ndarray, metadata: Any, texts: Any) -> int:
        self.col.add(vectors, ids=ids, metadata=metadata, texts=texts)
        return len(ids)

    def delete(self, ids: np.ndarray) -> int:
        return self.col.delete(ids)

    def compact(self) -> None:
        self.col.compact()

    # -- reads --------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, options: dict[str, Any]):
        res = self.col.search(queries, k=k, **options)
        return res.ids, res.scores

    def search_sparse(self, queries: list[str], k: int):
        res = self.col.search_texts(queries, k=k, mode="sparse")
        return res.ids, res.scores

    def contains(self, ids: np.ndarray) -> np.ndarray:
        return np.isin(ids, self.col.live_ids())

    def live_ids(self) -> np.ndarray:
        return self.col.live_ids()

    def count(self) -> int:
        return len(self.col)

    def metadata(self, ids: np.ndarray) -> list[dict | None]:
        return self.col.metadata(ids)

    def texts(self, ids: np.ndarray) -> list[str | None]:
        return self.col.texts(ids)

    def info(self) -> dict[str, Any]:
        info = self.col.info()
        disk = sum(f.stat().st_size for f in self.col.path.rglob("*") if f.is_file())
        rows = info["count"] + info["deleted"]  # tombstoned rows stay resident until compact
        info.update(self.ready(), disk_bytes=disk, ram_bytes=rows * info["ram_bytes_per_vector"])
        return info


#: The Ray actor class; ``ShardedCollection`` sets restarts, resources and placement per call.
ShardActor = ray.remote(Shard)
