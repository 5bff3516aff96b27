"""Record files: what ``slimvec add`` / ``slimvec upsert`` read and ``slimvec export`` writes.

One JSON object per line (``.jsonl``), or one row per record (``.parquet``, same fields)::

    {"id": "doc-7", "text": "Perl module to ...", "metadata": {"lang": "en"}, "vector": [...]}

- ``id``: an integer in an int-id collection, a string in a string-id one, never cast (the
  wrong kind is an ``IdKindError`` naming the line). Every record has one or none does (then
  ids are assigned: integers counting up, or UUID strings); upserts need them.
- ``text``: a string. Required unless the record has a ``vector``; with one it is stored
  beside it (keyword search, re-embedding) and not embedded.
- ``vector``: a list of ``dim`` numbers (a multi-vector collection: a list of token vectors,
  each of ``dim`` numbers). Every record has one or none does; without them the texts are
  embedded with the collection's encoder.
- ``metadata``: an object (or null). Any other top-level field is metadata too, so a flat
  ``{"id": 1, "text": "...", "lang": "en"}`` works; a field given both ways is an error.

:func:`write_records` writes that shape, nested ``metadata`` and all, so an exported file adds
back as it was: ids, texts, metadata and (when written) the stored vectors.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from slimvec.datasets.files import iter_jsonl
from slimvec.errors import DuplicateIdError, IdKindError, InvalidInputError

#: Top-level fields with a meaning of their own; every other field is metadata.
FIELDS = ("id", "text", "metadata", "vector")
SUFFIXES = (".jsonl", ".parquet")


@dataclass
class Records:
    """The records of one file, validated: per-record lists (``None`` where no record had the
    field) and each record's line number (row number for Parquet), for messages."""

    source: Path
    lines: list[int]
    ids: list[Any] | None
    texts: list[str | None]
    metadata: list[dict | None]
    vectors: list[np.ndarray] | None

    def __len__(self) -> int:
        return len(self.lines)

    @property
    def has_texts(self) -> bool:
        return any(t is not None for t in self.texts)

    def take(self, index: Iterable[int]) -> Records:
        """The records at these positions (in that order)."""
        index = list(index)
        return Records(
            source=self.source,
            lines=[self.lines[i] for i in index],
            ids=None if self.ids is None else [self.ids[i] for i in index],
            texts=[self.texts[i] for i in index],
            metadata=[self.metadata[i] for i in index],
            vectors=None if self.vectors is None else [self.vectors[i] for i in index],
        )

    def metadata_or_none(self) -> list[dict | None] | None:
        return self.metadata if any(m is not None for m in self.metadata) else None

    def texts_or_none(self) -> list[str] | None:
        """The texts when every record has one (what ``add(..., texts=)`` takes), else None."""
        return self.texts if all(t is not None for t in self.texts) else None


