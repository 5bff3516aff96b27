"""Model upgrades: mixed search, adds and backfill during the upgrade, crash resume, finish."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import slimvec
from slimvec.compat.upgrade import BLEND_DEPTH, BLEND_OLD_WEIGHT, Upgrade, _file_names
from slimvec.encoders import Encoder

DOCS = [
    f"document {i} about {['perl', 'python', 'fonts', 'images', 'sqlite'][i % 5]}"
    for i in range(240)
]
QUERIES = [f"query {i} on {['perl', 'fonts', 'sqlite'][i % 3]}" for i in range(25)]


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


class HashEncoder(Encoder):
    """Deterministic fake model: an unrelated random vector per text (no torch)."""

    def __init__(self, name: str, dim: int, seed: int):
        self.name, self.dim, self.seed = name, dim, seed

    def _encode(self, texts, kind, batch_size):
        return np.array(
            [np.random.default_rng([self.seed, _seed(t)]).standard_normal(self.dim) for t in texts],
            np.float32,
        )


class LatentEncoder(Encoder):
    """Fake models that are isometric linear images of one shared 12-d latent per text: an
    adapter between two of them can be exact."""

    def __init__(self, name: str, dim: int, seed: int):
        self.name, self.dim = name, dim
        # orthonormal rows: cosines are the latent's in both models, so a rotation maps them
        q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, 12)))
        self.proj = q.T

    def _encode(self, texts, kind, batch_size):
        latent = np.array([np.random.default_rng(_seed(t)).standard_normal(12) for t in texts])
        return (latent @ self.proj).astype(np.float32)


def old_model():
    return HashEncoder("hash-old", 16, 0)


def new_model():
    return HashEncoder("hash-new", 24, 1)


def _parent(path, encoder=None, n=None):
    n = len(DOCS) if n is None else n
    col = slimvec.create(path, encoder=encoder or old_model(), spec="f32")
    col.add_texts(DOCS[:n], metadata=[{"i": i} for i in range(n)])
    return col


def _reference(col, up, queries, k):
    """Mixed top-k from the two encoders directly. The old model scores the ids live only in
    the old space (cosines put on the new scale by the dual calibrator); the new model scores
    the new space's ids, and while old documents remain, its top BLEND_DEPTH * k backfilled
    ones (not those added to the new space) blend in their calibrated old-model cosine."""
    old_enc, new_enc = col.encoder, up.encoder
    new_ids = up.new_space.live_ids()
    old_ids = np.setdiff1d(up.old_space.live_ids(), new_ids)
    texts = dict(zip(range(len(DOCS)), DOCS))
    texts.update(zip(new_ids.tolist(), up.new_space.texts(new_ids)))
    old_q, new_q = old_enc.encode(queries, kind="query"), new_enc.encode(queries, kind="query")

    def cosines(enc, q, ids):
        return q @ enc.encode([texts[i] for i in ids.tolist()], kind="doc").T

    calibrate = up.dual_calibrator.transform
    new_scores = cosines(new_enc, new_q, new_ids)
    if len(old_ids) and len(new_ids):
        shortlist = np.argsort(-new_scores, axis=1, kind="stable")[:, : BLEND_DEPTH * k]
        blended = new_scores + BLEND_OLD_WEIGHT * (
            calibrate(cosines(old_enc, old_q, new_ids)) - new_scores
        )
        backfilled = np.isin(new_ids, up.old_space.stored_ids())  # their old rows are still stored
        blended = np.where(backfilled, blended, new_scores)
        new_scores = np.full_like(new_scores, -np.inf)
        np.put_along_axis(new_scores, shortlist, np.take_along_axis(blended, shortlist, 1), 1)
    old_scores = calibrate(cosines(old_enc, old_q, old_ids))
    ids = np.concatenate([new_ids, old_ids])
    scores = np.concatenate([new_scores, old_scores], axis=1)
    return ids[np.argsort(-scores, axis=1, kind="stable")[:, :k]]


def test_mixed_search_adds_backfill_and_finish(tmp_path):
    col = _parent(tmp_path / "c")
    col = col.begin_upgrade(new_model())
    up = col.upgrade
    assert isinstance(col, slimvec.UpgradingCollection)
    assert up.report["kind"] in {"scores", "procrustes", "linear", "mlp"}
    manifest = json.loads((tmp_path / "c" / "MANIFEST.json").read_text())
    assert manifest["extra"]["upgrade"]["new"]["name"] == "hash-new"
    assert manifest["extra"]["upgrade"]["old"]["dim"] == 16
    assert (tmp_path / "c" / manifest["extra"]["upgrade"]["space"] / "MANIFEST.json").exists()

    # right after begin: everything is in the old space, searched with the old model
    res = col.search_texts(QUERIES, k=10, exact=True)
    assert (res.ids == _reference(col, up, QUERIES, 10)).all()

    # new texts land in the new space, with ids following the old ones
    added = col.add_texts(["brand new perl doc", "brand new font doc"], metadata=[{"n": 1}, None])
    assert added.tolist() == [len(DOCS), len(DOCS) + 1]
    assert len(up.new_space) == 2 and len(up.old_space) == len(DOCS)
    assert len(col) == len(DOCS) + 2 and col.live_ids().tolist() == list(range(len(DOCS) + 2))
    assert up.new_space.metadata(added) == [{"n": 1}, None]

    assert col.backfill(batch_size=32, limit=100, progress=False) == 100
    status = up.status()
    assert (status.old_count, status.new_count, status.in_both) == (len(DOCS) - 100, 102, 0)
    assert status.backfilled == pytest.approx(100 / len(DOCS))
    info = col.info()["upgrade"]
    assert (info["old_model"], info["new_model"], info["new_count"]) == (
        "hash-old",
        "hash-new",
        102,
    )
    res = col.search_texts(QUERIES, k=10, exact=True)
    assert (res.ids == _reference(col, up, QUERIES, 10)).all()
    # vectors-only search: the old model's vectors (clients not yet moved) or the new model's
    old_q = col.encoder.encode(QUERIES[:3], kind="query")
    assert col.search(old_q, k=5).ids.shape == (3, 5)
    with pytest.raises(slimvec.InvalidInputError, match="16"):
        col.search(up.encoder.encode(QUERIES[:3], kind="query"), k=5)
    with pytest.raises(slimvec.InvalidInputError, match="new_queries, old_queries"):
        up.search_vectors(k=5)

    with pytest.raises(slimvec.InvalidInputError, match=f"{len(DOCS) - 100} documents are still"):
        col.finish_upgrade()
    assert col.upgrade is not None  # nothing changed, still mixed
    assert (col.search_texts(QUERIES, k=10, exact=True).ids == res.ids).all()

    assert col.backfill(batch_size=64, progress=False) == len(DOCS) - 100
    assert col.backfill(progress=False) == 0
    ref = _reference(col, up, QUERIES, 10)  # the old space is empty: the new model alone
    done = col.finish_upgrade()
    assert col.upgrade is None and len(done) == len(DOCS) + 2 and done.dim == 24
    assert isinstance(done, slimvec.Collection) and len(col) == len(done)  # col passes calls on
    with pytest.raises(slimvec.InvalidInputError, match="upgrade is finished"):
        up.report  # noqa: B018

    reopened = slimvec.open(tmp_path / "c", encoder=new_model())
    assert reopened.path == done.path and reopened.dim == 24 and reopened.info()["upgrade"] is None
    assert reopened.manifest.extra["encoder"]["name"] == "hash-new"
    all_ids = np.sort(reopened.live_ids())
    assert all_ids.tolist() == list(range(len(DOCS) + 2))
    assert reopened.texts([7]) == [DOCS[7]] and reopened.metadata([7]) == [{"i": 7}]
    new_q = new_model().encode(QUERIES, kind="query")
    assert (reopened.search(new_q, k=10, exact=True).ids == ref).all()
    assert (col.search(new_q, k=10, exact=True).ids == ref).all()
    # the old space's data and the upgrade files are gone; new ids continue after the old ones
    assert not list((tmp_path / "c" / "segments").iterdir())
    assert not list((tmp_path / "c").glob("upgrade-*"))
    assert reopened.add_texts(["after the upgrade"]).tolist() == [len(DOCS) + 2]


def test_ids_stay_unique_across_spaces(tmp_path):
    col = _parent(tmp_path / "c", n=60)
    col = col.begin_upgrade(new_model())
    up = col.upgrade
    with pytest.raises(slimvec.DuplicateIdError, match="old or new space"):
        up.add_texts(["clash"], ids=[5])
    up.add_texts(["given id"], ids=[1000])
    with pytest.raises(slimvec.DuplicateIdError):
        up.add_texts(["clash again"], ids=[1000])
    # the parent's next_id moved past every id of the new space: an old-model add does not clash
    old_vec = old_model().encode(["an old-model client"], kind="doc")
    assert col.add(old_vec, texts=["an old-model client"]).tolist() == [1001]
    assert up.add_texts(["auto"]).tolist() == [1002]
    assert up.delete([1000, 3]) == 2
    assert 1000 not in up.new_space.live_ids()
    assert col.backfill(progress=False) == 59 + 1  # the old-model add is backfilled too
    assert len(col.finish_upgrade()) == 61


def test_foreign_model_vectors_are_refused(tmp_path):
    col = _parent(tmp_path / "c", n=60)
    col = col.begin_upgrade(new_model())
    up = col.upgrade
    new_vecs = new_model().encode(["x"], kind="doc")
    with pytest.raises(slimvec.InvalidInputError, match="16"):
        col.add(new_vecs)  # new-model vectors into the old space
    with pytest.raises(slimvec.InvalidInputError, match="24"):
        up.new_space.add(old_model().encode(["x"], kind="doc"))
    with pytest.raises(slimvec.InvalidInputError, match="not the model"):
        slimvec.open(tmp_path / "c", encoder=new_model())
    with pytest.raises(slimvec.InvalidInputError, match="not the model"):
        up.use_encoder(HashEncoder("hash-new", 24, seed=9))  # same name, other weights
    with pytest.raises(slimvec.InvalidInputError, match="not the model"):
        slimvec.open(up.new_space.path, encoder=old_model())


def test_the_recall_target_holds_in_both_spaces_and_after_finish(tmp_path):
    col = _parent(tmp_path / "c", n=60)
    col.set_target_recall(0.9)  # set before: the new space takes it at begin
    col = col.begin_upgrade(new_model())
    up = col.upgrade
    assert [space.live_recall()["target_recall"] for space in up.spaces] == [0.9, 0.9]
    col.set_target_recall(0.97)
    assert [space.manifest.extra["target_recall"] for space in up.spaces] == [0.97, 0.97]
    report = col.live_recall()
    assert report["target_recall"] == 0.97 and report["spaces"] == 2
    assert col.info()["quality"] == report
    with pytest.raises(slimvec.InvalidInputError, match="got 0"):
        col.set_target_recall(0)
    col.backfill(progress=False)
    done = col.finish_upgrade()
    assert done.live_recall()["target_recall"] == 0.97 == col.live_recall()["target_recall"]
    col.set_target_recall(None)  # finished: the handle passes calls to the new space
    col.close()
    again = slimvec.open(tmp_path / "c", encoder=new_model())
    assert again.info()["quality"]["target_recall"] is None
    again.set_target_recall(0.99)
    again.close()
    assert slimvec.open(tmp_path / "c", encoder=new_model()).live_recall()["target_recall"] == 0.99


def test_reopen_mid_upgrade(tmp_path):
    col = _parent(tmp_path / "c", n=120)
    col = col.begin_upgrade(new_model())
    up = col.upgrade
    col.add_texts(["added during the upgrade"])
    col.backfill(batch_size=25, limit=50, progress=False)
    before = col.search_texts(QUERIES, k=8, exact=True)
    report = up.report
    col.close()  # closes the upgrade's new space too; a closed collection refuses every call

    again = slimvec.open(tmp_path / "c", encoder=old_model())
    upgrade = again.upgrade
    assert isinstance(upgrade, Upgrade) and upgrade is not up
    upgrade.use_encoder(new_model())
    assert upgrade.status().old_count == 70 and upgrade.status().new_count == 51
    after = again.search_texts(QUERIES, k=8, exact=True)
    assert (after.ids == before.ids).all()
    np.testing.assert_allclose(after.scores, before.scores, rtol=1e-5)
    assert upgrade.report == report
    np.testing.assert_allclose(
        upgrade.adapter.transform(np.ones((1, 24), np.float32)),
        up.adapter.transform(np.ones((1, 24), np.float32)),
    )


def test_adapter_path_with_linearly_related_models(tmp_path):
    old, new = LatentEncoder("lat-old", 16, 2), LatentEncoder("lat-new", 24, 3)
    col = slimvec.create(tmp_path / "c", encoder=old, spec="f32")
    col.add_texts(DOCS)
    col = col.begin_upgrade(new, keep_old_encoder=False)
    up = col.upgrade
    assert up.report["recall"] > 0.9  # an (almost) exact linear map exists
    res = col.search_texts(QUERIES, k=10, exact=True)
    # what the new model would return after a full re-embedding
    truth = np.argsort(-(new.encode(QUERIES, kind="query") @ new.encode(DOCS).T), axis=1)[:, :10]
    hits = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(res.ids, truth)])
    assert hits > 0.9
    # mid-backfill the merged result is the reference merge of calibrated adapted scores
    col.backfill(limit=120, progress=False)
    res = col.search_texts(QUERIES, k=10, exact=True)
    q = new.encode(QUERIES, kind="query")
    old_scores = up.calibrator.transform(up.adapter.transform(q) @ old.encode(DOCS[120:]).T)
    scores = np.concatenate([q @ new.encode(DOCS[:120]).T, old_scores], axis=1)
    assert (res.ids == np.argsort(-scores, axis=1, kind="stable")[:, :10]).all()
    assert hits > 0.9 and np.mean([len(set(a) & set(b)) / 10 for a, b in zip(res.ids, truth)]) > 0.9
    # old-model query vectors (existing clients) reach the backfilled half through the reverse
    # bridge: the same reference merge, directions swapped, and the old model's own top-10
    old_q = old.encode(QUERIES, kind="query")
    res = col.search(old_q, k=10, exact=True)
    new_scores = up.to_new.calibrator.transform(
        up.to_new.adapter.transform(old_q) @ new.encode(DOCS[:120]).T
    )
    scores = np.concatenate([new_scores, old_q @ old.encode(DOCS[120:]).T], axis=1)
    assert (res.ids == np.argsort(-scores, axis=1, kind="stable")[:, :10]).all()
    old_truth = np.argsort(-(old_q @ old.encode(DOCS).T), axis=1)[:, :10]
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(res.ids, old_truth)]) > 0.9
    assert set(res.ids.ravel()) & set(range(120))  # the backfilled half is reached


def test_sample_pairs_and_texts(tmp_path):
    col = _parent(tmp_path / "c", n=60)
    texts = [f"sample {i}" for i in range(50)]
    with pytest.raises(slimvec.InvalidInputError, match=r"shape \(n, 16\)"):
        col.begin_upgrade(new_model(), sample_pairs=(new_model().encode(texts), np.ones((50, 3))))
    with pytest.raises(slimvec.InvalidInputError, match="at least"):
        col.begin_upgrade(new_model(), sample_texts=texts[:3])
    assert "upgrade" not in col.manifest.extra
    col = col.begin_upgrade(new_model(), sample_texts=texts, adapter="procrustes")
    up = col.upgrade
    assert up.report["n_pairs"] == 50 and up.adapter.kind == "procrustes"
    up.backfill(limit=30, progress=False)
    assert up.refit_adapter()["kind"] == "procrustes"  # the kind asked for, not "auto"


def test_begin_upgrade_errors(tmp_path):
    plain = slimvec.create(tmp_path / "plain", dim=16)
    plain.add(np.ones((3, 16), np.float32))
    with pytest.raises(slimvec.InvalidInputError, match="has no encoder"):
        plain.begin_upgrade(new_model())
    no_text = slimvec.create(tmp_path / "notext", encoder=old_model())
    with pytest.raises(slimvec.InvalidInputError, match="is empty"):
        no_text.begin_upgrade(new_model())
    no_text.add(old_model().encode(DOCS[:20]))
    with pytest.raises(slimvec.InvalidInputError, match="stores no texts"):
        no_text.begin_upgrade(new_model())
    col = _parent(tmp_path / "c", n=60)
    with pytest.raises(slimvec.InvalidInputError, match="already uses"):
        col.begin_upgrade(old_model())
    upgrading = col.begin_upgrade(new_model())
    with pytest.raises(slimvec.InvalidInputError, match="already in progress"):
        upgrading.begin_upgrade(HashEncoder("third", 8, 5))
    # the handle it began from serves one space only: it refuses, saying what to do
    with pytest.raises(slimvec.InvalidInputError, match="use the collection begin_upgrade"):
        col.search_texts("perl")
    with pytest.raises(slimvec.InvalidInputError, match=r"open it again with slimvec\.open"):
        slimvec.Collection(tmp_path / "c")
    assert not hasattr(plain, "backfill")  # only an upgrading collection has the steps


def test_backfill_names_documents_without_text(tmp_path):
    col = _parent(tmp_path / "c", n=40)
    col.add(old_model().encode(["a", "b"]), ids=[500, 501])  # vectors without texts
    col = col.begin_upgrade(new_model())
    up = col.upgrade
    assert up.status().missing_texts == 2
    with pytest.raises(slimvec.InvalidInputError, match=r"no stored text.*\[500, 501\]"):
        col.backfill(progress=False)
    assert len(up.new_space) == 0  # nothing moved
    up.delete([500, 501])
    assert col.backfill(progress=False) == 40


CRASH = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, sys.argv[3])
    import slimvec
    from slimvec.collection import Collection
    from slimvec.store.manifest import Manifest
    from test_upgrade import new_model, old_model

    path, point = sys.argv[1], sys.argv[2]
    col = slimvec.open(path, encoder=old_model())
    up = col.upgrade.use_encoder(new_model())
    calls = {"n": 0}

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "before_old_delete":  # 2nd batch is in the new space, still live in the old
        original = Collection.delete
        def delete(self, ids=None, filter=None):
            calls["n"] += 1
            if calls["n"] == 2:
                die()
            return original(self, ids, filter)
        Collection.delete = delete
    elif point == "mid_new_commit":  # 2nd batch half-written to the new space's log
        import slimvec.engine.writer as c
        original = c.append_record
        def append(path, offset, record):
            if "spaces" in str(path) and record.kind == "add":
                calls["n"] += 1
                if calls["n"] == 2:
                    blob = record.to_bytes()
                    fd = os.open(path, os.O_WRONLY)
                    os.pwrite(fd, blob[: len(blob) // 2], offset)
                    die()
            return original(path, offset, record)
        c.append_record = append
    elif point == "begin":  # the new space is created, the parent's commit never happens
        original = Manifest.save
        def save(self, directory):
            if "upgrade" in self.extra:
                die()
            return original(self, directory)
        Manifest.save = save
    up.backfill(batch_size=30, progress=False)
    print("finished without crashing")
    """
)


