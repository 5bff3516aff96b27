"""MUVERA Fixed Dimensional Encodings: a set of token vectors becomes one vector.

Dhulipala et al. (2024), "MUVERA: Multi-Vector Retrieval via Fixed Dimensional Encodings".
The inner product of a query FDE with a document FDE approximates the Chamfer (MaxSim)
similarity of the two token sets, so an ordinary single-vector index finds candidates that an
exact MaxSim stage then reranks.

Per repetition (``r_reps`` of them, concatenated):

1. SimHash: ``k_sim`` Gaussian hyperplanes cut space into ``2**k_sim`` buckets. A token's sign
   bits are read as a Gray code (hyperplane 0 is the most significant bit) and decoded to the
   bucket id, as in the reference implementation (google/graph-mining
   ``sketching/point_cloud/fixed_dimensional_encoding.cc``), so neighbouring ids differ in one
   hyperplane.
2. Each token is projected to ``d_proj`` dims by a dense random ±1 matrix scaled by
   ``1/sqrt(d_proj)`` (the paper's inner projection; it preserves inner products in
   expectation). ``d_proj=None`` keeps the token as is.
3. Per bucket, queries *sum* their projected tokens; documents *average* them, and a document
   bucket no token fell into is filled with the projected token whose sign bits are nearest to
   the bucket's in Hamming distance (first such token on ties; ``fill_empty``). Averaging makes
   each query token meet (roughly) its nearest document token rather than a sum of many, which is
   what MaxSim measures; filling keeps query tokens in otherwise empty buckets from scoring 0.

An optional Count-Sketch (one random ±1 target per coordinate) compresses the
``r_reps * 2**k_sim * d_proj`` dims to ``final_dim``.

All random matrices come from ``seed``; ``params()`` (JSON) plus ``state()`` (arrays) restore an
encoder exactly. Encoding is batched: every token of a batch goes through one matrix product, and
a compiled kernel aggregates buckets per document in parallel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numba import njit, prange

from slimvec.errors import InvalidInputError
from slimvec.transforms.base import Transform
from slimvec.validation import check_int

#: Largest uncompressed FDE accepted (before any final Count-Sketch).
MAX_RAW_DIM = 1 << 22
#: Tokens projected per matrix product; bounds the scratch memory of one encode call.
CHUNK_TOKENS = 32_768


def pack_token_sets(
    token_sets: Any, dim: int, what: str = "documents"
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a list of (n_i, dim) token matrices and concatenate them (CSR layout).

    Returns ``(tokens, offsets)``: float32 ``(sum n_i, dim)`` and int64 ``(len + 1,)``, set ``i``
    owning rows ``offsets[i]:offsets[i + 1]``. Ragged sets are the point; an empty list, a set
    with no tokens, a wrong dim, non-2-D entries or NaN/inf raise ``InvalidInputError``.
    """
    return pack_checked(check_token_sets(token_sets, dim, what), what)


def check_token_sets(token_sets: Any, dim: int, what: str = "documents") -> list[np.ndarray]:
    """The token matrices of ``token_sets``, their structure checked as ``pack_token_sets``
    checks it but not their values, and nothing copied: an add reads and checks the values a
    block of sets at a time (``pack_checked``)."""
    if isinstance(token_sets, np.ndarray) and token_sets.ndim == 2:
        raise InvalidInputError(
            f"{what} must be a list of (n_tokens, {dim}) matrices, one per item; got a single "
            f"2-D array of shape {token_sets.shape}: wrap it as [matrix]"
        )
    if isinstance(token_sets, (str, bytes)) or not isinstance(token_sets, (Sequence, np.ndarray)):
        raise InvalidInputError(
            f"{what} must be a list of (n_tokens, {dim}) float matrices, got "
            f"{type(token_sets).__name__}"
        )
    if len(token_sets) == 0:
        raise InvalidInputError(f"{what} is empty: pass at least one token matrix")
    mats = []
    for i, item in enumerate(token_sets):
        try:
            mat = np.asarray(item)
        except (ValueError, TypeError) as exc:
            raise InvalidInputError(
                f"{what}[{i}] must be a (n_tokens, {dim}) float matrix; could not read it ({exc})"
            ) from exc
        if not (np.issubdtype(mat.dtype, np.floating) or np.issubdtype(mat.dtype, np.integer)):
            raise InvalidInputError(
                f"{what}[{i}] must hold real numbers, got dtype {mat.dtype} (ragged rows give "
                f"dtype object; every token needs exactly {dim} numbers)"
            )
        if mat.ndim != 2:
            raise InvalidInputError(
                f"{what}[{i}] must be 2-D (n_tokens, {dim}), got shape {mat.shape}"
                + ("; for one token use x.reshape(1, -1)" if mat.ndim == 1 else "")
            )
        if mat.shape[0] == 0:
            raise InvalidInputError(
                f"{what}[{i}] has zero tokens; every item needs at least one token vector "
                f"(drop empty texts before encoding)"
            )
        if mat.shape[1] != dim:
            raise InvalidInputError(
                f"{what}[{i}] has {mat.shape[1]}-dim token vectors but {dim} are expected; use "
                f"the same embedding model the encoder was built for"
            )
        mats.append(mat)
    return mats


