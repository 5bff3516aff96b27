"""The write path applications use (issue 11): small writes, concurrent handles, bounds."""

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import slimvec
import slimvec.engine.writer as writer_module
from conftest import _clustered, recall


def _snapshot(path):
    return {
        p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != "LOCK"
    }


# -- 1. a writer killed inside its SQLite transaction loses nothing of another writer's -------
def test_hot_journal_of_a_killed_writer_is_rolled_back_not_deleted(tmp_path):
    path = tmp_path / "c"
    x = _clustered(3000, 32, 1)
    col = slimvec.create(path, dim=32, spec="binary*10 > f32")
    col.add(x[:1000], metadata=[{"i": i} for i in range(1000)])
    other = slimvec.open(path)  # a second writer, opened before the kill
    child = textwrap.dedent(
        f"""
        import os, signal, numpy as np, slimvec
        from slimvec.store import meta
        real = meta.MetaStore.insert
        def insert(self, *a, **k):
            self.db.execute("PRAGMA cache_size=1")  # spill pages to the file mid-transaction
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM items")  # rewrites every page: the journal is hot
            os.kill(os.getpid(), signal.SIGKILL)
        meta.MetaStore.insert = insert
        col = slimvec.open({str(path)!r})
        col.add(np.ones((200, 32), np.float32), ids=np.arange(5000, 5200))
        """
    )
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert any(p.name.endswith("-journal") for p in path.iterdir())  # the kill left it hot
    other.add(x[1000:1100], metadata=[{"i": i} for i in range(1000, 1100)])
    db = sqlite3.connect(next(path.glob("meta-*.sqlite")))
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    fresh = slimvec.open(path)
    assert fresh.metadata(np.arange(1100)) == [{"i": i} for i in range(1100)]
    assert len(fresh) == 1100


