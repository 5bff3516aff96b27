"""Space identity, score calibration across spaces, relative representations."""

from __future__ import annotations

import numpy as np
import pytest

import slimvec
from slimvec.compat import (
    RelativeEncoder,
    RelativeRepresentation,
    ScoreCalibrator,
    SpaceIdentity,
    SpaceMismatchError,
    probe_scores,
)
from slimvec.encoders import Encoder
from slimvec.errors import InvalidInputError

MINILM = SpaceIdentity("all-MiniLM-L6-v2", 384, "a1b2c3d4e5f60718")


# -- identity ----------------------------------------------------------------------------------
def test_identity_json_round_trip():
    assert SpaceIdentity.from_json(MINILM.to_json()) == MINILM
    bare = SpaceIdentity("my-model", 64)
    assert SpaceIdentity.from_json(bare.to_json()) == bare and bare.fingerprint is None
    assert SpaceIdentity.from_dict({"name": "m", "dim": 8}) == SpaceIdentity("m", 8)


def test_identity_tells_float_noise_from_another_model():
    probe = (0.12, -0.034, 0.5)
    here = SpaceIdentity("m", 8, "aaaaaaaaaaaaaaaa", probe)
    assert SpaceIdentity.from_json(here.to_json()) == here
    noisy = SpaceIdentity("m", 8, "bbbbbbbbbbbbbbbb", (0.121, -0.034, 0.5))  # a digit flipped
    assert here.compatible(noisy)
    other = SpaceIdentity("m", 8, "bbbbbbbbbbbbbbbb", (0.17, -0.034, 0.5))
    assert "fingerprint changed" in here.mismatch(other)
    assert not here.compatible(SpaceIdentity("m", 8, "bbbbbbbbbbbbbbbb"))  # no probe: trust hash


def test_identity_refuses_malformed_fields():
    with pytest.raises(InvalidInputError, match="model name"):
        SpaceIdentity("", 384)
    with pytest.raises(InvalidInputError, match="dim must be a positive integer"):
        SpaceIdentity("m", 0)
    with pytest.raises(InvalidInputError, match="dim must be a positive integer"):
        SpaceIdentity("m", True)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="fingerprint"):
        SpaceIdentity("m", 8, "")
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        SpaceIdentity.from_json("{name")
    with pytest.raises(InvalidInputError, match="'name', 'dim'"):
        SpaceIdentity.from_dict({"name": "m"})
    with pytest.raises(InvalidInputError, match="unknown space identity fields"):
        SpaceIdentity.from_dict({"name": "m", "dim": 8, "metric": "cosine"})


def test_other_dimension_is_refused_with_both_models_named():
    gemma = SpaceIdentity("embeddinggemma-300m", 768, "ffff000011112222")
    with pytest.raises(SpaceMismatchError) as err:
        gemma.check_compatible(MINILM)
    message = str(err.value)
    assert message.startswith(
        "vectors from model 'all-MiniLM-L6-v2' (384-d) cannot be added to a space of model "
        "'embeddinggemma-300m' (768-d): the dimensions differ (384 vs 768)"
    )
    assert "begin_upgrade" in message
    assert isinstance(err.value, ValueError)  # InvalidInputError family


def test_same_dimension_other_model_is_refused():
    e5 = SpaceIdentity("multilingual-e5-small", 384, "0123456789abcdef")
    assert "different models" in MINILM.mismatch(e5)
    assert not MINILM.compatible(e5)
    # without fingerprints the names decide
    assert "different models" in SpaceIdentity("a", 8).mismatch(SpaceIdentity("b", 8))


def test_changed_fingerprint_under_the_same_name_is_refused():
    retrained = SpaceIdentity("all-MiniLM-L6-v2", 384, "9999999999999999")
    with pytest.raises(SpaceMismatchError, match="fingerprint changed"):
        MINILM.check_compatible(retrained)


def test_compatible_identities():
    alias = SpaceIdentity("/models/minilm-local-copy", 384, MINILM.fingerprint)
    assert MINILM.compatible(alias)  # same fingerprint: names are only labels
    assert MINILM.compatible(SpaceIdentity("ALL-minilm-l6-v2", 384))  # no fingerprint: name
    MINILM.check_compatible(MINILM)


class _FakeEncoder:
    name = "fake-model"
    dim = 16

    def fingerprint(self) -> str:
        return "00ff00ff00ff00ff"


def test_identity_from_a_duck_typed_encoder():
    identity = SpaceIdentity.from_encoder(_FakeEncoder())
    assert identity == SpaceIdentity("fake-model", 16, "00ff00ff00ff00ff")
    with pytest.raises(InvalidInputError, match=r"needs \.name, \.dim and \.fingerprint"):
        SpaceIdentity.from_encoder(object())  # type: ignore[arg-type]


