"""Multi-vector collections: FDE funnel + exact MaxSim, persistence, deletes, bad input."""

import numpy as np
import pytest

import slimvec
from conftest import recall
from slimvec.kernels.maxsim import maxsim_reference


def _token_sets(n, dim, seed, lo=3, hi=30):
    """Token sets drawn around shared topics, so items have real near neighbours."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((40, dim))
    sets = []
    for _ in range(n):
        picks = rng.integers(0, 40, 3)
        m = int(rng.integers(lo, hi))
        x = topics[rng.choice(picks, m)] + 0.7 * rng.standard_normal((m, dim))
        sets.append((x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32))
    return sets


@pytest.fixture(scope="module")
def corpus():
    return _token_sets(600, 32, 0), _token_sets(30, 32, 1, 2, 8)


def _reference_top(docs, queries, k):
    scores = np.array([maxsim_reference(q, docs) for q in queries])
    return np.argsort(-scores, axis=1, kind="stable")[:, :k], scores


def test_exact_is_brute_force_maxsim(tmp_path, corpus):
    docs, queries = corpus
    col = slimvec.create(tmp_path / "c", dim=32, multivector=True, fde={"r_reps": 8})
    ids = col.add(docs)
    truth, scores = _reference_top(docs, queries, 5)
    res = col.search(queries, k=5, exact=True)
    np.testing.assert_array_equal(res.ids, ids[truth])
    best = np.take_along_axis(scores, truth, axis=1)
    np.testing.assert_allclose(res.scores, best, rtol=2e-3, atol=2e-3)  # float16 tokens


def test_funnel_recovers_exact_maxsim(tmp_path, corpus):
    docs, queries = corpus
    col = slimvec.create(tmp_path / "c", dim=32, multivector=True, spec="f32*20 > maxsim")
    col.add(docs)
    approx = col.search(queries, k=10)
    exact = col.search(queries, k=10, exact=True)
    assert recall(approx.ids, exact.ids) >= 0.9
    # the final scores are exact MaxSim: equal to the exact search's for shared ids
    for a_ids, a_sc, e_ids, e_sc in zip(approx.ids, approx.scores, exact.ids, exact.scores):
        common = {i: s for i, s in zip(e_ids, e_sc)}
        for i, s in zip(a_ids, a_sc):
            if i in common:
                assert abs(common[i] - s) < 1e-5


def test_persistence_deletes_and_compaction(tmp_path, corpus):
    docs, queries = corpus
    col = slimvec.create(
        tmp_path / "c",
        dim=32,
        multivector=True,
        token_code="int8",
        pool_factor=2,
        fde={"r_reps": 6, "seed": 3},
    )
    ids = col.add(docs[:300])
    col.add(docs[300:])
    before = col.search(queries, k=10)
    col.close()
    col = slimvec.open(tmp_path / "c")
    again = col.search(queries, k=10)
    np.testing.assert_array_equal(before.ids, again.ids)
    gone = ids[:150]
    col.delete(gone)
    res = col.search(queries, k=10)
    assert not np.isin(res.ids, gone).any()
    col.compact()
    # the first pass is approximate: renumbered rows may swap near-ties at the shortlist edge
    assert recall(col.search(queries, k=10).ids, res.ids) >= 0.95
    np.testing.assert_array_equal(
        slimvec.open(tmp_path / "c").search(queries, k=10, exact=True).ids,
        col.search(queries, k=10, exact=True).ids,
    )
    info = col.info()
    assert info["multivector"]["pool_factor"] == 2
    assert info["multivector"]["stored_tokens_per_item"] < np.mean([len(d) for d in docs]) * 0.6


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([], "empty"),
        ([np.zeros((0, 32))], "zero tokens"),
        ([np.ones((3, 16))], "16-dim token vectors"),
        ([np.full((2, 32), np.nan)], "NaN"),
        (np.ones((4, 32)), "wrap it as \\[matrix\\]"),
    ],
)
def test_bad_token_sets_write_nothing(tmp_path, corpus, items, message):
    col = slimvec.create(tmp_path / "c", dim=32, multivector=True)
    col.add(corpus[0][:5])
    with pytest.raises(slimvec.InvalidInputError, match=message):
        col.add(items)
    with pytest.raises(slimvec.InvalidInputError, match=message):
        col.search(items, k=3)
    assert len(col) == 5


def test_spec_and_options_are_checked(tmp_path):
    with pytest.raises(slimvec.SpecError, match="ends with the exact 'maxsim'"):
        slimvec.create(tmp_path / "a", dim=32, multivector=True, spec="binary*10 > f32")
    with pytest.raises(slimvec.SpecError, match="needs a multi-vector"):
        slimvec.create(tmp_path / "b", dim=32, spec="binary*10 > maxsim")
    with pytest.raises(slimvec.InvalidInputError, match="token_code"):
        slimvec.create(tmp_path / "c", dim=32, multivector=True, token_code="f8")
    with pytest.raises(slimvec.InvalidInputError, match="multivector=True"):
        slimvec.create(tmp_path / "d", dim=32, pool_factor=2)
    assert not any((tmp_path / n).exists() for n in "abcd")


class _TokenHashEncoder:
    """A deterministic stand-in for a token-level model (no torch): one vector per word."""

    def __new__(cls):
        from slimvec.encoders import Encoder

        class TokenHash(Encoder):
            name = "token-hash-16"
            dim = 16

            def _vec(self, word):
                return np.random.default_rng(list(map(ord, word.lower()))).standard_normal(16)

            def _encode(self, texts, kind, batch_size):
                return np.array([np.mean([self._vec(w) for w in t.split()], 0) for t in texts])

            def _encode_tokens(self, texts, kind, batch_size):
                return [np.array([self._vec(w) for w in t.split()], np.float32) for t in texts]

        return TokenHash()


def test_texts_go_through_token_embeddings(tmp_path):
    docs = ["perl html table parser", "lossless compression library", "sqlite python bindings"]
    col = slimvec.create(tmp_path / "c", encoder=_TokenHashEncoder(), multivector=True)
    ids = col.add_texts(docs)
    res = col.search_texts(["html table", "sqlite bindings"], k=1)
    assert res.ids[:, 0].tolist() == [ids[0], ids[2]]
    assert col.search_texts("compression", k=1, mode="sparse").ids[0, 0] == ids[1]
    assert col.info()["multivector"]["stored_tokens_per_item"] == round(10 / 3, 1)


@pytest.mark.parametrize(
    ("spec", "floor"),
    [  # sign bits of raw FDEs (mostly empty-bucket zeros) rank badly; a rotation spreads them
        ("rot:1024 | binary*20 > maxsim", 0.4),
        ("int8*20 > maxsim", 0.75),
        ("rabitq:2*20 > maxsim", 0.75),
        ("pca:128 | f16*20 > maxsim", 0.75),
    ],
)
def test_every_first_stage_code_runs_on_fdes(tmp_path, corpus, spec, floor):
    """Each first-stage code over the FDEs: shortlists that exact MaxSim then scores exactly."""
    docs, queries = corpus
    col = slimvec.create(tmp_path / "c", dim=32, multivector=True, spec=spec, fde={"r_reps": 8})
    ids = col.add(docs)
    res = col.search(queries, k=10)
    assert recall(res.ids, col.search(queries, k=10, exact=True).ids) >= floor
    truth = np.array(
        [maxsim_reference(q, [docs[i] for i in row]) for q, row in zip(queries, res.ids)]
    )
    np.testing.assert_allclose(res.scores, truth, rtol=2e-3, atol=2e-3)  # float16 tokens
    assert np.isin(res.ids, ids).all()


def test_ivf_lists_over_fdes(tmp_path, corpus, monkeypatch):
    """``ivf:N`` trains on and builds lists from FDEs re-encoded from the stored tokens."""
    from slimvec.index import sizing

    monkeypatch.setattr(sizing, "FLAT_ROWS", 300)
    docs, queries = corpus
    spec = "ivf:8 | rabitq:2*20 > maxsim"
    col = slimvec.create(tmp_path / "c", dim=32, multivector=True, spec=spec, fde={"r_reps": 8})
    col.add(docs[:200])
    assert col.info()["ivf"]["state"] == "flat"
    col.add(docs[200:])
    assert col.info()["ivf"]["state"] == "trained" and sum(col.info()["ivf"]["sizes"]) == 600
    view = col._view
    entry = view.manifest.segments[0]
    stored = view.rows.pipeline_input(view.path, entry, np.array([3, 0]))
    fdes = view.rows.fde.encode_packed(*view.rows._tokens_in([docs[3], docs[0]], "d"), query=False)
    np.testing.assert_allclose(stored[:], fdes, atol=2e-2)  # float16 tokens
    calls = []
    search = view.ivf.search
    monkeypatch.setattr(view.ivf, "search", lambda *a, **kw: calls.append(1) or search(*a, **kw))
    res = col.search(queries, k=10, nprobe=8)
    assert calls  # the lists' scan made the shortlist
    assert recall(res.ids, col.search(queries, k=10, exact=True).ids) >= 0.75
    narrow = col.search(queries, k=10, nprobe=2)
    np.testing.assert_array_equal(
        slimvec.open(tmp_path / "c").search(queries, k=10, nprobe=2).ids, narrow.ids
    )
