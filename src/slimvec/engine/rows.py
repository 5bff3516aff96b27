"""What a row is: the one object that knows how a collection's rows are taken in, stored,
fitted and scored exactly.

A view (:mod:`slimvec.engine.view`) holds one :class:`RowFormat` per loaded commit, built from
its manifest: the pipeline (transforms and codecs with their fitted calibrations) and the
stored layout of a segment. The writer asks it to validate and fit new rows and to lay them out
as segment arrays; the searcher asks it for the approximate and exact plans. A single-vector
row is one float32 vector kept as its original plus the pipeline's codes; a multi-vector
collection plugs in its own format (token sets, MUVERA encodings, exact MaxSim) by
subclassing this one (``slimvec.multivector.rows``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from slimvec.engine.incoming import Incoming, Stored, fit_sample
from slimvec.errors import SpecError
from slimvec.index.sizing import require_faiss
from slimvec.kernels.topk import blocked_top, select_top
from slimvec.search.funnel import ORIGINAL, Pipeline
from slimvec.spec import AUTO_LISTS, parse_spec
from slimvec.store.files import RowFile
from slimvec.store.manifest import Manifest, SegmentEntry
from slimvec.store.segments import SEGMENTS_DIR, open_segment
from slimvec.validation import as_array, as_matrix, normalise

Layout = dict[str, tuple[np.dtype, tuple[int | None, ...]]]

#: Segment files holding the first stage's RaBitQ codes again, in the 32-row interleaved layout
#: of the 4-bit table scan (``kernels.flatscan``): the bit planes, then F and L per row.
TABLE_FILES = ("fastscan", "fastscan-factors")


class RowFormat:
    """Single-vector rows: the original float32 vector and one code per pipeline stage."""

    #: Whether small adds go to the write-ahead log (multi-vector adds always make segments).
    logs_adds: ClassVar[bool] = True
    #: Whether the planner may answer with exact float32 search where it costs less than the
    #: funnel (multi-vector exact search is MaxSim over every token: never cheaper).
    plans_exact: ClassVar[bool] = True
    #: Whether the writer may refit calibrations as the collection grows (multi-vector
    #: collections cannot re-derive their pipeline input from stored arrays cheaply).
    refits: ClassVar[bool] = True

    def __init__(self, manifest: Manifest):
        self.dim, self.metric = manifest.dim, manifest.metric
        self.pipeline = self.check(manifest)
        self.partitioned = bool(manifest.extra.get("ivf"))  # IVF lists trained

    @classmethod
    def check(cls, manifest: Manifest) -> Pipeline:
        """The manifest's pipeline, or a clear error if its spec cannot work (``create``
        calls this before anything is written)."""
        spec = parse_spec(manifest.spec)
        if spec.reranks_tokens:
            raise SpecError(
                f"{manifest.spec!r}: 'maxsim' reranks token vectors and needs a multi-vector "
                f"collection: slimvec.create(path, dim, multivector=True, spec=...)"
            )
        if spec.ivf is not None:
            require_faiss()
        return Pipeline(spec, manifest.dim, manifest.metric)

    # -- storing ----------------------------------------------------------------------------
    def layout(self, rows: int, sizes: np.ndarray | None = None) -> Layout:
        """dtype and shape of every array a segment of ``rows`` rows holds (``sizes``: the
        stored tokens of each row of token sets; single-vector rows have none)."""
        layout = {
            "ids": (np.dtype(np.int64), (rows,)),
            ORIGINAL: (np.dtype(np.float32), (rows, self.dim)),
        }
        for key in self.pipeline.stored_keys:
            codec = self.pipeline.codecs[key]
            layout[key] = (codec.code_dtype, (rows, codec.code_width))
        return layout

    def ingest(self, vectors: Any) -> np.ndarray:
        """Validate user input; return the pipeline's input vectors (an upsert's)."""
        x = as_matrix(vectors, self.dim)
        return normalise(x) if self.metric == "cosine" else x

    def stream(self, vectors: Any) -> Incoming:
        """``ingest`` for an add: the input's shape checked now, its values block by block
        as the writer reads them (``Incoming``), so it is never copied whole."""
        return Incoming(as_array(vectors, self.dim), self.metric == "cosine")

    def fit(self, x: np.ndarray, extra: Any) -> None:
        self.pipeline.fit(x)

    def fit_first(self, x: Incoming, seed: int) -> None:
        """Fit on an add's rows (a seeded sample past ``fit_rows``: ``fit_sample``)."""
        self.fit(fit_sample(x, self.dim, seed), None)

    def encode_block(self, x: Incoming, lo: int, hi: int) -> dict[str, np.ndarray]:
        """The stored arrays of an add's rows ``lo:hi`` besides ids: originals and codes."""
        rows = x.rows(lo, hi)
        return {ORIGINAL: rows, **self.pipeline.encode(rows)}

    def state(self) -> dict[str, np.ndarray]:
        return self.pipeline.state()

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.pipeline.load_state(state)

    def pipeline_input(
        self, path: Path, entry: SegmentEntry, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """The pipeline's input vectors of a stored segment's ``rows`` (all if None; sliced
        in blocks by the caller): what IVF lists are trained on and built from. Read through
        a ``RowFile``, so building the lists of a large segment keeps no pages resident."""
        layout = {ORIGINAL: (np.dtype(np.float32), (entry.rows, self.dim))}
        open_segment(path, entry.name, layout)  # checks dtype and shape
        x = RowFile(path / SEGMENTS_DIR / entry.name / f"{ORIGINAL}.npy")
        return x if rows is None else x[rows]

    @property
    def table_scan(self) -> bool:
        """Whether segments also store their first-stage codes for the flat table scan: a
        RaBitQ first stage whose queries the tables take, scanned flat. ``ivf:N`` keeps its
        codes in its own lists; ``ivf:auto`` writes the tables while it is flat (they serve
        its searches, and stay with the segments written then), not once its lists are
        trained. Should a refit leave too few rows to train, it is flat again, and
        ``Writer.add_tables`` gives the segments lacking them their tables."""
        codec = self.pipeline.codecs[self.pipeline.first_key]
        ivf = self.pipeline.spec.ivf
        flat = ivf is None or (ivf == AUTO_LISTS and not self.partitioned)
        return flat and getattr(codec, "table_scan", False)

    def table_arrays(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The ``TABLE_FILES`` arrays of a segment holding ``arrays`` (none if not
        ``table_scan``): written with it, before the commit that names it."""
        if not self.table_scan:
            return {}
        codec = self.pipeline.codecs[self.pipeline.first_key]
        return dict(zip(TABLE_FILES, codec.table_layout(arrays[self.pipeline.first_key])))

    def table_layout(self, rows: int) -> Layout:
        """dtype and shape of the ``TABLE_FILES`` of a segment of ``rows`` rows."""
        codec = self.pipeline.codecs[self.pipeline.first_key]
        blocks = -(-rows // 32)
        docs, factors = TABLE_FILES
        return {
            docs: (np.dtype(np.uint8), (blocks * 32 * codec.factor_start,)),
            factors: (np.dtype(np.float32), (blocks, 2, 32)),
        }

    def stored(self, view: Any, rows: np.ndarray) -> Stored:
        """Stored ``rows`` of ``view`` as a merge or a compaction copies them into a new
        segment (``write_blocks``'s source), a block at a time."""
        return Stored(view, rows)

    # -- searching --------------------------------------------------------------------------
    def queries_in(self, queries: Any) -> np.ndarray:
        q = as_matrix(queries, self.dim, "queries", allow_single=True)
        return normalise(q, "queries") if self.metric == "cosine" else q

    def approximate(self, view: Any, q: Any, k: int, allow: np.ndarray | None):
        """The flat funnel over ``view`` (its resident codes, gathered shortlists)."""
        return self.pipeline.search(q, k, view, allow)

    def ivf_search(self, view: Any, q: Any, k: int, allow: np.ndarray | None, nprobe: int | None):
        """The funnel with the view's trained IVF lists as its first pass."""
        blocks = view.flat_blocks()
        return view.ivf.search(q, k, view, allow, blocks, view.manifest.rows, nprobe)

    def exact(self, view: Any, q: np.ndarray, k: int, allow: np.ndarray | None):
        """Exact top-``k`` over every (allowed) row of ``view``: BLAS over the originals."""
        parts = [(e.start, e.rows, view.originals(e, arrays)) for e, arrays in view.segments]
        if len(view.tail):
            parts.append((view.manifest.rows, len(view.tail), view.tail.x.array))
        parts_rows, parts_scores = [], []
        for start, n, original in parts:
            seg_allow = None if allow is None else allow[start : start + n]
            rows, scores = blocked_top(
                lambda a, b, o=original: q @ np.asarray(o[a:b]).T, n, len(q), k, seg_allow
            )
            parts_rows.append(np.where(rows >= 0, rows + start, -1))
            parts_scores.append(scores)
        if len(parts) == 1:  # one segment: its top k is the answer
            return parts_rows[0], parts_scores[0]
        cols, scores = select_top(np.concatenate(parts_scores, axis=1), k)
        rows = np.take_along_axis(np.concatenate(parts_rows, axis=1), cols, axis=1)
        return np.where(np.isfinite(scores), rows, -1), scores

    def score_rows(self, view: Any, q: np.ndarray, k: int, rows: np.ndarray):
        """Exact top-``k`` among ``rows`` (gathered originals, in blocks)."""
        found, scores = blocked_top(
            lambda a, b: q @ view.gather(ORIGINAL, rows[a:b]).T, len(rows), len(q), k
        )
        return np.where(found >= 0, rows[np.maximum(found, 0)], -1), scores

    def first_bytes_ratio(self, view: Any) -> float:
        """First-pass bytes per row over exact-scoring bytes per row (the exact-rows plan
        wins while it reads fewer bytes than the first pass)."""
        return self.pipeline.bytes_per_vector(self.pipeline.first_key) / (4 * self.dim)
