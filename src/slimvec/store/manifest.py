"""The manifest: one JSON file that says what is committed.

It is replaced atomically (write temp, fsync, rename), so it is the collection's single commit
point: files it does not name are leftovers of an interrupted write and are ignored (and
removed by the next writer).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from slimvec.errors import CollectionNotFoundError, CorruptCollectionError
from slimvec.spec import MAX_DIM
from slimvec.store.files import atomic_write_text
from slimvec.validation import METRICS

MANIFEST = "MANIFEST.json"
FORMAT = "slimvec-collection"
FORMAT_VERSION = 2
#: Versions this slimvec reads: 1 had no write-ahead log (loaded with none).
READABLE_VERSIONS = (1, 2)
#: A file name inside the collection directory: no separators, no "..", not hidden.
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$")
_SEGMENT_NAME = re.compile(r"^seg-\d{1,12}$")
#: Where a model upgrade keeps its new space (and a finished one moved to).
_SPACE_NAME = re.compile(r"^spaces/\d{1,12}$")


@dataclass
class SegmentEntry:
    name: str
    start: int  # first global row number
    rows: int


@dataclass
class Manifest:
    dim: int
    metric: str
    spec: str
    generation: int = 0
    rows: int = 0
    next_id: int = 0
    segments: list[SegmentEntry] = field(default_factory=list)
    state_file: str | None = None
    tombstones: str | None = None
    deleted: int = 0
    meta_db: str = "meta-000000.sqlite"
    log: str | None = None  # the write-ahead log of small writes (store/log.py)
    fitted_on: int = 0  # rows the pipeline's transforms and codecs were last fitted on
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def files(self) -> set[str]:
        """Top-level files this manifest names (besides segments)."""
        named = {self.state_file, self.tombstones, self.meta_db, self.log}
        named.update(self.extra.get("bm25", {}).get("files", []))
        return {n for n in named if n}

    def to_json(self) -> str:
        body = {"format": FORMAT, "version": FORMAT_VERSION, **asdict(self)}
        return json.dumps(body, indent=2, sort_keys=True)

    def save(self, directory: Path) -> None:
        atomic_write_text(directory / MANIFEST, self.to_json())

    def commit(self, directory: Path) -> None:
        """The one way a write becomes visible: bump the generation, replace the file."""
        self.generation += 1
        self.save(directory)

    def validate(self, path: Path) -> None:
        """Refuse a manifest that names files outside the collection or has impossible
        numbers (a damaged or hostile file must not make a writer touch other files)."""
        bad = [n for n in self.files if not isinstance(n, str) or not _FILE_NAME.match(n)]
        bad += [s.name for s in self.segments if not _SEGMENT_NAME.match(str(s.name))]
        for key in ("moved_to",):
            value = self.extra.get(key)
            if value is not None and not (isinstance(value, str) and _SPACE_NAME.match(value)):
                bad.append(value)
        upgrade = self.extra.get("upgrade")
        if isinstance(upgrade, dict):
            space = upgrade.get("space")
            if not (isinstance(space, str) and _SPACE_NAME.match(space)):
                bad.append(space)
            for group in (upgrade.get("files") or {}).values():
                bad += [n for n in group.values() if not _FILE_NAME.match(str(n))]
        if bad:
            raise CorruptCollectionError(
                f"{path} names files outside the collection or with invalid names "
                f"({bad[:5]}); it is damaged or was tampered with: restore from a backup"
            )
        start = 0
        for s in self.segments:
            if not (isinstance(s.start, int) and isinstance(s.rows, int)) or s.start != start:
                raise CorruptCollectionError(f"{path} has inconsistent segment rows; restore")
            start += s.rows
        if start != self.rows or not 0 <= self.deleted <= self.rows or self.next_id < 0:
            raise CorruptCollectionError(f"{path} has inconsistent row counts; restore it")
        if self.metric not in METRICS or not (
            isinstance(self.dim, int)
            and not isinstance(self.dim, bool)
            and 1 <= self.dim <= MAX_DIM
        ):
            raise CorruptCollectionError(
                f"{path} has metric {self.metric!r} and dim {self.dim!r}; a collection has "
                f"metric {' or '.join(METRICS)} and 1..{MAX_DIM} dims: it is damaged, restore it"
            )

    @classmethod
    def load(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST
        if not directory.is_dir():
            raise CollectionNotFoundError(
                f"no collection at {str(directory)!r}: "
                f"create one with slimvec.create(path, dim=...)"
            )
        if not path.is_file():
            raise CollectionNotFoundError(
                f"{str(directory)!r} is not a slimvec collection (it has no {MANIFEST}); "
                f"check the path, or create one with slimvec.create(path, dim=...)"
            )
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptCollectionError(
                f"{path} is damaged ({exc}); restore the collection from a backup"
            ) from exc
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise CorruptCollectionError(
                f"{path} is not a slimvec manifest (format {body.get('format')!r} if any); "
                f"this directory belongs to something else"
                if isinstance(body, dict)
                else f"{path} is not a slimvec manifest"
            )
        if body.get("version") not in READABLE_VERSIONS:
            raise CorruptCollectionError(
                f"{path} has format version {body.get('version')!r}; this slimvec reads version "
                f"{FORMAT_VERSION}: upgrade slimvec to open it"
            )
        try:
            segments = [SegmentEntry(**s) for s in body.pop("segments")]
            body.pop("format")
            body.pop("version")
            manifest = cls(segments=segments, **body)
        except (KeyError, TypeError) as exc:
            raise CorruptCollectionError(f"{path} is missing or has unknown fields: {exc}") from exc
        manifest.validate(path)
        return manifest
