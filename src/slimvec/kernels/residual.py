"""PLAID-style residual token codes: a centroid id plus B bits per dimension of residual.

ColBERTv2 (Santhanam et al., 2022) stores each token vector as the id of its nearest k-means
centroid and the residual ``x - centroid`` quantised to B bits per dimension; decoding is
``centroid + bucket value``. Token vectors of a text cluster tightly (the same word pieces in
similar contexts), so a centroid carries most of a token and a few residual bits the rest:
``2 + dim * B / 8`` bytes per token (50 B for 384-d MiniLM tokens at 1 bit, against 768 B as
float16).

Buckets are per dimension: cut at the quantiles ``j / 2**B`` of that dimension's residuals in
the fitting sample, decoded to the quantile midpoints ``(j + 0.5) / 2**B`` (ColBERTv2 shares
one set of cut-offs across dimensions; MiniLM's dimensions differ in spread, so per-dimension
buckets cost nothing extra to decode and keep each dimension's resolution).

Code row layout (uint8): the centroid id as two little-endian bytes, then the packed residual
codes, dimension ``d`` at bit ``(d * B) % 8`` of byte ``2 + d * B // 8``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from slimvec.errors import InvalidInputError
from slimvec.spec import RESIDUAL_BITS

#: Bytes of the centroid id at the start of every code row (so at most 65,536 centroids).
ID_BYTES = 2
MAX_CENTROIDS = 2048
MIN_CENTROIDS = 16
#: Tokens per centroid the k-means sample holds (FAISS warns below 39).
SAMPLE_PER_CENTROID = 40
KMEANS_ITERATIONS = 8
#: Tokens assigned to centroids per BLAS block (block x centroids float32 scores).
ASSIGN_BLOCK = 4096


def suggested_centroids(n_tokens: int) -> int:
    """ColBERTv2's ``2 ** floor(log2(16 * sqrt(T)))``, kept within [16, 2048]: encoding assigns
    every token to its nearest centroid (T x K x dim multiply-adds: ~80 s for 5M MiniLM tokens
    at 2,048 on 2 cores), and residual bits absorb what more centroids would add."""
    k = 2 ** int(np.floor(np.log2(16 * np.sqrt(max(n_tokens, 1)))))
    return int(min(max(k, MIN_CENTROIDS), MAX_CENTROIDS))


def fit_centroids(
    tokens: np.ndarray, n_centroids: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    """(sample, k-means centroids, the generator that drew them) for a residual codebook: at
    most ``SAMPLE_PER_CENTROID`` tokens per centroid, seeded, so a refit gives the same book."""
    x = np.ascontiguousarray(tokens, np.float32)
    if len(x) == 0:
        raise InvalidInputError("residual token codes are fitted on a first batch with tokens")
    k = min(n_centroids or suggested_centroids(len(x)), len(x))
    rng = np.random.default_rng(seed)
    sample = x
    if len(x) > SAMPLE_PER_CENTROID * k:
        sample = x[np.sort(rng.choice(len(x), SAMPLE_PER_CENTROID * k, replace=False))]
    return sample, kmeans(sample, k, rng), rng


@dataclass
class ResidualCodebook:
    """Centroids (K, dim) float32, per-dimension ``cutoffs`` (dim, 2**B - 1) and decoded bucket
    ``weights`` (dim, 2**B), all float32; ``bits`` B in ``RESIDUAL_BITS``."""

    centroids: np.ndarray
    cutoffs: np.ndarray
    weights: np.ndarray

    def __post_init__(self) -> None:
        self.centroids = np.ascontiguousarray(self.centroids, np.float32)
        self.cutoffs = np.ascontiguousarray(self.cutoffs, np.float32)
        self.weights = np.ascontiguousarray(self.weights, np.float32)
        levels = self.weights.shape[1] if self.weights.ndim == 2 else 0
        if (
            levels not in (2, 4, 16)
            or self.centroids.ndim != 2
            or not 1 <= len(self.centroids) <= 1 << (8 * ID_BYTES)
            or self.weights.shape[0] != self.dim
            or self.cutoffs.shape != (self.dim, levels - 1)
        ):
            raise InvalidInputError(
                f"a residual codebook needs centroids (K <= 65536, dim), cutoffs (dim, 2**B - 1) "
                f"and weights (dim, 2**B) with B in {RESIDUAL_BITS}; got {self.centroids.shape}, "
                f"{self.cutoffs.shape}, {self.weights.shape}"
            )

    @property
    def dim(self) -> int:
        return self.centroids.shape[1]

    @property
    def bits(self) -> int:
        return int(np.log2(self.weights.shape[1]))

    @property
    def code_width(self) -> int:
        """Bytes per token."""
        return ID_BYTES + self.dim * self.bits // 8

    @classmethod
    def fit(
        cls, tokens: np.ndarray, bits: int, n_centroids: int | None = None, seed: int = 0
    ) -> ResidualCodebook:
        """k-means centroids over (a sample of) ``tokens``, then per-dimension residual buckets."""
        check_bits(bits, tokens.shape[1])
        sample, centroids, _ = fit_centroids(tokens, n_centroids, seed)
        residuals = sample - centroids[assign(sample, centroids)]
        levels = 1 << bits
        cut = np.quantile(residuals, np.arange(1, levels) / levels, axis=0).T
        mid = np.quantile(residuals, (np.arange(levels) + 0.5) / levels, axis=0).T
        return cls(centroids, cut, mid)

    def encode(self, tokens: np.ndarray) -> np.ndarray:
        """(T, code_width) uint8 code rows of float32 ``tokens``."""
        x = np.ascontiguousarray(tokens, np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise InvalidInputError(f"tokens must be (n, {self.dim}), got {x.shape}")
        out = np.empty((len(x), self.code_width), np.uint8)
        for lo in range(0, len(x), ASSIGN_BLOCK * 16):
            block = x[lo : lo + ASSIGN_BLOCK * 16]
            ids = assign(block, self.centroids)
            _pack(block, ids, self.centroids, self.cutoffs, self.bits, out[lo : lo + len(block)])
        return out

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """float32 token vectors of code rows, in NumPy (the kernel decodes on its own)."""
        codes = np.asarray(codes, np.uint8)
        ids = codes[:, 0].astype(np.int64) | (codes[:, 1].astype(np.int64) << 8)
        per_byte = 8 // self.bits
        shifts = (np.arange(per_byte) * self.bits).astype(np.uint8)
        packed = codes[:, ID_BYTES:]
        buckets = (packed[:, :, None] >> shifts) & ((1 << self.bits) - 1)
        buckets = buckets.reshape(len(codes), self.dim)
        return self.centroids[ids] + self.weights[np.arange(self.dim), buckets]

    def state(self) -> dict[str, np.ndarray]:
        return {"centroids": self.centroids, "cutoffs": self.cutoffs, "weights": self.weights}


def check_bits(bits: int, dim: int) -> None:
    if bits not in RESIDUAL_BITS:
        raise InvalidInputError(f"residual codes take {RESIDUAL_BITS} bits per dim, got {bits}")
    if dim * bits % 8:
        raise InvalidInputError(
            f"{bits}-bit residuals pack {8 // bits} dims per byte and need a token dim that is a "
            f"multiple of {8 // bits} (got {dim})"
        )


def assign(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (Euclidean) of each row, blocked BLAS."""
    half_norms = 0.5 * np.einsum("kd,kd->k", centroids, centroids)
    out = np.empty(len(x), np.int64)
    for lo in range(0, len(x), ASSIGN_BLOCK):
        scores = x[lo : lo + ASSIGN_BLOCK] @ centroids.T
        scores -= half_norms
        out[lo : lo + ASSIGN_BLOCK] = scores.argmax(axis=1)
    return out


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Lloyd's k-means from k distinct random rows; an emptied centroid restarts at a random
    row (``KMEANS_ITERATIONS`` rounds: residual bits absorb what further rounds would fix)."""
    centroids = x[rng.choice(len(x), k, replace=False)].copy()
    for _ in range(KMEANS_ITERATIONS):
        labels = assign(x, centroids)
        order = np.argsort(labels, kind="stable")
        counts = np.bincount(labels, minlength=k)
        used = np.flatnonzero(counts)
        starts = np.concatenate([[0], np.cumsum(counts[used])[:-1]])
        sums = np.add.reduceat(x[order], starts, axis=0)
        centroids[used] = sums / counts[used, None]
        empty = np.flatnonzero(counts == 0)
        centroids[empty] = x[rng.choice(len(x), len(empty), replace=False)]
    return centroids


@njit(cache=True, parallel=True)
def _pack(x, ids, centroids, cutoffs, bits, out):
    """Code rows of ``x``: centroid id bytes, then each residual's bucket (count of cut-offs
    below it) packed ``8 // bits`` per byte."""
    dim = x.shape[1]
    levels = cutoffs.shape[1]
    for t in prange(x.shape[0]):
        c = ids[t]
        out[t, 0] = np.uint8(c & 0xFF)
        out[t, 1] = np.uint8(c >> 8)
        for j in range(2, out.shape[1]):
            out[t, j] = 0
        for d in range(dim):
            r = x[t, d] - centroids[c, d]
            bucket = 0
            for j in range(levels):
                if r > cutoffs[d, j]:
                    bucket += 1
            pos = d * bits
            out[t, 2 + (pos >> 3)] |= np.uint8(bucket << (pos & 7))