def test_identity_from_a_real_encoder_matches_its_manifest_spec():
    base = pytest.importorskip("slimvec.encoders.base")

    class Hashing(base.Encoder):
        name, dim = "hashing-test", 8

        def _encode(self, texts, kind, batch_size):
            return np.stack([np.cos(np.arange(8) * (len(t) % 7 + 1)) for t in texts])

    enc = Hashing()
    identity = SpaceIdentity.from_encoder(enc)
    assert identity == SpaceIdentity.from_dict(base.encoder_spec(enc))
    assert identity.fingerprint == enc.fingerprint()


# -- calibration -------------------------------------------------------------------------------
def _target_scores(rng, n_queries: int, n_docs: int) -> np.ndarray:
    return np.tanh(rng.standard_normal((n_queries, n_docs)) * 0.4 + 0.2)


@pytest.mark.parametrize(
    ("method", "warp"),
    [
        ("moments", lambda s: 0.5 * s - 0.3),  # affine: exactly invertible by moments
        ("quantile", lambda s: 0.5 * s - 0.3),
        ("quantile", lambda s: np.exp(3 * s) - 1.5),  # monotone, non-linear
    ],
)
def test_calibration_makes_identically_distributed_scores_comparable(method, warp):
    """Half of the corpus is scored in a space whose scores are a monotone warp of the
    other's. After calibration the merged top-10 is the one computed in a single space."""
    rng = np.random.default_rng(0)
    probes = _target_scores(rng, 300, 200)  # same-distribution probe queries
    cal = ScoreCalibrator(method).fit(warp(probes), probes)
    scores = _target_scores(rng, 100, 1000)
    old_half = np.arange(1000) % 2 == 1
    reference = np.argsort(-scores, axis=1)[:, :10]

    def merged(old_scores):
        both = np.where(old_half, old_scores, scores)
        return np.argsort(-both, axis=1)[:, :10]

    raw = merged(warp(scores))
    calibrated = merged(cal.transform(warp(scores)))
    overlap = np.mean([len(set(a) & set(b)) for a, b in zip(calibrated, reference)]) / 10
    raw_overlap = np.mean([len(set(a) & set(b)) for a, b in zip(raw, reference)]) / 10
    assert raw_overlap < 0.8  # the test can fail: uncalibrated merging is visibly wrong
    assert overlap > 0.97


def test_calibration_preserves_order_and_extrapolates():
    rng = np.random.default_rng(1)
    src = rng.normal(0.3, 0.1, 5000)
    cal = ScoreCalibrator("quantile", n_quantiles=51).fit(src, rng.normal(0.6, 0.05, 5000))
    x = np.linspace(-1, 2, 1001)  # far beyond the fitted range on both sides
    y = cal.transform(x)
    assert np.all(np.diff(y) > 0)
    assert cal.transform(np.array([0.3]))[0] == pytest.approx(0.6, abs=0.01)


def test_calibration_top_uses_the_head_of_each_row():
    rng = np.random.default_rng(2)
    src = rng.standard_normal((50, 400))
    tgt = src * 2.0
    src[:, :200] -= 10  # each row's bottom half: far below the head in both spaces, but
    tgt[:, :200] = -50  # shaped differently; the heads are the same columns, tgt = 2 src
    cal = ScoreCalibrator("moments", top=20).fit(src, tgt)
    assert cal.slope == pytest.approx(2.0, rel=1e-6) and cal.intercept == pytest.approx(0, abs=1e-6)
    assert ScoreCalibrator("moments").fit(src, tgt).slope != pytest.approx(2.0, rel=0.1)


def test_calibration_state_round_trip():
    rng = np.random.default_rng(3)
    cal = ScoreCalibrator("quantile", top=5).fit(rng.random((20, 30)), rng.random((20, 30)) ** 2)
    restored = ScoreCalibrator()
    restored.load_state({k: np.asarray(v) for k, v in cal.state().items()})
    x = np.linspace(-0.5, 1.5, 50)
    np.testing.assert_array_equal(restored.transform(x), cal.transform(x))


def test_probe_scores_can_exclude_self_matches():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    src, tgt = probe_scores(a, a, b, b, exclude_self=True)
    assert src.shape == tgt.shape == (6, 5)
    np.testing.assert_allclose(src[0], (a @ a.T)[0, 1:])
    np.testing.assert_allclose(tgt[3], np.delete((b @ b.T)[3], 3))
    with pytest.raises(InvalidInputError, match="same queries and documents"):
        probe_scores(a, a, b[:5], b)
    with pytest.raises(InvalidInputError, match="exclude_self"):
        probe_scores(a, a[:4], b, b[:4], exclude_self=True)


