"""The free-embedding experiment of Weller et al. (2025), "On the Theoretical Limitations of
Embedding-Based Retrieval" (arXiv:2508.21038), §4, in NumPy.

For n documents and every one of the C(n, k) possible relevant sets, one query vector and the
n document vectors (all unit length, dimension d) are optimised *directly* on that test set:
Adam (lr 0.01), full batch, InfoNCE with temperature 0.1 and every document in the
denominator, vectors re-normalised after each step, early stop when the loss has not improved
for 1,000 iterations. The run succeeds when every query ranks exactly its k relevant documents
on top. The largest n that succeeds is the *critical n* for d; the paper fits a cubic in d to
it (``-10.5322 + 4.0309 d + 0.0520 d^2 + 0.0037 d^3``, r^2 = 0.999, d = 4..45, k = 2) and
extrapolates (d = 512: ~500k, 768: ~1.7M, 1024: ~4M documents).

The loss. The paper describes "a full pass through all correct triples" (query, relevant
document, all documents as negatives), i.e. -log softmax averaged over the k relevant documents
(``loss="triples"``, the default here); its footnote 7 writes the relevant documents summed in
one numerator (``loss="sum"``). The summed form is already minimised when *one* relevant
document dominates, and in our runs it stalls there even on trivially solvable cases (n = 4,
d = 4), so it cannot have produced the paper's curve; the triples form reproduces it (critical
n 9, 18, 29, 38, 51, 65, 79 at d = 4, 6, ..., 16 against the cubic's 7, 16, 27, 39, 52, 66, 82).

What the number means, and does not: it is what *this optimiser* reaches, a lower bound on
what d dimensions can represent and an optimistic ceiling for real encoders, which cannot
place vectors freely. Later work ("R^{2k} is Theoretically Large Enough for
Embedding-based Top-k Retrieval", arXiv:2601.20844) proves that 2k dimensions suffice to
realise every top-k set for any number of documents (without a norm or margin constraint),
so the polynomial curve reflects learnability, not geometry. Treat the estimate as a
diagnostic, not a law.

Gradients are analytic: with S = Q D^T / t and P = softmax over all documents, dL/dS =
(P - T) / m, where T is 1/k on each relevant document (triples) or the softmax over the
relevant documents (sum); then dL/dQ = (dL/dS) D / t and dL/dD = (dL/dS)^T Q / t.
One iteration is three (m x n x d) matrix products and one exp over the m x n scores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from math import comb

import numpy as np

from slimvec.errors import InvalidInputError
from slimvec.kernels.threads import one_blas_thread
from slimvec.validation import check_int

LR = 0.01
TEMPERATURE = 0.1
PATIENCE = 1000  # the paper's early stop: no loss improvement for 1000 iterations
MAX_ITERS = 20_000
QUICK = {"max_iters": 3_000, "patience": 300}
# Weller et al. 2025, Fig. 2: critical n = c3 d^3 + c2 d^2 + c1 d + c0 (k = 2, d = 4..45)
LOSSES = ("triples", "sum")
PAPER_COEFS = (0.0037, 0.0520, 4.0309, -10.5322)
PAPER_MAX_DIM = 45  # the largest d the paper measured its fit on
PAPER_SOURCE = f"Weller et al. 2025 cubic fit, d = 4..{PAPER_MAX_DIM}"
LATER_WORK = (
    "later work (arXiv:2601.20844, 'R^{2k} is Theoretically Large Enough for Embedding-based "
    "Top-k Retrieval') proves 2k dimensions suffice for every top-k set of any "
    "corpus, so this bound is loose for k-sparse relevance: it measures what optimisation "
    "finds, not what geometry forbids"
)


@dataclass
class FreeEmbeddingRun:
    """Outcome of one optimisation: ``solved`` when every query's top-k is its relevant set."""

    n: int
    d: int
    k: int
    solved: bool
    iterations: int
    accuracy: float  # fraction of queries whose top-k is exactly their relevant set
    loss: float


def relevant_sets(n: int, k: int) -> np.ndarray:
    """All C(n, k) k-subsets of range(n) as an (m, k) int array, lexicographic."""
    if k == 2:
        a, b = np.triu_indices(n, 1)
        return np.stack([a, b], axis=1)
    m = comb(n, k)
    flat = np.fromiter((i for c in combinations(range(n), k) for i in c), np.int64, m * k)
    return flat.reshape(m, k)