def read_records(
    path: Path, id_kind: str, dim: int | None = None, multivector: bool = False
) -> Records:
    """Read and validate a ``.jsonl`` or ``.parquet`` record file for a collection whose ids
    are ``id_kind`` ("int" or "str") and vectors ``dim``-dimensional. Every problem is an
    ``InvalidInputError`` naming the file and line, raised before anything is written."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows: Iterable[tuple[int, Any]] = iter_jsonl(path)
    elif suffix == ".parquet":
        rows = _parquet_rows(path)
    else:
        raise InvalidInputError(
            f"{path.name}: unknown file type {suffix or '(none)'}; records come as .jsonl "
            f"(one JSON object per line) or .parquet"
        )
    lines, ids, texts, metas, vectors = [], [], [], [], []
    for line, record in rows:
        where = f"{path}:{line}"
        if not isinstance(record, dict):
            raise InvalidInputError(
                f'{where} must be a JSON object such as {{"id": 1, "text": "..."}}, got '
                f"{type(record).__name__}"
            )
        lines.append(line)
        ids.append(_check_id(record.get("id"), id_kind, where))
        vectors.append(_check_vector(record.get("vector"), dim, multivector, where))
        text = record.get("text")
        if text is not None and not isinstance(text, str):
            raise InvalidInputError(f'{where}: "text" must be a string, got {type(text).__name__}')
        if text is None and vectors[-1] is None:
            raise InvalidInputError(
                f'{where} needs a "text" string (embedded by the collection\'s encoder) or a '
                f'"vector", e.g. {{"id": 1, "text": "..."}}'
            )
        texts.append(text)
        metas.append(_metadata(record, where))
    if not lines:
        raise InvalidInputError(f"{path} holds no records")
    _all_or_none(lines, ids, "id", path, "give every record an id, or none (ids are assigned)")
    _all_or_none(
        lines, vectors, "vector", path, "give every record a vector, or none (texts embedded)"
    )
    given = None if ids[0] is None else ids
    if given is not None:
        _reject_repeats(given, lines, path)
    return Records(
        source=path,
        lines=lines,
        ids=given,
        texts=texts,
        metadata=metas,
        vectors=None if vectors[0] is None else vectors,
    )


def _parquet_rows(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise InvalidInputError(
            f"reading {path.name} needs pyarrow (pip install pyarrow), or convert it to .jsonl"
        ) from exc
    return enumerate(pq.read_table(path).to_pylist(), 1)


def _check_id(value: Any, id_kind: str, where: str) -> Any:
    if value is None:
        return None
    if id_kind == "str":
        if isinstance(value, str):
            return value
        raise IdKindError(
            f"{where}: id {value!r} is not a string, but the collection has string ids; write "
            f'it as one ("{value}") — ids are never cast'
        )
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        raise IdKindError(
            f"{where}: id {value!r} is a string, but the collection has integer ids; put "
            f"string ids in a collection made with `slimvec create PATH --ids str`"
        )
    raise InvalidInputError(f"{where}: id must be an integer, got {value!r}")


def _check_vector(value: Any, dim: int | None, multivector: bool, where: str) -> Any:
    if value is None:
        return None
    want = "a list of token vectors" if multivector else f"a list of {dim or 'dim'} numbers"
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise InvalidInputError(f'{where}: "vector" must be {want}') from None
    shape_ok = array.ndim == (2 if multivector else 1) and array.size > 0
    if not shape_ok or (dim is not None and array.shape[-1] != dim):
        raise InvalidInputError(
            f'{where}: "vector" must be {want}'
            + (f" of {dim} numbers each" if multivector and dim else "")
            + f", got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise InvalidInputError(f'{where}: "vector" holds NaN or infinite values')
    return array


def _metadata(record: dict, where: str) -> dict | None:
    nested = record.get("metadata")
    if nested is not None and not isinstance(nested, dict):
        raise InvalidInputError(
            f'{where}: "metadata" must be an object (or null), got {type(nested).__name__}'
        )
    flat = {k: v for k, v in record.items() if k not in FIELDS}
    both = sorted(set(flat) & set(nested or {}))
    if both:
        raise InvalidInputError(
            f'{where}: field {both[0]!r} is given both at the top level and inside "metadata"; '
            f"keep one"
        )
    merged = {**(nested or {}), **flat}
    return merged or None


def _all_or_none(lines: list[int], values: list[Any], field: str, path: Path, hint: str) -> None:
    present = [v is not None for v in values]
    if any(present) and not all(present):
        has = lines[present.index(True)]
        lacks = lines[present.index(False)]
        raise InvalidInputError(f'{path}:{lacks} has no "{field}" but {path}:{has} has one; {hint}')


def _reject_repeats(ids: list[Any], lines: list[int], path: Path) -> None:
    first: dict[Any, int] = {}
    for line, i in zip(lines, ids):
        if i in first:
            raise DuplicateIdError(
                f"{path}:{line} repeats id {i!r} of line {first[i]}; each id once per file"
            )
        first[i] = line


# -- writing -----------------------------------------------------------------------------------
def record_lines(
    ids: Iterable[Any],
    texts: Iterable[str | None],
    metadata: Iterable[dict | None],
    vectors: np.ndarray | None = None,
) -> Iterator[str]:
    """One JSON line per record (no newline) in the shape :func:`read_records` reads: ``id``,
    then ``text`` and ``metadata`` when present, then ``vector`` (float32 values printed with
    9 significant digits, which read back as the same float32)."""
    rows = zip(ids, texts, metadata, vectors if vectors is not None else _nones())
    for i, text, meta, vector in rows:
        record: dict[str, Any] = {"id": i.item() if isinstance(i, np.generic) else i}
        if text is not None:
            record["text"] = text
        if meta is not None:
            record["metadata"] = meta
        line = json.dumps(record, ensure_ascii=False)
        if vector is not None:
            numbers = ",".join(f"{v:.9g}" for v in np.asarray(vector, np.float32).tolist())
            line = f'{line[:-1]}, "vector": [{numbers}]}}'
        yield line


def write_records(out: IO[str], *args: Any) -> int:
    """Write :func:`record_lines` (same arguments) to a text stream; returns the count."""
    count = 0
    for line in record_lines(*args):
        out.write(line + "\n")
        count += 1
    return count


def _nones() -> Iterator[None]:
    while True:
        yield None
