"""A collection: a directory of compressed vectors answering top-k queries through a funnel.

This module is the public face of a local collection; the storage engine beneath it lives in
:mod:`slimvec.engine`: a *view* (``engine.view``: one commit loaded, the log folded in, and
the directory layout), the *writer* (``engine.writer``: transactions, the log, segments,
merges, compaction, the commit protocol and its hooks), the *searcher* (``engine.searcher``
with ``engine.planner``: exact vs funnel vs IVF, filter plans), the caller's ids
(``engine.ids``), the *row format* (``engine.rows``, which a multi-vector collection replaces)
and the *pin* every call takes on its view (``engine.pin``).

**Reads.** Every call first checks (two ``stat``s) whether another handle committed, and
catches up: a reader always sees the latest commit, and a load that races a writer's commit
retries instead of reporting damage. A call then runs on that one view.

**Model upgrades** are another kind of collection (:class:`slimvec.compat.upgrading.
UpgradingCollection`, what ``slimvec.open`` returns while one is in progress): this class serves
one model's space and has no upgrade branches. A handle that finds an upgrade begun refuses
further calls with an error saying to reopen; one whose upgrade was finished follows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from slimvec.engine import reader
from slimvec.engine.arguments import SearchParams, check_delete, check_page, check_update, row_info
from slimvec.engine.background import BackgroundTraining
from slimvec.engine.create import create_directory, new_manifest
from slimvec.engine.ids import key_array
from slimvec.engine.model import ModelSlot, resolve
from slimvec.engine.pin import ViewPin, reads, writes
from slimvec.engine.quality import LiveRecall, Monitor
from slimvec.engine.rows import RowFormat
from slimvec.engine.view import CurrentView, View
from slimvec.engine.writer import Writer, describe_refits
from slimvec.errors import InvalidInputError
from slimvec.search.funnel import Pipeline
from slimvec.search.fusion import text_search
from slimvec.search.result import GetResult, SearchResult
from slimvec.sparse.bm25 import BM25Index
from slimvec.spec import DEFAULT_SPEC
from slimvec.store.manifest import Manifest
from slimvec.validation import as_metadata, as_path, as_texts


class Collection(LiveRecall):
    """Open with :func:`slimvec.open` or make with :func:`slimvec.create`, not directly."""

    #: What a row is (``slimvec.engine.rows``); a multi-vector collection plugs in its own.
    row_format: ClassVar[type[RowFormat]] = RowFormat

    def __init__(self, path: str | Path, encoder: Any = None, *, in_upgrade: bool = False):
        """``in_upgrade``: open the old space of a model upgrade in progress (what an
        ``UpgradingCollection`` does); otherwise a collection in that state is refused."""
        self._closed = False
        self._in_upgrade = in_upgrade
        #: Why this handle answers no more calls (an upgrade began), or None.
        self._refusal: str | None = None
        self._model = ModelSlot(repr(str(path)))  # the text encoder: see engine.model
        self._pin = ViewPin()  # threads sharing this handle: see slimvec.engine.pin
        self._current = CurrentView(Path(path), self.row_format, self._pin, self._loaded)
        self._writer = Writer(self._current)
        closed = lambda: self._closed  # noqa: E731 (large IVF trainings: engine.background)
        self._training = BackgroundTraining(self._writer, self._pin, self.transaction, closed)
        self._quality = Monitor(self)  # live recall: see slimvec.engine.quality
        if self._refusal is not None:
            self._current.close()
            raise InvalidInputError(self._refusal)
        if encoder is not None:
            self._model.attach(encoder, self._view.manifest.extra.get("encoder"))

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
        ids: str = "int",
    ) -> Collection:
        directory = as_path(path)
        model, dim = resolve(encoder, dim)
        manifest = new_manifest(dim, metric, spec, model, extra, keyword, ids)
        cls.row_format.check(manifest)
        create_directory(directory, manifest)
        return cls(directory, encoder=model)

    # -- the view: loading, following other handles' commits (see slimvec.engine.pin) -------
    def _loaded(self, view: View) -> None:
        """A new view: drop the model that belonged to the old one; refuse to go on alone
        once a model upgrade began (the documents move to another space)."""
        extra = view.manifest.extra
        self._model.follow(extra.get("encoder"))  # another model now: loaded by name
        if "upgrade" in extra and not self._in_upgrade:
            self._refusal = (
                f"a model upgrade of {str(view.dir)!r} is in progress, so a handle on one "
                f"model's space no longer sees every document: use the collection "
                f"begin_upgrade returned, or open it again with slimvec.open (an upgrading "
                f"collection, searching both spaces)"
            )

    @property
    def _view(self) -> View:
        return self._current.view

    @property
    def path(self) -> Path:
        return self._current.path

    def _sync(self) -> None:
        """Catch up with commits made through other handles, where this call may: a read
        runs on the view pinned when it began (see :mod:`slimvec.engine.pin`)."""
        self._require_open()
        if self._pin.holds_exclusive and self._stale():
            self._current.catch_up(follow_move=False)

    # what the pin's decorators call (slimvec.engine.pin)
    def _stale(self) -> bool:
        return not self._closed and self._current.stale()  # a closed handle's call says so

    def _catch_up(self) -> None:
        self._require_open()
        self._current.catch_up()

    def _mark_stale(self) -> None:
        self._current.mark_stale()

    def _require_open(self) -> None:
        if self._closed:
            raise InvalidInputError(
                f"collection {str(self.path)!r} is closed; open it again with slimvec.open"
            )
        if self._refusal is not None:
            raise InvalidInputError(self._refusal)

    # -- properties -------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self._view.manifest.dim

    @property
    def metric(self) -> str:
        return self._view.manifest.metric

    @property
    def spec(self) -> str:
        return self._view.manifest.spec

    @property
    def pipeline(self) -> Pipeline:
        return self._view.pipeline

    @property
    def fitted(self) -> bool:
        """Whether the pipeline's calibrations exist (after the first segment); before, the
        few rows in the log are searched exactly."""
        return self._view.fitted

    @property
    def id_kind(self) -> str:
        """ "int" or "str": the kind of id this collection takes and returns (chosen at create)."""
        return self._view.keys.kind

    @reads
    def __len__(self) -> int:
        """Live vectors."""
        self._sync()
        return self._view.live_count

    def __repr__(self) -> str:
        if self._closed:
            return f"Collection({str(self.path)!r}, closed)"
        return f"Collection({str(self.path)!r}, dim={self.dim}, n={len(self)}, spec={self.spec!r})"

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the interface sibling packages (compat, multivector, server, ...) build on ----------
    @property
    @reads
    def manifest(self) -> Manifest:
        """The committed manifest of the current view (edit it only inside ``transaction``)."""
        self._sync()
        return self._view.manifest

    @contextmanager
    def transaction(self) -> Iterator[Manifest]:
        """Hold the write lock on an up-to-date view (log replayed, leftovers swept) and
        yield its manifest. A change becomes visible only through ``manifest.commit(path)``;
        on any exception the view is reloaded from disk (uncommitted changes are dropped)."""
        self._require_open()
        with self._writer.transaction(self._sync) as manifest:
            yield manifest

    @reads
    def refresh(self) -> Collection:
        """Catch up with other processes' commits now (every call does this itself)."""
        self._sync()
        return self

    @reads
    def prepare_queries(self, queries: Any) -> Any:
        """Validated (and, for cosine, normalised) queries for :meth:`search_rows`."""
        return self._view.rows.queries_in(queries)

    @reads
    def search_rows(self, queries: Any, k: int, params: SearchParams) -> SearchResult:
        """``search`` for ``prepare_queries`` output, in internal ids (what fusion, BM25 and
        an upgrade's merge of two spaces work with)."""
        self._sync()
        return self._quality.search(self._view, queries, k, params)

    @reads
    def matching_ids(self, filter: Any) -> np.ndarray:  # noqa: A002
        """Internal ids of the live rows whose metadata matches ``filter``, in row order."""
        self._sync()
        return self._view.ids.array[self._view.allow(filter)]

    @reads
    def stored_ids(self) -> np.ndarray:
        """The id of every stored row in row order, deleted rows included (until compaction
        they keep their vectors: a model upgrade pairs them with the new model's)."""
        self._sync()
        return self._view.ids.array

    @reads
    def rows_of(self, ids: Any) -> tuple[np.ndarray, np.ndarray]:
        """(row of each id, whether it is live); rows of ids that are not live are meaningless."""
        self._sync()
        return self._view.live_rows_of(np.asarray(ids, np.int64))

    @reads
    def live_ids(self) -> np.ndarray:
        """Ids of this collection's own live vectors, in row order (the caller's ids: strings
        in a string-id collection)."""
        self._sync()
        view = self._view
        return view.keys.external(view.ids.array[~view.deleted.array])

    @property
    @reads
    def version(self) -> tuple[int, int]:
        """Changes with every commit, log appends included (a key for caches)."""
        self._sync()
        return self._view.manifest.generation, self._view.tail.end

    @property
    @reads
    def next_id(self) -> int:
        """The smallest id above every id this collection has stored."""
        self._sync()
        return self._view.next_id

    @property
    @reads
    def has_texts(self) -> bool:
        """Whether texts are stored (so a keyword index exists)."""
        return self._keyword_index() is not None

    @reads
    def gather(self, key: str, rows: np.ndarray) -> np.ndarray:
        """Rows of one stored array (``ids``, ``original`` or a code key), in the order given."""
        return self._view.gather(key, rows)

    @reads
    def keyword_search(
        self, queries: list[str], k: int, allow_ids: np.ndarray | None = None
    ) -> SearchResult:
        """BM25 top-k over the stored texts (among ``allow_ids`` if given), internal ids,
        -1 / -inf padded."""
        index = self._keyword_index()
        if index is None:
            empty = (len(queries), k)
            return SearchResult(np.full(empty, -1, np.int64), np.full(empty, -np.inf, np.float32))
        return SearchResult(*index.search(queries, k, allow_ids=allow_ids))

    @writes
    def attach_encoder(self, encoder: Any) -> Any:
        """Use this ``Encoder`` object (it must be the recorded model); returns it."""
        return self._model.attach(encoder, self._view.manifest.extra.get("encoder"))

    @property
    def loaded_encoder(self) -> Any:
        """The ``Encoder`` object this handle holds, or None (not loaded yet, or none)."""
        return self._model.model

    def _keyword_index(self) -> BM25Index | None:
        self._sync()
        return self._current.keyword_index()

    # -- writing ----------------------------------------------------------------------------
    @writes
    def add(
        self,
        vectors: Any,
        ids: Any = None,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        texts: Sequence[str] | None = None,
        *,
        progress: bool | None = None,
    ) -> np.ndarray:
        """Store vectors (n, dim); returns their int64 ids (given, or assigned increasing).

        ``metadata`` (one JSON-able dict per vector) and ``texts`` (the source text, kept for
        keyword search and re-embedding) are optional. Durable when it returns. Any size
        streams in blocks under the add budget (``engine.incoming``; a memory-mapped array
        stays on disk); ``progress``: a bar (None: for long adds, on a terminal)."""
        self._require_open()
        x = self._view.rows.stream(vectors)
        given = None if ids is None else self._view.keys.user_ids(ids, len(x))
        metas, texts = row_info(metadata, texts, len(x))
        with self.transaction():
            new_ids, keys = self._writer.add(x, given, metas, texts, progress)
        return new_ids if keys is None else key_array(keys)

    @writes
    def upsert(
        self,
        vectors: Any,
        ids: Any,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        texts: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Store vectors under ``ids``, replacing the current vector, metadata and text of
        those that exist (the others are added); returns the ids.

        Atomic: one log record tombstones the replaced rows and adds the new ones, so a
        reader (or a restart after a crash) sees every old row or every new one, never both
        or neither. Large upserts are folded into a segment right after that record; a large
        one that replaces nothing is committed as a segment directly, as ``add`` does.
        """
        self._require_open()
        if not self._view.rows.logs_adds:
            raise InvalidInputError(
                f"{type(self).__name__} does not support upsert yet; delete the ids, then add"
            )
        if ids is None:
            raise InvalidInputError("upsert needs the ids to replace or add; add() makes new ones")
        x = self._view.rows.ingest(vectors)
        user = self._view.keys.user_ids(ids, len(x))
        metas, texts = row_info(metadata, texts, len(x))
        with self.transaction():
            self._writer.upsert(x, user, metas, texts)
        return self._view.keys.returned(user)

    @writes
    def delete(self, ids: Any = None, filter: Any = None) -> int:  # noqa: A002
        """Tombstone the vectors with these ids, or (``filter``) whose metadata matches, in
        one commit (one log record); returns how many were deleted. With ``filter`` the
        matching rows are chosen under the write lock."""
        self._require_open()
        check_delete(ids, filter)
        user = None if filter is not None else self._view.keys.user_ids(ids, unique=False)
        if user is not None and not len(user):
            return 0
        with self.transaction():
            return self._writer.delete(user, filter)

    @writes
    def update_metadata(
        self,
        ids: Any = None,
        metadatas: Sequence[dict[str, Any] | None] | None = None,
        filter: Any = None,  # noqa: A002
        merge: dict[str, Any] | None = None,
    ) -> int:
        """Replace the metadata of live ``ids`` (one dict, or None to clear, per id) in one
        commit (one log record); returns how many were updated. Unknown ids: an error,
        nothing written.

        With ``merge`` (one dict) instead of ``metadatas``: merge it into the metadata of
        the live rows matching ``filter`` (and among ``ids``, if given). The rows are chosen
        and read under the write lock and written as one log record, so a concurrent
        writer's change is never lost between the read and the write."""
        self._require_open()
        kind = check_update(ids, metadatas, filter, merge)
        user = None if ids is None else self._view.keys.user_ids(ids)
        if kind == "merge":
            with self.transaction():
                return self._writer.merge_metadata(user, filter, merge)
        metas = as_metadata(metadatas, len(user))
        if metas is None:
            raise InvalidInputError("give one metadata dict (or None) per id")
        if not len(user):
            return 0
        with self.transaction():
            return self._writer.set_metadata(user, metas)

    @writes
    def create_index(self, field: str) -> None:
        """Keep a sorted index of a metadata field (keyword or numeric): equality and range
        filters on it then cost in proportion to the matching rows, not the collection. The
        field is recorded in the manifest; the index itself lives in RAM."""
        if not isinstance(field, str) or not field:
            raise InvalidInputError(f"field must be a non-empty string, got {field!r}")
        with self.transaction():
            self._writer.create_index(field)

    @writes
    def flush(self) -> None:
        """Fold the write-ahead log into a segment now (writes do it when it is full)."""
        with self.transaction():
            self._writer.flush()
            self._writer.maintain()

    @writes
    def compact(self) -> None:
        """Rewrite the live vectors into one segment, reclaiming space held by deleted ones
        (and refitting calibrations the collection has outgrown)."""
        with self.transaction():
            self._writer.compact()

    # -- text -------------------------------------------------------------------------------
    @property
    @reads
    def encoder(self) -> Any:
        """The collection's text encoder (loaded on first use and checked against the manifest)."""
        return self._model.get(self._view.manifest.extra.get("encoder"))

    def _embed(self, texts: list[str], kind: str, batch_size: int | None) -> Any:
        return self.encoder.encode(texts, kind=kind, batch_size=batch_size)

    def add_texts(
        self,
        texts: Sequence[str],
        ids: Any = None,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Embed ``texts`` with the collection's encoder and store them; returns their ids."""
        self._require_open()
        texts = as_texts(texts)
        vectors = self._embed(texts, "doc", batch_size)
        return self.add(vectors, ids=ids, metadata=metadata, texts=texts)

    # -- model upgrades (an upgrading collection: see slimvec.compat.upgrading) ------------
    @writes
    def begin_upgrade(self, encoder: Any, **options: Any) -> Any:
        """Start moving to a new embedding model without re-indexing first; returns the
        collection during the upgrade (an ``UpgradingCollection``: both spaces, the adapter's
        quality report in ``.upgrade.report``); this handle then refuses further calls. See
        ``slimvec.compat.upgrade``."""
        from slimvec.compat.upgrading import begin

        self._require_open()
        return begin(self, encoder, **options)

    # -- searching --------------------------------------------------------------------------
    @reads
    def search(
        self,
        queries: Any,
        k: int = 10,
        exact: bool = False,
        filter: Any = None,  # noqa: A002
        nprobe: int | None = None,
    ) -> SearchResult:
        """Top-``k`` ids and scores per query; ``exact=True`` scans the float32 originals.

        ``filter`` restricts results to vectors whose metadata matches (see
        :mod:`slimvec.search.filters`); results are never short when at least ``k`` match,
        and ``res.explain`` says which plan ran. ``nprobe``: lists an ``ivf:N`` collection
        reads per query (default ``index.sizing.default_nprobe``: 1/16 of the lists; more = higher
        recall, slower).
        """
        params = SearchParams(exact, filter, nprobe)
        rows = self.search_rows(self.prepare_queries(queries), k, params)
        return self._view.keys.result(rows)

    @reads
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
        filter: Any = None,  # noqa: A002
        nprobe: int | None = None,
    ) -> SearchResult:
        """Search by text: ``mode`` "dense" (the encoder + funnel), "sparse" (BM25 over the
        stored texts) or "hybrid" (both, fused).

        Hybrid fuses each side's top ``candidates`` (default ``max(10k, 100)``) by reciprocal
        rank fusion (``fusion="rrf"``, ``rrf_constant``) or a weighted sum of min-max
        normalised scores (``fusion="weighted"``); ``weights`` = (dense, sparse). RRF is the
        safe default; where one side is far stronger (BM25 on exact-term queries) the weighted
        sum keeps it from being diluted. ``filter``: as in :meth:`search`, for every mode;
        ``nprobe``: as in :meth:`search`, for the dense side.
        """
        self._sync()
        view = self._view

        def dense(texts: list[str], depth: int) -> SearchResult:
            q = self.prepare_queries(self._embed(texts, "query", None))
            return self.search_rows(q, depth, SearchParams(exact, filter, nprobe))

        def sparse(texts: list[str], depth: int) -> SearchResult:
            allow = None if filter is None else self.matching_ids(filter)
            return self.keyword_search(texts, depth, allow)

        found = text_search(
            queries, k, mode, dense=dense, sparse=sparse, has_texts=lambda: self.has_texts,
            where=repr(str(self.path)), fusion=fusion, weights=weights,
            rrf_constant=rrf_constant, candidates=candidates, filter=filter, nprobe=nprobe,
        )  # fmt: skip
        return view.keys.result(found)

    # -- reading rows -----------------------------------------------------------------------
    @reads
    def texts(self, ids: Any) -> list[str | None]:
        """The stored text of each id (None where none was stored or the id is unknown)."""
        self._sync()
        return reader.values_of(self._view, ids, "texts")

    @reads
    def metadata(self, ids: Any) -> list[dict | None]:
        """Metadata stored with each id (None where none was given or the id is unknown)."""
        self._sync()
        return reader.values_of(self._view, ids, "metadata")

    @reads
    def count(self, filter: Any = None) -> int:  # noqa: A002
        """Live vectors, or those whose metadata matches ``filter``."""
        if filter is None:
            return len(self)
        self._sync()
        return int(np.count_nonzero(self._view.allow(filter)))

    @reads
    def get(
        self,
        ids: Any = None,
        filter: Any = None,  # noqa: A002
        limit: int | None = 100,
        offset: int = 0,
        vectors: bool | None = None,
    ) -> GetResult:
        """Live vectors' ids, metadata and texts, ``limit`` from ``offset`` (``limit=None``:
        all); restricted to ``ids`` (in the order given, each once) and/or ``filter`` (in
        insertion order). Ids that are not live are left out. ``vectors`` (default: when
        ``ids`` are given) adds the stored float32 vectors."""
        self._sync()
        limit, offset = check_page(limit, offset)
        return reader.page(self._view, ids, filter, limit, offset, vectors)

    @reads
    def info(self) -> dict[str, Any]:
        """Counts, spec, what each vector costs in RAM and on disk, live recall."""
        self._sync()
        view = self._view
        out = view.describe(
            path=str(self.path), count=len(self), calibration=describe_refits(view), upgrade=None
        ) | {"quality": self._quality.report(view.manifest.extra.get("target_recall"))}
        if out.get("ivf") is not None:
            out["ivf"]["training"] = self._training.describe()
        return out

    def wait_for_index(self, timeout: float | None = None) -> bool:
        """Block until this handle's background IVF training (if any) committed its lists;
        whether none runs now. Searches never need to: they use the state the collection had."""
        return self._training.wait(timeout)

    def close(self) -> None:
        """Wait for a background IVF training to commit (lists paid for are kept), then
        release files; every later call raises."""
        self._training.wait()  # outside the pin: the training's commit takes it
        with self._pin.exclusive():
            if not self._closed:
                self._quality.close()
                self._current.close()
                self._closed = True

    # -- JSON records (MBAT; see slimvec.encoders.mbat) -------------------------------------
    def add_json(self, records: Any, ids: Any = None, metadata: Any = None) -> np.ndarray:
        """Encode JSON records with the collection's ``JSONEncoder`` and add them."""
        from slimvec.encoders.mbat import add_json

        return add_json(self, records, ids=ids, metadata=metadata)

    def search_json(self, partial_records: Any, k: int = 10) -> SearchResult:
        """Search with (partial) JSON records; fields a query leaves out do not count."""
        from slimvec.encoders.mbat import search_json

        return search_json(self, partial_records, k=k)
