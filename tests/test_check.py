"""``slimvec check``: every file kind a manifest names, damaged by one byte, is reported
naming it; ``--repair`` salvages a damaged log's valid records."""

import numpy as np
import pytest
from typer.testing import CliRunner

import slimvec
from slimvec.check import check
from slimvec.cli import app
from slimvec.store.log import read_log

DIM = 8


@pytest.fixture
def path(tmp_path):
    col = slimvec.create(tmp_path / "c", dim=DIM)
    rng = np.random.default_rng(0)
    col.add(rng.standard_normal((300, DIM)).astype(np.float32), texts=["t"] * 300)
    col.delete([0, 1])  # tombstones + a log record
    col.flush()
    for _ in range(3):  # records left in the log
        col.add(rng.standard_normal((5, DIM)).astype(np.float32))
    col.close()
    return tmp_path / "c"


def _flip(file, at):
    data = bytearray(file.read_bytes())
    data[at] ^= 0x08
    file.write_bytes(bytes(data))


def test_a_sound_collection_checks_ok(path):
    report = check(path)
    assert report.ok, report.problems
    assert "MANIFEST.json" in report.checked and len(report.checked) >= 5
    result = CliRunner().invoke(app, ["check", str(path)])
    assert result.exit_code == 0 and "ok" in result.output


@pytest.mark.parametrize(
    "pattern, at",
    [
        ("segments/*/original.npy", -3),
        ("segments/*/ids.npy", -3),
        ("segments/*/ids.npy.crc32", 1),
        ("segments/*/fastscan.npy", -3),  # the table-scan layout of the first-stage codes
        ("segments/*/fastscan-factors.npy", -3),
        ("tombstones-*.npy", -1),
        ("state-*.npz", 60),
        ("state-*.npz", -30),
        ("meta-*.sqlite", 100),
    ],
)
def test_a_flipped_byte_in_any_file_is_reported(path, pattern, at):
    (file,) = path.glob(pattern)
    _flip(file, at)
    report = check(path)
    assert not report.ok
    assert any(file.name in p or "does not open" in p for p in report.problems), report.problems
    result = CliRunner().invoke(app, ["check", str(path)])
    assert result.exit_code == 1 and "damaged" in result.output


def test_repair_salvages_the_valid_log_records(path):
    (log,) = path.glob("log-*.wal")
    records, _ = read_log(log)
    first = len(records[0].to_bytes())
    _flip(log, first + 30)  # the second of three records
    assert not check(path).ok
    with pytest.raises(slimvec.CorruptCollectionError):
        slimvec.open(path)
    result = CliRunner().invoke(app, ["check", str(path), "--repair"])
    assert result.exit_code == 0, result.output
    assert "2 valid records" in result.output and "lost bytes" in result.output
    assert len(slimvec.open(path)) == 298 + 10  # the damaged record's 5 rows are lost
    assert list(path.glob("lost-log-*.wal"))  # the damaged file kept aside
    assert check(path).ok
