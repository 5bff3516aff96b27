"""Rotated residual token codes with a per-token scale: the byte layout and decode equal an
independent NumPy reading, the levels are a standard normal's Lloyd-Max levels, MaxSim over
the codes (scored in the rotated space, the float16 scale decoded in the kernel) equals NumPy
MaxSim over the decoded tokens, they decode closer than PLAID's codes of the same bits, and a
``maxsim:rqB`` collection stores, reopens and scores them."""

from __future__ import annotations

import numpy as np
import pytest

from slimvec.errors import InvalidInputError, SpecError
from slimvec.kernels.maxsim import TokenCodes, _half, maxsim, maxsim_reference
from slimvec.kernels.residual import ResidualCodebook, assign
from slimvec.kernels.rotres import RotatedResidualCodebook, gaussian_levels
from slimvec.spec import parse_spec
from slimvec.transforms.fde import pack_token_sets
from test_residual import (
    DIM,
    check_collection_scores_codes,
    check_maxsim_equals_numpy,
    reference_unpack,
    unit_sets,
)


@pytest.fixture(scope="module")
def data():
    docs, queries = unit_sets(200, 1), unit_sets(9, 2, max_tokens=10)
    tokens, offsets = pack_token_sets(docs, DIM)
    return docs, queries, tokens, offsets


def test_levels_are_lloyd_max_of_a_normal():
    np.testing.assert_allclose(gaussian_levels(1), [-0.798, 0.798], atol=0.01)
    np.testing.assert_allclose(gaussian_levels(2), [-1.510, -0.453, 0.453, 1.510], atol=0.01)


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_codes_decode_as_documented(data, bits):
    tokens = data[2]
    book = RotatedResidualCodebook.fit(tokens, bits, n_centroids=32)
    codes = book.encode(tokens)
    assert codes.shape == (len(tokens), 2 + DIM * bits // 8 + 2) and codes.dtype == np.uint8
    np.testing.assert_allclose(book.rotation.T @ book.rotation, np.eye(DIM), atol=1e-5)
    ids, cells = reference_unpack(bits, DIM, codes[:, :-2])
    z = tokens @ book.rotation
    np.testing.assert_array_equal(ids, assign(z, book.centroids))
    scale = np.array([np.frombuffer(bytes(row[-2:]), "<f2")[0] for row in codes], np.float32)
    residual = z - book.centroids[ids]
    # each coordinate sits at the level nearest to it at the token's scale (float16 rounding of
    # the scale aside), and the scale is the least-squares fit of those levels
    nearest = np.abs(residual[..., None] - scale[:, None, None] * book.levels).argmin(-1)
    assert (nearest == cells).mean() > 0.97
    values = book.levels[cells]
    fit = (residual * values).sum(1) / (values * values).sum(1)
    np.testing.assert_allclose(scale, fit, rtol=2e-3)
    want = (book.centroids[ids] + scale[:, None] * values) @ book.rotation.T
    np.testing.assert_allclose(book.decode(codes), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bits", [1, 2])
def test_decodes_closer_than_plaid_at_the_same_bits(data, bits):
    tokens = data[2]
    rq = RotatedResidualCodebook.fit(tokens, bits, n_centroids=32)
    plaid = ResidualCodebook.fit(tokens, bits, n_centroids=32)
    err_rq = np.mean((rq.decode(rq.encode(tokens)) - tokens) ** 2)
    err_plaid = np.mean((plaid.decode(plaid.encode(tokens)) - tokens) ** 2)
    assert err_rq < err_plaid


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_maxsim_over_rotated_codes_equals_numpy_on_decoded(data, bits):
    docs, queries, tokens, offsets = data
    codes = TokenCodes.encode(tokens, offsets, kind=f"rq{bits}")
    assert codes.kind == f"rq{bits}" and codes.dim == DIM
    check_maxsim_equals_numpy(docs, queries, codes)


def test_kernel_reads_every_non_negative_float16_exactly():
    patterns = np.arange(0x7C00, dtype=np.uint16)  # +0, subnormals and normals up to the max
    want = patterns.view(np.float16).astype(np.float32)
    got = np.array([_half(p & 0xFF, p >> 8) for p in patterns.astype(np.int64)], np.float32)
    np.testing.assert_array_equal(got, want)


def test_subnormal_and_zero_scales_decode_in_the_kernel(data):
    _, queries, tokens, _ = data
    book = RotatedResidualCodebook.fit(tokens, 2, n_centroids=32)
    codes = book.encode(tokens[:4])
    scales = np.array([0.0, 3e-6, 6.1e-5, 0.25], "<f2")  # zero, subnormal, normals
    codes[:, -2:] = scales.view(np.uint8).reshape(4, 2)
    docs = TokenCodes(codes, np.arange(5), codebook=book)
    q_tokens, q_offsets = pack_token_sets(queries, DIM)
    want = np.array([maxsim_reference(q, [book.decode(codes[j : j + 1]) for j in range(4)])
                     for q in queries])  # fmt: skip
    np.testing.assert_allclose(maxsim(q_tokens, q_offsets, docs), want, rtol=1e-4, atol=1e-5)


def test_spec_spelling_and_refusals(data):
    stage = parse_spec("int8 * 30 > maxsim : rq2").stages[-1]
    assert str(stage) == "maxsim:rq2" and stage.token_code == "rq2"
    for bad in ("int8 > maxsim:rq3", "int8:rq2 > maxsim", "int8 > maxsim:rq2*2"):
        with pytest.raises(SpecError):
            parse_spec(bad)
    book = RotatedResidualCodebook.fit(data[2], 2, n_centroids=16)
    with pytest.raises(InvalidInputError, match="levels"):
        RotatedResidualCodebook(book.rotation, book.centroids, book.levels[:3])


def test_collection_stores_and_scores_rotated_codes(tmp_path, data):
    kind = check_collection_scores_codes(tmp_path / "c", data[0], data[1], "rq2", 120)
    assert kind is RotatedResidualCodebook
