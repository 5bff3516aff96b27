"""The nprobe an ``ivf:auto`` collection searches with, measured on its own vectors.

A fixed share of the lists does not give a fixed recall: on 100k low-intrinsic-dimension
vectors 1/16 of 256 lists kept 0.85 of the top-10, on real sentences at 1M it keeps 0.95.
A user who never named an index should not lose recall silently when it appears, so every time
``ivf:auto`` trains its lists it measures, before the commit that names them: ``QUERIES``
stored vectors (seeded sample) are searched with doubling, then bisected, ``nprobe`` until
the first pass's shortlist holds ``GOAL`` of their exact top-10 (themselves left out; the
rescoring stages rank that shortlist exactly, so its recall is the search's). The smallest
such ``nprobe`` becomes the collection's default; a search can still pass its own, and a
recall target (``set_target_recall``) scales it up from there on live queries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from slimvec.kernels.ivfscan import probe_top, query_tables
from slimvec.kernels.topk import select_top
from slimvec.store.manifest import Manifest

#: An ``index.ivf.IVFIndex`` with its lists open (not imported: ivf.py calls this module).
IVFIndex = Any

#: Stored vectors searched to measure recall. The recall curve is flat near the goal, so on
#: the same 1M lists five samples of 200 chose nprobe 72-116 (held-out recall 0.951-0.970) and
#: five of 1,000 chose 100-120 (0.965-0.971; BENCHMARKS.md "Steadier calibration"), for about
#: 10 s more per calibration at 1M, on the training's thread.
QUERIES = 1000
#: Share of the exact top-10 the shortlist must hold: above the 0.95 of a typical target by
#: what the estimate may miss. On 1M real sentences, held-out queries got 0.002 less than the
#: 1,000 stored vectors claimed (0.965-0.971 for 0.970; BENCHMARKS.md "Steadier calibration").
GOAL = 0.96
K = 10
#: Doubling brackets the smallest nprobe; bisection then narrows it to 1/STEP of its value
#: (a doubling alone overshot: 256 of 1,024 lists held 0.994 where the goal was 0.97).
STEP = 16
#: Exact scores held at once (queries x rows): 64 MB of float32.
SCORES = 1 << 24


def calibrate(
    index: IVFIndex, path: Path, manifest: Manifest, deleted: np.ndarray, seed: int | None = None
) -> tuple[int, float]:
    """(nprobe, shortlist recall at it) for ``index``'s lists of ``manifest``'s segments
    (``seed``: of the sample; by default the count the lists were trained on)."""
    recall_at = shortlist_recall(index, path, manifest, deleted, seed)
    low, high = 0, 1  # recall_at(low) < GOAL (or low == 0) <= recall_at(high)
    while (recall := recall_at(high)) < GOAL and high < index.nlist:
        low, high = high, min(2 * high, index.nlist)
    if recall < GOAL:
        return high, recall
    while high - low > max(1, high // STEP):  # then halve the bracket: N/16 steps
        middle = (low + high) // 2
        if (measured := recall_at(middle)) >= GOAL:
            high, recall = middle, measured
        else:
            low = middle
    return high, recall


def shortlist_recall(
    index: IVFIndex, path: Path, manifest: Manifest, deleted: np.ndarray, seed: int | None = None
) -> Callable[[int], float]:
    """nprobe -> share of the sampled stored vectors' exact top-10 that the first pass's
    shortlist holds (a sample seeded by ``seed``, or the count the lists were trained on)."""
    rows = _sample(deleted, int(manifest.extra["ivf"]["trained_on"]) if seed is None else seed)
    queries = np.concatenate(list(_stored(index, path, manifest, rows)))
    truth = _exact_top(index, path, manifest, deleted, queries, rows)
    view = np.ascontiguousarray(index.pipeline.stage_view(queries, index.stage), np.float32)
    codec = index.codec
    prepared = codec.quantised(codec.prepare(view))
    tables = query_tables(prepared.planes, codec.bits)
    lists = index.list_set()
    allow = ~deleted if deleted.any() else None
    keep = K * (index.stage.keep or 1)

    def recall_at(nprobe: int) -> float:
        probes, qa = index.probe(view, nprobe)
        found, _, _ = probe_top(
            tables, qa, prepared.delta, prepared.lo, prepared.qsums, probes, lists,
            -codec.half, keep, allow,
        )  # fmt: skip
        hits = (found[:, :, None] == truth[:, None, :]).any(axis=1) & (truth >= 0)
        return float(hits.sum() / max(np.count_nonzero(truth >= 0), 1))

    return recall_at


def _sample(deleted: np.ndarray, seed: int) -> np.ndarray:
    live = np.flatnonzero(~deleted)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(live, min(QUERIES, len(live)), replace=False))


def _stored(index: IVFIndex, path: Path, manifest: Manifest, rows: np.ndarray) -> Iterator:
    """The transformed vectors of global ``rows``, segment by segment."""
    for e in manifest.segments:
        mine = rows[(rows >= e.start) & (rows < e.start + e.rows)] - e.start
        if len(mine):
            yield index.pipeline.transform(np.asarray(index.vectors(path, e, mine), np.float32))


def _exact_top(
    index: IVFIndex,
    path: Path,
    manifest: Manifest,
    deleted: np.ndarray,
    queries: np.ndarray,
    rows: np.ndarray,
) -> np.ndarray:
    """(nq, K) global rows of each query's exact top-``K`` among the live rows, itself left
    out (-1 where fewer exist). Scored on the transformed vectors the last stage rescores."""
    best_rows = np.full((len(queries), K), -1, np.int64)
    best = np.full((len(queries), K), -np.inf, np.float32)
    for e in manifest.segments:
        x = index.vectors(path, e)
        step = min(index._step(x), max(1024, SCORES // len(queries)))
        for lo in range(0, e.rows, step):
            hi = min(e.rows, lo + step)
            scores = queries @ index.pipeline.transform(np.asarray(x[lo:hi], np.float32)).T
            glob = np.arange(e.start + lo, e.start + hi)
            scores[:, deleted[glob]] = -np.inf
            scores[glob[None, :] == rows[:, None]] = -np.inf  # not itself
            cols, top = select_top(np.concatenate([best, scores], axis=1), K)
            merged = np.concatenate([best_rows, np.broadcast_to(glob, scores.shape)], axis=1)
            best_rows = np.take_along_axis(merged, cols, axis=1)
            best = top
    return np.where(np.isfinite(best), best_rows, -1)
