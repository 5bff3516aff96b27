"""A collection: a directory of compressed vectors answering top-k queries through a funnel.

Layout::

    MANIFEST.json         commit point (format, spec, segments, tombstones), replaced atomically
    state-<gen>.npz       fitted transforms and codec calibrations (PCA, int8 ranges, ...)
    segments/seg-<gen>/   ids.npy, original.npy (float32) and one .npy per stored code
    tombstones-<gen>.npy  packed bitmap of deleted rows
    meta-<gen>.sqlite     ids -> rows and per-vector metadata

Writes happen under a lock file and follow one order: new files are written and fsynced,
then the manifest is replaced. A process killed at any moment leaves the last committed state.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from slimvec.errors import (
    CollectionExistsError,
    CorruptCollectionError,
    DuplicateIdError,
    InvalidInputError,
    SpecError,
)
from slimvec.kernels.topk import blocked_top, pad_results, select_top
from slimvec.search.funnel import ORIGINAL, Pipeline
from slimvec.search.fusion import MODES as FUSION_MODES
from slimvec.search.fusion import fuse
from slimvec.sparse.bm25 import BM25Index
from slimvec.spec import DEFAULT_SPEC, parse_spec
from slimvec.store.files import save_array, save_arrays
from slimvec.store.growable import GrowableArray
from slimvec.store.lock import write_lock
from slimvec.store.manifest import MANIFEST, Manifest, SegmentEntry
from slimvec.store.meta import MetaStore
from slimvec.store.segments import SEGMENTS_DIR, open_segment, segment_name, write_segment
from slimvec.validation import (
    as_ids,
    as_matrix,
    as_metadata,
    as_texts,
    check_k,
    check_metric,
    normalise,
)

ENCODE_CHUNK = 65_536
SEARCH_MODES = ("dense", "sparse", "hybrid")


@dataclass
class SearchResult:
    """``ids`` (nq, k) int64 and ``scores`` (nq, k) float32, best first; -1 / -inf pad."""

    ids: np.ndarray
    scores: np.ndarray


class Collection:
    """Open with :func:`slimvec.open` or make with :func:`slimvec.create`, not directly."""

    def __init__(self, path: str | Path, encoder: Any = None):
        self.path = Path(path)
        self._meta: MetaStore | None = None
        self._load()
        self._encoder = None
        if encoder is not None:
            self._encoder = self._checked_encoder(encoder)

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        dim: int | None = None,
        metric: str = "cosine",
        spec: str = DEFAULT_SPEC,
        encoder: Any = None,
        extra: dict[str, Any] | None = None,
        keyword: dict[str, Any] | None = None,
    ) -> Collection:
        directory = Path(path)
        model = None
        if encoder is not None:
            from slimvec.encoders import encoder_spec, get_encoder

            model = get_encoder(encoder)
            if dim is not None and dim != model.dim:
                raise InvalidInputError(
                    f"dim={dim} but encoder {model.name!r} gives {model.dim}-dim vectors; "
                    f"leave dim out to take the encoder's"
                )
            dim = model.dim
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise InvalidInputError(f"dim must be a positive integer, got {dim!r}")
        check_metric(metric)
        manifest = Manifest(dim=int(dim), metric=metric, spec=str(parse_spec(spec)))
        manifest.extra.update(extra or {})
        if keyword:
            BM25Index(**keyword)  # validates the options
            manifest.extra["keyword_options"] = dict(keyword)
        if model is not None:
            manifest.extra["encoder"] = encoder_spec(model)
        cls._check_config(manifest)
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            what = "a collection" if (directory / MANIFEST).exists() else "other files"
            raise CollectionExistsError(
                f"{str(directory)!r} already holds {what}; open it with slimvec.open, or pick "
                f"a new path"
            )
        directory.mkdir(parents=True, exist_ok=True)
        MetaStore(directory / manifest.meta_db, create=True).close()
        manifest.save(directory)
        return cls(directory, encoder=model)

    @classmethod
    def _check_config(cls, manifest: Manifest) -> Pipeline:
        """The manifest's pipeline, or a clear error if its spec cannot work (``create`` calls
        this before anything is written)."""
        spec = parse_spec(manifest.spec)
        if spec.reranks_tokens:
            raise SpecError(
                f"{manifest.spec!r}: 'maxsim' reranks token vectors and needs a multi-vector "
                f"collection: slimvec.create(path, dim, multivector=True, spec=...)"
            )
        return Pipeline(spec, manifest.dim, manifest.metric)

    def _load(self) -> None:
        manifest = Manifest.load(self.path)
        self._manifest = manifest
        try:
            self.pipeline = self._make_pipeline(manifest)
        except InvalidInputError as exc:
            raise CorruptCollectionError(
                f"{self.path / MANIFEST} has an unusable spec: {exc}"
            ) from exc
        if manifest.state_file:
            try:
                with np.load(self.path / manifest.state_file, allow_pickle=False) as state:
                    self._load_state(dict(state))
            except (OSError, ValueError, KeyError) as exc:
                raise CorruptCollectionError(
                    f"fitted state {manifest.state_file} is missing or damaged ({exc})"
                ) from exc
        self._segments = [
            (entry, open_segment(self.path, entry.name, self._layout(entry.rows)))
            for entry in manifest.segments
        ]
        self._starts = np.array([e.start for e in manifest.segments], np.int64)
        first = self.pipeline.first_key
        dtype, shape = self._layout(0)[first]
        self._resident = GrowableArray(self._concat(first, np.empty(shape, dtype)))
        self._ids = GrowableArray(self._concat("ids", np.empty(0, np.int64)))
        self._deleted = self._load_tombstones()
        self._bm25: BM25Index | None = None  # loaded on first use
        self._upgrade = None
        if self._meta is not None:
            self._meta.close()
        self._meta = MetaStore(self.path / manifest.meta_db)

    # -- what a row is: hooks that a multi-vector collection overrides -----------------------
    def _make_pipeline(self, manifest: Manifest) -> Pipeline:
        return self._check_config(manifest)

    def _layout(self, rows: int) -> dict[str, tuple[np.dtype, tuple[int | None, ...]]]:
        """dtype and shape of every array a segment of ``rows`` rows holds."""
        layout = {
            "ids": (np.dtype(np.int64), (rows,)),
            ORIGINAL: (np.dtype(np.float32), (rows, self.dim)),
        }
        for key in self.pipeline.stored_keys:
            codec = self.pipeline.codecs[key]
            layout[key] = (codec.code_dtype, (rows, codec.code_width))
        return layout

    def _ingest(self, vectors: Any) -> tuple[np.ndarray, Any]:
        """Validate user input; return the pipeline's input vectors and what else to store."""
        x = as_matrix(vectors, self.dim)
        return (normalise(x) if self.metric == "cosine" else x), None

    def _fit(self, x: np.ndarray, extra: Any) -> None:
        self.pipeline.fit(x)

    def _state(self) -> dict[str, np.ndarray]:
        return self.pipeline.state()

    def _load_state(self, state: dict[str, np.ndarray]) -> None:
        self.pipeline.load_state(state)

    def _row_arrays(self, x: np.ndarray, extra: Any) -> dict[str, np.ndarray]:
        """Arrays stored per row besides ids and codes."""
        return {ORIGINAL: x}

    def _queries_in(self, queries: Any) -> np.ndarray:
        q = as_matrix(queries, self.dim, "queries", allow_single=True)
        return normalise(q, "queries") if self.metric == "cosine" else q

    def _approximate(self, q: Any, k: int, allow: np.ndarray | None):
        return self.pipeline.search(q, k, self, allow)

    def _compact_arrays(self, live: np.ndarray) -> dict[str, np.ndarray]:
        return {key: self.gather(key, live) for key in self._layout(0)}

    def _concat(self, key: str, empty: np.ndarray) -> np.ndarray:
        parts = [np.asarray(arrays[key]) for _, arrays in self._segments]
        return np.concatenate(parts) if parts else empty

    def _load_tombstones(self) -> np.ndarray:
        rows = self._manifest.rows
        if not self._manifest.tombstones:
            return np.zeros(rows, bool)
        try:
            packed = np.load(self.path / self._manifest.tombstones, allow_pickle=False)
            return np.unpackbits(packed, count=rows).astype(bool)
        except (OSError, ValueError) as exc:
            raise CorruptCollectionError(f"tombstone file is missing or damaged ({exc})") from exc

    # -- properties -------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self._manifest.dim

    @property
    def metric(self) -> str:
        return self._manifest.metric

    @property
    def spec(self) -> str:
        return self._manifest.spec

    @property
    def own_count(self) -> int:
        """Live vectors in this collection's own rows (the old space during an upgrade)."""
        return self._manifest.rows - self._manifest.deleted

    def __len__(self) -> int:
        """Live vectors (in both spaces while a model upgrade is in progress)."""
        if self.upgrade is None:
            return self.own_count
        status = self.upgrade.status()
        return status.old_count + status.new_count - status.in_both

    def __repr__(self) -> str:
        return f"Collection({str(self.path)!r}, dim={self.dim}, n={len(self)}, spec={self.spec!r})"

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------------
    def add(
        self,
        vectors: Any,
        ids: Any = None,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        texts: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Store vectors (n, dim); returns their int64 ids (given, or assigned increasing).

        ``metadata`` (one JSON-able dict per vector) and ``texts`` (the source text, kept for
        keyword search and re-embedding) are optional.
        """
        x, extra = self._ingest(vectors)
        given = None if ids is None else as_ids(ids, len(x))
        metas = as_metadata(metadata, len(x))
        if texts is not None:
            texts = as_texts(texts)
            if len(texts) != len(x):
                raise InvalidInputError(f"got {len(texts)} texts for {len(x)} vectors")
        with self._writing():
            new_ids = given if given is not None else self._next_ids(len(x))
            self._reject_live_duplicates(new_ids)
            if self.upgrade is not None:
                self.upgrade.new_space._reject_live_duplicates(new_ids)
            manifest = self._manifest
            generation = manifest.generation + 1
            state_file = manifest.state_file
            if not manifest.segments:
                self._fit(x, extra)
                state = self._state()
                if state:
                    state_file = f"state-{generation:06d}.npz"
                    save_arrays(self.path / state_file, state)
            codes = self._encode(x)
            name = segment_name(generation)
            arrays = {"ids": new_ids, **self._row_arrays(x, extra), **codes}
            write_segment(self.path, name, arrays)
            self._meta.insert(new_ids, manifest.rows, metas, texts)
            if texts is not None:
                keyword = self._keyword_index(create=True)
                keyword.add(new_ids, texts)
                self._save_keyword_index(keyword, generation)
            entry = SegmentEntry(name=name, start=manifest.rows, rows=len(x))
            manifest.segments.append(entry)
            manifest.rows += len(x)
            manifest.next_id = max(manifest.next_id, int(new_ids.max()) + 1)
            manifest.generation = generation
            manifest.state_file = state_file
            manifest.save(self.path)
            self._segments.append((entry, open_segment(self.path, name, self._layout(len(x)))))
            self._starts = np.append(self._starts, entry.start)
            self._resident.append(arrays[self.pipeline.first_key])
            self._ids.append(new_ids)
            self._deleted = np.concatenate([self._deleted, np.zeros(len(x), bool)])
        return new_ids

    def _encode(self, x: np.ndarray) -> dict[str, np.ndarray]:
        chunks = range(0, len(x), ENCODE_CHUNK)
        parts = [
            self.pipeline.encode(x[start : start + ENCODE_CHUNK])
            for start in tqdm(
                chunks, desc="encoding", unit="chunk", disable=len(chunks) < 8 or None
            )
        ]
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    def _next_ids(self, n: int) -> np.ndarray:
        return np.arange(self._manifest.next_id, self._manifest.next_id + n, dtype=np.int64)

    def _live_rows(self) -> np.ndarray:
        return np.flatnonzero(~self._deleted)

    def live_ids(self) -> np.ndarray:
        """Ids of this collection's own live vectors, in row order."""
        return self._ids.array[~self._deleted]

    def _live_rows_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row of each id, whether it is live); rows of ids that are not live are meaningless."""
        live_rows = self._live_rows()
        if not len(live_rows):
            return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
        live_ids = self._ids.array[live_rows]
        order = np.argsort(live_ids)
        pos = np.minimum(np.searchsorted(live_ids, ids, sorter=order), len(order) - 1)
        return live_rows[order[pos]], live_ids[order[pos]] == ids

    def _reject_live_duplicates(self, ids: np.ndarray) -> None:
        clash = ids[np.isin(ids, self.live_ids())]
        if len(clash):
            raise DuplicateIdError(
                f"ids already in the collection: {clash[:10].tolist()}"
                f"{' ...' if len(clash) > 10 else ''}; delete them first or use new ids"
            )

    # -- text -------------------------------------------------------------------------------
    @property
    def encoder(self):
        """The collection's text encoder (loaded on first use and checked against the manifest)."""
        if self._encoder is None:
            recorded = self._manifest.extra.get("encoder")
            if recorded is None:
                raise InvalidInputError(
                    f"collection {str(self.path)!r} has no encoder, so it takes vectors, not "
                    f"texts; create it with slimvec.create(path, encoder='all-MiniLM-L6-v2')"
                )
            from slimvec.encoders import get_encoder

            self._encoder = self._checked_encoder(get_encoder(recorded["name"]))
        return self._encoder

    def _checked_encoder(self, encoder: Any):
        from slimvec.encoders import encoder_spec, get_encoder
        from slimvec.encoders.base import model_mismatch

        model = get_encoder(encoder)
        recorded = self._manifest.extra.get("encoder")
        if recorded is None:
            raise InvalidInputError(
                f"collection {str(self.path)!r} was created without an encoder; it cannot take one"
            )
        found = encoder_spec(model)
        field = model_mismatch(recorded, found)
        if field is not None:
            raise InvalidInputError(
                f"encoder {found['name']!r} ({found['dim']}-d, fingerprint "
                f"{found['fingerprint']}) is not the model this collection was built with "
                f"({recorded['name']!r}, {recorded['dim']}-d, fingerprint "
                f"{recorded['fingerprint']}): its {field} differs. Vectors of different "
                f"models must not be mixed; use the original model"
            )
        return model

    def add_texts(
        self,
        texts: Sequence[str],
        ids: Any = None,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Embed ``texts`` with the collection's encoder and store them; returns their ids."""
        texts = as_texts(texts)
        if self.upgrade is not None:
            return self.upgrade.add_texts(texts, ids=ids, metadata=metadata, batch_size=batch_size)
        vectors = self._embed(texts, "doc", batch_size)
        return self.add(vectors, ids=ids, metadata=metadata, texts=texts)

    # -- model upgrades (see slimvec.compat.upgrade) ----------------------------------------
    @property
    def upgrade(self) -> Any:
        """The model upgrade in progress (a ``slimvec.compat.upgrade.Upgrade``), or None."""
        if "upgrade" not in self._manifest.extra:
            return None
        if getattr(self, "_upgrade", None) is None:
            from slimvec.compat.upgrade import Upgrade

            self._upgrade = Upgrade.load(self)
        return self._upgrade

    def begin_upgrade(self, encoder: Any, **options: Any) -> Any:
        """Start moving to a new embedding model without re-indexing first; returns the
        ``Upgrade`` (with its adapter quality report). See ``slimvec.compat.upgrade``."""
        from slimvec.compat.upgrade import begin_upgrade

        return begin_upgrade(self, encoder, **options)

    def backfill(self, batch_size: int = 256, **options: Any) -> int:
        """Re-embed stored texts with the new model, a batch at a time (resumable)."""
        return self._require_upgrade().backfill(batch_size=batch_size, **options)

    def finish_upgrade(self) -> Collection:
        """Make the new model's space the collection once every vector was backfilled."""
        return self._require_upgrade().finish()

    def _require_upgrade(self) -> Any:
        upgrade = self.upgrade
        if upgrade is None:
            raise InvalidInputError("no model upgrade in progress; start one with begin_upgrade")
        return upgrade

    def search_texts(
        self,
        queries: Sequence[str] | str,
        k: int = 10,
        mode: str = "dense",
        *,
        fusion: str = "rrf",
        weights: Sequence[float] | None = None,
        rrf_constant: float = 60.0,
        candidates: int | None = None,
        exact: bool = False,
    ) -> SearchResult:
        """Search by text: ``mode`` "dense" (the encoder + funnel), "sparse" (BM25 over the
        stored texts) or "hybrid" (both, fused).

        Hybrid fuses each side's top ``candidates`` (default ``max(10k, 100)``) by reciprocal
        rank fusion (``fusion="rrf"``, ``rrf_constant``) or a weighted sum of min-max
        normalised scores (``fusion="weighted"``); ``weights`` = (dense, sparse). RRF is the
        safe default; where one side is far stronger (BM25 on exact-term queries) the weighted
        sum keeps it from being diluted.
        """
        if mode not in SEARCH_MODES:
            raise InvalidInputError(f"unknown mode {mode!r}; use one of {', '.join(SEARCH_MODES)}")
        if fusion not in FUSION_MODES:
            raise InvalidInputError(
                f"unknown fusion mode {fusion!r}; use one of {', '.join(FUSION_MODES)}"
            )
        queries = as_texts(queries, "queries")
        k = check_k(k)
        upgrade = self.upgrade
        if mode == "dense":
            if upgrade is not None:
                return upgrade.search_texts(queries, k, exact=exact)
            return self.search(self._embed(queries, "query", None), k=k, exact=exact)
        if self._keyword_index() is None:
            raise InvalidInputError(
                f"collection {str(self.path)!r} holds no texts, so it has no keyword index; add "
                f"texts with add_texts(...) or add(vectors, texts=...)"
            )
        if mode == "sparse":
            return SearchResult(*self._keyword_search(queries, k))
        depth = check_k(candidates) if candidates is not None else max(10 * k, 100)
        if upgrade is not None:
            dense = upgrade.search_texts(queries, depth, exact=exact)
        else:
            dense = self.search(self._embed(queries, "query", None), k=depth, exact=exact)
        sparse = self._keyword_search(queries, depth)
        return SearchResult(
            *fuse([dense, sparse], k, fusion, weights=weights, constant=rrf_constant)
        )

    def _keyword_search(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """BM25 top-k; during a model upgrade over both spaces (an id moved to the new space
        by backfill but not yet deleted from the old one counts once, as the new space's)."""
        ids, scores = self._keyword_index().search(queries, k)
        upgrade = self.upgrade
        new_index = None if upgrade is None else upgrade.new_space._keyword_index()
        if new_index is None:
            return ids, scores
        new_ids, new_scores = new_index.search(queries, k)
        moved = (ids[:, :, None] == new_ids[:, None, :]).any(axis=2) & (ids >= 0)
        scores = np.where(moved, -np.inf, scores)
        all_ids = np.concatenate([new_ids, ids], axis=1)
        cols, best = select_top(np.concatenate([new_scores, scores], axis=1), k)
        return pad_results(np.take_along_axis(all_ids, cols, axis=1), best, k)

    def _keyword_index(self, create: bool = False) -> BM25Index | None:
        """The BM25 index over stored texts (loaded on first use), or None if there is none."""
        if self._bm25 is None:
            recorded = self._manifest.extra.get("bm25")
            if recorded:
                self._bm25 = BM25Index.load(self.path, recorded["files"])
            elif create:
                self._bm25 = BM25Index(**self._manifest.extra.get("keyword_options", {}))
        return self._bm25

    def _save_keyword_index(self, keyword: BM25Index, generation: int) -> None:
        self._manifest.extra["bm25"] = {"files": keyword.save(self.path, generation)}

    def _embed(self, texts: list[str], kind: str, batch_size: int | None) -> Any:
        return self.encoder.encode(texts, kind=kind, batch_size=batch_size)

    def texts(self, ids: Any) -> list[str | None]:
        """The stored text of each id (None where none was stored or the id is unknown)."""
        wanted = np.atleast_1d(np.asarray(ids, dtype=np.int64)).tolist()
        found = self._meta.texts(wanted, self._manifest.rows)
        return [found.get(i) for i in wanted]

    def delete(self, ids: Any) -> int:
        """Tombstone the vectors with these ids; returns how many were deleted.

        During a model upgrade the ids may live in either space; both are handled."""
        if self.upgrade is not None:
            return self.upgrade.delete(ids)
        return self._delete_rows(ids)

    def _delete_rows(self, ids: Any) -> int:
        """Delete from this collection's own rows (never from an upgrade's new space)."""
        wanted = np.unique(np.atleast_1d(as_ids(np.atleast_1d(np.asarray(ids)), np.size(ids))))
        with self._writing():
            rows, hit = self._live_rows_of(wanted)
            if not hit.all():
                raise InvalidInputError(
                    f"ids not in the collection: {wanted[~hit][:10].tolist()}; nothing was deleted"
                )
            deleted = self._deleted.copy()
            deleted[rows] = True
            manifest = self._manifest
            manifest.generation += 1
            keyword = self._keyword_index()
            if keyword is not None:
                keyword.delete(wanted)
                self._save_keyword_index(keyword, manifest.generation)
            old = manifest.tombstones
            manifest.tombstones = f"tombstones-{manifest.generation:06d}.npy"
            save_array(self.path / manifest.tombstones, np.packbits(deleted))
            manifest.deleted = int(deleted.sum())
            manifest.save(self.path)
            self._deleted = deleted
            if old:
                (self.path / old).unlink(missing_ok=True)
        return len(wanted)

    def compact(self) -> None:
        """Rewrite the live vectors into one segment, reclaiming space held by deleted ones."""
        with self._writing():
            if self._manifest.deleted == 0 and len(self._manifest.segments) <= 1:
                return
            manifest = self._manifest
            live = self._live_rows()
            generation = manifest.generation + 1
            arrays = self._compact_arrays(live)
            name = segment_name(generation)
            write_segment(self.path, name, arrays)
            ids = arrays["ids"]
            old_meta = self._meta.metadata(ids.tolist(), manifest.rows)
            old_texts = self._meta.texts(ids.tolist(), manifest.rows)
            meta_db = f"meta-{generation:06d}.sqlite"
            (self.path / meta_db).unlink(missing_ok=True)
            fresh = MetaStore(self.path / meta_db, create=True)
            fresh.insert(
                ids,
                0,
                [old_meta.get(i) for i in ids.tolist()],
                [old_texts.get(i) for i in ids.tolist()],
            )
            fresh.close()
            keyword = self._keyword_index()
            if keyword is not None:
                keyword.compact()
                self._save_keyword_index(keyword, generation)
            manifest.segments = [SegmentEntry(name=name, start=0, rows=len(live))]
            manifest.rows = len(live)
            manifest.deleted = 0
            manifest.tombstones = None
            manifest.meta_db = meta_db
            manifest.generation = generation
            manifest.save(self.path)
            self._load()
            self._sweep()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the write lock on an up-to-date view; on failure, forget uncommitted changes."""
        with write_lock(self.path):
            self._refresh()
            try:
                yield
            except BaseException:
                self._load()  # the disk holds the last commit; drop what memory changed
                raise

    def _refresh(self) -> None:
        """Under the write lock: reload if another process committed, drop leftovers."""
        current = Manifest.load(self.path)
        if current.extra.get("moved_to"):
            raise InvalidInputError(
                f"{str(self.path)!r} finished a model upgrade and moved to "
                f"{current.extra['moved_to']!r}; reopen it with slimvec.open"
            )
        if current.generation != self._manifest.generation:
            self._load()
        self._sweep()

    def _sweep(self) -> None:
        """Remove files of interrupted writes (anything the manifest does not name)."""
        m = self._manifest
        named = {m.state_file, m.tombstones, m.meta_db, MANIFEST, "LOCK", SEGMENTS_DIR}
        named.update(m.extra.get("bm25", {}).get("files", []))
        for child in self.path.iterdir():
            if (
                child.name not in named
                and child.name.split("-")[0] in {"state", "tombstones", "meta", "bm25"}
            ) or child.name == MANIFEST + ".tmp":
                child.unlink(missing_ok=True)
        live_segments = {e.name for e in m.segments}
        seg_dir = self.path / SEGMENTS_DIR
        if seg_dir.is_dir():
            for child in seg_dir.iterdir():
                if child.name not in live_segments:
                    shutil.rmtree(child, ignore_errors=True)

    # -- reading ----------------------------------------------------------------------------
    def resident(self, key: str) -> np.ndarray:
        if key != self.pipeline.first_key:
            raise KeyError(f"{key} is not held in RAM")
        return self._resident.array

    def gather(self, key: str, rows: np.ndarray) -> np.ndarray:
        """Rows of one stored array (``ids``, ``original`` or a code key), in the order given."""
        if key == self.pipeline.first_key:
            return self._resident.array[rows]
        if key == "ids":
            return self._ids.array[rows]
        seg = np.searchsorted(self._starts, rows, side="right") - 1
        _, arrays0 = self._segments[0]
        out = np.empty((len(rows), *arrays0[key].shape[1:]), arrays0[key].dtype)
        for s in np.unique(seg):
            entry, arrays = self._segments[s]
            where = np.flatnonzero(seg == s)
            local = rows[where] - entry.start
            order = np.argsort(local)  # sequential reads from the memory map
            out[where[order]] = arrays[key][local[order]]
        return out

    def search(self, queries: Any, k: int = 10, exact: bool = False) -> SearchResult:
        """Top-``k`` ids and scores per query; ``exact=True`` scans the float32 originals.

        During a model upgrade ``queries`` are the old model's vectors (what existing clients
        send) and reach the backfilled documents through the upgrade's old → new bridge; for
        the new model's vectors use ``col.upgrade.search_vectors``.
        """
        if self.upgrade is not None:  # it validates the queries against this (old) space
            return self.upgrade.search_vectors(old_queries=queries, k=k, exact=exact)
        return self._search_own(self._queries_in(queries), check_k(k), exact)

    def _search_own(self, q: np.ndarray, k: int, exact: bool) -> SearchResult:
        """Top-``k`` over this collection's own rows for validated queries ``q``."""
        allow = ~self._deleted if self._manifest.deleted else None
        if self._manifest.rows == 0:
            return SearchResult(
                ids=np.full((len(q), k), -1, np.int64),
                scores=np.full((len(q), k), -np.inf, np.float32),
            )
        if exact:
            rows, scores = self._exact(q, k, allow)
        else:
            rows, scores = self._approximate(q, k, allow)
        ids = np.where(rows >= 0, self._ids.array[np.maximum(rows, 0)], -1)
        return SearchResult(ids=ids, scores=scores)

    def _exact(self, q: np.ndarray, k: int, allow: np.ndarray | None):
        parts_rows, parts_scores = [], []
        for entry, arrays in self._segments:
            original = arrays[ORIGINAL]
            seg_allow = None if allow is None else allow[entry.start : entry.start + entry.rows]
            rows, scores = blocked_top(
                lambda a, b, o=original: q @ np.asarray(o[a:b]).T, entry.rows, len(q), k, seg_allow
            )
            parts_rows.append(np.where(rows >= 0, rows + entry.start, -1))
            parts_scores.append(scores)
        cols, scores = select_top(np.concatenate(parts_scores, axis=1), k)
        rows = np.take_along_axis(np.concatenate(parts_rows, axis=1), cols, axis=1)
        return np.where(np.isfinite(scores), rows, -1), scores

    def metadata(self, ids: Any) -> list[dict | None]:
        """Metadata stored with each id (None where none was given or the id is unknown)."""
        wanted = np.atleast_1d(np.asarray(ids, dtype=np.int64)).tolist()
        found = self._meta.metadata(wanted, self._manifest.rows)
        return [found.get(i) for i in wanted]

    def info(self) -> dict[str, Any]:
        """Counts, spec, what each vector costs in RAM and on disk, and any model upgrade."""
        rows = max(self._manifest.rows, 1)
        disk = sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())
        first = self.pipeline.first_key
        # first-stage codes + int64 id + tombstone flag; memory-mapped files are not counted
        ram_per_vector = self.pipeline.bytes_per_vector(first) + 8 + 1
        return {
            "path": str(self.path),
            "count": len(self),
            "deleted": self._manifest.deleted,
            "dim": self.dim,
            "metric": self.metric,
            "spec": self.spec,
            "encoder": self._manifest.extra.get("encoder"),
            "segments": len(self._manifest.segments),
            "ram_bytes_per_vector": ram_per_vector,
            "disk_bytes_per_vector": round(disk / rows, 1) if self._manifest.rows else None,
            "float32_bytes_per_vector": 4 * self.dim,
            "code_bytes_per_vector": {
                key: self.pipeline.bytes_per_vector(key) for key in self.pipeline.codecs
            },
            "upgrade": None if self.upgrade is None else self.upgrade.describe(),
        }

    def close(self) -> None:
        if self._meta is not None:
            self._meta.close()
            self._meta = None
        self._segments = []

    # -- JSON records (MBAT; see slimvec.encoders.mbat) -------------------------------------
    def add_json(self, records: Any, ids: Any = None, metadata: Any = None) -> np.ndarray:
        """Encode JSON records with the collection's ``JSONEncoder`` and add them."""
        from slimvec.encoders.mbat import add_json

        return add_json(self, records, ids=ids, metadata=metadata)

    def search_json(self, partial_records: Any, k: int = 10) -> SearchResult:
        """Search with (partial) JSON records; fields a query leaves out do not count."""
        from slimvec.encoders.mbat import search_json

        return search_json(self, partial_records, k=k)


