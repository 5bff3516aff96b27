"""Validate at the door: texts, string ids and metadata must be storable (UTF-8, string keys,
bounded nesting) and a manifest's metric and dim known, or nothing is written."""

import json
import re

import numpy as np
import pytest

import slimvec
from slimvec.errors import CorruptCollectionError, InvalidInputError

DIM = 4
BAD_TEXT = "bad \ud800 text"  # a lone surrogate: what JSON "\\ud800" decodes to


@pytest.fixture
def col(tmp_path):
    c = slimvec.create(tmp_path / "c", dim=DIM)
    c.add(np.eye(DIM, dtype=np.float32), texts=[f"ok {i}" for i in range(DIM)])
    return c


def _x(n=1):
    return np.random.default_rng(n).standard_normal((n, DIM)).astype(np.float32)


@pytest.mark.parametrize("n", [1, 5000])  # a log record and a segment commit
def test_a_lone_surrogate_in_a_text_is_refused_and_nothing_is_written(col, n):
    texts = ["fine"] * (n - 1) + [BAD_TEXT]
    with pytest.raises(InvalidInputError, match=r"texts\[\d+\] is not valid Unicode"):
        col.add(_x(n), texts=texts)
    assert len(col) == DIM
    col.flush()  # the log still flushes: nothing poisoned it
    col.compact()
    assert len(slimvec.open(col.path)) == DIM


@pytest.mark.parametrize(
    "metadata, words",
    [
        ([{"name": BAD_TEXT}], "not valid Unicode"),
        ([{BAD_TEXT: 1}], "not valid Unicode"),
        ([{1: "one"}], "metadata keys must be strings"),
        ([{"a": {"b": {2: 3}}}], "metadata keys must be strings"),
        ([{"deep": json.loads("[" * 40 + "]" * 40)}], "nested deeper than 32"),
    ],
)
def test_unstorable_metadata_is_refused(col, metadata, words):
    with pytest.raises(InvalidInputError, match=words):
        col.add(_x(), metadata=metadata)
    assert len(col) == DIM


def test_a_lone_surrogate_string_id_is_refused(tmp_path):
    c = slimvec.create(tmp_path / "s", dim=DIM, ids="str")
    with pytest.raises(InvalidInputError, match=r"ids\[0\] is not valid Unicode"):
        c.add(_x(), ids=[BAD_TEXT])
    assert len(c) == 0


@pytest.mark.parametrize("field, value", [("metric", "l7"), ("dim", 0), ("dim", 10**9)])
def test_a_manifest_with_an_unknown_metric_or_dim_is_refused(col, field, value):
    path = col.path / "MANIFEST.json"
    body = json.loads(path.read_text())
    body[field] = value
    path.write_text(json.dumps(body))
    with pytest.raises(CorruptCollectionError, match=r"metric .* and dim"):
        slimvec.open(col.path)


@pytest.mark.parametrize("multivector", [False, True])
def test_dim_over_the_documented_limit_is_refused_before_anything_is_written(tmp_path, multivector):
    """README: dimensions <= 65,536. Above it, create says so and leaves no directory."""
    with pytest.raises(InvalidInputError, match="above the limit of 65,536 dims"):
        slimvec.create(tmp_path / "big", dim=65_537, multivector=multivector)
    assert not (tmp_path / "big").exists()
    assert slimvec.create(tmp_path / "edge", dim=65_536).dim == 65_536


def test_dim_over_the_limit_from_the_cli_and_over_http(tmp_path):
    from starlette.testclient import TestClient
    from typer.testing import CliRunner

    from slimvec.cli import app
    from slimvec.server.app import create_app

    result = CliRunner().invoke(app, ["create", str(tmp_path / "big"), "--dim", "1000000000"])
    assert result.exit_code != 0 and "65,536" in result.output
    assert not (tmp_path / "big").exists()
    with TestClient(create_app(tmp_path), raise_server_exceptions=False) as client:
        response = client.put("/collections/big", json={"dim": 10**9})
    assert response.status_code == 400 and "65,536" in response.json()["error"]["message"]
    assert not (tmp_path / "big").exists()


@pytest.mark.parametrize("method", ["metadata", "texts", "get", "delete"])
def test_nested_ids_are_refused_not_flattened(col, method):
    """``delete([[1]])`` used to delete id 1 (np.unique flattens) and lookups raised a raw
    ValueError."""
    with pytest.raises(InvalidInputError, match="flat list of ids"):
        getattr(col, method)([[1]])
    assert len(col) == DIM and col.get([1]).ids.tolist() == [1]


@pytest.mark.parametrize("path", [None, 5, b"c", "a\0b"])
def test_a_path_that_is_not_a_path_is_an_input_error(tmp_path, path):
    with pytest.raises(InvalidInputError, match="path"):
        slimvec.create(path, dim=DIM)
    if not isinstance(path, str):
        with pytest.raises(InvalidInputError, match="path must be a str"):
            slimvec.open(path)


@pytest.mark.parametrize(
    "options, words",
    [
        ({"keyword": {"bogus": 1}}, "keyword has unknown options ['bogus']; known: b, k1"),
        ({"keyword": "x"}, "keyword must be a dict of options"),
        ({"multivector": True, "fde": {"bogus": 1}}, "fde has unknown options ['bogus']"),
        ({"multivector": True, "fde": [1]}, "fde must be a dict of options"),
    ],
)
def test_unknown_create_options_are_input_errors(tmp_path, options, words):
    with pytest.raises(InvalidInputError, match=re.escape(words)):
        slimvec.create(tmp_path / "c", dim=DIM, **options)
    assert not (tmp_path / "c").exists()


def test_a_field_name_or_value_that_is_not_unicode_is_refused_in_filters_and_indexes(col):
    manifest = (col.path / "MANIFEST.json").read_bytes()
    for bad in ({BAD_TEXT: 1}, {"tag": BAD_TEXT}, {"tag": {"$in": [BAD_TEXT]}}):
        with pytest.raises(InvalidInputError, match="not valid Unicode"):
            col.count(bad)
    with pytest.raises(InvalidInputError, match="not valid Unicode"):
        col.create_index(BAD_TEXT)
    assert (col.path / "MANIFEST.json").read_bytes() == manifest