def pack_checked(
    mats: Sequence[np.ndarray], what: str = "documents", numbers: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``(tokens, offsets)`` of matrices ``check_token_sets`` passed, NaN and infinite
    values refused naming their sets (``numbers``: the sets' numbers in the caller's list, if
    not 0, 1, ...: a block of an add)."""
    lengths = np.fromiter((len(m) for m in mats), np.int64, len(mats))
    offsets = np.zeros(len(mats) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.concatenate(mats, axis=0, dtype=np.float32) if len(mats) > 1 else mats[0]
    tokens = np.ascontiguousarray(tokens, dtype=np.float32)
    finite = np.isfinite(tokens).all(axis=1)
    if not finite.all():
        bad = owning_sets(np.flatnonzero(~finite), offsets, numbers)
        raise InvalidInputError(
            f"{what} {bad[:10].tolist()}{' ...' if len(bad) > 10 else ''} contain NaN or "
            f"infinite token values; fix or drop them"
        )
    return tokens, offsets


def owning_sets(
    token_rows: np.ndarray, offsets: np.ndarray, numbers: np.ndarray | None = None
) -> np.ndarray:
    """The sets (CSR ``offsets``) owning tokens ``token_rows``, each once, by their numbers in
    the caller's list (``numbers``, if not 0, 1, ...): what an error about tokens names."""
    sets = np.unique(np.searchsorted(offsets, token_rows, side="right") - 1)
    return sets if numbers is None else numbers[sets]


def check_packed(tokens: np.ndarray, offsets: np.ndarray, dim: int) -> None:
    """Cheap structural check of CSR token sets (shapes and offsets, not values)."""
    if tokens.ndim != 2 or tokens.shape[1] != dim:
        raise InvalidInputError(f"tokens must be (n_tokens, {dim}), got shape {tokens.shape}")
    if (
        offsets.ndim != 1
        or len(offsets) < 2
        or offsets[0] != 0
        or offsets[-1] != len(tokens)
        or (np.diff(offsets) < 1).any()
    ):
        raise InvalidInputError(
            f"offsets must rise from 0 to the {len(tokens)} token rows, every set holding at "
            f"least one token (as pack_token_sets returns them)"
        )


class FDE(Transform):
    """MUVERA encoder: ``encode_documents`` / ``encode_queries`` map token sets to vectors.

    Unlike other transforms it is asymmetric (documents average, queries sum) and takes token
    sets, not vectors, so ``transform`` is not used; call the two encoders. ``dim`` is the token
    dimension (the input), ``out_dim`` the FDE dimension.
    """

    kind = "fde"
    prefix_renormalises = False

    def __init__(
        self,
        dim: int,
        k_sim: int = 5,
        d_proj: int | None = 16,
        r_reps: int = 20,
        final_dim: int | None = None,
        seed: int = 0,
        fill_empty: bool = True,
    ):
        dim = check_int(dim, "FDE dim", 1)
        super().__init__(dim)
        self.k_sim = check_int(k_sim, "FDE k_sim", 0, 16)
        self.d_proj = None if d_proj is None else check_int(d_proj, "FDE d_proj", 1, dim)
        self.r_reps = check_int(r_reps, "FDE r_reps", 1)
        self.seed = check_int(seed, "FDE seed", 0)
        if not isinstance(fill_empty, (bool, np.bool_)):
            raise InvalidInputError(f"FDE fill_empty must be True or False, got {fill_empty!r}")
        self.fill_empty = bool(fill_empty)
        if self.raw_dim > MAX_RAW_DIM:
            raise InvalidInputError(
                f"FDE of r_reps * 2**k_sim * d_proj = {self.raw_dim} dims is too large (max "
                f"{MAX_RAW_DIM}); lower k_sim, d_proj or r_reps"
            )
        self.final_dim = (
            None if final_dim is None else check_int(final_dim, "FDE final_dim", 1, self.raw_dim)
        )
        self._draw()

    # -- parameters and persistence -------------------------------------------------------
    @property
    def proj_dim(self) -> int:
        """Dims per bucket: ``d_proj``, or the token dim when there is no inner projection."""
        return self.dim if self.d_proj is None else self.d_proj

    @property
    def raw_dim(self) -> int:
        """Dims before the optional Count-Sketch: ``r_reps * 2**k_sim * proj_dim``."""
        return self.r_reps * (1 << self.k_sim) * self.proj_dim

    @property
    def out_dim(self) -> int:
        return self.raw_dim if self.final_dim is None else self.final_dim

    def params(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments: ``FDE(**fde.params())`` rebuilds it."""
        return {
            "dim": self.dim,
            "k_sim": self.k_sim,
            "d_proj": self.d_proj,
            "r_reps": self.r_reps,
            "final_dim": self.final_dim,
            "seed": self.seed,
            "fill_empty": self.fill_empty,
        }

    @classmethod
    def from_params(cls, params: dict[str, Any], state: dict[str, np.ndarray] | None = None) -> FDE:
        """Rebuild from ``params()`` and, if given, the stored ``state()`` arrays."""
        fde = cls(**params)
        if state is not None:
            fde.load_state(state)
        return fde

    def _draw(self) -> None:
        rng = np.random.default_rng(self.seed)
        reps, k, p = self.r_reps, self.k_sim, self.proj_dim
        self.simhash = rng.standard_normal((self.dim, reps * k), dtype=np.float32)
        if self.d_proj is None:
            self.projection = np.zeros((self.dim, 0), np.float32)
        else:
            signs = rng.integers(0, 2, (self.dim, reps * p), dtype=np.int8) * 2 - 1
            self.projection = (signs / np.sqrt(p)).astype(np.float32)
        if self.final_dim is None:
            self.sketch_index = np.zeros(0, np.int64)
            self.sketch_sign = np.zeros(0, np.float32)
        else:
            self.sketch_index = rng.integers(0, self.final_dim, self.raw_dim, dtype=np.int64)
            self.sketch_sign = (rng.integers(0, 2, self.raw_dim) * 2 - 1).astype(np.float32)

    def state(self) -> dict[str, np.ndarray]:
        """The random matrices, so a restore is exact even if NumPy's generators change."""
        return {
            "simhash": self.simhash,
            "projection": self.projection,
            "sketch_index": self.sketch_index,
            "sketch_sign": self.sketch_sign,
        }

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        expected = {k: v.shape for k, v in self.state().items()}
        for key, shape in expected.items():
            if key not in state or np.shape(state[key]) != shape:
                got = np.shape(state[key]) if key in state else "missing"
                raise InvalidInputError(
                    f"FDE state {key!r} should have shape {shape} for params {self.params()}, "
                    f"got {got}; the state belongs to another FDE configuration"
                )
        self.simhash = np.ascontiguousarray(state["simhash"], np.float32)
        self.projection = np.ascontiguousarray(state["projection"], np.float32)
        self.sketch_index = np.ascontiguousarray(state["sketch_index"], np.int64)
        self.sketch_sign = np.ascontiguousarray(state["sketch_sign"], np.float32)

    # -- encoding ---------------------------------------------------------------------------
    def transform(self, x: np.ndarray) -> np.ndarray:
        raise TypeError(
            "FDE encodes token sets asymmetrically: use encode_documents(...) for stored items "
            "and encode_queries(...) for queries"
        )

    def encode_documents(self, token_sets: Any) -> np.ndarray:
        """``(n, out_dim)`` float32 FDEs of documents (bucket averages, empty buckets filled)."""
        tokens, offsets = pack_token_sets(token_sets, self.dim, "documents")
        return self.encode_packed(tokens, offsets, query=False)

    def encode_queries(self, token_sets: Any) -> np.ndarray:
        """``(n, out_dim)`` float32 FDEs of queries (bucket sums)."""
        tokens, offsets = pack_token_sets(token_sets, self.dim, "queries")
        return self.encode_packed(tokens, offsets, query=True)

    def encode_packed(self, tokens: np.ndarray, offsets: np.ndarray, query: bool) -> np.ndarray:
        """Encode CSR token sets as ``pack_token_sets`` returns them (values not re-checked)."""
        offsets = np.asarray(offsets, np.int64)
        check_packed(tokens, offsets, self.dim)
        n = len(offsets) - 1
        out = np.empty((n, self.out_dim), np.float32)
        weights = np.concatenate([self.simhash, self.projection], axis=1)
        sketch = self.final_dim is not None
        start = 0
        while start < n:
            # Documents whose tokens fit one chunk (always at least one document).
            limit = offsets[start] + CHUNK_TOKENS
            stop = max(start + 1, int(np.searchsorted(offsets, limit, side="right")) - 1)
            stop = min(stop, n)
            lo, hi = offsets[start], offsets[stop]
            x = np.ascontiguousarray(tokens[lo:hi], dtype=np.float32)
            mixed = x @ weights
            signs = np.ascontiguousarray(mixed[:, : self.simhash.shape[1]])
            if self.d_proj is None:
                proj, stride = x, 0
            else:
                proj, stride = np.ascontiguousarray(mixed[:, self.simhash.shape[1] :]), self.d_proj
            _aggregate(
                signs,
                proj,
                offsets[start : stop + 1] - lo,
                self.k_sim,
                self.r_reps,
                self.proj_dim,
                stride,
                not query,
                self.fill_empty and not query,
                sketch,
                self.sketch_index,
                self.sketch_sign,
                out[start:stop],
            )
            start = stop
        return out


@njit(cache=True, inline="always")
def _popcount(x: int) -> int:
    count = 0
    while x:
        x &= x - 1
        count += 1
    return count


@njit(cache=True, parallel=True, nogil=True)
def _aggregate(
    signs, proj, offsets, k_sim, r_reps, p, stride, average, fill, sketch, s_index, s_sign, out
):
    """FDE rows of documents ``offsets[i]:offsets[i+1]`` from their hyperplane dot products
    ``signs`` (tokens x r_reps*k_sim) and projected tokens ``proj`` (tokens x r_reps*stride,
    stride 0 = the same columns for every repetition). One document per parallel task."""
    n = offsets.shape[0] - 1
    buckets = 1 << k_sim
    raw_dim = r_reps * buckets * p
    for d in prange(n):
        lo = offsets[d]
        hi = offsets[d + 1]
        row = np.zeros(raw_dim, np.float32)
        counts = np.zeros(buckets, np.int64)
        bits = np.zeros(hi - lo, np.int64)
        for r in range(r_reps):
            counts[:] = 0
            base = r * buckets * p
            col = r * stride
            for t in range(lo, hi):
                code = 0  # sign bits, hyperplane 0 most significant
                bucket = 0  # the same bits read as a Gray code (AppendToGrayCode)
                for j in range(k_sim):
                    bit = 1 if signs[t, r * k_sim + j] > 0 else 0
                    code = (code << 1) | bit
                    bucket = (bucket << 1) + (bit ^ (bucket & 1))
                bits[t - lo] = code
                counts[bucket] += 1
                at = base + bucket * p
                for c in range(p):
                    row[at + c] += proj[t, col + c]
            if not average:
                continue
            for b in range(buckets):
                at = base + b * p
                if counts[b] > 0:
                    scale = np.float32(1.0) / np.float32(counts[b])
                    for c in range(p):
                        row[at + c] *= scale
                elif fill and k_sim > 0:
                    pattern = b ^ (b >> 1)  # the sign bits that decode to bucket b
                    best = 0
                    best_dist = k_sim + 1
                    for t in range(hi - lo):
                        dist = _popcount(bits[t] ^ pattern)
                        if dist < best_dist:
                            best_dist = dist
                            best = t
                    for c in range(p):
                        row[at + c] = proj[lo + best, col + c]
        if sketch:
            out[d, :] = 0
            for i in range(raw_dim):
                out[d, s_index[i]] += s_sign[i] * row[i]
        else:
            out[d, :] = row
