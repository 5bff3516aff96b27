"""PLAID-style residual token codes: the packed layout and decode equal an independent NumPy
reading, MaxSim over residual codes equals NumPy MaxSim over the decoded tokens, more bits
decode closer, and a ``maxsim:resB`` collection stores, reopens and scores them."""

from __future__ import annotations

import numpy as np
import pytest

import slimvec
from slimvec.errors import InvalidInputError, SpecError
from slimvec.kernels.maxsim import TokenCodes, maxsim, maxsim_reference
from slimvec.kernels.residual import ResidualCodebook, assign
from slimvec.spec import parse_spec
from slimvec.transforms.fde import pack_token_sets

DIM = 32


def unit_sets(n: int, seed: int, max_tokens: int = 24) -> list[np.ndarray]:
    """Unit-norm token sets around 20 shared topics (tokens cluster, as a model's do)."""
    rng = np.random.default_rng(seed)
    topics = np.random.default_rng(7).standard_normal((20, DIM))
    sets = []
    for _ in range(n):
        m = int(rng.integers(1, max_tokens))
        x = topics[rng.integers(0, 20, m)] + 0.3 * rng.standard_normal((m, DIM))
        sets.append((x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32))
    return sets


@pytest.fixture(scope="module")
def data():
    docs, queries = unit_sets(200, 1), unit_sets(9, 2, max_tokens=10)
    tokens, offsets = pack_token_sets(docs, DIM)
    return docs, queries, tokens, offsets


