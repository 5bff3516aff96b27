"""A sharded collection: the local collection's API over N shard actors on a Ray cluster.

The handle in the driver is the router; it implements :class:`slimvec.CollectionProtocol`
with the local collection's signatures. ``add`` validates the whole batch, then sends each id
to its shard (int64 ids: ``route(id)``, a splitmix64 hash; string ids, ``create(...,
ids="str")``: CRC-32 of the key's UTF-8), where an ordinary local collection stores it;
``search`` sends every query batch to every shard (each runs its full
funnel and returns its own top-k) and merges by score, so with exact (flat) specs the result
is the one a single collection gives. Reads go round-robin over a shard's replicas and fall
over to the next one when an actor is dead; writes go to the primary, which is the only
writer of its directory.

A sharded collection has one router that writes at a time (like a local collection's one
writer); any number may read. An ``add`` that spans shards is not a transaction across them:
if a shard dies mid-call the error names it, the other shards have committed their part, and
retrying with the same ids after dropping those already present (what
:func:`slimvec.distributed.ingest_texts` does) completes it without duplicates. The same
holds for ``upsert``, ``update_metadata`` and ``delete(filter=...)``: each shard commits its
part atomically, the call as a whole is not one commit.

``get`` without ids lists rows in a global order that does not depend on the shard count: by
id (int ids; for ids ``add`` assigned that is insertion order) or by key in string order
(string ids) — not insertion order, which shards do not share.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import ray

import slimvec
from slimvec.distributed.pool import ShardPool
from slimvec.distributed.shardmap import ROUTERS, ShardMap
from slimvec.engine.arguments import check_update
from slimvec.engine.model import ModelSlot
from slimvec.engine.quality import check_target, combine
from slimvec.errors import (
    CollectionExistsError,
    DuplicateIdError,
    IdKindError,
    InvalidInputError,
    SlimvecError,
)
from slimvec.search.filters import parse_filter
from slimvec.search.fusion import check_text_search, fuse
from slimvec.search.result import GetResult, SearchResult
from slimvec.spec import DEFAULT_SPEC
from slimvec.store.idmap import as_keys, check_id_kind, new_keys
from slimvec.validation import as_ids, as_matrix, as_metadata, as_texts, check_k, normalise


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _int_ids(ids: Any) -> np.ndarray:
    """``ids`` as an array, refusing string ids with ``IdKindError`` (never a cast)."""
    array = np.atleast_1d(np.asarray(ids))
    if array.dtype.kind in "USO":
        strings = [i for i in array.ravel().tolist() if isinstance(i, str)]
        if strings:
            raise IdKindError(
                f"this collection has int64 ids, got a string id {strings[0]!r}; create the "
                f"collection with slimvec.distributed.create(..., ids='str') to use string ids"
            )
    return array


def _key_array(keys: Sequence[str]) -> np.ndarray:
    out = np.empty(len(keys), dtype=object)
    out[:] = list(keys)
    return out


def _order_keys(ids: np.ndarray) -> np.ndarray:
    """int64 stand-ins for ids that sort as the ids do: the ids themselves, or (string ids)
    each key's rank in string order; padding (-1 / None) gets the largest value."""
    last = np.iinfo(np.int64).max
    if ids.dtype != object:
        return np.where(ids >= 0, ids, last)
    flat = ids.ravel()
    real = np.array([v is not None for v in flat], dtype=bool)
    ranks = np.full(flat.shape, last, np.int64)
    if real.any():
        ranks[real] = np.unique(flat[real].astype(str), return_inverse=True)[1].ravel()
    return ranks.reshape(ids.shape)


