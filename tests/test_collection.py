"""Persistence, ids, deletes, compaction and metadata."""

import json

import numpy as np
import pytest

import slimvec
from conftest import recall


@pytest.fixture
def docs(minilm):
    return minilm[0][:2000], minilm[1][:50]


def test_reopen_gives_the_same_answers(tmp_path, docs):
    x, q = docs
    col = slimvec.create(tmp_path / "c", dim=384, spec="pca:256 | binary*20 > int8*4 > f32")
    col.add(x[:1500])
    col.add(x[1500:])
    before = col.search(q, k=10)
    info = col.info()
    col.close()
    again = slimvec.open(tmp_path / "c")
    after = again.search(q, k=10)
    np.testing.assert_array_equal(before.ids, after.ids)
    np.testing.assert_allclose(before.scores, after.scores)
    assert again.info()["count"] == info["count"] == 2000
    assert again.spec == "pca:256 | binary*20 > int8*4 > f32"


def test_ids_given_and_assigned(tmp_path, docs):
    x, _ = docs
    col = slimvec.create(tmp_path / "c", dim=384)
    given = col.add(x[:10], ids=np.arange(100, 110))
    assigned = col.add(x[10:20])
    np.testing.assert_array_equal(given, np.arange(100, 110))
    np.testing.assert_array_equal(assigned, np.arange(110, 120))
    res = col.search(x[[3, 15]], k=1)
    assert res.ids[:, 0].tolist() == [103, 115]


def test_delete_hides_vectors_and_compact_reclaims_space(tmp_path, docs):
    x, q = docs
    col = slimvec.create(tmp_path / "c", dim=384, spec="binary*20 > f32")
    ids = col.add(x)
    gone = ids[::2]
    assert col.delete(gone) == len(gone)
    assert len(col) == len(x) - len(gone)
    res = col.search(q, k=10)
    assert not np.isin(res.ids, gone).any()
    exact = col.search(q, k=10, exact=True)
    assert not np.isin(exact.ids, gone).any()
    assert recall(res.ids, exact.ids) > 0.95
    disk_before = sum(f.stat().st_size for f in (tmp_path / "c").rglob("*.npy"))
    col.compact()
    disk_after = sum(f.stat().st_size for f in (tmp_path / "c").rglob("*.npy"))
    assert disk_after < 0.6 * disk_before
    np.testing.assert_array_equal(col.search(q, k=10).ids, res.ids)
    reopened = slimvec.open(tmp_path / "c")
    np.testing.assert_array_equal(reopened.search(q, k=10).ids, res.ids)
    assert len(reopened) == len(x) - len(gone)


def test_deleted_id_can_be_added_again(tmp_path, docs):
    x, _ = docs
    col = slimvec.create(tmp_path / "c", dim=384)
    col.add(x[:5], ids=[1, 2, 3, 4, 5])
    col.delete([3])
    col.add(x[10:11], ids=[3])
    assert col.search(x[10], k=1).ids[0, 0] == 3
    assert col.search(x[2], k=1).ids[0, 0] != 3


def test_metadata_round_trip_survives_compaction(tmp_path, docs):
    x, _ = docs
    col = slimvec.create(tmp_path / "c", dim=384)
    col.add(x[:3], ids=[7, 8, 9], metadata=[{"title": "a"}, None, {"tags": [1, 2]}])
    assert col.metadata([9, 7, 8, 42]) == [{"tags": [1, 2]}, {"title": "a"}, None, None]
    col.delete([8])
    col.compact()
    assert slimvec.open(tmp_path / "c").metadata([7, 9]) == [{"title": "a"}, {"tags": [1, 2]}]


