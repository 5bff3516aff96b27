"""The default spec partitions itself (``ivf:auto``): flat while small, k-means lists once the
collection passes ``index.sizing.AUTO_ROWS``, N following sqrt(n) at every retrain; each
transition reopened, reported by ``info()`` and killed with -9 halfway."""

import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import slimvec
from conftest import recall
from killpoints import child_env
from slimvec.engine import writer
from slimvec.engine.rows import TABLE_FILES
from slimvec.errors import CorruptCollectionError, InvalidInputError
from slimvec.index import calibrate, ivf, sizing
from slimvec.spec import AUTO_LISTS, DEFAULT_SPEC, parse_spec
from slimvec.store.manifest import Manifest
from slimvec.store.segments import has_files

DIM = 32
#: Lower than the measured crossover so that small sets partition (the rule is unchanged).
SMALL_AUTO_ROWS = 800


def _data(n: int, seed: int, spread: float = 0.6) -> np.ndarray:
    centers = np.random.default_rng(0).standard_normal((50, DIM))
    rng = np.random.default_rng(seed)
    x = centers[rng.integers(0, 50, n)] + spread * rng.standard_normal((n, DIM))
    return x.astype(np.float32)


@pytest.fixture(autouse=True)
def _small_threshold(monkeypatch):
    monkeypatch.setattr(sizing, "AUTO_ROWS", SMALL_AUTO_ROWS)


def test_the_default_spec_partitions_itself():
    spec = parse_spec(DEFAULT_SPEC)
    assert spec.ivf == AUTO_LISTS and str(spec) == DEFAULT_SPEC == "ivf:auto | rabitq:2*40 > f32"
    assert str(parse_spec("IVF:AUTO|rabitq*10>f32")) == "ivf:auto | rabitq*10 > f32"


def test_small_collections_stay_flat_and_say_why(tmp_path):
    col = slimvec.create(tmp_path / "c", dim=DIM)
    x = _data(SMALL_AUTO_ROWS - 1, 1)
    col.add(x)
    info = col.info()["ivf"]
    assert info["state"] == "flat" and info["auto"] and info["nlist"] == "auto"
    assert info["train_at"] == SMALL_AUTO_ROWS and "flat scan is as fast" in info["note"]
    assert col._view.tables is not None  # the flat table scan serves the first pass
    res = col.search(x[:10], 5, nprobe=3)  # any nprobe is taken while flat, and unused
    assert (res.ids[:, 0] == np.arange(10)).all()
    assert res.explain["first_pass"] == "flat table scan" or res.explain["plan"] == "exact-scan"


def test_flat_then_trained_then_retrained_with_more_lists(tmp_path):
    path = tmp_path / "c"
    col = slimvec.create(path, dim=DIM)
    x = _data(SMALL_AUTO_ROWS, 1)
    col.add(x)
    info = col.info()["ivf"]
    first = sizing.suggested_nlist(SMALL_AUTO_ROWS)
    assert info["state"] == "trained" and info["nlist"] == first == 16
    assert info["trained_on"] == SMALL_AUTO_ROWS and "ivf:auto" in info["note"]
    assert col.manifest.extra["ivf"]["nlist"] == first
    assert col._view.tables is None  # the lists serve the first pass now
    assert sum(info["sizes"]) == SMALL_AUTO_ROWS

    more = _data(3 * SMALL_AUTO_ROWS, 2)  # 4x the rows it was trained on: retrained
    col.add(more)
    info = col.info()["ivf"]
    second = sizing.suggested_nlist(4 * SMALL_AUTO_ROWS)
    assert info["nlist"] == second == 64 and info["trained_on"] == 4 * SMALL_AUTO_ROWS
    assert sum(info["sizes"]) == len(col) == 4 * SMALL_AUTO_ROWS
    assert info["default_nprobe"] == col.manifest.extra["ivf"]["nprobe"]

    everything = np.concatenate([x, more])
    q = _data(40, 9)
    truth = col.search(q, 10, exact=True).ids
    assert recall(col.search(q, 10, nprobe=10**6).ids, truth) >= 0.99  # capped at every list
    assert recall(col.search(q, 10).ids, truth) >= 0.8
    col.close()
    again = slimvec.open(path)
    assert again.info()["ivf"]["nlist"] == second and len(again) == len(everything)
    assert (again.search(everything[:20], 1, nprobe=second).ids[:, 0] == np.arange(20)).all()
    again.close()


