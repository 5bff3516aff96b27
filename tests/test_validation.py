"""The shared input checks and errors: check_int, not_fitted, iter_jsonl, the model-name rule,
the per-vector RAM overhead."""

from __future__ import annotations

import numpy as np
import pytest

from slimvec.compat import ScoreCalibrator, SpaceIdentity
from slimvec.compat.adapters import LinearAdapter
from slimvec.compat.relative import RelativeRepresentation
from slimvec.datasets.files import iter_jsonl
from slimvec.encoders.base import model_mismatch, same_name
from slimvec.errors import InvalidInputError, NotFittedError
from slimvec.search.funnel import ROW_OVERHEAD_BYTES, Pipeline
from slimvec.spec import parse_spec
from slimvec.transforms import PCARotation, RandomRotation
from slimvec.validation import check_int, check_k


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.uint8(2)])
def test_check_int_accepts_integers(value):
    assert check_int(value, "n") == int(value) and type(check_int(value, "n")) is int


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        (0, {}, "n must be a positive integer, got 0"),
        (True, {}, "n must be a positive integer, got True"),
        (2.0, {}, "n must be a positive integer, got 2.0"),
        ("3", {}, "n must be a positive integer, got '3'"),
        (None, {}, "n must be a positive integer, got None"),
        (-1, {"low": 0}, "n must be a non-negative integer, got -1"),
        (1, {"low": 2}, "n must be an integer >= 2, got 1"),
        (9, {"high": 8}, "n must be an integer in 1..8, got 9"),
    ],
)
def test_check_int_refuses_with_the_bound(value, kwargs, message):
    with pytest.raises(InvalidInputError, match=f"^{message}$"):
        check_int(value, "n", **kwargs)


def test_check_k_is_check_int():
    assert check_k(np.int32(5)) == 5
    with pytest.raises(InvalidInputError, match="k must be a positive integer"):
        check_k(False)


@pytest.mark.parametrize(
    ("make", "first"),
    [
        (lambda: PCARotation(4), "fit"),
        (lambda: RandomRotation(4), "fit"),
        (lambda: LinearAdapter(), "fit"),
        (lambda: RelativeRepresentation(), "set_anchors"),
    ],
)
def test_transforms_used_before_fit(make, first):
    obj = make()
    with pytest.raises(NotFittedError, match=rf"{type(obj).__name__}\.transform called before "):
        obj.transform(np.ones((2, 4), np.float32))
    with pytest.raises(RuntimeError, match=first):  # still a RuntimeError
        obj.transform(np.ones((2, 4), np.float32))


def test_calibrator_used_before_fit():
    with pytest.raises(NotFittedError, match=r"ScoreCalibrator\.transform called before fit"):
        ScoreCalibrator().transform(np.ones(3))


def test_iter_jsonl(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n"text"\n[1, 2]\n')
    assert list(iter_jsonl(path)) == [(1, {"a": 1}), (3, "text"), (4, [1, 2])]
    path.write_text('{"a": 1}\n{broken\n')
    with pytest.raises(InvalidInputError, match=r"x\.jsonl:2 is not valid JSON"):
        list(iter_jsonl(path))


def test_one_name_rule_for_collections_and_spaces():
    spec = {"name": "all-MiniLM-L6-v2", "dim": 384, "fingerprint": "a" * 16, "probe": None}
    other_case = {**spec, "name": " ALL-minilm-l6-v2"}
    assert same_name(spec["name"], other_case["name"])
    assert model_mismatch(spec, other_case) is None
    assert model_mismatch(spec, {**spec, "name": "e5"}) == "name"
    assert model_mismatch(spec, {**spec, "dim": 128}) == "dim"
    assert model_mismatch(spec, {**spec, "fingerprint": "b" * 16}) == "fingerprint"
    here = SpaceIdentity(spec["name"], 384)
    assert here.compatible(SpaceIdentity(other_case["name"], 384))


def test_ram_bytes_per_vector_is_first_codes_plus_row_overhead():
    pipe = Pipeline(parse_spec("int8*10 > f32"), 64, "cosine")
    assert ROW_OVERHEAD_BYTES == 9  # int64 id + tombstone flag
    assert pipe.ram_bytes_per_vector() == 64 + ROW_OVERHEAD_BYTES  # one byte per dim