def _run(path, point):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-c", CRASH, str(path), point, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.mark.parametrize("point", ["before_old_delete", "mid_new_commit"])
def test_backfill_resumes_after_kill(tmp_path, point):
    n = 150
    col = _parent(tmp_path / "c", n=n)
    col = col.begin_upgrade(new_model())
    col.add_texts(["added before the crash"])
    col.close()
    proc = _run(tmp_path / "c", point)
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    again = slimvec.open(tmp_path / "c", encoder=old_model())
    up = again.upgrade.use_encoder(new_model())
    status = up.status()
    # first batch fully moved; second batch in both spaces or in the old one only
    assert status.in_both == (30 if point == "before_old_delete" else 0)
    assert status.old_count == n - 30
    assert status.new_count == 1 + 30 + status.in_both
    res = again.search_texts(QUERIES, k=10, exact=True)
    assert all(len(set(row)) == 10 for row in res.ids.tolist())  # no duplicates in results
    assert (res.ids == _reference(again, up, QUERIES, 10)).all()

    assert again.backfill(batch_size=40, progress=False) == n - 30
    done = again.finish_upgrade()
    ids = done.live_ids()
    assert len(ids) == len(np.unique(ids)) == n + 1
    assert set(ids.tolist()) == set(range(n + 1))
    assert done.texts(np.arange(n)) == DOCS[:n]
    assert done.metadata(np.arange(n)) == [{"i": i} for i in range(n)]