# -- 2. one document at a time: few segments, bounded files, opens under a low ulimit --------
def test_single_adds_keep_segments_logarithmic_and_files_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(writer_module, "FLUSH_ROWS", 8)  # many flushes, quickly
    monkeypatch.setattr(os, "fdatasync", lambda fd: None)  # durability is the crash tests'
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    path = tmp_path / "c"
    x = _clustered(1200, 32, 2)
    col = slimvec.create(path, dim=32, spec="int8*4 > f32")
    for i in range(len(x)):
        col.add(x[i : i + 1], metadata=[{"i": i}], texts=[f"doc {i}"])
    monkeypatch.undo()
    info = col.info()
    assert info["count"] == len(x)
    assert info["segments"] <= 2 * writer_module.MERGE_FANOUT  # 150 flushes -> few
    files = sum(1 for p in path.rglob("*") if p.is_file() and p.suffix != ".crc32")
    assert files < 60  # (each array file also has a small checksum sidecar, never held open)
    exact = col.search(x[:50], k=10, exact=True).ids
    assert recall(col.search(x[:50], k=10).ids, exact) > 0.95
    assert col.metadata([0, 1199]) == [{"i": 0}, {"i": 1199}]
    probe = textwrap.dedent(
        f"""
        import resource, numpy as np, slimvec
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        col = slimvec.open({str(path)!r})
        print(len(col), col.search(np.ones((1, 32), np.float32), k=3).ids.shape)
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == str(len(x))


def test_small_adds_are_searchable_before_any_flush_and_survive_reopen(tmp_path):
    col = slimvec.create(tmp_path / "c", dim=16)
    x = _clustered(30, 16, 3)
    for i in range(30):
        col.add(x[i : i + 1], ids=[100 + i], texts=[f"note n{i:03d}"])
    assert col.info()["segments"] == 0 and col.info()["log_rows"] == 30
    assert "not fitted" in col.info()["calibration"]["note"]
    res = col.search(x[:5], k=1)
    assert res.ids[:, 0].tolist() == [100, 101, 102, 103, 104]
    col.delete([100])
    reopened = slimvec.open(tmp_path / "c")
    assert len(reopened) == 29 and reopened.texts([101]) == ["note n001"]
    assert reopened.search_texts("n007", k=1, mode="sparse").ids[0, 0] == 107


# -- 3. calibrations follow the data ----------------------------------------------------------
@pytest.mark.parametrize("spec", ["int8*4 > f32", "binary*10 > f32", "pca:32 | binary*20 > f32"])
def test_a_collection_grown_from_one_document_matches_a_bulk_load(tmp_path, spec):
    x = _clustered(20_000, 64, 4) * 3 + 1  # far from the first document's range
    q = _clustered(100, 64, 5) * 3 + 1
    bulk = slimvec.create(tmp_path / "bulk", dim=64, spec=spec, metric="ip")
    bulk.add(x)
    grown = slimvec.create(tmp_path / "grown", dim=64, spec=spec, metric="ip")
    grown.add(x[:1])  # the first add is one document
    grown.add(x[1:300])
    for start in range(300, len(x), 4000):  # then the rest in batches
        grown.add(x[start : start + 4000])
    grown.compact()
    assert grown.info()["calibration"]["fitted_on"] >= 4_000
    truth = bulk.search(q, k=10, exact=True).ids
    bulk_recall = recall(bulk.search(q, k=10).ids, truth)
    assert recall(grown.search(q, k=10).ids, truth) >= bulk_recall - 0.01


# -- 4. readers that outlive writers ----------------------------------------------------------
def test_a_long_lived_reader_sees_later_writes_and_compactions(tmp_path):
    path = tmp_path / "c"
    writer = slimvec.create(path, dim=8, spec="f32")
    writer.add(np.eye(8)[:2], ids=[1, 2], texts=["red apples", "green pears"])
    reader = slimvec.open(path)
    assert reader.search_texts("apples", k=1, mode="sparse").ids[0, 0] == 1
    writer.add(np.eye(8)[2:3], ids=[3], texts=["yellow bananas"])
    writer.flush()
    writer.add(np.eye(8)[3:4], ids=[4], texts=["ripe bananas"])
    writer.delete([1])
    writer.compact()
    res = reader.search_texts("bananas", k=3, mode="sparse")
    assert sorted(res.ids[0, :2].tolist()) == [3, 4]
    assert reader.search_texts("apples", k=1, mode="sparse").ids[0, 0] == -1
    assert len(reader) == 3 and reader.metadata([4]) == [None]


READER = textwrap.dedent(
    """
    import sys, numpy as np, slimvec
    col = slimvec.open(sys.argv[1])
    errors, rounds = [], 0
    q = np.eye(8, dtype=np.float32)[:2]
    while True:
        try:
            col.search(q, k=3); col.search_texts("fruit", k=3, mode="sparse")
            col.texts(col.live_ids()[:5]); col.metadata([1, 2]); len(col); col.info()
        except Exception as exc:  # every error counts
            errors.append(repr(exc))
        rounds += 1
        if open(sys.argv[2]).read() == "stop":
            break
    print(rounds, len(errors), errors[:3])
    """
)


def test_a_reader_process_gets_no_errors_during_writes_and_compactions(tmp_path):
    path, stop = tmp_path / "c", tmp_path / "stop"
    stop.write_text("")
    col = slimvec.create(path, dim=8, spec="f32", encoder=None)
    col.add(np.eye(8)[:2], texts=["fruit salad", "fruit juice"])
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(path), str(stop)], stdout=subprocess.PIPE, text=True
    )
    rng = np.random.default_rng(0)
    try:
        for i in range(120):
            col.add(rng.standard_normal((1, 8)), texts=[f"fruit number {i}"])
            if i % 3 == 0:
                col.delete(col.live_ids()[:1])
            if i % 12 == 0:
                col.compact()
    finally:
        stop.write_text("stop")
    rounds, errors, sample = reader.communicate(timeout=120)[0].split(" ", 2)
    assert int(rounds) > 0 and int(errors) == 0, sample


# -- 5. bounds and hostile files --------------------------------------------------------------
def test_k_is_bounded_by_the_live_count_and_a_limit(tmp_path):
    col = slimvec.create(tmp_path / "c", dim=8)
    col.add(np.random.default_rng(0).standard_normal((50, 8)))
    res = col.search(np.ones((2, 8)), k=100_000)
    assert res.ids.shape == (2, 100_000) and (res.ids[:, 50:] == -1).all()
    assert (res.ids[:, :50] >= 0).all()
    with pytest.raises(slimvec.InvalidInputError, match="limit"):
        col.search(np.ones((1, 8)), k=10**6)


@pytest.mark.parametrize("spec", ["binary*99999999999999999999", "pca:99999999 | f32"])
def test_absurd_spec_factors_are_refused(tmp_path, spec):
    with pytest.raises(slimvec.SpecError):
        slimvec.create(tmp_path / "c", dim=8, spec=spec)
    assert not (tmp_path / "c").exists()


def test_ids_are_confined_to_a_documented_range(tmp_path):
    col = slimvec.create(tmp_path / "c", dim=4, spec="f32")
    with pytest.raises(slimvec.InvalidInputError, match="2\\*\\*53"):
        col.add(np.ones((1, 4)), ids=[2**63 - 1])
    col.add(np.ones((1, 4)), ids=[2**53 - 1])
    with pytest.raises(slimvec.InvalidInputError, match="largest id"):
        col.add(np.ones((1, 4)))
    assert len(slimvec.open(tmp_path / "c")) == 1


def test_huge_components_normalise_and_zero_vectors_are_refused(tmp_path):
    col = slimvec.create(tmp_path / "c", dim=4, spec="f32")
    col.add(np.array([[1e20, 0, 0, 0], [0, 3e38, 0, 0]], np.float32), ids=[1, 2])
    res = col.search(np.array([[1.0, 0, 0, 0]]), k=1)
    assert res.ids[0, 0] == 1 and abs(res.scores[0, 0] - 1) < 1e-6
    with pytest.raises(slimvec.InvalidInputError, match="all zeros"):
        col.add(np.zeros((1, 4)))


@pytest.mark.parametrize(
    ("field", "value"),
    [("tombstones", "/etc/passwd"), ("tombstones", "../outside.npy"), ("meta_db", "../x")],
)
def test_manifest_names_must_stay_inside_the_collection(tmp_path, field, value):
    path = tmp_path / "c"
    col = slimvec.create(path, dim=4, spec="f32")
    col.add(np.eye(4), ids=[1, 2, 3, 4])
    col.close()
    outside = tmp_path / "outside.npy"
    outside.write_bytes(b"precious")
    body = json.loads((path / "MANIFEST.json").read_text())
    body[field] = value
    (path / "MANIFEST.json").write_text(json.dumps(body))
    with pytest.raises(slimvec.CorruptCollectionError, match="outside the collection"):
        slimvec.open(path)
    assert outside.read_bytes() == b"precious"


def test_moved_to_cannot_point_back_at_itself(tmp_path):
    path = tmp_path / "c"
    slimvec.create(path, dim=4, spec="f32").close()
    body = json.loads((path / "MANIFEST.json").read_text())
    body["extra"]["moved_to"] = "."
    (path / "MANIFEST.json").write_text(json.dumps(body))
    with pytest.raises(slimvec.CorruptCollectionError):
        slimvec.open(path)


def test_a_closed_collection_refuses_every_call_and_writes_nothing(tmp_path):
    col = slimvec.create(tmp_path / "c", dim=4, spec="f32")
    col.add(np.eye(4), ids=[1, 2, 3, 4])
    col.close()
    before = _snapshot(col.path)
    calls = [
        lambda: col.add(np.ones((1, 4))),
        lambda: col.add(np.ones((100, 4))),
        lambda: col.delete([1]),
        lambda: col.search(np.ones((1, 4))),
        lambda: col.compact(),
        lambda: col.metadata([1]),
        lambda: len(col),
        lambda: col.info(),
    ]
    for call in calls:
        with pytest.raises(slimvec.InvalidInputError, match="closed"):
            call()
    assert _snapshot(col.path) == before


def test_deleting_nothing_commits_nothing(tmp_path):
    col = slimvec.create(tmp_path / "c", dim=4, spec="f32")
    col.add(np.eye(4), ids=[1, 2, 3, 4])
    before = _snapshot(col.path)
    assert col.delete([]) == 0
    assert _snapshot(col.path) == before


def test_collections_of_format_version_1_still_open_and_take_writes(tmp_path):
    """A v1 collection (no log in its manifest) opens, searches, and gains a log on write."""
    path = tmp_path / "c"
    col = slimvec.create(path, dim=8, spec="int8*4 > f32")
    col.add(np.random.default_rng(0).standard_normal((100, 8)), ids=np.arange(100))
    col.close()
    body = json.loads((path / "MANIFEST.json").read_text())
    (path / body["log"]).unlink()
    body.update(version=1)
    for key in ("log", "fitted_on"):
        body.pop(key)
    (path / "MANIFEST.json").write_text(json.dumps(body))
    old = slimvec.open(path)
    assert len(old) == 100 and old.search(np.ones((1, 8)), k=3).ids.shape == (1, 3)
    old.delete([5])
    old.add(np.ones((1, 8)), ids=[500])
    assert len(slimvec.open(path)) == 100


@pytest.mark.parametrize("multivector", [False, True])
def test_a_replaced_view_is_freed_at_once_not_by_the_cyclic_collector(tmp_path, multivector):
    """Each commit replaces the handle's view; the old one (with its fitted state: ~100 MB for a
    5,120-dim RaBitQ rotation) must go when it is dropped. In a reference cycle it waited for
    Python's cyclic collector, and streaming adds grew RSS by ~40 MB per add."""
    import gc

    from slimvec.engine.view import View

    rng = np.random.default_rng(0)
    col = slimvec.create(tmp_path / "c", 16, multivector=multivector)
    gc.collect()
    gc.disable()
    try:
        for _ in range(4):
            if multivector:
                col.add([rng.standard_normal((8, 16)).astype(np.float32) for _ in range(300)])
            else:
                col.add(rng.standard_normal((5000, 16)).astype(np.float32))
        alive = sum(isinstance(o, View) and o.path == col.path for o in gc.get_objects())
    finally:
        gc.enable()
    assert alive == 1
