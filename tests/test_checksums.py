"""Array files carry CRC32 sidecars (slimvec.store.files): a flipped byte in a file read whole
is refused on open naming the file; one in a memory-mapped array is found by verify_segment
(slimvec check). Never a wrong answer."""

import numpy as np
import pytest

import slimvec
from slimvec.store.files import CHECKSUM_SUFFIX
from slimvec.store.segments import verify_segment


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


def test_every_array_file_has_a_checksum_that_survives_the_sweep(col_path):
    seg = _segment(col_path)
    arrays = [*seg.glob("*.npy"), *col_path.glob("state-*.npz")]
    assert len(arrays) >= 3
    assert all(p.with_name(p.name + CHECKSUM_SUFFIX).is_file() for p in arrays)
    assert verify_segment(col_path, seg.name) == []
    col = slimvec.open(col_path)
    col.delete([0])
    col.compact()  # a write sweeps leftovers: the named files' sidecars stay
    tombstones = list(col_path.glob("tombstones-*.npy")) + list(col_path.glob("state-*.npz"))
    assert all(p.with_name(p.name + CHECKSUM_SUFFIX).is_file() for p in tombstones)


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
    (_segment(col_path) / f"ids.npy{CHECKSUM_SUFFIX}").write_text("not hex\n")
    with pytest.raises(slimvec.CorruptCollectionError, match=r"ids\.npy\.crc32 is damaged"):
        slimvec.open(col_path)


def test_files_without_checksums_still_open(col_path):
    for sidecar in col_path.rglob(f"*{CHECKSUM_SUFFIX}"):
        sidecar.unlink()  # written before checksums existed
    assert len(slimvec.open(col_path)) == 300


def test_a_catch_up_reads_only_the_segments_its_view_does_not_hold(col_path, monkeypatch):
    """Segments are immutable: a reader following a commit copies the rows its last view
    already read (and verified) instead of reading every segment's files again."""
    import slimvec.engine.view as view_module

    reader = slimvec.open(col_path)
    writer = slimvec.open(col_path)
    held = _segment(col_path).name
    writer.add(np.random.default_rng(1).standard_normal((200, 16)).astype(np.float32))
    (new,) = {p.name for p in (col_path / "segments").iterdir()} - {held}
    real, read_whole = view_module.open_segment, []

    def counting(path, name, layout, in_memory=()):
        if in_memory:
            read_whole.append(name)
        return real(path, name, layout, in_memory)

    monkeypatch.setattr(view_module, "open_segment", counting)
    assert len(reader) == 500
    assert set(read_whole) == {new}  # its ids, and its table-scan files
    x = writer.get(limit=None, vectors=True)
    assert (reader.search(x.vectors[:5], k=1, exact=True).ids[:, 0] == x.ids[:5]).all()