def test_crash_before_begin_commit_leaves_the_collection_as_it_was(tmp_path):
    _parent(tmp_path / "c", n=60).close()
    before = (tmp_path / "c" / "MANIFEST.json").read_text()
    script = CRASH.replace("up = col.upgrade.use_encoder(new_model())", "up = None").replace(
        "up.backfill(batch_size=30, progress=False)", "col.begin_upgrade(new_model())"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "c"), "begin", str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (tmp_path / "c" / "MANIFEST.json").read_text() == before
    assert list((tmp_path / "c" / "spaces").iterdir())  # an orphan new space was left
    again = slimvec.open(tmp_path / "c", encoder=old_model())
    assert not isinstance(again, slimvec.UpgradingCollection) and len(again) == 60
    up = again.begin_upgrade(new_model()).upgrade  # cleans the orphan up and works
    assert [p.name for p in (tmp_path / "c" / "spaces").iterdir()] == [up.new_space.path.name]
    left = sorted(p.name for p in (tmp_path / "c").glob("upgrade-*.npz"))
    assert left == sorted(_file_names(up.record)) and len(left) == 5  # 2 bridges + dual


def test_keyword_search_covers_both_spaces_during_an_upgrade(tmp_path):
    col = _parent(tmp_path / "c")
    col = col.begin_upgrade(new_model())
    up = col.upgrade
    (fresh,) = col.add_texts(["zebra crossing manual"])
    assert col.search_texts("zebra", k=3, mode="sparse").ids[0].tolist() == [fresh, -1, -1]
    up.backfill(batch_size=32, limit=100, progress=False)
    res = col.search_texts("perl", k=60, mode="sparse")
    found = res.ids[0][res.ids[0] >= 0]
    expected = [i for i, text in enumerate(DOCS) if "perl" in text]
    assert sorted(found.tolist()) == expected  # each once, from whichever space holds it
    hybrid = col.search_texts(["zebra crossing"], k=1, mode="hybrid")
    assert hybrid.ids[0, 0] == fresh


