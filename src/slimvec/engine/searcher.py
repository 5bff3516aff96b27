"""Running a search on one view: the plan the planner priced, then its scan.

An unfiltered search is priced by :mod:`slimvec.engine.planner` (exact BLAS or the funnel, the
funnel's first pass flat or through trained IVF lists). A filtered one computes the allow-mask
on the same view first, then: nothing matches (an empty result that says why), few rows match
(they are scored exactly), or the first pass scans with the mask and every shortlist grows by
1 / selectivity, up to ``FILTER_GROWTH_MAX``, so that the filtered top-k keeps its recall.
Everything here reads only the view it is given; ``explain`` says which plan ran.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import numpy as np

from slimvec.engine import planner
from slimvec.engine.arguments import SearchParams, Tuning
from slimvec.engine.view import View
from slimvec.errors import InvalidInputError
from slimvec.index.sizing import check_nprobe
from slimvec.kernels.topk import pad_results
from slimvec.search.filters import parse_filter
from slimvec.search.result import SearchResult
from slimvec.validation import check_k

#: Filtered search scores the matching rows exactly (no funnel) when there are at most this
#: many, or when gathering their originals reads fewer bytes than the first pass scans.
EXACT_FILTER_ROWS = 4096
#: Cap on how much a filtered funnel grows its shortlists (by 1 / selectivity). Measured on
#: 50k embedding-like vectors: growing past 2x bought <= 0.005 recall@10 (binary*10) or none
#: (binary*40) for 2-10x the rescoring cost, because the masked first pass already ranks only
#: matching rows.
FILTER_GROWTH_MAX = 2


def check_nprobe_for(view: View, nprobe: Any, spec: str) -> None:
    """``nprobe`` is valid for this view's IVF lists (an error without ``ivf:N``). An
    ``ivf:auto`` collection's list count changes as it grows, so any positive ``nprobe`` is
    taken there, capped at the lists it has (and unused while it is flat)."""
    if view.ivf is None:
        raise InvalidInputError(
            f"nprobe applies to partitioned ('ivf:N | ...') collections; this one's spec "
            f"is {spec!r}: leave nprobe out"
        )
    check_nprobe(nprobe, None if view.ivf.auto else view.ivf.nlist)


def run(
    view: View, q: Any, k: Any, params: SearchParams, tuning: Tuning | None = None
) -> SearchResult:
    """A search as asked: ``params`` checked against this view, then the plan it needs, at
    the setting a recall target chose (``tuning``; never where the call set its own)."""
    k = check_k(k)
    if params.nprobe is not None:
        check_nprobe_for(view, params.nprobe, view.manifest.spec)
    wide, tuned = tune(view, k, params, tuning)
    if tuned.filter is not None:
        out = search_filtered(view, q, wide, tuned.exact, tuned.filter, tuned.nprobe)
    else:
        out = search(view, q, wide, tuned.exact, tuned.nprobe)
    if (tuned is not params or wide != k) and out.explain is not None:
        out.explain["tuning"] = {"scale": tuning.scale, "exact": tuning.exact}
    if wide == k:
        return out
    return SearchResult(out.ids[:, :k], out.scores[:, :k], out.explain)


def tune(
    view: View, k: int, params: SearchParams, tuning: Tuning | None
) -> tuple[int, SearchParams]:
    """(k to search for, params) at ``tuning``: the exact plan, more IVF lists, or (flat)
    every shortlist widened by searching for ``scale * k`` and keeping the best ``k``."""
    if tuning is None or tuning == Tuning() or params.exact or params.nprobe is not None:
        return k, params
    if tuning.exact:
        return k, replace(params, exact=True)
    if view.ivf is not None and view.ivf.trained:
        nlist = view.ivf.nlist
        nprobe = min(nlist, math.ceil(view.ivf.default_nprobe * tuning.scale))
        return k, replace(params, nprobe=nprobe)
    return math.ceil(k * tuning.scale), params


def plan(view: View, nq: int, rows: int, exact: bool, nprobe: int | None) -> dict[str, Any]:
    """``explain`` of the plan for ``nq`` queries over ``rows`` live (or matching) rows:
    exact when asked or not fitted yet, else the cheaper of exact and the funnel."""
    if exact:
        return {"plan": "exact-scan", "why": "exact=True"}
    if not view.fitted:
        return {"plan": "exact-scan", "why": "pipeline not fitted yet"}
    if not view.rows.plans_exact:
        return {"plan": "funnel", "why": "the funnel is the only approximate plan"}
    scanned, table_bytes = 1.0, 0.0
    if view.ivf is not None and view.ivf.trained:
        scanned = view.ivf.probed_fraction(nprobe)
    elif view.tables is not None:  # the flat table scan reads the bit planes
        table_bytes = len(view.tables.docs) / max(32 * len(view.tables.block_len), 1)
    pipeline = view.pipeline
    code_bytes = pipeline.bytes_per_vector(pipeline.first_key)
    chosen = planner.choose(nq, rows, view.manifest.dim, code_bytes, scanned, table_bytes)
    explain = chosen.explain()
    if explain["plan"] == "funnel":
        explain["first_pass"] = (
            "ivf" if scanned < 1.0 else "flat table scan" if table_bytes else "flat code scan"
        )
    return explain


def first_pass(view: View, q: Any, k: int, allow: np.ndarray | None, nprobe: int | None):
    """The funnel, with an IVF first pass once the view's lists are trained."""
    if view.ivf is not None and view.ivf.trained:
        return view.rows.ivf_search(view, q, k, allow, nprobe)
    return view.rows.approximate(view, q, k, allow)


