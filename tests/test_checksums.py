"""Segment files carry CRC32 checksums: a flipped byte in an array read into memory is refused
on open naming the file; one in a memory-mapped array is found by verify_segment (slimvec
check). Never a wrong answer."""

import json

import numpy as np
import pytest

import slimvec
from slimvec.store.segments import CHECKSUMS, verify_segment


@pytest.fixture
def col_path(tmp_path):
    col = slimvec.create(tmp_path / "c", dim=16)
    col.add(np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32))
    col.close()
    return tmp_path / "c"


def _segment(path):
    (seg,) = (path / "segments").iterdir()
    return seg


def _flip(file, at=-5):
    data = bytearray(file.read_bytes())
    data[at] ^= 0x10
    file.write_bytes(bytes(data))


def test_every_segment_file_has_a_checksum(col_path):
    seg = _segment(col_path)
    sums = json.loads((seg / CHECKSUMS).read_text())
    assert set(sums) == {p.name for p in seg.glob("*.npy")} and "ids.npy" in sums
    assert verify_segment(col_path, seg.name) == []


def test_a_flipped_byte_in_the_ids_is_refused_on_open(col_path):
    _flip(_segment(col_path) / "ids.npy")  # would silently return a wrong id
    with pytest.raises(slimvec.CorruptCollectionError, match=r"ids\.npy fails its checksum"):
        slimvec.open(col_path)


def test_a_flipped_byte_in_a_mapped_file_is_found_by_verify(col_path):
    seg = _segment(col_path)
    _flip(seg / "original.npy")
    slimvec.open(col_path)  # memory-mapped: not read whole at open
    (problem,) = verify_segment(col_path, seg.name)
    assert "original.npy fails its checksum" in problem


def test_a_damaged_checksum_file_is_reported(col_path):
    seg = _segment(col_path)
    (seg / CHECKSUMS).write_text("{not json")
    with pytest.raises(slimvec.CorruptCollectionError, match="CHECKSUMS.json is damaged"):
        slimvec.open(col_path)


def test_segments_without_checksums_still_open(col_path):
    (_segment(col_path) / CHECKSUMS).unlink()  # written before checksums existed
    assert len(slimvec.open(col_path)) == 300
