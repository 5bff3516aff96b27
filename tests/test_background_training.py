"""Large IVF trainings run beside the writes (``engine.background``): the add that crosses
returns with the collection still searched as before, writes go on meanwhile and get lists,
the lists commit in one step, and a training that no longer fits is dropped, never installed.
Kill -9 mid-training is in test_auto_index.py (``where="background"``)."""

import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import slimvec
from killpoints import child_env
from slimvec.engine import writer
from slimvec.engine.background import THREAD_NAME
from slimvec.index import ivf, sizing, training
from test_auto_index import _data

DIM = 32
AUTO_ROWS = 800


@pytest.fixture(autouse=True)
def _small(monkeypatch):
    monkeypatch.setattr(sizing, "AUTO_ROWS", AUTO_ROWS)
    monkeypatch.setattr(sizing, "BACKGROUND_ROWS", 0)  # every training on the thread


@pytest.fixture
def gate(monkeypatch):
    """Background k-means waits at this event until the test sets it (a slow training, its
    staging folder made); trainings inside a commit (a refit's) do not wait."""
    event, entered = threading.Event(), threading.Event()
    real = sizing.train_centroids

    def train_centroids(*args, **kwargs):
        if threading.current_thread().name == THREAD_NAME:
            entered.set()
            assert event.wait(60), "the test never released the training"
        return real(*args, **kwargs)

    monkeypatch.setattr(sizing, "train_centroids", train_centroids)
    yield event, entered
    event.set()


def _staging(path) -> list[str]:
    folder = path / ivf.IVF_DIR
    return [p.name for p in folder.glob(f"{training.STAGING}*")]


def _top1(col, x: np.ndarray, rows: np.ndarray, **kw) -> np.ndarray:
    return col.search(x[rows], 1, **kw).ids[:, 0]


def test_the_crossing_add_returns_and_the_lists_commit_later(tmp_path, gate):
    release, entered = gate
    col = slimvec.create(tmp_path / "c", dim=DIM)
    x = _data(1_500, 1)
    col.add(x[:900])  # crosses 800: due, deferred
    assert entered.wait(30)
    info = col.info()["ivf"]
    assert info["state"] == "flat" and info["training"]["state"] == "running in the background"
    probe = np.arange(0, 900, 37)
    assert (_top1(col, x, probe) == probe).all()  # the flat scan, meanwhile

    col.add(x[900:1_460])  # a segment written while the training runs
    col.add(x[1_460:])  # 40 rows: into the log
    assert col.info()["ivf"]["state"] == "flat"
    assert _staging(col.path)  # spared by these writes' sweeps

    release.set()
    assert col.wait_for_index(30)
    info = col.info()["ivf"]
    assert info["state"] == "trained" and info["training"]["outcome"] == "installed"
    assert info["trained_on"] == 900  # the snapshot it was trained from
    assert info["nlist"] == sizing.suggested_nlist(900)
    # every committed segment, including the one written meanwhile, has lists
    assert sum(info["sizes"]) == 1_460 and info["log_rows_scanned_flat"] == 40
    probe = np.arange(0, 1_500, 29)
    assert (_top1(col, x, probe, nprobe=10**6) == probe).all()
    assert not _staging(col.path)
    assert {p.name for p in (col.path / ivf.IVF_DIR).iterdir()} == ivf.ivf_dirs(col.manifest)

    again = slimvec.open(col.path)  # another handle sees the committed lists
    assert again.info()["ivf"]["state"] == "trained" and again.info()["ivf"]["trained_on"] == 900
    again.close()
    col.close()


def test_close_waits_for_the_training(tmp_path, gate):
    release, entered = gate
    col = slimvec.create(tmp_path / "c", dim=DIM)
    col.add(_data(900, 1))
    assert entered.wait(30)
    threading.Timer(0.2, release.set).start()
    col.close()
    again = slimvec.open(tmp_path / "c")
    assert again.info()["ivf"]["state"] == "trained"
    again.close()


