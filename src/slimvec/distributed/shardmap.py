"""The shard map: the durable record of how a sharded collection is laid out.

``root/SHARDS.json`` names the shard count, the collection's uuid and everything every shard
must agree on (dim, metric, spec, encoder). It is written last by ``create`` (so a half-made
root is never mistaken for a collection) and replaced atomically (tmp + fsync + rename).
Each shard directory holds ``SHARD.json`` with the same uuid and its own index, so a shard
directory that is missing, swapped, or copied in from another collection is caught at open
instead of silently serving someone else's vectors.
"""

from __future__ import annotations

import json
import os
import uuid as uuidlib
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slimvec.errors import CollectionNotFoundError, CorruptCollectionError

SHARD_MAP = "SHARDS.json"
SHARD_MARKER = "SHARD.json"
FORMAT = 1
#: How ids map to shards; recorded so a future scheme cannot misread an old collection.
ROUTER = "splitmix64-mod"
#: How string ids (``create(..., ids="str")``) map to shards: CRC-32 of the key's UTF-8.
STR_ROUTER = "crc32-utf8-mod"
#: The router of each id kind (the map records the router; the id kind follows from it, so a
#: map written before string ids existed reads unchanged, and an older slimvec meeting a
#: string-id map refuses it by its router instead of misrouting keys).
ROUTERS = {"int": ROUTER, "str": STR_ROUTER}


def shard_name(index: int) -> str:
    return f"shard-{index:04d}"


def route(ids: np.ndarray, shards: int) -> np.ndarray:
    """Shard index of each id: splitmix64 finaliser of the id, modulo ``shards``.

    A mixing hash, not ``id % shards``, so sequential ids (the common case) and ids with a
    shared stride still spread evenly; vectorised over uint64 with wrap-around arithmetic.
    """
    z = np.asarray(ids, dtype=np.int64).view(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(shards)).astype(np.int64)


def route_keys(keys: Any, shards: int) -> np.ndarray:
    """Shard index of each string id: CRC-32 of its UTF-8 bytes, modulo ``shards`` (stable
    across processes, platforms and Python versions, unlike ``hash``)."""
    return np.fromiter(
        (zlib.crc32(key.encode("utf-8")) % shards for key in keys), np.int64, count=len(keys)
    )


def atomic_write_json(path: Path, payload: dict[str, Any]) -> None:
    """Replace ``path`` so readers see the old or the new file, never a torn one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class ShardMap:
    shards: int
    dim: int
    metric: str
    spec: str
    replicas: int = 1
    encoder: dict[str, Any] | None = None
    #: next id handed out when ``add`` is given none (never reused, like a local collection)
    next_id: int = 0
    uuid: str = field(default_factory=lambda: uuidlib.uuid4().hex)
    router: str = ROUTER
    format: int = FORMAT

    @property
    def id_kind(self) -> str:
        """ "int" or "str": the kind of id the collection takes (fixed by its router)."""
        return "str" if self.router == STR_ROUTER else "int"

    def route(self, ids: Any) -> np.ndarray:
        """Shard index of each id (int64 ids, or a sequence of string keys)."""
        if self.id_kind == "str":
            return route_keys(ids, self.shards)
        return route(ids, self.shards)

    def save(self, root: Path) -> None:
        atomic_write_json(root / SHARD_MAP, asdict(self))

    @classmethod
    def load(cls, root: Path) -> ShardMap:
        path = root / SHARD_MAP
        if not path.is_file():
            hint = ""
            if (root / "MANIFEST.json").is_file():
                hint = " (it is a local collection: open it with slimvec.open)"
            raise CollectionNotFoundError(
                f"{str(root)!r} is not a sharded collection: it has no {SHARD_MAP}{hint}; make "
                f"one with slimvec.distributed.create(root, dim, shards=N)"
            )
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            smap = cls(**raw)
        except (OSError, ValueError, TypeError) as exc:
            raise CorruptCollectionError(f"{path} is damaged ({exc})") from exc
        if smap.format != FORMAT or smap.router not in ROUTERS.values():
            raise CorruptCollectionError(
                f"{path} has format {smap.format} / router {smap.router!r}; this slimvec reads "
                f"format {FORMAT} / {' or '.join(map(repr, ROUTERS.values()))}: upgrade slimvec"
            )
        return smap

    def shard_path(self, root: Path, index: int) -> Path:
        return root / shard_name(index)

    def write_marker(self, root: Path, index: int) -> None:
        marker = {"collection": self.uuid, "shard": index, "shards": self.shards}
        atomic_write_json(self.shard_path(root, index) / SHARD_MARKER, marker)

    def check_shards(self, root: Path) -> None:
        """Every shard directory present, belonging to this collection and in its place."""
        found = sorted(p.name for p in root.glob("shard-*") if p.is_dir())
        expected = [shard_name(i) for i in range(self.shards)]
        extra = sorted(set(found) - set(expected))
        if extra:
            raise CorruptCollectionError(
                f"{str(root)!r}: the shard map records {self.shards} shards but the directory "
                f"also holds {extra}; shard counts are fixed at create, so these do not belong "
                f"here: move them away"
            )
        for index in range(self.shards):
            path = self.shard_path(root, index)
            if not path.is_dir():
                raise CorruptCollectionError(
                    f"shard {index} is missing: {str(path)!r} does not exist; restore it from a "
                    f"backup (its vectors cannot be served from elsewhere)"
                )
            try:
                marker = json.loads((path / SHARD_MARKER).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CorruptCollectionError(
                    f"shard {index} at {str(path)!r} has no readable {SHARD_MARKER} ({exc}); it "
                    f"is not a shard of this collection"
                ) from exc
            if marker.get("collection") != self.uuid or marker.get("shard") != index:
                raise CorruptCollectionError(
                    f"shard {index} at {str(path)!r} belongs to another collection or slot "
                    f"(collection {marker.get('collection')}, shard {marker.get('shard')}; this "
                    f"collection is {self.uuid}); put the right directory back"
                )
