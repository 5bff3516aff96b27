"""Qdrant filters → slimvec filters, and payloads → metadata: unit tests, and each translated
filter evaluated by a real collection against a brute-force Python reading of Qdrant's
semantics, so a translation that parses but means something else fails."""

from __future__ import annotations

import numpy as np
import pytest

import slimvec
from slimvec.errors import InvalidInputError
from slimvec.server.qdrant.filters import Unsupported, translate
from slimvec.server.qdrant.ids import point_id, point_key, sort_key
from slimvec.server.qdrant.payload import select, set_at, to_metadata, to_payload, without

UUID = "1f4b4fcb-1f00-417c-be5c-e06886367134"


def test_clauses_translate_to_operator_dicts():
    spec = {
        "must": [{"key": "city", "match": {"value": "London"}}],
        "should": [
            {"key": "n", "range": {"gte": 2, "lt": 5}},
            {"key": "tag", "match": {"any": ["a", "b"]}},
        ],
        "must_not": {"key": "color", "match": {"except": ["red"]}},
    }
    assert translate(spec) == {
        "$and": [
            {"city": {"$eq": "London"}},
            {"$or": [{"n": {"$gte": 2, "$lt": 5}}, {"tag": {"$in": ["a", "b"]}}]},
            {"$not": {"color": {"$nin": ["red"]}}},
        ]
    }
    assert translate(None) is None and translate({}) is None and translate({"must": []}) is None


def test_nested_keys_nulls_and_ids_read_derived_fields():
    assert translate({"must": [{"key": "a[].b", "match": {"value": 1}}]}) == {
        "qdrant:path:a.b": {"$eq": 1}
    }
    assert translate({"must": [{"is_null": {"key": "x"}}]}) == {"qdrant:null:x": {"$exists": True}}
    assert translate({"must": [{"is_empty": {"key": "x.y"}}]}) == {
        "qdrant:path:x.y": {"$exists": False}
    }
    assert translate({"must": [{"has_id": [3, UUID.upper()]}]}) == {
        "qdrant:id": {"$in": ["3", UUID]}
    }
    assert translate({"must": [{"has_id": [3]}]}, id_kind="int") == {"qdrant:id": {"$in": ["3"]}}
    nested = {"nested": {"key": "cities", "filter": {"must": [{"key": "pop", "range": {"gt": 9}}]}}}
    assert translate({"must": [nested]}) == {"qdrant:path:cities.pop": {"$gt": 9}}


@pytest.mark.parametrize(
    ("condition", "words"),
    [
        ({"key": "loc", "geo_radius": {"center": {"lon": 0, "lat": 0}, "radius": 1}}, "geo"),
        ({"key": "t", "match": {"text": "hello"}}, "full-text"),
        ({"key": "t", "values_count": {"gt": 1}}, "values_count"),
        ({"has_vector": "v"}, "has_vector"),
        ({"key": "t", "match": {"like": 1}}, "unknown match"),
        (
            {"nested": {"key": "c", "filter": {"must": [{"key": "a", "match": {"value": 1}}] * 2}}},
            "same element",
        ),
    ],
)
def test_what_slimvec_cannot_express_is_refused_by_name(condition, words):
    with pytest.raises(Unsupported, match=words):
        translate({"must": [condition]})
    with pytest.raises(Unsupported, match="min_should"):
        translate({"min_should": {"conditions": [], "min_count": 2}})


def test_ids_map_both_ways():
    assert point_key(7, "str") == "7" and point_key(7, "int") == 7
    assert point_key(UUID.replace("-", ""), "str") == UUID
    assert point_id("7") == 7 and point_id(UUID) == UUID and point_id(np.int64(5)) == 5
    for bad in ("doc-1", -1, 2**64, 1.5, True):
        with pytest.raises(InvalidInputError):
            point_key(bad, "str")
    with pytest.raises(InvalidInputError, match="integer ids"):
        point_key(UUID, "int")
    assert sorted(["10", UUID, "9"], key=sort_key) == ["9", "10", UUID]


