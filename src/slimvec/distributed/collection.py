"""A sharded collection: the local collection's API over N shard actors on a Ray cluster.

The handle in the driver is the router. ``add`` validates the whole batch, then sends each id
to shard ``route(id)``; ``search`` sends every query batch to every shard (each runs its full
funnel and returns its own top-k) and merges by score, so with exact (flat) specs the result
is the one a single collection gives. Reads go round-robin over a shard's replicas and fall
over to the next one when an actor is dead; writes go to the primary, which is the only
writer of its directory.

A sharded collection has one router that writes at a time (like a local collection's one
writer); any number may read. An ``add`` that spans shards is not a transaction across them:
if a shard dies mid-call the error names it, the other shards have committed their part, and
retrying with the same ids after dropping those already present (what
:func:`slimvec.distributed.ingest_texts` does) completes it without duplicates.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

import slimvec
from slimvec.distributed.shard import ShardActor
from slimvec.distributed.shardmap import ShardMap
from slimvec.distributed.shardmap import route as slimvec_route
from slimvec.errors import (
    CollectionExistsError,
    DuplicateIdError,
    IdKindError,
    InvalidInputError,
    ShardUnavailableError,
    SlimvecError,
)
from slimvec.search.fusion import check_text_search, fuse
from slimvec.search.result import SearchResult
from slimvec.spec import DEFAULT_SPEC
from slimvec.store.idmap import check_id_kind
from slimvec.validation import as_ids, as_matrix, as_metadata, as_texts, check_k

#: Ray restarts a dead shard actor this many times (-1: always); in-flight calls are not
#: retried (``max_task_retries=0``) so the caller hears which shard failed.
DEFAULT_ACTOR_OPTIONS: dict[str, Any] = {
    "max_restarts": -1,
    "max_task_retries": 0,
    "num_cpus": 0,
    "scheduling_strategy": "SPREAD",
}


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


#: What to do instead of string ids: shards route by an integer hash of the id.
USE_INT_IDS = (
    "sharded collections take int64 ids only (shards are chosen by hashing the id); map your "
    "keys to int64 ids (slimvec.distributed.ingest.text_ids hashes strings to stable ids), or "
    "keep one collection: slimvec.create(path, dim, ids='str')"
)


def _int_ids(ids: Any) -> np.ndarray:
    """``ids`` as an array, refusing string ids with ``IdKindError`` (never a cast)."""
    array = np.atleast_1d(np.asarray(ids))
    if array.dtype.kind in "USO":
        strings = [i for i in array.ravel().tolist() if isinstance(i, str)]
        if strings:
            raise IdKindError(f"got a string id {strings[0]!r}: {USE_INT_IDS}")
    return array


def merge_top(parts: Sequence[tuple[np.ndarray, np.ndarray]], k: int) -> SearchResult:
    """Global top-``k`` of per-shard top-``k`` lists: best score first, ties by lower id
    (the order a single collection gives ids added in increasing order)."""
    ids = np.concatenate([p[0] for p in parts], axis=1)
    scores = np.concatenate([p[1] for p in parts], axis=1).astype(np.float32)
    key_ids = np.where(ids >= 0, ids, np.iinfo(np.int64).max)
    order = np.lexsort((key_ids, -scores), axis=1)[:, :k]
    return SearchResult(
        ids=np.take_along_axis(ids, order, axis=1), scores=np.take_along_axis(scores, order, axis=1)
    )


class ShardedCollection:
    """Make with :func:`slimvec.distributed.create` or :func:`open`, not directly."""

    def __init__(
        self,
        root: str | Path,
        smap: ShardMap,
        encoder: Any = None,
        actor_options: dict[str, Any] | None = None,
        start_timeout: float = 120.0,
    ):
        _require_ray()
        self.root = Path(root)
        self._map = smap
        self._encoder = None
        if encoder is not None:
            self._encoder = self._checked_encoder(encoder)
        self._options = {**DEFAULT_ACTOR_OPTIONS, **(actor_options or {})}
        self._turn = itertools.count()
        self._actors: list[list[Any]] = []
        self._start(start_timeout)

    # -- actors -------------------------------------------------------------------------------
    def _start(self, timeout: float) -> None:
        for s in range(self.shards):
            path = str(self._map.shard_path(self.root, s))
            self._actors.append(
                [
                    ShardActor.options(**self._options).remote(path, s)
                    for _ in range(self._map.replicas)
                ]
            )
        pending = {
            actor.ready.remote(): s for s, group in enumerate(self._actors) for actor in group
        }
        try:
            ready, not_ready = ray.wait(list(pending), num_returns=len(pending), timeout=timeout)
            if not_ready:
                s = pending[not_ready[0]]
                raise ShardUnavailableError(
                    f"shard {s} ({self._shard_path(s)}) did not start within {timeout:g} s: the "
                    f"cluster has no node with the resources its actor asks for "
                    f"({self._options}); add nodes or lower actor_options",
                    shard=s,
                )
            for ref in ready:
                try:
                    ray.get(ref)
                except RayActorError as exc:
                    s = pending[ref]
                    raise ShardUnavailableError(
                        f"shard {s} ({self._shard_path(s)}) could not start: {_cause(exc)}",
                        shard=s,
                    ) from None
        except BaseException:
            self.close()
            raise

    def _shard_path(self, s: int) -> str:
        return str(self._map.shard_path(self.root, s))

    def close(self) -> None:
        """Stop the shard actors (the directories stay; :func:`open` serves them again)."""
        for group in self._actors:
            for actor in group:
                ray.kill(actor, no_restart=True)
        self._actors = []

    def __enter__(self) -> ShardedCollection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, method: str, per_shard: dict[int, tuple]) -> list[Any]:
        """``method(*args)`` on each listed shard, results in that order. Replicas take turns;
        a call whose actor died is retried on the shard's next replica, and when none is left
        ``ShardUnavailableError`` names the shard."""
        turn = next(self._turn)
        pending = {}
        for s, args in per_shard.items():
            r = turn % len(self._actors[s])
            pending[s] = (r, getattr(self._actors[s][r], method).remote(*args))
        try:  # the common case in one call: every shard answered
            return ray.get([ref for _, ref in pending.values()])
        except (RayActorError, RayTaskError):
            pass  # sort out below which shard failed and how
        out = {}
        for s, (r, ref) in pending.items():
            group = self._actors[s]
            for attempt in itertools.count(1):
                try:
                    out[s] = _get(ref)
                    break
                except RayActorError as exc:
                    if attempt >= len(group):
                        raise self._died(s, method, exc) from None
                    r = (r + 1) % len(group)
                    ref = getattr(group[r], method).remote(*per_shard[s])
        return [out[s] for s in per_shard]

    def _read_all(self, method: str, *args: Any) -> list[Any]:
        """``method(*args)`` on every shard; large arrays go to the object store once, not
        once per shard."""
        args = tuple(
            ray.put(a) if isinstance(a, np.ndarray) and a.nbytes > 100_000 else a for a in args
        )
        return self._read(method, dict.fromkeys(range(self.shards), args))

    def _write(self, method: str, per_shard: dict[int, tuple]) -> dict[int, Any]:
        """``method`` on each listed shard's primary, all in parallel. Every call is waited
        for before an error is raised, so when one shard fails the others have committed."""
        refs = {s: getattr(self._actors[s][0], method).remote(*a) for s, a in per_shard.items()}
        out, errors = {}, []
        for s, ref in refs.items():
            try:
                out[s] = _get(ref)
            except RayActorError as exc:
                errors.append(self._died(s, method, exc, write=True))
            except Exception as exc:  # the shard's own slimvec error
                errors.append(exc)
        for s in refs:  # replicas reopen to see the commit; ordered before later reads
            for replica in self._actors[s][1:]:
                replica.refresh.remote()
        if errors:
            raise errors[0]
        return out

    def _died(self, s: int, method: str, exc: Exception, write: bool = False) -> Exception:
        also = " (the other shards committed their part)" if write else ""
        return ShardUnavailableError(
            f"shard {s} ({self._shard_path(s)}) failed during {method}: its actor died "
            f"({_cause(exc)}){also}. Ray restarts it from its directory; retry the call",
            shard=s,
        )

    # -- properties ---------------------------------------------------------------------------
    @property
    def shards(self) -> int:
        return self._map.shards

    @property
    def replicas(self) -> int:
        return self._map.replicas

    def reserved_cpus(self) -> float:
        """CPUs the shard actors reserve on the cluster (0 by default: they mostly wait on
        disk and sleep between calls)."""
        per_actor = float(self._options.get("num_cpus") or 0)
        return per_actor * self.shards * self.replicas

    @property
    def dim(self) -> int:
        return self._map.dim

    @property
    def metric(self) -> str:
        return self._map.metric

    @property
    def spec(self) -> str:
        return self._map.spec

    def __len__(self) -> int:
        return int(sum(self._read_all("count")))

    def __repr__(self) -> str:
        return (
            f"ShardedCollection({str(self.root)!r}, dim={self.dim}, shards={self.shards}, "
            f"replicas={self.replicas}, spec={self.spec!r})"
        )

    # -- writing ------------------------------------------------------------------------------
    def add(
        self,
        vectors: Any,
        ids: Any = None,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        texts: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Store vectors (n, dim), each on shard ``route(id)``; returns their int64 ids (given,
        or assigned increasing and unique across shards). Ids already on any shard are refused
        and nothing is written."""
        return self._add(vectors, ids, metadata, texts, skip_existing=False)

    def _add(
        self, vectors: Any, ids: Any, metadata: Any, texts: Any, skip_existing: bool
    ) -> np.ndarray:
        """``add``; with ``skip_existing`` rows whose id is present are dropped instead (for
        resuming an interrupted ingest). Returns the ids written."""
        x = as_matrix(vectors, self.dim)
        metas = as_metadata(metadata, len(x))
        if texts is not None:
            texts = as_texts(texts)
            if len(texts) != len(x):
                raise InvalidInputError(f"got {len(texts)} texts for {len(x)} vectors")
        if ids is None:
            new_ids = np.arange(self._map.next_id, self._map.next_id + len(x), dtype=np.int64)
        else:
            new_ids = as_ids(_int_ids(ids), len(x))
            present = self._present(new_ids)
            if present.any() and not skip_existing:
                clash = new_ids[present]
                raise DuplicateIdError(
                    f"ids already in the collection: {clash[:10].tolist()}"
                    f"{' ...' if len(clash) > 10 else ''}; delete them first or use new ids"
                )
            keep = np.flatnonzero(~present)
            x, new_ids = x[keep], new_ids[keep]
            metas = None if metas is None else [metas[i] for i in keep]
            texts = None if texts is None else [texts[i] for i in keep]
        if not len(new_ids):
            return new_ids
        # reserve the ids first: a crash after this wastes ids, never hands one out twice
        self._map.next_id = max(self._map.next_id, int(new_ids.max()) + 1)
        self._map.save(self.root)
        shard_of = slimvec_route(new_ids, self.shards)
        per_shard = {}
        for s in np.unique(shard_of):
            rows = np.flatnonzero(shard_of == s)
            per_shard[int(s)] = (
                x[rows],
                new_ids[rows],
                None if metas is None else [metas[i] for i in rows],
                None if texts is None else [texts[i] for i in rows],
            )
        self._write("add", per_shard)
        return new_ids

    def _present(self, ids: np.ndarray) -> np.ndarray:
        """Whether each id is live on any shard (every shard is asked, so an id misplaced by
        hand on the wrong shard is still found)."""
        found = self._read_all("contains", ids)
        return np.logical_or.reduce(found) if found else np.zeros(len(ids), bool)

    def live_ids(self) -> np.ndarray:
        """Ids of all live vectors, shard by shard."""
        return np.concatenate(self._read_all("live_ids"))

    def delete(self, ids: Any) -> int:
        """Tombstone the vectors with these ids; returns how many. Unknown ids → nothing is
        deleted on any shard."""
        wanted = np.unique(as_ids(_int_ids(ids), np.size(ids)))
        present = self._present(wanted)
        if not present.all():
            raise InvalidInputError(
                f"ids not in the collection: {wanted[~present][:10].tolist()}; nothing was deleted"
            )
        shard_of = slimvec_route(wanted, self.shards)
        per_shard = {int(s): (wanted[shard_of == s],) for s in np.unique(shard_of)}
        return int(sum(self._write("delete", per_shard).values()))

    def compact(self) -> None:
        """Compact every shard (in parallel)."""
        self._write("compact", dict.fromkeys(range(self.shards), ()))

    # -- reading ------------------------------------------------------------------------------
    def search(
        self,
        queries: Any,
        k: int = 10,
        exact: bool = False,
        filter: Any = None,  # noqa: A002 - the name the local API uses
    ) -> SearchResult:
        """Top-``k`` over all shards: each shard runs its whole funnel for ``k``, the router
        keeps the best ``k`` of the union. ``filter`` is passed to the shards when given."""
        q = as_matrix(queries, self.dim, "queries", allow_single=True)
        k = check_k(k)
        options: dict[str, Any] = {"exact": exact}
        if filter is not None:
            options["filter"] = filter
        return merge_top(self._read_all("search", q, k, options), k)

    def _by_shard(self, method: str, ids: Any) -> list[Any]:
        """Per-id answers of ``method`` (metadata, texts) gathered from each id's shard."""
        wanted = _int_ids(ids).astype(np.int64)
        shard_of = slimvec_route(wanted, self.shards)
        shards = [int(s) for s in np.unique(shard_of)]
        answers = self._read(method, {s: (wanted[shard_of == s],) for s in shards})
        out: list[Any] = [None] * len(wanted)
        for s, got in zip(shards, answers, strict=True):
            for i, value in zip(np.flatnonzero(shard_of == s), got, strict=True):
                out[i] = value
        return out

    def metadata(self, ids: Any) -> list[dict | None]:
        """Metadata stored with each id (None where none was given or the id is unknown)."""
        return self._by_shard("metadata", ids)

    def texts(self, ids: Any) -> list[str | None]:
        """The stored text of each id (None where none was stored or the id is unknown)."""
        return self._by_shard("texts", ids)

    def info(self, timeout: float = 10.0) -> dict[str, Any]:
        """Totals, per-vector costs, and per shard: count, RAM, disk, node and health of
        each replica (``"ok"``, or why it did not answer within ``timeout`` seconds)."""
        refs = [[a.info.remote() for a in group] for group in self._actors]
        shards = []
        for s, group in enumerate(refs):
            replicas, best = [], None
            for ref in group:
                try:
                    got = ray.get(ref, timeout=timeout)
                    replicas.append({"health": "ok", "pid": got["pid"], "node": got["node"]})
                    best = best or got
                except (RayActorError, GetTimeoutError) as exc:
                    replicas.append({"health": f"unavailable: {_cause(exc)}"})
            entry = {"shard": s, "path": self._shard_path(s), "replicas": replicas}
            if best is not None:
                entry.update({key: best[key] for key in ("count", "deleted", "ram_bytes")})
                entry["disk_bytes"] = best["disk_bytes"]
            shards.append(entry)
            if best is not None:
                sample = best
        answered = [e for e in shards if "count" in e]
        rows = sum(e["count"] + e["deleted"] for e in answered)
        disk = sum(e["disk_bytes"] for e in answered)
        return {
            "path": str(self.root),
            "shards": self.shards,
            "replicas": self.replicas,
            "healthy": all(r["health"] == "ok" for e in shards for r in e["replicas"]),
            "count": sum(e["count"] for e in answered) if len(answered) == self.shards else None,
            "deleted": sum(e["deleted"] for e in answered),
            "dim": self.dim,
            "metric": self.metric,
            "spec": self.spec,
            "encoder": self._map.encoder,
            "ram_bytes": sum(e["ram_bytes"] for e in answered),
            "disk_bytes": disk,
            "ram_bytes_per_vector": sample["ram_bytes_per_vector"] if answered else None,
            "disk_bytes_per_vector": round(disk / rows, 1) if rows else None,
            "float32_bytes_per_vector": 4 * self.dim,
            "code_bytes_per_vector": sample["code_bytes_per_vector"] if answered else None,
            "shard_info": shards,
        }

    # -- text ---------------------------------------------------------------------------------
    @property
    def encoder(self) -> Any:
        """The text encoder (loaded in the driver on first use, checked against the map)."""
        if self._encoder is None:
            if self._map.encoder is None:
                raise InvalidInputError(
                    f"collection {str(self.root)!r} has no encoder, so it takes vectors, not "
                    f"texts; create it with slimvec.distributed.create(root, "
                    f"encoder='all-MiniLM-L6-v2')"
                )
            self._encoder = self._checked_encoder(self._map.encoder["name"])
        return self._encoder

    def _checked_encoder(self, encoder: Any) -> Any:
        from slimvec.encoders import encoder_spec, get_encoder
        from slimvec.encoders.base import model_mismatch

        model = get_encoder(encoder)
        recorded = self._map.encoder
        if recorded is None:
            raise InvalidInputError(
                f"collection {str(self.root)!r} was created without an encoder; it cannot take one"
            )
        found = encoder_spec(model)
        what = model_mismatch(recorded, found)
        if what is not None:
            raise InvalidInputError(
                f"encoder {found['name']!r} is not the model this collection was built with "
                f"({recorded['name']!r}): its {what} differs; use the original model"
            )
        return model

    def add_texts(
        self,
        texts: Sequence[str],
        ids: Any = None,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Embed ``texts`` with the encoder (in this process) and store them; returns ids.
        For large corpora use :func:`slimvec.distributed.ingest_texts` (parallel, resumable)."""
        texts = as_texts(texts)
        vectors = self.encoder.encode(texts, kind="doc", batch_size=batch_size)
        return self.add(vectors, ids=ids, metadata=metadata, texts=texts)

    def search_texts(
        self,
        queries: Sequence[str] | str,
        k: int = 10,
        mode: str = "dense",
        *,
        fusion: str = "rrf",
        weights: Sequence[float] | None = None,
        rrf_constant: float = 60.0,
        candidates: int | None = None,
        exact: bool = False,
    ) -> SearchResult:
        """As ``Collection.search_texts``. BM25 scores use each shard's own term statistics
        (ids are spread by hash, so shards see near-identical statistics on large corpora)."""
        queries, k, depth = check_text_search(queries, k, mode, fusion, candidates)
        if mode == "dense":
            return self.search(self.encoder.encode(queries, kind="query"), k=k, exact=exact)
        if mode == "sparse":
            return merge_top(self._read_all("search_sparse", queries, k), k)
        dense = self.search(self.encoder.encode(queries, kind="query"), k=depth, exact=exact)
        sparse = merge_top(self._read_all("search_sparse", queries, depth), depth)
        return SearchResult(
            *fuse([dense, sparse], k, fusion, weights=weights, constant=rrf_constant)
        )


def create(
    root: str | Path,
    dim: int | None = None,
    shards: int = 4,
    spec: str = DEFAULT_SPEC,
    replicas: int = 1,
    metric: str = "cosine",
    encoder: Any = None,
    keyword: dict[str, Any] | None = None,
    actor_options: dict[str, Any] | None = None,
    start_timeout: float = 120.0,
    ids: str = "int",
) -> ShardedCollection:
    """Create ``shards`` empty shard directories under ``root`` and serve each with a Ray actor.

    ``root`` must be on a filesystem every node of the cluster sees at the same path (local
    disk for one machine; NFS/EFS/Lustre for several). ``replicas`` actors serve each shard
    (reads fail over between them). ``actor_options`` go to ``ShardActor.options`` (e.g.
    ``{"num_cpus": 2}`` to give each shard two cores; default: no CPU reserved, spread over
    nodes, best effort: reserve CPUs to make Ray place shards by capacity). Other arguments
    as :func:`slimvec.create`; ``ids`` must be "int" (string ids are refused, see
    ``USE_INT_IDS``).
    """
    if check_id_kind(ids) != "int":
        raise InvalidInputError(USE_INT_IDS)
    _require_ray()
    shards = _positive("shards", shards)
    replicas = _positive("replicas", replicas)
    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise CollectionExistsError(
            f"{str(root)!r} already holds files; open a sharded collection there with "
            f"slimvec.distributed.open, or pick a new path"
        )
    made_root = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
        first = slimvec.create(
            root / "shard-0000", dim=dim, metric=metric, spec=spec, encoder=encoder, keyword=keyword
        )  # validates everything before any other shard is made
        info = first.info()
        first.close()
        smap = ShardMap(
            shards=shards,
            dim=info["dim"],
            metric=metric,
            spec=info["spec"],
            replicas=replicas,
            encoder=info["encoder"],
        )
        smap.write_marker(root, 0)
        for s in range(1, shards):
            slimvec.create(
                smap.shard_path(root, s),
                dim=smap.dim,
                metric=metric,
                spec=spec,
                encoder=encoder,
                keyword=keyword,
            ).close()
            smap.write_marker(root, s)
        smap.save(root)  # the commit point: before it, the root is not a collection
    except BaseException:
        shutil.rmtree(root, ignore_errors=True) if made_root else _empty(root)
        raise
    return ShardedCollection(root, smap, encoder, actor_options, start_timeout)


def open(  # noqa: A001 - like slimvec.open
    root: str | Path,
    encoder: Any = None,
    shards: int | None = None,
    actor_options: dict[str, Any] | None = None,
    start_timeout: float = 120.0,
) -> ShardedCollection:
    """Serve an existing sharded collection. ``shards``, if given, must match the map (a
    check for deployment scripts); shard directories missing or from another collection are
    refused before any actor starts."""
    _require_ray()
    root = Path(root)
    smap = ShardMap.load(root)
    if shards is not None and _positive("shards", shards) != smap.shards:
        raise InvalidInputError(
            f"{str(root)!r} has {smap.shards} shards, not {shards}; the shard count is fixed "
            f"when the collection is created (re-shard by creating a new one and adding to it)"
        )
    smap.check_shards(root)
    return ShardedCollection(root, smap, encoder, actor_options, start_timeout)


def _require_ray() -> None:
    if not ray.is_initialized():
        raise SlimvecError(
            "Ray is not running in this process: call ray.init() (or ray.init(address='auto') "
            "to join a cluster) before using slimvec.distributed"
        )


def _empty(root: Path) -> None:
    for child in root.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def _get(ref: Any) -> Any:
    """``ray.get`` that re-raises a shard's own exception as itself (not Ray's wrapper)."""
    try:
        return ray.get(ref)
    except RayTaskError as exc:
        raise exc.cause from None


def _cause(exc: Exception) -> str:
    """The first line of why an actor died, without Ray's boilerplate."""
    text = str(getattr(exc, "error_msg", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
