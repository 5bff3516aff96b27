"""String ids (``slimvec.create(..., ids="str")``), ``get`` with vectors and atomic ``upsert``:
the caller's ids everywhere, crash-safe through the same commit protocol (kill -9 at every
step, as in test_crash.py), and a reader never sees an upsert half done."""

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import slimvec
from killpoints import arm
from slimvec.errors import DuplicateIdError, IdKindError, InvalidInputError

SPEC = "binary*10 > int8*4 > f32"


def _keys(prefix, start, stop):
    return [f"{prefix}{i}" for i in range(start, stop)]


# -- the caller's ids everywhere ---------------------------------------------------------------
def test_string_ids_in_every_call_through_log_segments_and_reopen(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 16)).astype(np.float32)
    col = slimvec.create(tmp_path / "c", dim=16, spec="int8*4 > f32", ids="str")
    assert col.info()["id_kind"] == "str"
    meta = [{"n": i, "even": i % 2 == 0} for i in range(300)]
    out = col.add(x[:10], ids=_keys("doc/", 0, 10), metadata=meta[:10])  # a log record
    assert out.dtype == object and out.tolist() == _keys("doc/", 0, 10)
    col.add(x[10:], ids=_keys("doc/", 10, 300), metadata=meta[10:], texts=_keys("t ", 10, 300))
    for reopen in (False, True):
        if reopen:
            col.close()
            col = slimvec.open(tmp_path / "c")
        res = col.search(x[:20], k=3)
        assert res.ids[:, 0].tolist() == _keys("doc/", 0, 20)
        exact = col.search(x[:3], k=400, exact=True)  # padded: None, -inf
        assert exact.ids[0, -1] is None and np.isneginf(exact.scores[0, -1])
        flt = col.search(x[:5], k=2, filter={"even": True})
        assert all(int(k.split("/")[1]) % 2 == 0 for k in flt.ids.ravel())
        assert col.metadata(["doc/7", "nope"]) == [meta[7], None]
        assert col.texts(["doc/12"]) == ["t 12"]
        got = col.get(["doc/250", "doc/3", "missing"])
        assert got.ids.tolist() == ["doc/250", "doc/3"]  # order asked, unknown ids left out
        np.testing.assert_allclose(got.vectors[0], x[250] / np.linalg.norm(x[250]), rtol=1e-5)
        assert col.get(filter={"n": {"$lt": 2}}).ids.tolist() == ["doc/0", "doc/1"]
        assert col.get(filter={"n": 0}).vectors is None  # vectors only when asked
        sparse = col.search_texts("t 42", k=1, mode="sparse")
        assert sparse.ids[0, 0] == "doc/42"
    assert col.delete(["doc/0", "doc/0", "doc/1"]) == 2
    assert col.delete(filter={"n": {"$gte": 290}}) == 10
    col.update_metadata(["doc/5"], [{"n": -5}])
    assert col.count({"n": -5}) == 1
    assert len(col) == 288 and "doc/0" not in set(col.live_ids())
    col.compact()  # a fresh metadata database: the mapping is rewritten
    col = slimvec.open(tmp_path / "c")
    assert len(col) == 288 and col.search(x[5:6], k=1).ids[0, 0] == "doc/5"
    assert col.metadata(["doc/5"]) == [{"n": -5}]
    col.add(x[:1], ids=["doc/0"])  # deleted keys can come back
    assert col.search(x[:1], k=1).ids[0, 0] == "doc/0"


def test_adds_without_ids_get_uuid_strings(tmp_path):
    col = slimvec.create(tmp_path / "c", dim=4, ids="str")
    ids = col.add(np.eye(4))
    assert len(set(ids)) == 4 and all(len(i) == 36 for i in ids)
    assert col.search(np.eye(4)[:1], k=1).ids[0, 0] == ids[0]


def test_a_single_search_maps_only_k_ids(tmp_path, monkeypatch):
    """The hot path: one gather over the result's ids, no per-result Python lookups."""
    from slimvec.store.idmap import IdMap

    col = slimvec.create(tmp_path / "c", dim=8, spec="int8*4 > f32", ids="str")
    col.add(np.random.default_rng(0).standard_normal((100, 8)), ids=_keys("k", 0, 100))
    calls = []
    real = IdMap.keys_of
    monkeypatch.setattr(IdMap, "keys_of", lambda m, ids: calls.append(ids.shape) or real(m, ids))
    monkeypatch.setattr(IdMap, "ids_of", lambda *a: pytest.fail("key lookups in search"))
    col.search(np.ones(8), k=5)
    assert calls == [(1, 5)]