def optimise(
    n: int,
    d: int,
    k: int = 2,
    *,
    max_iters: int = MAX_ITERS,
    patience: int = PATIENCE,
    lr: float = LR,
    temperature: float = TEMPERATURE,
    seed: int = 0,
    min_delta: float = 0.0,
    loss: str = "triples",
) -> FreeEmbeddingRun:
    """Optimise free query and document vectors for all C(n, k) relevant sets.

    Stops at 100 % accuracy (success), after ``patience`` iterations without the loss
    improving (by a relative ``min_delta``; the paper uses any improvement) (failure), or at
    ``max_iters`` (failure). ``loss="triples"`` averages -log softmax over the k (query,
    relevant document) triples, all documents in the denominator; ``loss="sum"`` is the
    paper's footnote-7 form with the relevant documents summed in the numerator, which is
    satisfied by a single dominant relevant document and stalls (n = 4, d = 4 unsolved).
    BLAS runs single-threaded here: the matrices are small, and threads only contend.
    """
    with one_blas_thread():
        return _optimise(n, d, k, max_iters, patience, lr, temperature, seed, min_delta, loss)


def _optimise(
    n: int,
    d: int,
    k: int,
    max_iters: int,
    patience: int,
    lr: float,
    temperature: float,
    seed: int,
    min_delta: float,
    loss: str,
) -> FreeEmbeddingRun:
    _check(n, d, k)
    if loss not in LOSSES:
        raise InvalidInputError(f"unknown loss {loss!r}; use one of {', '.join(LOSSES)}")
    floor = float(np.log(k)) if loss == "triples" else 0.0  # triples: at best 1/k each
    sets = relevant_sets(n, k)
    rng = np.random.default_rng(seed)
    q = _unit(rng.standard_normal((len(sets), d)).astype(np.float32))
    x = _unit(rng.standard_normal((n, d)).astype(np.float32))
    adam_q, adam_x = _Adam(q.shape, lr), _Adam(x.shape, lr)
    best, since = np.inf, 0
    accuracy, value = 0.0, np.inf
    it = 0
    for it in range(max_iters + 1):
        value, accuracy, grad_q, grad_x = infonce(q, x, sets, temperature, loss)
        if accuracy == 1.0 or it == max_iters:
            break
        excess = value - floor  # what is left to gain; improvements are relative to it
        if excess < best * (1 - min_delta):
            best, since = excess, 0
        else:
            since += 1
            if since >= patience:
                break
        q = _unit(q - adam_q.step(grad_q))
        x = _unit(x - adam_x.step(grad_x))
    return FreeEmbeddingRun(n, d, k, accuracy == 1.0, it, accuracy, value)


