"""Rotated residual token codes with a per-token scale (RaBitQ-style): centroid id, B bits per
dimension of the randomly rotated residual, and one float16 scale.

PLAID's buckets (:mod:`slimvec.kernels.residual`) are fixed per dimension, so every token's
residual is cut at the same values whether it is short or long, and MiniLM's dimensions differ
in spread. Here the residual ``x - centroid`` is first turned by a random orthogonal rotation
(as RaBitQ does: every rotated coordinate is then a near-Gaussian mix of all of them), each
token's coordinates are quantised to the B-bit Lloyd-Max levels of a standard normal after
dividing by the token's own spread, and the token keeps the least-squares scale ``s`` that
fits ``s * levels`` to its residual. Decoding is ``centroid + s * level`` in the rotated space
(centroids are stored rotated; queries are rotated once per search). Measured on the
Debian/MiniLM benchmark's candidates (384-d): rq1 keeps 0.82 of exact MaxSim's top-10 at 52
B/token (PLAID res2: 0.82 at 98 B), rq2 0.93 at 100 B (res2 0.82), rq4 0.985 at 196 B (res4
0.93). A PCA rotation instead of a random one did worse (rq1 0.78).

Code row layout (uint8): the centroid id as two little-endian bytes, the packed level indices
(dimension ``d`` at bit ``(d * B) % 8`` of byte ``2 + d * B // 8``, as PLAID's), then the
scale as a little-endian float16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slimvec.errors import InvalidInputError
from slimvec.kernels.residual import (
    ASSIGN_BLOCK,
    ID_BYTES,
    assign,
    check_bits,
    fit_centroids,
)

SCALE_BYTES = 2
#: Rounds of (levels for the scale, least-squares scale for the levels) per token.
SCALE_ROUNDS = 3


def gaussian_levels(bits: int, seed: int = 0) -> np.ndarray:
    """Lloyd-Max reconstruction levels of a standard normal at ``bits`` bits (ascending)."""
    g = np.sort(np.random.default_rng(seed).standard_normal(200_000))
    count = 1 << bits
    levels = np.quantile(g, (np.arange(count) + 0.5) / count)
    for _ in range(40):
        cells = np.searchsorted((levels[1:] + levels[:-1]) / 2, g)
        levels = np.bincount(cells, g, count) / np.bincount(cells, minlength=count)
    return levels.astype(np.float32)


@dataclass
class RotatedResidualCodebook:
    """``rotation`` (dim, dim) orthonormal, rotated ``centroids`` (K, dim) and the ascending
    ``levels`` (2**B,) of one standard-normal coordinate, all float32."""

    rotation: np.ndarray
    centroids: np.ndarray
    levels: np.ndarray

    def __post_init__(self) -> None:
        self.rotation = np.ascontiguousarray(self.rotation, np.float32)
        self.centroids = np.ascontiguousarray(self.centroids, np.float32)
        self.levels = np.ascontiguousarray(self.levels, np.float32).reshape(-1)
        dim = self.rotation.shape[0] if self.rotation.ndim == 2 else -1
        if (
            self.rotation.shape != (dim, dim)
            or self.centroids.ndim != 2
            or self.centroids.shape[1] != dim
            or not 1 <= len(self.centroids) <= 1 << (8 * ID_BYTES)
            or len(self.levels) not in (2, 4, 16)
        ):
            raise InvalidInputError(
                f"a rotated residual codebook needs a (dim, dim) rotation, (K <= 65536, dim) "
                f"centroids and 2, 4 or 16 levels; got {self.rotation.shape}, "
                f"{self.centroids.shape}, {self.levels.shape}"
            )
        check_bits(self.bits, dim)

    @property
    def dim(self) -> int:
        return self.rotation.shape[0]

    @property
    def bits(self) -> int:
        return int(np.log2(len(self.levels)))

    @property
    def code_width(self) -> int:
        """Bytes per token."""
        return ID_BYTES + self.dim * self.bits // 8 + SCALE_BYTES

    @property
    def table(self) -> np.ndarray:
        """The levels as a (1, 2**B) table (the kernel's bucket-weight argument)."""
        return self.levels[None, :]

    @classmethod
    def fit(
        cls, tokens: np.ndarray, bits: int, n_centroids: int | None = None, seed: int = 0
    ) -> RotatedResidualCodebook:
        """k-means centroids over (a sample of) ``tokens`` and a seeded random rotation."""
        check_bits(bits, tokens.shape[1])
        _, centroids, rng = fit_centroids(tokens, n_centroids, seed)
        dim = tokens.shape[1]
        rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        rotation = rotation.astype(np.float32)
        return cls(rotation, centroids @ rotation, gaussian_levels(bits, seed))

    def encode(self, tokens: np.ndarray) -> np.ndarray:
        """(T, code_width) uint8 code rows of float32 ``tokens``."""
        x = np.ascontiguousarray(tokens, np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise InvalidInputError(f"tokens must be (n, {self.dim}), got {x.shape}")
        out = np.empty((len(x), self.code_width), np.uint8)
        per_byte = 8 // self.bits
        shifts = (np.arange(per_byte) * self.bits).astype(np.uint8)
        for lo in range(0, len(x), ASSIGN_BLOCK * 16):
            z = x[lo : lo + ASSIGN_BLOCK * 16] @ self.rotation
            ids = assign(z, self.centroids)
            z -= self.centroids[ids]
            cells, scale = self._quantise(z)
            rows = out[lo : lo + len(z)]
            rows[:, 0], rows[:, 1] = ids & 0xFF, ids >> 8
            packed = (cells.reshape(len(z), -1, per_byte) << shifts).sum(axis=2, dtype=np.uint8)
            rows[:, ID_BYTES:-SCALE_BYTES] = packed
            rows[:, -SCALE_BYTES:] = scale.astype("<f2").view(np.uint8).reshape(-1, 2)
        return out

    def _quantise(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Level index per coordinate (uint8) and the float16-rounded least-squares scale of
        each row of rotated residuals ``z``."""
        cut = (self.levels[1:] + self.levels[:-1]) / 2
        scale = np.sqrt(np.mean(z * z, axis=1)) + 1e-12
        for _ in range(SCALE_ROUNDS):
            cells = np.searchsorted(cut, z / scale[:, None]).astype(np.uint8)
            values = self.levels[cells]
            fit = np.einsum("td,td->t", z, values) / np.einsum("td,td->t", values, values)
            scale = np.maximum(fit, 1e-12)
        return cells, scale.astype(np.float16)

    def decode_rotated(self, codes: np.ndarray) -> np.ndarray:
        """Token vectors of code rows in the rotated space (what the kernel scores)."""
        codes = np.ascontiguousarray(codes, np.uint8)
        ids = codes[:, 0].astype(np.int64) | (codes[:, 1].astype(np.int64) << 8)
        per_byte = 8 // self.bits
        shifts = (np.arange(per_byte) * self.bits).astype(np.uint8)
        packed = codes[:, ID_BYTES:-SCALE_BYTES]
        cells = ((packed[:, :, None] >> shifts) & ((1 << self.bits) - 1)).reshape(len(codes), -1)
        scale = codes[:, -SCALE_BYTES:].copy().view("<f2").astype(np.float32)
        return self.centroids[ids] + scale * self.levels[cells]

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """float32 token vectors of code rows, in NumPy (the kernel decodes on its own)."""
        return self.decode_rotated(codes) @ self.rotation.T

    def state(self) -> dict[str, np.ndarray]:
        return {"rotation": self.rotation, "centroids": self.centroids, "levels": self.levels}
