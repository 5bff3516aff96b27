"""``slimvec check``: read every file a collection's manifest names and say what is damaged.

Opening a collection verifies what it reads into memory (the manifest, the write-ahead log,
segment ids and first-stage codes, or those codes' table-scan layout, against their checksums);
the memory-mapped arrays are read only in part by searches, so only a full check reads them
whole. Every ``.npy`` file of every segment the manifest names is checked, whatever its kind
(ids, originals, codes, ``fastscan*`` table-scan files). ``repair`` salvages a damaged
write-ahead log: every valid record goes into a new log (committed through the manifest), the
damaged file is kept as ``lost-<name>`` and the report names the byte spans that were lost.
Other damage has no safe repair here: restore those files from a backup.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from slimvec.errors import CorruptCollectionError, SlimvecError
from slimvec.store.files import load_array, load_arrays
from slimvec.store.lock import write_lock
from slimvec.store.log import append_record, create_log, read_log, salvage_log
from slimvec.store.manifest import Manifest
from slimvec.store.segments import verify_segment


@dataclass
class CheckReport:
    path: str
    checked: list[str] = field(default_factory=list)  # what was read, in order
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check(path: str | Path, repair: bool = False) -> CheckReport:
    """Verify every file of the collection at ``path``; with ``repair``, salvage its log."""
    directory = Path(path)
    report = CheckReport(str(directory))
    try:
        manifest = Manifest.load(directory)
    except SlimvecError as exc:
        report.problems.append(str(exc))
        return report
    if manifest.extra.get("moved_to"):  # a finished model upgrade: check where the data is
        return check(directory / manifest.extra["moved_to"], repair)
    report.checked.append("MANIFEST.json")
    for entry in manifest.segments:
        report.checked.append(f"segments/{entry.name}")
        report.problems += verify_segment(directory, entry.name)
    for name, load in ((manifest.state_file, load_arrays), (manifest.tombstones, load_array)):
        if name:
            report.checked.append(name)
            try:
                load(directory / name)
            except CorruptCollectionError as exc:
                report.problems.append(str(exc))
            except (OSError, ValueError, KeyError) as exc:
                report.problems.append(f"{name} is damaged ({exc})")
    report.checked.append(manifest.meta_db)
    report.problems += _sqlite_problems(directory / manifest.meta_db)
    if manifest.log:
        report.checked.append(manifest.log)
        try:
            read_log(directory / manifest.log)
        except CorruptCollectionError as exc:
            if not repair:
                report.problems.append(f"{exc} (slimvec check --repair salvages the log)")
            else:
                report.repaired.append(_repair_log(directory))
    if report.ok:
        report.problems += _answers(directory)
    return report


def _sqlite_problems(path: Path) -> list[str]:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = db.execute("PRAGMA integrity_check").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        return [f"{path.name} is not a readable SQLite database ({exc})"]
    found = [r[0] for r in rows if r[0] != "ok"]
    return [f"{path.name}: {found[0]}"] if found else []


def _repair_log(directory: Path) -> str:
    """Every valid record into a new log named by a new commit; the old file kept aside."""
    with write_lock(directory):
        manifest = Manifest.load(directory)
        old = directory / manifest.log
        records, lost = salvage_log(old)
        new_name = f"log-{manifest.generation + 1:06d}.wal"
        create_log(directory / new_name)
        end = 0
        for record in records:
            end = append_record(directory / new_name, end, record)
        kept = directory / f"lost-{manifest.log}"
        os.link(old, kept)  # before the commit: the sweep removes the old name afterwards
        manifest.log = new_name
        manifest.commit(directory)
    spans = ", ".join(f"bytes {a}-{b}" for a, b in lost) or "nothing"
    return (
        f"{old.name}: {len(records)} valid records moved to {new_name}; lost {spans} "
        f"(the damaged file is kept as {kept.name})"
    )


def _answers(directory: Path) -> list[str]:
    """The collection opens, counts and answers an exact search of its own first vector."""
    import slimvec

    try:
        col = slimvec.open(directory)
        try:
            got = col.get(limit=1)
            if len(got.ids) and col.info().get("multivector") is None:
                vector = col.get(got.ids[:1], vectors=True).vectors
                col.search(np.asarray(vector), k=1, exact=True)
            len(col)
        finally:
            col.close()
    except SlimvecError as exc:
        return [f"the collection does not open or answer: {exc}"]
    return []