def infonce(
    q: np.ndarray,
    x: np.ndarray,
    sets: np.ndarray,
    temperature: float = TEMPERATURE,
    loss: str = "triples",
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Loss, top-k accuracy, and analytic gradients w.r.t. ``q`` (m, d) and ``x`` (n, d).

    ``sets`` (m, k) holds each query's relevant documents. Computed in the dtype of ``q``.
    """
    m, k = sets.shape
    rows = np.arange(m)[:, None]
    inv_t = q.dtype.type(1.0 / temperature)
    scores = q @ x.T
    scores *= inv_t
    rel = scores[rows, sets]  # (m, k)
    # exp(S - row max), relevant and non-relevant mass kept apart so that neither the loss nor
    # the gradient is a difference of nearly equal numbers (float32 would lose both)
    probs = np.exp(scores - scores.max(axis=1, keepdims=True))
    rel_e = probs[rows, sets]
    probs[rows, sets] = 0.0
    rel_mass = rel_e.sum(axis=1)
    non_mass = probs.sum(axis=1)
    total = rel_mass + non_mass
    if loss == "triples":  # mean over the k (query, relevant doc) triples of -log softmax
        value = float(np.mean(np.log(total) - np.log(rel_e).mean(axis=1)))
    else:  # footnote 7: -log(rel / (rel + non)) = log1p(non / rel)
        value = float(np.mean(np.log1p(non_mass.astype(np.float64) / rel_mass)))
    # accuracy: every relevant score above every other score of the row
    scores[rows, sets] = -np.inf
    accuracy = float(np.mean(rel.min(axis=1) > scores.max(axis=1)))
    # dL/dS = P - target, divided by m (mean) and t (S = q x^T / t). Non-relevant: P.
    # Relevant: P - 1/k (triples) or P - softmax over the relevant (sum), both rewritten so
    # that no nearly equal numbers are subtracted.
    scale = (inv_t / m / total)[:, None]
    probs *= scale
    if loss == "triples":
        rel_grad = (k * rel_e - total[:, None]) / k
    else:
        rel_grad = -(rel_e / rel_mass[:, None]) * non_mass[:, None]
    probs[rows, sets] = rel_grad * scale
    return value, accuracy, probs @ x, probs.T @ q


def solvable(
    n: int,
    d: int,
    k: int = 2,
    max_iters: int = MAX_ITERS,
    seed: int = 0,
    *,
    patience: int = PATIENCE,
    restarts: int = 1,
) -> bool:
    """Whether free d-dim embeddings reach 100 % top-k accuracy on all C(n, k) queries.

    ``restarts`` tries that many seeds (``seed``, ``seed + 1``, ...) and succeeds if any does.
    """
    return any(
        optimise(n, d, k, max_iters=max_iters, patience=patience, seed=seed + r).solved
        for r in range(max(1, restarts))
    )


def critical_n(
    d: int,
    k: int = 2,
    *,
    start: int | None = None,
    max_iters: int = MAX_ITERS,
    patience: int = PATIENCE,
    seed: int = 0,
    restarts: int = 1,
    max_n: int = 2_000,
    on_try: Callable[[int, bool], None] | None = None,
) -> int:
    """The largest n whose C(n, k) queries free d-dim embeddings solve.

    n <= d is always solvable (documents on orthonormal axes, each query the sum of its
    documents' axes), so the search starts there or at ``start`` (a known solvable n, e.g.
    the critical n of a smaller d), gallops up (+1, +2, +4, ..., at most +n/8) to the first
    failure and bisects back. It assumes solvability is monotone in n, which holds up to
    optimiser luck near the boundary (use ``restarts`` to reduce it).
    """
    _check(max(d, k + 1), d, k)

    def ok(n: int) -> bool:
        result = solvable(n, d, k, max_iters, seed, patience=patience, restarts=restarts)
        if on_try is not None:
            on_try(n, result)
        return result

    lo = max(d, k + 1, start or 0)  # known (or assumed) solvable
    step, hi = 1, None
    while hi is None:
        n = lo + step
        if n > max_n:
            return lo
        if ok(n):
            # grow the step, but overshoot by at most ~12 %: runs far past the boundary are the
            # costliest (the loss keeps creeping down, so the patience stop comes late)
            lo, step = n, min(step * 2, max(1, n // 8))
        else:
            hi = n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


@dataclass
class CapacityFit:
    """A polynomial fit of critical n against d, with bootstrap refits for uncertainty."""

    dims: np.ndarray  # (p,) the measured dimensions (repeated across seeds)
    critical: np.ndarray  # (p,) the critical n measured at each
    coefs: np.ndarray  # polynomial coefficients, highest degree first
    boot_coefs: np.ndarray = field(default_factory=lambda: np.empty((0, 4)))
    r2: float = float("nan")
    k: int = 2
    source: str = "this run"
    settings: dict = field(default_factory=dict)

    @classmethod
    def paper(cls) -> CapacityFit:
        """The published fit (no raw points or bootstrap available)."""
        return cls(
            dims=np.empty(0),
            critical=np.empty(0),
            coefs=np.array(PAPER_COEFS),
            r2=0.999,
            source=PAPER_SOURCE,
        )

    def predict(self, d: float | np.ndarray) -> np.ndarray | float:
        """Estimated critical n at dimension ``d``: the fitted polynomial, floored at the
        largest critical n measured at or below ``d`` (capacity never shrinks with d, but a
        cubic fitted to a few small d can bend down and even go negative far out)."""
        dd = np.asarray(d, dtype=np.float64)
        out = np.polyval(self.coefs, dd)
        if len(self.dims):
            measured = self.critical[None, :] * (self.dims[None, :] <= dd.reshape(-1, 1))
            out = np.maximum(out, measured.max(axis=1).reshape(dd.shape))
        return float(out) if np.ndim(out) == 0 else out

    @property
    def bends_down(self) -> bool:
        """True when the leading coefficient is not positive: the fit's extrapolation is void."""
        return bool(self.coefs[0] <= 0)

    def interval(self, d: float, level: float = 0.9) -> tuple[float, float] | None:
        """Central ``level`` interval of the bootstrap refits' predictions at ``d``.

        The lower end is clipped to the largest critical n measured at or below ``d``: a
        (d+1)-dim embedding can do whatever a d-dim one can, so capacity never shrinks with d
        (unclipped, refits of a cubic on a few small d go negative far out).
        """
        if len(self.boot_coefs) < 20:
            return None
        preds = np.array([np.polyval(c, float(d)) for c in self.boot_coefs])
        tail = 50 * (1 - level)
        lo, hi = np.percentile(preds, [tail, 100 - tail])
        below = self.critical[self.dims <= d]
        floor = float(below.max()) if len(below) else 0.0
        return max(float(lo), floor), max(float(hi), floor)

    @classmethod
    def from_points(
        cls,
        dims: Sequence[float],
        critical: Sequence[float],
        *,
        degree: int = 3,
        n_boot: int = 2000,
        k: int = 2,
        source: str = "given points",
        settings: dict | None = None,
    ) -> CapacityFit:
        """Fit the polynomial to measured (d, critical n) points, with ``n_boot`` bootstrap
        refits (points resampled with replacement; resamples with too few distinct d skipped).
        """
        x = np.asarray(dims, np.float64)
        y = np.asarray(critical, np.float64)
        if x.shape != y.shape or len(np.unique(x)) <= degree:
            raise InvalidInputError(
                f"a degree-{degree} fit needs matching dims and critical n with at least "
                f"{degree + 1} different dimensions"
            )
        coefs = np.polyfit(x, y, degree)
        resid = y - np.polyval(coefs, x)
        ss_tot = float(((y - y.mean()) ** 2).sum())
        r2 = 1 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
        rng = np.random.default_rng(12345)
        boots = []
        for _ in range(n_boot):
            pick = rng.integers(0, len(x), len(x))
            if len(np.unique(x[pick])) > degree:
                boots.append(np.polyfit(x[pick], y[pick], degree))
        return cls(
            dims=x,
            critical=y,
            coefs=coefs,
            boot_coefs=np.array(boots).reshape(-1, degree + 1),
            r2=r2,
            k=k,
            source=source,
            settings=settings or {},
        )

    def describe(self, d: int, n_docs: int | None = None, note: bool = True) -> str:
        """A plain-language reading of the estimate for dimension ``d`` (and a corpus size).

        ``note`` appends the caveats (extrapolation, later work) when ``d`` is extrapolated.
        """
        est = self.predict(d)
        span = ""
        inside = bool(len(self.dims)) and self.dims.min() <= d <= self.dims.max()
        ci = self.interval(d)
        if ci is not None:
            span = f" (90% bootstrap interval {_fmt(ci[0])} to {_fmt(ci[1])}, lower end floored)"
        where = (
            "within the measured range"
            if inside
            else (
                f"extrapolated from d = {int(self.dims.min())}..{int(self.dims.max())}"
                if len(self.dims)
                else "extrapolated"
            )
        )
        text = (
            f"Free {d}-d embeddings can represent every top-{self.k} set over about "
            f"{_fmt(est)} documents{span}, {where} ({self.source})."
        )
        if n_docs is not None:
            verdict = "above" if n_docs > est else "below"
            text += f" Your {n_docs:,} documents are {verdict} that estimate."
        if not inside and self.bends_down:
            text += (
                " The fitted cubic bends down (leading coefficient <= 0), so this extrapolation "
                "carries no information: measure more or larger dimensions, or use the paper's "
                "fit."
            )
        if not inside and note:
            text += (
                " A cubic extrapolated this far is an order-of-magnitude guide at best; "
                + LATER_WORK
                + "."
            )
        return text


def fit_capacity(
    dims: Sequence[int],
    k: int = 2,
    *,
    quick: bool = False,
    seeds: Sequence[int] = (0,),
    degree: int = 3,
    n_boot: int = 2000,
    max_iters: int | None = None,
    patience: int | None = None,
    restarts: int = 1,
    progress: bool = True,
) -> CapacityFit:
    """Measure the critical n for each d (ascending, each search starting from the previous
    d's result) and each seed, then fit a degree-``degree`` polynomial (the paper's cubic).

    Uncertainty: the fit is refitted on ``n_boot`` bootstrap resamples of the measured
    points; spread across seeds enters through the points themselves.
    """
    dims = sorted({int(d) for d in dims})
    if len(dims) < degree + 1:
        raise InvalidInputError(
            f"a degree-{degree} fit needs at least {degree + 1} different dimensions, got {dims}"
        )
    settings = dict(QUICK) if quick else {"max_iters": MAX_ITERS, "patience": PATIENCE}
    if max_iters is not None:
        settings["max_iters"] = max_iters
    if patience is not None:
        settings["patience"] = patience
    from tqdm.auto import tqdm

    points_d, points_n = [], []
    bar = tqdm(total=len(dims) * len(seeds), desc="critical n", disable=not progress or None)
    for seed in seeds:
        previous = None
        for d in dims:

            def show(n: int, ok: bool, d: int = d) -> None:
                bar.set_postfix_str(f"d={d} n={n} {'ok' if ok else 'fail'}")

            found = critical_n(
                d, k, start=previous, seed=seed, restarts=restarts, on_try=show, **settings
            )
            points_d.append(d)
            points_n.append(found)
            previous = found
            bar.update()
    bar.close()
    return CapacityFit.from_points(
        points_d,
        points_n,
        degree=degree,
        n_boot=n_boot,
        k=k,
        source=f"this run, d = {dims[0]}..{dims[-1]}, {len(seeds)} seed(s)",
        settings={**settings, "lr": LR, "temperature": TEMPERATURE, "restarts": restarts},
    )


def capacity_warning(
    dim: int, n_docs: int, k: int = 2, fit: CapacityFit | None = None
) -> str | None:
    """A warning when ``n_docs`` exceeds the estimated critical n for ``dim``, else None.

    Uses the paper's published fit unless ``fit`` is given. The estimate is for k = 2 relevant
    documents per query; for other k it says so instead of pretending.
    """
    for name, value, low in (("dim", dim, 1), ("n_docs", n_docs, 0), ("k", k, 1)):
        check_int(value, name, low)
    fit = fit or CapacityFit.paper()
    est = fit.predict(dim)
    if n_docs <= est:
        return None
    note = (
        ""
        if k == fit.k
        else f" The estimate is for k = {fit.k} relevant documents per query, not k = {k}; "
        f"run `slimvec capacity --dim {dim} --k {k}` to measure small dimensions for k = {k}."
    )
    return (
        f"Your corpus ({n_docs:,} documents) is above the estimated critical n for {dim}-d "
        f"embeddings (about {_fmt(est)}; {fit.source}): no {dim}-d embedding, even one optimised "
        f"on the test queries, is expected to return every possible pair of relevant documents "
        f"as a top-{fit.k}. Queries that combine unrelated documents may be unanswerable with "
        f"dense search alone; a larger dimension or hybrid (BM25 + dense) search helps.{note} "
        f"This is a diagnostic, not a law: {LATER_WORK}."
    )


class _Adam:
    """Adam (Kingma & Ba 2014) with the usual defaults; returns the step to subtract."""

    def __init__(self, shape: tuple[int, ...], lr: float, b1=0.9, b2=0.999, eps=1e-8):
        # float64 state: squared tiny gradients would otherwise be float32 denormals (slow)
        self.m = np.zeros(shape, np.float64)
        self.v = np.zeros(shape, np.float64)
        self.lr, self.b1, self.b2, self.eps, self.t = lr, b1, b2, eps, 0

    def step(self, grad: np.ndarray) -> np.ndarray:
        self.t += 1
        self.m *= self.b1
        self.m += (1 - self.b1) * grad
        self.v *= self.b2
        self.v += (1 - self.b2) * grad * grad
        m_hat = self.m / (1 - self.b1**self.t)
        v_hat = self.v / (1 - self.b2**self.t)
        return (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _check(n: int, d: int, k: int) -> None:
    for name, value, low in (("n", n, 2), ("d", d, 1), ("k", k, 1)):
        check_int(value, name, low)
    if k >= n:
        raise InvalidInputError(f"k ({k}) must be smaller than n ({n}): pick more documents")
    if comb(n, k) > 5_000_000:
        raise InvalidInputError(
            f"C({n}, {k}) = {comb(n, k):,} queries is too many to optimise in memory; "
            f"use fewer documents or a smaller k"
        )


def _fmt(x: float) -> str:
    x = float(x)
    if abs(x) >= 1e6:
        return f"{x / 1e6:.1f}M"
    if abs(x) >= 1e4:
        return f"{x / 1e3:.0f}k"
    return f"{x:,.0f}"
