"""The arguments of collection calls, spelled once: how a search runs (:class:`SearchParams`),
and the rules of the calls that take several modes (``delete``, ``update_metadata``,
``get``'s page), checked alike by every local kind of collection (plain, multi-vector,
upgrading), so that the same mistake gets the same message everywhere."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from slimvec.errors import InvalidInputError
from slimvec.search.filters import parse_filter
from slimvec.validation import as_metadata, as_texts, check_k


@dataclass(frozen=True)
class SearchParams:
    """How a search runs, past its queries and ``k``: every kind of collection's ``search``
    takes exactly these keywords (``tests/test_protocol.py`` checks it), and passes them on as
    one object. ``exact``: score the float32 originals; ``filter``: only rows whose metadata
    matches; ``nprobe``: lists an ``ivf:N`` collection reads per query."""

    exact: bool = False
    filter: Any = None
    nprobe: int | None = None

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class Tuning:
    """What a recall target (``engine.quality``) sets for a search whose call gave neither
    ``exact`` nor ``nprobe``: ``scale`` multiplies the lists an ``ivf:N`` search probes or,
    flat, every stage's shortlist; ``exact`` runs the exact plan."""

    scale: float = 1.0
    exact: bool = False


def row_info(metadata: Any, texts: Any, n: int) -> tuple[Any, Any]:
    """``add``'s and ``upsert``'s per-row metadata and texts, checked against ``n`` rows."""
    metas = as_metadata(metadata, n)
    if texts is not None:
        texts = as_texts(texts)
        if len(texts) != n:
            raise InvalidInputError(f"got {len(texts)} texts for {n} vectors")
    return metas, texts


def check_delete(ids: Any, filter: Any) -> None:  # noqa: A002
    """``delete`` takes ids or a filter (parsed here: a malformed one fails before any lock)."""
    if filter is not None:
        if ids is not None:
            raise InvalidInputError("give ids or filter to delete, not both")
        parse_filter(filter)
    elif ids is None:
        raise InvalidInputError("give the ids to delete, or filter={...}")


def check_update(ids: Any, metadatas: Any, filter: Any, merge: Any) -> str:  # noqa: A002
    """Which ``update_metadata`` this is: "replace" (ids and one metadata per id) or
    "merge" (one dict into the rows ``filter`` and/or ``ids`` select)."""
    if merge is None:
        if filter is not None:
            raise InvalidInputError(
                "filter selects the rows of update_metadata(filter=..., merge={...}); to "
                "replace metadata per id, give ids and metadatas"
            )
        if ids is None:
            raise InvalidInputError("give the ids to update (or filter=... with merge={...})")
        return "replace"
    if metadatas is not None:
        raise InvalidInputError(
            "give metadatas (replaces each id's metadata) or merge (one dict merged into "
            "every selected row), not both"
        )
    if not isinstance(merge, dict):
        raise InvalidInputError(f"merge must be one metadata dict, got {merge!r}")
    try:
        as_metadata([merge], 1)  # JSON-able, string keys
    except InvalidInputError as exc:
        raise InvalidInputError(str(exc).replace("metadata[0]", "merge", 1)) from None
    if ids is None and filter is None:
        raise InvalidInputError("update_metadata(merge=...) needs a filter or ids to select rows")
    if filter is not None:
        parse_filter(filter)
    return "merge"


def check_page(limit: Any, offset: Any) -> tuple[int | None, int]:
    """``get``'s page: ``limit`` (None: all) and a non-negative ``offset``."""
    if limit is not None:
        limit = check_k(limit)
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or offset < 0:
        raise InvalidInputError(f"offset must be a non-negative integer, got {offset!r}")
    return limit, int(offset)
