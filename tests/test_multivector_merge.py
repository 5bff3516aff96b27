"""Merges and compactions of token segments stream (issue 31): stored documents are copied a
block at a time, blocks cut by token count under the add budget, so a merge's peak allocation
does not grow with the merged segments; the blocks give the same files, byte for byte, as one
block, and the documents' stored arrays as they were; kill -9 between blocks leaves the last
commit."""

from __future__ import annotations

import shutil
import textwrap

import numpy as np
import pytest

import slimvec
from allocation import allocated_by
from killpoints import run_until_killed
from slimvec.engine import writer
from slimvec.store.budget import add_memory, weighted_starts
from slimvec.store.segments import verify_segment
from test_multivector_streaming import DIM, FDE_PARAMS, token_sets

SPECS = ["rabitq:2*10 > maxsim:rq2", "int8*10 > maxsim"]
SEGMENTS, PER_SEGMENT = writer.MERGE_FANOUT, 300


def _unmerged(path, spec, monkeypatch, per=PER_SEGMENT, pool_factor=1):
    """A collection of ``MERGE_FANOUT`` equal segments, left unmerged (a wider fan-out while
    they are added): the next add of a document merges them."""
    monkeypatch.setattr(writer, "MERGE_FANOUT", SEGMENTS + 1)
    col = slimvec.create(
        path, dim=DIM, multivector=True, spec=spec, fde=FDE_PARAMS, pool_factor=pool_factor
    )
    for s in range(SEGMENTS):
        col.add(token_sets(per, s), ids=np.arange(s * per, (s + 1) * per))
    monkeypatch.setattr(writer, "MERGE_FANOUT", SEGMENTS)
    assert len(col.manifest.segments) == SEGMENTS
    return col


def _stored(col, rows: np.ndarray) -> dict[str, np.ndarray]:
    """NumPy's reading of the stored arrays of ``rows``: every segment's ids and FDE codes
    taken by row, its tokens by their documents' offsets."""
    view = col._view
    keys = ["ids", *view.pipeline.stored_keys]
    arrays = {key: view.gather(key, rows) for key in keys}
    tokens, counts = [], []
    for entry, stored in view.segments:
        offsets = np.asarray(stored["token_offsets"])
        for doc in rows[(rows >= entry.start) & (rows < entry.start + entry.rows)] - entry.start:
            tokens.append(np.asarray(stored["tokens"][offsets[doc] : offsets[doc + 1]]))
            counts.append(offsets[doc + 1] - offsets[doc])
    arrays["tokens"] = np.concatenate(tokens)
    arrays["token_offsets"] = np.concatenate([[0], np.cumsum(counts)])
    return arrays


def _merge_or_compact(col, how: str) -> None:
    if how == "merge":
        col.add(token_sets(1, 99), ids=[10**6])
    else:
        col.compact()


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("how", ["merge", "compact"])
def test_blocks_copy_token_segments_as_one_block_does(tmp_path, monkeypatch, spec, how):
    """Eight segments merged (or compacted, a third of the documents deleted) in 50-75 blocks
    of documents and in one: identical files (with their checksums), holding the documents'
    ids, FDE codes, tokens and offsets as NumPy reads them from the old segments."""
    pool_factor = 2 if spec.startswith("int8") else 1
    cols = {
        budget: _unmerged(tmp_path / budget, spec, monkeypatch, pool_factor=pool_factor)
        for budget in ("1M", "1G")
    }
    total = SEGMENTS * PER_SEGMENT
    live = np.arange(total)
    if how == "compact":
        live = live[live % 3 != 0]
        for col in cols.values():
            col.delete(np.setdiff1d(np.arange(total), live))
    expected = _stored(cols["1M"], live)
    for budget, col in cols.items():
        monkeypatch.setenv("SLIMVEC_ADD_MEMORY", budget)
        sizes = np.diff(expected["token_offsets"])
        blocks = len(weighted_starts(sizes * DIM + col._view.rows.fde.out_dim))
        assert blocks == 1 if budget == "1G" else blocks >= 40
        _merge_or_compact(col, how)
    small, whole = (tmp_path / budget / "segments" for budget in cols)
    name = cols["1M"].manifest.segments[0].name
    assert name == cols["1G"].manifest.segments[0].name
    assert len(cols["1M"].manifest.segments) == (2 if how == "merge" else 1)
    files = sorted(p.name for p in (small / name).iterdir())
    assert files == sorted(p.name for p in (whole / name).iterdir())
    for file in files:
        assert (small / name / file).read_bytes() == (whole / name / file).read_bytes(), file
    assert verify_segment(tmp_path / "1M", name) == []
    merged = _stored(cols["1M"], np.arange(len(live)))  # the new segment's documents
    for key, array in expected.items():
        np.testing.assert_array_equal(merged[key], array, err_msg=key)


