"""Upgrade adapters: exact recovery of known maps, held-out reports, state, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from slimvec.compat.adapters import (
    ADAPTERS,
    LinearAdapter,
    ProcrustesAdapter,
    ResidualMLPAdapter,
    adapter_quality,
    fit_adapter,
    load_adapter,
)
from slimvec.errors import InvalidInputError


def _orthogonal(d: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_procrustes_recovers_a_known_rotation_exactly():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 32)).astype(np.float32)
    rot = _orthogonal(32, 1)
    shift = rng.standard_normal(32)
    adapter = ProcrustesAdapter(normalise=False).fit(x, x @ rot + shift)
    np.testing.assert_allclose(adapter.weight, rot, atol=1e-5)
    fresh = rng.standard_normal((50, 32)).astype(np.float32)
    np.testing.assert_allclose(adapter.transform(fresh), fresh @ rot + shift, atol=1e-4)


def test_procrustes_with_pca_maps_between_dimensions():
    """Old space 16-d; the new model holds the same 16-d content rotated inside 40 dims."""
    rng = np.random.default_rng(2)
    old = rng.standard_normal((400, 16)) * np.linspace(3, 1, 16)  # distinct variances
    embed = _orthogonal(40, 3)[:16]  # (16, 40), orthonormal rows
    new = old @ embed
    adapter = ProcrustesAdapter(normalise=False).fit(new, old)
    assert (adapter.in_dim, adapter.dim) == (40, 16)
    np.testing.assert_allclose(adapter.transform(new), old, atol=1e-3)


def test_linear_recovers_a_known_linear_map_on_noisy_data():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3000, 48)).astype(np.float32)
    true = rng.standard_normal((48, 24))
    y = x @ true + 0.5 + 0.05 * rng.standard_normal((3000, 24))
    adapter = LinearAdapter(normalise=False).fit(x, y)
    assert np.linalg.norm(adapter.weight - true) / np.linalg.norm(true) < 0.01
    assert adapter.alpha_ is not None and adapter.alpha_ <= 1.0
    fresh = rng.standard_normal((100, 48)).astype(np.float32)
    np.testing.assert_allclose(adapter.transform(fresh), fresh @ true + 0.5, atol=0.05)


def test_linear_penalty_chosen_on_held_out_pairs_generalises():
    """Few, noisy pairs: the cross-validated penalty ranks fresh pairs better than none."""
    rng = np.random.default_rng(5)
    true = rng.standard_normal((64, 32))

    def pairs(n):
        x = rng.standard_normal((n, 64))
        return x, x @ true + 8 * rng.standard_normal((n, 32))

    new, old = pairs(60)
    chosen = LinearAdapter().fit(new, old)
    barely = LinearAdapter(alpha=1e-4).fit(new, old)
    assert chosen.alpha_ in chosen.alphas and chosen.alpha_ > 1e-4
    fresh_new, _ = pairs(500)
    fresh = (fresh_new, fresh_new @ true)  # judged against the noise-free old vectors
    assert (
        adapter_quality(chosen, *fresh).correlation
        > adapter_quality(barely, *fresh).correlation + 0.02
    )


def test_mlp_reduces_loss_on_a_nonlinear_map():
    rng = np.random.default_rng(6)
    w = rng.standard_normal((12, 12)) / np.sqrt(12)

    def target(x):
        return np.tanh(2 * x @ w) + 0.3 * x

    x = rng.standard_normal((3000, 12)).astype(np.float32)
    test = rng.standard_normal((500, 12)).astype(np.float32)
    linear = LinearAdapter(normalise=False).fit(x, target(x))
    mlp = ResidualMLPAdapter(hidden=64, epochs=80, lr=3e-3, normalise=False).fit(x, target(x))
    lin_err = np.mean((linear.transform(test) - target(test)) ** 2)
    mlp_err = np.mean((mlp.transform(test) - target(test)) ** 2)
    assert mlp.epochs_ > 0
    assert mlp_err < 0.2 * lin_err


def test_mlp_falls_back_to_ridge_when_the_map_is_linear():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((60, 16)).astype(np.float32)
    y = x @ rng.standard_normal((16, 8))
    mlp = ResidualMLPAdapter(hidden=32, epochs=20).fit(x, y)
    ridge = LinearAdapter(alpha=mlp.linear.alpha_).fit(x, y)
    if mlp.epochs_ == 0:
        np.testing.assert_allclose(mlp.transform(x), ridge.transform(x), atol=1e-5)
    assert adapter_quality(mlp, x, y).mean_cosine > 0.99


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
def test_state_round_trips_through_npz(kind, tmp_path):
    rng = np.random.default_rng(8)
    new = _unit(rng.standard_normal((80, 24)))
    old = _unit(new @ rng.standard_normal((24, 12)) + 0.1 * rng.standard_normal((80, 12)))
    adapter = ADAPTERS[kind]().fit(new, old)
    np.savez(tmp_path / "state.npz", **adapter.state())
    with np.load(tmp_path / "state.npz", allow_pickle=False) as f:
        restored = load_adapter(dict(f))
    assert type(restored) is type(adapter)
    assert (restored.in_dim, restored.dim) == (24, 12)
    np.testing.assert_array_equal(restored.transform(new), adapter.transform(new))
    norms = np.linalg.norm(restored.transform(new), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)  # normalise=True by default


def test_load_state_refuses_another_kind():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((20, 4))
    state = ProcrustesAdapter().fit(x, x).state()
    with pytest.raises(InvalidInputError, match="procrustes"):
        LinearAdapter().load_state(state)
    with pytest.raises(InvalidInputError, match="kind"):
        load_adapter({"weight": np.eye(3)})


def test_quality_separates_a_good_adapter_from_a_wrong_one():
    rng = np.random.default_rng(10)
    new = _unit(rng.standard_normal((400, 32)))
    rot = _orthogonal(32, 11)
    good = ProcrustesAdapter().fit(new, new @ rot)
    wrong = ProcrustesAdapter().fit(new, new @ _orthogonal(32, 12))
    q_good = adapter_quality(good, new[:100], new[:100] @ rot, new, new @ rot)
    q_wrong = adapter_quality(wrong, new[:100], new[:100] @ rot, new, new @ rot)
    assert q_good.recall == pytest.approx(1.0) and q_good.mean_cosine > 0.999
    assert q_wrong.recall < 0.2 and q_wrong.mean_cosine < 0.5
    assert q_good.k == 10 and q_good.n_index == 400


def test_fit_adapter_auto_picks_by_held_out_ranking_not_fit():
    """Old space = a stretched copy of the new one. Regressing the vectors fits them best
    (cosine ~1) but ranks like the stretched space; the score-matching map ranks like the new
    model, which is what the held-out recall asks for, so auto must pick it."""
    rng = np.random.default_rng(13)
    new = _unit(rng.standard_normal((600, 32)))
    stretch = rng.standard_normal((32, 32)) * np.geomspace(4, 0.05, 32)  # far from orthogonal
    adapter, report = fit_adapter(new, _unit(new @ stretch), "auto")
    cands = report.candidates
    assert set(cands) == {"procrustes", "linear", "scores", "mlp"}
    best = max(cands, key=lambda n: cands[n]["correlation"])
    assert report.kind == best == adapter.kind == "scores"
    assert cands["linear"]["mean_cosine"] > 0.95  # best vector fit ...
    assert report.recall > 1.5 * cands["linear"]["recall"]  # ... far from the best ranking
    assert report.n_pairs == 600 and report.n_heldout == 120 and report.k == 10
    assert "held-out recall@10" in str(report) and report.to_dict()["old_dim"] == 32


def test_fit_adapter_reports_a_rotation_as_near_perfect():
    rng = np.random.default_rng(14)
    new = _unit(rng.standard_normal((300, 24)))
    adapter, report = fit_adapter(new, new @ _orthogonal(24, 15), "procrustes")
    assert isinstance(adapter, ProcrustesAdapter)
    assert report.recall == pytest.approx(1.0) and report.mean_cosine > 0.999


def test_real_models_adapter_beats_shuffled_pairs(e5_docs, minilm):
    """e5 -> MiniLM on 400 real pairs (Debian descriptions): far above unpaired (shuffled) rows."""
    new, old = e5_docs, minilm[0][: len(e5_docs)]
    _, report = fit_adapter(new, old, "linear")
    _, shuffled = fit_adapter(new, old[np.random.default_rng(17).permutation(len(old))], "linear")
    # measured: held-out recall@10 0.430, mean cosine 0.556, score correlation 0.576; shuffled
    # pairs 0.099, 0.385, -0.059 (the cosine a linear map gets from MiniLM's common direction)
    assert report.recall > 0.3 and report.mean_cosine > 0.5 and report.correlation > 0.4
    assert shuffled.recall < 0.15  # chance: k / index size = 10 / 80
    assert report.recall > 3 * shuffled.recall and report.correlation > 3 * shuffled.correlation


# -- bad input ---------------------------------------------------------------------------------
def test_mismatched_pair_counts_are_refused():
    rng = np.random.default_rng(18)
    with pytest.raises(InvalidInputError, match="30 new-model vectors but 29 old-model"):
        LinearAdapter(alpha=1.0).fit(rng.standard_normal((30, 8)), rng.standard_normal((29, 8)))


def test_nan_pairs_are_refused_with_their_rows():
    rng = np.random.default_rng(19)
    new = rng.standard_normal((30, 8))
    new[[3, 7], 1] = np.nan
    with pytest.raises(InvalidInputError, match=r"NaN or infinite values in rows \[3, 7\]"):
        fit_adapter(new, rng.standard_normal((30, 8)))
    old = rng.standard_normal((30, 8))
    old[0, 0] = np.inf
    with pytest.raises(InvalidInputError, match="old-model vectors contain NaN"):
        ProcrustesAdapter().fit(rng.standard_normal((30, 8)), old)


def test_too_few_pairs_are_refused():
    rng = np.random.default_rng(20)
    with pytest.raises(InvalidInputError, match="at least 10 paired texts, got 5"):
        fit_adapter(rng.standard_normal((5, 8)), rng.standard_normal((5, 8)))
    with pytest.raises(InvalidInputError, match="at least 10 paired texts"):
        LinearAdapter().fit(rng.standard_normal((5, 8)), rng.standard_normal((5, 8)))
    with pytest.raises(InvalidInputError, match="at least 2 paired texts, got 1"):
        ProcrustesAdapter().fit(rng.standard_normal((1, 8)), rng.standard_normal((1, 8)))
    # with an explicit penalty nothing needs holding out
    assert LinearAdapter(alpha=0.1).fit(rng.standard_normal((5, 8)), rng.standard_normal((5, 4)))


def test_other_bad_input():
    rng = np.random.default_rng(21)
    x = rng.standard_normal((20, 8))
    with pytest.raises(InvalidInputError, match="2-D"):
        ProcrustesAdapter().fit(x[0], x[0])
    with pytest.raises(InvalidInputError, match="real numbers"):
        ProcrustesAdapter().fit(np.array([["a", "b"]] * 3), x[:3, :2])
    with pytest.raises(RuntimeError, match="before fit"):
        LinearAdapter().transform(x)
    adapter = ProcrustesAdapter().fit(x, x)
    with pytest.raises(InvalidInputError, match="maps 8-dim vectors of the new model, got 5"):
        adapter.transform(x[:, :5])
    with pytest.raises(InvalidInputError, match="unknown adapter kind 'pq'"):
        fit_adapter(x, x, "pq")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="explicit kind"):
        fit_adapter(x, x, "auto", alpha=1.0)
    with pytest.raises(InvalidInputError, match="alpha"):
        LinearAdapter(alpha=-1.0)
    with pytest.raises(InvalidInputError, match="hidden"):
        ResidualMLPAdapter(hidden=0)
    with pytest.raises(InvalidInputError, match="val_fraction"):
        fit_adapter(x, x, "linear", val_fraction=1.5)
