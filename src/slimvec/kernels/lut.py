"""Asymmetric scoring of a float query against packed sign bits, via per-byte lookup tables.

For b in {-1, +1}^d, q.b = 2 * sum(q_i for set bits) - sum(q). A table of the partial sums of
each 8-dim slice of q for all 256 byte values turns that into one lookup per code byte.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from slimvec.kernels.threads import numba_threads, threads_for

_BITS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.float32)


def byte_tables(queries: np.ndarray) -> np.ndarray:
    """(nq, d/8, 256) partial sums: entry [i, b, v] = sum of q_i's 8 dims of byte b set in v."""
    nq, d = queries.shape
    slices = queries.reshape(nq, d // 8, 8)
    return np.ascontiguousarray(np.einsum("qbk,vk->qbv", slices, _BITS), dtype=np.float32)


def asymmetric_scores(tables, qsums, codes, nbytes, stride, planes, alphas, out) -> None:
    """out[i, j] = sum_p alphas[j, p] * (q_i . b_jp); plane p's bytes start at p * stride."""
    with numba_threads(threads_for(len(codes) * len(tables) * nbytes * planes)):
        _asymmetric_scores(tables, qsums, codes, nbytes, stride, planes, alphas, out)


@njit(parallel=True, cache=True, nogil=True)
def _asymmetric_scores(tables, qsums, codes, nbytes, stride, planes, alphas, out):
    n = codes.shape[0]
    nq = tables.shape[0]
    for j in prange(n):
        for i in range(nq):
            total = 0.0
            for p in range(planes):
                acc = 0.0
                base = p * stride
                for b in range(nbytes):
                    acc += tables[i, b, codes[j, base + b]]
                total += alphas[j, p] * (2.0 * acc - qsums[i])
            out[i, j] = total


def gathered_plane_sums(
    tables: np.ndarray, codes: np.ndarray, nbytes: int, stride: int, planes: int
) -> np.ndarray:
    """(nq, c, planes) float32: for query i and each of its c gathered code rows
    ``codes[i]`` (nq, c, width) uint8, the sum of q_i over the set bits of each bit plane
    (plane p's ``nbytes`` bytes start at p * ``stride``).

    This is how a shortlist is rescored: one table lookup per code byte instead of unpacking
    the codes to a (queries x shortlist x dims) float array."""
    nq, c = codes.shape[:2]
    out = np.empty((nq, c, planes), np.float32)
    with numba_threads(threads_for(nq * c * nbytes * planes)):
        _gathered_plane_sums(tables, codes, nbytes, stride, planes, out)
    return out


@njit(parallel=True, cache=True, nogil=True)
def _gathered_plane_sums(tables, codes, nbytes, stride, planes, out):
    c = codes.shape[1]
    for f in prange(codes.shape[0] * c):
        i = f // c
        j = f - i * c
        for p in range(planes):
            acc = 0.0
            base = p * stride
            for b in range(nbytes):
                acc += tables[i, b, codes[i, j, base + b]]
            out[i, j, p] = acc
