"""The caller's ids over the engine's internal ones (FAISS's ``IndexIDMap2`` is the model).

The engine stores, logs and searches int64 ids only. A collection created with ``ids="str"``
maps each string key to a fresh internal id (the map lives in the metadata database and the
log: slimvec.store.idmap); :class:`Keys` is the one place that translates between the two, and
checks the caller's ids against a view's live rows.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from slimvec.errors import DuplicateIdError, IdKindError, InvalidInputError
from slimvec.search.result import SearchResult
from slimvec.store.idmap import IdMap, as_keys
from slimvec.validation import as_ids


def key_array(keys: list[str]) -> np.ndarray:
    """String ids as returned to the caller: a 1-D object array of str."""
    out = np.empty(len(keys), object)
    out[:] = keys
    return out


class Keys:
    """The caller's ids of one view: its string-id map (None: the caller's ids are the
    internal int64 ids) and its live rows (``live_rows_of(ids) -> (rows, live)``)."""

    def __init__(self, idmap: IdMap | None, live_rows_of: Any):
        self.idmap = idmap
        # weakly: the view holds these keys, so a strong reference back would keep every
        # replaced view (and its fitted state) alive until the cyclic collector ran
        self._live_rows_of = weakref.WeakMethod(live_rows_of)

    def live_rows_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._live_rows_of()(ids)

    @property
    def kind(self) -> str:
        return "int" if self.idmap is None else "str"

    def user_ids(self, ids: Any, n: int | None = None, unique: bool = True, dedupe: bool = True):
        """Validated caller ids: a list of keys (string collections) or an int64 array;
        ``n``: the count they must have; ``unique=False`` accepts repeats (dropped unless
        ``dedupe=False``). The wrong kind raises ``IdKindError``, never a cast."""
        if self.idmap is not None:
            keys = as_keys(ids, n, unique=unique)
            return list(dict.fromkeys(keys)) if not unique and dedupe else keys
        array = np.atleast_1d(np.asarray(ids))
        strings = (
            [i for i in array.ravel().tolist() if isinstance(i, str)]
            if array.dtype.kind in "USO"
            else []
        )
        if strings:
            raise IdKindError(
                f"this collection has int64 ids, got a string id {strings[0]!r}; create "
                f"the collection with slimvec.create(..., ids='str') to use string ids"
            )
        if not unique:  # lookups: repeats allowed, ids outside 0..MAX_ID simply not found
            if array.ndim != 1:  # np.unique would flatten [[1]] into id 1
                raise InvalidInputError(
                    f"ids must be a flat list of ids, got an array of shape {array.shape}"
                )
            if array.size and not (
                np.issubdtype(array.dtype, np.integer)
                and array.min() >= np.iinfo(np.int64).min
                and array.max() <= np.iinfo(np.int64).max
            ):
                raise InvalidInputError(
                    f"ids must be 64-bit integers, got {array.ravel()[:3].tolist()} "
                    f"(dtype {array.dtype})"
                )
            if not dedupe:
                return array.astype(np.int64) if array.size else np.empty(0, np.int64)
            array = np.unique(array)
        return as_ids(array, len(array) if n is None else n)

    def internal(self, user: Any) -> np.ndarray:
        """Internal int64 ids of validated caller ids (-1 for unknown string ids)."""
        if self.idmap is not None:
            return self.idmap.ids_of(user)
        return np.asarray(user, np.int64)

    def external(self, ids: np.ndarray) -> np.ndarray:
        """Caller ids of internal ids (None for -1 in a string collection)."""
        return ids if self.idmap is None else self.idmap.keys_of(ids)

    def returned(self, user: Any) -> np.ndarray:
        """Validated caller ids as ``add``/``upsert`` return them."""
        return user if self.idmap is None else key_array(user)

    def result(self, result: SearchResult) -> SearchResult:
        """A search result in the caller's ids: one gather over the k ids per query."""
        if self.idmap is None:
            return result
        return SearchResult(self.idmap.keys_of(result.ids), result.scores, result.explain)

    def require_live(self, user: Any, internal: np.ndarray, what: str) -> np.ndarray:
        """Rows of ``internal`` ids, or an error naming the caller ids that are not live."""
        rows, hit = self.live_rows_of(internal)
        if not hit.all():
            missing = [u for u, h in zip(np.asarray(user, object).tolist(), hit) if not h]
            raise InvalidInputError(
                f"ids not in the collection: {missing[:10]}; nothing was {what}"
            )
        return rows

    def reject_live_duplicates(self, ids: np.ndarray, keys: list[str] | None = None) -> None:
        """An error naming those of ``ids`` (or their ``keys``) that are live already."""
        _, live = self.live_rows_of(ids)
        clash = ids[live] if keys is None else np.asarray(keys, object)[live]
        if len(clash):
            raise DuplicateIdError(
                f"ids already in the collection: {clash[:10].tolist()}"
                f"{' ...' if len(clash) > 10 else ''}; use upsert() to replace them, or new ids"
            )
