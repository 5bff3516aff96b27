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
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from slimvec.engine import searcher
from slimvec.engine.ids import key_array
from slimvec.engine.pin import ViewPin, reads, writes
from slimvec.engine.rows import RowFormat
from slimvec.engine.view import CurrentView, View
from slimvec.engine.writer import Writer, create_directory, describe_refits
from slimvec.errors import InvalidInputError
from slimvec.search.filters import parse_filter
from slimvec.search.funnel import ORIGINAL, Pipeline
from slimvec.search.fusion import check_text_search, fuse
from slimvec.search.result import GetResult, SearchResult
from slimvec.sparse.bm25 import BM25Index
from slimvec.spec import DEFAULT_SPEC, parse_spec
from slimvec.store.idmap import check_id_kind
from slimvec.store.manifest import Manifest
from slimvec.validation import (
    as_metadata,
    as_path,
    as_texts,
    check_dim,
    check_k,
    check_metric,
    check_options,
)


class Collection:
    """Open with :func:`slimvec.open` or make with :func:`slimvec.create`, not directly."""

    #: What a row is (``slimvec.engine.rows``); a multi-vector collection plugs in its own.
    row_format: ClassVar[type[RowFormat]] = RowFormat

    def __init__(self, path: str | Path, encoder: Any = None):
        self._closed = False
        self._upgrade: Any = None
        self._encoder = None
        #: The manifest's encoder record ``_encoder`` was checked against: a commit that
        #: changes the record (a finished model upgrade) drops the loaded model.
        self._encoder_record: dict | None = None
        self._pin = ViewPin()  # threads sharing this handle: see slimvec.engine.pin
        self._current = CurrentView(Path(path), self.row_format, self._pin, self._loaded)
        self._writer = Writer(self._current)
        if encoder is not None:
            self._encoder = self._checked_encoder(encoder)

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
        dim = check_dim(dim)
        check_metric(metric)
        manifest = Manifest(dim=dim, metric=metric, spec=str(parse_spec(spec)))
        manifest.extra.update(extra or {})
        if check_id_kind(ids) == "str":
            manifest.extra["id_kind"] = "str"
        if keyword:
            BM25Index(**check_options(keyword, BM25Index, "keyword"))  # validates them
            manifest.extra["keyword_options"] = dict(keyword)
        if model is not None:
            manifest.extra["encoder"] = encoder_spec(model)
        cls.row_format.check(manifest)
        create_directory(directory, manifest)
        return cls(directory, encoder=model)

    # -- the view: loading, following other handles' commits (see slimvec.engine.pin) -------
    def _loaded(self, view: View) -> None:
        """A new view: drop the model or upgrade that belonged to the old one."""
        extra = view.manifest.extra
        if extra.get("encoder") != self._encoder_record:
            self._encoder = None  # another model now (a finished upgrade): load it by name
        if (
            self._upgrade is not None
            and not self._upgrade.matches(extra.get("upgrade"))
            and not extra.get("moved_to")  # kept for _follow_move (its model)
        ):
            self._upgrade = None  # changed elsewhere

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
            self._catch_up(follow_move=False)

    def _stale(self) -> bool:
        """Whether another handle committed since this view was loaded (two ``stat``s), or
        a finished model upgrade moved the collection."""
        return not self._closed and self._view.stale()  # a closed handle's call says so

    def _catch_up(self, follow_move: bool = True) -> None:
        """Load the latest commit, or only replay the log records appended since (the
        exclusive pin is held: no call is reading this view meanwhile). A call's first
        catch-up follows a finished upgrade's move; one inside a write (the finishing
        transaction itself) stays where it is."""
        self._require_open()
        self._current.catch_up()
        moved = self._view.manifest.extra.get("moved_to")
        if moved and follow_move:
            self._follow_move(moved)

    def _mark_stale(self) -> None:
        """The next catch-up reloads (the pinned view was found swept under a read)."""
        self._view.signature = None

    def _follow_move(self, moved_to: str) -> None:
        """A model upgrade finished (here or in another process): this handle becomes one of
        the new space, as ``slimvec.open`` of the path would be, with the new model (the one
        this handle's upgrade used, or else loaded by the name the new space records)."""
        model = None
        if self._upgrade is not None:  # its new space is the caller's to close
            model, self._upgrade = self._upgrade.new_space._encoder, None
        self._current.move(self.path / moved_to)
        if model is not None:
            self._encoder = self._checked_encoder(model)

    def _require_open(self) -> None:
        if self._closed:
            raise InvalidInputError(
                f"collection {str(self.path)!r} is closed; open it again with slimvec.open"
            )

    # for tests and benchmarks that look inside a view
    @property
    def _ivf(self):
        return self._view.ivf

    def _flat_blocks(self) -> list[tuple[int, np.ndarray]]:
        return self._view.flat_blocks()

    def _filter_columns(self):
        return self._view.filter_columns()

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

    @property
    @reads
    def own_count(self) -> int:
        """Live vectors in this collection's own rows (the old space during an upgrade)."""
        self._sync()
        return self._view.live_count

    @reads
    def __len__(self) -> int:
        """Live vectors (in both spaces while a model upgrade is in progress)."""
        own = self.own_count
        if self.upgrade is None:
            return own
        status = self.upgrade.status()
        return status.old_count + status.new_count - status.in_both

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
    def search_rows(self, queries: Any, k: int, exact: bool = False) -> SearchResult:
        """Top-``k`` over this collection's own rows for ``prepare_queries`` output (an upgrade
        in progress is not consulted: that is the caller's business)."""
        self._sync()
        return searcher.search(self._view, queries, k, exact)

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
    def ids_without_text(self, ids: np.ndarray) -> np.ndarray:
        """Those of ``ids`` stored without a text."""
        self._sync()
        rows, live = self._view.live_rows_of(np.asarray(ids, np.int64))
        texts = self._view.texts_of_rows(rows[live])
        return np.asarray(ids)[live][[t is None for t in texts]]

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
    def resident(self, key: str) -> np.ndarray:
        """All rows of the first-stage code, held in RAM (the funnel's ``CodeSource``)."""
        return self._view.resident(key)

    @reads
    def gather(self, key: str, rows: np.ndarray) -> np.ndarray:
        """Rows of one stored array (``ids``, ``original`` or a code key), in the order given."""
        return self._view.gather(key, rows)

    @reads
    def keyword_search_own(
        self, queries: list[str], k: int, allow_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """BM25 top-k over this collection's own texts (among ``allow_ids`` if given):
        (ids, scores), -1 / -inf padded."""
        index = self._keyword_index()
        if index is None:
            nq = len(queries)
            return np.full((nq, k), -1, np.int64), np.full((nq, k), -np.inf, np.float32)
        return index.search(queries, k, allow_ids=allow_ids)

    @writes
    def attach_encoder(self, encoder: Any) -> Any:
        """Use this ``Encoder`` object (it must be the recorded model); returns it."""
        self._encoder = self._checked_encoder(encoder)
        return self._encoder

    @writes
    def delete_own(self, ids: Any) -> int:
        """Delete from this collection's own rows (never from an upgrade's new space)."""
        return self._delete_rows(ids)

    def _reject_live_duplicates(self, ids: np.ndarray) -> None:
        self._view.keys.reject_live_duplicates(ids)

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
    ) -> np.ndarray:
        """Store vectors (n, dim); returns their int64 ids (given, or assigned increasing).

        ``metadata`` (one JSON-able dict per vector) and ``texts`` (the source text, kept for
        keyword search and re-embedding) are optional. Durable when it returns.
        """
        self._require_open()
        x, extra = self._view.rows.ingest(vectors)
        given = None if ids is None else self._view.keys.user_ids(ids, len(x))
        metas, texts = self._row_info(metadata, texts, len(x))
        with self.transaction():
            upgrade = self.upgrade
            check = None if upgrade is None else upgrade.new_space._reject_live_duplicates
            new_ids, keys = self._writer.add(x, extra, given, metas, texts, check)
        return new_ids if keys is None else key_array(keys)

    @staticmethod
    def _row_info(metadata: Any, texts: Any, n: int) -> tuple[Any, Any]:
        metas = as_metadata(metadata, n)
        if texts is not None:
            texts = as_texts(texts)
            if len(texts) != n:
                raise InvalidInputError(f"got {len(texts)} texts for {n} vectors")
        return metas, texts

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
        x, _ = self._view.rows.ingest(vectors)
        user = self._view.keys.user_ids(ids, len(x))
        metas, texts = self._row_info(metadata, texts, len(x))
        if self.upgrade is not None:
            raise InvalidInputError(
                "upsert during a model upgrade is not supported yet; delete, then add_texts"
            )
        with self.transaction():
            self._writer.upsert(x, user, metas, texts)
        return self._view.keys.returned(user)

    @writes
    def delete(self, ids: Any = None, filter: Any = None) -> int:  # noqa: A002
        """Tombstone the vectors with these ids, or (``filter``) whose metadata matches, in
        one commit (one log record); returns how many were deleted.

        During a model upgrade the ids may live in either space; both are handled."""
        self._require_open()
        if filter is not None:
            if ids is not None:
                raise InvalidInputError("give ids or filter to delete, not both")
            self._no_filter_during_upgrade("delete")
            parse_filter(filter)  # a malformed filter fails before the lock is taken
            return self._delete_rows(None, filter)
        if ids is None:
            raise InvalidInputError("give the ids to delete, or filter={...}")
        if self.upgrade is not None:
            return self.upgrade.delete(ids)
        return self._delete_rows(ids)

    def _delete_rows(self, ids: Any, filter: Any = None) -> int:  # noqa: A002
        """Delete from this collection's own rows; with ``filter``, the matching rows are
        chosen under the write lock (one atomic log record)."""
        if filter is None:
            user = self._view.keys.user_ids(ids, unique=False)
            if not len(user):
                return 0
        with self.transaction():
            view = self._view
            if filter is not None:
                wanted = np.unique(view.ids.array[view.allow(filter)])
                if not len(wanted):
                    return 0
            else:
                wanted = view.keys.internal(user)
                view.keys.require_live(user, wanted, "deleted")
            self._writer.record("delete", {"ids": wanted})
        return len(wanted)

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
        self._no_filter_during_upgrade("update_metadata")
        if merge is not None:
            return self._merge_metadata(ids, metadatas, filter, merge)
        if filter is not None:
            raise InvalidInputError(
                "filter selects the rows of update_metadata(filter=..., merge={...}); to "
                "replace metadata per id, give ids and metadatas"
            )
        if ids is None:
            raise InvalidInputError("give the ids to update (or filter=... with merge={...})")
        user = self._view.keys.user_ids(ids)
        metas = as_metadata(metadatas, len(user))
        if metas is None:
            raise InvalidInputError("give one metadata dict (or None) per id")
        if not len(user):
            return 0
        with self.transaction():
            keys = self._view.keys
            wanted = keys.internal(user)
            keys.require_live(user, wanted, "updated")
            self._writer.record("meta", {"ids": wanted}, {"metadata": metas})
        return len(wanted)

    def _merge_metadata(self, ids: Any, metadatas: Any, filter: Any, merge: Any) -> int:  # noqa: A002
        if metadatas is not None:
            raise InvalidInputError(
                "give metadatas (replaces each id's metadata) or merge (one dict merged into "
                "every selected row), not both"
            )
        if not isinstance(merge, dict):
            raise InvalidInputError(f"merge must be one metadata dict, got {merge!r}")
        try:
            as_metadata([merge], 1)  # JSON-able, string keys
        except InvalidInputError as exc:
            raise InvalidInputError(str(exc).replace("metadata[0]", "merge", 1)) from None
        if ids is None and filter is None:
            raise InvalidInputError(
                "update_metadata(merge=...) needs a filter or ids to select rows"
            )
        user = None if ids is None else self._view.keys.user_ids(ids)
        if filter is not None:
            parse_filter(filter)  # a malformed filter fails before the lock is taken
        with self.transaction():
            view = self._view
            allow = ~view.deleted.array if filter is None else view.allow(filter)
            if user is not None:
                chosen = np.zeros_like(allow)
                chosen[view.keys.require_live(user, view.keys.internal(user), "updated")] = True
                allow &= chosen
            rows = np.flatnonzero(allow)
            if not len(rows):
                return 0
            metas = [{**(m or {}), **merge} for m in view.meta_of_rows(rows)]
            self._writer.record("meta", {"ids": view.ids.array[rows]}, {"metadata": metas})
        return len(rows)

    @writes
    def create_index(self, field: str) -> None:
        """Keep a sorted index of a metadata field (keyword or numeric): equality and range
        filters on it then cost in proportion to the matching rows, not the collection. The
        field is recorded in the manifest; the index itself lives in RAM."""
        if not isinstance(field, str) or not field:
            raise InvalidInputError(f"field must be a non-empty string, got {field!r}")
        with self.transaction() as m:
            self._view.filter_columns().create_index(field)  # refuses a mixed-type field
            indexes = list(m.extra.get("indexes", []))
            if field in indexes:
                return
            m.extra["indexes"] = [*indexes, field]
            m.commit(self.path)

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
    def encoder(self):
        """The collection's text encoder (loaded on first use and checked against the manifest)."""
        with self._pin.lazy:
            if self._encoder is None:
                recorded = self._view.manifest.extra.get("encoder")
                if recorded is None:
                    raise InvalidInputError(
                        f"collection {str(self.path)!r} has no encoder, so it takes vectors, "
                        f"not texts; create it with slimvec.create(path, "
                        f"encoder='all-MiniLM-L6-v2')"
                    )
                from slimvec.encoders import get_encoder

                self._encoder = self._checked_encoder(get_encoder(recorded["name"]))
            return self._encoder

    def _checked_encoder(self, encoder: Any):
        from slimvec.encoders import encoder_spec, get_encoder
        from slimvec.encoders.base import model_mismatch

        model = get_encoder(encoder)
        recorded = self._view.manifest.extra.get("encoder")
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
        self._encoder_record = recorded
        return model

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
        if self.upgrade is not None:
            return self.upgrade.add_texts(texts, ids=ids, metadata=metadata, batch_size=batch_size)
        vectors = self._embed(texts, "doc", batch_size)
        return self.add(vectors, ids=ids, metadata=metadata, texts=texts)

    # -- model upgrades (see slimvec.compat.upgrade) ----------------------------------------
    @property
    @reads
    def upgrade(self) -> Any:
        """The model upgrade in progress (a ``slimvec.compat.upgrade.Upgrade``), or None."""
        self._sync()
        if "upgrade" not in self._view.manifest.extra:
            return None
        with self._pin.lazy:
            if self._upgrade is None:
                from slimvec.compat.upgrade import Upgrade

                self._upgrade = Upgrade.load(self)
            return self._upgrade

    @writes
    def begin_upgrade(self, encoder: Any, **options: Any) -> Any:
        """Start moving to a new embedding model without re-indexing first; returns the
        ``Upgrade`` (with its adapter quality report). See ``slimvec.compat.upgrade``."""
        from slimvec.compat.upgrade import begin_upgrade

        self._require_open()
        if self._view.idmap is not None:
            raise InvalidInputError(
                "model upgrades of string-id collections are not supported yet; re-embed into "
                "a new collection (slimvec.create(..., ids='str')) instead"
            )
        self._upgrade = begin_upgrade(self, encoder, **options)
        return self._upgrade

    def backfill(self, batch_size: int = 256, **options: Any) -> int:
        """Re-embed stored texts with the new model, a batch at a time (resumable)."""
        return self._require_upgrade().backfill(batch_size=batch_size, **options)

    @writes
    def finish_upgrade(self) -> Collection:
        """Make the new model's space the collection once every vector was backfilled."""
        return self._require_upgrade().finish()

    def _require_upgrade(self) -> Any:
        upgrade = self.upgrade
        if upgrade is None:
            raise InvalidInputError("no model upgrade in progress; start one with begin_upgrade")
        return upgrade

    def _no_filter_during_upgrade(self, what: str) -> None:
        if self.upgrade is not None:
            raise InvalidInputError(
                f"{what} with a filter is not supported during a model upgrade yet; finish "
                f"the upgrade (backfill, finish_upgrade) or search without filter"
            )

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
        reads per query (default ``index.ivf.default_nprobe``: 1/16 of the lists; more = higher
        recall, slower).

        During a model upgrade ``queries`` are the old model's vectors (what existing clients
        send) and reach the backfilled documents through the upgrade's old → new bridge; for
        the new model's vectors use ``col.upgrade.search_vectors``.
        """
        return self._view.keys.result(self._search_ids(queries, k, exact, filter, nprobe))

    def _search_ids(self, queries, k, exact, filter, nprobe=None) -> SearchResult:  # noqa: A002
        """``search`` in internal ids (what fusion, BM25 and upgrades work with)."""
        self._sync()
        view = self._view
        if nprobe is not None:
            searcher.check_nprobe_for(view, nprobe, view.manifest.spec)
        if filter is not None:
            self._no_filter_during_upgrade("search")
            q = view.rows.queries_in(queries)
            return searcher.search_filtered(view, q, check_k(k), exact, filter, nprobe)
        if "upgrade" in view.manifest.extra:  # it validates the queries against this space
            return self.upgrade.search_vectors(old_queries=queries, k=k, exact=exact)
        return searcher.search(view, view.rows.queries_in(queries), check_k(k), exact, nprobe)

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
        queries, k, depth = check_text_search(queries, k, mode, fusion, candidates)
        view = self._view
        if nprobe is not None:
            if mode == "sparse":
                raise InvalidInputError(
                    "nprobe sets the IVF lists the dense search reads; mode='sparse' (BM25) "
                    "reads none: leave nprobe out or use mode='dense' or 'hybrid'"
                )
            searcher.check_nprobe_for(view, nprobe, view.manifest.spec)
        upgrade = self.upgrade
        if filter is not None:
            self._no_filter_during_upgrade("search_texts")
            parse_filter(filter)
        if mode == "dense":
            if filter is not None:
                return self.search(self._embed(queries, "query", None), k, exact, filter, nprobe)
            if upgrade is not None:
                return upgrade.search_texts(queries, k, exact=exact)
            return self.search(self._embed(queries, "query", None), k=k, exact=exact, nprobe=nprobe)
        if not self.has_texts and (upgrade is None or not upgrade.has_keyword_index):
            raise InvalidInputError(
                f"collection {str(self.path)!r} holds no texts, so it has no keyword index; add "
                f"texts with add_texts(...) or add(vectors, texts=...)"
            )
        allow_ids = None if filter is None else view.ids.array[view.allow(filter)]
        if mode == "sparse":
            return view.keys.result(SearchResult(*self._keyword_search(queries, k, allow_ids)))
        if upgrade is not None:
            dense = upgrade.search_texts(queries, depth, exact=exact)
        else:
            q = self._embed(queries, "query", None)
            dense = self._search_ids(q, depth, exact, filter, nprobe)
        sparse = self._keyword_search(queries, depth, allow_ids)
        fused = fuse([dense, sparse], k, fusion, weights=weights, constant=rrf_constant)
        return view.keys.result(SearchResult(*fused))

    def _keyword_search(self, queries: list[str], k: int, allow_ids: np.ndarray | None = None):
        """BM25 top-k, among ``allow_ids`` if given (during a model upgrade, which refuses
        filters, the upgrade merges both spaces' indexes)."""
        if self.upgrade is not None:
            return self.upgrade.keyword_search(queries, k)
        return self.keyword_search_own(queries, k, allow_ids)

    # -- reading rows -----------------------------------------------------------------------
    @reads
    def texts(self, ids: Any) -> list[str | None]:
        """The stored text of each id (None where none was stored or the id is unknown)."""
        return self._per_id(ids, "texts")

    @reads
    def metadata(self, ids: Any) -> list[dict | None]:
        """Metadata stored with each id (None where none was given or the id is unknown)."""
        return self._per_id(ids, "metadata")

    def _per_id(self, ids: Any, what: str) -> list:
        """Look ids up in this space, and during an upgrade in the new space for the rest."""
        self._sync()
        view = self._view
        wanted = view.keys.internal(view.keys.user_ids(ids, unique=False, dedupe=False))
        rows, live = view.live_rows_of(wanted)
        of_rows = view.texts_of_rows if what == "texts" else view.meta_of_rows
        out: list = [None] * len(wanted)
        for i, value in zip(np.flatnonzero(live).tolist(), of_rows(rows[live])):
            out[i] = value
        upgrade = self.upgrade
        if upgrade is not None and not live.all():
            rest = np.flatnonzero(~live)
            others = getattr(upgrade.new_space, what)(wanted[rest])
            for i, value in zip(rest.tolist(), others):
                out[i] = value
        return out

    @reads
    def count(self, filter: Any = None) -> int:  # noqa: A002
        """Live vectors, or those whose metadata matches ``filter``."""
        if filter is None:
            return len(self)
        self._sync()
        self._no_filter_during_upgrade("count")
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
        self._no_filter_during_upgrade("get")
        if limit is not None:
            limit = check_k(limit)
        if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or offset < 0:
            raise InvalidInputError(f"offset must be a non-negative integer, got {offset!r}")
        view = self._view
        if ids is not None:  # by id, in the order asked (each once): no pass over every row
            asked = view.keys.user_ids(ids, unique=False, dedupe=False)
            rows, hit = view.live_rows_of(view.keys.internal(asked))
            rows = rows[hit]
            rows = rows[np.sort(np.unique(rows, return_index=True)[1])]
            if filter is not None:
                rows = rows[view.allow(filter)[rows]]
        else:
            rows = np.flatnonzero(~view.deleted.array if filter is None else view.allow(filter))
        rows = rows[offset : None if limit is None else offset + limit]
        if vectors is None:
            vectors = ids is not None
        return GetResult(
            ids=view.keys.external(view.ids.array[rows]),
            metadata=view.meta_of_rows(rows),
            texts=view.texts_of_rows(rows),
            vectors=(
                (view.gather(ORIGINAL, rows) if len(rows) else np.empty((0, self.dim), np.float32))
                if vectors
                else None
            ),
        )

    @reads
    def info(self) -> dict[str, Any]:
        """Counts, spec, what each vector costs in RAM and on disk, and any model upgrade."""
        self._sync()
        upgrade, view = self.upgrade, self._view
        return view.describe(
            path=str(self.path),
            count=len(self),
            calibration=describe_refits(view),
            upgrade=None if upgrade is None else upgrade.describe(),
        )

    @writes
    def close(self) -> None:
        """Release files (and an upgrade's new space); every later call raises."""
        if self._closed:
            return
        if self._upgrade is not None:
            self._upgrade.close()
            self._upgrade = None
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
