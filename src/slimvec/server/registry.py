"""The served directory: one collection per sub-directory, opened through slimvec's public API.

Readers and writers use different handles. A reader handle is a snapshot that is never
written through, so concurrent searches never see a half-applied add; it is replaced when the
collection's ``MANIFEST.json`` (the commit point, replaced by an atomic rename) changes on disk.
That one ``stat`` per request is how readers in every worker process pick up commits, whoever
made them. Writes go through a separate handle, one thread at a time per process, and the
collection's own lock file orders writers across processes (``--workers N``).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import slimvec
from slimvec.encoders import register_encoder
from slimvec.errors import CollectionNotFoundError, CorruptCollectionError, InvalidInputError
from slimvec.remote.names import check_name, is_valid_name

MANIFEST = "MANIFEST.json"  # documented in the README's storage section
Stamp = tuple[int, int, int] | None


def _stamp(path: Path) -> Stamp:
    """Identity of the committed manifest: a commit renames a new file over it."""
    try:
        st = os.stat(path / MANIFEST)
    except (FileNotFoundError, NotADirectoryError):  # no collection (or a plain file) there
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class _Handle:
    def __init__(self) -> None:
        self.reader: slimvec.Collection | None = None
        self.stamp: Stamp = None
        self.writer: slimvec.Collection | None = None
        self.write_lock = threading.Lock()
        self.reopen_lock = threading.Lock()


class Registry:
    """Collections under ``root`` by name.

    ``encoders`` maps encoder names recorded in collections to ``Encoder`` objects to use
    instead of loading the model by name (custom encoders, tests). ``models``: the model names
    a create may give as ``encoder`` besides those; any other name, or a path, is refused
    before a file is looked at or a model fetched."""

    def __init__(
        self,
        root: str | Path,
        encoders: dict[str, Any] | None = None,
        models: Iterable[str] = (),
    ):
        self.root = Path(root)
        self.encoders = dict(encoders or {})
        for encoder in self.encoders.values():  # a model upgrade to one loads it by name
            register_encoder(encoder)
        self.models = frozenset(models) | frozenset(self.encoders)
        self._handles: dict[str, _Handle] = {}
        self._lock = threading.Lock()

    def path(self, name: str) -> Path:
        return self.root / check_name(name)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if is_valid_name(p.name) and (p / MANIFEST).is_file()
        )

    def _handle(self, name: str) -> _Handle:
        with self._lock:
            return self._handles.setdefault(check_name(name), _Handle())

    def _open(self, name: str) -> slimvec.Collection:
        path = self.path(name)
        if not (path / MANIFEST).is_file():
            raise CollectionNotFoundError(
                f"no collection named {name!r} on this server; create it with "
                f"PUT /collections/{name} (client.create({name!r}, dim=...))"
            )
        return slimvec.open(path)  # its encoder by name: registered ones first

    def reader(self, name: str) -> slimvec.Collection:
        """A read-only snapshot of the latest commit (reopened when the manifest changed)."""
        handle = self._handle(name)
        stamp = _stamp(self.path(name))
        if handle.reader is None or stamp != handle.stamp:
            with handle.reopen_lock:
                stamp = _stamp(self.path(name))
                if handle.reader is None or stamp != handle.stamp:
                    if handle.reader is not None and hasattr(handle.reader, "quality"):
                        handle.reader.quality.save(only_if_unsaved=True)  # read at the open
                    # the old snapshot stays usable by requests still holding it
                    handle.reader, handle.stamp = self._open_stable(name, stamp)
        return handle.reader

    def _open_stable(self, name: str, stamp: Stamp) -> tuple[slimvec.Collection, Stamp]:
        """Open the commit ``stamp`` names; if a compaction swept its files while we opened
        it, a newer commit exists: open that one instead."""
        for _ in range(5):
            try:
                return self._open(name), stamp
            except (CorruptCollectionError, FileNotFoundError):
                newer = _stamp(self.path(name))
                if newer == stamp or newer is None:
                    raise
                stamp = newer
        return self._open(name), _stamp(self.path(name))

    @contextmanager
    def writer(self, name: str) -> Iterator[slimvec.Collection]:
        """The write handle, one thread at a time; it catches up with other processes'
        commits itself before each write (under the collection's lock file)."""
        handle = self._handle(name)
        with handle.write_lock:
            if handle.writer is None or _stamp(self.path(name)) is None:
                handle.writer = self._open(name)
            yield handle.writer

    def create(self, name: str, options: dict[str, Any]) -> slimvec.Collection:
        path = self.path(name)
        handle = self._handle(name)
        options = self.offered_model(options)
        with handle.write_lock:
            self.root.mkdir(parents=True, exist_ok=True)
            handle.writer = slimvec.create(path, **options)
            return handle.writer

    def offered_model(self, options: dict[str, Any]) -> dict[str, Any]:
        """Create's ``options`` with ``encoder`` checked against the models this server offers
        (and swapped for its ``Encoder`` object where it has one). A client must not make the
        server probe its files (a path) or hold a thread downloading an unknown model."""
        encoder = options.get("encoder")
        if encoder is None:
            if options.get("layers") is not None or options.get("dims") is not None:
                raise InvalidInputError(
                    "layers/dims pick an operating point of an encoder: give encoder= too"
                )
            return options
        if not isinstance(encoder, str) or encoder not in self.models:
            shown = repr(encoder if isinstance(encoder, str) else type(encoder).__name__)
            offered = ", ".join(sorted(self.models)) or "none"
            raise InvalidInputError(
                f"encoder {shown[:80]} is not a model this server offers (offered: {offered}); "
                f"whoever runs it adds models with `slimvec serve --models NAME[,NAME...]`"
            )
        return {**options, "encoder": self.encoders.get(encoder, encoder)}

    def drop(self, name: str) -> None:
        path = self.path(name)
        handle = self._handle(name)
        with handle.write_lock:
            if not (path / MANIFEST).is_file():
                raise CollectionNotFoundError(f"no collection named {name!r} on this server")
            # another process may be writing: take its lock before removing the directory
            from slimvec.store.lock import write_lock

            with write_lock(path):
                trash = path.with_name(f".deleting-{name}-{os.getpid()}")
                path.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
            handle.reader = handle.writer = None
            handle.stamp = None

    def each(self, fn: Callable[[str, slimvec.Collection], Any]) -> list[Any]:
        out = []
        for name in self.names():
            try:
                out.append(fn(name, self.reader(name)))
            except CollectionNotFoundError:
                continue  # dropped meanwhile
        return out
