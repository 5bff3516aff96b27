"""What the framework adapters share: opening or creating the string-id collection behind a
store, and turning framework filters into slimvec's filter dict."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import slimvec
from slimvec.errors import IdKindError, InvalidInputError
from slimvec.search.filters import parse_filter
from slimvec.spec import DEFAULT_SPEC


class LazyCollection:
    """The collection at ``path``, created (string ids) by the first write, when the vector
    dimension becomes known; ``path=None`` uses a fresh temporary directory."""

    def __init__(
        self, path: str | Path | None, metric: str = "cosine", spec: str = DEFAULT_SPEC
    ) -> None:
        self.path = (
            Path(tempfile.mkdtemp(prefix="slimvec-")) / "store" if path is None else Path(path)
        )
        self.metric, self.spec = metric, spec
        self._col = None
        if (self.path / "MANIFEST.json").exists():
            self._col = slimvec.open(self.path)
            if self._col.id_kind != "str":
                raise IdKindError(
                    f"{str(self.path)!r} holds a collection with int ids; framework stores "
                    f"need string ids: create one with slimvec.create(..., ids='str')"
                )

    def get(self, dim: int | None = None):
        """The collection, or None while nothing was written (``dim`` creates it)."""
        if self._col is None and dim is not None:
            self._col = slimvec.create(
                self.path, dim=dim, metric=self.metric, spec=self.spec, ids="str"
            )
        return self._col


def checked_filter(where: Any) -> dict | None:
    """A slimvec filter dict validated before anything runs (unknown operators name
    themselves in the error); a callable filter is refused rather than ignored."""
    if where is None or where == {}:
        return None
    if callable(where):
        raise InvalidInputError(
            "callable filters cannot run inside slimvec's search; pass a metadata filter dict "
            'such as {"source": "a.txt", "year": {"$gte": 2020}}'
        )
    parse_filter(where)
    return where


def resolve_absent_fields(col: Any, where: dict | None) -> dict | None:
    """``where`` with each condition on a field no stored vector has replaced by its value
    for a missing field (``$ne``/``$nin``/``$exists: false`` hold, the rest do not).

    slimvec refuses such conditions to catch typos; the frameworks' stores treat them as
    matching nothing (or everything, for negations), and their users expect that."""
    if where is None or col is None:
        return where
    known: dict[str, bool] = {}

    def has(field: str) -> bool:
        if field not in known:
            known[field] = col.count({field: {"$exists": True}}) > 0
        return known[field]

    def walk(node: dict) -> dict:
        out: dict[str, Any] = {}
        for key, cond in node.items():
            if key in ("$and", "$or"):
                out[key] = [walk(c) for c in cond]
            elif key == "$not":
                out[key] = walk(cond)
            else:
                out[key] = cond if has(key) else {"$exists": not _holds_when_missing(cond)}
        return out

    return walk(where)


def _holds_when_missing(cond: Any) -> bool:
    if not (isinstance(cond, dict) and cond and all(str(k).startswith("$") for k in cond)):
        return False  # equality with a value
    holds = {"$ne": True, "$nin": True}
    return all(
        (not value) if op == "$exists" else holds.get(op, False) for op, value in cond.items()
    )