def test_the_peak_of_a_token_merge_does_not_hold_the_merged_tokens(tmp_path, monkeypatch):
    """Eight segments of 1,500 float16 token sets merged under a 1 MiB budget: the merge
    allocates at its peak less than a quarter of the merged token codes (23 MB here), within
    the budget plus what it keeps (the new view's ids and table-scan codes) and 2 MiB. The
    one-block merge held every token code twice (gathered, then joined) and their row
    numbers: 47 MB."""
    spec = "rabitq:1*10 > maxsim"  # few resident bytes per document: tokens dominate
    warm = _unmerged(tmp_path / "warm", spec, monkeypatch, per=40)
    warm.search(token_sets(2, 8), k=3)
    warm.add(token_sets(1, 99))  # compiles and imports the merge's paths outside the count
    col = _unmerged(tmp_path / "c", spec, monkeypatch, per=1500)
    tokens = sum(arrays["tokens"].nbytes for _, arrays in col._view.segments)
    monkeypatch.setenv("SLIMVEC_ADD_MEMORY", "1M")
    peak, kept = allocated_by(lambda: col.add(token_sets(1, 99), ids=[10**6]))
    assert len(col.manifest.segments) == 2 and len(col) == SEGMENTS * 1500 + 1
    assert peak < tokens / 4, (peak, tokens)
    assert peak < add_memory() + kept + (2 << 20), (peak, kept)


CHILD = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import slimvec
    from killpoints import die_at_block
    from test_multivector_merge import _merge_or_compact

    os.environ["SLIMVEC_ADD_MEMORY"] = "1M"
    path, how = sys.argv[1], sys.argv[2]
    # the merge's second block (the add before it writes one); the compaction's second
    die_at_block("tokens.npy", 3 if how == "merge" else 2)
    _merge_or_compact(slimvec.open(path), how)
    print("finished without crashing")
    """
)


@pytest.mark.parametrize("how", ["merge", "compact"])
def test_kill_between_blocks_of_a_token_merge_leaves_the_last_commit(tmp_path, monkeypatch, how):
    """The child dies with one block of the merged segment on disk: the collection opens at
    its last commit (for a merge: the eight segments and the added document's, with the
    answers a copy gives that added it without merging), and the next write sweeps the
    partial segment and merges or compacts."""
    col = _unmerged(tmp_path / "c", SPECS[0], monkeypatch)
    if how == "compact":
        col.delete(np.arange(0, SEGMENTS * PER_SEGMENT, 3))
    col.close()
    shutil.copytree(tmp_path / "c", tmp_path / "copy")
    reference = slimvec.open(tmp_path / "copy")
    if how == "merge":
        monkeypatch.setattr(writer, "MERGE_FANOUT", SEGMENTS + 1)
        _merge_or_compact(reference, how)
    queries = token_sets(5, 8)
    expected, exact = reference.search(queries, k=5), reference.search(queries, k=5, exact=True)
    run_until_killed(CHILD, tmp_path / "c", how)
    reopened = slimvec.open(tmp_path / "c")
    assert len(reopened) == len(reference)
    assert len(reopened.manifest.segments) == len(reference.manifest.segments)
    again = reopened.search(queries, k=5)
    np.testing.assert_array_equal(again.ids, expected.ids)
    np.testing.assert_array_equal(again.scores, expected.scores)
    segments = tmp_path / "c" / "segments"
    assert len(list(segments.iterdir())) == len(reopened.manifest.segments) + 1  # the partial one
    reopened.compact()
    assert len(reopened.manifest.segments) == 1
    assert len(list(segments.iterdir())) == 1  # swept
    assert len(slimvec.open(tmp_path / "c")) == len(reference)
    np.testing.assert_array_equal(reopened.search(queries, k=5, exact=True).ids, exact.ids)
