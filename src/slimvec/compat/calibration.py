"""Score calibration: put scores from two vector spaces on one scale before merging them.

During a model upgrade part of the corpus is searched in the old space (new-model queries
through an adapter, or old-model queries) and part natively in the new space. Cosines from two
spaces are not comparable: one model's relevant documents may score 0.45 where the other's
score 0.7, so merging raw top-k lists lets one space crowd out the other. A
:class:`ScoreCalibrator` learns a *monotone* map from the source space's scores onto the target
space's scale, so it never reorders results within a space, only interleaves the two.

Fit it on scores of the same probe queries against documents that exist in both spaces (the
upgrade's paired sample; see :func:`probe_scores`). Two methods, both distribution matching
(no pairing of individual scores needed):

* ``"moments"`` — affine map matching mean and standard deviation.
* ``"quantile"`` — quantile matching (piecewise linear, linear beyond the fitted range); also
  corrects differently *shaped* distributions.

``top`` restricts fitting to each probe query's best ``top`` scores on each side, since only the
head of each list competes in a merged top-k.

Regression of native on adapted scores (E[native | adapted]) is deliberately not offered: it
shrinks the adapted scores towards their mean (regression dilution), so a strong old-space
match is demoted and the old part of a mixed corpus disappears from merged results; on the
Debian set it cost 1 to 25 points of recall@10 against raw scores.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np

from slimvec.errors import InvalidInputError, not_fitted
from slimvec.validation import check_int

Method = Literal["moments", "quantile"]


def _scores(x: Any, what: str) -> np.ndarray:
    try:
        array = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{what} must be a numeric array of scores ({exc})") from exc
    if array.ndim not in (1, 2) or array.size == 0:
        raise InvalidInputError(
            f"{what} must be a non-empty 1-D array or a 2-D (queries, docs) array, got shape "
            f"{array.shape}"
        )
    if not np.isfinite(array).all():
        raise InvalidInputError(f"{what} contain NaN or infinite scores; drop those entries")
    return array


def probe_scores(
    source_queries: np.ndarray,
    source_docs: np.ndarray,
    target_queries: np.ndarray,
    target_docs: np.ndarray,
    exclude_self: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Score matrices of the same probe queries against the same documents in two spaces.

    Row i of both query arrays is one probe (e.g. its new-model vector through the adapter,
    and natively), row j of both doc arrays one document of the paired sample. When the probes
    *are* the sample documents, ``exclude_self=True`` drops each probe's match with itself
    (cosine ~1 in every space, which would pin the top of both distributions together);
    the result is then (n, n - 1).
    """
    if len(source_queries) != len(target_queries) or len(source_docs) != len(target_docs):
        raise InvalidInputError(
            f"probe scores need the same queries and documents in both spaces: got "
            f"{len(source_queries)} vs {len(target_queries)} queries and {len(source_docs)} vs "
            f"{len(target_docs)} documents"
        )
    source, target = source_queries @ source_docs.T, target_queries @ target_docs.T
    if exclude_self:
        n = len(source_queries)
        if source.shape != (n, n) or n < 2:
            raise InvalidInputError(
                "exclude_self needs the probes to be the documents themselves (same count, >= 2)"
            )
        keep = ~np.eye(n, dtype=bool)
        source, target = source[keep].reshape(n, n - 1), target[keep].reshape(n, n - 1)
    return source, target


class ScoreCalibrator:
    """Monotone map of source-space scores onto the target space's scale (fit/transform)."""

    methods: ClassVar[tuple[str, ...]] = ("moments", "quantile")

    def __init__(self, method: Method = "quantile", top: int | None = None, n_quantiles: int = 101):
        if method not in self.methods:
            raise InvalidInputError(
                f"unknown calibration method {method!r}; use one of {list(self.methods)}"
            )
        if top is not None:
            top = check_int(top, "top")
        n_quantiles = check_int(n_quantiles, "n_quantiles", low=2)
        self.method = method
        self.top = top
        self.n_quantiles = n_quantiles
        self.slope = 1.0
        self.intercept = 0.0
        self.knots_in: np.ndarray | None = None  # quantile method: sorted source knots
        self.knots_out: np.ndarray | None = None
        self.fitted = False

    def fit(self, source: Any, target: Any) -> ScoreCalibrator:
        """Learn the map from ``source`` scores to ``target`` scores of the same probes.

        1-D arrays are pooled scores; 2-D arrays are (probes, docs) and allow ``top``.
        """
        src = self._head(_scores(source, "source scores"))
        tgt = self._head(_scores(target, "target scores"))
        if len(src) < 2 or len(tgt) < 2 or np.ptp(src) == 0 or np.ptp(tgt) == 0:
            raise InvalidInputError(
                "calibration needs at least 2 distinct scores on each side; score more probe "
                "queries or documents"
            )
        self.slope = float(np.std(tgt) / np.std(src))
        self.intercept = float(np.mean(tgt) - self.slope * np.mean(src))
        if self.method == "quantile":
            qs = np.linspace(0, 1, self.n_quantiles)
            knots_in, knots_out = np.quantile(src, qs), np.quantile(tgt, qs)
            keep = np.concatenate([[True], np.diff(knots_in) > 0])  # np.interp needs increasing
            self.knots_in, self.knots_out = knots_in[keep], knots_out[keep]
        self.fitted = True
        return self

    def _head(self, scores: np.ndarray) -> np.ndarray:
        if self.top is None or scores.ndim == 1:
            return scores.ravel()
        top = min(self.top, scores.shape[1])
        return -np.partition(-scores, top - 1, axis=1)[:, :top].ravel()

    def transform(self, scores: Any) -> np.ndarray:
        """Source scores on the target scale, same shape, float32; order is preserved."""
        if not self.fitted:
            raise not_fitted(self)
        x = np.asarray(scores, dtype=np.float64)
        if self.method != "quantile":
            return (self.slope * x + self.intercept).astype(np.float32)
        lo, hi = self.knots_in[0], self.knots_in[-1]
        out = np.interp(x, self.knots_in, self.knots_out)
        # Outside the fitted range continue linearly with the moments slope (np.interp clamps,
        # which would tie every score beyond the range).
        out = np.where(x < lo, self.knots_out[0] + self.slope * (x - lo), out)
        out = np.where(x > hi, self.knots_out[-1] + self.slope * (x - hi), out)
        return out.astype(np.float32)

    def state(self) -> dict[str, np.ndarray]:
        if not self.fitted:
            return {}
        out = {
            "method": np.array(self.method),
            "slope": np.array(self.slope),
            "intercept": np.array(self.intercept),
        }
        if self.knots_in is not None:
            out.update(knots_in=self.knots_in, knots_out=self.knots_out)
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.method = str(state["method"])  # type: ignore[assignment]
        self.slope, self.intercept = float(state["slope"]), float(state["intercept"])
        self.knots_in = np.asarray(state["knots_in"]) if "knots_in" in state else None
        self.knots_out = np.asarray(state["knots_out"]) if "knots_out" in state else None
        self.fitted = True

    def __repr__(self) -> str:
        fitted = f", slope={self.slope:.3f}, intercept={self.intercept:.3f}" if self.fitted else ""
        return f"ScoreCalibrator(method={self.method!r}, top={self.top}{fitted})"
