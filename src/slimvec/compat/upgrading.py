"""The collection during a model upgrade: the old model's space, the new model's, the bridges.

``slimvec.open`` returns an :class:`UpgradingCollection` while an upgrade is in progress (and
``Collection.begin_upgrade`` returns one). It implements the collection protocol over both
spaces, so code written against a collection keeps working through the upgrade: vectors
given to ``add`` and ``search`` are the old model's (what existing clients send), texts go to
the new model (``slimvec.compat.upgrade`` says how the two spaces' results are merged), and
ids are unique across both spaces.

When the upgrade is finished (through this handle or in any other process), the handle
notices at its next call and from then on passes every call to the new space, with the new
model: it never searches one space with the other model's vectors.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from slimvec.compat.upgrade import Upgrade, begin_upgrade
from slimvec.engine.arguments import check_delete, check_page, check_update
from slimvec.engine.quality import check_target, combine
from slimvec.errors import DuplicateIdError, InvalidInputError
from slimvec.search.fusion import text_search
from slimvec.search.result import GetResult, SearchResult
from slimvec.validation import as_ids, as_metadata

F = TypeVar("F", bound=Callable[..., Any])


def begin(col: Any, encoder: Any, **options: Any) -> UpgradingCollection:
    """``Collection.begin_upgrade``: start the upgrade, return the collection during it."""
    if col.id_kind == "str":
        raise InvalidInputError(
            "model upgrades of string-id collections are not supported yet; re-embed into "
            "a new collection (slimvec.create(..., ids='str')) instead"
        )
    return UpgradingCollection(begin_upgrade(col, encoder, **options))


def _both_spaces(method: F) -> F:
    """While the upgrade is in progress run ``method`` with it; once it is finished, the same
    call on the new space (which this handle's space handle has followed)."""

    @functools.wraps(method)
    def call(self: UpgradingCollection, *args: Any, **kwargs: Any) -> Any:
        upgrade = self._in_progress()
        if upgrade is None:
            return getattr(self._space, method.__name__)(*args, **kwargs)
        return method(self, upgrade, *args, **kwargs)

    signature = inspect.signature(method)  # the caller's: without the upgrade passed in
    first, _, *rest = signature.parameters.values()
    call.__signature__ = signature.replace(parameters=[first, *rest])  # type: ignore[attr-defined]
    return call  # type: ignore[return-value]


class UpgradingCollection:
    """A collection with a model upgrade in progress; get one from ``slimvec.open`` or
    ``Collection.begin_upgrade``. ``upgrade`` is the :class:`~slimvec.compat.upgrade.Upgrade`
    (progress, adapter report, ``search_vectors`` for the new model's vectors)."""

    def __init__(self, upgrade: Upgrade):
        self._space = upgrade.old_space  # follows the collection to the new space at finish
        self._upgrade: Upgrade | None = upgrade
        self._lock = threading.Lock()

    @classmethod
    def open(cls, old_space: Any) -> UpgradingCollection:
        """Over ``old_space``, a handle opened with ``in_upgrade=True``."""
        return cls(Upgrade.load(old_space))

    def _in_progress(self) -> Upgrade | None:
        """The upgrade, or None once it is finished: then the space handle has moved to the
        new space, and takes the new model this handle's upgrade had loaded."""
        with self._lock:
            upgrade = self._upgrade
            if upgrade is not None and "upgrade" not in self._space.manifest.extra:
                model = upgrade.new_space.loaded_encoder
                upgrade.close()
                self._upgrade = None
                if model is not None:
                    self._space.attach_encoder(model)
            return self._upgrade

    @property
    def upgrade(self) -> Upgrade | None:
        """The upgrade in progress, or None once finished."""
        return self._in_progress()

    @property
    def path(self) -> Any:
        return self._space.path

    @property
    def dim(self) -> int:
        self._in_progress()
        return self._space.dim

    @property
    def metric(self) -> str:
        self._in_progress()
        return self._space.metric

    @property
    def spec(self) -> str:
        self._in_progress()
        return self._space.spec

    @property
    def id_kind(self) -> str:
        return "int"  # string-id collections cannot be upgraded yet

    @property
    def encoder(self) -> Any:
        """The old model until the upgrade is finished (``upgrade.encoder`` is the new one)."""
        self._in_progress()
        return self._space.encoder

    def __len__(self) -> int:
        upgrade = self._in_progress()
        if upgrade is None:
            return len(self._space)
        status = upgrade.status()
        return status.old_count + status.new_count - status.in_both

    def __repr__(self) -> str:
        upgrade = self._in_progress()
        if upgrade is None:
            return repr(self._space)
        return f"UpgradingCollection({str(self.path)!r}, {upgrade!r})"

    def __enter__(self) -> UpgradingCollection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the upgrade's own steps -----------------------------------------------------------
    def begin_upgrade(self, encoder: Any, **options: Any) -> Any:
        if self._in_progress() is None:
            return self._space.begin_upgrade(encoder, **options)
        raise InvalidInputError(
            f"a model upgrade of {str(self.path)!r} is already in progress; backfill() and "
            f"finish_upgrade() it first"
        )

    @_both_spaces
    def backfill(self, upgrade: Upgrade, batch_size: int = 256, **options: Any) -> int:
        """Re-embed stored texts with the new model, a batch at a time (resumable)."""
        return upgrade.backfill(batch_size=batch_size, **options)

    def finish_upgrade(self) -> Any:
        """Make the new model's space the collection once every vector was backfilled;
        returns the plain collection this handle now passes every call to."""
        upgrade = self._in_progress()
        if upgrade is None:
            raise InvalidInputError(f"the model upgrade of {str(self.path)!r} is finished")
        upgrade.finish()
        self._in_progress()
        return self._space

    # -- writing ---------------------------------------------------------------------------
    @_both_spaces
    def add(
        self,
        upgrade: Upgrade,
        vectors: Any,
        ids: Any = None,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        texts: Sequence[str] | None = None,
    ) -> np.ndarray:
        """The old model's vectors, into the old space (``backfill`` moves them on); given
        ids must not be live in either space."""
        if ids is not None:
            given = as_ids(np.atleast_1d(np.asarray(ids)), np.size(ids))
            _, live = upgrade.new_space.rows_of(given)
            if live.any():
                raise DuplicateIdError(
                    f"ids already in the collection: {given[live][:10].tolist()} (in the new "
                    f"model's space); use new ids"
                )
        return self._space.add(vectors, ids=ids, metadata=metadata, texts=texts)

    @_both_spaces
    def upsert(
        self,
        upgrade: Upgrade,
        vectors: Any,
        ids: Any,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        texts: Sequence[str] | None = None,
    ) -> np.ndarray:
        raise InvalidInputError(
            "upsert during a model upgrade is not supported yet: a replaced document may live "
            "in either model's space; delete the ids, then add_texts"
        )

    @_both_spaces
    def add_texts(
        self,
        upgrade: Upgrade,
        texts: Sequence[str],
        ids: Any = None,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Embedded by the new model, into the new space."""
        return upgrade.add_texts(texts, ids=ids, metadata=metadata, batch_size=batch_size)

    @_both_spaces
    def delete(self, upgrade: Upgrade, ids: Any = None, filter: Any = None) -> int:  # noqa: A002
        check_delete(ids, filter)
        if filter is None:
            return upgrade.delete(ids)
        upgrade.settle()  # no id in both spaces: each deleted document counts once
        return sum(space.delete(filter=filter) for space in upgrade.spaces)

    @_both_spaces
    def update_metadata(
        self,
        upgrade: Upgrade,
        ids: Any = None,
        metadatas: Sequence[dict[str, Any] | None] | None = None,
        filter: Any = None,  # noqa: A002
        merge: dict[str, Any] | None = None,
    ) -> int:
        """As ``Collection.update_metadata``, in whichever space holds each id (one commit
        per space)."""
        kind = check_update(ids, metadatas, filter, merge)
        upgrade.settle()
        if ids is None:  # merge into the rows the filter selects, in both spaces
            return sum(
                space.update_metadata(filter=filter, merge=merge) for space in upgrade.spaces
            )
        wanted = as_ids(np.atleast_1d(np.asarray(ids)), np.size(ids))
        metas = None if kind == "merge" else as_metadata(metadatas, len(wanted))
        if kind == "replace" and metas is None:
            raise InvalidInputError("give one metadata dict (or None) per id")
        where = upgrade.locate(wanted, "updated")
        updated = 0
        for space, mine in zip(upgrade.spaces, where):
            if not mine.any():
                continue
            if kind == "merge":
                updated += space.update_metadata(wanted[mine], filter=filter, merge=merge)
            else:
                chosen = [m for m, keep in zip(metas, mine) if keep]
                updated += space.update_metadata(wanted[mine], chosen)
        return updated

    # -- searching -------------------------------------------------------------------------
    @_both_spaces
    def search(
        self,
        upgrade: Upgrade,
        queries: Any,
        k: int = 10,
        exact: bool = False,
        filter: Any = None,  # noqa: A002
        nprobe: int | None = None,
    ) -> SearchResult:
        """The old model's query vectors over both spaces: the new one through the old → new
        bridge (``upgrade.search_vectors`` takes the new model's)."""
        return upgrade.search_vectors(
            old_queries=queries, k=k, exact=exact, filter=filter, nprobe=nprobe
        )

    @_both_spaces
    def search_texts(
        self,
        upgrade: Upgrade,
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
        """As ``Collection.search_texts``: the dense side queries each space with its own
        model (or the old one through the adapter), BM25 covers both spaces' texts."""
        options = {"filter": filter, "nprobe": nprobe}
        return text_search(
            queries, k, mode, where=repr(str(self.path)), fusion=fusion, weights=weights,
            dense=lambda q, depth: upgrade.search_texts(q, depth, exact, **options),
            sparse=lambda q, depth: upgrade.keyword_search(q, depth, filter),
            has_texts=lambda: upgrade.has_keyword_index,
            rrf_constant=rrf_constant, candidates=candidates, filter=filter, nprobe=nprobe,
        )  # fmt: skip

    # -- reading rows ----------------------------------------------------------------------
    @_both_spaces
    def texts(self, upgrade: Upgrade, ids: Any) -> list[str | None]:
        return upgrade.per_id(ids, "texts")

    @_both_spaces
    def metadata(self, upgrade: Upgrade, ids: Any) -> list[dict | None]:
        return upgrade.per_id(ids, "metadata")

    @_both_spaces
    def live_ids(self, upgrade: Upgrade) -> np.ndarray:
        """Ids of the live documents: the old space's in row order, then the new space's
        (an id an interrupted backfill left in both, once)."""
        old, new = (space.live_ids() for space in upgrade.spaces)
        return np.concatenate([old[~np.isin(old, new)], new])

    @_both_spaces
    def count(self, upgrade: Upgrade, filter: Any = None) -> int:  # noqa: A002
        if filter is None:
            return len(self)
        return len(np.union1d(*(space.matching_ids(filter) for space in upgrade.spaces)))

    @_both_spaces
    def get(
        self,
        upgrade: Upgrade,
        ids: Any = None,
        filter: Any = None,  # noqa: A002
        limit: int | None = 100,
        offset: int = 0,
        vectors: bool | None = None,
    ) -> GetResult:
        """As ``Collection.get``: the old space's rows first, then the new space's. Vectors
        of documents in the new space have the new model's dims, so asking for vectors of
        those is refused (``upgrade.new_space.get`` reads them)."""
        limit, offset = check_page(limit, offset)
        old, new = upgrade.spaces
        if ids is not None:
            return upgrade.get_ids(ids, filter, limit, offset, vectors)
        first = old.get(None, filter, limit, offset, vectors)
        rest = None if limit is None else limit - len(first.ids)
        if rest == 0:
            return first
        # a short page ran out of old rows: they number offset + its length, unless it is empty
        in_old = offset + len(first.ids) if len(first.ids) else old.count(filter)
        second = new.get(None, filter, rest, max(0, offset - in_old), False)
        if vectors and len(second.ids):
            raise InvalidInputError(upgrade.vectors_refusal(len(second.ids)))
        return upgrade.joined(first, second)

    # -- upkeep and description ------------------------------------------------------------
    @_both_spaces
    def create_index(self, upgrade: Upgrade, field: str) -> None:
        for space in upgrade.spaces:
            space.create_index(field)

    @_both_spaces
    def compact(self, upgrade: Upgrade) -> None:
        """The new space, and the old one unless it holds backfilled documents' old vectors
        (the blend and the adapter refits read them until ``finish``, which empties it)."""
        upgrade.new_space.compact()
        if not upgrade.has_backfilled_pairs:
            self._space.compact()

    @_both_spaces
    def info(self, upgrade: Upgrade) -> dict[str, Any]:
        """The old space's description (its model is the collection's until ``finish``),
        counts and live recall over both spaces, and the upgrade's progress and adapter
        quality."""
        return {
            **self._space.info(),
            "count": len(self),
            "quality": self.live_recall(),
            "upgrade": upgrade.describe(),
        }

    # -- live recall -----------------------------------------------------------------------
    @_both_spaces
    def set_target_recall(self, upgrade: Upgrade, target: float | None) -> None:
        """Hold ``target`` in both spaces (a search reads both), so the new space keeps it
        after ``finish``; None: only measure."""
        target = check_target(target)
        for space in upgrade.spaces:
            space.set_target_recall(target)

    @_both_spaces
    def live_recall(self, upgrade: Upgrade) -> dict[str, Any]:
        """Both spaces' live recall combined (``quality.combine``), ``"spaces": 2``."""
        return combine([space.live_recall() for space in upgrade.spaces], over="spaces")

    def close(self) -> None:
        """Release both spaces' files; every later call raises."""
        with self._lock:
            if self._upgrade is not None:
                self._upgrade.close()
                self._upgrade = None
        self._space.close()
