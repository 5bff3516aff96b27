"""The row format of a multi-vector collection (see :mod:`slimvec.engine.rows`).

A row is a token set: pooled (optional), turned into one Fixed Dimensional Encoding whose
inner product approximates Chamfer similarity, and the FDE goes through the same funnel as
single-vector rows (any codecs, any oversampling). The spec's last stage, ``maxsim``, rescores
the final shortlist exactly over the stored token vectors (float16 or int8, memory-mapped,
compiled kernel). Exact search is brute-force MaxSim over every item.

Segment files: ``tokens.npy`` (all tokens of the segment, CSR), ``token_offsets.npy``
(rows + 1) and the FDE codes; no float32 FDE "originals" are kept (they would be 40 KB/item).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from slimvec.engine.rows import Layout, RowFormat
from slimvec.errors import SpecError
from slimvec.kernels.maxsim import CODE_KINDS, TokenCodes, maxsim
from slimvec.kernels.topk import pad_results, select_top
from slimvec.multivector.pooling import TokenPooler
from slimvec.multivector.rerank import SegmentedTokens, rerank
from slimvec.search.funnel import Pipeline
from slimvec.spec import parse_spec
from slimvec.store.manifest import Manifest
from slimvec.transforms.fde import FDE, pack_token_sets
from slimvec.validation import normalise

TOKENS = "tokens"
OFFSETS = "token_offsets"
#: int8 FDE first pass, exact MaxSim over 30k candidates. Measured on the Debian set with
#: MiniLM tokens: an int8 or f16 FDE pass keeps f32's recall, 1-bit Hamming over FDEs does
#: not (0.44 of exact MaxSim's top-10), so binary is not the default here.
DEFAULT_SPEC = "int8*30 > maxsim"


@dataclass
class TokenQueries:
    tokens: np.ndarray  # (T, dim) float32, CSR
    offsets: np.ndarray  # (nq + 1,)
    fde: np.ndarray  # (nq, fde_dim)

    def __len__(self) -> int:
        return len(self.offsets) - 1


class TokenRows(RowFormat):
    """Token sets: MUVERA encodings for the funnel, stored tokens for exact MaxSim."""

    #: Token sets are stored as segments (the log holds single vectors), and the FDE codes'
    #: calibration stays the first batch's (refitting would re-encode every token set).
    logs_adds = False
    plans_exact = False
    refits = False

    def __init__(self, manifest: Manifest):
        self.dim, self.metric = manifest.dim, manifest.metric
        self.fde, self.pooler, self.token_code, self.pipeline = self._build(manifest)
        self.token_calibration: dict[str, np.ndarray] = {}

    @classmethod
    def check(cls, manifest: Manifest) -> Pipeline:
        return cls._build(manifest)[3]

    @staticmethod
    def _build(manifest: Manifest) -> tuple[FDE, TokenPooler, str, Pipeline]:
        spec = parse_spec(manifest.spec)
        if spec.ivf is not None:
            raise SpecError(
                f"{manifest.spec!r}: 'ivf:N' partitions single-vector collections only; drop it"
            )
        if not spec.reranks_tokens:
            raise SpecError(
                f"{manifest.spec!r}: a multi-vector spec ends with the exact 'maxsim' stage, "
                f"e.g. {DEFAULT_SPEC!r}"
            )
        config = manifest.extra["multivector"]
        fde = FDE(**config["fde"])
        if fde.dim != manifest.dim:
            raise SpecError(f"FDE token dim {fde.dim} differs from the collection's {manifest.dim}")
        if config["token_code"] not in CODE_KINDS:
            raise SpecError(f"unknown token code {config['token_code']!r}")
        pipeline = Pipeline(spec.vector_stages(), fde.out_dim, "ip", originals=False)
        return fde, TokenPooler(config["pool_factor"]), config["token_code"], pipeline

    # -- storing ----------------------------------------------------------------------------
    def layout(self, rows: int) -> Layout:
        token_dtype = np.dtype(np.float16 if self.token_code == "f16" else np.uint8)
        layout = {
            "ids": (np.dtype(np.int64), (rows,)),
            TOKENS: (token_dtype, (None, self.dim)),
            OFFSETS: (np.dtype(np.int64), (rows + 1,)),
        }
        for key in self.pipeline.stored_keys:
            codec = self.pipeline.codecs[key]
            layout[key] = (codec.code_dtype, (rows, codec.code_width))
        return layout

    def _tokens_in(self, token_sets: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
        tokens, offsets = pack_token_sets(token_sets, self.dim, what)
        if self.metric == "cosine":
            tokens = normalise(tokens, f"{what} token vectors")
        return tokens, offsets

    def ingest(self, token_sets: Any) -> tuple[np.ndarray, Any]:
        tokens, offsets = self.pooler.transform(*self._tokens_in(token_sets, "documents"))
        return self.fde.encode_packed(tokens, offsets, query=False), (tokens, offsets)

    def fit(self, x: np.ndarray, extra: Any) -> None:
        self.pipeline.fit(x)
        if self.token_code == "int8":
            codes = TokenCodes.encode(*extra, kind="int8")
            self.token_calibration = {"low": codes.low, "step": codes.step}

    def state(self) -> dict[str, np.ndarray]:
        state = self.pipeline.state()
        state.update({f"tokens.{k}": v for k, v in self.token_calibration.items()})
        state.update({f"fde.{k}": v for k, v in self.fde.state().items()})
        return state

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.pipeline.load_state(state)
        self.token_calibration = {
            k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("tokens.")
        }
        fde_state = {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("fde.")}
        if fde_state:
            self.fde.load_state(fde_state)

    def row_arrays(self, x: np.ndarray, extra: Any) -> dict[str, np.ndarray]:
        tokens, offsets = extra
        codes = TokenCodes.encode(
            tokens,
            offsets,
            kind=self.token_code,
            low=self.token_calibration.get("low"),
            step=self.token_calibration.get("step"),
        )
        return {TOKENS: codes.codes, OFFSETS: offsets}

    def compact_arrays(self, view: Any, live: np.ndarray) -> dict[str, np.ndarray]:
        arrays = {
            key: view.gather(key, live) for key in self.layout(0) if key not in (TOKENS, OFFSETS)
        }
        token_parts, lengths = [], []
        seg = np.searchsorted(view.starts, live, side="right") - 1
        for s, (entry, stored) in enumerate(view.segments):
            local = live[seg == s] - entry.start
            offsets = np.asarray(stored[OFFSETS])
            starts, counts = offsets[local], offsets[local + 1] - offsets[local]
            within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            token_parts.append(np.asarray(stored[TOKENS])[np.repeat(starts, counts) + within])
            lengths.append(counts)
        counts = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
        offsets = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        dtype, shape = self.layout(0)[TOKENS]
        arrays[TOKENS] = (
            np.concatenate(token_parts) if token_parts else np.empty((0, shape[1]), dtype)
        )
        arrays[OFFSETS] = offsets
        return arrays

    # -- searching --------------------------------------------------------------------------
    def queries_in(self, queries: Any) -> TokenQueries:
        tokens, offsets = self._tokens_in(queries, "queries")
        return TokenQueries(tokens, offsets, self.fde.encode_packed(tokens, offsets, query=True))

    def _segment_tokens(self, view: Any, index: int) -> TokenCodes:
        _, arrays = view.segments[index]
        return TokenCodes(
            arrays[TOKENS],
            np.asarray(arrays[OFFSETS]),
            self.token_calibration.get("low"),
            self.token_calibration.get("step"),
        )

    def approximate(self, view: Any, q: TokenQueries, k: int, allow: np.ndarray | None):
        rows, _ = self.pipeline.search(q.fde, k, view, allow)
        return self._rerank(view, q, rows, k)

    def _rerank(self, view: Any, q: TokenQueries, rows: np.ndarray, k: int):
        """Exact MaxSim of each query against its candidate rows, keeping the best ``k``."""
        segments = SegmentedTokens(view.starts, lambda i: self._segment_tokens(view, i))
        return rerank(q.tokens, q.offsets, segments, rows, k)

    def score_rows(self, view: Any, q: TokenQueries, k: int, rows: np.ndarray):
        """Exact MaxSim of every query against the same candidate ``rows`` (a filter's)."""
        return self._rerank(view, q, np.broadcast_to(rows, (len(q), len(rows))), k)

    def stored_tokens(self, view: Any) -> int:
        return sum(len(arrays[TOKENS]) for _, arrays in view.segments)

    def first_bytes_ratio(self, view: Any) -> float:
        per_item = max(self.stored_tokens(view) / max(view.manifest.rows, 1), 1.0)
        token_bytes = 2 if self.token_code == "f16" else 1
        first = self.pipeline.bytes_per_vector(self.pipeline.first_key)
        return first / (per_item * self.dim * token_bytes)

    def exact(self, view: Any, q: TokenQueries, k: int, allow: np.ndarray | None):
        """Brute-force MaxSim over every live item (for checking the funnel)."""
        parts_rows, parts_scores = [], []
        for s, (entry, _) in enumerate(view.segments):
            scores = maxsim(q.tokens, q.offsets, self._segment_tokens(view, s))
            if allow is not None:
                scores[:, ~allow[entry.start : entry.start + entry.rows]] = -np.inf
            cols, best = select_top(scores, k)
            parts_rows.append(cols + entry.start)
            parts_scores.append(best)
        cols, scores = select_top(np.concatenate(parts_scores, axis=1), k)
        rows = np.take_along_axis(np.concatenate(parts_rows, axis=1), cols, axis=1)
        return pad_results(rows, scores, k)
