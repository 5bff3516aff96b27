"""IVF joined lists (``index.joined``): the lists of the segments the merges no longer take,
joined into one set so a probed list is one run. The scan over the set must give the same
results as over the segments' own lists; the set follows adds, merges, deletes, compaction and
retraining; a kill -9 while it is written leaves the last commit."""

import textwrap

import numpy as np
import pytest

import slimvec
from killpoints import run_until_killed
from slimvec.engine import writer
from slimvec.index import ivf, joined, sizing
from slimvec.store.manifest import Manifest, SegmentEntry
from test_ivf import SMALL_FLAT_ROWS, SPEC, _data, _named_ivf_dirs, _recall

pytest.importorskip("faiss", reason="ivf:N trains its centroids with faiss-cpu (the ivf extra)")

#: With merges capped at 2,000 rows, segments of 512 rows or more are never merged again.
MERGE_MAX_ROWS = 2_000


@pytest.fixture(autouse=True)
def _small(monkeypatch):
    monkeypatch.setattr(sizing, "FLAT_ROWS", SMALL_FLAT_ROWS)
    monkeypatch.setattr(writer, "MERGE_MAX_ROWS", MERGE_MAX_ROWS)
    monkeypatch.setattr(writer, "REFIT_ENOUGH", 0)  # no refit rewriting every row


def _same_as_segment_lists(col, q: np.ndarray, nprobe: int) -> None:
    """The search over the joined set returns what the segments' own lists return."""
    index = col._view.ivf
    with_set = col.search(q, 10, nprobe=nprobe)
    own, index.lists = index.lists, [index.segment_lists[e.name] for e in col.manifest.segments]
    try:
        without = col.search(q, 10, nprobe=nprobe)
    finally:
        index.lists = own
    for a, b in zip(with_set.ids, without.ids, strict=True):
        assert set(a) == set(b)


def test_final_segments_are_joined_and_searched_as_one_set(tmp_path):
    col = slimvec.create(tmp_path / "c", dim=32, spec=SPEC)
    x = _data(3_000, 1)
    col.add(x[:1_000])  # trains; one segment: nothing to join with yet
    assert "joined" not in col.manifest.extra["ivf"]
    col.add(x[1_000:1_600])
    assert col.manifest.extra["ivf"]["joined"]["rows"] == 1_600
    index = col._view.ivf
    assert index.lists[0] is index.joined and len(index.lists) == 1
    col.add(x[1_600:1_700])  # a small segment (merges may take it): after the set
    col.add(x[1_700:1_710])  # the log
    assert col.manifest.extra["ivf"]["joined"]["rows"] == 1_600 and len(col._view.ivf.lists) == 2
    q = _data(40, 7)
    _same_as_segment_lists(col, q, nprobe=4)
    assert _recall(col.search(q, 10, nprobe=16).ids, col.search(q, 10, exact=True).ids) > 0.95
    col.add(x[1_710:2_300])  # 590 final rows after it: 1,600 -> 2,300 rows, the 100 included
    assert col.manifest.extra["ivf"]["joined"]["rows"] == 2_300
    assert _named_ivf_dirs(col.path) == ivf.ivf_dirs(col.manifest)  # the old set swept
    _same_as_segment_lists(col, q, nprobe=4)
    assert sum(col.info()["ivf"]["sizes"]) == 2_300  # the set's sizes, counted once
    col.close()
    again = slimvec.open(tmp_path / "c")  # and it is read back from disk
    assert again._view.ivf.joined is not None
    _same_as_segment_lists(again, q, nprobe=4)
    again.close()


def test_deletes_mask_the_set_and_compaction_drops_it(tmp_path):
    col = slimvec.create(tmp_path / "c", dim=32, spec=SPEC)
    x = _data(2_400, 1)
    for lo in range(0, 2_400, 600):
        col.add(x[lo : lo + 600])
    assert col.manifest.extra["ivf"]["joined"]["rows"] >= 1_800
    gone = np.arange(0, 2_400, 3)
    col.delete(gone)
    q = x[gone[:20]]
    assert not np.isin(col.search(q, 10, nprobe=16).ids, gone).any()
    assert sum(col.info()["ivf"]["sizes"]) == 1_600
    col.compact()  # rows renumbered: the set no longer describes them
    assert "joined" not in col.manifest.extra["ivf"] and col._view.ivf.joined is None
    assert _named_ivf_dirs(col.path) == ivf.ivf_dirs(col.manifest)
    assert not np.isin(col.search(q, 10, nprobe=16).ids, gone).any()
    col.close()


