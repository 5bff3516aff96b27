"""Qdrant filters translated into slimvec's operator dicts (:mod:`slimvec.search.filters`).

Qdrant's ``must`` / ``should`` / ``must_not`` become ``$and`` / ``$or`` / ``$not`` of ``$or``;
``match`` ``value`` / ``any`` / ``except`` become ``$eq`` / ``$in`` / ``$nin``; ``range``
becomes ``$gt``..``$lte``; ``is_empty`` is ``$exists: false`` (slimvec, like Qdrant, treats a
null and an empty list as no value). Three conditions read fields that :mod:`.payload`
derives when it stores a point, because slimvec's filters compare top-level fields only:

- a nested key (``country.name``, ``cities[].name``) reads ``qdrant:path:country.name``;
- ``is_null`` reads ``qdrant:null:<key>`` (slimvec cannot tell null from missing);
- ``has_id`` reads ``qdrant:id``, the point id as a string (slimvec ids are not metadata).

What slimvec cannot express (geo, full-text, ``values_count``, ``min_should``, a ``nested``
condition whose conditions must hold on one array element) raises :class:`Unsupported`,
answered as a Qdrant 400 naming the condition.
"""

from __future__ import annotations

from typing import Any

from slimvec.server.qdrant.ids import point_key
from slimvec.server.qdrant.payload import ID_FIELD, null_field, stored_key

RANGE_OPS = {"gt": "$gt", "gte": "$gte", "lt": "$lt", "lte": "$lte"}
UNSUPPORTED_FIELD = {
    "geo_bounding_box": "geo conditions",
    "geo_radius": "geo conditions",
    "geo_polygon": "geo conditions",
    "values_count": "values_count",
}
UNSUPPORTED_MATCH = {
    "text": "full-text match",
    "text_any": "full-text match",
    "phrase": "phrase match",
}


class Unsupported(ValueError):
    """A Qdrant filter (or request) part slimvec cannot answer faithfully."""


def translate(spec: Any, id_kind: str = "str") -> dict[str, Any] | None:
    """The slimvec filter for a Qdrant ``Filter`` object (None: no condition, every point).

    ``id_kind`` is the collection's ("int" or "str"): ``has_id`` ids are checked against it."""
    if spec is None:
        return None
    node = _filter(spec, "filter", id_kind, "")
    return node or None


def _as_list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return value
    raise Unsupported(f"{where} must be a condition or a list of conditions, got {value!r:.60}")


def _filter(spec: Any, where: str, id_kind: str, prefix: str) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise Unsupported(f"{where} must be a filter object, got {spec!r:.60}")
    unknown = sorted(set(spec) - {"must", "should", "must_not", "min_should"})
    if unknown:
        raise Unsupported(f"{where}: unknown field {unknown[0]!r} (must, should, must_not)")
    if spec.get("min_should") is not None:
        raise Unsupported(
            f"{where}.min_should is not supported by slimvec; express it with should/must"
        )
    parts: list[dict[str, Any]] = []
    for i, cond in enumerate(_as_list(spec.get("must"), f"{where}.must")):
        parts.append(_condition(cond, f"{where}.must[{i}]", id_kind, prefix))
    should = [
        _condition(c, f"{where}.should[{i}]", id_kind, prefix)
        for i, c in enumerate(_as_list(spec.get("should"), f"{where}.should"))
    ]
    if should:
        parts.append(should[0] if len(should) == 1 else {"$or": should})
    must_not = [
        _condition(c, f"{where}.must_not[{i}]", id_kind, prefix)
        for i, c in enumerate(_as_list(spec.get("must_not"), f"{where}.must_not"))
    ]
    if must_not:
        parts.append({"$not": must_not[0] if len(must_not) == 1 else {"$or": must_not}})
    parts = [p for p in parts if p]  # an empty sub-filter matches everything
    if len(parts) == 1:
        return parts[0]
    return {"$and": parts} if parts else {}