def merge_top(parts: Sequence[tuple[np.ndarray, ...]], k: int) -> SearchResult:
    """Global top-``k`` of per-shard top-``k`` lists: best score first, ties by lower id
    (the order a single collection gives ids added in increasing order; string ids: by key).
    A part may carry a third item, its shard's ``explain``: the result's explain then lists
    them and sums what adds up (matching rows, live rows)."""
    ids = np.concatenate([p[0] for p in parts], axis=1)
    scores = np.concatenate([p[1] for p in parts], axis=1).astype(np.float32)
    order = np.lexsort((_order_keys(ids), -scores), axis=1)[:, :k]
    explains = [p[2] for p in parts if len(p) > 2 and p[2] is not None]
    return SearchResult(
        ids=np.take_along_axis(ids, order, axis=1),
        scores=np.take_along_axis(scores, order, axis=1),
        explain=_merged_explain(explains) if explains else None,
    )


def _merged_explain(explains: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"plan": "sharded", "why": "every shard ran its own plan (shards)"}
    for key in ("matching", "live"):
        if all(key in e for e in explains):
            out[key] = int(sum(e[key] for e in explains))
    if "matching" in out and "live" in out:
        out["selectivity"] = out["matching"] / out["live"] if out["live"] else 0.0
    out["shards"] = explains
    return out


