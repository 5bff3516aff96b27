"""How big an IVF index should be: when to train, how many lists, how many to probe.

These are the rules ``index.ivf`` follows and ``slimvec bench`` / ``advise`` sweep around; each
constant says where its value came from. Kept apart from the index itself so that the
benchmarks, the advisor and the CLI can read them without the index's machinery.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from slimvec.codecs.rabitq import RaBitQCodec
from slimvec.errors import InvalidInputError, MissingDependencyError
from slimvec.validation import check_int

#: Below this many live vectors search stays flat: a flat rabitq:2 scan of 20k rows takes a
#: fraction of a millisecond, and k-means on fewer rows gives lists too small to skip much. A
#: judgement, not yet a measurement: ``benchmarks/ivf.py --crossover`` measures it but has not
#: been run (BENCHMARKS.md "IVF").
FLAT_ROWS = 20_000
#: ``ivf:auto`` stays flat below this many live vectors. Measured (benchmarks/auto_index.py,
#: BENCHMARKS.md "The default as a collection grows", 384-d low-rank set, batches of 200):
#: at 50k the flat plan (exact BLAS for batches) was exact at 0.92x the lists' QPS and faster
#: for one query (0.98 vs 1.21 ms); at 100k the lists gave 2.3x the flat table scan's QPS at
#: recall 0.970 and one query in 1.02 ms (flat 0.92-1.78); from 200k they win both (1.08 vs
#: 1.38-1.75 ms at 200k, 1.50 vs 4.0-4.2 ms at 1M).
AUTO_ROWS = 100_000
#: Fewest training vectors per centroid (FAISS warns below 39).
MIN_PER_LIST = 39
#: k-means trains on at most this many sampled vectors per centroid, for this many rounds:
#: enough for partitions (the lists only need to be coherent, not optimal), and it keeps
#: training at 1M x 384 with 1,024 lists to seconds.
TRAIN_PER_LIST = 64
KMEANS_ITER = 12
SEED = 1234
#: Retrain when the live count reaches this multiple of the count the centroids were trained at.
RETRAIN_GROWTH = 4
#: Lists are retrained early (rebalanced) when their skew (``list_skew``) reaches this multiple
#: of the skew they had when trained: new vectors crowding into a few lists (a topic that
#: grows, a drifting model) make every query near them read those lists whole. Segments'
#: lists are immutable files, so splitting one list would rewrite every segment's lists
#: anyway; a retrain costs the same writes and re-fits every centroid, off the write path.
REBALANCE_SKEW = 2.0
#: A training due at this many live vectors or more runs in the background of the commit that
#: found it due (``index.training``; the handle's trainer thread), when the handle has one:
#: measured at 100k x 384, training, building every list and measuring nprobe took 5.4 s
#: inside the add (BENCHMARKS.md "The default as a collection grows"), 28 s at 640k. Smaller
#: trainings take about a second and are done inside the commit, as a refit's always are.
BACKGROUND_ROWS = 50_000
#: Lists a query probes by default: 1 in ``PROBE_SHARE`` of them, at least ``MIN_NPROBE``
#: (BENCHMARKS.md "IVF": on the 1M sentence set with ivf:1024, nprobe 32 gave recall@10 0.91
#: and 64 gave 0.95); a search can pass its own ``nprobe``.
PROBE_SHARE = 16
MIN_NPROBE = 8


def require_faiss() -> Any:
    """FAISS (its k-means trains the centroids), or a clear error saying how to install it."""
    try:
        import faiss
    except ImportError as exc:
        raise MissingDependencyError(
            "IVF lists ('ivf:N', 'ivf:auto') train their centroids with FAISS's k-means, "
            "a slimvec dependency: pip install faiss-cpu==1.15.1"
        ) from exc
    return faiss


def default_nprobe(nlist: int) -> int:
    """Lists probed when a search gives no ``nprobe``."""
    return max(min(nlist, MIN_NPROBE), nlist // PROBE_SHARE)


def check_nprobe(nprobe: Any, nlist: int | None) -> int:
    """``nprobe`` as an int in 1..nlist, or an ``InvalidInputError`` saying what to pass.
    ``nlist`` None (``ivf:auto``, whose list count follows its size): any positive int."""
    if nlist is None:
        return check_int(nprobe, "nprobe")
    if isinstance(nprobe, bool) or not isinstance(nprobe, (int, np.integer)):
        raise InvalidInputError(f"nprobe must be an integer from 1 to {nlist}, got {nprobe!r}")
    if not 1 <= nprobe <= nlist:
        raise InvalidInputError(
            f"nprobe={nprobe} is outside 1..{nlist} (the collection has {nlist} lists)"
        )
    return int(nprobe)


def suggested_nlist(n: int) -> int:
    """Lists for ``n`` vectors: the power of two nearest sqrt(n) (1,024 at 1M, 4,096 at 10M;
    BENCHMARKS.md "IVF"), at most what ``n`` vectors can train (``MIN_PER_LIST`` each)."""
    n = max(int(n), 1)
    nlist = 1 << max(0, round(math.log2(math.sqrt(n))))
    while nlist > 1 and MIN_PER_LIST * nlist > n:
        nlist //= 2
    return nlist


def list_skew(sizes: np.ndarray) -> float:
    """How many times the mean list size the list holding an average row is (1 for equal
    lists): sum(s^2) / (sum(s) * mean(s)). Queries follow the data, so a query's probed lists
    hold about this many times the rows balanced lists would."""
    sizes = np.asarray(sizes, np.float64)
    total = sizes.sum()
    return float(len(sizes) * (sizes**2).sum() / total**2) if total else 1.0


def train_rows(nlist: int) -> int:
    """Live vectors an ``ivf:nlist`` collection needs before its lists are trained."""
    return max(FLAT_ROWS, MIN_PER_LIST * nlist)


def nprobe_sweep(nlist: int, rows: int | None = None, shortlist: int = 0) -> list[int]:
    """The ``nprobe`` values ``slimvec bench`` and ``advise`` measure: powers of two from
    nlist/256 (at least 1) to nlist/2, and the default.

    With ``rows`` (vectors in the lists) and ``shortlist`` (first-stage candidates per query),
    values whose probed lists hold on average fewer than twice the shortlist are left out
    (the largest is kept): a query whose lists hold fewer rows than its shortlist is re-run
    as the flat scan, so such a point would measure the flat scan under an nprobe label."""
    top = max(1, nlist // 2)
    values = {1 << p for p in range(top.bit_length()) if max(1, nlist // 256) <= 1 << p <= top}
    sweep = sorted(values | {default_nprobe(nlist)})
    if rows is None:
        return sweep
    return [p for p in sweep if p * rows >= 2 * shortlist * nlist] or sweep[-1:]


def list_bytes_per_vector(codec: RaBitQCodec) -> int:
    """Bytes of a row in the lists: its bit planes, F and L (float32 each) and its entry in
    the position -> row map (int32). The flat code's other two factors (G, E: error bounds)
    are not needed by the list scan."""
    return codec.factor_start + 8 + 4


def train_centroids(sample: np.ndarray, nlist: int) -> np.ndarray:
    """(nlist, d) float32 k-means centroids of ``sample`` (FAISS ``Kmeans``, L2)."""
    faiss = require_faiss()
    kmeans = faiss.Kmeans(
        sample.shape[1],
        nlist,
        niter=KMEANS_ITER,
        seed=SEED,
        max_points_per_centroid=TRAIN_PER_LIST,
        verbose=False,
    )
    kmeans.train(np.ascontiguousarray(sample, np.float32))
    return kmeans.centroids.astype(np.float32)