def create(
    path: str | Path,
    dim: int | None = None,
    metric: str = "cosine",
    spec: str = DEFAULT_SPEC,
    encoder: Any = None,
    multivector: bool = False,
    keyword: dict[str, Any] | None = None,
    layers: int | None = None,
    dims: int | None = None,
    **multivector_options: Any,
) -> Collection:
    """Create an empty collection directory for ``dim``-dim vectors and open it.

    ``metric``: "cosine" (vectors normalised on the way in) or "ip". ``spec``: the pipeline,
    see :mod:`slimvec.spec`; the default is a binary first pass with float32 rescoring.
    ``encoder``: a model name/path or ``slimvec.encoders.Encoder`` for ``add_texts`` /
    ``search_texts`` (needs ``slimvec[text]``); its name, dim and fingerprint are recorded.
    ``multivector=True`` makes a collection of token sets (ColBERT-style) searched through
    MUVERA encodings and exact MaxSim; see :class:`slimvec.multivector.MultiVectorCollection`
    for its options (``fde``, ``pool_factor``, ``token_code``) and default spec.
    ``keyword``: options of the BM25 index kept over stored texts (see
    :class:`slimvec.sparse.BM25Index`: ``k1``, ``b``, ``stopwords``, ``stemmer``, ...).
    ``layers`` / ``dims``: run only the encoder's first L layers and keep its first D dims (an
    elastic, 2D Matryoshka operating point; recorded in the model identity).
    """
    if layers is not None or dims is not None:  # an elastic encoder's operating point
        from slimvec.encoders import get_encoder

        encoder = get_encoder(encoder, layers=layers, dims=dims)
    if multivector:
        from slimvec.multivector.collection import MultiVectorCollection

        if spec == DEFAULT_SPEC:
            spec = MultiVectorCollection.default_spec
        return MultiVectorCollection.create_multivector(
            path, dim, metric, spec, encoder, keyword=keyword, **multivector_options
        )
    if multivector_options:
        raise InvalidInputError(
            f"options {sorted(multivector_options)} apply to multi-vector collections only; "
            f"pass multivector=True"
        )
    return Collection.create(path, dim, metric, spec, encoder, keyword=keyword)


def open(path: str | Path, encoder: Any = None) -> Collection:  # noqa: A001 - like builtin
    """Open an existing collection; raises ``CollectionNotFoundError`` if there is none.

    ``encoder`` may be given to supply a custom ``Encoder`` object; it must be the same model.
    """
    manifest = Manifest.load(Path(path))
    if manifest.extra.get("moved_to"):  # a finished model upgrade: the data lives there now
        return open(Path(path) / manifest.extra["moved_to"], encoder=encoder)
    if "multivector" in manifest.extra:
        from slimvec.multivector.collection import MultiVectorCollection

        return MultiVectorCollection(path, encoder=encoder)
    return Collection(path, encoder=encoder)
