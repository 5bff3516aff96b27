"""Adds stream (issue 29, part 1): an add of any size is read, checked, encoded and written in
blocks under the add budget (``slimvec.engine.incoming``), so its memory is the caller's array
plus that budget; the blocks give the same segment, byte for byte, as one block (the
non-streamed write); bad values anywhere still refuse the whole add and leave nothing; kill -9
between blocks leaves the last commit."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import slimvec
from allocation import allocated_by
from killpoints import run_until_killed
from slimvec.kernels.ivfscan import interleave, interleave_rows
from slimvec.search.funnel import Pipeline
from slimvec.spec import parse_spec
from slimvec.store.budget import add_memory, block_rows
from slimvec.store.segments import verify_segment
from slimvec.validation import normalise


def _float16_file(path, n, d, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float16)
    np.save(path, x)
    return np.load(path, mmap_mode="r")


def test_an_add_of_a_memory_mapped_file_stays_within_the_budget(tmp_path, monkeypatch):
    """60,000 x 256 float16 from a memory-mapped file under an 8 MiB budget: the add's peak
    allocation is the budget plus what the collection keeps resident afterwards (ids, codes),
    far below one float32 copy of the input (61 MB, which the whole-array path made, besides
    its float64 norms and concatenated codes)."""
    monkeypatch.setenv("SLIMVEC_ADD_MEMORY", "8M")
    x = _float16_file(tmp_path / "x.npy", 60_000, 256)
    warm = slimvec.create(tmp_path / "warm", dim=256)  # compiles the kernels outside the count
    warm.add(np.asarray(x[:2000]))
    warm.search(np.asarray(x[:2], np.float32), k=3)
    col = slimvec.create(tmp_path / "c", dim=256)
    peak, kept = allocated_by(lambda: col.add(x))
    assert len(col) == 60_000
    one_copy = 60_000 * 256 * 4
    assert peak < add_memory() + kept + (4 << 20), (peak, kept)
    assert peak < one_copy / 2


@pytest.mark.parametrize("spec", ["rabitq:2*40 > f32", "pca:32 | int8*4 > f16", "binary*10 > f32"])
def test_blocks_write_the_same_segment_as_one_block(tmp_path, monkeypatch, spec):
    """The same rows under a budget of 4 blocks (the last a partial table-scan block) and under
    the default one (a single block): identical files, identical answers, and the codes of a
    pipeline fitted and run on the whole normalised array at once."""
    n, d = 5000, 48
    x16 = _float16_file(tmp_path / "x.npy", n, d)
    monkeypatch.setenv("SLIMVEC_ADD_MEMORY", "4M")
    assert 3 * block_rows(d) < n < 4 * block_rows(d)
    small = slimvec.create(tmp_path / "small", dim=d, spec=spec)
    small.add(x16)
    monkeypatch.delenv("SLIMVEC_ADD_MEMORY")
    whole = slimvec.create(tmp_path / "whole", dim=d, spec=spec)
    whole.add(np.asarray(x16, np.float32))
    [seg] = list((tmp_path / "small" / "segments").iterdir())
    names = sorted(p.name for p in seg.iterdir())
    assert names == sorted(p.name for p in (tmp_path / "whole" / "segments" / seg.name).iterdir())
    for name in names:  # .npy files and their checksums
        other = tmp_path / "whole" / "segments" / seg.name / name
        assert (seg / name).read_bytes() == other.read_bytes(), name
    q = np.asarray(x16[:50], np.float32)
    a, b = small.search(q, k=10), whole.search(q, k=10)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.scores, b.scores)
    # what the whole-array write stored: one normalised copy, fitted and encoded at once
    xn = normalise(np.asarray(x16, np.float32))
    pipeline = Pipeline(parse_spec(spec), d, "cosine").fit(xn)
    stored = small._view.segments[0][1]
    np.testing.assert_array_equal(np.asarray(stored["original"]), xn)
    for key, codes in pipeline.encode(xn).items():
        np.testing.assert_array_equal(small._view.gather(key, np.arange(n)), codes)
    assert verify_segment(tmp_path / "small", seg.name) == []  # checksums taken as it streamed


def _fitted(tmp_path, metric="cosine"):
    col = slimvec.create(tmp_path / "c", dim=32, metric=metric)
    col.add(np.random.default_rng(1).standard_normal((2000, 32)).astype(np.float32))
    return col


@pytest.mark.parametrize("fault", ["nan", "zero"])
def test_bad_values_in_a_late_block_refuse_the_whole_add_and_leave_nothing(
    tmp_path, monkeypatch, fault
):
    monkeypatch.setenv("SLIMVEC_ADD_MEMORY", "200k")  # blocks of 96 rows
    col = _fitted(tmp_path)
    before = sorted(p.name for p in (tmp_path / "c").rglob("*"))
    x = np.random.default_rng(2).standard_normal((5000, 32)).astype(np.float32)
    if fault == "nan":
        x[4990, 3], x[17, 0] = np.nan, np.inf
        message = r"NaN or infinite values in rows \[17, 4990\]"
    else:
        x[4990] = x[4100] = 0
        message = r"rows \[4100, 4990\] are all zeros"
    with pytest.raises(slimvec.InvalidInputError, match=message):
        col.add(x)
    assert sorted(p.name for p in (tmp_path / "c").rglob("*")) == before
    assert len(col) == 2000 and len(slimvec.open(tmp_path / "c")) == 2000
    x[[17, 4100, 4990]] = 1.0
    col.add(x)
    assert len(slimvec.open(tmp_path / "c")) == 7000


CHILD = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import slimvec
    from killpoints import die_at_block

    os.environ["SLIMVEC_ADD_MEMORY"] = "200k"
    die_at_block("original.npy", 3)  # two blocks of originals on disk
    x = np.load(sys.argv[2], mmap_mode="r")
    slimvec.open(sys.argv[1]).add(x, ids=np.arange(10_000, 10_000 + len(x)))
    print("finished without crashing")
    """
)