def _condition(cond: Any, where: str, id_kind: str, prefix: str) -> dict[str, Any]:
    if not isinstance(cond, dict):
        raise Unsupported(f"{where} must be a condition object, got {cond!r:.60}")
    if {"must", "should", "must_not", "min_should"} & set(cond):
        return _filter(cond, where, id_kind, prefix)
    if "has_id" in cond:
        ids = cond["has_id"]
        if not isinstance(ids, list):
            raise Unsupported(f"{where}.has_id takes a list of point ids")
        return {ID_FIELD: {"$in": [str(point_key(i, id_kind)) for i in ids]}}
    if "is_empty" in cond:
        return {stored_key(prefix + _key(cond["is_empty"], where)): {"$exists": False}}
    if "is_null" in cond:
        return {null_field(prefix + _key(cond["is_null"], where)): {"$exists": True}}
    if "nested" in cond:
        return _nested(cond["nested"], where, id_kind, prefix)
    if "has_vector" in cond:
        raise Unsupported(f"{where}: has_vector is not supported (slimvec points hold one vector)")
    if "key" in cond:
        return _field(cond, where, prefix)
    raise Unsupported(f"{where}: unknown condition {sorted(cond)}")


def _key(field: Any, where: str) -> str:
    key = field.get("key") if isinstance(field, dict) else None
    if not isinstance(key, str) or not key:
        raise Unsupported(f'{where} needs {{"key": "<payload key>"}}, got {field!r:.60}')
    return key


def _field(cond: dict[str, Any], where: str, prefix: str) -> dict[str, Any]:
    key = prefix + _key(cond, where)
    checks = {k: v for k, v in cond.items() if k != "key" and v is not None}
    for name, what in UNSUPPORTED_FIELD.items():
        if name in checks:
            raise Unsupported(f"{where}: {what} ({name}) are not supported by slimvec's filters")
    if not checks:
        raise Unsupported(f"{where} on {key!r} has no match, range, is_empty or is_null")
    out: list[dict[str, Any]] = []
    field = stored_key(key)
    for name, value in checks.items():
        if name == "match":
            out.append({field: _match(value, f"{where}.match")})
        elif name == "range":
            out.append({field: _range(value, f"{where}.range")})
        elif name == "is_empty":
            out.append({field: {"$exists": not value}})
        elif name == "is_null":
            null = {null_field(key): {"$exists": True}}
            out.append(null if value else {"$not": null})
        else:
            raise Unsupported(f"{where}: unknown field condition {name!r}")
    return out[0] if len(out) == 1 else {"$and": out}


def _match(match: Any, where: str) -> dict[str, Any]:
    if not isinstance(match, dict) or len(match) != 1:
        raise Unsupported(f"{where} takes one of value, any, except; got {match!r:.60}")
    ((kind, value),) = match.items()
    if kind in UNSUPPORTED_MATCH:
        raise Unsupported(
            f"{where}: {UNSUPPORTED_MATCH[kind]} is not supported by slimvec's payload filters "
            f"(store the text with the vector and use search_texts for keyword search)"
        )
    if kind == "value":
        return {"$eq": value}
    if kind in ("any", "except"):
        if not isinstance(value, list):
            raise Unsupported(f"{where}.{kind} takes a list of values, got {value!r:.60}")
        return {"$in" if kind == "any" else "$nin": value}
    raise Unsupported(f"{where}: unknown match {kind!r} (value, any, except)")


def _range(spec: Any, where: str) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise Unsupported(f"{where} takes gt/gte/lt/lte, got {spec!r:.60}")
    bounds = {k: v for k, v in spec.items() if v is not None}
    unknown = sorted(set(bounds) - set(RANGE_OPS))
    if unknown:
        raise Unsupported(f"{where}: unknown bound {unknown[0]!r} (gt, gte, lt, lte)")
    if not bounds:
        raise Unsupported(f"{where} needs at least one of gt, gte, lt, lte")
    return {RANGE_OPS[k]: v for k, v in bounds.items()}


def _nested(spec: Any, where: str, id_kind: str, prefix: str) -> dict[str, Any]:
    """``nested`` asks that all its conditions hold on one element of an array of objects;
    slimvec's columns hold each path's values per point, not per element, so only a single
    condition (where "the same element" adds nothing) is answered faithfully."""
    if not isinstance(spec, dict) or not isinstance(spec.get("filter"), dict):
        raise Unsupported(f'{where}.nested takes {{"key": ..., "filter": {{...}}}}')
    key = _key(spec, f"{where}.nested")
    inner = spec["filter"]
    conds = [c for part in ("must", "should", "must_not") for c in _as_list(inner.get(part), where)]
    if len(conds) != 1 or (isinstance(conds[0], dict) and "key" not in conds[0]):
        raise Unsupported(
            f"{where}.nested with several conditions needs them to hold on the same element of "
            f"{key!r}, which slimvec's filters cannot express; give one condition, or use "
            f"dotted keys such as '{key}[].field' in must (any element per condition)"
        )
    return _filter(inner, f"{where}.nested.filter", id_kind, f"{prefix}{key}[].")
