"""Binary codes: sign bits (1 bit per dim) and multi-bit residual binarisation (2-4 bits).

Each dimension is first centred on its calibration mean, so bits split the data evenly even
for anisotropic models. With B bits, plane p holds the signs of what the earlier planes left
unexplained, scaled by a per-vector weight, x - mean ~ sum_p alpha_p * b_p with b_p in {-1,+1}^d
(the recurrent binarisation of Tencent's BEBR). Scoring:

* first pass, 1 bit: Hamming distance between the query's and the document's sign bits
  (compiled popcount kernel, top-k by counting). Documents are centred; queries are not
  shifted (the ranking to preserve is q . (x - mean), and q . mean is the same for every
  document) but lose their component along the mean's direction before taking signs. For an
  anisotropic model that component dominates every coordinate's sign and carries no ranking
  information. Debian set (6,000 docs), recall@10 vs exact of binary*40 > f32 / binary*10 > f32:
  e5 0.484 -> 0.963 / 0.247 -> 0.841 (its queries, embedded with a "query:" prompt, share one
  large offset); MiniLM 0.998 -> 0.996 / 0.961 -> 0.959; Gemma 0.998 -> 0.998 / 0.978 -> 0.976.
* first pass, 2-4 bits: the query quantised to 8 bits (q ~ lo + delta * v) and scored by
  bit-plane popcounts, q . b_p = 2 (delta * <v, b_p> + lo * |b_p|) - sum(q), in the compiled
  scan with fused top-k of ``kernels/bitplane.py`` (1M x 384, binary:2: was a float
  lookup-table scan into a score matrix);
* rescoring: asymmetric, q . x ~ q . mean + sum_p alpha_p * (q . b_p), exact in the query.

Row layout (bytes): B planes of packed bits, each padded to a multiple of 8 bytes, then B
float32 weights, then padding to a multiple of 8 so rows can be read as 64-bit words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slimvec.codecs.base import Codec
from slimvec.kernels.bitplane import bitplane_top, quantise_queries
from slimvec.kernels.hamming import hamming_top
from slimvec.kernels.lut import asymmetric_scores, byte_tables, gathered_plane_sums

#: Query bits of the multi-bit first pass: 8 keeps it within ~0.5% of the float query's scores.
QUERY_BITS = 8


@dataclass
class _Queries:
    floats: np.ndarray  # (nq, d) float32
    sums: np.ndarray  # (nq,) sum of each query's coordinates
    offsets: np.ndarray  # (nq,) q . mean
    words: np.ndarray  # (nq, plane_words) uint64 sign bits of q minus its part along mean

    def __len__(self) -> int:
        return len(self.floats)


class BinaryCodec(Codec):
    def __init__(self, dim: int, bits: int = 1):
        super().__init__(dim)
        self.bits = bits
        self.mean = np.zeros(dim, np.float32)
        self.plane_bytes = -(-dim // 64) * 8
        weights_end = bits * self.plane_bytes + 4 * bits
        self.width = -(-weights_end // 8) * 8

    @property
    def token(self) -> str:  # type: ignore[override]
        return "binary" if self.bits == 1 else f"binary:{self.bits}"

    @property
    def code_dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    @property
    def code_width(self) -> int:
        return self.width

    def fit(self, x: np.ndarray) -> BinaryCodec:
        self.mean = x.mean(axis=0).astype(np.float32)
        return self

    def encode(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        codes = np.zeros((n, self.width), np.uint8)
        weights = np.empty((n, self.bits), np.float32)
        residual = (x - self.mean).astype(np.float32)
        for p in range(self.bits):
            signs = residual >= 0
            alpha = np.abs(residual).mean(axis=1)
            weights[:, p] = alpha
            residual -= alpha[:, None] * np.where(signs, 1.0, -1.0).astype(np.float32)
            start = p * self.plane_bytes
            packed = np.packbits(signs, axis=1)
            codes[:, start : start + packed.shape[1]] = packed
        w0 = self.bits * self.plane_bytes
        codes[:, w0 : w0 + 4 * self.bits] = weights.view(np.uint8)
        return codes

    def _weights(self, codes: np.ndarray) -> np.ndarray:
        w0 = self.bits * self.plane_bytes
        raw = np.ascontiguousarray(codes[..., w0 : w0 + 4 * self.bits])
        return raw.view(np.float32)

    def prepare(self, queries: np.ndarray) -> _Queries:
        q = np.ascontiguousarray(queries, dtype=np.float32)
        offsets = q @ self.mean
        squared = float(self.mean @ self.mean)
        along = np.outer(offsets / squared, self.mean) if squared > 0 else 0.0
        bits = np.zeros((len(q), self.plane_bytes), np.uint8)
        packed = np.packbits(q - along >= 0, axis=1)
        bits[:, : packed.shape[1]] = packed
        return _Queries(q, q.sum(axis=1), offsets, bits.view(np.uint64))

    def scan(
        self, prepared: _Queries, codes: np.ndarray, keep: int, allow: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        words = np.ascontiguousarray(codes).view(np.uint64)
        if self.bits > 1:
            return self._multibit_scan(prepared, codes, words, keep, allow)
        rows, dist = hamming_top(prepared.words, words, self.plane_bytes // 8, keep, allow)
        scores = (1.0 - 2.0 * dist / self.dim).astype(np.float32)
        return rows, np.where(rows >= 0, scores, -np.inf).astype(np.float32)

    def _multibit_scan(self, prepared, codes, words, keep, allow):
        pwords = self.plane_bytes // 8
        planes, lo, delta, qsums = quantise_queries(prepared.floats, QUERY_BITS, pwords)
        alphas = self._weights(codes).astype(np.float32)  # (n, bits)
        ones = np.bitwise_count(words[:, : self.bits * pwords].reshape(len(codes), self.bits, -1))
        lterm = 2.0 * (alphas * ones.sum(axis=2)).sum(axis=1)
        rows, scores = bitplane_top(
            planes,
            prepared.offsets,
            delta,
            lo,
            qsums,
            words,
            self.bits,
            pwords,
            np.full(self.bits, 2.0),
            alphas,
            lterm.astype(np.float32),
            -alphas.sum(axis=1),
            keep,
            allow,
        )
        return rows, np.where(rows >= 0, scores, -np.inf).astype(np.float32)

    def score_block(self, prepared: _Queries, codes: np.ndarray) -> np.ndarray:
        tables = byte_tables(prepared.floats)
        out = np.empty((len(prepared), len(codes)), np.float32)
        asymmetric_scores(
            tables,
            prepared.sums,
            np.ascontiguousarray(codes),
            self.dim // 8,
            self.plane_bytes,
            self.bits,
            np.ascontiguousarray(self._weights(codes)),
            out,
        )
        return out + prepared.offsets[:, None]

    def score(self, prepared: _Queries, codes: np.ndarray) -> np.ndarray:
        weights = self._weights(codes)  # (nq, c, bits)
        tables = byte_tables(prepared.floats)
        sums = gathered_plane_sums(tables, codes, self.dim // 8, self.plane_bytes, self.bits)
        total = (weights * (2.0 * sums - prepared.sums[:, None, None])).sum(axis=2)
        return total.astype(np.float32) + prepared.offsets[:, None]

    def state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.mean = np.asarray(state["mean"], np.float32)