def test_keyword_search_counts_an_id_in_both_spaces_once(tmp_path):
    col = _parent(tmp_path / "c")
    col = col.begin_upgrade(new_model())
    up = col.upgrade
    up.new_space.add_texts([DOCS[0]], ids=[0])  # as an interrupted backfill leaves it
    res = col.search_texts("perl", k=60, mode="sparse").ids[0]
    found = res[res >= 0].tolist()
    assert len(found) == len(set(found)) and 0 in found


def test_refit_adapter_on_backfilled_pairs(tmp_path):
    col = _parent(tmp_path / "c")
    col = col.begin_upgrade(new_model(), keep_old_encoder=False)
    up = col.upgrade
    with pytest.raises(slimvec.InvalidInputError, match="backfill more"):
        up.refit_adapter()
    up.backfill(batch_size=64, limit=120, progress=False)
    stray = tmp_path / "c" / "upgrade-000999-to_old-adapter.npz"  # a refit killed mid-write
    stray.write_bytes(b"partial")
    report = up.refit_adapter()
    assert not stray.exists()
    record = json.loads((tmp_path / "c" / "MANIFEST.json").read_text())["extra"]["upgrade"]
    assert record["sample"] == {"source": "backfilled", "pairs": 120, "query_probes": 0}
    assert record["report"] == report
    assert sorted(p.name for p in (tmp_path / "c").glob("upgrade-*.npz")) == sorted(
        _file_names(record)
    )
    reopened = slimvec.open(tmp_path / "c", encoder=old_model())
    reopened.upgrade.use_encoder(new_model())
    np.testing.assert_array_equal(
        reopened.search_texts(QUERIES, k=10).ids, col.search_texts(QUERIES, k=10).ids
    )


