"""Kill points for the crash tests: a child process arms one, then writes, and dies by
SIGKILL exactly there. Shared by test_crash.py, test_filters_crash.py, test_string_ids.py
and test_ivf.py, so every write path is killed at the same, named steps of the commit.

The steps of a commit, in order: a segment file is written (``*_segment``), rows reach
SQLite (``after_sqlite``; string keys: ``after_keys``), the manifest is replaced
(``mid_manifest``: temp file fsynced, rename not done; ``after_manifest``). A segment's
table-scan files (``engine.rows.TABLE_FILES``) are written with it, block by block:
``mid_tables`` dies with half of ``fastscan.npy``'s first block written and no checksum yet,
``after_tables`` once both are closed with their checksums.
A write-ahead log record is appended (``before_append``, ``mid_log`` / ``torn_append``: half
its bytes reach the file, ``after_log``: appended and fdatasync-ed); a flush folds metadata
updates into SQLite (``after_sqlite_fold``).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

HERE = str(Path(__file__).parent)


def die(*args, **kwargs) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def die_after(owner, name: str) -> None:
    """Replace ``owner.name`` by a call of the original followed by the kill."""
    original = getattr(owner, name)

    def wrapped(*args, **kwargs):
        original(*args, **kwargs)
        die()

    setattr(owner, name, wrapped)


def die_at_block(file_name: str, block: int) -> None:
    """Kill the process as segment file ``file_name``'s ``block``-th block (1-based) is about
    to be written: the blocks before it are on disk, no commit names them."""
    from slimvec.store import segments

    real, calls = segments.ArrayWriter.write, []

    def write(self, data):
        if self.path.name == file_name:
            calls.append(1)
            if len(calls) == block:
                die()
        real(self, data)

    segments.ArrayWriter.write = write


def _torn_record(path, offset, record):
    blob = record.to_bytes()
    fd = os.open(path, os.O_WRONLY)
    os.pwrite(fd, blob[: len(blob) // 2], offset)
    os.fsync(fd)
    die()


def _arm_tables(segments, point: str) -> None:
    import numpy as np

    class Dying(segments.ArrayWriter):
        def write(self, block):
            if point == "mid_tables" and self.path.name == "fastscan.npy":
                data = np.ascontiguousarray(block).reshape(-1).view(np.uint8)
                self.file.write(data[: len(data) // 2].tobytes())
                self.file.flush()
                die()
            super().write(block)

        def close(self):
            super().close()
            if point == "after_tables" and self.path.name == "fastscan-factors.npy":
                die()

    segments.ArrayWriter = Dying


def arm(point: str) -> None:
    """Make the next write of this process die at ``point`` (see the module docstring)."""
    import slimvec.engine.writer as c
    from slimvec.engine import incoming
    from slimvec.store import files, log, manifest, meta, segments

    if point == "before_segment":
        segments.write_segment = incoming.write_segment = die
    elif point == "after_segment":
        die_after(incoming, "write_segment")
    elif point == "after_sqlite":
        die_after(meta.MetaStore, "insert")
    elif point == "after_sqlite_fold":
        die_after(meta.MetaStore, "update_metadata")
    elif point == "after_keys":
        die_after(c, "save_keys")
    elif point == "mid_manifest":
        files.os.replace = die
    elif point == "after_manifest":
        die_after(manifest.Manifest, "save")
    elif point == "before_append":
        c.append_record = die
    elif point == "mid_log":  # at the byte level: half of what pwrite was given
        real = os.pwrite

        def torn(fd, data, offset):
            real(fd, data[: len(data) // 2], offset)
            die()

        log.os.pwrite = torn
    elif point == "torn_append":  # at the record level, fsynced
        c.append_record = _torn_record
    elif point in ("mid_tables", "after_tables"):
        _arm_tables(segments, point)
    elif point in ("after_log", "after_append"):
        die_after(c, "append_record")
    else:
        raise ValueError(f"unknown kill point {point!r}")


def run_until_killed(script: str, *args: object, timeout: float = 300) -> None:
    """Run ``script`` (a kill point armed) in a child process; it must die by SIGKILL."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=child_env(),
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def child_env() -> dict[str, str]:
    """Environment of a ``python -c`` child that imports this module."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")])}
