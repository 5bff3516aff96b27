"""Qdrant payloads as slimvec metadata: the payload as given, plus derived fields that let
slimvec's flat filters answer Qdrant's conditions on nested keys, nulls and point ids.

A point's metadata is its payload's keys unchanged, and:

- ``qdrant:id``: the point id as a string (``has_id``);
- ``qdrant:path:<a.b>``: the scalar values under each nested path (objects inside objects or
  inside arrays of objects: ``{"cities": [{"name": "Oslo"}]}`` gives
  ``qdrant:path:cities.name = "Oslo"``), so ``cities[].name`` and ``cities.name`` filter;
- ``qdrant:null:<key>``: true where a value is JSON null (``is_null``; slimvec itself treats a
  null as a missing value).

Keys starting with ``qdrant:`` are reserved (refused in payloads) and never returned.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from slimvec.errors import InvalidInputError

RESERVED = "qdrant:"
ID_FIELD = RESERVED + "id"
PATH = RESERVED + "path:"
NULL = RESERVED + "null:"


def normal_key(key: str) -> str:
    """A Qdrant key with its array markers dropped (``a[].b`` and ``a.b`` read the same)."""
    return key.replace("[]", "")


def stored_key(key: str) -> str:
    """The metadata field a Qdrant payload key is filtered on."""
    key = normal_key(key)
    return PATH + key if "." in key else key


def null_field(key: str) -> str:
    return NULL + normal_key(key)


def to_metadata(payload: Any, key: int | str) -> dict[str, Any]:
    """The metadata stored for a point with this payload and slimvec id."""
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise InvalidInputError(f"a payload is a JSON object, got {payload!r:.60}")
    reserved = [k for k in payload if k.startswith(RESERVED)]
    if reserved:
        raise InvalidInputError(
            f"payload key {reserved[0]!r}: keys starting with {RESERVED!r} are reserved by "
            f"slimvec's Qdrant API"
        )
    values: dict[str, list[Any]] = defaultdict(list)
    nulls: set[str] = set()

    def walk(value: Any, path: str) -> None:
        if value is None:
            nulls.add(path)
        elif isinstance(value, dict):
            for name, child in value.items():
                walk(child, f"{path}.{name}")
        elif isinstance(value, list):
            for item in value:
                if item is not None:
                    walk(item, path)
        elif "." in path:  # top-level scalars are filtered where they are
            values[path].append(value)

    for name, value in payload.items():
        walk(value, name)
    derived: dict[str, Any] = {ID_FIELD: str(key)}
    derived.update({PATH + p: v[0] if len(v) == 1 else v for p, v in values.items()})
    derived.update({NULL + p: True for p in nulls})
    return {**payload, **derived}


def to_payload(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """The payload of stored metadata (derived fields left out)."""
    return {k: v for k, v in (metadata or {}).items() if not k.startswith(RESERVED)}


def select(payload: dict[str, Any], with_payload: Any) -> dict[str, Any] | None:
    """The part of a payload a request's ``with_payload`` asks for (None: none of it).

    Top-level keys only: ``["a", "b"]``, ``{"include": [...]}``, ``{"exclude": [...]}``."""
    if with_payload is None or with_payload is False:
        return None
    if with_payload is True:
        return payload
    if isinstance(with_payload, list):
        with_payload = {"include": with_payload}
    if isinstance(with_payload, dict) and len(with_payload) == 1:
        ((how, keys),) = with_payload.items()
        if how in ("include", "exclude") and isinstance(keys, list):
            keep = set(keys)
            return {k: v for k, v in payload.items() if (k in keep) == (how == "include")}
    raise InvalidInputError(
        f"with_payload takes true, false, a list of keys, or {{'include'|'exclude': [...]}}; "
        f"got {with_payload!r:.60}"
    )


def set_at(payload: dict[str, Any], new: Any, key: str | None) -> dict[str, Any]:
    """``set_payload``: ``new`` merged into the payload, or into the object at dotted ``key``."""
    if not isinstance(new, dict):
        raise InvalidInputError(f"payload must be a JSON object, got {new!r:.60}")
    if key is None:
        return {**payload, **new}
    out = dict(payload)
    here = out
    parts = normal_key(key).split(".")
    for part in parts[:-1]:
        child = here.get(part)
        here[part] = dict(child) if isinstance(child, dict) else {}
        here = here[part]
    last = here.get(parts[-1])
    here[parts[-1]] = {**(last if isinstance(last, dict) else {}), **new}
    return out


def without(payload: dict[str, Any], keys: Any) -> dict[str, Any]:
    """``delete_payload``: the payload without ``keys`` (dotted keys reach into objects)."""
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise InvalidInputError(f"keys must be a list of payload keys, got {keys!r:.60}")
    out = dict(payload)
    for key in keys:
        if key in out:  # a top-level key, dots and all
            del out[key]
            continue
        *parents, last = normal_key(key).split(".")
        here = out
        for part in parents:
            child = here.get(part)
            if not isinstance(child, dict):
                break
            here[part] = dict(child)
            here = here[part]
        else:
            here.pop(last, None)
    return out