@pytest.mark.parametrize("refit", [True, False])
def test_backfill_refits_the_adapter_as_pairs_double(tmp_path, refit):
    col = _parent(tmp_path / "c")
    col = col.begin_upgrade(new_model(), sample_texts=DOCS[:30], keep_old_encoder=False)
    up = col.upgrade
    up.backfill(batch_size=32, progress=False, refit=refit)
    sample = up.record["sample"]
    # 30 pairs -> refit at 64 backfilled (>= 60) -> at 128 (>= 128) -> 256 never comes (240 docs)
    begun = {"source": "texts", "pairs": 30, "query_probes": 30}  # a 4-word sentence each
    assert sample == ({"source": "backfilled", "pairs": 128, "query_probes": 0} if refit else begun)
    assert up.report["n_pairs"] == sample["pairs"] + sample["query_probes"]


def test_texts_and_metadata_of_documents_added_mid_upgrade(tmp_path):
    col = _parent(tmp_path / "c", n=60)
    col = col.begin_upgrade(new_model())
    (added,) = col.add_texts(["written during the upgrade"], metadata=[{"new": True}])
    assert col.texts([added, 0]) == ["written during the upgrade", DOCS[0]]
    assert col.metadata([added, 0]) == [{"new": True}, {"i": 0}]
    reopened = slimvec.open(tmp_path / "c", encoder=old_model())
    assert reopened.texts([added]) == ["written during the upgrade"]


