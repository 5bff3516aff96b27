"""The funnel: a pipeline of transforms and stages, fitted, encoding, and searching.

The pipeline knows nothing about files: search reads first-stage codes and gathers shortlist
codes through a ``CodeSource`` the collection provides. Stages pass only row numbers and
scores along, so any codec can sit at any stage.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from slimvec.codecs import Codec, make_codec
from slimvec.kernels.topk import top_k
from slimvec.spec import AUTO, AUTO_CAP, Spec, StageSpec
from slimvec.transforms import TRANSFORMS, Matryoshka, Transform, normalise_rows

#: The code key under which the untransformed float32 vectors are kept.
ORIGINAL = "original"
#: Largest block of gathered shortlist codes a rescoring stage holds at once.
RESCORE_BYTES = 256 * 1024 * 1024
#: Resident bytes per row besides its first-stage code: the int64 id and the tombstone flag.
ROW_OVERHEAD_BYTES = 8 + 1


class CodeSource(Protocol):
    def resident(self, key: str) -> np.ndarray:
        """All rows of a first-stage code, held in RAM."""

    def gather(self, key: str, rows: np.ndarray) -> np.ndarray:
        """Code rows at the given (valid, flattened) row numbers."""


class ArrayCodes:
    """A ``CodeSource`` over codes held in plain arrays (advice and benchmarks, no files)."""

    def __init__(self, codes: dict[str, np.ndarray]):
        self.codes = codes

    def resident(self, key: str) -> np.ndarray:
        return self.codes[key]

    def gather(self, key: str, rows: np.ndarray) -> np.ndarray:
        return self.codes[key][rows]


class Pipeline:
    """Transforms then stages, as spelled by a ``Spec``, for ``dim``-dimensional input."""

    def __init__(self, spec: Spec, dim: int, metric: str, originals: bool = True):
        spec.check_dim(dim)
        self.spec = spec
        self.originals = originals
        self.dim = dim
        self.metric = metric
        self.transforms: list[Transform] = []
        for t in spec.transforms:
            transform = TRANSFORMS[t.kind](t.dim)
            if isinstance(transform, Matryoshka):
                transform.renormalise = metric == "cosine"
            self.transforms.append(transform)
        self.out_dim = spec.output_dim(dim)
        self.codecs: dict[str, Codec] = {}
        for stage in spec.stages:
            if self.code_key(stage) not in self.codecs:
                self.codecs[self.code_key(stage)] = make_codec(stage, stage.dims or self.out_dim)

    # -- structure ------------------------------------------------------------------------
    def code_key(self, stage: StageSpec) -> str:
        """Where a stage's codes live; full-dim float32 without transforms is the original."""
        if self.originals and stage.codec == "f32" and stage.dims is None and not self.transforms:
            return ORIGINAL
        return stage.code_key

    @property
    def stored_keys(self) -> list[str]:
        """Code keys that need files of their own (besides the originals)."""
        return [key for key in self.codecs if key != ORIGINAL]

    @property
    def first_key(self) -> str:
        return self.code_key(self.spec.stages[0])

    # -- building -------------------------------------------------------------------------
    def fit(self, x: np.ndarray) -> Pipeline:
        z = x
        for transform in self.transforms:
            z = transform.fit(z).transform(z)
        for stage in self.spec.stages:
            self.codecs[self.code_key(stage)].fit(self.stage_view(z, stage))
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        z = np.ascontiguousarray(x, dtype=np.float32)
        for transform in self.transforms:
            z = transform.transform(z)
        return z

    def stage_view(self, z: np.ndarray, stage: StageSpec) -> np.ndarray:
        """What ``stage``'s codec sees of transformed vectors ``z``: the first ``@D`` dims when
        the stage takes a prefix, re-normalised if every transform allows it."""
        if stage.dims is None or stage.dims == z.shape[1]:
            return z
        prefix = np.ascontiguousarray(z[:, : stage.dims])
        renormalise = self.metric == "cosine" and all(
            t.prefix_renormalises for t in self.transforms
        )
        return normalise_rows(prefix) if renormalise else prefix

    def encode(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Codes for every stored key, for vectors ``x`` (already validated/normalised)."""
        z = self.transform(x)
        out = {}
        for stage in self.spec.stages:
            key = self.code_key(stage)
            if key != ORIGINAL and key not in out:
                out[key] = self.codecs[key].encode(self.stage_view(z, stage))
        return out

    def state(self) -> dict[str, np.ndarray]:
        out = {}
        for i, transform in enumerate(self.transforms):
            out.update({f"transform{i}.{k}": v for k, v in transform.state().items()})
        for key, codec in self.codecs.items():
            out.update({f"codec.{key}.{k}": v for k, v in codec.state().items()})
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        for i, transform in enumerate(self.transforms):
            prefix = f"transform{i}."
            own = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            if own:
                transform.load_state(own)
        for key, codec in self.codecs.items():
            prefix = f"codec.{key}."
            own = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            if own:
                codec.load_state(own)

    def bytes_per_vector(self, key: str) -> int:
        if key == ORIGINAL:
            return 4 * self.dim
        return self.codecs[key].bytes_per_vector

    def ram_bytes_per_vector(self) -> int:
        """Resident bytes per stored vector: first-stage codes + ``ROW_OVERHEAD_BYTES`` (later
        stages and originals are memory-mapped and not counted). What ``Collection.info`` and
        ``slimvec advise`` report."""
        return self.bytes_per_vector(self.first_key) + ROW_OVERHEAD_BYTES

    # -- searching ------------------------------------------------------------------------
    def search(
        self, queries: np.ndarray, k: int, source: CodeSource, allow: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Row numbers and scores of the top ``k`` per query (row -1 where fewer exist)."""
        z = self.transform(queries)
        first = self.spec.stages[0]
        auto = first.keep == AUTO
        keep = k * (AUTO_CAP if auto else first.keep or 1)
        codec = self.codecs[self.first_key]
        prepared = codec.prepare(self._query_view(queries, z, first))
        # a collection's view may hand the scan its own layout (``View.scanned``)
        resident = getattr(source, "scanned", source.resident)(self.first_key)
        rows, scores = codec.scan(prepared, resident, keep, allow)
        if auto:
            rows, scores = codec.prune(prepared, resident, rows, scores, k)
        return self.refine(queries, z, rows, scores, k, source)

    def refine(
        self,
        queries: np.ndarray,
        z: np.ndarray,
        rows: np.ndarray,
        scores: np.ndarray,
        k: int,
        source: CodeSource,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The stages after the first, on a first pass's shortlist ``rows`` (``z``: the
        transformed queries). An IVF first pass (``index/ivf.py``) hands its shortlist here."""
        for stage in self.spec.stages[1:]:
            keep = k * (stage.keep or 1)
            rows, scores = self._rescore(queries, z, stage, rows, source, keep)
        return rows, scores

    def _query_view(self, queries: np.ndarray, z: np.ndarray, stage: StageSpec) -> np.ndarray:
        if self.code_key(stage) == ORIGINAL:
            return queries
        return self.stage_view(z, stage)

    def _rescore(self, queries, z, stage, rows, source, keep):
        key = self.code_key(stage)
        codec = self.codecs[key]
        view = self._query_view(queries, z, stage)
        valid = rows >= 0
        if key == ORIGINAL and hasattr(source, "dots"):  # float32 rows scored where they lie
            scores = source.dots(key, np.where(valid, rows, -1), view)
            if scores is not None:
                return top_k(scores, rows, keep)
        safe = np.where(valid, rows, 0)
        # Gather in blocks of queries so wide codes (e.g. 10,240-d MUVERA encodings) never
        # materialise a (queries x shortlist x width) array larger than RESCORE_BYTES.
        row_bytes = max(1, rows.shape[1] * self.bytes_per_vector(key))
        step = max(1, RESCORE_BYTES // row_bytes)
        scores = np.empty(rows.shape, np.float32)
        for lo in range(0, len(rows), step):
            hi = min(len(rows), lo + step)
            prepared = codec.prepare(view[lo:hi])
            codes = source.gather(key, safe[lo:hi].ravel()).reshape(hi - lo, rows.shape[1], -1)
            scores[lo:hi] = codec.score(prepared, codes)
        scores[~valid] = -np.inf
        return top_k(scores, rows, keep)