def test_an_explicit_nlist_still_wins(tmp_path, monkeypatch):
    monkeypatch.setattr(sizing, "FLAT_ROWS", 700)
    col = slimvec.create(tmp_path / "c", dim=DIM, spec="ivf:8 | rabitq:2*10 > f32")
    col.add(_data(3_000, 1))
    assert col.info()["ivf"]["nlist"] == 8 and not col.info()["ivf"]["auto"]
    with pytest.raises(InvalidInputError, match=r"outside 1\.\.8"):
        col.search(_data(1, 2), 5, nprobe=9)


def test_deletes_below_the_threshold_keep_the_lists(tmp_path):
    col = slimvec.create(tmp_path / "c", dim=DIM)
    col.add(_data(SMALL_AUTO_ROWS + 200, 1))
    col.delete(np.arange(600))
    col.compact()
    info = col.info()["ivf"]
    assert info["state"] == "trained" and sum(info["sizes"]) == len(col) == 400


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("nlist", "many", "'many' IVF lists"), ("nprobe", 10**9, "nprobe 1000000000")],
)
def test_a_damaged_list_count_or_nprobe_is_reported(tmp_path, key, value, message):
    path = tmp_path / "c"
    col = slimvec.create(path, dim=DIM)
    col.add(_data(SMALL_AUTO_ROWS, 1))
    col.close()
    manifest = Manifest.load(path)
    manifest.extra["ivf"][key] = value
    manifest.save(path)
    with pytest.raises(CorruptCollectionError, match=message):
        slimvec.open(path)


def test_table_files_are_written_only_while_flat(tmp_path, monkeypatch):
    """The flat table scan's files serve an untrained collection; once the lists are trained
    new segments are written without them, and a collection that becomes flat again (a refit
    leaving too few rows to train) gets them back at its next write."""
    col = slimvec.create(tmp_path / "c", dim=DIM)
    x = _data(1_300, 1)
    col.add(x[:700])
    col.add(x[700:900])  # crosses 800: trained in this commit
    names = [e.name for e in col.manifest.segments]
    assert [has_files(col.path, n, TABLE_FILES) for n in names] == [True, True]
    col.add(x[900:1_000])
    assert not has_files(col.path, col.manifest.segments[-1].name, TABLE_FILES)
    assert col.info()["ivf"]["state"] == "trained" and col._view.tables is None

    monkeypatch.setattr(sizing, "AUTO_ROWS", 10**6)  # too few rows to train after a refit
    monkeypatch.setattr(writer.Writer, "refit_due", lambda self, view: True)
    col.compact()  # rewritten by the trained format (no tables), then flat: codes scanned
    assert col.info()["ivf"]["state"] == "flat" and col._view.tables is None
    assert (col.search(x[:30], 1).ids[:, 0] == np.arange(30)).all()
    monkeypatch.undo()
    monkeypatch.setattr(sizing, "AUTO_ROWS", 10**6)
    col.add(x[1_000:])  # the next write gives every segment its tables
    assert all(has_files(col.path, e.name, TABLE_FILES) for e in col.manifest.segments)
    assert col._view.tables is not None
    assert (col.search(x[::50], 1).ids[:, 0] == np.arange(0, 1_300, 50)).all()
    col.close()


def _crowded(path, crowd: np.ndarray):
    """800 spread rows (trained), then 100 and 500 rows all near one point."""
    col = slimvec.create(path, dim=DIM)
    col.add(_data(SMALL_AUTO_ROWS, 1))
    col.add(crowd[:100])
    first = col.info()["ivf"]
    col.add(crowd[100:])
    return col, first