def _fuse_any(lists: list[SearchResult], k: int, **options: Any) -> SearchResult:
    """``fuse`` for int64 ids or string ids (mapped to ranks in string order and back, so
    ties still go to the smaller id)."""
    if lists[0].ids.dtype != object:
        return SearchResult(*fuse(lists, k, **options))
    keys = sorted({v for res in lists for v in res.ids.ravel().tolist() if v is not None})
    rank = {key: i for i, key in enumerate(keys)}
    coded = [
        (np.vectorize(lambda v: -1 if v is None else rank[v], otypes=[np.int64])(r.ids), r.scores)
        for r in lists
    ]
    ids, scores = fuse(coded, k, **options)
    table = _key_array([*keys, None])  # -1 (padding) picks the trailing None
    return SearchResult(table[ids], scores)


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
        self._model = ModelSlot(repr(str(self.root)), "slimvec.distributed.create(root, ")
        if encoder is not None:
            self._model.attach(encoder, self._map.encoder)
        self._pool = ShardPool(self.root, smap, actor_options, start_timeout)

    @property
    def _actors(self) -> list[list[Any]]:
        """The shard actors, one list of replicas per shard (primary first)."""
        return self._pool.actors

    def close(self) -> None:
        """Stop the shard actors (the directories stay; :func:`open` serves them again)."""
        self._pool.close()

    def __enter__(self) -> ShardedCollection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        per_actor = float(self._pool.options.get("num_cpus") or 0)
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

    @property
    def id_kind(self) -> str:
        """ "int" or "str": the kind of id this collection takes and returns (chosen at create)."""
        return self._map.id_kind

    def __len__(self) -> int:
        return int(sum(self._pool.read_all("count")))

    def __repr__(self) -> str:
        return (
            f"ShardedCollection({str(self.root)!r}, dim={self.dim}, shards={self.shards}, "
            f"replicas={self.replicas}, spec={self.spec!r})"
        )

    # -- ids ----------------------------------------------------------------------------------
    def _user_ids(self, ids: Any, n: int | None = None, unique: bool = True, dedupe: bool = True):
        """Validated caller ids as an array (int64, or object holding string keys); ``n``:
        the count they must have; ``unique=False`` accepts repeats (dropped, first kept,
        unless ``dedupe=False``). The wrong kind raises ``IdKindError``, never a cast."""
        if self.id_kind == "str":
            keys = as_keys(ids, n, unique=unique)
            return _key_array(list(dict.fromkeys(keys)) if dedupe else keys)
        array = _int_ids(ids)
        if not unique:
            array = array.astype(np.int64) if array.size else np.empty(0, np.int64)
            if dedupe:
                array = array[np.sort(np.unique(array, return_index=True)[1])]
            return array
        return as_ids(array, len(array) if n is None else n)

    def _split(self, ids: np.ndarray) -> dict[int, np.ndarray]:
        """Positions in ``ids`` of the ids each shard holds (shards holding none left out)."""
        shard_of = self._map.route(ids)
        return {int(s): np.flatnonzero(shard_of == s) for s in np.unique(shard_of)}

    # -- writing ------------------------------------------------------------------------------
    def add(
        self,
        vectors: Any,
        ids: Any = None,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        texts: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Store vectors (n, dim), each on its id's shard; returns their ids (given, or
        assigned: increasing int64 unique across shards, or UUID strings in an ``ids="str"``
        collection). Ids already on any shard are refused and nothing is written."""
        return self._add(vectors, ids, metadata, texts, skip_existing=False)

    def _rows(self, vectors: Any, metadata: Any, texts: Any) -> tuple[np.ndarray, Any, Any]:
        """Vectors, metadata and texts checked as a local collection checks them."""
        x = as_matrix(vectors, self.dim)
        if self.metric == "cosine":
            normalise(x)  # zero rows are refused here, before any shard writes
        metas = as_metadata(metadata, len(x))
        if texts is not None:
            texts = as_texts(texts)
            if len(texts) != len(x):
                raise InvalidInputError(f"got {len(texts)} texts for {len(x)} vectors")
        return x, metas, texts

    def _add(
        self, vectors: Any, ids: Any, metadata: Any, texts: Any, skip_existing: bool
    ) -> np.ndarray:
        """``add``; with ``skip_existing`` rows whose id is present are dropped instead (for
        resuming an interrupted ingest). Returns the ids written."""
        x, metas, texts = self._rows(vectors, metadata, texts)
        if ids is None:
            if self.id_kind == "str":
                new_ids = _key_array(new_keys(len(x)))
            else:
                new_ids = np.arange(self._map.next_id, self._map.next_id + len(x), dtype=np.int64)
        else:
            new_ids = self._user_ids(ids, len(x))
            present = self._present(new_ids)
            if present.any() and not skip_existing:
                clash = new_ids[present]
                raise DuplicateIdError(
                    f"ids already in the collection: {clash[:10].tolist()}"
                    f"{' ...' if len(clash) > 10 else ''}; use upsert() to replace them, or new ids"
                )
            keep = np.flatnonzero(~present)
            x, new_ids = x[keep], new_ids[keep]
            metas = None if metas is None else [metas[i] for i in keep]
            texts = None if texts is None else [texts[i] for i in keep]
        if not len(new_ids):
            return new_ids
        self._reserve(new_ids)
        self._pool.write("add", self._per_shard(x, new_ids, metas, texts))
        return new_ids

    def _reserve(self, ids: np.ndarray) -> None:
        """Int ids: move the id counter past ``ids`` before they are written (a crash after
        this wastes ids, never hands one out twice)."""
        if self.id_kind == "int" and int(ids.max()) >= self._map.next_id:
            self._map.next_id = int(ids.max()) + 1
            self._map.save(self.root)

    def _per_shard(self, x: np.ndarray, ids: np.ndarray, metas: Any, texts: Any) -> dict:
        per_shard = {}
        for s, rows in self._split(ids).items():
            per_shard[s] = (
                x[rows],
                ids[rows] if ids.dtype != object else ids[rows].tolist(),
                None if metas is None else [metas[i] for i in rows],
                None if texts is None else [texts[i] for i in rows],
            )
        return per_shard

    def upsert(
        self,
        vectors: Any,
        ids: Any,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        texts: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Store vectors under ``ids``, replacing the vector, metadata and text of those that
        exist (the others are added); returns the ids. Each shard replaces its part in one
        commit (see ``Collection.upsert``); the call is not one commit across shards."""
        if ids is None:
            raise InvalidInputError("upsert needs the ids to replace or add; add() makes new ones")
        x, metas, texts = self._rows(vectors, metadata, texts)
        user = self._user_ids(ids, len(x))
        self._reserve(user)
        self._pool.write("upsert", self._per_shard(x, user, metas, texts))
        return user

    def _present(self, ids: np.ndarray) -> np.ndarray:
        """Whether each id is live on any shard (every shard is asked, so an id misplaced by
        hand on the wrong shard is still found)."""
        found = self._pool.read_all("contains", ids)
        return np.logical_or.reduce(found) if found else np.zeros(len(ids), bool)

    def _require_live(self, ids: np.ndarray, what: str) -> None:
        present = self._present(ids)
        if not present.all():
            raise InvalidInputError(
                f"ids not in the collection: {ids[~present][:10].tolist()}; nothing was {what}"
            )

    def live_ids(self) -> np.ndarray:
        """Ids of all live vectors, shard by shard."""
        return np.concatenate(self._pool.read_all("live_ids"))

    def delete(self, ids: Any = None, filter: Any = None) -> int:  # noqa: A002
        """Tombstone the vectors with these ids, or (``filter``) whose metadata matches;
        returns how many. Unknown ids → nothing is deleted on any shard. A filter is applied
        by every shard (each deletes its matching rows in one commit)."""
        if filter is not None:
            if ids is not None:
                raise InvalidInputError("give ids or filter to delete, not both")
            parse_filter(filter)
            return int(
                sum(self._pool.write("delete_where", self._pool.everywhere(filter)).values())
            )
        if ids is None:
            raise InvalidInputError("give the ids to delete, or filter={...}")
        wanted = self._user_ids(ids, unique=False)
        if not len(wanted):
            return 0
        self._require_live(wanted, "deleted")
        per_shard = {s: (self._wire(wanted[rows]),) for s, rows in self._split(wanted).items()}
        return int(sum(self._pool.write("delete", per_shard).values()))

    @staticmethod
    def _wire(ids: np.ndarray) -> Any:
        """Ids as a shard call takes them (string keys as a list)."""
        return ids.tolist() if ids.dtype == object else ids

    def update_metadata(
        self,
        ids: Any = None,
        metadatas: Sequence[dict[str, Any] | None] | None = None,
        filter: Any = None,  # noqa: A002
        merge: dict[str, Any] | None = None,
    ) -> int:
        """Replace the metadata of live ``ids`` (one dict, or None, per id), or merge one dict
        into the rows matching ``filter`` (and among ``ids``, if given); returns how many.
        Unknown ids: an error, nothing written. Each shard updates its rows in one commit."""
        if check_update(ids, metadatas, filter, merge) == "merge":
            if ids is None:
                per_shard = self._pool.everywhere(None, None, filter, merge)
            else:
                user = self._user_ids(ids)
                self._require_live(user, "updated")
                per_shard = {
                    s: (self._wire(user[rows]), None, filter, merge)
                    for s, rows in self._split(user).items()
                }
            return int(sum(self._pool.write("update_metadata", per_shard).values()))
        user = self._user_ids(ids)
        metas = as_metadata(metadatas, len(user))
        if metas is None:
            raise InvalidInputError("give one metadata dict (or None) per id")
        if not len(user):
            return 0
        self._require_live(user, "updated")
        per_shard = {
            s: (self._wire(user[rows]), [metas[i] for i in rows], None, None)
            for s, rows in self._split(user).items()
        }
        return int(sum(self._pool.write("update_metadata", per_shard).values()))

    def create_index(self, field: str) -> None:
        """Keep a sorted index of a metadata field on every shard (see
        ``Collection.create_index``)."""
        if not isinstance(field, str) or not field:
            raise InvalidInputError(f"field must be a non-empty string, got {field!r}")
        self._pool.write("create_index", self._pool.everywhere(field))

    def compact(self) -> None:
        """Compact every shard (in parallel)."""
        self._pool.write("compact", self._pool.everywhere())

    # -- reading ------------------------------------------------------------------------------
    def search(
        self,
        queries: Any,
        k: int = 10,
        exact: bool = False,
        filter: Any = None,  # noqa: A002
        nprobe: int | None = None,
    ) -> SearchResult:
        """Top-``k`` over all shards: each shard runs its whole funnel for ``k`` (with
        ``filter`` and ``nprobe`` when given), the router keeps the best ``k`` of the union.
        ``res.explain`` lists each shard's plan and the total matching rows."""
        q = as_matrix(queries, self.dim, "queries", allow_single=True)
        k = check_k(k)
        options: dict[str, Any] = {"exact": exact}
        if filter is not None:
            parse_filter(filter)
            options["filter"] = filter
        if nprobe is not None:
            options["nprobe"] = nprobe
        return merge_top(self._pool.read_all("search", q, k, options), k)

    def count(self, filter: Any = None) -> int:  # noqa: A002
        """Live vectors, or those whose metadata matches ``filter``."""
        if filter is None:
            return len(self)
        parse_filter(filter)
        return int(sum(self._pool.read_all("count", filter)))

    def get(
        self,
        ids: Any = None,
        filter: Any = None,  # noqa: A002
        limit: int | None = 100,
        offset: int = 0,
        vectors: bool | None = None,
    ) -> GetResult:
        """Live vectors' ids, metadata and texts, ``limit`` from ``offset`` (``limit=None``:
        all); restricted to ``ids`` (in the order given, each once) and/or ``filter``. Without
        ids the order is by id (string ids: by key), merged across shards, so pages are
        stable. Ids that are not live are left out. ``vectors`` (default: when ``ids`` are
        given) adds the stored float32 vectors."""
        if limit is not None:
            limit = check_k(limit)
        if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or offset < 0:
            raise InvalidInputError(f"offset must be a non-negative integer, got {offset!r}")
        if filter is not None:
            parse_filter(filter)
        if vectors is None:
            vectors = ids is not None
        vectors = bool(vectors)
        stop = None if limit is None else offset + limit
        if ids is not None:
            asked = self._user_ids(ids, unique=False)
            split = self._split(asked)
            parts = self._pool.read(
                "get", {s: (self._wire(asked[rows]), filter, vectors) for s, rows in split.items()}
            )
        else:
            parts = self._pool.read_all("get_first", filter, stop, vectors)
        found = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int64)
        metas = [m for p in parts for m in p[1]]
        texts = [t for p in parts for t in p[2]]
        if ids is not None:  # the order asked
            where = {v: i for i, v in enumerate(found.tolist())}
            order = np.array([where[v] for v in asked.tolist() if v in where], np.int64)
        else:  # the global order: by id / key
            order = np.argsort(_order_keys(found), kind="stable")
        order = order[offset:stop]
        stored = None
        if vectors:
            stacked = [p[3] for p in parts if p[3] is not None and len(p[3])]
            stored = (
                np.concatenate(stacked)[order] if stacked else np.empty((0, self.dim), np.float32)
            )
        out_ids = found[order] if len(found) else self._user_ids([], unique=False)
        return GetResult(
            ids=out_ids,
            metadata=[metas[i] for i in order],
            texts=[texts[i] for i in order],
            vectors=stored,
        )

    def _by_shard(self, method: str, ids: Any) -> list[Any]:
        """Per-id answers of ``method`` (metadata, texts) gathered from each id's shard."""
        wanted = self._user_ids(ids, unique=False, dedupe=False)
        split = self._split(wanted)
        answers = self._pool.read(
            method, {s: (self._wire(wanted[rows]),) for s, rows in split.items()}
        )
        out: list[Any] = [None] * len(wanted)
        for rows, got in zip(split.values(), answers, strict=True):
            for i, value in zip(rows, got, strict=True):
                out[i] = value
        return out

    def metadata(self, ids: Any) -> list[dict | None]:
        """Metadata stored with each id (None where none was given or the id is unknown)."""
        return self._by_shard("metadata", ids)

    def texts(self, ids: Any) -> list[str | None]:
        """The stored text of each id (None where none was stored or the id is unknown)."""
        return self._by_shard("texts", ids)

    def info(self, *, timeout: float = 10.0) -> dict[str, Any]:
        """Totals, per-vector costs, and per shard: count, RAM, disk, node and health of
        each replica (``"ok"``, or why it did not answer within ``timeout`` seconds)."""
        shards = []
        for s, (replicas, best) in enumerate(self._pool.health(timeout)):
            entry = {"shard": s, "path": self._pool.shard_path(s), "replicas": replicas}
            if best is not None:
                entry.update({k: best[k] for k in ("count", "deleted", "ram_bytes", "quality")})
                entry["disk_bytes"] = best["disk_bytes"]
                sample = best
            shards.append(entry)
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
            "id_kind": self.id_kind,
            "shard_info": shards,
            "quality": combine([e.get("quality") for e in answered]),  # each shard's own top-k
        }

    # -- live recall --------------------------------------------------------------------------
    def set_target_recall(self, target: float | None) -> None:
        """Hold recall@k at or above ``target`` on every shard (None: only measure): each
        commits it in its own manifest and tunes its own searches (``Collection.search``)."""
        target = check_target(target)  # refused before any shard is asked
        self._pool.write("set_target_recall", self._pool.everywhere(target))

    def live_recall(self) -> dict[str, Any]:
        """The shards' live recall combined (``info()["quality"]``; each shard measures its
        own top-k, so this is the recall of the parts the merge takes from)."""
        return combine(self._pool.read_all("live_recall"))

    # -- text ---------------------------------------------------------------------------------
    @property
    def encoder(self) -> Any:
        """The text encoder (loaded in the driver on first use, checked against the map)."""
        return self._model.get(self._map.encoder)

    def attach_encoder(self, encoder: Any) -> Any:
        """Use this ``Encoder`` object (it must be the recorded model); returns it."""
        return self._model.attach(encoder, self._map.encoder)

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
        filter: Any = None,  # noqa: A002
        nprobe: int | None = None,
    ) -> SearchResult:
        """As ``Collection.search_texts``; ``filter`` restricts every mode on every shard.
        BM25 scores use each shard's own term statistics (ids are spread by hash, so shards
        see near-identical statistics on large corpora)."""
        queries, k, depth = check_text_search(queries, k, mode, fusion, candidates)
        if nprobe is not None and mode == "sparse":
            raise InvalidInputError(
                "nprobe sets the IVF lists the dense search reads; mode='sparse' (BM25) "
                "reads none: leave nprobe out or use mode='dense' or 'hybrid'"
            )
        if filter is not None:
            parse_filter(filter)
        if mode == "dense":
            return self.search(self._embed(queries), k, exact, filter, nprobe)
        sparse = self._sparse(queries, k if mode == "sparse" else depth, filter)
        if mode == "sparse":
            return sparse
        dense = self.search(self._embed(queries), depth, exact, filter, nprobe)
        return _fuse_any([dense, sparse], k, mode=fusion, weights=weights, constant=rrf_constant)

    def _embed(self, queries: list[str]) -> np.ndarray:
        return self.encoder.encode(queries, kind="query")

    def _sparse(self, queries: list[str], k: int, filter: Any) -> SearchResult:  # noqa: A002
        """BM25 top-k merged over the shards that hold texts."""
        parts = [
            p for p in self._pool.read_all("search_sparse", queries, k, filter) if p is not None
        ]
        if not parts:
            raise InvalidInputError(
                f"collection {str(self.root)!r} holds no texts, so it has no keyword index; add "
                f"texts with add_texts(...) or add(vectors, texts=...)"
            )
        return merge_top(parts, k)


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
    as :func:`slimvec.create`; ``ids="str"`` makes a string-id collection (each key lives
    on shard ``crc32(key.encode()) % shards``; every shard is a string-id collection).
    """
    id_kind = check_id_kind(ids)
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
            root / "shard-0000",
            dim=dim,
            metric=metric,
            spec=spec,
            encoder=encoder,
            keyword=keyword,
            ids=id_kind,
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
            router=ROUTERS[id_kind],
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
                ids=id_kind,
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
