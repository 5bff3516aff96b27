"""RaBitQ codes: a random rotation, B bits per dim, and an unbiased inner-product estimator.

RaBitQ (Gao & Long, SIGMOD 2024) and extended RaBitQ (Gao et al., SIGMOD 2025):

* ``fit`` draws a random orthogonal rotation R (Haar, seeded) and takes the data centroid c.
  Both are stored in the collection's state file.
* ``encode``: the residual r = R (x - c), its norm, and its direction o = r / |r| quantised to
  a grid point y with coordinates in {-h, -h+1, ..., h}, h = (2^B - 1) / 2, stored as unsigned
  u = y + h in B bit planes. For B = 1 that is the sign of each rotated coordinate; for B > 1
  the scale of the grid is chosen per vector to bring y closest in angle to o
  (``kernels/quantise.py``).
* the estimator: <q, x> = <q, c> + |r| <o, Rq>, and <o, Rq> ~ <y, Rq> / <y, o>. Because R is
  random, the estimate is unbiased, and its error is at most
  |r| |q| sqrt(1 - a^2) / a * eps0 / sqrt(D - 1), a = <y, o> / |y|, with probability that grows
  like 1 - 2 exp(-c0 eps0^2) (eps0 = 1.9 is the papers' working choice; ``ERROR_EPS``).

Per-vector scalars sit after the planes in the code row (4 float32): F = |r| / <y, o>,
L = F * sum(u), R = F |y| = |r| / a and E = |r| sqrt(1 - a^2) / a (the error scale). With
the rotated query Rq quantised to ``qbits`` bits (Rq ~ lo + delta * v, per query), the first
pass is

    score = <q, c> + F * delta * <u, v> + lo * L - h * F * sum(lo + delta * v)

with <u, v> from bit-plane popcounts (``kernels/bitplane.py``). Rescoring a shortlist
(``score``) uses the float query: <u, Rq> exactly, only the document side is quantised.

Row layout (bytes): B planes of packed bits, each padded to a multiple of 8 bytes, then
F, L, G, E as float32. Any dimension works (padding bits are zero on both sides). The rotation
is a dense D x D float32 matrix, so the codec suits ordinary embedding sizes (4 MB at 1,024 dims).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slimvec.codecs.base import Codec
from slimvec.errors import CorruptCollectionError
from slimvec.kernels.bitplane import bitplane_top, quantise_queries
from slimvec.kernels.flatscan import FlatCodes, flat_top, layout
from slimvec.kernels.ivfscan import query_tables
from slimvec.kernels.lut import byte_tables, gathered_plane_sums
from slimvec.kernels.quantise import extended_codes
from slimvec.kernels.rotation import rotate

#: Query bits the 4-bit table scan takes (its byte tables hold 4 dims x (2^qbits - 1)).
TABLE_QBITS = 6
#: eps0 of the error bound (Gao & Long use 1.9).
ERROR_EPS = 1.9
DEFAULT_QBITS = 4
#: eps0 of ``*auto`` shortlists: a true top-k candidate is dropped only if its estimate errs by
#: more than 3 of its standard deviations (~0.3% of pairs, measured in tests/test_rabitq.py).
AUTO_EPS = 3.0
_FACTORS = 4  # F, L, G, E


@dataclass
class _Queries:
    rotated: np.ndarray  # (nq, d) float32: R q
    offsets: np.ndarray  # (nq,) <q, c>
    sums: np.ndarray  # (nq,) sum(R q)
    norms: np.ndarray  # (nq,) |q|
    planes: np.ndarray | None = None  # (nq, qbits, plane_words) uint64 quantised R q
    lo: np.ndarray | None = None
    delta: np.ndarray | None = None
    qsums: np.ndarray | None = None  # sums of the quantised R q
    tables: np.ndarray | None = None  # (nq, dim / 8, 256) byte tables of R q, for rescoring

    def __len__(self) -> int:
        return len(self.rotated)


class RaBitQCodec(Codec):
    needs_fit = True

    def __init__(self, dim: int, bits: int = 1, qbits: int = DEFAULT_QBITS, seed: int = 0):
        super().__init__(dim)
        self.bits = bits
        self.qbits = qbits
        self.seed = seed
        self.half = ((1 << bits) - 1) / 2.0
        self.plane_words = -(-dim // 64)
        self.plane_bytes = 8 * self.plane_words
        self.factor_start = bits * self.plane_bytes
        self.width = self.factor_start + 4 * _FACTORS
        self.rotation: np.ndarray | None = None  # (dim, dim), orthonormal rows
        self.centroid = np.zeros(dim, np.float32)

    @property
    def token(self) -> str:  # type: ignore[override]
        return "rabitq" if self.bits == 1 else f"rabitq:{self.bits}"

    @property
    def code_dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    @property
    def code_width(self) -> int:
        return self.width

    # -- building -------------------------------------------------------------------------
    def fit(self, x: np.ndarray) -> RaBitQCodec:
        gaussian = np.random.default_rng(self.seed).standard_normal((self.dim, self.dim))
        q, r = np.linalg.qr(gaussian)
        q *= np.sign(np.diag(r))  # Haar-distributed, independent of the QR routine's signs
        self.rotation = np.ascontiguousarray(q.T, dtype=np.float32)
        self.centroid = x.mean(axis=0).astype(np.float32)
        return self

    def _rotate(self, x: np.ndarray) -> np.ndarray:
        if self.rotation is None:
            raise RuntimeError("RaBitQCodec used before fit")
        return rotate(x, self.rotation)

    def encode(self, x: np.ndarray, origin: np.ndarray | None = None) -> np.ndarray:
        """Codes of ``x`` as residuals to the data centroid, or to ``origin`` (one row per
        vector: the IVF list centroids, ``index/ivf.py``; then a scan adds <q, origin>)."""
        base = self.centroid if origin is None else origin
        # float32 throughout (a float64 copy of a block would double an add's working set);
        # only the per-row sums are accumulated in float64
        r = self._rotate(np.asarray(x, np.float32) - base)
        norm = np.sqrt(np.einsum("ij,ij->i", r, r, dtype=np.float64))
        safe = np.where(norm > 0, norm, 1.0)
        o = np.divide(r, safe[:, None], out=r, casting="unsafe")  # in float64, rounded once
        if self.bits == 1:
            u = (o > 0).astype(np.uint8)
            ip = 0.5 * np.abs(o).sum(axis=1, dtype=np.float64)
            ynorm = np.full(len(x), 0.5 * np.sqrt(self.dim))
        else:
            u, ip, ynorm = extended_codes(o, self.bits)
        ok = (norm > 0) & (ip > 0)
        ip = np.where(ok, ip, 1.0)
        f = np.where(ok, norm / ip, 0.0)
        e = np.where(ok, norm * np.sqrt(np.maximum(ynorm**2 - ip**2, 0.0)) / ip, 0.0)
        factors = np.stack([f, f * u.sum(axis=1, dtype=np.int64), f * ynorm, e], axis=1).astype(
            np.float32
        )
        codes = np.zeros((len(x), self.width), np.uint8)
        for p in range(self.bits):
            packed = np.packbits((u >> p) & 1, axis=1)
            start = p * self.plane_bytes
            codes[:, start : start + packed.shape[1]] = packed
        codes[:, self.factor_start :] = factors.view(np.uint8)
        return codes

    def factors(self, codes: np.ndarray) -> np.ndarray:
        """(..., 4) float32 copy of F, L, R, E of each code row."""
        return np.ascontiguousarray(codes[..., self.factor_start :]).view(np.float32)

    def error_bound(self, prepared: _Queries, codes: np.ndarray, eps: float = ERROR_EPS):
        """(nq, c) bound on |estimate - <q, x>| for codes gathered as (nq, c, width)."""
        scale = self.factors(codes)[..., 3]
        return scale * (prepared.norms[:, None] * eps / np.sqrt(max(self.dim - 1, 1)))

    def state(self) -> dict[str, np.ndarray]:
        if self.rotation is None:
            return {}
        return {"rotation": self.rotation, "centroid": self.centroid}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        rotation = np.asarray(state["rotation"], np.float32)
        centroid = np.asarray(state["centroid"], np.float32)
        d = self.dim
        if rotation.shape != (d, d) or centroid.shape != (d,):
            raise CorruptCollectionError(
                f"the {self.token} state holds a rotation of shape {rotation.shape} and a "
                f"centroid of shape {centroid.shape}, not ({d}, {d}) and ({d},): the state file "
                f"is damaged or from another collection; restore it from a backup"
            )
        if not (np.isfinite(rotation).all() and np.isfinite(centroid).all()):
            raise CorruptCollectionError(f"the {self.token} state holds NaN or inf values")
        self.rotation = rotation
        self.centroid = centroid

    @property
    def table_scan(self) -> bool:
        """Whether flat codes can also be laid out for the 4-bit table scan
        (``kernels.flatscan``): queries of at most ``TABLE_QBITS`` bits."""
        return self.qbits <= TABLE_QBITS

    def table_layout(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(docs, factors) of code rows in the table-scan layout (``flatscan.layout``)."""
        return layout(codes, self.factor_start, self.factor_start)

    # -- searching ------------------------------------------------------------------------
    def prepare(self, queries: np.ndarray) -> _Queries:
        q = np.ascontiguousarray(queries, dtype=np.float32)
        rotated = self._rotate(q)
        return _Queries(rotated, q @ self.centroid, rotated.sum(axis=1), np.linalg.norm(q, axis=1))

    def quantised(self, prepared: _Queries) -> _Queries:
        """``prepared`` with the rotated queries quantised to ``qbits`` (done once, kept)."""
        if prepared.planes is None:
            quantised = quantise_queries(prepared.rotated, self.qbits, self.plane_words)
            prepared.planes, prepared.lo, prepared.delta, prepared.qsums = quantised
        return prepared

    def scan(
        self, prepared: _Queries, codes: np.ndarray | FlatCodes, keep: int, allow: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows and estimates of each query's ``keep`` best codes: code rows through the
        bit-plane kernel, ``FlatCodes`` through the table scan (same estimates, same rows)."""
        p = self.quantised(prepared)
        if isinstance(codes, FlatCodes):
            return self._scan_tables(p, codes, keep, allow)
        codes = np.ascontiguousarray(codes)
        fcols = codes.view(np.float32)[:, self.factor_start // 4 :]
        rows, scores = bitplane_top(
            p.planes,
            p.offsets,
            p.delta,
            p.lo,
            p.qsums,
            codes.view(np.uint64),
            self.bits,
            self.plane_words,
            2.0 ** np.arange(self.bits),
            fcols[:, 0:1],
            fcols[:, 1],
            -self.half,  # gterm = -half * w: no per-query (n,) array
            keep,
            allow,
        )
        return rows, np.where(rows >= 0, scores, -np.inf).astype(np.float32)

    def _scan_tables(self, p: _Queries, codes: FlatCodes, keep: int, allow: np.ndarray | None):
        tables = query_tables(p.planes, self.bits)
        rows, scores = flat_top(
            tables, p.offsets, p.delta, p.lo, p.qsums, -self.half, codes.blocks, keep, allow
        )
        if len(codes.tail):  # the log's rows: plain code rows, merged in
            start = codes.tail_start
            mask = None if allow is None else allow[start : start + len(codes.tail)]
            t_rows, t_scores = self.scan(p, codes.tail, keep, mask)
            rows = np.concatenate([rows, np.where(t_rows >= 0, t_rows + start, -1)], axis=1)
            scores = np.concatenate([scores, t_scores], axis=1)
            order = np.lexsort((rows, -scores), axis=-1)[:, :keep]  # ties to the lowest row
            rows = np.take_along_axis(rows, order, 1)
            scores = np.take_along_axis(scores, order, 1)
        return rows, np.where(rows >= 0, scores, -np.inf).astype(np.float32)

    def scan_radius(
        self, prepared: _Queries, codes: np.ndarray, rows: np.ndarray, eps: float
    ) -> np.ndarray:
        """(nq, c) error bound of ``scan`` estimates for resident ``codes`` at ``rows``.

        Two independent parts, added in quadrature: the estimator's own error (scale E |q| /
        sqrt(D - 1)) and the query's rounding to ``qbits`` (uniform, delta^2 / 12 per
        coordinate, seen through the unit direction of y: scale R delta / sqrt(12)).
        """
        p = self.quantised(prepared)
        f = self.factors(codes[np.where(rows >= 0, rows, 0)])
        own = f[..., 3] * (p.norms[:, None] / np.sqrt(max(self.dim - 1, 1)))
        rounding = f[..., 2] * (p.delta[:, None] / np.sqrt(12.0))
        return eps * np.sqrt(own**2 + rounding**2)

    def prune(
        self, prepared: _Queries, codes: np.ndarray, rows, scores, k: int, eps: float = AUTO_EPS
    ) -> tuple[np.ndarray, np.ndarray]:
        """Of a scan's candidates, those that may still be in the true top ``k``.

        A candidate is dropped when its upper bound (estimate + radius) is below the k-th
        largest lower bound (estimate - radius): with probability given by ``eps`` it cannot
        be among the best k. Columns are compacted; missing entries are row -1.
        """
        radius = self.scan_radius(prepared, codes, rows, eps)
        valid = rows >= 0
        lower = np.where(valid, scores - radius, -np.inf)
        kk = min(k, lower.shape[1])
        kth = -np.partition(-lower, kk - 1, axis=1)[:, kk - 1]
        alive = valid & (scores + radius >= kth[:, None])
        width = max(int(alive.sum(axis=1).max()), k)
        order = np.argsort(~alive, axis=1, kind="stable")[:, :width]  # survivors first, in order
        rows = np.where(np.take_along_axis(alive, order, 1), np.take_along_axis(rows, order, 1), -1)
        scores = np.where(rows >= 0, np.take_along_axis(scores, order, 1), -np.inf)
        return rows, scores.astype(np.float32)

    def score_block(self, prepared: _Queries, codes: np.ndarray) -> np.ndarray:
        gathered = np.broadcast_to(codes, (len(prepared), *codes.shape))
        return self.score(prepared, gathered)

    def score(self, prepared: _Queries, codes: np.ndarray) -> np.ndarray:
        """Estimates for codes gathered as (nq, c, width): <u, Rq> with the float query, one
        byte-table lookup per code byte and plane."""
        f = self.factors(codes)
        if prepared.tables is None:
            nbytes = -(-self.dim // 8)
            padded = np.zeros((len(prepared), 8 * nbytes), np.float32)
            padded[:, : self.dim] = prepared.rotated
            prepared.tables = byte_tables(padded)
        sums = gathered_plane_sums(
            prepared.tables, codes, prepared.tables.shape[1], self.plane_bytes, self.bits
        )
        dots = sums @ (2.0 ** np.arange(self.bits, dtype=np.float32))
        est = f[..., 0] * (dots - self.half * prepared.sums[:, None])
        return (est + prepared.offsets[:, None]).astype(np.float32)
