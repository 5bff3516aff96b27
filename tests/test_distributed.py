"""Sharded collections on a local Ray cluster: parity with a local collection, bad input,
shard actors killed mid-search and mid-ingest, parallel resumable ingest.

One Ray instance (``ray.init(num_cpus=2)``) serves the whole module; the two-node case is in
``test_distributed_cluster.py`` (a cluster cannot be started inside a running one).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import zlib

import numpy as np
import pytest
import ray
from ray import cloudpickle

import slimvec
import slimvec.distributed as sd
from slimvec.encoders import Encoder
from slimvec.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    CorruptCollectionError,
    DuplicateIdError,
    IdKindError,
    InvalidInputError,
    ShardUnavailableError,
)

DIM = 32


def clustered(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, dim))
    x = centres[rng.integers(0, 20, n)] + 0.7 * rng.standard_normal((n, dim))
    return x.astype(np.float32)


class HashEncoder(Encoder):
    """A tiny deterministic encoder: tests texts without loading torch in every actor."""

    dim = 16
    name = "hash-16"

    def _encode(self, texts, kind, batch_size):
        rows = [np.random.default_rng(list(t[:24].encode())).standard_normal(16) for t in texts]
        return np.array(rows, np.float32)


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    # encoders defined here must reach Ray Data's actors, which cannot import this file
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.shutdown()


@pytest.fixture
def make_collection(tmp_path, ray_local):
    """``make_collection(name, dim, **create_kwargs)`` → a sharded collection (4 shards by
    default), closed after the test. The shared API contract suite can use this fixture."""
    made = []

    def make(name: str, dim: int | None = None, **kwargs):
        kwargs.setdefault("shards", 4)
        col = sd.create(tmp_path / name, dim, **kwargs)
        made.append(col)
        return col

    yield make
    for col in made:
        col.close()


@pytest.fixture(scope="module")
def data():
    return clustered(3000, seed=1), clustered(40, seed=2)


def assert_same_results(got, want, tol=1e-5):
    """Same top-k ids and scores, where rows whose ids differ only swap tied scores."""
    rtol = 1e-6 if tol else 0  # float32 sums in another order (ip scores reach ~70)
    np.testing.assert_allclose(got.scores, want.scores, rtol=rtol, atol=tol)
    for g, w, s in zip(got.ids, want.ids, want.scores):
        if not np.array_equal(g, w):  # allowed only within groups of (nearly) equal scores
            for score in np.unique(s[g != w]):
                tied = np.abs(s - score) <= tol + rtol * abs(score)
                assert set(g[tied]) == set(w[tied])


# -- parity with a single collection ---------------------------------------------------------
@pytest.mark.parametrize("metric", ["cosine", "ip"])
def test_flat_search_equals_a_single_collection(tmp_path, make_collection, data, metric):
    docs, queries = data
    local = slimvec.create(tmp_path / "local", DIM, metric=metric, spec="f32")
    sharded = make_collection(
        "sharded", DIM, spec="f32", metric=metric, shards={"cosine": 4, "ip": 2}[metric]
    )
    assert (local.add(docs) == sharded.add(docs)).all()
    for exact in (False, True):
        want = local.search(queries, k=10, exact=exact)
        assert_same_results(sharded.search(queries, k=10, exact=exact), want)
    many = docs[:1000]  # 128 KB of queries: sent to the shards through the object store
    assert_same_results(sharded.search(many, k=5), local.search(many, k=5))
    counts = [e["count"] for e in sharded.info()["shard_info"]]
    assert sum(counts) == len(docs) and min(counts) > 0.2 * len(docs)  # hashed evenly


def test_same_calls_give_the_same_answers(tmp_path, make_collection, data):
    docs, queries = data
    local = slimvec.create(tmp_path / "local", DIM, spec="f32")
    sharded = make_collection("sharded", DIM, spec="f32")
    metas = [{"i": i} for i in range(500)]
    texts = [f"doc number {i}" + (" about zebras" if i == 43 else "") for i in range(500)]
    for col in (local, sharded):
        col.add(docs[:500], metadata=metas, texts=texts)
        col.add(docs[500:1000], ids=np.arange(5000, 5500))
        col.add(docs[1000:1100])  # auto ids continue past the given ones
    assert len(local) == len(sharded) == 1100
    want, got = local.info(), sharded.info()
    for key in ("count", "dim", "metric", "spec", "ram_bytes_per_vector", "code_bytes_per_vector"):
        assert got[key] == want[key], key
    assert got["healthy"] and got["ram_bytes"] == 1100 * want["ram_bytes_per_vector"]
    assert got["quality"]["shards"] == len(got["shard_info"])  # the shards' live recall combined
    probe = [0, 3, 499, 5001, 5500, 5599, 123456]
    assert sharded.metadata(probe) == local.metadata(probe)
    assert sharded.texts(probe) == local.texts(probe)
    assert_same_results(sharded.search(queries, k=10), local.search(queries, k=10))
    doomed = np.concatenate([np.arange(0, 500, 7), np.arange(5000, 5600, 7)])
    assert sharded.delete(doomed) == local.delete(doomed)
    assert_same_results(sharded.search(queries, k=10), local.search(queries, k=10))
    local.compact()
    sharded.compact()
    assert len(sharded) == len(local) == 1100 - len(doomed)
    assert_same_results(sharded.search(queries, k=10), local.search(queries, k=10))
    # BM25 statistics are per shard: the same winner, not the same scores
    assert sharded.search_texts(["zebras"], k=1, mode="sparse").ids[0, 0] == 43
    # errors: same exception types, nothing written on either side
    for col in (local, sharded):
        with pytest.raises(DuplicateIdError):
            col.add(docs[:2], ids=[5001, 99999])
        with pytest.raises(InvalidInputError, match="not in the collection"):
            col.delete([1, 2, 10**9])
        with pytest.raises(InvalidInputError):
            col.add(docs[:2, :5])
        with pytest.raises(InvalidInputError):
            col.search(queries, k=0)
        with pytest.raises(IdKindError, match="ids='str'"):
            col.add(docs[:2], ids=["doc-1", "doc-2"])
        with pytest.raises(IdKindError):
            col.delete([1, "doc-1"])
        assert len(col) == 1100 - len(doomed)
    with pytest.raises(IdKindError, match="has int64 ids, got a string id 'doc-1'"):
        sharded.metadata(["doc-1"])
    assert sharded.metadata([1]) == [{"i": 1}]  # id 1 survived the refused delete


def test_funnel_spec_recall_against_exact(tmp_path, make_collection, data):
    docs, queries = data
    local = slimvec.create(tmp_path / "local", DIM)  # default spec: binary*40 > f32
    sharded = make_collection("c", DIM, shards=2)
    local.add(docs)
    sharded.add(docs)
    exact = local.search(queries, k=10, exact=True).ids
    assert_same_results(sharded.search(queries, k=10, exact=True), local.search(queries, 10, True))

    def recall(found):
        return np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, exact)])

    # every shard keeps its own 40·k shortlist, so sharding can only add candidates
    assert recall(sharded.search(queries, k=10).ids) >= recall(local.search(queries, k=10).ids)
    assert recall(sharded.search(queries, k=10).ids) >= 0.9


def test_reopen_serves_the_same_collection(tmp_path, make_collection, data):
    docs, queries = data
    col = make_collection("c", DIM, shards=2, spec="int8*4 > f32")
    col.add(docs[:1000])
    before = col.search(queries, k=10)
    col.close()
    col = sd.open(tmp_path / "c")
    try:
        assert col.shards == 2 and col.spec == "int8*4 > f32" and len(col) == 1000
        assert_same_results(col.search(queries, k=10), before, tol=0)
        assert col.add(docs[1000:1010])[0] == 1000  # id counter survives the restart
    finally:
        col.close()


def test_texts_with_an_encoder(tmp_path, make_collection):
    texts = [f"package {i} does thing {i % 7}" for i in range(200)]
    local = slimvec.create(tmp_path / "local", encoder=HashEncoder(), spec="f32")
    sharded = make_collection("s", encoder=HashEncoder(), spec="f32", shards=2)
    assert local.add_texts(texts).tolist() == sharded.add_texts(texts).tolist()
    queries = ["package 5 does thing 5", "package 77 does"]
    assert_same_results(sharded.search_texts(queries, k=5), local.search_texts(queries, k=5))
    top = sharded.search_texts(["package 13 does thing 6"], k=1, mode="sparse").ids[0, 0]
    assert top == 13
    hybrid = sharded.search_texts(queries, k=5, mode="hybrid")
    assert hybrid.ids.shape == (2, 5) and (hybrid.ids >= 0).all()
    assert sharded.texts([13]) == [texts[13]]
    with pytest.raises(InvalidInputError, match="no encoder"):
        make_collection("plain", DIM).add_texts(["x"])


def test_a_recall_target_is_committed_on_every_shard(tmp_path, make_collection, data):
    """``set_target_recall`` reaches every shard's primary, which commits it in its own
    manifest and tunes its own searches; ``live_recall`` combines the shards' reports (with
    replicas, whichever answers: each reopened after the commit)."""
    col = make_collection("held", DIM, shards=2, replicas=2)
    col.add(data[0][:600])
    col.set_target_recall(0.95)
    shards = sorted((tmp_path / "held").glob("shard-*"))
    assert len(shards) == 2
    for shard in shards:
        assert json.loads((shard / "MANIFEST.json").read_text())["extra"]["target_recall"] == 0.95
    for _ in range(2):  # both replicas of every shard
        report = col.live_recall()
        assert report["target_recall"] == 0.95 and report["shards"] == 2
    assert col.info()["quality"]["target_recall"] == 0.95
    with pytest.raises(InvalidInputError, match=r"got 1\.5"):
        col.set_target_recall(1.5)
    col.set_target_recall(None)
    extras = [json.loads((shard / "MANIFEST.json").read_text())["extra"] for shard in shards]
    assert not any("target_recall" in extra for extra in extras)
    assert col.live_recall()["target_recall"] is None


# -- bad input ---------------------------------------------------------------------------------
def test_bad_layouts_are_refused_before_any_actor_starts(tmp_path, make_collection, data):
    col = make_collection("c", DIM, shards=2)
    col.add(data[0][:100])
    other = make_collection("other", DIM, shards=2)
    col.close()
    other.close()
    root = tmp_path / "c"
    with pytest.raises(InvalidInputError, match="has 2 shards, not 3"):
        sd.open(root, shards=3)
    (root / "shard-0002").mkdir()
    with pytest.raises(CorruptCollectionError, match="shard-0002"):
        sd.open(root)
    (root / "shard-0002").rmdir()
    (root / "shard-0001").rename(tmp_path / "away")
    with pytest.raises(CorruptCollectionError, match="shard 1 is missing"):
        sd.open(root)
    (tmp_path / "other" / "shard-0001").rename(root / "shard-0001")
    with pytest.raises(CorruptCollectionError, match=r"shard 1 .* belongs to another collection"):
        sd.open(root)
    with pytest.raises(CollectionNotFoundError, match="not a sharded collection"):
        sd.open(tmp_path / "nothing")
    with pytest.raises(CollectionExistsError):
        sd.create(root, DIM)
    for bad in ({"shards": 0}, {"replicas": "2"}, {"spec": "nonsense"}):
        with pytest.raises(InvalidInputError):
            sd.create(tmp_path / "new", DIM, **bad)
        assert not (tmp_path / "new").exists()  # nothing written


def test_a_shard_that_cannot_start_is_named(tmp_path, make_collection):
    make_collection("c", DIM, shards=3).close()  # three: the failing one is not the first
    (tmp_path / "c" / "shard-0002" / "MANIFEST.json").write_text("{ damaged")
    with pytest.raises(ShardUnavailableError, match=r"shard 2 .* could not start") as err:
        sd.open(tmp_path / "c")
    assert err.value.shard == 2
    (tmp_path / "c" / "shard-0002" / "MANIFEST.json").unlink()
    make_collection("d", DIM, shards=2).close()
    with pytest.raises(ShardUnavailableError, match="did not start within 2 s"):
        sd.open(tmp_path / "d", actor_options={"resources": {"no-such-node": 1}}, start_timeout=2)


def test_ids_held_by_another_shard_are_refused(tmp_path, make_collection, data):
    col = make_collection("c", DIM, shards=2, spec="f32")
    col.add(data[0][:10], ids=np.arange(10))
    col.close()
    # plant id 777 in a shard that the router would not send it to
    wrong = 1 - int(sd.route(np.array([777]), 2)[0])
    shard = slimvec.open(tmp_path / "c" / f"shard-{wrong:04d}")
    shard.add(data[0][10:11], ids=[777])
    shard.close()
    col = sd.open(tmp_path / "c")
    try:
        with pytest.raises(DuplicateIdError, match="777"):
            col.add(data[0][:2], ids=[777, 778])
        with pytest.raises(DuplicateIdError, match=r"\[3\]"):
            col.add(data[0][:2], ids=[3, 779])
        assert len(col) == 11  # nothing written by either refused add
    finally:
        col.close()


def test_an_unknown_id_kind_is_refused_before_anything_is_written(tmp_path):
    # no Ray needed: the id kind is checked before Ray or the disk is touched
    with pytest.raises(InvalidInputError, match="must be 'int'"):
        sd.create(tmp_path / "keyed", 8, shards=2, ids="uuid")
    assert not (tmp_path / "keyed").exists()


def test_string_ids_live_on_their_crc32_shard_and_survive_a_reopen(tmp_path, make_collection):
    x = clustered(40, dim=8, seed=3)
    keys = [f"doc-{i}" for i in range(40)]
    col = make_collection("k", 8, shards=3, spec="f32", ids="str")
    assert col.add(x[:30], ids=keys[:30]).tolist() == keys[:30]
    assert col.id_kind == "str" and col.info()["id_kind"] == "str"
    assert json.loads((tmp_path / "k" / "SHARDS.json").read_text())["router"] == "crc32-utf8-mod"
    for s in range(3):  # each key on shard crc32(utf-8) % 3, in a string-id shard
        shard = slimvec.open(tmp_path / "k" / f"shard-{s:04d}")
        mine = [k for k in keys[:30] if zlib.crc32(k.encode("utf-8")) % 3 == s]
        assert shard.id_kind == "str" and sorted(shard.live_ids().tolist()) == sorted(mine)
        shard.close()
    col.close()
    col = sd.open(tmp_path / "k")
    try:
        assert col.id_kind == "str" and len(col) == 30
        assert col.search(x[:3], k=1).ids[:, 0].tolist() == keys[:3]
        made = col.add(x[30:32])  # no ids: UUID keys, routed like any other
        assert made.dtype == object and all(len(k) == 36 for k in made)
        assert col.get(made[::-1].tolist()).ids.tolist() == made[::-1].tolist()
        with pytest.raises(IdKindError, match="string ids, got int 5"):
            col.add(x[:1], ids=[5])
        assert len(col) == 32
    finally:
        col.close()


def test_new_calls_match_a_single_collection(tmp_path, make_collection):
    """upsert, get, count, update_metadata, delete(filter=), create_index and filtered
    search_texts give a single collection's answers (get lists by id, not insertion order)."""
    colours = ["red", "green", "blue"]
    texts = [f"item {i} in {colours[i % 3]} with part {i % 7}" for i in range(90)]
    ids = np.random.default_rng(4).permutation(1000)[:90]  # given out of order
    metas = [{"c": colours[i % 3], "n": i} for i in range(90)]
    local = slimvec.create(tmp_path / "local", encoder=HashEncoder(), spec="f32")
    sharded = make_collection("s", encoder=HashEncoder(), spec="f32", shards=2)
    new = HashEncoder().encode(["a replacement", "a new one"], kind="doc")
    for col in (local, sharded):
        col.add_texts(texts, ids=ids, metadata=metas)
        got = col.upsert(new, ids=[ids[0], 5000], metadata=[{"c": "red"}, None], texts=["r", "n"])
        assert got.tolist() == [ids[0], 5000]
    assert len(sharded) == len(local) == 91
    red = {"c": "red"}
    assert sharded.count(filter=red) == local.count(filter=red) == 30
    asked = [5000, int(ids[3]), 99999, int(ids[3]), int(ids[0])]
    want, got = local.get(asked), sharded.get(asked)  # the order asked, each once
    assert got.ids.tolist() == want.ids.tolist() == [5000, ids[3], ids[0]]
    assert got.metadata == want.metadata and got.texts == want.texts
    np.testing.assert_allclose(got.vectors, want.vectors, rtol=1e-6, atol=1e-6)
    page = sharded.get(filter=red, limit=5, offset=3)  # by id, merged across shards
    order = np.sort(local.get(filter=red, limit=None).ids)
    assert page.ids.tolist() == order[3:8].tolist() and page.vectors is None
    assert page.metadata == local.metadata(order[3:8])
    assert sharded.get(limit=None).ids.tolist() == np.sort(local.get(limit=None).ids).tolist()
    assert sharded.get(limit=2, offset=90).ids.tolist() == [5000]  # the largest id
    for col in (local, sharded):
        assert col.update_metadata([ids[1], 5000], [{"c": "red", "x": 1}, None]) == 2
        assert col.update_metadata(filter=red, merge={"seen": True}) == 31
        assert col.update_metadata([ids[2]], filter=red, merge={"y": 2}) == 0
    assert sharded.metadata(ids) == local.metadata(ids)
    green = {"c": "green"}
    for mode in ("dense", "sparse", "hybrid"):
        res = sharded.search_texts(["item 4 in green", "part 3"], k=5, mode=mode, filter=green)
        assert (res.ids >= 0).all() and {m["c"] for m in sharded.metadata(res.ids.ravel())} == {
            "green"
        }
        if mode == "dense":
            want = local.search_texts(["item 4 in green", "part 3"], k=5, filter=green)
            assert_same_results(res, want)
    res = sharded.search(new, k=3, filter=green, exact=True)
    assert res.explain["matching"] == 29 and len(res.explain["shards"]) == 2
    for col in (local, sharded):
        col.create_index("n")
        assert col.count(filter={"n": {"$gte": 60}}) == 30
        assert col.delete(filter=green) == 29
    assert len(sharded) == len(local) == 62
    assert sharded.get(limit=None).ids.tolist() == np.sort(local.get(limit=None).ids).tolist()
    with pytest.raises(InvalidInputError, match="not both"):
        sharded.delete([5000], filter=green)
    with pytest.raises(InvalidInputError, match="ids not in the collection"):
        sharded.update_metadata([5000, 77777], [{}, {}])
    assert sharded.metadata([5000]) == [None]  # nothing written on any shard
    assert sharded.add(new[:1]).tolist() == local.add(new[:1]).tolist() == [5001]