def test_lists_crowded_by_new_rows_are_rebalanced(tmp_path, monkeypatch):
    """New rows all near one place crowd a few lists: retrained once the skew is twice what
    the lists had when trained, long before 4x growth, and the new lists spread them again."""
    rng = np.random.default_rng(5)
    crowd = (_data(1, 3) + 0.3 * rng.standard_normal((600, DIM))).astype(np.float32)
    monkeypatch.setattr(sizing, "REBALANCE_SKEW", float("inf"))
    kept, _ = _crowded(tmp_path / "kept", crowd)  # the same adds, never rebalanced
    kept_info = kept.info()["ivf"]
    trained = kept_info["list_sizes"]["skew_when_trained"]
    assert kept_info["trained_on"] == SMALL_AUTO_ROWS
    assert kept_info["list_sizes"]["skew"] >= 2 * trained

    monkeypatch.setattr(sizing, "REBALANCE_SKEW", 2.0)
    col, first = _crowded(tmp_path / "c", crowd)
    assert first["trained_on"] == SMALL_AUTO_ROWS  # 900 rows: not crowded enough yet
    assert first["list_sizes"]["skew"] < 2 * trained == first["list_sizes"]["rebalance_at_skew"]
    info = col.info()["ivf"]
    assert info["trained_on"] == 1_400 < sizing.RETRAIN_GROWTH * SMALL_AUTO_ROWS  # rebalanced
    assert info["list_sizes"]["skew"] < kept_info["list_sizes"]["skew"] / 2
    assert info["list_sizes"]["skew_when_trained"] == info["list_sizes"]["skew"]
    truth = col.search(crowd[:20], 10, exact=True).ids
    assert recall(col.search(crowd[:20], 10, nprobe=10**6).ids, truth) >= 0.99
    kept.close()
    col.close()


# -- kill -9 at each transition ------------------------------------------------------------------
CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import slimvec
    from killpoints import die, die_after
    from slimvec.engine import writer
    from slimvec.index import ivf, sizing
    from slimvec.index import training as training_module

    path, point, added = sys.argv[1], sys.argv[2], np.load(sys.argv[3])
    sizing.AUTO_ROWS = int(sys.argv[5])
    if sys.argv[6] == "background":  # the training runs on the handle's trainer thread
        sizing.BACKGROUND_ROWS = 0
        writer.REFIT_ENOUGH = 0  # else the refit at 4x (trained in its commit) comes first

    def training(target):  # the training's own files (not the lists a commit adds)
        return training_module.STAGING in str(target)

    if point == "after_centroids":  # dies as the first segment's lists begin
        real_write = ivf.IVFIndex.write_lists
        def write(self, where, entry, folder):
            if training(folder):
                die()
            real_write(self, where, entry, folder)
        ivf.IVFIndex.write_lists = write
    elif point == "after_lists":
        real_write = ivf.IVFIndex.write_lists
        def write(self, where, entry, folder):
            real_write(self, where, entry, folder)
            if training(folder):
                die()
        ivf.IVFIndex.write_lists = write
    elif point == "staged":  # trained, listed and calibrated; not yet installed
        die_after(training_module.StagedLists, "train")
    elif point == "mid_lists":  # a segment's lists half written: codes, no scalars
        real, calls = ivf.save_array, []
        def save(target, *a, **k):
            calls.append(training(target))
            if sum(calls) == 2:
                die()
            real(target, *a, **k)
        ivf.save_array = save
    col = slimvec.open(path)
    col.add(added)
    col.close()  # waits for a background training
    print("finished without crashing")
    """
)


def _kill_adding(path, point: str, added: np.ndarray, where: str) -> None:
    np.save(path.parent / "added.npy", added)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), point, str(path.parent / "added.npy"),
         "-", str(SMALL_AUTO_ROWS), where],
        capture_output=True, text=True, env=child_env(), timeout=300,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr


@pytest.mark.parametrize("point", ["after_centroids", "mid_lists", "after_lists", "staged"])
@pytest.mark.parametrize("transition", ["first training", "retrain", "rebalance"])
@pytest.mark.parametrize("where", ["commit", "background"])
def test_kill_at_each_transition_leaves_the_last_commit(tmp_path, point, transition, where):
    path = tmp_path / "c"
    col = slimvec.create(path, dim=DIM)
    noise = np.random.default_rng(7).standard_normal((1_200, DIM)).astype(np.float32)
    if transition == "first training":  # 700 flat rows; 200 more train the lists
        base, added = _data(SMALL_AUTO_ROWS - 100, 1), noise[:200]
        col.add(base)
    elif transition == "retrain":  # trained on 800, grown to 2,000; 1,200 more reach 4 x 800
        base, added = _data(2_000, 1), noise
        col.add(base[:SMALL_AUTO_ROWS])
        col.add(base[SMALL_AUTO_ROWS:])
    else:  # trained on 800 spread rows; 500 rows near one point crowd a few lists
        crowd = (_data(1, 3) + 0.3 * noise[:600]).astype(np.float32)
        base, added = np.concatenate([_data(SMALL_AUTO_ROWS, 1), crowd[:100]]), crowd[100:]
        col.add(base[:SMALL_AUTO_ROWS])
        col.add(base[SMALL_AUTO_ROWS:])
    before = col.info()["ivf"]
    col.close()
    _kill_adding(path, point, added, where)

    again = slimvec.open(path)
    after = again.info()["ivf"]
    # in the background the add committed before its training began
    assert len(again) == len(base) + (len(added) if where == "background" else 0)
    assert {k: after.get(k) for k in ("state", "nlist", "trained_on")} == {
        k: before.get(k) for k in ("state", "nlist", "trained_on")
    }
    every = {"nprobe": 10**6} if after["state"] == "trained" else {}
    assert (again.search(base[:20], 1, **every).ids[:, 0] == np.arange(20)).all()

    again.add(added)  # the training is (still) due: done in this commit
    info = again.info()["ivf"]
    assert info["state"] == "trained" and info["trained_on"] == len(again)
    assert info["nlist"] == sizing.suggested_nlist(len(again)) and sum(info["sizes"]) == len(again)
    folder = path / ivf.IVF_DIR
    assert {p.name for p in folder.iterdir()} == ivf.ivf_dirs(again.manifest)  # swept
    assert (again.search(base[:20], 1, nprobe=10**6).ids[:, 0] == np.arange(20)).all()
    again.close()


# -- the measured nprobe -------------------------------------------------------------------------
def _independent_recall(col, x: np.ndarray, rows: np.ndarray, nprobe: int) -> float:
    """Recall@10 of the collection's own search for stored vectors ``rows`` (ids = rows),
    each one left out of its own results, against NumPy's exact top-10."""
    found = col.search(x[rows], 11, nprobe=nprobe).ids
    scores = x[rows] @ x.T
    scores[np.arange(len(rows)), rows] = -np.inf
    truth = np.argsort(-scores, axis=1)[:, :10]
    mine = [[i for i in f if i != r][:10] for f, r in zip(found, rows)]
    return recall(np.array(mine), truth)


