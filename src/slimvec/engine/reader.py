"""Reading stored rows back from one view: texts and metadata by id, and ``get``'s pages.

Everything here reads only the view it is given (a call's pinned view), in the caller's ids
(``engine.ids``): the texts and metadata of the rows live in that view, never of a later
commit, so a page and its metadata always agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from slimvec.engine.view import View
from slimvec.search.funnel import ORIGINAL
from slimvec.search.result import GetResult


def values_of(view: View, ids: Any, what: str) -> list:
    """``texts`` or ``metadata`` of each of ``ids``, in order (None where the id is not live
    or nothing was stored)."""
    wanted = view.keys.internal(view.keys.user_ids(ids, unique=False, dedupe=False))
    rows, live = view.live_rows_of(wanted)
    of_rows = view.texts_of_rows if what == "texts" else view.meta_of_rows
    out: list = [None] * len(wanted)
    for i, value in zip(np.flatnonzero(live).tolist(), of_rows(rows[live])):
        out[i] = value
    return out


def page(
    view: View,
    ids: Any,
    filter: Any,  # noqa: A002
    limit: int | None,
    offset: int,
    vectors: bool | None,
) -> GetResult:
    """``get``: live rows restricted to ``ids`` (in the order asked, each once) and/or
    ``filter`` (in row order), ``limit`` from ``offset``; vectors by default with ids."""
    if ids is not None:  # by id, in the order asked (each once): no pass over every row
        asked = view.keys.user_ids(ids, unique=False, dedupe=False)
        rows, hit = view.live_rows_of(view.keys.internal(asked))
        rows = rows[hit]
        rows = rows[np.sort(np.unique(rows, return_index=True)[1])]
        if filter is not None:
            rows = rows[view.allow(filter)[rows]]
    else:
        rows = np.flatnonzero(~view.deleted.array if filter is None else view.allow(filter))
    rows = rows[offset : None if limit is None else offset + limit]
    if vectors is None:
        vectors = ids is not None
    found = None
    if vectors:
        dim = view.manifest.dim
        found = view.gather(ORIGINAL, rows) if len(rows) else np.empty((0, dim), np.float32)
    return GetResult(
        ids=view.keys.external(view.ids.array[rows]),
        metadata=view.meta_of_rows(rows),
        texts=view.texts_of_rows(rows),
        vectors=found,
    )
