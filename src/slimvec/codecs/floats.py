"""Float codes: float32 (exact), float16 (half the bytes, ~3 decimal digits) and float8.

float8 is E4M3 (``ml_dtypes.float8_e4m3fn``): 4 exponent bits give the dynamic range that a
unit vector's small coordinates need, but only after each dimension is scaled so its largest
calibration value lands near the format's maximum (448); without scaling most coordinates of
a 384-d unit vector would be subnormal.
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np

from slimvec.codecs.base import Codec

_F8 = ml_dtypes.float8_e4m3fn
_F8_TARGET = 240.0  # headroom below E4M3's 448 for values past the calibration maximum


class FloatCodec(Codec):
    """Stores the vector in a float type; scores by exact inner product in float32."""

    dtype: np.dtype

    @property
    def code_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def code_width(self) -> int:
        return self.dim

    def encode(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x, dtype=self.dtype)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return codes.astype(np.float32, copy=False)

    def score_block(self, prepared: Any, codes: np.ndarray) -> np.ndarray:
        return prepared @ self.decode(codes).T

    def score(self, prepared: Any, codes: np.ndarray) -> np.ndarray:
        return np.einsum("qcd,qd->qc", self.decode(codes), prepared)


class Float32Codec(FloatCodec):
    token = "f32"
    dtype = np.dtype(np.float32)


class Float16Codec(FloatCodec):
    token = "f16"
    dtype = np.dtype(np.float16)


class Float8Codec(FloatCodec):
    token = "f8"
    dtype = np.dtype(np.uint8)  # raw E4M3 bytes; numpy files cannot name ml_dtypes types

    def __init__(self, dim: int):
        super().__init__(dim)
        self.scale = np.ones(dim, np.float32)

    def fit(self, x: np.ndarray) -> Float8Codec:
        peak = np.abs(x).max(axis=0)
        self.scale = (_F8_TARGET / np.where(peak > 0, peak, 1.0)).astype(np.float32)
        return self

    def encode(self, x: np.ndarray) -> np.ndarray:
        scaled = np.clip(x * self.scale, -448.0, 448.0)
        return scaled.astype(_F8).view(np.uint8)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return codes.view(_F8).astype(np.float32) / self.scale

    def prepare(self, queries: np.ndarray) -> Any:
        return np.ascontiguousarray(queries, dtype=np.float32)

    def state(self) -> dict[str, np.ndarray]:
        return {"scale": self.scale}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.scale = np.asarray(state["scale"], np.float32)
