"""Exact Chamfer / MaxSim scoring of query token sets against stored document token sets.

``maxsim(q, d) = sum over query tokens i of max over document tokens t of <q_i, d_t>``
(ColBERT's late interaction). Document tokens are stored concatenated in one code array with an
offsets array (CSR: document ``j`` owns rows ``offsets[j]:offsets[j + 1]``), in one of three
codes:

* ``float32`` — exact;
* ``float16`` — half the bytes; decoded in the kernel from the bit patterns (numba has no float16
  type on CPU), so scores equal float32 scoring of the rounded values;
* ``int8`` — a quarter of the bytes; ``uint8`` codes with a per-dimension range, exactly as
  :class:`slimvec.codecs.int8.Int8Codec` makes them (``value = low + step * code``, the
  arithmetic of :mod:`slimvec.kernels.int8`). The kernel
  never decodes: ``<q, low + step*c> = <q, low> + <q*step, c>``, so queries are pre-scaled once;
* ``res1``/``res2``/``res4`` — PLAID-style residual codes (:mod:`slimvec.kernels.residual`): a
  centroid id and B bits per dimension, ``2 + dim * B / 8`` bytes per token, decoded in the
  kernel as ``centroid + bucket value``;
* ``rq1``/``rq2``/``rq4`` — rotated residual codes with a per-token scale
  (:mod:`slimvec.kernels.rotres`): ``2 + dim * B / 8 + 2`` bytes per token, decoded as
  ``centroid + scale * level`` in the rotated space the queries are turned into;
* ``pqM`` — product-quantised residual codes (:mod:`slimvec.kernels.pqres`): a centroid id and
  one codeword byte per each of M subspaces of the rotated residual, ``2 + M`` bytes per token,
  decoded as ``centroid + codewords`` in the rotated space the queries are turned into.

The compiled kernel groups the (query, candidate) pairs of a batch by document and runs the
groups in parallel: each document is read from memory and decoded once into a small buffer, then
meets every query that lists it, in a register-blocked loop (4 query x 4 document tokens per
pass over the dims). Streaming each document once per *pair* instead made the kernel
memory-bound (about 3x slower on the Debian benchmark).
``maxsim_reference`` is a plain NumPy version for tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from slimvec.errors import InvalidInputError
from slimvec.kernels.int8 import dequantise, fit_range, quantise
from slimvec.kernels.pqres import CODEWORDS, PQResidualCodebook
from slimvec.kernels.readonly import readonly
from slimvec.kernels.residual import ResidualCodebook
from slimvec.kernels.rotres import RotatedResidualCodebook
from slimvec.spec import RESIDUAL_BITS

_F16_MAX = float(np.finfo(np.float16).max)
#: 2**112: moves a float16 exponent, shifted into float32 position, to float32's bias.
_REBIAS = np.float32(2.0**112)

CODE_KINDS = (
    "f32",
    "f16",
    "int8",
    *(f"res{b}" for b in RESIDUAL_BITS),
    *(f"rq{b}" for b in RESIDUAL_BITS),
)
#: Codebooks of the compressed token codes.
Codebook = ResidualCodebook | RotatedResidualCodebook | PQResidualCodebook
#: Prefix of product-quantised residual code kinds (``pq32``: 32 subspaces).
PQ_PREFIX = "pq"
#: Re-association (SIMD sums) without the no-inf/no-NaN assumptions: -inf marks "no token yet".
_FAST = {"reassoc", "contract"}


@dataclass
class TokenCodes:
    """Stored document token vectors in CSR layout, in one of ``CODE_KINDS``.

    ``codes``: (T, dim) float32, float16 or uint8, or (T, code width) uint8 residual codes;
    ``offsets``: (n_docs + 1,) int64; ``low``/``step``: (dim,) float32 int8 calibration;
    ``codebook``: the residual codes' centroids and buckets or codewords (``None`` for other
    codes). Arrays
    may be memory-mapped: the kernel only reads the rows of the candidates it scores.
    """

    codes: np.ndarray
    offsets: np.ndarray
    low: np.ndarray | None = None
    step: np.ndarray | None = None
    codebook: Codebook | None = None

    def __post_init__(self) -> None:
        # The kernel does not bounds-check: offsets must describe exactly the rows of codes.
        if self.codes.ndim != 2 or self.codes.dtype.name not in ("float32", "float16", "uint8"):
            raise InvalidInputError(
                f"token codes must be a 2-D float32, float16 or uint8 array, got "
                f"{self.codes.dtype} {self.codes.shape}"
            )
        off = np.asarray(self.offsets)
        if (
            off.ndim != 1
            or len(off) < 2
            or not np.issubdtype(off.dtype, np.integer)
            or off[0] != 0
            or off[-1] != len(self.codes)
            or (np.diff(off) < 1).any()
        ):
            raise InvalidInputError(
                f"offsets must be increasing integers from 0 to the {len(self.codes)} token rows "
                f"(every document with at least one token)"
            )
        self.offsets = np.ascontiguousarray(off, np.int64)
        int8 = self.low is not None and self.step is not None
        if (self.codes.dtype == np.uint8) != (int8 or self.codebook is not None):
            raise InvalidInputError(
                "uint8 token codes need low and step (int8) or a codebook (residual), floats "
                "neither"
            )
        if self.codebook is not None and self.codes.shape[1] != self.codebook.code_width:
            raise InvalidInputError(
                f"{self.kind} codes of {self.codebook.dim}-d tokens are "
                f"{self.codebook.code_width} bytes wide, got {self.codes.shape[1]}"
            )

    @property
    def kind(self) -> str:
        if isinstance(self.codebook, PQResidualCodebook):
            return f"{PQ_PREFIX}{self.codebook.subspaces}"
        if isinstance(self.codebook, RotatedResidualCodebook):
            return f"rq{self.codebook.bits}"
        if self.codebook is not None:
            return f"res{self.codebook.bits}"
        return {"float32": "f32", "float16": "f16", "uint8": "int8"}[self.codes.dtype.name]

    @property
    def dim(self) -> int:
        return self.codes.shape[1] if self.codebook is None else self.codebook.dim

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.offsets.nbytes)

    @classmethod
    def encode(
        cls,
        tokens: np.ndarray,
        offsets: np.ndarray,
        kind: str = "f16",
        low: np.ndarray | None = None,
        step: np.ndarray | None = None,
        codebook: Codebook | None = None,
    ) -> TokenCodes:
        """Encode float32 CSR tokens. For ``int8`` the per-dimension range is fitted on
        ``tokens`` unless ``low``/``step`` (from an earlier batch) are given; for ``resB``,
        ``rqB`` and ``pqM`` the codebook likewise."""
        offsets = np.ascontiguousarray(offsets, np.int64)
        if kind == "f32":
            return cls(np.ascontiguousarray(tokens, np.float32), offsets)
        if kind == "f16":
            if tokens.size and np.abs(tokens).max() > _F16_MAX:
                raise InvalidInputError(
                    f"token values beyond +-{_F16_MAX:g} overflow float16; normalise the tokens "
                    f"or store them as 'f32' or 'int8'"
                )
            return cls(np.ascontiguousarray(tokens, np.float16), offsets)
        if kind == "int8":
            if low is None or step is None:
                low, step = fit_range(tokens)
            else:
                low, step = np.asarray(low, np.float32), np.asarray(step, np.float32)
            return cls(quantise(tokens, low, step), offsets, low, step)
        if kind in CODE_KINDS[3:]:
            if codebook is None:
                book = ResidualCodebook if kind.startswith("res") else RotatedResidualCodebook
                codebook = book.fit(tokens, int(kind[-1]))
            return cls(codebook.encode(tokens), offsets, codebook=codebook)
        if is_code_kind(kind) and kind.startswith(PQ_PREFIX):
            if codebook is None:
                codebook = PQResidualCodebook.fit(tokens, int(kind[len(PQ_PREFIX) :]))
            return cls(codebook.encode(tokens), offsets, codebook=codebook)
        raise InvalidInputError(f"unknown token code {kind!r}; use one of {CODE_KINDS} or pqM")

    def decode(self, doc: int) -> np.ndarray:
        """float32 token vectors of one document (what the kernel scores against)."""
        return self._values(self.codes[self.offsets[doc] : self.offsets[doc + 1]])

    def gather(self, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """float32 CSR (tokens, offsets) of documents ``docs``, decoded in NumPy."""
        rows, offsets = token_rows(self.offsets, docs)
        return self._values(self.codes[rows]), offsets

    def _values(self, rows: np.ndarray) -> np.ndarray:
        if self.codebook is not None:
            return self.codebook.decode(rows)
        if self.kind == "int8":
            return dequantise(rows, self.low, self.step)
        return rows.astype(np.float32)


def token_rows(offsets: np.ndarray, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(token rows, offsets) of documents ``docs`` of CSR ``offsets``: where their tokens
    are, in order, and the offsets of those documents taken together."""
    docs = np.asarray(docs, np.int64)
    starts, counts = offsets[docs], offsets[docs + 1] - offsets[docs]
    gathered = np.zeros(len(docs) + 1, np.int64)
    np.cumsum(counts, out=gathered[1:])
    within = np.arange(gathered[-1]) - np.repeat(gathered[:-1], counts)
    return np.repeat(starts, counts) + within, gathered


