"""Top-k selection without full sorts: a compiled one-pass selection per block
(``candidates.best_columns``), merged into a running best.

The one top-k of slimvec: the funnel's scans (``blocked_top``), its rescoring stages and the
MaxSim rerank (``top_k``) and the brute-force paths (``select_top``) all select here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from slimvec.kernels.candidates import best_columns

BLOCK_ROWS = 65_536


def select_top(
    scores: np.ndarray, keep: int, ties_by_position: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the ``keep`` largest scores of each row, best first.

    Equal scores among the kept come in no set order unless ``ties_by_position``: then the
    lower column first (reproducible results where exact ties are common, e.g. MaxSim over
    duplicate documents), for the price of a two-key sort of the ``keep`` kept columns.
    """
    nq, n = scores.shape
    keep = min(keep, n)
    if keep == 0:
        return np.empty((nq, 0), np.int64), np.empty((nq, 0), np.float32)
    if keep < n and scores.dtype == np.float32:
        part = best_columns(scores, keep)
    elif keep < n:
        part = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
    else:
        part = np.broadcast_to(np.arange(n), (nq, n))
    vals = np.take_along_axis(scores, part, axis=1)
    if ties_by_position:
        order = np.lexsort((part, -vals), axis=1)
    else:
        order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int64), np.take_along_axis(
        vals, order, axis=1
    ).astype(np.float32)


def blocked_top(
    score_block: Callable[[int, int], np.ndarray],
    n: int,
    nq: int,
    keep: int,
    allow: np.ndarray | None = None,
    block: int = BLOCK_ROWS,
    ties_by_position: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Best ``keep`` rows of ``n`` for each of ``nq`` queries, scoring ``block`` rows at a time.

    ``score_block(start, stop)`` returns the (nq, stop - start) scores of those rows. Rows
    where ``allow`` is false are never returned. Missing results (fewer allowed rows than
    ``keep``) are row -1 with score -inf. ``ties_by_position``: equal scores in row order
    (the running best sits left of each new block, so column order is row order).
    """
    best_rows = np.full((nq, 0), -1, np.int64)
    best_scores = np.full((nq, 0), -np.inf, np.float32)
    for start in range(0, n, block):
        stop = min(n, start + block)
        scores = np.asarray(score_block(start, stop), dtype=np.float32)
        if allow is not None:
            scores[:, ~allow[start:stop]] = -np.inf
        if start == 0:  # nothing to merge with yet (most calls: one block)
            cols, best_scores = select_top(scores, keep, ties_by_position)
            best_rows = cols
            continue
        rows = np.broadcast_to(np.arange(start, stop, dtype=np.int64), scores.shape)
        all_scores = np.concatenate([best_scores, scores], axis=1)
        all_rows = np.concatenate([best_rows, rows], axis=1)
        cols, best_scores = select_top(all_scores, keep, ties_by_position)
        best_rows = np.take_along_axis(all_rows, cols, axis=1)
    return pad_results(best_rows, best_scores, keep)


def pad_results(rows: np.ndarray, scores: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """Mark -inf scores as missing (row -1) and pad to ``keep`` columns."""
    rows = np.where(np.isfinite(scores), rows, -1)
    missing = keep - rows.shape[1]
    if missing > 0:
        nq = rows.shape[0]
        rows = np.concatenate([rows, np.full((nq, missing), -1, np.int64)], axis=1)
        scores = np.concatenate([scores, np.full((nq, missing), -np.inf, np.float32)], axis=1)
    return rows, scores


def top_k(
    scores: np.ndarray, rows: np.ndarray, keep: int, ties_by_position: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Best ``keep`` of each row of ``scores`` as (the matching entries of ``rows``, scores).

    ``rows`` has the shape of ``scores`` (the candidate each score belongs to, -1 = padding,
    scored -inf). Best first; -inf results become row -1 and rows with fewer than ``keep``
    candidates are padded with -1 / -inf (``pad_results``).
    """
    cols, best = select_top(scores, keep, ties_by_position)
    return pad_results(np.take_along_axis(rows, cols, axis=1), best, keep)