def test_info_reports_sizes(tmp_path, docs):
    x, _ = docs
    col = slimvec.create(tmp_path / "c", dim=384)  # default: rabitq:2*40 > f32
    col.add(x)
    info = col.info()
    assert info["ram_bytes_per_vector"] <= 384 * 4 / 8
    # 2 planes of 48 bytes of bits + 4 float32 factors
    assert info["code_bytes_per_vector"]["rabitq2"] == 112
    assert info["disk_bytes_per_vector"] > 384 * 4  # originals are kept for exact search
    assert info["count"] == len(x) and info["deleted"] == 0


def test_a_second_handle_sees_new_commits_on_write(tmp_path, docs):
    x, _ = docs
    a = slimvec.create(tmp_path / "c", dim=384)
    b = slimvec.open(tmp_path / "c")
    a.add(x[:10])
    b.add(x[10:20])  # reloads a's commit before writing
    assert len(slimvec.open(tmp_path / "c")) == 20
    assert sorted(b.search(x[:20], k=1).ids[:, 0].tolist()) == list(range(20))


def test_manifest_names_format_and_spec(tmp_path):
    slimvec.create(tmp_path / "c", dim=8, spec="f16")
    body = json.loads((tmp_path / "c" / "MANIFEST.json").read_text())
    assert body["format"] == "slimvec-collection" and body["version"] == 2
    assert body["spec"] == "f16" and body["dim"] == 8


def test_array_files_are_parsed_under_one_lock(tmp_path, monkeypatch):
    """NumPy parses .npy headers with ``ast.literal_eval``, which CPython 3.11 cannot run in
    two threads at once (spurious SystemError, python/cpython#106905; the server's readers
    hit it): every file the store reads back is parsed holding ``store.files``' lock."""
    import ast

    from slimvec.store import files

    held, real = [], ast.literal_eval
    monkeypatch.setattr(
        ast, "literal_eval", lambda s: held.append(files._HEADER_LOCK.locked()) or real(s)
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 16)).astype(np.float32)
    col = slimvec.create(tmp_path / "c", dim=16, spec="binary*10 > f32")
    texts = [f"word{i % 7} doc {i}" for i in range(300)]
    col.add(x, metadata=[{"g": i % 3} for i in range(300)], texts=texts)
    col.create_index("g")
    col.delete(np.arange(10))
    col.flush()
    col.close()
    again = slimvec.open(tmp_path / "c")  # segments, tombstones, columns, BM25 read back
    assert again.search(x[20:21], k=1, filter={"g": 2}).ids[0, 0] == 20
    assert again.search_texts(["word3"], k=3, mode="sparse").ids.shape == (1, 3)
    assert held and all(held), held


def test_get_returns_ids_in_the_order_asked(tmp_path):
    col = slimvec.create(tmp_path / "c", dim=4, spec="f32")
    col.add(np.eye(4, dtype=np.float32), ids=[3, 5, 9000, 7], metadata=[{"i": i} for i in range(4)])
    got = col.get([9000, 3, 5, 3, 42])  # a repeat is given once; an unknown id is left out
    assert got.ids.tolist() == [9000, 3, 5]
    assert got.metadata == [{"i": 2}, {"i": 0}, {"i": 1}]
    assert (got.vectors == np.eye(4, dtype=np.float32)[[2, 0, 1]]).all()
    assert col.get([7, 3], filter={"i": {"$gte": 0}}).ids.tolist() == [7, 3]
    assert col.get([7, 3], filter={"i": 0}).ids.tolist() == [3]
    assert col.get().ids.tolist() == [3, 5, 9000, 7]  # no ids: insertion order


def test_info_gives_no_refit_point_before_the_pipeline_is_fitted(tmp_path):
    col = slimvec.create(tmp_path / "c", dim=8)
    col.add(np.ones((4, 8), np.float32))  # in the log: searched exactly, nothing fitted
    calibration = col.info()["calibration"]
    assert calibration["fitted_on"] == 0 and calibration["refit_at"] is None
    col.add(np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32))
    col.flush()
    calibration = col.info()["calibration"]
    assert calibration["refit_at"] == 4 * calibration["fitted_on"] > 0