def test_kill_between_blocks_leaves_the_last_commit(tmp_path):
    col = _fitted(tmp_path)
    q = np.random.default_rng(5).standard_normal((5, 32)).astype(np.float32)
    expected = col.search(q, k=5)
    col.close()
    _float16_file(tmp_path / "x.npy", 3000, 32, seed=3)
    run_until_killed(CHILD, tmp_path / "c", tmp_path / "x.npy", timeout=120)
    reopened = slimvec.open(tmp_path / "c")
    assert len(reopened) == 2000
    np.testing.assert_array_equal(reopened.search(q, k=5).ids, expected.ids)
    segments = tmp_path / "c" / "segments"
    assert len(list(segments.iterdir())) == len(reopened.manifest.segments) + 1  # the partial one
    reopened.add(np.ones((100, 32), np.float32), ids=np.arange(10_000, 10_100))
    assert len(slimvec.open(tmp_path / "c")) == 2100
    assert len(list(segments.iterdir())) == len(reopened.manifest.segments)  # swept


def test_progress_shows_a_bar_when_asked(tmp_path, capsys):
    col = slimvec.create(tmp_path / "c", dim=16)
    x = np.random.default_rng(0).standard_normal((500, 16)).astype(np.float32)
    col.add(x, progress=True)
    assert "encoding" in capsys.readouterr().err
    col.add(x, progress=False)
    col.add(x)  # short: no bar unless asked
    assert "encoding" not in capsys.readouterr().err


def test_the_budget_setting(monkeypatch):
    monkeypatch.setenv("SLIMVEC_ADD_MEMORY", "2G")
    assert add_memory() == 2 << 30
    monkeypatch.setenv("SLIMVEC_ADD_MEMORY", "512MiB")
    assert add_memory() == 512 << 20
    assert block_rows(384) == 512 * 2**20 // (64 * 384) // 32 * 32
    monkeypatch.setenv("SLIMVEC_ADD_MEMORY", "lots")
    with pytest.raises(slimvec.InvalidInputError, match="SLIMVEC_ADD_MEMORY"):
        add_memory()


def test_list_codes_interleaved_a_run_of_lists_at_a_time_equal_the_whole():
    """IVF lists are laid out a run of lists at a time (``interleave_rows``), not from a
    sorted copy of every code: the same bytes as the whole-array layout."""
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 256, (3000, 40), dtype=np.uint8)
    assign = rng.integers(0, 50, 3000)
    assign[assign == 7] = 8  # an empty list
    perm = np.argsort(assign, kind="stable").astype(np.int32)
    offsets = np.zeros(51, np.int64)
    np.cumsum(np.bincount(assign, minlength=50), out=offsets[1:])
    whole = interleave(codes[perm, :32], offsets)
    for rows in (1, 50, 333, 10_000):
        np.testing.assert_array_equal(interleave_rows(codes, perm, offsets, 32, rows), whole)