# -- bad input: clear errors, nothing written ----------------------------------------------------
def test_mixing_id_kinds_and_bad_string_ids_are_refused(tmp_path):
    s = slimvec.create(tmp_path / "s", dim=4, ids="str")
    i = slimvec.create(tmp_path / "i", dim=4)
    s.add(np.eye(4)[:1], ids=["a"])
    i.add(np.eye(4)[:1], ids=[7])
    create = slimvec.create
    cases = [
        (IdKindError, lambda: s.add(np.eye(4)[:1], ids=[1])),
        (IdKindError, lambda: i.add(np.eye(4)[:1], ids=["b"])),
        (IdKindError, lambda: i.add(np.eye(4)[:2], ids=[3, "b"])),
        (IdKindError, lambda: s.add(np.eye(4)[:1], ids=[None])),
        (IdKindError, lambda: s.delete([1])),
        (IdKindError, lambda: i.delete(["a"])),
        (IdKindError, lambda: s.upsert(np.eye(4)[:1], ids=[2.5])),
        (DuplicateIdError, lambda: s.add(np.eye(4)[:2], ids=["b", "b"])),
        (DuplicateIdError, lambda: s.add(np.eye(4)[:1], ids=["a"])),
        (DuplicateIdError, lambda: s.upsert(np.eye(4)[:2], ids=["b", "b"])),
        (InvalidInputError, lambda: s.add(np.eye(4)[:1], ids=[""])),
        (InvalidInputError, lambda: s.add(np.eye(4)[:2], ids=["x"])),
        (InvalidInputError, lambda: s.delete(["a", "nope"])),
        (InvalidInputError, lambda: s.update_metadata(["nope"], [{}])),
        (InvalidInputError, lambda: s.upsert(np.eye(4)[:1], ids=None)),
        (InvalidInputError, lambda: create(tmp_path / "x", dim=4, ids="uuid")),
        (InvalidInputError, lambda: create(tmp_path / "y", dim=16, multivector=True, ids="str")),
        (InvalidInputError, lambda: s.begin_upgrade("all-MiniLM-L6-v2")),
    ]
    for error, call in cases:
        with pytest.raises(error):
            call()
    assert len(s) == 1 and len(i) == 1 and s.live_ids().tolist() == ["a"]
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    assert slimvec.open(tmp_path / "s").info()["log_rows"] == 1  # nothing appended


def test_multivector_collections_refuse_string_ids_and_say_what_to_do(tmp_path):
    with pytest.raises(InvalidInputError, match=r"keep each key in its metadata.*filter="):
        slimvec.create(tmp_path / "m", dim=16, multivector=True, ids="str")
    assert not (tmp_path / "m").exists()


def test_model_upgrades_refuse_string_id_collections_and_write_nothing(tmp_path):
    col = slimvec.create(tmp_path / "s", dim=4, ids="str")
    col.add(np.eye(4)[:2], ids=["a", "b"], texts=["x", "y"])
    files = sorted(p.name for p in (tmp_path / "s").iterdir())
    manifest = (tmp_path / "s" / "MANIFEST.json").read_bytes()
    with pytest.raises(InvalidInputError, match=r"re-embed into a new collection"):
        col.begin_upgrade("all-MiniLM-L6-v2")  # refused before any model is loaded
    assert len(col) == 2 and sorted(p.name for p in (tmp_path / "s").iterdir()) == files
    assert (tmp_path / "s" / "MANIFEST.json").read_bytes() == manifest


# -- upsert ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["int", "str"])
@pytest.mark.parametrize("n", [5, 300])  # one small log record; a big one, folded at once
def test_upsert_replaces_vector_metadata_and_text(tmp_path, kind, n):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((400, 16)).astype(np.float32)
    ids = np.arange(400) if kind == "int" else np.array(_keys("k", 0, 400), object)
    col = slimvec.create(tmp_path / "c", dim=16, spec=SPEC, ids=kind)
    col.add(x, ids=ids, metadata=[{"v": 0}] * 400, texts=["old words"] * 400)
    y = rng.standard_normal((n + 2, 16)).astype(np.float32)
    new = [*ids[:n].tolist(), *(["new1", "new2"] if kind == "str" else [1000, 1001])]
    out = col.upsert(y, ids=new, metadata=[{"v": 1}] * (n + 2), texts=["fresh words"] * (n + 2))
    assert list(out) == new
    for c in (col, slimvec.open(tmp_path / "c")):
        assert len(c) == 402 and c.count({"v": 1}) == n + 2 and c.count({"v": 0}) == 400 - n
        res = c.search(y, k=1, exact=True)
        assert res.ids[:, 0].tolist() == new
        assert c.search(x[:n], k=1, exact=True).ids[:, 0].tolist() != list(ids[:n])
        assert c.texts(new[:1]) == ["fresh words"]
        hits = c.search_texts("fresh", k=500, mode="sparse")
        assert sum(i is not None and i != -1 for i in hits.ids[0]) == n + 2
        np.testing.assert_allclose(
            c.get(new[:1]).vectors[0], y[0] / np.linalg.norm(y[0]), rtol=1e-5
        )
    col.compact()
    assert len(slimvec.open(tmp_path / "c")) == 402


