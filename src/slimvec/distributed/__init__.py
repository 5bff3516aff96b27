"""Sharded collections on a Ray cluster (``pip install 'slimvec[ray]'``).

>>> import ray, slimvec.distributed as sd
>>> ray.init(num_cpus=2)                                   # or ray.init(address="auto")
>>> col = sd.create("root/docs", dim=384, shards=4, spec="int8*4 > f32")
>>> ids = col.add(vectors)                                 # routed to shards by id hash
>>> res = col.search(queries, k=10)                        # fan-out, merged top-k
>>> col = sd.open("root/docs")                             # serve it again later
>>> keyed = sd.create("root/keyed", dim=384, shards=4, ids="str")   # string ids: crc32 routing

Each shard is an ordinary slimvec collection directory (``root/shard-0000`` ...) served by a
Ray actor that Ray restarts when it dies; ``root/SHARDS.json`` records the layout. A
``ShardedCollection`` implements :class:`slimvec.CollectionProtocol` (the local collection's
methods and arguments). The core ``slimvec`` package never imports Ray; only this package does.
"""

from slimvec.errors import MissingDependencyError

try:
    import ray  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise MissingDependencyError(
        "slimvec.distributed needs Ray: pip install 'slimvec[ray]'"
    ) from exc

from slimvec.distributed.collection import ShardedCollection, create, merge_top, open  # noqa: A004
from slimvec.distributed.ingest import IngestReport, ingest_texts
from slimvec.distributed.shardmap import ShardMap, route

__all__ = [
    "IngestReport",
    "ShardMap",
    "ShardedCollection",
    "create",
    "ingest_texts",
    "merge_top",
    "open",
    "route",
]
