"""Every bad input gets a clear error and leaves the collection exactly as it was."""

import hashlib

import numpy as np
import pytest

import slimvec


def _snapshot(path):
    return {
        p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != "LOCK"
    }


@pytest.fixture
def col(tmp_path, small):
    c = slimvec.create(tmp_path / "c", dim=small.shape[1], spec="int8*4 > f32")
    c.add(small[:100], ids=np.arange(100))
    return c


@pytest.mark.parametrize(
    ("vectors", "message"),
    [
        (np.zeros((3, 10), np.float32), "10 dims but this collection holds 64"),
        (np.full((2, 64), np.nan, np.float32), "NaN or infinite values in rows \\[0, 1\\]"),
        (np.array([[np.inf] * 64], np.float32), "NaN or infinite"),
        (np.empty((0, 64), np.float32), "empty"),
        ([[1.0] * 64, [1.0] * 63], "ragged or non-numeric|could not read"),
        (np.array([["a"] * 64]), "real numbers"),
        (np.ones(64, np.float32), "reshape\\(1, -1\\)"),
        (np.zeros((2, 64), np.float32), "all zeros"),
        (np.ones((2, 64), np.complex64), "real numbers"),
    ],
)
def test_bad_vectors(col, vectors, message):
    before = _snapshot(col.path)
    with pytest.raises(slimvec.InvalidInputError, match=message):
        col.add(vectors)
    assert _snapshot(col.path) == before
    assert len(col) == 100


@pytest.mark.parametrize(
    ("ids", "error", "message"),
    [
        ([5, 200], slimvec.DuplicateIdError, "already in the collection: \\[5\\]"),
        ([300, 300], slimvec.DuplicateIdError, "repeat within the batch"),
        ([-1, 301], slimvec.InvalidInputError, ">= 0"),
        ([1.5, 2.5], slimvec.InvalidInputError, "integers"),
        ([400], slimvec.InvalidInputError, "one id per vector"),
    ],
)
def test_bad_ids(col, small, ids, error, message):
    before = _snapshot(col.path)
    with pytest.raises(error, match=message):
        col.add(small[:2], ids=ids)
    assert _snapshot(col.path) == before


def test_bad_metadata(col, small):
    before = _snapshot(col.path)
    with pytest.raises(slimvec.InvalidInputError, match="JSON"):
        col.add(small[:1], ids=[500], metadata=[{"x": object()}])
    with pytest.raises(slimvec.InvalidInputError, match="one dict"):
        col.add(small[:2], ids=[500, 501], metadata=[{}])
    assert _snapshot(col.path) == before


@pytest.mark.parametrize("k", [0, -3, 2.5, "10", True])
def test_bad_k(col, small, k):
    with pytest.raises(slimvec.InvalidInputError, match="k must be a positive integer"):
        col.search(small[:1], k=k)


def test_bad_queries(col):
    with pytest.raises(slimvec.InvalidInputError, match="queries have 3 dims"):
        col.search(np.ones((1, 3)), k=1)
    with pytest.raises(slimvec.InvalidInputError, match="NaN"):
        col.search(np.full((1, 64), np.nan), k=1)


def test_deleting_unknown_ids_deletes_nothing(col):
    before = _snapshot(col.path)
    with pytest.raises(slimvec.InvalidInputError, match="not in the collection: \\[1000\\]"):
        col.delete([3, 1000])
    assert _snapshot(col.path) == before and len(col) == 100


def test_create_refuses_bad_arguments_and_existing_paths(tmp_path, col):
    with pytest.raises(slimvec.InvalidInputError, match="metric"):
        slimvec.create(tmp_path / "m", dim=8, metric="l3")
    with pytest.raises(slimvec.InvalidInputError, match="dim must be a positive"):
        slimvec.create(tmp_path / "d", dim=0)
    with pytest.raises(slimvec.CollectionExistsError, match="already holds a collection"):
        slimvec.create(col.path, dim=64)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(slimvec.CollectionExistsError, match="other files"):
        slimvec.create(other, dim=8)
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


def test_opening_what_is_not_a_collection(tmp_path):
    with pytest.raises(slimvec.CollectionNotFoundError, match="no collection"):
        slimvec.open(tmp_path / "missing")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "data.csv").write_text("1,2,3")
    with pytest.raises(slimvec.CollectionNotFoundError, match="not a slimvec collection"):
        slimvec.open(plain)
    assert [p.name for p in plain.iterdir()] == ["data.csv"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "MANIFEST.json").write_text("{not json"), "damaged"),
        (lambda p: (p / "MANIFEST.json").write_text('{"format": "qdrant"}'), "not a slimvec"),
        (
            lambda p: (p / "MANIFEST.json").write_text(
                (p / "MANIFEST.json").read_text().replace('"version": 2', '"version": 99')
            ),
            "version 99",
        ),
        (lambda p: next(p.rglob("original.npy")).write_bytes(b"\x93NUMPY garbage"), "damaged"),
        (lambda p: next(p.rglob("int8.npy")).unlink(), "missing or damaged"),
        (lambda p: next(p.glob("meta-*.sqlite")).write_bytes(b"x" * 4096), "not SQLite"),
    ],
)
def test_corrupt_collections_fail_clearly_and_are_not_modified(col, damage, message):
    path = col.path
    col.close()
    damage(path)
    before = _snapshot(path)
    with pytest.raises(slimvec.SlimvecError, match=message):
        slimvec.open(path)
    assert _snapshot(path) == before
