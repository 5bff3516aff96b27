"""Exact MaxSim kernel: equals a NumPy reference for f32, for f16/int8 equals the reference on
the decoded tokens and stays close to f32; rerank returns the exact top-k of its candidates."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from slimvec.errors import InvalidInputError
from slimvec.kernels.maxsim import TokenCodes, maxsim, maxsim_reference
from slimvec.kernels.topk import top_k
from slimvec.multivector import SegmentedTokens, fde_shortlist, rerank
from slimvec.transforms.fde import FDE, pack_token_sets

DIM = 48


def unit_sets(n: int, seed: int, max_tokens: int = 50) -> list[np.ndarray]:
    """Unit-norm token sets, each about two of 30 shared topics, 1..max_tokens tokens each."""
    rng = np.random.default_rng(seed)
    topics = np.random.default_rng(99).standard_normal((30, DIM))
    sets = []
    for _ in range(n):
        m = int(rng.integers(1, max_tokens))
        mine = rng.choice(30, 2, replace=False)
        x = topics[mine[rng.integers(0, 2, m)]] + 0.7 * rng.standard_normal((m, DIM))
        sets.append((x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32))
    return sets


@pytest.fixture(scope="module")
def data():
    docs, queries = unit_sets(300, 1), unit_sets(12, 2, max_tokens=16)
    tokens, offsets = pack_token_sets(docs, DIM)
    q_tokens, q_offsets = pack_token_sets(queries, DIM)
    exact = np.array([maxsim_reference(q, docs) for q in queries])
    return docs, queries, tokens, offsets, q_tokens, q_offsets, exact


def test_f32_equals_reference(data):
    _, _, tokens, offsets, q_tokens, q_offsets, exact = data
    got = maxsim(q_tokens, q_offsets, TokenCodes.encode(tokens, offsets, "f32"))
    assert got.shape == exact.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, exact, rtol=1e-5, atol=1e-5)


def test_candidates_and_padding(data):
    _, _, tokens, offsets, q_tokens, q_offsets, exact = data
    rng = np.random.default_rng(3)
    cands = np.stack([rng.choice(300, 25, replace=False) for _ in range(len(exact))])
    cands[:, -3:] = -1
    got = maxsim(q_tokens, q_offsets, TokenCodes.encode(tokens, offsets, "f32"), cands)
    real = cands >= 0
    np.testing.assert_allclose(got[real], np.take_along_axis(exact, cands, 1)[real], atol=1e-5)
    assert np.isneginf(got[~real]).all()


@pytest.mark.parametrize("kind", ["f16", "int8"])
def test_compact_codes_exact_on_decoded_and_close_to_f32(data, kind):
    _, queries, tokens, offsets, q_tokens, q_offsets, exact = data
    codes = TokenCodes.encode(tokens, offsets, kind)
    got = maxsim(q_tokens, q_offsets, codes)
    decoded = [codes.decode(j) for j in range(codes.n_docs)]
    on_decoded = np.array([maxsim_reference(q, decoded) for q in queries])
    np.testing.assert_allclose(got, on_decoded, rtol=1e-5, atol=1e-4)
    # Quantisation error per query token (each contributes one max cosine, at most 1).
    per_token = np.abs(got - exact) / np.diff(q_offsets)[:, None]
    assert per_token.max() < {"f16": 5e-4, "int8": 2e-2}[kind], per_token.max()
    # Rankings barely move: exact top-10 is kept in the compact code's top-10.
    top_got, top_exact = np.argsort(-got, 1)[:, :10], np.argsort(-exact, 1)[:, :10]
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top_got, top_exact)])
    assert overlap >= {"f16": 1.0, "int8": 0.9}[kind]
    assert codes.nbytes < tokens.nbytes / {"f16": 1.9, "int8": 3.5}[kind]


def test_f16_special_values_decode_exactly():
    """Zeros, float16 subnormals and extremes survive the in-kernel bit decoding."""
    values = np.array([0.0, -0.0, 1e-7, -3e-5, 6.1e-5, 65504.0, -65504.0, 1.0, -0.333], np.float32)
    dim = len(values)
    docs = [np.diag(values)[j : j + 1] for j in range(dim)]  # doc j: one token, value at dim j
    tokens, offsets = pack_token_sets(docs, dim)
    got = maxsim(
        np.ones((1, dim), np.float32), np.array([0, 1]), TokenCodes.encode(tokens, offsets)
    )
    np.testing.assert_array_equal(got[0], values.astype(np.float16).astype(np.float32))
    with pytest.raises(InvalidInputError, match="overflow float16"):
        TokenCodes.encode(tokens * 2, offsets, "f16")


def test_int8_with_given_calibration(data):
    _, _, tokens, offsets, _, _, _ = data
    first = TokenCodes.encode(tokens, offsets, "int8")
    again = TokenCodes.encode(tokens, offsets, "int8", low=first.low, step=first.step)
    np.testing.assert_array_equal(again.codes, first.codes)


def test_memory_mapped_codes(data, tmp_path):
    _, _, tokens, offsets, q_tokens, q_offsets, _ = data
    codes = TokenCodes.encode(tokens, offsets, "f16")
    np.save(tmp_path / "codes.npy", codes.codes)
    mapped = TokenCodes(np.load(tmp_path / "codes.npy", mmap_mode="r"), offsets)
    np.testing.assert_array_equal(
        maxsim(q_tokens, q_offsets, mapped), maxsim(q_tokens, q_offsets, codes)
    )


def test_rerank_is_exact_top_k_of_candidates(data):
    _, _, tokens, offsets, q_tokens, q_offsets, exact = data
    codes = TokenCodes.encode(tokens, offsets, "f32")
    all_docs = np.broadcast_to(np.arange(300), (len(exact), 300))
    ids, scores = rerank(q_tokens, q_offsets, codes, all_docs, k=10)
    np.testing.assert_array_equal(ids, np.argsort(-exact, axis=1, kind="stable")[:, :10])
    np.testing.assert_allclose(scores, -np.sort(-exact, axis=1)[:, :10], rtol=1e-5)
    # A shortlist: the result is the exact top-k within it.
    short = all_docs[:, ::3]
    ids, _ = rerank(q_tokens, q_offsets, codes, short, k=5)
    within = np.take_along_axis(exact, short, 1)
    expected = np.take_along_axis(short, np.argsort(-within, 1, kind="stable")[:, :5], 1)
    np.testing.assert_array_equal(ids, expected)


def test_rerank_over_segments_equals_one_array(data):
    """A collection's segments (candidates as global rows, some segments never opened) rerank
    exactly like the same tokens in one array."""
    _, _, tokens, offsets, q_tokens, q_offsets, exact = data
    bounds = [0, 100, 210, 300]  # documents per segment
    segments = [
        TokenCodes.encode(tokens[offsets[a] : offsets[b]], offsets[a : b + 1] - offsets[a], "f32")
        for a, b in itertools.pairwise(bounds)
    ]
    opened = []

    def open_segment(s: int) -> TokenCodes:
        opened.append(s)
        return segments[s]

    docs = SegmentedTokens(np.array(bounds[:-1]), open_segment)
    cands = np.broadcast_to(np.arange(300), (len(exact), 300)).copy()
    cands[:, ::7] = -1  # padding
    ids, scores = rerank(q_tokens, q_offsets, docs, cands, k=8)
    want_ids, want_scores = rerank(
        q_tokens, q_offsets, TokenCodes.encode(tokens, offsets, "f32"), cands, k=8
    )
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-6)
    opened.clear()
    rerank(q_tokens, q_offsets, docs, np.full((len(exact), 3), 150), k=2)
    assert opened == [1]  # only the segment holding a candidate is read


def test_fde_shortlist_then_rerank_recovers_exact_top(data):
    docs, queries, tokens, offsets, q_tokens, q_offsets, exact = data
    fde = FDE(DIM, k_sim=4, d_proj=16, r_reps=20)
    shortlist = fde_shortlist(fde.encode_queries(queries), fde.encode_documents(docs), 60)
    assert shortlist.shape == (len(queries), 60)
    ip = fde.encode_queries(queries) @ fde.encode_documents(docs).T
    np.testing.assert_array_equal(shortlist, np.argsort(-ip, axis=1, kind="stable")[:, :60])
    ids, _ = rerank(q_tokens, q_offsets, TokenCodes.encode(tokens, offsets, "f16"), shortlist, 5)
    truth = np.argsort(-exact, axis=1)[:, :5]
    found = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(ids, truth)])
    assert found >= 0.8, found


def test_top_k_pads_and_breaks_ties_by_position():
    scores = np.array([[1.0, 3.0, 3.0, -np.inf]], np.float32)
    cands = np.array([[7, 5, 9, -1]])
    ids, best = top_k(scores, cands, 5, ties_by_position=True)
    np.testing.assert_array_equal(ids, [[5, 9, 7, -1, -1]])
    assert np.isneginf(best[0, 3:]).all()


def test_bad_arguments(data):
    _, _, tokens, offsets, q_tokens, q_offsets, _ = data
    codes = TokenCodes.encode(tokens, offsets, "f32")
    with pytest.raises(InvalidInputError, match="query_offsets"):
        maxsim(q_tokens, q_offsets[:-1], codes)
    with pytest.raises(InvalidInputError, match="query_offsets"):
        maxsim(q_tokens, np.r_[q_offsets, q_offsets[-1]], codes)  # an empty query
    with pytest.raises(InvalidInputError, match="query tokens"):
        maxsim(q_tokens[:, :10], q_offsets, codes)
    with pytest.raises(InvalidInputError, match="document indices"):
        maxsim(q_tokens, q_offsets, codes, np.full((len(q_offsets) - 1, 2), 300))
    with pytest.raises(InvalidInputError, match="shape"):
        maxsim(q_tokens, q_offsets, codes, np.zeros((1, 2), np.int64))
    with pytest.raises(InvalidInputError, match="integer"):
        maxsim(q_tokens, q_offsets, codes, np.zeros((len(q_offsets) - 1, 2)))
    with pytest.raises(InvalidInputError, match="offsets must"):
        TokenCodes(tokens, offsets[:-1])  # last document's rows unaccounted for
    with pytest.raises(InvalidInputError, match="offsets must"):
        TokenCodes(tokens, np.r_[offsets[:-1], len(tokens) + 5])
    with pytest.raises(InvalidInputError, match="low and step"):
        TokenCodes(tokens.astype(np.uint8), offsets)
    with pytest.raises(InvalidInputError, match="2-D float32"):
        TokenCodes(tokens.astype(np.float64), offsets)
    with pytest.raises(InvalidInputError, match="unknown token code"):
        TokenCodes.encode(tokens, offsets, "pq")
    with pytest.raises(InvalidInputError, match="k must"):
        rerank(q_tokens, q_offsets, codes, np.zeros((len(q_offsets) - 1, 2), np.int64), 0)
    with pytest.raises(InvalidInputError, match="same width"):
        fde_shortlist(np.ones((2, 5)), np.ones((3, 6)), 2)
