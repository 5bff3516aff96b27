"""kill -9 at any point of a write leaves the last committed state, and the next write works."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import slimvec
from killpoints import child_env

CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import slimvec
    from killpoints import arm

    path, point, action = sys.argv[1], sys.argv[2], sys.argv[3]
    arm(point)

    rng = np.random.default_rng(7)
    col = slimvec.open(path)
    if action == "add":
        x = rng.standard_normal((300, 32)).astype(np.float32)
        col.add(x, ids=np.arange(1000, 1300))
    elif action == "add_one":
        col.add(rng.standard_normal((1, 32)).astype(np.float32), ids=[1000])
    elif action == "delete":
        col.delete(np.arange(0, 100))
    elif action == "flush":
        col.flush()
    elif action == "compact":
        col.compact()
    print("finished without crashing")
    """
)


def _committed(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((500, 32)).astype(np.float32)
    col = slimvec.create(tmp_path / "c", dim=32, spec="binary*10 > int8*4 > f32")
    col.add(x[:250])
    col.add(x[250:], metadata=[{"i": i} for i in range(250)])
    col.delete(np.arange(400, 450))  # a record in the write-ahead log
    return col, x


def _run_child(path, point, action):
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), point, action],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
    )
    return proc


def _check_intact(path, x, expect_new):
    col = slimvec.open(path)
    live = set(range(500)) - set(range(400, 450))
    if expect_new == "add":
        live |= set(range(1000, 1300))
    if expect_new == "add_one":
        live |= {1000}
    if expect_new == "delete":
        live -= set(range(100))
    assert len(col) == len(live)
    res = col.search(x, k=1, exact=True)
    for row, found in enumerate(res.ids[:, 0]):
        if row in live:
            assert found == row
    approx = col.search(x[:50], k=5)
    assert set(approx.ids.ravel()) <= live | {-1}
    assert col.metadata([260]) == [{"i": 10}]
    return col


@pytest.mark.parametrize(
    "point", ["before_segment", "after_segment", "after_sqlite", "mid_manifest", "after_manifest"]
)
def test_kill_during_add(tmp_path, point):
    col, x = _committed(tmp_path)
    col.close()
    proc = _run_child(tmp_path / "c", point, "add")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    committed = point == "after_manifest"
    reopened = _check_intact(tmp_path / "c", x, "add" if committed else None)
    # the next writer cleans up and works; the ids of the lost batch are free again
    if not committed:
        reopened.add(np.ones((2, 32), np.float32), ids=[1000, 1001])
        assert len(slimvec.open(tmp_path / "c")) == 452
        leftovers = {p.name for p in (tmp_path / "c" / "segments").iterdir()}
        assert len(leftovers) == len(reopened.manifest.segments)


@pytest.mark.parametrize("point", ["mid_log", "after_log"])
@pytest.mark.parametrize("action", ["add_one", "delete"])
def test_kill_during_a_small_write(tmp_path, point, action):
    """Small adds and deletes are one log record: torn = not committed, appended = committed."""
    col, x = _committed(tmp_path)
    col.close()
    proc = _run_child(tmp_path / "c", point, action)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    reopened = _check_intact(tmp_path / "c", x, action if point == "after_log" else None)
    # the next small write lands after the committed records (over a torn one) and survives
    before = len(reopened)
    reopened.add(np.ones((1, 32), np.float32), ids=[2000])
    again = slimvec.open(tmp_path / "c")
    assert 2000 in again.live_ids() and len(again) == before + 1
    assert again.metadata([260]) == [{"i": 10}]


@pytest.mark.parametrize(
    "point", ["before_segment", "after_segment", "after_sqlite", "mid_manifest", "after_manifest"]
)
def test_kill_during_a_flush_of_the_log(tmp_path, point):
    """Folding the log into a segment changes no content: intact whichever way it ends."""
    col, x = _committed(tmp_path)
    col.add(x[:1] * 0 + 1, ids=[1000])  # one more record: an add
    col.close()
    proc = _run_child(tmp_path / "c", point, "flush")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    reopened = _check_intact(tmp_path / "c", x, "add_one")
    reopened.flush()
    _check_intact(tmp_path / "c", x, "add_one")
    assert reopened.info()["log_rows"] == 0


@pytest.mark.parametrize("point", ["after_segment", "mid_manifest", "after_manifest"])
def test_kill_during_compact(tmp_path, point):
    col, x = _committed(tmp_path)
    col.close()
    proc = _run_child(tmp_path / "c", point, "compact")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    reopened = _check_intact(tmp_path / "c", x, None)
    reopened.compact()
    _check_intact(tmp_path / "c", x, None)
    assert len(list((tmp_path / "c" / "segments").iterdir())) == 1