def _result(view: View, rows: np.ndarray, scores: np.ndarray, k: int, explain: dict):
    rows, scores = pad_results(rows, scores, k)
    stored = view.ids.array
    if not len(stored):  # an empty collection: every slot is padding
        return SearchResult(ids=np.full_like(rows, -1), scores=scores, explain=explain)
    ids = np.where(rows >= 0, stored[np.maximum(rows, 0)], -1)
    return SearchResult(ids=ids, scores=scores, explain=explain)


def search(view: View, q: Any, k: int, exact: bool, nprobe: int | None = None) -> SearchResult:
    """Top-``k`` internal ids over the view's live rows for validated queries ``q``; the work
    is sized by the live count, the result padded to ``k``."""
    deleted = view.deleted.array
    live = len(deleted) - view.deleted.count
    nq = len(q)
    if live == 0:
        return SearchResult(
            ids=np.full((nq, k), -1, np.int64), scores=np.full((nq, k), -np.inf, np.float32)
        )
    allow = ~deleted if live < len(deleted) else None
    work = min(k, live)
    explain = plan(view, nq, live, exact, nprobe)
    if explain["plan"] == "exact-scan":
        rows, scores = view.rows.exact(view, q, work, allow)
    else:
        rows, scores = first_pass(view, q, work, allow, nprobe)
    return _result(view, rows, scores, k, explain)


def search_filtered(
    view: View,
    q: Any,
    k: int,
    exact: bool,
    filter: Any,  # noqa: A002
    nprobe: int | None = None,
) -> SearchResult:
    """Top-``k`` among the live rows whose metadata matches ``filter`` (see the module
    docstring for the plans)."""
    nq = len(q)
    start = time.perf_counter()
    allow = view.allow(filter)
    matching = int(np.count_nonzero(allow))
    live = view.live_count
    explain: dict[str, Any] = {
        "matching": matching,
        "live": live,
        "selectivity": matching / live if live else 0.0,
        "filter_ms": round(1000 * (time.perf_counter() - start), 3),
    }
    limit = max(EXACT_FILTER_ROWS, len(allow) * view.rows.first_bytes_ratio(view))
    if matching == 0:
        rows = np.full((nq, k), -1, np.int64)
        scores = np.full((nq, k), -np.inf, np.float32)
        missing = view.filter_columns().missing_fields(parse_filter(filter))
        why = "no live vector matches the filter"
        if missing:
            why += f" (no vector has the field {', '.join(map(repr, missing))})"
        explain.update(plan="empty", why=why)
    elif (chosen := plan(view, nq, matching, exact, nprobe))["plan"] == "exact-scan":
        rows, scores = view.rows.exact(view, q, min(k, matching), allow)
        explain.update(chosen)
    elif matching <= limit:
        rows, scores = view.rows.score_rows(view, q, min(k, matching), np.flatnonzero(allow))
        explain.update(
            plan="exact-rows",
            why=f"{matching:,} matching rows <= {int(limit):,}: scoring them exactly "
            f"costs less than a first pass",
        )
    else:
        growth = int(min(FILTER_GROWTH_MAX, max(1, round(live / matching))))
        rows, scores = first_pass(view, q, min(k * growth, matching), allow, nprobe)
        rows, scores = rows[:, :k], scores[:, :k]
        explain.update(
            plan="masked-funnel",
            why=f"{matching:,} matching rows: first pass with the filter as allow-mask, "
            f"shortlists grown x{growth}",
            growth=growth,
        )
    out = _result(view, rows, scores, k, explain)
    explain["total_ms"] = round(1000 * (time.perf_counter() - start), 3)
    return out