def reference_unpack(bits: int, dim: int, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The documented layout read bit by bit: (centroid ids, buckets (T, dim)); the id from two
    little-endian bytes, dimension d's bucket from bit (d * B) % 8 of byte 2 + d * B // 8."""
    ids = np.array([int(row[0]) + 256 * int(row[1]) for row in codes])
    buckets = np.array(
        [
            [
                (int(row[2 + d * bits // 8]) >> (d * bits % 8)) & ((1 << bits) - 1)
                for d in range(dim)
            ]
            for row in codes
        ]
    ).reshape(len(codes), dim)
    return ids, buckets


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_codes_decode_as_documented(data, bits):
    _, _, tokens, _ = data
    book = ResidualCodebook.fit(tokens, bits, n_centroids=64)
    codes = book.encode(tokens)
    assert codes.shape == (len(tokens), 2 + DIM * bits // 8) and codes.dtype == np.uint8
    ids, buckets = reference_unpack(bits, DIM, codes)
    # each token keeps its nearest centroid and the bucket its residual falls in ...
    np.testing.assert_array_equal(ids, assign(tokens, book.centroids))
    residual = tokens - book.centroids[ids]
    want = np.stack([np.searchsorted(book.cutoffs[d], residual[:, d]) for d in range(DIM)], 1)
    np.testing.assert_array_equal(buckets, want)
    # ... and decodes to centroid + that bucket's value
    expected = book.centroids[ids] + book.weights[np.arange(DIM), buckets]
    np.testing.assert_array_equal(book.decode(codes), expected)


def test_more_bits_decode_closer(data):
    _, _, tokens, _ = data
    errors = []
    for bits in (1, 2, 4):
        book = ResidualCodebook.fit(tokens, bits, n_centroids=64)
        errors.append(float(np.mean((book.decode(book.encode(tokens)) - tokens) ** 2)))
    centroid_only = np.mean((tokens - book.centroids[assign(tokens, book.centroids)]) ** 2)
    assert centroid_only > errors[0] > errors[1] > errors[2]


def check_maxsim_equals_numpy(docs, queries, codes: TokenCodes) -> list[np.ndarray]:
    """The compiled MaxSim over ``codes``, for every document and for random candidate lists
    (-1 = none), equals NumPy MaxSim over the decoded tokens; returns those tokens."""
    decoded = [codes.decode(j) for j in range(len(docs))]
    q_tokens, q_offsets = pack_token_sets(queries, DIM)
    want = np.array([maxsim_reference(q, decoded) for q in queries])
    np.testing.assert_allclose(maxsim(q_tokens, q_offsets, codes), want, rtol=1e-4, atol=1e-4)
    cands = np.random.default_rng(3).integers(-1, len(docs), (len(queries), 17))
    got = maxsim(q_tokens, q_offsets, codes, cands)
    ref = np.where(cands >= 0, np.take_along_axis(want, np.maximum(cands, 0), axis=1), -np.inf)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    return decoded


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_maxsim_over_residuals_equals_numpy_on_decoded(data, bits):
    docs, queries, tokens, offsets = data
    codes = TokenCodes.encode(tokens, offsets, kind=f"res{bits}")
    assert codes.kind == f"res{bits}" and codes.dim == DIM
    decoded = check_maxsim_equals_numpy(docs, queries, codes)
    tok, off = codes.gather(np.array([5, 0, 5]))
    np.testing.assert_array_equal(tok, np.concatenate([decoded[5], decoded[0], decoded[5]]))
    np.testing.assert_array_equal(
        np.diff(off), [len(decoded[5]), len(decoded[0])] * 1 + [len(decoded[5])]
    )


def test_bad_codebooks_and_bits_are_refused(data):
    _, _, tokens, offsets = data
    with pytest.raises(InvalidInputError, match="bits"):
        ResidualCodebook.fit(tokens, 3)
    with pytest.raises(InvalidInputError, match="multiple of 8"):
        ResidualCodebook.fit(tokens[:, :30], 1)
    book = ResidualCodebook.fit(tokens, 2, n_centroids=16)
    with pytest.raises(InvalidInputError, match="bytes wide"):
        TokenCodes(book.encode(tokens)[:, :-1], offsets, codebook=book)


def test_spec_spelling():
    assert str(parse_spec("int8 * 30 > maxsim : res2")) == "int8*30 > maxsim:res2"
    for bad in ("int8 > maxsim:res3", "int8:res2 > maxsim", "int8 > maxsim:2"):
        with pytest.raises(SpecError):
            parse_spec(bad)


def check_collection_scores_codes(path, docs, queries, code: str, first: int) -> type:
    """A ``maxsim:<code>`` collection fits its codebook on a first batch of ``first`` token
    sets, encodes the rest with it, reopens, and its exact search equals NumPy MaxSim over the
    codes' decoded tokens; the funnel finds the same best match for most queries. Returns
    the codebook's class (each code's test checks it)."""
    col = slimvec.create(
        path, dim=DIM, multivector=True, spec=f"int8*40 > maxsim:{code}", fde={"r_reps": 4}
    )
    ids = col.add(docs[:first])
    ids = np.concatenate([ids, col.add(docs[first:])])  # the first batch's codebook encodes it
    assert col.info()["multivector"]["token_code"] == code
    col.close()
    col = slimvec.open(path)
    exact = col.search(queries, k=5, exact=True)
    book = col._view.rows._codebook()
    decoded = [book.decode(book.encode(d)) for d in docs]
    scores = np.array([maxsim_reference(q, decoded) for q in queries])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(exact.ids, ids[order])
    np.testing.assert_allclose(
        exact.scores, np.take_along_axis(scores, order, axis=1), rtol=1e-4, atol=1e-4
    )
    assert (col.search(queries, k=5).ids[:, 0] == exact.ids[:, 0]).mean() >= 0.8
    return type(book)


def test_collection_stores_and_scores_residual_codes(tmp_path, data):
    kind = check_collection_scores_codes(tmp_path / "c", data[0], data[1], "res2", 120)
    assert kind is ResidualCodebook


def test_collection_refuses_conflicting_token_codes(tmp_path):
    with pytest.raises(InvalidInputError, match="residual"):
        slimvec.create(
            tmp_path / "a", dim=DIM, multivector=True, spec="int8 > maxsim:res1", token_code="int8"
        )
    with pytest.raises((InvalidInputError, SpecError), match="multiple of 4"):
        slimvec.create(tmp_path / "b", dim=30, multivector=True, spec="int8 > maxsim:res2")