def test_kill_at_random_moments_of_a_long_add(tmp_path):
    """Real SIGKILLs from outside, at several moments of a stream of adds (after the writer
    reports 1, 2, 3 committed adds, plus a random delay: robust to a slow machine)."""
    path = tmp_path / "c"
    slimvec.create(path, dim=64, spec="binary*10 > f32")
    writer = textwrap.dedent(
        f"""
        import numpy as np, slimvec
        col = slimvec.open({str(path)!r})
        rng = np.random.default_rng(0)
        start = len(col)
        for b in range(1000):
            x = rng.standard_normal((2000, 64)).astype(np.float32)
            col.add(x, ids=np.arange(start + b * 2000, start + (b + 1) * 2000))
            print("added", flush=True)
        """
    )
    rng = np.random.default_rng(5)
    seen = 0
    for adds in (1, 2, 3):
        proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
        for _ in range(adds):
            assert proc.stdout.readline().strip() == "added"
        time.sleep(float(rng.uniform(0, 0.3)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        col = slimvec.open(path)
        n = len(col)
        assert n % 2000 == 0 and n >= seen + adds * 2000
        seen = n
        res = col.search(np.random.default_rng(1).standard_normal((5, 64)), k=3)
        assert ((res.ids >= 0) & (res.ids < n)).all()
        col.close()


def _committed_default(tmp_path):
    """The default spec (a RaBitQ first stage: segments carry the table-scan files)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((500, 32)).astype(np.float32)
    col = slimvec.create(tmp_path / "c", dim=32)
    col.add(x[:250])
    col.add(x[250:], metadata=[{"i": i} for i in range(250)])
    col.delete(np.arange(400, 450))
    return col, x


def _tables_of(path):
    return [(s / "fastscan.npy").is_file() for s in sorted((path / "segments").iterdir())]


@pytest.mark.parametrize("point", ["mid_tables", "after_tables", "after_manifest"])
def test_kill_while_a_flush_writes_the_table_layout(tmp_path, point):
    """A flush writes the new segment's table-scan files before the commit that names it:
    killed while writing them, the last commit stands, and its search is unchanged."""
    col, x = _committed_default(tmp_path)
    col.add(x[:1] * 0 + 1, ids=[1000])
    before = col.search(x[:50], k=5)
    col.close()
    proc = _run_child(tmp_path / "c", point, "flush")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    reopened = _check_intact(tmp_path / "c", x, "add_one")
    again = reopened.search(x[:50], k=5)
    np.testing.assert_array_equal(again.ids, before.ids)
    np.testing.assert_array_equal(again.scores, before.scores)
    reopened.flush()
    _check_intact(tmp_path / "c", x, "add_one")
    assert all(_tables_of(tmp_path / "c"))
    assert len(list((tmp_path / "c" / "segments").iterdir())) == len(reopened.manifest.segments)


@pytest.mark.parametrize("point", ["mid_tables", "after_tables", "mid_manifest", "after_manifest"])
def test_an_old_collection_is_converted_by_its_next_write_and_kill_safe(tmp_path, point):
    """Segments without the table-scan files (written before they existed) are scanned by
    the bit-plane kernel; the next committing write (here ``compact``, with nothing else to
    do) adds the files, one commit per segment: killed meanwhile, the last commit stands;
    the answers never change."""
    x = np.random.default_rng(3).standard_normal((500, 32)).astype(np.float32)
    col = slimvec.create(tmp_path / "c", dim=32)
    col.add(x, metadata=[{"i": i} for i in range(500)])
    col.close()
    for table_file in (tmp_path / "c" / "segments").rglob("fastscan*"):
        table_file.unlink()  # as a collection written before the layout existed
    old = slimvec.open(tmp_path / "c")
    assert old._view.tables is None  # the bit-plane kernel over its codes
    before = old.search(x[:50], k=5)
    old.close()
    proc = _run_child(tmp_path / "c", point, "compact")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    reopened = slimvec.open(tmp_path / "c")
    assert (reopened._view.tables is not None) == (point == "after_manifest")
    for col in (reopened, None):
        if col is None:
            reopened.compact()  # the conversion, if the kill stopped it
            col = slimvec.open(tmp_path / "c")
            assert col._view.tables is not None and all(_tables_of(tmp_path / "c"))
        after = col.search(x[:50], k=5)
        np.testing.assert_array_equal(after.ids, before.ids)
        np.testing.assert_array_equal(after.scores, before.scores)
        assert len(col) == 500 and col.metadata([260]) == [{"i": 260}]
        assert (col.search(x, k=1, exact=True).ids[:, 0] == np.arange(500)).all()
    assert len(list((tmp_path / "c" / "segments").iterdir())) == 1