@pytest.mark.parametrize("kind", ["int", "str"])
def test_a_large_upsert_of_new_ids_commits_like_an_add(tmp_path, kind):
    """Nothing to replace: one segment commit (as ``add``), not a log record then a flush."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((210, 16)).astype(np.float32)
    ids = list(range(210)) if kind == "int" else _keys("k", 0, 210)
    col = slimvec.create(tmp_path / "c", dim=16, spec=SPEC, ids=kind)
    col.add(x[:10], ids=ids[:10])  # in the log
    generation = col.version[0]
    col.upsert(x[10:], ids=ids[10:], metadata=[{"v": 1}] * 200, texts=["new words"] * 200)
    assert col.version == (generation + 1, 0)  # one commit, a fresh empty log
    col.upsert(x[:5] * -1, ids=ids[:5])  # then a replacing one: a log record
    for c in (col, slimvec.open(tmp_path / "c")):
        assert len(c) == 210 and c.count({"v": 1}) == 200
        assert c.search(x, k=1, exact=True).ids[5:, 0].tolist() == ids[5:]
        assert c.search(-x[:5], k=1, exact=True).ids[:, 0].tolist() == ids[:5]
        assert c.texts(ids[10:11]) == ["new words"]


def test_upsert_is_refused_by_multivector_collections(tmp_path):
    col = slimvec.create(tmp_path / "m", dim=16, multivector=True)
    with pytest.raises(InvalidInputError, match="upsert"):
        col.upsert([np.ones((3, 16))], ids=[1])


READER = textwrap.dedent(
    """
    import sys, slimvec
    path, stop, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    col = slimvec.open(path)
    keys = [f"k{i}" for i in range(n)]
    rounds, errors = 0, []
    while True:
        done = open(stop).read() == "stop"
        try:
            got = col.get(keys, limit=None)
            versions = {m["v"] for m in got.metadata}
            if len(col) != n or len(got.ids) != n or len(versions) != 1:
                errors.append((len(col), len(got.ids), sorted(versions)))
            top = col.search(got.vectors[:3], k=1, exact=True).ids[:, 0].tolist()
            if top != got.ids[:3].tolist():
                errors.append(("search", top))
        except Exception as exc:
            errors.append(repr(exc))
        rounds += 1
        if done:
            break
    print(rounds, len(errors), errors[:3])
    """
)


def test_a_concurrent_reader_sees_every_upsert_whole(tmp_path):
    """Each upsert replaces all n keys: a reader must always see n rows of one version."""
    path, stop, n = tmp_path / "c", tmp_path / "stop", 80
    stop.write_text("")
    rng = np.random.default_rng(2)
    col = slimvec.create(path, dim=8, spec="f32", ids="str")
    col.add(rng.standard_normal((n, 8)), ids=_keys("k", 0, n), metadata=[{"v": 0}] * n)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(path), str(stop), str(n)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for v in range(1, 40):
            col.upsert(rng.standard_normal((n, 8)), ids=_keys("k", 0, n), metadata=[{"v": v}] * n)
            if v % 10 == 0:
                col.flush()
            if v % 15 == 0:
                col.compact()
    finally:
        stop.write_text("stop")
    rounds, errors, sample = reader.communicate(timeout=120)[0].split(" ", 2)
    assert int(rounds) > 0 and int(errors) == 0, sample


# -- kill -9 at every step (the points of test_crash.py, plus the key table) --------------------
def _child(path, point, action):
    """Runs in a forked process: arm the kill point, then write."""
    arm(point)
    x = np.random.default_rng(3).standard_normal((500, 32)).astype(np.float32)
    col = slimvec.open(path)
    if action == "add":
        y = np.random.default_rng(7).standard_normal((300, 32)).astype(np.float32)
        col.add(y, ids=_keys("n", 0, 300))
    elif action == "add_one":
        col.add(x[:1] + 5, ids=["n0"])
    elif action == "delete":
        col.delete(_keys("k", 0, 100))
    elif action == "upsert":
        col.upsert(x[20:30, ::-1], ids=_keys("k", 20, 30), metadata=[{"up": 2}] * 10)
    elif action == "flush":
        col.flush()
    elif action == "compact":
        col.compact()
    os._exit(0)  # finished without being killed: the test fails on the exit code


def _committed(path):
    """Two segments, then three log records: a delete, an upsert and (for flushes) an add."""
    x = np.random.default_rng(3).standard_normal((500, 32)).astype(np.float32)
    col = slimvec.create(path, dim=32, spec=SPEC, ids="str")
    col.add(x[:250], ids=_keys("k", 0, 250))
    col.add(x[250:], ids=_keys("k", 250, 500), metadata=[{"i": i} for i in range(250)])
    col.delete(_keys("k", 400, 450))
    col.upsert(-x[10:20], ids=_keys("k", 10, 20), metadata=[{"up": 1}] * 10)
    col.close()
    return x


def _check_intact(path, x, done):
    """Every committed key finds its own vector; ``done``: whether the child's write counts."""
    col = slimvec.open(path)
    want = {f"k{i}": x[i] for i in range(500) if not 400 <= i < 450}
    for i in range(10, 20):
        want[f"k{i}"] = -x[i]
    if done == "add":
        y = np.random.default_rng(7).standard_normal((300, 32)).astype(np.float32)
        want.update({f"n{i}": y[i] for i in range(300)})
    elif done == "add_one":
        want["n0"] = x[0] + 5
    elif done == "delete":
        for i in range(100):
            want.pop(f"k{i}")
    elif done == "upsert":
        want.update({f"k{i}": x[i, ::-1] for i in range(20, 30)})
    keys = list(want)
    assert len(col) == len(keys)
    assert sorted(col.live_ids().tolist()) == sorted(keys)
    res = col.search(np.stack([want[k] for k in keys]), k=1, exact=True)
    assert res.ids[:, 0].tolist() == keys
    assert col.metadata(["k260", "k15"]) == [{"i": 10}, None if done == "delete" else {"up": 1}]
    assert col.metadata(["k25"]) == [{"up": 2} if done == "upsert" else None]
    return col