def test_a_training_the_collection_outgrew_trains_again_on_what_is_there(
    tmp_path, gate, monkeypatch
):
    """A bulk load: 4x the snapshot's rows committed while it trained. Its lists would be
    retrained at once, so the thread trains a new snapshot instead of installing them."""
    monkeypatch.setattr(writer, "REFIT_ENOUGH", 0)  # growth alone, no refit of the codes
    release, entered = gate
    col = slimvec.create(tmp_path / "c", dim=DIM)
    x = _data(3_640, 1)
    col.add(x[:900])  # crosses 800: a training of 900 rows starts and waits
    assert entered.wait(30)
    col.add(x[900:3_600])  # 3,600 = 4 x 900 committed meanwhile
    col.add(x[3_600:])  # 40 rows: into the log
    release.set()
    assert col.wait_for_index(60)
    info = col.info()["ivf"]
    assert info["training"]["outcome"] == "installed"
    assert info["training"]["restarted_outgrown"] == 1
    # the new snapshot: the segments committed when it was taken (the log is scanned flat)
    assert info["trained_on"] == 3_600 and info["nlist"] == sizing.suggested_nlist(3_600)
    assert sum(info["sizes"]) == 3_600 and info["log_rows_scanned_flat"] == 40
    assert not _staging(col.path)
    probe = np.arange(0, 3_640, 53)
    assert (_top1(col, x, probe, nprobe=10**6) == probe).all()
    col.close()


def test_a_merge_while_a_retrain_is_due_joins_the_old_lists(tmp_path, gate, monkeypatch):
    """The commits before a deferred retrain lands keep the old lists complete: a merge among
    them joins its segments' lists rather than encoding their rows again."""
    monkeypatch.setattr(writer, "REFIT_ENOUGH", 0)  # growth alone, no refit of the codes
    release, entered = gate
    col = slimvec.create(tmp_path / "c", dim=DIM)
    x = _data(4_400, 1)
    col.add(x[:900])
    release.set()
    assert col.wait_for_index(30)
    release.clear()
    col.add(x[900:3_600])  # 4 x 900: the retrain starts and waits
    assert entered.wait(30)
    encoded, write_lists = [], ivf.IVFIndex.write_lists

    def spy(self, path, entry, folder):
        encoded.append(entry.name)
        write_lists(self, path, entry, folder)

    monkeypatch.setattr(ivf.IVFIndex, "write_lists", spy)
    for lo in range(3_600, 4_400, 100):  # the eighth 100-row segment merges the run
        col.add(x[lo : lo + 100])
    merged = col.manifest.segments[-1]
    assert merged.rows == 800 and len(encoded) == 8 and merged.name not in encoded
    release.set()
    assert col.wait_for_index(30)
    assert col.info()["ivf"]["trained_on"] == 3_600 and sum(col.info()["ivf"]["sizes"]) == 4_400
    probe = np.arange(0, 4_400, 61)
    assert (_top1(col, x, probe, nprobe=10**6) == probe).all()
    col.close()


def test_a_refit_meanwhile_drops_the_training(tmp_path, gate):
    """The pipeline refits at 4x the rows it was fitted on (700 here): the codes' space
    changes, the refit trains its own lists, and the stale training must not land."""
    release, entered = gate
    col = slimvec.create(tmp_path / "c", dim=DIM)
    x = _data(2_900, 1)
    col.add(x[:700])
    col.add(x[700:900])  # crosses 800: the background training starts and waits
    assert entered.wait(30)
    col.add(x[900:])  # 2,900 >= 4 x 700: refit, trained in its own commit
    refitted = col.manifest.extra["ivf"]
    assert refitted["trained_on"] == 2_900
    release.set()
    assert col.wait_for_index(30)
    info = col.info()["ivf"]
    assert info["training"]["outcome"].startswith("dropped")
    assert col.manifest.extra["ivf"] == refitted and not _staging(col.path)
    probe = np.arange(0, 2_900, 41)
    assert (_top1(col, x, probe, nprobe=10**6) == probe).all()
    col.close()