def test_calibration_bad_input():
    with pytest.raises(InvalidInputError, match="unknown calibration method"):
        ScoreCalibrator("regression")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="top"):
        ScoreCalibrator(top=0)
    with pytest.raises(InvalidInputError, match="NaN"):
        ScoreCalibrator().fit(np.array([0.1, np.nan, 0.3]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(InvalidInputError, match="2 distinct scores"):
        ScoreCalibrator().fit(np.array([0.5, 0.5, 0.5]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(InvalidInputError, match="non-empty"):
        ScoreCalibrator().fit(np.array([]), np.array([0.1, 0.2]))
    with pytest.raises(RuntimeError, match="before fit"):
        ScoreCalibrator().transform(np.array([0.1]))


# -- relative representations ------------------------------------------------------------------
def _orthogonal(d: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def test_relative_representation_is_the_same_for_a_rotated_model():
    """A second 'model' that rotates and rescales the first gives identical relative vectors
    when each embeds the anchors itself: the space no longer depends on the model."""
    rng = np.random.default_rng(5)
    x, anchors = rng.standard_normal((100, 24)), rng.standard_normal((40, 24))
    rot = _orthogonal(24, 6)
    model_a = RelativeRepresentation(anchors)
    model_b = RelativeRepresentation(3.0 * anchors @ rot)
    assert model_a.dim == 40
    np.testing.assert_allclose(model_a.transform(x), model_b.transform(3.0 * x @ rot), atol=1e-5)
    other = RelativeRepresentation(anchors @ _orthogonal(24, 7))  # anchors of a third model
    assert not np.allclose(model_a.transform(x), other.transform(x @ rot), atol=1e-2)


def test_relative_representation_keeps_neighbours_of_real_vectors(minilm):
    docs, queries = minilm
    rel = RelativeRepresentation(docs[:300])
    exact = np.argsort(-(queries[:200] @ docs.T), axis=1)[:, :10]
    approx = np.argsort(-(rel.transform(queries[:200]) @ rel.transform(docs).T), axis=1)[:, :10]
    overlap = np.mean([len(set(a) & set(b)) for a, b in zip(exact, approx)]) / 10
    assert 0.3 < overlap < 1.0  # lossy (its cost; measured 0.489) but far above chance (10/3000)


def test_relative_representation_state_and_bad_input():
    rng = np.random.default_rng(8)
    rel = RelativeRepresentation(rng.standard_normal((10, 6)), center=True)
    restored = RelativeRepresentation()
    restored.load_state(rel.state())
    x = rng.standard_normal((5, 6))
    np.testing.assert_array_equal(restored.transform(x), rel.transform(x))
    assert restored.dim == 10
    with pytest.raises(InvalidInputError, match="embedded in 6"):
        rel.transform(rng.standard_normal((5, 7)))
    with pytest.raises(InvalidInputError, match="at least 2 anchors"):
        RelativeRepresentation(rng.standard_normal((1, 6)))
    with pytest.raises(RuntimeError, match="anchors"):
        RelativeRepresentation().transform(x)


# -- a relative collection: switch the model, keep the documents ---------------------------------
class _Rotated(Encoder):
    """A fake model: a fixed random vector per text, rotated and rescaled by ``seed``. Two of them
    are different models with the same geometry, so their relative vectors coincide."""

    def __init__(self, seed: int):
        self.name, self.dim, self._rot = f"rotated-{seed}", 24, 3.0 * _orthogonal(24, seed)

    def _encode(self, texts, kind, batch_size):
        base = [np.random.default_rng(list(t.encode())).standard_normal(24) for t in texts]
        return np.array(base) @ self._rot


ANCHORS = [f"anchor text {i}" for i in range(40)]
TEXTS = [f"document number {i}" for i in range(120)]


def test_relative_collection_takes_another_model_without_reembedding(tmp_path):
    col = slimvec.create(tmp_path / "c", encoder=RelativeEncoder(_Rotated(1), ANCHORS), spec="f32")
    assert col.dim == len(ANCHORS)
    col.add_texts(TEXTS)
    before = col.search_texts(TEXTS[:15], k=5)
    assert (before.ids[:, 0] == np.arange(15)).all()
    col.close()

    other_model = RelativeEncoder(_Rotated(2), ANCHORS)
    assert other_model.model.name != "rotated-1"
    reopened = slimvec.open(tmp_path / "c", encoder=other_model)
    after = reopened.search_texts(TEXTS[:15], k=5)
    np.testing.assert_array_equal(after.ids, before.ids)
    np.testing.assert_allclose(after.scores, before.scores, atol=1e-4)


def test_relative_collection_refuses_other_anchors(tmp_path):
    col = slimvec.create(tmp_path / "c", encoder=RelativeEncoder(_Rotated(1), ANCHORS), spec="f32")
    col.add_texts(TEXTS[:10])
    col.close()
    with pytest.raises(InvalidInputError, match="relative-"):
        slimvec.open(tmp_path / "c", encoder=RelativeEncoder(_Rotated(1), [*ANCHORS[:-1], "x"]))
    with pytest.raises(InvalidInputError, match="anchor_texts"):
        RelativeEncoder(_Rotated(1), [])