def test_without_ray_the_error_says_what_to_install():
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "import slimvec, slimvec.collection, slimvec.cli\n"
        "try:\n    import slimvec.distributed\n"
        "except slimvec.errors.MissingDependencyError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'slimvec[ray]'" in out.stdout


def test_without_ray_init_nothing_is_written(tmp_path):
    code = (
        "import sys, slimvec.distributed as sd\n"
        "try:\n    sd.create(sys.argv[1], 4)\n"
        "except slimvec.errors.SlimvecError as e:\n    print(e)\n"
    )
    target = tmp_path / "c"
    out = subprocess.run(
        [sys.executable, "-c", code.replace("sys, ", "sys, slimvec, "), str(target)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "call ray.init()" in out.stdout and not target.exists()


def test_core_package_never_imports_ray():
    code = "import sys, slimvec, slimvec.cli; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- failures ----------------------------------------------------------------------------------
def _busy(actor, seconds: float):
    """Keep a shard actor busy so that the next call queued on it is in flight."""
    return actor.__ray_call__.remote(lambda self: time.sleep(seconds))


def _in_thread(fn):
    box = {}

    def run():
        try:
            box["value"] = fn()
        except Exception as exc:
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def test_killed_shard_fails_the_search_in_flight_then_comes_back(make_collection, data):
    docs, queries = data
    col = make_collection("c", DIM, shards=3, spec="f32")
    col.add(docs)
    want = col.search(queries, k=10)
    victim = col._actors[2][0]
    pid = ray.get(victim.ready.remote())["pid"]
    _busy(victim, 3)
    thread, box = _in_thread(lambda: col.search(queries, k=10))
    time.sleep(0.5)
    ray.kill(victim, no_restart=False)
    thread.join(30)
    assert isinstance(box.get("error"), ShardUnavailableError)
    assert "shard 2" in str(box["error"]) and box["error"].shard == 2
    # Ray restarts the actor, which reopens its directory: every committed vector is back
    deadline = time.monotonic() + 60
    while col.info()["shard_info"][2]["replicas"][0]["health"] != "ok":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert ray.get(victim.ready.remote())["pid"] != pid
    assert len(col) == len(docs)
    assert_same_results(col.search(queries, k=10), want, tol=0)


def _wait_healthy(col, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not col.info(timeout=5)["healthy"]:
        assert time.monotonic() < deadline, col.info()
        time.sleep(0.5)


def test_a_replica_answers_when_a_shard_actor_dies(make_collection, data):
    docs, queries = data
    col = make_collection("c", DIM, shards=2, replicas=2, spec="f32")
    col.add(docs[:2000])
    col.delete([0, 1])  # replicas reopen after each write
    want = col.search(queries, k=10)
    assert 0 not in want.ids
    pids = [ray.get(actor.ready.remote())["pid"] for actor in col._actors[0]]
    for victim, kill in [
        (0, lambda: ray.kill(col._actors[0][0], no_restart=False)),  # the primary, by Ray
        (1, lambda: os.kill(pids[1], signal.SIGKILL)),  # a replica's process, by the OS
    ]:
        _busy(col._actors[0][victim], 3)
        threads = [_in_thread(lambda: col.search(queries, k=10)) for _ in range(2)]
        time.sleep(0.5)
        kill()
        for thread, box in threads:  # one went to the dead actor: the other replica answered
            thread.join(30)
            assert "error" not in box, box.get("error")
            assert_same_results(box["value"], want, tol=0)
        _wait_healthy(col)
    assert [ray.get(a.ready.remote())["pid"] for a in col._actors[0]] != pids
    col.add(docs[2000:2100])  # the restarted primary writes, the restarted replica reads it
    assert len(col) == 2098
    for _ in range(2):  # reads alternate between the replicas: both see the new commit
        assert col.search(docs[2000:2010], k=1).ids[:, 0].tolist() == list(range(2000, 2010))


# -- ingest ------------------------------------------------------------------------------------
TEXTS = [f"text number {i} on subject {i % 13}" for i in range(1000)]


def test_ingest_texts_in_parallel_and_resume(make_collection):
    col = make_collection("c", encoder=HashEncoder(), spec="f32", shards=2)
    first = sd.ingest_texts(
        ray.data.from_items([{"text": t} for t in TEXTS[:300]]),
        col,
        batch_size=64,
        encoders=1,  # the module's cluster has 2 CPUs: one encoder actor and a reader
        progress=False,
    )
    assert (first.added, first.skipped) == (300, 0)
    # rerun over the whole set (as after an interruption): only the missing 700 are embedded
    again = sd.ingest_texts(
        ray.data.from_items([{"text": t} for t in TEXTS]), col, batch_size=64, progress=False
    )
    assert (again.added, again.skipped) == (700, 300)
    ids = col.live_ids()
    assert len(ids) == len(set(ids.tolist())) == 1000
    assert sorted(ids.tolist()) == sorted(sd.ingest.text_ids(TEXTS).tolist())
    res = col.search_texts(TEXTS[:5], k=1)  # each text's vector is the encoder's
    assert res.ids[:, 0].tolist() == sd.ingest.text_ids(TEXTS[:5]).tolist()
    assert col.texts(res.ids[:, 0]) == TEXTS[:5]
    rows = ray.data.from_items([{"body": t, "key": i} for i, t in enumerate(TEXTS[:10])])
    with pytest.raises(InvalidInputError, match="no column 'text'"):
        sd.ingest_texts(rows, col)
    keyed = rows.map(lambda row: {"body": row["body"] + " (keyed)", "key": 10**15 + row["key"]})
    sd.ingest_texts(keyed, col, text_column="body", id_column="key", progress=False)
    assert col.texts([10**15 + 3]) == [TEXTS[3] + " (keyed)"] and len(col) == 1010


def test_ingest_into_string_ids_resumes_by_key(make_collection):
    col = make_collection("k", encoder=HashEncoder(), spec="f32", shards=2, ids="str")
    rows = [{"text": t} for t in TEXTS[:60]]
    first = sd.ingest_texts(ray.data.from_items(rows[:40]), col, batch_size=32, progress=False)
    again = sd.ingest_texts(ray.data.from_items(rows), col, batch_size=32, progress=False)
    assert (first.added, again.added, again.skipped) == (40, 20, 40) and len(col) == 60
    keys = sd.ingest.text_keys(TEXTS[:3]).tolist()
    assert sorted(col.live_ids().tolist()) == sorted(sd.ingest.text_keys(TEXTS[:60]).tolist())
    assert col.search_texts(TEXTS[:3], k=1).ids[:, 0].tolist() == keys
    assert col.texts(keys) == TEXTS[:3]


def test_ingest_sizes_its_encoder_pool_to_the_cluster(tmp_path, make_collection):
    """README's `encoders=4` on `ray.init(num_cpus=2)` waited forever: read tasks held both
    CPUs while the encoder actors waited for one. Now the pool shrinks to what fits beside a
    reader (with a warning), and a cluster with no room is refused at once."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for part in range(4):  # several files: several read tasks, as read_text("corpus/") makes
        lines = TEXTS[part * 50 : (part + 1) * 50]
        (corpus / f"part-{part}.txt").write_text("\n".join(lines) + "\n")
    col = make_collection("c", encoder=HashEncoder(), spec="f32", shards=2)
    with pytest.warns(UserWarning, match=r"encoders=4 needs 5 CPUs .* using 1 encoder actor"):
        report = sd.ingest_texts(
            ray.data.read_text(str(corpus)), col, encoders=4, batch_size=32, progress=False
        )
    assert (report.added, report.skipped) == (200, 0) and len(col) == 200
    busy = make_collection(
        "busy", encoder=HashEncoder(), shards=2, actor_options={"num_cpus": 0.75}
    )
    with pytest.raises(InvalidInputError, match=r"needs 2 free CPUs .* 1.5 of them reserved"):
        sd.ingest_texts(ray.data.from_items([{"text": "x"}]), busy, progress=False)
    with pytest.raises(InvalidInputError, match="encoders must be a positive integer"):
        sd.ingest_texts(ray.data.from_items([{"text": "x"}]), col, encoders=0)


def test_ingest_survives_a_shard_killed_mid_run(tmp_path, make_collection):
    col = make_collection("c", encoder=HashEncoder(), spec="f32", shards=2)
    victim = col._actors[1][0]
    shard_dir = tmp_path / "c" / "shard-0001"
    killed = {}

    def kill_when_shard_has_rows():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if len(slimvec.open(shard_dir)) > 0:
                _busy(victim, 3)  # the next batch for this shard queues behind this...
                time.sleep(1)
                killed["at_rows"] = len(slimvec.open(shard_dir))
                ray.kill(victim, no_restart=False)  # ...and dies with it
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_when_shard_has_rows)
    killer.start()
    ds = ray.data.from_items([{"text": t} for t in TEXTS])
    report = sd.ingest_texts(ds, col, batch_size=20, progress=False)
    killer.join()
    assert 0 < killed["at_rows"] < 1000  # the kill landed mid-ingest
    assert report.retries >= 1 and report.added == 1000
    ids = col.live_ids()
    assert len(ids) == len(set(ids.tolist())) == 1000  # nothing lost, nothing twice