def test_a_set_a_segment_straddles_is_not_used():
    entries = [SegmentEntry("seg-000001", 0, 600), SegmentEntry("seg-000002", 600, 600)]
    m = Manifest(dim=4, metric="ip", spec="x", segments=entries, rows=1_200)
    m.extra["ivf"] = {"centroids": "c000001", "joined": {"name": "j000002", "rows": 1_200}}
    assert joined.joined_rows(m) == 1_200
    m.extra["ivf"]["joined"]["rows"] = 900  # ends inside the second segment
    assert joined.joined_rows(m) == 0 and joined.joined_dir(m) is None
    m.extra["ivf"]["joined"] = {"name": "../x", "rows": 600}  # a damaged name
    assert joined.joined_rows(m) == 0


def test_a_retrain_joins_its_new_lists(tmp_path):
    col = slimvec.create(tmp_path / "c", dim=32, spec=SPEC)
    x = _data(5_400, 1)
    for lo in range(0, 1_800, 600):
        col.add(x[lo : lo + 600])
    first = col.manifest.extra["ivf"]
    assert first["joined"]["rows"] == 1_800
    col.add(x[1_800:4_800])  # 4x the 1,200 rows trained on: retrained in the commit
    retrained = col.manifest.extra["ivf"]
    assert retrained["centroids"] != first["centroids"]
    assert retrained["joined"]["rows"] == 4_800  # the new lists, joined as they are installed
    col.add(x[4_800:])  # 600 more: under a quarter of 4,800, the set stays
    assert col.manifest.extra["ivf"]["joined"] == retrained["joined"]
    assert len(col._view.ivf.lists) == 2
    assert _named_ivf_dirs(col.path) == ivf.ivf_dirs(col.manifest)  # the old set swept
    _same_as_segment_lists(col, _data(30, 7), nprobe=4)
    col.close()


CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import slimvec
    from killpoints import die_at_block
    from slimvec.engine import writer
    from slimvec.index import sizing

    sizing.FLAT_ROWS, writer.MERGE_MAX_ROWS, writer.REFIT_ENOUGH = int(sys.argv[2]), 2_000, 0
    die_at_block("nibbles.npy", 2)  # the joined set's first run of lists on disk
    x = np.random.default_rng(9).standard_normal((600, 32)).astype(np.float32)
    slimvec.open(sys.argv[1]).add(x)
    print("finished without crashing")
    """
)


def test_kill_while_joining_leaves_the_last_commit(tmp_path, monkeypatch):
    monkeypatch.setattr(joined, "RUN_ROWS", 64)  # several runs, so the kill lands mid-file
    col = slimvec.create(tmp_path / "c", dim=32, spec=SPEC)
    x = _data(1_000, 1)
    col.add(x)
    q = _data(20, 7)
    expected = col.search(q, 10, nprobe=4).ids
    col.close()
    joined_run = textwrap.dedent(
        """
        from slimvec.index import joined
        joined.RUN_ROWS = 64
        """
    )
    run_until_killed(joined_run + CHILD, tmp_path / "c", SMALL_FLAT_ROWS, timeout=120)
    again = slimvec.open(tmp_path / "c")
    assert len(again) == 1_000 and "joined" not in again.manifest.extra["ivf"]
    np.testing.assert_array_equal(again.search(q, 10, nprobe=4).ids, expected)
    assert any(p.name.startswith("j") for p in (tmp_path / "c" / ivf.IVF_DIR).iterdir())
    again.add(_data(600, 3))  # the next write sweeps the partial set and joins again
    assert again.manifest.extra["ivf"]["joined"]["rows"] == 1_600
    assert _named_ivf_dirs(again.path) == ivf.ivf_dirs(again.manifest)
    again.close()
