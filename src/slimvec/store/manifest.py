"""The manifest: one JSON file that says what is committed.

It is replaced atomically (write temp, fsync, rename), so it is the collection's single commit
point: files it does not name are leftovers of an interrupted write and are ignored (and
removed by the next writer).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from slimvec.errors import CollectionNotFoundError, CorruptCollectionError
from slimvec.store.files import atomic_write_text

MANIFEST = "MANIFEST.json"
FORMAT = "slimvec-collection"
FORMAT_VERSION = 1


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
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        body = {"format": FORMAT, "version": FORMAT_VERSION, **asdict(self)}
        return json.dumps(body, indent=2, sort_keys=True)

    def save(self, directory: Path) -> None:
        atomic_write_text(directory / MANIFEST, self.to_json())

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
        if body.get("version") != FORMAT_VERSION:
            raise CorruptCollectionError(
                f"{path} has format version {body.get('version')!r}; this slimvec reads version "
                f"{FORMAT_VERSION}: upgrade slimvec to open it"
            )
        try:
            segments = [SegmentEntry(**s) for s in body.pop("segments")]
            body.pop("format")
            body.pop("version")
            return cls(segments=segments, **body)
        except (KeyError, TypeError) as exc:
            raise CorruptCollectionError(f"{path} is missing or has unknown fields: {exc}") from exc
