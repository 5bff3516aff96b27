"""Fuse ranked lists from several retrievers (dense, BM25, multi-vector) into one top-k.

Every input list is a pair ``(ids, scores)`` of (nq, k_i) arrays, best first, where id -1 marks
padding (its score is ignored). Lists may have different widths. Two methods:

* **Reciprocal rank fusion** (Cormack, Clarke & Buettcher 2009): a document scores
  ``sum_l w_l / (constant + rank_l)`` with ranks counted from 1 among a list's real entries.
  Scores are never compared across retrievers, only ranks, so it needs no calibration; it is
  the robust default.
* **Weighted sum of normalised scores**: each list's scores are put on a common scale per query
  (``"minmax"`` to [0, 1], or ``"zscore"``), then summed with weights. It keeps score gaps
  (a runaway BM25 match counts for more than a near-tie), at the price of depending on how
  the scores are distributed. A document missing from a list gets that list's lowest
  normalised score for the query: a retriever that did not return it rated it no better than
  the worst document it did return (0 for min-max, the list's lowest z-score for z-score).

Everything is vectorised over queries: the lists are concatenated, sorted by (query, id) once,
and equal ids are summed with ``np.add.reduceat``. Ties are broken by the smaller id, so
results are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from slimvec.errors import InvalidInputError
from slimvec.search.filters import parse_filter
from slimvec.search.result import SearchResult
from slimvec.validation import as_texts, check_k

RRF_CONSTANT = 60.0
MODES = ("rrf", "weighted")
#: What ``search_texts`` can do: the encoder + funnel, BM25, or both fused.
SEARCH_MODES = ("dense", "sparse", "hybrid")
NORMALISATIONS = ("minmax", "zscore")

Ranked = tuple[np.ndarray, np.ndarray]


def check_text_search(
    queries: Any, k: Any, mode: str, fusion: str, candidates: Any
) -> tuple[list[str], int, int]:
    """``search_texts`` arguments checked the same way by every kind of collection: the
    queries as a list, ``k``, and the hybrid depth (``candidates``, default ``max(10k, 100)``)."""
    if mode not in SEARCH_MODES:
        raise InvalidInputError(f"unknown mode {mode!r}; use one of {', '.join(SEARCH_MODES)}")
    if fusion not in MODES:
        raise InvalidInputError(f"unknown fusion mode {fusion!r}; use one of {', '.join(MODES)}")
    k = check_k(k)
    depth = check_k(candidates) if candidates is not None else max(10 * k, 100)
    return as_texts(queries, "queries"), k, depth


#: One side of a text search: (queries, how many) -> a ``SearchResult``, best first.
Side = Callable[[list[str], int], SearchResult]


def text_search(
    queries: Any,
    k: Any,
    mode: str,
    *,
    dense: Side,
    sparse: Side,
    has_texts: Callable[[], bool],
    where: str,
    fusion: str = "rrf",
    weights: Sequence[float] | None = None,
    rrf_constant: float = RRF_CONSTANT,
    candidates: Any = None,
    filter: Any = None,  # noqa: A002
    nprobe: Any = None,
) -> SearchResult:
    """``search_texts`` of every local kind of collection (a plain one, an upgrade's two
    spaces): checks the arguments once, then runs the ``dense`` side (the encoder and the
    funnel, which applies ``filter`` and ``nprobe`` itself), the ``sparse`` one (BM25,
    filtered) or both fused by ``fusion``. ``where`` names the collection in errors."""
    queries, k, depth = check_text_search(queries, k, mode, fusion, candidates)
    if nprobe is not None and mode == "sparse":
        raise InvalidInputError(
            "nprobe sets the IVF lists the dense search reads; mode='sparse' (BM25) "
            "reads none: leave nprobe out or use mode='dense' or 'hybrid'"
        )
    if filter is not None:
        parse_filter(filter)  # a malformed filter fails before any model runs
    if mode == "dense":
        return dense(queries, k)
    if not has_texts():
        raise InvalidInputError(
            f"collection {where} holds no texts, so it has no keyword index; add "
            f"texts with add_texts(...) or add(vectors, texts=...)"
        )
    if mode == "sparse":
        return sparse(queries, k)
    both = [dense(queries, depth), sparse(queries, depth)]
    return SearchResult(*fuse(both, k, fusion, weights=weights, constant=rrf_constant))


def fuse(
    ranked: Sequence[Any],
    k: int,
    mode: str = "rrf",
    *,
    weights: Sequence[float] | None = None,
    constant: float = RRF_CONSTANT,
    normalisation: str = "minmax",
) -> Ranked:
    """Fused top-``k`` (ids (nq, k) int64, scores (nq, k) float32); -1 / -inf pad.

    ``mode``: ``"rrf"`` (uses ``constant``) or ``"weighted"`` (uses ``normalisation``).
    ``ranked`` items are ``(ids, scores)`` pairs or objects with ``.ids`` and ``.scores``
    (such as a collection's ``SearchResult``).
    """
    if mode == "rrf":
        return reciprocal_rank_fusion(ranked, k, constant=constant, weights=weights)
    if mode == "weighted":
        return weighted_sum(ranked, k, weights=weights, normalisation=normalisation)
    raise InvalidInputError(f"unknown fusion mode {mode!r}; use one of {', '.join(MODES)}")


def reciprocal_rank_fusion(
    ranked: Sequence[Any],
    k: int,
    constant: float = RRF_CONSTANT,
    weights: Sequence[float] | None = None,
) -> Ranked:
    """RRF: ``score(d) = sum_l weights[l] / (constant + rank_l(d))``, ranks from 1."""
    lists = _check_lists(ranked)
    k = check_k(k)
    w = _check_weights(weights, len(lists))
    if not np.isfinite(constant) or constant < 0:
        raise InvalidInputError(
            f"the RRF constant must be a finite number >= 0 (60 is the usual choice), "
            f"got {constant!r}"
        )
    parts = []
    for (ids, _), weight in zip(lists, w):
        valid = ids >= 0
        rank = np.cumsum(valid, axis=1)  # 1-based rank among the list's real entries
        contrib = np.where(valid, weight / (constant + rank), 0.0)
        parts.append((ids, contrib))
    nq = lists[0][0].shape[0]
    return _sum_and_select(parts, np.zeros(nq), k)


def weighted_sum(
    ranked: Sequence[Any],
    k: int,
    weights: Sequence[float] | None = None,
    normalisation: str = "minmax",
) -> Ranked:
    """Sum of per-query normalised scores, ``sum_l weights[l] * norm_l(d)``.

    ``"minmax"`` maps each list's scores for a query to [0, 1] (a list whose scores are all
    equal gives 1 to each of them); ``"zscore"`` subtracts the mean and divides by the standard
    deviation (0 for a constant list). Documents a list did not return get 0 under min-max
    and the list's lowest z-score under z-score.
    """
    if normalisation not in NORMALISATIONS:
        raise InvalidInputError(
            f"unknown score normalisation {normalisation!r}; use one of {', '.join(NORMALISATIONS)}"
        )
    lists = _check_lists(ranked)
    k = check_k(k)
    w = _check_weights(weights, len(lists))
    nq = lists[0][0].shape[0]
    base = np.zeros(nq)  # what every document gets from lists that did not return it
    parts = []
    for (ids, scores), weight in zip(lists, w):
        valid = ids >= 0
        s = np.where(valid, scores.astype(np.float64), 0.0)
        bad = valid & ~np.isfinite(s)
        if bad.any():
            row = int(np.argwhere(bad)[0, 0])
            raise InvalidInputError(
                f"weighted fusion needs finite scores for every returned id; query {row} has "
                f"{scores[row][bad[row]][:3].tolist()}: use mode='rrf', which only uses ranks"
            )
        count = valid.sum(axis=1)
        has = count > 0
        if normalisation == "minmax":
            lo = np.where(valid, s, np.inf).min(axis=1)
            hi = np.where(valid, s, -np.inf).max(axis=1)
            span = hi - lo
            norm = np.where(
                (span > 0)[:, None], (s - lo[:, None]) / np.where(span > 0, span, 1)[:, None], 1.0
            )
        else:
            mean = s.sum(axis=1) / np.maximum(count, 1)
            var = (np.where(valid, s - mean[:, None], 0.0) ** 2).sum(axis=1) / np.maximum(count, 1)
            std = np.sqrt(var)
            norm = np.where(
                (std > 0)[:, None], (s - mean[:, None]) / np.where(std > 0, std, 1)[:, None], 0.0
            )
        if normalisation == "minmax":
            floor = np.zeros(nq)  # absent = 0, below any list that returned only one score
        else:
            floor = np.where(has, np.where(valid, norm, np.inf).min(axis=1), 0.0)
        base += weight * floor
        parts.append((ids, np.where(valid, weight * (norm - floor[:, None]), 0.0)))
    return _sum_and_select(parts, base, k)


def _sum_and_select(parts: list[tuple[np.ndarray, np.ndarray]], base: np.ndarray, k: int) -> Ranked:
    """Sum contributions of equal ids per query, add ``base``, keep the best ``k`` per query."""
    nq = parts[0][0].shape[0]
    ids = np.concatenate([p[0] for p in parts], axis=1).ravel()
    contrib = np.concatenate([p[1] for p in parts], axis=1).ravel()
    width = len(ids) // max(nq, 1)
    rows = np.repeat(np.arange(nq), width)
    keep = ids >= 0
    ids, contrib, rows = ids[keep], contrib[keep], rows[keep]
    out_ids = np.full((nq, k), -1, np.int64)
    out_scores = np.full((nq, k), -np.inf, np.float32)
    if len(ids) == 0:
        return out_ids, out_scores
    order = np.lexsort((ids, rows))
    ids, contrib, rows = ids[order], contrib[order], rows[order]
    starts = np.flatnonzero(np.r_[True, (ids[1:] != ids[:-1]) | (rows[1:] != rows[:-1])])
    total = np.add.reduceat(contrib, starts) + base[rows[starts]]
    uids, urows = ids[starts], rows[starts]
    # best first within each query, ties to the smaller id
    order = np.lexsort((uids, -total, urows))
    uids, urows, total = uids[order], urows[order], total[order]
    first = np.searchsorted(urows, np.arange(nq))
    pos = np.arange(len(urows)) - first[urows]
    sel = pos < k
    out_ids[urows[sel], pos[sel]] = uids[sel]
    out_scores[urows[sel], pos[sel]] = total[sel]
    return out_ids, out_scores


def _check_lists(ranked: Sequence[Any]) -> list[Ranked]:
    if isinstance(ranked, tuple) and len(ranked) == 2 and isinstance(ranked[0], np.ndarray):
        raise InvalidInputError(
            "pass a list of (ids, scores) pairs, one per retriever, e.g. [(ids_a, s_a), "
            "(ids_b, s_b)]; got a single pair"
        )
    if not isinstance(ranked, Sequence) or len(ranked) == 0:
        raise InvalidInputError("fusion needs at least one ranked list of (ids, scores)")
    lists: list[Ranked] = []
    nq = None
    for i, item in enumerate(ranked):
        if hasattr(item, "ids") and hasattr(item, "scores"):
            item = (item.ids, item.scores)
        try:
            ids, scores = item
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"ranked list {i} must be an (ids, scores) pair") from exc
        ids = np.asarray(ids)
        scores = np.asarray(scores)
        if ids.ndim != 2 or ids.shape != scores.shape:
            raise InvalidInputError(
                f"ranked list {i}: ids and scores must be 2-D arrays of the same shape "
                f"(n_queries, k), got {ids.shape} and {scores.shape}"
            )
        if not np.issubdtype(ids.dtype, np.integer):
            raise InvalidInputError(f"ranked list {i}: ids must be integers, got {ids.dtype}")
        if not np.issubdtype(scores.dtype, np.number):
            raise InvalidInputError(f"ranked list {i}: scores must be numbers, got {scores.dtype}")
        if nq is None:
            nq = ids.shape[0]
        elif ids.shape[0] != nq:
            raise InvalidInputError(
                f"ranked list {i} has {ids.shape[0]} queries but list 0 has {nq}; fuse results "
                f"of the same queries"
            )
        ids = ids.astype(np.int64)
        if (ids < -1).any():
            raise InvalidInputError(f"ranked list {i}: ids must be >= 0, or -1 for padding")
        srt = np.sort(ids, axis=1)
        if ((srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)).any():
            raise InvalidInputError(f"ranked list {i} repeats an id within one query's results")
        lists.append((ids, scores))
    return lists


def _check_weights(weights: Sequence[float] | None, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        w = np.full(0, np.nan)
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() == 0:
        raise InvalidInputError(
            f"weights must be {n} finite non-negative numbers (one per ranked list), not all "
            f"zero; got {list(np.atleast_1d(weights))}"
        )
    return w
