"""Upgrade adapters: map a new embedding model's vectors into an old model's space.

Changing the embedding model normally means re-embedding every stored document before the
new model's queries can search them. An adapter fitted on a *paired sample* (the same texts
embedded by both models) lets new-model queries search the old index at once, while documents
are re-embedded in the background (Drift-Adapter, 2025; orthogonal Procrustes as used to
align word-embedding spaces). How much quality survives depends on how alike the two models
are; :func:`fit_adapter` measures it on held-out pairs rather than promising it.

Four maps:

* :class:`ProcrustesAdapter` — a rotation (after PCA to a common dimension when the
  dimensions differ). It cannot distort the new space, so it needs few pairs and preserves
  the new model's rankings as far as the old vectors allow.
* :class:`LinearAdapter` — ridge regression of the vectors, closed form, penalty chosen by
  cross-validation. Puts each new vector where the old model would have put it: the map to
  move *documents* between spaces.
* :class:`ScoreMatchingAdapter` — a linear *query* map fitted so that adapted-query · old-doc
  reproduces new-query · new-doc. Ranking is what a query needs, and on real models (and on
  any map that is not a rotation) it ranks better than regressing the vectors.
* :class:`ResidualMLPAdapter` — the ridge map plus a small ReLU MLP fitted to its residuals
  (NumPy, AdamW, early stopping). Starts at the ridge solution, so it only helps when the
  sample is large enough to support the extra parameters (on the Debian set it never was).

:func:`fit_adapter` fits them on part of the sample and keeps the one whose adapted queries
rank held-out pairs most like the new model does (see :class:`HeldOut`).

Every adapter is a :class:`~slimvec.transforms.base.Transform` whose ``fit`` takes the pair
``(new, old)``; ``state()`` is a flat dict of arrays (the kind included), so
:func:`load_adapter` rebuilds any adapter from what a collection saved.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np

from slimvec.errors import InvalidInputError, not_fitted
from slimvec.kernels.topk import select_top
from slimvec.transforms.base import Transform, normalise_rows
from slimvec.validation import as_matrix, check_int

#: Fewest pairs any adapter accepts (a rotation is determined by two points at the very least).
MIN_PAIRS = 2
#: Fewest pairs to hold some out, to choose a regularisation or to measure quality.
MIN_PAIRS_VALIDATED = 10
#: Ridge penalties tried when none is given; absolute, on centred unit-norm vectors.
DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-4, 2, 13))

AdapterKind = Literal["auto", "procrustes", "linear", "scores", "mlp"]


# -- input checks ------------------------------------------------------------------------------
def check_pairs(new: Any, old: Any, min_pairs: int = MIN_PAIRS) -> tuple[np.ndarray, np.ndarray]:
    """``(new, old)`` as float32 arrays whose row i embeds the same text, or a clear error."""
    new = as_matrix(new, None, "new-model vectors")
    old = as_matrix(old, None, "old-model vectors")
    if len(new) != len(old):
        raise InvalidInputError(
            f"paired sample has {len(new)} new-model vectors but {len(old)} old-model vectors; "
            f"row i of both must embed the same text, so embed the same list with both models"
        )
    if len(new) < min_pairs:
        raise InvalidInputError(
            f"an adapter needs at least {min_pairs} paired texts, got {len(new)}; embed more "
            f"sample texts with both models (a few hundred to a few thousand work well)"
        )
    return new, old


def split_pairs(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, held-out) row indices; at least 2 rows on each side."""
    if not 0 < val_fraction < 1:
        raise InvalidInputError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    n_val = min(max(2, round(n * val_fraction)), n - 2)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def fold_pairs(n: int, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, held-out) row indices of each of ``folds`` cross-validation folds."""
    perm = np.random.default_rng(seed).permutation(n)
    parts = np.array_split(perm, min(folds, n // 2))
    return [
        (np.sort(np.concatenate(parts[:i] + parts[i + 1 :])), np.sort(part))
        for i, part in enumerate(parts)
    ]


def _mean_cosine(pred: np.ndarray, target: np.ndarray) -> float:
    return float(np.mean(np.sum(normalise_rows(pred) * normalise_rows(target), axis=1)))


class Scores(NamedTuple):
    """Held-out quality of an adapter; see :class:`HeldOut`."""

    recall: float
    correlation: float
    mean_cosine: float


def _centred_unit(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class HeldOut:
    """Held-out pairs scored the way the upgrade is judged: by ranking, not regression loss.

    Queries are the held-out texts' new-model vectors; the index is a paired set that the
    adapter was *not* fitted on (by default the held-out pairs themselves: an index holding
    training pairs flatters every map, score-matching most, since it reproduces the training
    documents' scores almost exactly). ``score(adapted)`` returns :class:`Scores`:

    * ``recall`` — recall@k of adapted queries over the old index against the new model's own
      top-k over the new index (the issue's definition; ``k`` capped at a fifth of the index
      so a small index does not make the top-k trivial);
    * ``correlation`` — mean per-query Pearson correlation between those two score rows: the
      same question answered smoothly, so it can tell apart maps whose recall ties on a small
      sample; the ridge penalty and the adapter kind are chosen by it. On the Debian set it
      picked penalties within 1.5 points of the best real-query recall, where the mean cosine
      picked penalties 3–100× too strong (shrinkage raises the cosine and blurs neighbours);
    * ``mean_cosine`` — between adapted and true old vectors. Meaningless for the
      score-matching adapter, which does not try to reproduce the old vectors.
    """

    def __init__(
        self,
        new_queries: np.ndarray,
        old_queries: np.ndarray,
        new_index: np.ndarray | None = None,
        old_index: np.ndarray | None = None,
        k: int = 10,
    ):
        if new_index is None or old_index is None:
            new_index, old_index = new_queries, old_queries
        self.new_queries = new_queries
        self.old_queries = old_queries
        self.old_index = normalise_rows(old_index)
        self.n_index = len(new_index)
        self.k = max(1, min(int(k), (len(new_index) - 1) // 5))
        sims = normalise_rows(new_queries) @ normalise_rows(new_index).T
        self.truth = select_top(sims, self.k)[0]
        self.truth_scores = _centred_unit(sims)

    def score(self, adapted: np.ndarray) -> Scores:
        sims = normalise_rows(adapted) @ self.old_index.T
        found = select_top(sims, self.k)[0]
        hits = (self.truth[:, :, None] == found[:, None, :]).any(axis=2).sum(axis=1)
        corr = np.sum(_centred_unit(sims) * self.truth_scores, axis=1)
        return Scores(
            float(np.mean(hits / self.k)),
            float(np.mean(corr)),
            _mean_cosine(adapted, self.old_queries),
        )


def _ridge_weights(
    xc: np.ndarray, yc: np.ndarray, alphas: tuple[float, ...] | list[float]
) -> list[np.ndarray]:
    """argmin_W ||xc W - yc||^2 + alpha ||W||^2 for each alpha, from one eigendecomposition.

    Uses the smaller Gram matrix: xcᵀxc (d×d) with many pairs, the dual xc xcᵀ (n×n) with few.
    """
    x, y = xc.astype(np.float64), yc.astype(np.float64)
    if len(x) >= x.shape[1]:
        lam, vec = np.linalg.eigh(x.T @ x)
        proj = vec.T @ (x.T @ y)
        return [vec @ (proj / (np.maximum(lam, 0) + a)[:, None]) for a in alphas]
    lam, vec = np.linalg.eigh(x @ x.T)
    proj = vec.T @ y
    return [x.T @ (vec @ (proj / (np.maximum(lam, 0) + a)[:, None])) for a in alphas]


# -- base classes ------------------------------------------------------------------------------
class Adapter(Transform):
    """Maps new-model vectors (``in_dim``) to the old model's space (``dim``).

    ``fit(new, old)`` takes paired rows; ``transform(new)`` works on any new-model vectors
    (documents or queries). With ``normalise=True`` outputs are unit-norm, as cosine
    collections store them, so adapted and native scores live on the same scale. An upgrade
    fits its adapters explicitly at ``begin_upgrade``; they are never part of a pipeline.
    """

    kind: ClassVar[str]

    def __init__(self, normalise: bool = True):
        super().__init__(0)
        self.in_dim = 0
        self.normalise = normalise

    @property
    def fitted(self) -> bool:
        return self.in_dim > 0

    def fit(self, new: np.ndarray, old: np.ndarray) -> Adapter:  # type: ignore[override]
        new, old = check_pairs(new, old, self._min_pairs())
        self._fit(new, old)
        self.in_dim, self.dim = int(new.shape[1]), int(old.shape[1])
        return self

    def transform(self, new: np.ndarray) -> np.ndarray:
        if not self.fitted:
            raise not_fitted(self)
        x = as_matrix(new, None, "new-model vectors")
        if x.shape[1] != self.in_dim:
            raise InvalidInputError(
                f"this adapter maps {self.in_dim}-dim vectors of the new model, got "
                f"{x.shape[1]}-dim ones; embed with the model the adapter was fitted for"
            )
        out = np.ascontiguousarray(self._map(x), dtype=np.float32)
        return normalise_rows(out) if self.normalise else out

    def state(self) -> dict[str, np.ndarray]:
        if not self.fitted:
            return {}
        return {
            "kind": np.array(self.kind),
            "normalise": np.array(self.normalise),
            **self._state(),
        }

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        if "kind" in state and str(state["kind"]) != self.kind:
            raise InvalidInputError(
                f"state holds a {str(state['kind'])!r} adapter, not {self.kind!r}; "
                f"use load_adapter(state)"
            )
        self.normalise = bool(state["normalise"])
        self._load_state(state)

    # -- to implement --------------------------------------------------------------------------
    def _min_pairs(self) -> int:
        return MIN_PAIRS

    def _fit(self, new: np.ndarray, old: np.ndarray) -> None:
        raise NotImplementedError

    def _map(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError


class _AffineAdapter(Adapter):
    """``(x - mean_in) @ weight + mean_out``: centring lets the map ignore each model's
    shared offset (embedding spaces are anisotropic) and spend its capacity on directions."""

    def __init__(self, center: bool = True, normalise: bool = True):
        super().__init__(normalise)
        self.center = center
        self.weight: np.ndarray | None = None  # (in_dim, dim)
        self.mean_in: np.ndarray | None = None
        self.mean_out: np.ndarray | None = None

    def _centre(self, new: np.ndarray, old: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.center:
            self.mean_in, self.mean_out = new.mean(axis=0), old.mean(axis=0)
        else:
            self.mean_in = np.zeros(new.shape[1], np.float32)
            self.mean_out = np.zeros(old.shape[1], np.float32)
        return new - self.mean_in, old - self.mean_out

    def _map(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean_in) @ self.weight + self.mean_out

    def _set(self, weight: np.ndarray) -> None:
        self.weight = np.ascontiguousarray(weight, dtype=np.float32)
        self.mean_in = np.asarray(self.mean_in, np.float32)
        self.mean_out = np.asarray(self.mean_out, np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        return {"weight": self.weight, "mean_in": self.mean_in, "mean_out": self.mean_out}

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        self.weight = np.asarray(state["weight"], np.float32)
        self.mean_in = np.asarray(state["mean_in"], np.float32)
        self.mean_out = np.asarray(state["mean_out"], np.float32)
        self.in_dim, self.dim = self.weight.shape


# -- the adapters ------------------------------------------------------------------------------
class ProcrustesAdapter(_AffineAdapter):
    """Orthogonal Procrustes: the rotation R minimising ||new R - old|| (SVD of newᵀ old).

    When the dimensions differ (or ``dim`` is given) both sides are first projected on their
    leading ``dim`` principal components, rotated there, and mapped back into the old space:
    weight = P_newᵀ R P_old. ``dim`` defaults to the smaller dimension and is capped at the
    number of pairs (more components than pairs are undetermined).
    """

    kind = "procrustes"

    def __init__(self, dim: int | None = None, center: bool = True, normalise: bool = True):
        super().__init__(center, normalise)
        self.common_dim = None if dim is None else check_int(dim, "dim")

    def _fit(self, new: np.ndarray, old: np.ndarray) -> None:
        xc, yc = self._centre(new, old)
        if self.common_dim is None and new.shape[1] == old.shape[1]:
            self._set(_rotation(xc, yc))
            return
        k = min(self.common_dim or min(new.shape[1], old.shape[1]), new.shape[1], old.shape[1])
        k = min(k, len(new))
        p_new, p_old = _principal_axes(xc, k), _principal_axes(yc, k)  # (k, d)
        rot = _rotation(xc @ p_new.T, yc @ p_old.T)
        self._set(p_new.T @ rot @ p_old)


def _rotation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(x.astype(np.float64).T @ y.astype(np.float64), full_matrices=False)
    return u @ vt


def _principal_axes(xc: np.ndarray, k: int) -> np.ndarray:
    """Leading k principal axes of the centred sample, (k, d), as rows."""
    x = xc.astype(np.float64)
    _, vec = np.linalg.eigh(x.T @ x)
    return vec[:, ::-1][:, :k].T


class LinearAdapter(_AffineAdapter):
    """Ridge regression new → old in closed form (one eigendecomposition for all penalties).

    With ``alpha=None`` the penalty is chosen from ``alphas`` by ``folds``-fold cross-validation
    (see :class:`HeldOut`), then refitted on all pairs; the choice is kept in ``alpha_``.
    Regularisation matters: a 768→384 map has 295k weights, far more than a few hundred pairs
    determine.
    """

    kind = "linear"

    def __init__(
        self,
        alpha: float | None = None,
        alphas: tuple[float, ...] = DEFAULT_ALPHAS,
        center: bool = True,
        folds: int = 5,
        seed: int = 0,
        normalise: bool = True,
    ):
        super().__init__(center, normalise)
        check_int(folds, "folds", low=2)
        if alpha is not None and not (np.isfinite(alpha) and alpha >= 0):
            raise InvalidInputError(f"alpha must be a finite number >= 0, got {alpha!r}")
        if alpha is None and not alphas:
            raise InvalidInputError("alphas is empty: give at least one ridge penalty to try")
        self.alpha = alpha
        self.alphas = tuple(float(a) for a in alphas)
        self.folds = folds
        self.seed = seed
        self.alpha_: float | None = alpha

    def _min_pairs(self) -> int:
        return MIN_PAIRS if self.alpha is not None else MIN_PAIRS_VALIDATED

    def _solve(self, new: np.ndarray, old: np.ndarray, alphas) -> list[tuple[np.ndarray, ...]]:
        """(weight, mean_in, mean_out) of the map for each penalty."""
        mx = new.mean(0) if self.center else np.zeros(new.shape[1], np.float32)
        my = old.mean(0) if self.center else np.zeros(old.shape[1], np.float32)
        return [(w, mx, my) for w in _ridge_weights(new - mx, old - my, alphas)]

    def _fit(self, new: np.ndarray, old: np.ndarray) -> None:
        alpha = self.alpha if self.alpha is not None else self._choose_alpha(new, old)
        weight, self.mean_in, self.mean_out = self._solve(new, old, [alpha])[0]
        self._set(weight)
        self.alpha_ = alpha

    def _choose_alpha(self, new: np.ndarray, old: np.ndarray) -> float:
        totals = np.zeros(len(self.alphas))
        for train, val in fold_pairs(len(new), self.folds, self.seed):
            held = HeldOut(new[val], old[val])
            maps = self._solve(new[train], old[train], self.alphas)
            totals += [held.score((new[val] - mx) @ w + my).correlation for w, mx, my in maps]
        return self.alphas[int(np.argmax(totals))]

    def _state(self) -> dict[str, np.ndarray]:
        return {**super()._state(), "alpha": np.array(self.alpha_, dtype=np.float64)}

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        super()._load_state(state)
        self.alpha_ = float(state["alpha"])


class ScoreMatchingAdapter(LinearAdapter):
    """A *query* map W fitted so that ``(q W) · d_old ≈ q · d_new`` for the sample documents.

    Regressing vectors new → old (:class:`LinearAdapter`) makes ``q W`` close to where the old
    model would put the query, but the ranking then follows the old model's geometry, bent by
    the fit. What a new-model query needs is the *scores* the new model would give: minimising
    Σ_q,d ((q W) · d_old − q · d_new)² over isotropic queries gives W = Vᵀ, where V is the ridge
    regression old → new (map the old documents into the new space, then fold the map into
    the query). The per-query constant ``q · (m_new − V m_old)`` does not change a ranking and
    is dropped, so no centring is applied to the query.

    For queries only: to move *documents* between spaces use LinearAdapter or Procrustes. For
    an orthogonal map the two coincide (Rᵀ = R⁻¹), which is why Procrustes ranks well too.
    """

    kind = "scores"

    def _solve(self, new: np.ndarray, old: np.ndarray, alphas) -> list[tuple[np.ndarray, ...]]:
        mx = old.mean(0) if self.center else np.zeros(old.shape[1], np.float32)
        my = new.mean(0) if self.center else np.zeros(new.shape[1], np.float32)
        zeros_in = np.zeros(new.shape[1], np.float32)
        zeros_out = np.zeros(old.shape[1], np.float32)
        return [(v.T, zeros_in, zeros_out) for v in _ridge_weights(old - mx, new - my, alphas)]


class ResidualMLPAdapter(Adapter):
    """Ridge map plus a one-hidden-layer ReLU MLP trained on its residuals (NumPy, AdamW).

    The output layer starts at zero, so training starts from the ridge solution; the number
    of epochs is chosen by early stopping on held-out pairs (mean cosine), then the MLP is
    retrained on all pairs for that many epochs. When the sample is too small to support the
    hidden layer, early stopping picks zero epochs and the adapter *is* the ridge map.
    """

    kind = "mlp"

    def __init__(
        self,
        hidden: int = 256,
        epochs: int = 200,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 128,
        patience: int = 15,
        alpha: float | None = None,
        val_fraction: float = 0.2,
        seed: int = 0,
        normalise: bool = True,
    ):
        super().__init__(normalise)
        for name, value in (("hidden", hidden), ("epochs", epochs), ("batch_size", batch_size)):
            check_int(value, name)
        self.hidden, self.epochs, self.lr, self.weight_decay = hidden, epochs, lr, weight_decay
        self.batch_size, self.patience, self.alpha = batch_size, patience, alpha
        self.val_fraction, self.seed = val_fraction, seed
        self.linear = LinearAdapter(alpha, seed=seed, normalise=False)
        self.params: dict[str, np.ndarray] = {}
        self.scale = np.float32(1.0)
        self.epochs_: int = 0

    def _min_pairs(self) -> int:
        return MIN_PAIRS_VALIDATED

    def _fit(self, new: np.ndarray, old: np.ndarray) -> None:
        train, val = split_pairs(len(new), self.val_fraction, self.seed)
        base = LinearAdapter(self.alpha, seed=self.seed, normalise=False).fit(
            new[train], old[train]
        )
        self.linear = base
        held = HeldOut(new[val], old[val])
        self.epochs_ = self._train(new[train], old[train], held, self.epochs)
        # Refit both parts on every pair with the chosen penalty and epoch count.
        self.linear = LinearAdapter(base.alpha_, normalise=False).fit(new, old)
        self._train(new, old, None, self.epochs_)

    def _hidden_input(self, x: np.ndarray) -> np.ndarray:
        return (x - self.linear.mean_in) * self.scale

    def _train(self, x: np.ndarray, y: np.ndarray, val: HeldOut | None, epochs: int) -> int:
        """AdamW on the residual MSE; returns the best epoch count (by ``val``) or ``epochs``."""
        rng = np.random.default_rng(self.seed)
        d_in, d_out, h = x.shape[1], y.shape[1], self.hidden
        xc = x - self.linear.mean_in
        self.scale = np.float32(1.0 / max(float(xc.std()), 1e-12))
        p = {
            "w1": (rng.standard_normal((d_in, h)) * np.sqrt(2.0 / d_in)).astype(np.float32),
            "b1": np.zeros(h, np.float32),
            "w2": np.zeros((h, d_out), np.float32),
            "b2": np.zeros(d_out, np.float32),
        }
        self.params = p
        if epochs == 0:
            return 0
        xs = xc * self.scale
        resid = (y - self.linear._map(x)).astype(np.float32)
        m = {k: np.zeros_like(v) for k, v in p.items()}
        v = {k: np.zeros_like(v) for k, v in p.items()}
        best, best_epoch, best_params, step = -1.0, 0, dict(p), 0
        if val is not None:
            best = _mean_cosine(self._map(val.new_queries), val.old_queries)
        for epoch in range(1, epochs + 1):
            order = rng.permutation(len(xs))
            for start in range(0, len(xs), self.batch_size):
                rows = order[start : start + self.batch_size]
                xb, rb = xs[rows], resid[rows]
                pre = xb @ p["w1"] + p["b1"]
                act = np.maximum(pre, 0)
                err = (act @ p["w2"] + p["b2"] - rb) * (2.0 / len(rows))
                d_pre = (err @ p["w2"].T) * (pre > 0)
                grads = {
                    "w2": act.T @ err,
                    "b2": err.sum(0),
                    "w1": xb.T @ d_pre,
                    "b1": d_pre.sum(0),
                }
                step += 1
                for key, g in grads.items():
                    p[key] = _adamw(p[key], g, m, v, key, step, self.lr, self.weight_decay)
            if val is None:
                continue
            score = _mean_cosine(self._map(val.new_queries), val.old_queries)
            if score > best:
                best, best_epoch, best_params = score, epoch, dict(p)
            elif epoch - best_epoch >= self.patience:
                break
        if val is None:
            return epochs
        self.params = best_params
        return best_epoch

    def _map(self, x: np.ndarray) -> np.ndarray:
        p = self.params
        act = np.maximum(self._hidden_input(x) @ p["w1"] + p["b1"], 0)
        return self.linear._map(x) + act @ p["w2"] + p["b2"]

    def _state(self) -> dict[str, np.ndarray]:
        lin = {f"linear.{k}": val for k, val in self.linear._state().items()}
        mlp = {f"mlp.{k}": val for k, val in self.params.items()}
        return {**lin, **mlp, "scale": np.array(self.scale), "epochs": np.array(self.epochs_)}

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        self.linear = LinearAdapter(normalise=False)
        self.linear._load_state({k[7:]: v for k, v in state.items() if k.startswith("linear.")})
        self.params = {
            k[4:]: np.asarray(v, np.float32) for k, v in state.items() if k.startswith("mlp.")
        }
        self.scale = np.float32(state["scale"])
        self.epochs_ = int(state["epochs"])
        self.in_dim, self.dim = self.linear.weight.shape
        self.hidden = self.params["w1"].shape[1]


def _adamw(
    w: np.ndarray, g: np.ndarray, m: dict, v: dict, key: str, step: int, lr: float, decay: float
) -> np.ndarray:
    """One AdamW update of ``w`` (moments ``m[key]``, ``v[key]`` updated in place)."""
    m[key] = 0.9 * m[key] + 0.1 * g
    v[key] = 0.999 * v[key] + 0.001 * g * g
    m_hat, v_hat = m[key] / (1 - 0.9**step), v[key] / (1 - 0.999**step)
    return (w * (1 - lr * decay) - lr * m_hat / (np.sqrt(v_hat) + 1e-8)).astype(np.float32)


ADAPTERS: dict[str, type[Adapter]] = {
    "procrustes": ProcrustesAdapter,
    "linear": LinearAdapter,
    "scores": ScoreMatchingAdapter,
    "mlp": ResidualMLPAdapter,
}


def load_adapter(state: dict[str, np.ndarray]) -> Adapter:
    """Rebuild a fitted adapter from what its ``state()`` returned (e.g. read from an npz)."""
    if "kind" not in state:
        raise InvalidInputError(
            "adapter state has no 'kind' entry; pass what Adapter.state() returned"
        )
    kind = str(state["kind"])
    if kind not in ADAPTERS:
        raise InvalidInputError(f"unknown adapter kind {kind!r}; known: {sorted(ADAPTERS)}")
    adapter = ADAPTERS[kind]()
    adapter.load_state(state)
    return adapter


# -- quality -----------------------------------------------------------------------------------
@dataclass
class AdapterQuality:
    """How well an adapter stands in for re-embedding, on pairs it was not fitted on.

    ``recall`` is recall@k of adapted new-model queries searching the old vectors, against the
    new model's own top-k over the new vectors of the same texts (the quality a user would
    have had after a full re-embed, on that sample); ``correlation`` the smooth version of the
    same comparison; ``mean_cosine`` the mean cosine between adapted and true old vectors.
    See :class:`HeldOut`.
    """

    recall: float
    correlation: float
    mean_cosine: float
    k: int
    n_queries: int
    n_index: int


def adapter_quality(
    adapter: Adapter,
    new_queries: np.ndarray,
    old_queries: np.ndarray,
    new_index: np.ndarray | None = None,
    old_index: np.ndarray | None = None,
    k: int = 10,
) -> AdapterQuality:
    """Score ``adapter`` on held-out pairs (``new_queries[i]`` ↔ ``old_queries[i]``).

    The index defaults to the held-out pairs themselves; a larger paired index gives a finer
    top-k but must not hold pairs the adapter was fitted on (see :class:`HeldOut`). ``k`` is
    capped at a fifth of the index.
    """
    new_queries, old_queries = check_pairs(new_queries, old_queries, 1)
    if new_index is None or old_index is None:
        new_index, old_index = new_queries, old_queries
    new_index, old_index = check_pairs(new_index, old_index, 2)
    held = HeldOut(new_queries, old_queries, new_index, old_index, k)
    scores = held.score(adapter.transform(new_queries))
    return AdapterQuality(*scores, k=held.k, n_queries=len(new_queries), n_index=held.n_index)


@dataclass
class AdapterReport:
    """What :func:`fit_adapter` chose and how it did on held-out pairs (``to_dict`` for JSON)."""

    kind: str
    n_pairs: int
    n_heldout: int
    recall: float  # recall@k on held-out pairs, see AdapterQuality
    correlation: float
    mean_cosine: float
    k: int
    new_dim: int
    old_dim: int
    candidates: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"{self.kind} adapter {self.new_dim}-d → {self.old_dim}-d from {self.n_pairs} pairs: "
            f"held-out recall@{self.k} {self.recall:.3f} vs re-embedding, score correlation "
            f"{self.correlation:.3f} ({self.n_heldout} held-out pairs)"
        )


def _candidate_kinds(kind: str) -> list[str]:
    if kind == "auto":
        return ["scores", "procrustes", "linear", "mlp"]
    if kind not in ADAPTERS:
        raise InvalidInputError(
            f"unknown adapter kind {kind!r}; use 'auto' or one of {sorted(ADAPTERS)}"
        )
    return [kind]


def fit_adapter(
    new: np.ndarray,
    old: np.ndarray,
    kind: AdapterKind = "auto",
    *,
    k: int = 10,
    val_fraction: float = 0.2,
    seed: int = 0,
    **params: Any,
) -> tuple[Adapter, AdapterReport]:
    """Fit an adapter new → old on paired rows and report its held-out quality.

    Each candidate kind (every kind for ``"auto"``) is fitted on ``1 - val_fraction`` of the
    pairs and scored with :func:`adapter_quality` on the rest (held-out pairs as queries and as
    the index); the best by score correlation is refitted on all pairs. ``params`` go to the
    adapter's constructor (only with an explicit ``kind``).
    """
    new, old = check_pairs(new, old, MIN_PAIRS_VALIDATED)
    kinds = _candidate_kinds(kind)
    if params and kind == "auto":
        raise InvalidInputError("adapter parameters need an explicit kind, not 'auto'")
    train, held = split_pairs(len(new), val_fraction, seed)
    qualities: dict[str, AdapterQuality] = {}
    for name in kinds:
        adapter = _make(name, seed, params).fit(new[train], old[train])
        qualities[name] = adapter_quality(adapter, new[held], old[held], k=k)
    best = max(kinds, key=lambda n: (qualities[n].correlation, qualities[n].recall))
    adapter = _make(best, seed, params).fit(new, old)
    q = qualities[best]
    report = AdapterReport(
        kind=best,
        n_pairs=len(new),
        n_heldout=len(held),
        recall=q.recall,
        correlation=q.correlation,
        mean_cosine=q.mean_cosine,
        k=q.k,
        new_dim=int(new.shape[1]),
        old_dim=int(old.shape[1]),
        candidates={
            name: {"recall": v.recall, "correlation": v.correlation, "mean_cosine": v.mean_cosine}
            for name, v in qualities.items()
        },
    )
    return adapter, report


def _make(kind: str, seed: int, params: dict[str, Any]) -> Adapter:
    cls = ADAPTERS[kind]
    if cls is ProcrustesAdapter:
        return cls(**params)
    return cls(seed=seed, **params)