def test_close_releases_the_new_space(tmp_path):
    col = _parent(tmp_path / "c", n=60)
    col = col.begin_upgrade(new_model())
    up = col.upgrade
    col.close()
    with pytest.raises(slimvec.InvalidInputError, match="closed"):
        up.new_space.search(np.ones((1, 24)), k=1)
    with pytest.raises(slimvec.InvalidInputError, match="closed"):
        col.search(np.ones((1, 16)), k=1)


def _by_name(monkeypatch):
    """The fake models loadable by name, as real ones are (what a handle that did not run the
    upgrade needs to load the new model)."""
    from slimvec.encoders import registry

    models = {"hash-old": old_model, "hash-new": new_model}
    monkeypatch.setitem(registry.NAMED_ENCODERS, "hash-", lambda name, device: models[name]())


def _hit_at_10(col) -> float:
    """Share of queries (each a document's own text) whose document is in its top 10."""
    found = col.search_texts(DOCS[:50], k=10).ids
    return float(np.mean([i in row for i, row in enumerate(found.tolist())]))


def test_open_handles_follow_an_upgrade_finished_elsewhere(tmp_path, monkeypatch):
    """README: readers follow commits. A handle open before another handle finished the
    upgrade serves the new model at its next call, never the old space with the new model."""
    _by_name(monkeypatch)
    _parent(tmp_path / "c", n=80).close()
    before = slimvec.open(tmp_path / "c")
    assert _hit_at_10(before) == 1.0
    writer = slimvec.open(tmp_path / "c").begin_upgrade(new_model())
    writer.backfill(limit=40, progress=False)
    # a handle on one space cannot see every document now: it says to reopen, never guesses
    with pytest.raises(slimvec.InvalidInputError, match=r"open it again with slimvec\.open"):
        before.search_texts("perl")
    reader = slimvec.open(tmp_path / "c")
    assert isinstance(reader, slimvec.UpgradingCollection)
    assert _hit_at_10(reader) == 1.0  # mid-upgrade: both spaces, still found
    writer.backfill(progress=False)
    done = writer.finish_upgrade()
    assert _hit_at_10(reader) == 1.0  # the reader moved to the new space
    assert reader.path == done.path and reader.dim == 24 and reader.upgrade is None
    assert reader.encoder.name == "hash-new" and len(reader) == 80
    with pytest.raises(slimvec.InvalidInputError, match="24"):
        reader.search(old_model().encode(["old-model query"], kind="query"), k=3)
    # the handle that finished follows too, keeping the model its upgrade used
    assert _hit_at_10(writer) == 1.0 and writer.path == done.path
    # writes through an old handle land in the new space, where slimvec.open finds them
    reader.add_texts(["written after the upgrade"])
    assert len(slimvec.open(tmp_path / "c")) == 81