def test_the_default_nprobe_is_the_smallest_that_holds_recall(tmp_path):
    col = slimvec.create(tmp_path / "c", dim=DIM, metric="ip")
    x = _data(4_000, 1, spread=1.0)  # clusters that overlap: a few lists are not enough
    col.add(x)
    info = col.info()["ivf"]
    stored = col.manifest.extra["ivf"]
    nprobe, claimed = stored["nprobe"], stored["calibrated_recall"]
    assert info["default_nprobe"] == nprobe and f"nprobe {nprobe}" in info["note"]
    assert claimed >= calibrate.GOAL and 1 < nprobe < info["nlist"]

    index, deleted = col._view.ivf, col._view.deleted.array[: len(col)]
    again, measured = calibrate.calibrate(index, col.path, col.manifest, deleted)
    rows = calibrate._sample(deleted, stored["trained_on"])
    assert again == nprobe and measured == pytest.approx(claimed, abs=1e-4)  # deterministic
    assert _independent_recall(col, x, rows, nprobe) == pytest.approx(measured, abs=0.02)
    recall_at = calibrate.shortlist_recall(index, col.path, col.manifest, deleted)
    below = nprobe - max(1, nprobe // calibrate.STEP)  # the smallest, to 1/STEP of its value
    assert recall_at(nprobe) == measured and recall_at(below) < calibrate.GOAL
    q = _data(100, 5, spread=1.0)  # and it holds on queries the sample never saw
    assert recall(col.search(q, 10).ids, col.search(q, 10, exact=True).ids) >= 0.93