def is_code_kind(kind: str) -> bool:
    """One of ``CODE_KINDS``, or ``pqM`` with M a positive integer."""
    digits = kind[len(PQ_PREFIX) :]
    return kind in CODE_KINDS or (
        kind.startswith(PQ_PREFIX) and digits.isdigit() and int(digits) > 0
    )


def maxsim(
    queries: np.ndarray,
    query_offsets: np.ndarray,
    docs: TokenCodes,
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """MaxSim of each query against its candidate documents.

    ``queries``/``query_offsets``: float32 CSR query tokens (``nq`` queries). ``candidates``:
    (nq, C) int64 document indices per query, ``-1`` for padding (scored ``-inf``); ``None``
    scores every document (brute force). Returns (nq, C) float32 (``C = n_docs`` if ``None``).
    """
    q = np.ascontiguousarray(queries, np.float32)
    q_off = np.ascontiguousarray(query_offsets, np.int64)
    nq = len(q_off) - 1
    if q.ndim != 2 or q.shape[1] != docs.dim:
        raise InvalidInputError(
            f"query tokens must be (n, {docs.dim}) like the stored tokens, got {q.shape}"
        )
    if (
        q_off.ndim != 1
        or nq < 1
        or q_off[0] != 0
        or q_off[-1] != len(q)
        or (np.diff(q_off) < 1).any()
    ):
        raise InvalidInputError(
            f"query_offsets must rise from 0 to the {len(q)} query token rows, every query "
            f"holding at least one token"
        )
    if candidates is None:
        # Brute force: every document for every query, already grouped by document.
        out = np.empty((nq, docs.n_docs), np.float32)
        pairs = np.arange(nq * docs.n_docs, dtype=np.int64).reshape(nq, docs.n_docs).T.ravel()
        starts = np.arange(0, len(pairs) + 1, max(nq, 1), dtype=np.int64)
        if nq and docs.n_docs:
            _run(q, q_off, docs, pairs, np.repeat(np.arange(docs.n_docs), nq), starts, out)
        return out
    cands = np.asarray(candidates)
    if cands.ndim == 1 and nq == 1:
        cands = cands[None, :]
    if cands.ndim != 2 or cands.shape[0] != nq or not np.issubdtype(cands.dtype, np.integer):
        raise InvalidInputError(
            f"candidates must be an integer array of shape ({nq}, C), got "
            f"{cands.dtype} {cands.shape}"
        )
    if cands.size and (cands.max() >= docs.n_docs or cands.min() < -1):
        raise InvalidInputError(
            f"candidates must be document indices in [0, {docs.n_docs}) or -1 (padding)"
        )
    out = np.full(cands.shape, -np.inf, np.float32)
    flat = cands.ravel().astype(np.int64)
    real = np.flatnonzero(flat >= 0)
    if len(real) == 0:
        return out
    # Group (query, candidate) pairs by document: each document is decoded once per call and
    # scored against every query that lists it while it is in cache (queries of a batch share
    # many candidates), instead of being streamed from memory once per pair.
    pairs = real[np.argsort(flat[real], kind="stable")]
    pair_docs = flat[pairs]
    starts = np.flatnonzero(np.r_[True, pair_docs[1:] != pair_docs[:-1], True])
    _run(q, q_off, docs, pairs, pair_docs, starts, out)
    return out


#: Stand-in residual tables for codes that have none (one array type for every code kind).
_NO_TABLE = np.zeros((1, 1), np.float32)


def _run(q, q_off, docs, pairs, pair_docs, starts, out) -> None:
    centroids, weights, bits, sub, scaled = _NO_TABLE, _NO_TABLE, 0, 0, False
    book = docs.codebook
    if isinstance(book, (PQResidualCodebook, RotatedResidualCodebook)):
        # scored in the rotated space: an orthonormal rotation keeps every inner product
        weighted, bias, codes = q @ book.rotation, np.zeros(len(q), np.float32), docs.codes
        centroids, weights = book.centroids, book.table
        if isinstance(book, PQResidualCodebook):
            sub = book.sub
        else:
            bits, scaled = book.bits, True
    elif docs.kind == "int8":
        weighted = q * docs.step
        bias = q @ docs.low  # <q_i, low>, added to each query token's best dot
        codes = docs.codes
    else:
        weighted, bias = q, np.zeros(len(q), np.float32)
        codes = docs.codes.view(np.uint16) if docs.kind == "f16" else docs.codes
        if docs.codebook is not None:
            book = docs.codebook
            centroids, weights, bits = book.centroids, book.weights, book.bits
    _maxsim(
        np.ascontiguousarray(weighted, np.float32),
        q_off,
        np.ascontiguousarray(bias, np.float32),
        readonly(codes),
        readonly(docs.offsets),
        readonly(centroids),
        readonly(weights),
        bits,
        sub,
        scaled,
        pairs,
        pair_docs,
        starts,
        out.shape[1],
        int(np.diff(docs.offsets).max()),
        min(len(starts) - 1, 4 * numba.get_num_threads()),  # parallel chunks of documents
        out.reshape(-1),
    )


def maxsim_reference(query: np.ndarray, doc_tokens: list[np.ndarray]) -> np.ndarray:
    """MaxSim of one query (m, dim) against each document's (n_j, dim) tokens, in NumPy."""
    q = np.asarray(query, np.float64)
    return np.array([(q @ np.asarray(d, np.float64).T).max(axis=1).sum() for d in doc_tokens])


@njit(cache=True, inline="always")
def _half(low, high):
    """float32 value of a finite, non-negative float16 from its two little-endian bytes."""
    pattern = np.int64(low) | (np.int64(high) << 8)
    exponent = (pattern >> 10) & 0x1F
    fraction = (pattern & 0x3FF) / 1024.0
    if exponent == 0:  # subnormal
        return np.float32(fraction * 2.0**-14)
    return np.float32((1.0 + fraction) * 2.0 ** (exponent - 15))


def _decode(codes, lo, n, buf, centroids, weights, bits, sub, scaled):
    """float32 values of token rows ``lo:lo + n`` into ``buf[:n]`` (specialised per code type;
    ``bits`` > 0: residual codes with their ``centroids`` and bucket ``weights`` per dim, or
    with ``scaled``, one row of levels times the float16 scale closing each code row;
    ``sub`` > 0: PQ residual codes, ``weights`` the codeword table of ``sub``-dim subspaces)."""


@overload(_decode, inline="always")
def _decode_impl(codes, lo, n, buf, centroids, weights, bits, sub, scaled):
    if codes.dtype == types.uint16:  # float16 bit patterns

        def f16(codes, lo, n, buf, centroids, weights, bits, sub, scaled):
            pattern = buf.view(np.uint32)
            dim = buf.shape[1]
            for t in range(n):
                for d in range(dim):
                    pattern[t, d] = np.uint32(codes[lo + t, d] & 0x7FFF) << 13
                for d in range(dim):
                    # Rebias the exponent (2**112 = 2**(127 - 15)); this also turns float16
                    # subnormals into the right float32 normals. Codes are finite by contract.
                    sign = np.float32(-_REBIAS) if codes[lo + t, d] & 0x8000 else _REBIAS
                    buf[t, d] *= sign

        return f16

    def cast(codes, lo, n, buf, centroids, weights, bits, sub, scaled):
        dim = buf.shape[1]
        if scaled:  # rotated residual: centroid id, packed level indices, float16 scale
            mask = (1 << bits) - 1
            width = codes.shape[1]
            for t in range(n):
                c = np.int64(codes[lo + t, 0]) | (np.int64(codes[lo + t, 1]) << 8)
                s = _half(codes[lo + t, width - 2], codes[lo + t, width - 1])
                for d in range(dim):
                    pos = d * bits
                    cell = (np.int64(codes[lo + t, 2 + (pos >> 3)]) >> (pos & 7)) & mask
                    buf[t, d] = centroids[c, d] + s * weights[0, cell]
            return
        if sub > 0:  # PQ residual: centroid id, then one codeword byte per subspace
            for t in range(n):
                c = np.int64(codes[lo + t, 0]) | (np.int64(codes[lo + t, 1]) << 8)
                for m in range(dim // sub):
                    word = m * CODEWORDS + np.int64(codes[lo + t, 2 + m])
                    for j in range(sub):
                        buf[t, m * sub + j] = centroids[c, m * sub + j] + weights[word, j]
            return
        if bits > 0:  # residual: centroid id (2 bytes, little-endian), packed buckets
            mask = (1 << bits) - 1
            for t in range(n):
                c = np.int64(codes[lo + t, 0]) | (np.int64(codes[lo + t, 1]) << 8)
                for d in range(dim):
                    pos = d * bits
                    bucket = (np.int64(codes[lo + t, 2 + (pos >> 3)]) >> (pos & 7)) & mask
                    buf[t, d] = centroids[c, d] + weights[d, bucket]
            return
        for t in range(n):
            for d in range(dim):
                buf[t, d] = np.float32(codes[lo + t, d])

    return cast


@njit(cache=True, inline="always", fastmath=_FAST)
def _meet(queries, q0, m, rows, n, best):
    """best[i] = max(best[i], max_t <queries[q0 + i], rows[t]>) for i < m, t < n.

    Register-blocked: 4 query tokens x 4 document tokens share each pass over the dims (16
    independent SIMD accumulators, 8 loads per 16 multiply-adds). Edge blocks repeat the last
    token (max is idempotent) instead of branching.
    """
    dim = rows.shape[1]
    for t in range(0, n, 4):
        t1 = min(t + 1, n - 1)
        t2 = min(t + 2, n - 1)
        t3 = min(t + 3, n - 1)
        for i in range(0, m, 4):
            i1 = min(i + 1, m - 1)
            i2 = min(i + 2, m - 1)
            i3 = min(i + 3, m - 1)
            a0 = a1 = a2 = a3 = np.float32(0.0)
            b0 = b1 = b2 = b3 = np.float32(0.0)
            c0 = c1 = c2 = c3 = np.float32(0.0)
            e0 = e1 = e2 = e3 = np.float32(0.0)
            for d in range(dim):
                x0 = rows[t, d]
                x1 = rows[t1, d]
                x2 = rows[t2, d]
                x3 = rows[t3, d]
                qa = queries[q0 + i, d]
                qb = queries[q0 + i1, d]
                qc = queries[q0 + i2, d]
                qe = queries[q0 + i3, d]
                a0 += qa * x0
                a1 += qa * x1
                a2 += qa * x2
                a3 += qa * x3
                b0 += qb * x0
                b1 += qb * x1
                b2 += qb * x2
                b3 += qb * x3
                c0 += qc * x0
                c1 += qc * x1
                c2 += qc * x2
                c3 += qc * x3
                e0 += qe * x0
                e1 += qe * x1
                e2 += qe * x2
                e3 += qe * x3
            best[i] = max(best[i], a0, a1, a2, a3)
            best[i1] = max(best[i1], b0, b1, b2, b3)
            best[i2] = max(best[i2], c0, c1, c2, c3)
            best[i3] = max(best[i3], e0, e1, e2, e3)


@njit(cache=True, parallel=True, nogil=True, fastmath=_FAST)
def _maxsim(
    queries,
    q_offsets,
    bias,
    codes,
    offsets,
    centroids,
    weights,
    bits,
    sub,
    scaled,
    pairs,
    pair_docs,
    starts,
    n_c,
    max_len,
    chunks,
    out,
):
    """out[p] = MaxSim(query p // n_c, document pair_docs[...]) for the flat pair indices
    ``pairs``, grouped by document (group g = pairs[starts[g]:starts[g + 1]]); groups run in
    parallel.

    A group's document is copied/decoded once into a per-thread float32 buffer (float16 codes
    arrive as uint16 bits; int8's affine part is folded into ``queries`` and ``bias``; residual
    and PQ codes are rebuilt from ``centroids`` and ``weights``), then meets each of its queries
    from L1/L2 cache.
    """
    groups = starts.shape[0] - 1
    dim = queries.shape[1]
    max_q = 0
    for i in range(q_offsets.shape[0] - 1):
        max_q = max(max_q, q_offsets[i + 1] - q_offsets[i])
    for chunk in prange(chunks):
        best = np.empty(max_q, np.float32)
        buf = np.empty((max_len, dim), np.float32)
        for g in range(chunk * groups // chunks, (chunk + 1) * groups // chunks):
            doc = pair_docs[starts[g]]
            lo = offsets[doc]
            n = offsets[doc + 1] - lo
            _decode(codes, lo, n, buf, centroids, weights, bits, sub, scaled)
            for p in range(starts[g], starts[g + 1]):
                pair = pairs[p]
                qi = pair // n_c
                q0 = q_offsets[qi]
                m = q_offsets[qi + 1] - q0
                best[:m] = -np.inf
                _meet(queries, q0, m, buf, n, best)
                total = np.float32(0.0)
                for i in range(m):
                    total += best[i] + bias[q0 + i]
                out[pair] = total
