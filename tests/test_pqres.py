"""Product-quantised residual token codes: the byte layout and decode equal an independent NumPy
reading, the rotation is orthonormal, MaxSim over the codes (scored in the rotated space)
equals NumPy MaxSim over the decoded tokens, they decode closer than PLAID's 1-bit residuals
of about the same size, and a ``maxsim:pqM`` collection stores, reopens and scores them."""

from __future__ import annotations

import numpy as np
import pytest

from slimvec.errors import InvalidInputError, SpecError
from slimvec.kernels.maxsim import TokenCodes
from slimvec.kernels.pqres import PQResidualCodebook
from slimvec.kernels.residual import ResidualCodebook, assign
from slimvec.spec import parse_spec
from slimvec.transforms.fde import pack_token_sets
from test_residual import (
    DIM,
    check_collection_scores_codes,
    check_maxsim_equals_numpy,
    unit_sets,
)


@pytest.fixture(scope="module")
def data():
    docs, queries = unit_sets(300, 1), unit_sets(9, 2, max_tokens=10)
    tokens, offsets = pack_token_sets(docs, DIM)
    return docs, queries, tokens, offsets


@pytest.fixture(scope="module")
def book(data):
    return PQResidualCodebook.fit(data[2], 8, n_centroids=32)


def test_codes_decode_as_documented(data, book):
    tokens = data[2]
    codes = book.encode(tokens)
    assert codes.shape == (len(tokens), 2 + 8) and codes.dtype == np.uint8
    np.testing.assert_allclose(book.rotation.T @ book.rotation, np.eye(DIM), atol=1e-5)
    ids = codes[:, 0].astype(int) + 256 * codes[:, 1].astype(int)
    z = tokens @ book.rotation
    np.testing.assert_array_equal(ids, assign(z, book.centroids))  # nearest centroid
    residual = z - book.centroids[ids]
    sub = DIM // 8
    for m in range(8):  # subspace m's byte: its nearest codeword
        part = residual[:, m * sub : (m + 1) * sub]
        dist = ((part[:, None, :] - book.books[m][None]) ** 2).sum(-1)
        chosen = dist[np.arange(len(part)), codes[:, 2 + m]]
        np.testing.assert_allclose(chosen, dist.min(1), rtol=1e-4, atol=1e-6)
    words = np.concatenate([book.books[m][codes[:, 2 + m]] for m in range(8)], axis=1)
    want = (book.centroids[ids] + words) @ book.rotation.T
    np.testing.assert_allclose(book.decode(codes), want, rtol=1e-5, atol=1e-6)


def test_decodes_closer_than_plaid_1bit(data, book):
    tokens = data[2]
    pq = np.mean((book.decode(book.encode(tokens)) - tokens) ** 2)
    plaid = ResidualCodebook.fit(tokens, 1, n_centroids=32)  # 6 B/token here, pq8 10 B
    res1 = np.mean((plaid.decode(plaid.encode(tokens)) - tokens) ** 2)
    centroid_only = np.mean((tokens - (book.centroids @ book.rotation.T)[
        assign(tokens @ book.rotation, book.centroids)]) ** 2)  # fmt: skip
    assert centroid_only > res1 > pq


def test_maxsim_over_pq_codes_equals_numpy_on_decoded(data, book):
    docs, queries, tokens, offsets = data
    codes = TokenCodes.encode(tokens, offsets, kind="pq8", codebook=book)
    assert codes.kind == "pq8" and codes.dim == DIM
    decoded = check_maxsim_equals_numpy(docs, queries, codes)
    tok, off = codes.gather(np.array([5, 0]))
    np.testing.assert_allclose(tok, np.concatenate([decoded[5], decoded[0]]), atol=1e-6)
    np.testing.assert_array_equal(np.diff(off), [len(decoded[5]), len(decoded[0])])


def test_bad_codebooks_and_subspaces_are_refused(data, book):
    _, _, tokens, offsets = data
    with pytest.raises(InvalidInputError, match="does not divide"):
        PQResidualCodebook.fit(tokens, 5)
    with pytest.raises(InvalidInputError, match="codewords"):
        PQResidualCodebook(book.rotation, book.centroids, book.books[:, :100])
    with pytest.raises(InvalidInputError, match="bytes wide"):
        TokenCodes(book.encode(tokens)[:, :-1], offsets, codebook=book)


def test_spec_spelling():
    stage = parse_spec("int8 * 30 > maxsim : pq32").stages[-1]
    assert str(stage) == "maxsim:pq32" and stage.token_code == "pq32"
    for bad in ("int8:pq8 > maxsim", "int8 > maxsim:pq0", "int8 > maxsim:pq8*2"):
        with pytest.raises(SpecError):
            parse_spec(bad)


def test_collection_stores_and_scores_pq_codes(tmp_path, data):
    kind = check_collection_scores_codes(tmp_path / "c", data[0], data[1], "pq8", 150)
    assert kind is PQResidualCodebook
