"""kill -9 during a filtered delete or a metadata update leaves all or nothing of it."""

import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import slimvec

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import slimvec
    import slimvec.collection as c
    from slimvec.search import columns
    from slimvec.store import files, manifest

    path, point, action = sys.argv[1], sys.argv[2], sys.argv[3]

    def die(*a, **k):
        os.kill(os.getpid(), signal.SIGKILL)

    def after(obj, name):
        original = getattr(obj, name)
        def wrapped(*a, **k):
            out = original(*a, **k)
            die()
            return out
        setattr(obj, name, wrapped)

    if point == "after_tombstones":
        after(c, "save_array")
    elif point == "after_columns":
        after(columns.MetadataColumns, "save")
    elif point == "after_updates":
        after(c, "atomic_write_text")
    elif point == "mid_manifest":  # temp file written and fsynced, rename not done
        files.os.replace = die
    elif point == "after_manifest":
        after(manifest.Manifest, "save")

    col = slimvec.open(path)
    if action == "delete":
        col.delete(filter={"$or": [{"group": 1}, {"tags": "odd"}]})
    elif action == "update":
        col.update_metadata(list(range(0, 200, 2)), [{"group": 9, "tags": ["new"]}] * 100)
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
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr


@pytest.mark.parametrize("point", ["after_tombstones", "mid_manifest", "after_manifest"])
def test_kill_during_filtered_delete(tmp_path, point):
    path = tmp_path / "c"
    x, metas = _committed(path)
    _run(path, point, "delete")
    col = slimvec.open(path)
    doomed = {i for i, m in enumerate(metas) if m["group"] == 1 or m["tags"]}
    committed = point == "after_manifest"
    live = set(range(300)) - (doomed if committed else set())
    assert len(col) == len(live)  # all or nothing
    assert set(col.get(limit=None).ids.tolist()) == live
    assert col.count({"group": 1}) == (0 if committed else 75)
    res = col.search(x, k=1, exact=True)
    assert set(res.ids[:, 0].tolist()) <= live
    assert col.delete(filter={"group": 1}) == (0 if committed else 75)  # the next writer works
    leftovers = [p.name for p in path.iterdir() if p.name.startswith(("tombstones", "filters"))]
    assert len(leftovers) == 2  # only the committed tombstones and columns remain


@pytest.mark.parametrize(
    "point", ["after_columns", "after_updates", "mid_manifest", "after_manifest"]
)
def test_kill_during_metadata_update(tmp_path, point):
    path = tmp_path / "c"
    _, metas = _committed(path)
    _run(path, point, "update")
    col = slimvec.open(path)
    committed = point == "after_manifest"
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
    names = [p.name for p in path.iterdir()]
    assert len([n for n in names if n.startswith("filters")]) == 1
    assert len([n for n in names if n.startswith("metaupd")]) == 1