def _kill(path, point, action):
    """kill -9 in a forked child (a fresh interpreter per case would cost seconds)."""
    proc = multiprocessing.get_context("fork").Process(target=_child, args=(path, point, action))
    proc.start()
    proc.join(120)
    assert proc.exitcode == -signal.SIGKILL


@pytest.mark.parametrize(
    "point", ["after_segment", "after_sqlite", "after_keys", "mid_manifest", "after_manifest"]
)
def test_kill_during_a_bulk_add_of_string_ids(tmp_path, point):
    x = _committed(tmp_path / "c")
    _kill(tmp_path / "c", point, "add")
    done = point == "after_manifest"
    col = _check_intact(tmp_path / "c", x, "add" if done else None)
    if not done:  # the next writer replaces the leftovers; the keys are free
        col.add(np.ones((100, 32), np.float32), ids=_keys("n", 0, 100))
        col = slimvec.open(tmp_path / "c")
        assert col.search(np.ones((1, 32)), k=100).ids[0].tolist() != [None] * 100
        assert len(col) == 450 + 100


@pytest.mark.parametrize("point", ["mid_log", "after_log"])
@pytest.mark.parametrize("action", ["add_one", "delete", "upsert"])
def test_kill_during_a_small_write_of_string_ids(tmp_path, point, action):
    x = _committed(tmp_path / "c")
    _kill(tmp_path / "c", point, action)
    col = _check_intact(tmp_path / "c", x, action if point == "after_log" else None)
    col.add(np.ones((1, 32)), ids=["after"])  # lands after the committed records (over a torn one)
    assert slimvec.open(tmp_path / "c").search(np.ones(32), k=1).ids[0, 0] == "after"


@pytest.mark.parametrize(
    "point", ["before_segment", "after_sqlite", "after_keys", "mid_manifest", "after_manifest"]
)
def test_kill_while_folding_string_ids_and_an_upsert_into_a_segment(tmp_path, point):
    x = _committed(tmp_path / "c")
    _kill(tmp_path / "c", point, "flush")
    col = _check_intact(tmp_path / "c", x, None)
    col.flush()
    col = _check_intact(tmp_path / "c", x, None)
    assert col.info()["log_rows"] == 0


@pytest.mark.parametrize("point", ["after_keys", "after_manifest"])
def test_kill_during_a_compaction_of_string_ids(tmp_path, point):
    x = _committed(tmp_path / "c")
    _kill(tmp_path / "c", point, "compact")
    col = _check_intact(tmp_path / "c", x, None)
    col.compact()
    _check_intact(tmp_path / "c", x, None)