def test_payload_round_trips_and_edits():
    payload = {"a": {"b": [1, 2], "c": None}, "list": [{"x": "p"}, {"x": "q"}], "n": None}
    meta = to_metadata(payload, "7")
    assert meta["qdrant:id"] == "7" and meta["qdrant:path:a.b"] == [1, 2]
    assert meta["qdrant:path:list.x"] == ["p", "q"]
    assert meta["qdrant:null:n"] is True and meta["qdrant:null:a.c"] is True
    assert to_payload(meta) == payload
    assert select(payload, ["n"]) == {"n": None} and select(payload, False) is None
    assert select(payload, {"exclude": ["a", "list"]}) == {"n": None}
    assert set_at({"a": {"b": 1}}, {"c": 2}, "a") == {"a": {"b": 1, "c": 2}}
    assert without({"a": {"b": 1, "c": 2}, "d": 3}, ["a.b", "d"]) == {"a": {"c": 2}}
    with pytest.raises(InvalidInputError, match="reserved"):
        to_metadata({"qdrant:id": 1}, "1")


POINTS = [
    {"city": "London", "n": 1, "tags": ["a", "b"], "geo": {"country": "UK"}},
    {"city": "Berlin", "n": 5, "tags": [], "geo": {"country": "DE"}},
    {"city": "London", "n": 9, "tags": ["c"], "nul": None},
    {"n": 3.5, "people": [{"name": "x"}, {"name": "y"}]},
    {},
]


def qdrant_match(spec: dict, pid: int, payload: dict) -> bool:
    """Qdrant's meaning of the conditions used below, written out by hand."""

    def values(key: str) -> list:
        out = [payload]
        for part in key.replace("[]", "").split("."):
            nxt = []
            for v in out:
                v = v.get(part) if isinstance(v, dict) else None
                nxt.extend(v if isinstance(v, list) else [] if v is None else [v])
            out = nxt
        return out

    def cond(c: dict) -> bool:
        if "has_id" in c:
            return pid in c["has_id"]
        if "is_empty" in c:
            return not values(c["is_empty"]["key"])
        if "is_null" in c:
            return c["is_null"]["key"] in payload and payload[c["is_null"]["key"]] is None
        if "must" in c or "should" in c or "must_not" in c:
            return whole(c)
        vs = values(c["key"])
        if "match" in c:
            m = c["match"]
            if "value" in m:
                return m["value"] in vs
            if "any" in m:
                return any(v in m["any"] for v in vs)
            return not any(v in m["except"] for v in vs)
        r = c["range"]
        return any(
            all(
                op(v, r[k])
                for k, op in (
                    ("gt", float.__gt__),
                    ("gte", float.__ge__),
                    ("lt", float.__lt__),
                    ("lte", float.__le__),
                )
                if k in r
            )
            for v in map(float, vs)
        )

    def whole(f: dict) -> bool:
        return (
            all(cond(c) for c in f.get("must", []))
            and (not f.get("should") or any(cond(c) for c in f["should"]))
            and not any(cond(c) for c in f.get("must_not", []))
        )

    return whole(spec)


FILTERS = [
    {"must": [{"key": "city", "match": {"value": "London"}}]},
    {"must_not": [{"key": "city", "match": {"value": "London"}}]},
    {"should": [{"key": "n", "range": {"gt": 4}}, {"key": "tags", "match": {"value": "a"}}]},
    {"must": [{"key": "tags", "match": {"any": ["c", "zz"]}}]},
    {"must": [{"key": "city", "match": {"except": ["Berlin"]}}]},
    {"must": [{"key": "n", "range": {"gte": 1, "lte": 3.5}}]},
    {"must": [{"is_empty": {"key": "tags"}}]},
    {"must": [{"is_null": {"key": "nul"}}]},
    {"must": [{"has_id": [0, 3]}], "must_not": [{"has_id": [3]}]},
    {"must": [{"key": "geo.country", "match": {"value": "DE"}}]},
    {"must": [{"key": "people[].name", "match": {"value": "y"}}]},
    {"must": [{"should": [{"has_id": [4]}, {"key": "n", "range": {"lt": 2}}]}]},
]


@pytest.mark.parametrize("spec", FILTERS)
def test_translated_filters_select_what_qdrant_would(tmp_path, spec):
    col = slimvec.create(tmp_path / "c", dim=2, ids="str")
    keys = [str(i) for i in range(len(POINTS))]
    metadata = [to_metadata(p, k) for p, k in zip(POINTS, keys)]
    col.add(np.ones((len(POINTS), 2), np.float32), ids=keys, metadata=metadata)
    got = set(col.get(filter=translate(spec) or {}, limit=None).ids.tolist())
    want = {k for i, k in enumerate(keys) if qdrant_match(spec, i, POINTS[i])}
    assert got == want
