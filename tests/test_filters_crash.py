"""kill -9 during a filtered delete or a metadata update leaves all or nothing of it.

Both are one record of the write-ahead log: committed once ``append_record`` returned (the
record is complete and fdatasync-ed), not committed if the writer died before or mid-append
(a torn record fails its checksum and is ignored). A metadata update folded into SQLite by a
flush that dies before its manifest commit is still in the log, so it stays committed."""

import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import slimvec
from killpoints import child_env

CHILD = textwrap.dedent(
    """
    import sys
    import slimvec
    from killpoints import arm

    path, point, action = sys.argv[1], sys.argv[2], sys.argv[3]
    arm(point)

    col = slimvec.open(path)
    if action == "delete":
        col.delete(filter={"$or": [{"group": 1}, {"tags": "odd"}]})
    elif action == "update":
        col.update_metadata(list(range(0, 200, 2)), [{"group": 9, "tags": ["new"]}] * 100)
    elif action == "update_flush":
        col.update_metadata(list(range(0, 200, 2)), [{"group": 9, "tags": ["new"]}] * 100)
        col.flush()
    print("finished without crashing")
    """
)


def _committed(path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 16)).astype(np.float32)
    col = slimvec.create(path, dim=16, spec="binary*10 > f32")
    metas = [{"group": i % 4, "tags": ["odd"] if i % 2 else []} for i in range(300)]
    col.add(x[:200], metadata=metas[:200])
    col.add(x[200:], metadata=metas[200:])
    col.create_index("group")
    col.close()
    return x, metas


def _run(path, point, action):
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), point, action],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr + proc.stdout


def _no_leftovers(path):
    names = [p.name for p in path.iterdir()]
    assert not any(n.startswith(("filters", "metaupd")) for n in names)
    assert len([n for n in names if n.startswith("log-")]) == 1


@pytest.mark.parametrize("point", ["before_append", "torn_append", "after_append"])
def test_kill_during_filtered_delete(tmp_path, point):
    path = tmp_path / "c"
    x, _metas = _committed(path)
    _run(path, point, "delete")
    col = slimvec.open(path)
    doomed = {i for i in range(300) if i % 4 == 1 or i % 2}
    committed = point == "after_append"
    live = set(range(300)) - (doomed if committed else set())
    assert len(col) == len(live)  # all or nothing
    assert set(col.get(limit=None).ids.tolist()) == live
    assert col.count({"group": 1}) == (0 if committed else 75)
    res = col.search(x, k=1, exact=True)
    assert set(res.ids[:, 0].tolist()) <= live
    assert col.delete(filter={"group": 1}) == (0 if committed else 75)  # the next writer works
    col.flush()
    _no_leftovers(path)
    left = {i for i in live if i % 4 != 1}
    assert slimvec.open(path).count({"group": {"$in": [0, 2, 3]}}) == len(left)


@pytest.mark.parametrize(
    "point,action",
    [
        ("before_append", "update"),
        ("torn_append", "update"),
        ("after_append", "update"),
        ("after_sqlite_fold", "update_flush"),
        ("mid_manifest", "update_flush"),
    ],
)
def test_kill_during_metadata_update(tmp_path, point, action):
    path = tmp_path / "c"
    _, metas = _committed(path)
    _run(path, point, action)
    col = slimvec.open(path)
    committed = point not in ("before_append", "torn_append")
    updated = col.metadata(list(range(0, 200, 2)))
    if committed:
        assert updated == [{"group": 9, "tags": ["new"]}] * 100
        assert col.count({"group": 9}) == 100
        assert col.count({"group": 0}) == 25  # the even rows of group 0 past id 200
    else:
        assert updated == [metas[i] for i in range(0, 200, 2)]
        assert col.count({"group": 9}) == 0
        assert col.count({"group": 0}) == 75
    assert col.count({"tags": "new"}) == col.count({"group": 9})
    col.update_metadata([1], [{"group": 7}])  # the next writer works and cleans up
    assert slimvec.open(path).count({"group": 7}) == 1
    col.flush()
    reopened = slimvec.open(path)
    assert reopened.count({"group": 7}) == 1
    assert reopened.count({"group": 9}) == (100 if committed else 0)
    _no_leftovers(path)