OTHER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import slimvec
    from slimvec.index import sizing

    sizing.AUTO_ROWS = int(sys.argv[2])
    col = slimvec.open(sys.argv[1])
    if sys.argv[3] == "delete":
        col.delete([5])  # one write: its transaction sweeps leftovers
    else:
        col.add(np.random.default_rng(3).standard_normal((600, 32)).astype(np.float32))
    col.close()
    """
)


@pytest.mark.parametrize("write", ["delete", "train"])
def test_another_process_writing_meanwhile(tmp_path, gate, write):
    """Another process's write sweeps leftovers but spares a running training's staging;
    if that process trains lists itself (in its commit), the staged ones are dropped."""
    release, entered = gate
    col = slimvec.create(tmp_path / "c", dim=DIM)
    x = _data(900, 1)
    col.add(x)
    assert entered.wait(30)
    staging = _staging(col.path)
    proc = subprocess.run(
        [sys.executable, "-c", OTHER, str(col.path), str(AUTO_ROWS), write],
        capture_output=True, text=True, env=child_env(), timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert _staging(col.path) == staging  # spared: this process still runs
    other = col.manifest.extra.get("ivf")
    release.set()
    assert col.wait_for_index(30)
    outcome = col.info()["ivf"]["training"]["outcome"]
    if write == "delete":
        assert outcome == "installed" and len(col) == 899
        assert sum(col.info()["ivf"]["sizes"]) == 899
    else:
        assert outcome.startswith("dropped") and col.manifest.extra["ivf"] == other
        assert other["trained_on"] == 1_500
    assert not _staging(col.path)
    probe = np.arange(6, 900, 31)
    assert (_top1(col, x, probe, nprobe=10**6) == probe).all()
    col.close()


def test_a_failed_training_is_reported_and_retried(tmp_path, monkeypatch, caplog):
    real, calls = training.StagedLists.train, []

    def train(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk full (simulated)")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(training.StagedLists, "train", train)
    col = slimvec.create(tmp_path / "c", dim=DIM)
    x = _data(1_000, 1)
    col.add(x[:900])
    assert col.wait_for_index(30)
    info = col.info()["ivf"]
    assert info["state"] == "flat" and "disk full" in info["training"]["outcome"]
    assert "background IVF training" in caplog.text
    assert not _staging(col.path)
    col.add(x[900:])  # a segment commit: the training is still due, and starts again
    assert col.wait_for_index(30)
    info = col.info()["ivf"]
    assert info["state"] == "trained" and info["training"]["outcome"] == "installed"
    col.close()


def test_a_segment_swept_during_the_catch_up_is_left_to_the_install(tmp_path, gate, monkeypatch):
    """Segments committed while the training ran are listed outside the lock first; one a
    merge swept before it was read (simulated) must not fail the training: the install
    builds what is missing under the lock."""
    release, entered = gate
    real, calls = training.StagedLists.build, []

    def build(self, manifest):
        calls.append(len(manifest.segments))
        if len(calls) == 2:  # the first catch-up round
            raise FileNotFoundError("seg-x/original.npy (swept by a merge)")
        return real(self, manifest)

    monkeypatch.setattr(training.StagedLists, "build", build)
    col = slimvec.create(tmp_path / "c", dim=DIM)
    x = _data(1_400, 1)
    col.add(x[:900])
    assert entered.wait(30)
    col.add(x[900:])  # a segment committed while the training runs
    release.set()
    assert col.wait_for_index(30)
    info = col.info()["ivf"]
    assert info["training"]["outcome"] == "installed" and len(calls) == 3
    assert info["state"] == "trained" and sum(info["sizes"]) == 1_400
    probe = np.arange(0, 1_400, 23)
    assert (_top1(col, x, probe, nprobe=10**6) == probe).all()
    col.close()
