"""The shard actors of one sharded collection: started, called, failed over, stopped.

A :class:`ShardPool` owns the Ray actors (one group of replicas per shard) and knows nothing
of vectors or ids: the router (:class:`slimvec.distributed.ShardedCollection`) decides what to
send where, the pool sends it. Reads go round-robin over a shard's replicas and fall over to
the next one when an actor is dead; writes go to the primary (the only writer of its
directory), every call is waited for before an error is raised, and replicas reopen after it.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from slimvec.distributed.shard import ShardActor
from slimvec.distributed.shardmap import ShardMap
from slimvec.errors import ShardUnavailableError

#: Ray restarts a dead shard actor this many times (-1: always); in-flight calls are not
#: retried (``max_task_retries=0``) so the caller hears which shard failed.
DEFAULT_ACTOR_OPTIONS: dict[str, Any] = {
    "max_restarts": -1,
    "max_task_retries": 0,
    "num_cpus": 0,
    "scheduling_strategy": "SPREAD",
}


class ShardPool:
    """``smap.replicas`` actors per shard of the collection at ``root``, started (and waited
    for, up to ``timeout`` seconds) on construction."""

    def __init__(self, root: Path, smap: ShardMap, options: dict[str, Any] | None, timeout: float):
        self.root = root
        self._map = smap
        self.options = {**DEFAULT_ACTOR_OPTIONS, **(options or {})}
        self._turn = itertools.count()
        self.actors: list[list[Any]] = []
        self._start(timeout)

    def _start(self, timeout: float) -> None:
        for s in range(self._map.shards):
            path = str(self._map.shard_path(self.root, s))
            self.actors.append(
                [
                    ShardActor.options(**self.options).remote(path, s)
                    for _ in range(self._map.replicas)
                ]
            )
        pending = {
            actor.ready.remote(): s for s, group in enumerate(self.actors) for actor in group
        }
        try:
            ready, not_ready = ray.wait(list(pending), num_returns=len(pending), timeout=timeout)
            if not_ready:
                s = pending[not_ready[0]]
                raise ShardUnavailableError(
                    f"shard {s} ({self.shard_path(s)}) did not start within {timeout:g} s: the "
                    f"cluster has no node with the resources its actor asks for "
                    f"({self.options}); add nodes or lower actor_options",
                    shard=s,
                )
            for ref in ready:
                try:
                    ray.get(ref)
                except RayActorError as exc:
                    s = pending[ref]
                    raise ShardUnavailableError(
                        f"shard {s} ({self.shard_path(s)}) could not start: {_cause(exc)}",
                        shard=s,
                    ) from None
        except BaseException:
            self.close()
            raise

    def shard_path(self, s: int) -> str:
        return str(self._map.shard_path(self.root, s))

    def close(self) -> None:
        """Stop the shard actors (the directories stay; :func:`open` serves them again)."""
        for group in self.actors:
            for actor in group:
                ray.kill(actor, no_restart=True)
        self.actors = []

    def read(self, method: str, per_shard: dict[int, tuple]) -> list[Any]:
        """``method(*args)`` on each listed shard, results in that order. Replicas take turns;
        a call whose actor died is retried on the shard's next replica, and when none is left
        ``ShardUnavailableError`` names the shard."""
        turn = next(self._turn)
        pending = {}
        for s, args in per_shard.items():
            r = turn % len(self.actors[s])
            pending[s] = (r, getattr(self.actors[s][r], method).remote(*args))
        try:  # the common case in one call: every shard answered
            return ray.get([ref for _, ref in pending.values()])
        except (RayActorError, RayTaskError):
            pass  # sort out below which shard failed and how
        out = {}
        for s, (r, ref) in pending.items():
            group = self.actors[s]
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

    def read_all(self, method: str, *args: Any) -> list[Any]:
        """``method(*args)`` on every shard; large arrays go to the object store once, not
        once per shard."""
        args = tuple(
            ray.put(a) if isinstance(a, np.ndarray) and a.nbytes > 100_000 else a for a in args
        )
        return self.read(method, dict.fromkeys(range(self._map.shards), args))

    def write(self, method: str, per_shard: dict[int, tuple]) -> dict[int, Any]:
        """``method`` on each listed shard's primary, all in parallel. Every call is waited
        for before an error is raised, so when one shard fails the others have committed."""
        refs = {s: getattr(self.actors[s][0], method).remote(*a) for s, a in per_shard.items()}
        out, errors = {}, []
        for s, ref in refs.items():
            try:
                out[s] = _get(ref)
            except RayActorError as exc:
                errors.append(self._died(s, method, exc, write=True))
            except Exception as exc:  # the shard's own slimvec error
                errors.append(exc)
        for s in refs:  # replicas reopen to see the commit; ordered before later reads
            for replica in self.actors[s][1:]:
                replica.refresh.remote()
        if errors:
            raise errors[0]
        return out

    def _died(self, s: int, method: str, exc: Exception, write: bool = False) -> Exception:
        also = " (the other shards committed their part)" if write else ""
        return ShardUnavailableError(
            f"shard {s} ({self.shard_path(s)}) failed during {method}: its actor died "
            f"({_cause(exc)}){also}. Ray restarts it from its directory; retry the call",
            shard=s,
        )

    def everywhere(self, *args: Any) -> dict[int, tuple]:
        """The same arguments for every shard (for ``read`` / ``write``)."""
        return dict.fromkeys(range(self._map.shards), args)

    def health(self, timeout: float) -> list[tuple[list[dict[str, Any]], dict | None]]:
        """Per shard: each replica's health (``"ok"`` with pid and node, or why it did not
        answer within ``timeout`` seconds) and the first answering replica's ``info``."""
        refs = [[a.info.remote() for a in group] for group in self.actors]
        out = []
        for group in refs:
            replicas, best = [], None
            for ref in group:
                try:
                    got = ray.get(ref, timeout=timeout)
                    replicas.append({"health": "ok", "pid": got["pid"], "node": got["node"]})
                    best = best or got
                except (RayActorError, GetTimeoutError) as exc:
                    replicas.append({"health": f"unavailable: {_cause(exc)}"})
            out.append((replicas, best))
        return out


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
