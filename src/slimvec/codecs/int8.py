"""int8 scalar quantisation with per-dimension calibration.

Each dimension gets its own range (from the calibration sample's 0.05th to 99.95th
percentiles) split into 256 levels, so dimensions with small spread keep their resolution.
Scores are computed on de-quantised values, q . (lo + scale * c) = q . lo + (q * scale) . c,
so rankings follow the real inner product rather than raw code values. The first-pass scan
quantises q * scale to int8 as well and runs a compiled integer-valued dot product with fused
top-k (``kernels/int8dot.py``); rescoring a shortlist keeps the float query.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from slimvec.codecs.base import Codec
from slimvec.kernels.int8 import LEVELS, dequantise, fit_range, quantise
from slimvec.kernels.int8dot import int8_top, quantise_int8


class Int8Codec(Codec):
    token = "int8"

    def __init__(self, dim: int):
        super().__init__(dim)
        self.low = np.full(dim, -1.0, np.float32)
        self.step = np.full(dim, 2.0 / LEVELS, np.float32)

    @property
    def code_dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    @property
    def code_width(self) -> int:
        return self.dim

    def fit(self, x: np.ndarray) -> Int8Codec:
        self.low, self.step = fit_range(x)
        return self

    def encode(self, x: np.ndarray) -> np.ndarray:
        return quantise(x, self.low, self.step)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return dequantise(codes, self.low, self.step)

    def prepare(self, queries: np.ndarray) -> Any:
        q = np.ascontiguousarray(queries, dtype=np.float32)
        return q * self.step, q @ self.low

    def scan(
        self, prepared: Any, codes: np.ndarray, keep: int, allow: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        weighted, offset = prepared
        qcodes, qscale = quantise_int8(weighted)
        rows, scores = int8_top(qcodes, qscale, offset, codes, keep, allow)
        return rows, np.where(rows >= 0, scores, -np.inf).astype(np.float32)

    def score_block(self, prepared: Any, codes: np.ndarray) -> np.ndarray:
        weighted, offset = prepared
        return weighted @ codes.astype(np.float32).T + offset[:, None]

    def score(self, prepared: Any, codes: np.ndarray) -> np.ndarray:
        weighted, offset = prepared
        return np.einsum("qcd,qd->qc", codes.astype(np.float32), weighted) + offset[:, None]

    def state(self) -> dict[str, np.ndarray]:
        return {"low": self.low, "step": self.step}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.low = np.asarray(state["low"], np.float32)
        self.step = np.asarray(state["step"], np.float32)
