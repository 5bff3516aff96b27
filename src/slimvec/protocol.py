"""The collection protocol: the one API every kind of collection implements.

Local (:class:`slimvec.Collection`), remote (``slimvec.connect(...).open(name)``) and sharded
(:mod:`slimvec.distributed`) collections all have these methods with these exact parameters
(names, order, defaults); ``tests/test_protocol.py`` compares each kind's signatures with the
ones here by ``inspect.signature``, and ``tests/api_contract.py`` runs the same behaviour
tests against every kind. Code written against :class:`CollectionProtocol` therefore moves
between them unchanged:

>>> def top_titles(col: slimvec.CollectionProtocol, q) -> list:
...     res = col.search(q, k=5, filter={"lang": "en"})
...     return [m["title"] for m in col.metadata(res.ids[0])]

The local collection is the reference: its docstrings say what each call does. Where one kind
cannot do a call at all it raises ``InvalidInputError`` saying why (never a silent
difference). ``isinstance(x, CollectionProtocol)`` checks that the members exist (not their
signatures); on a remote collection it reads the properties, which asks the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from slimvec.search.result import GetResult, SearchResult

__all__ = ["MEMBERS", "CollectionProtocol"]


@runtime_checkable
class CollectionProtocol(Protocol):
    """What every collection has: write, search, read back, maintain, describe, close."""

    # -- what the collection holds (fixed at create) ------------------------------------------
    @property
    def dim(self) -> int: ...

    @property
    def metric(self) -> str: ...

    @property
    def spec(self) -> str: ...

    @property
    def id_kind(self) -> str:
        """ "int" or "str"."""
        ...

    # -- writing ------------------------------------------------------------------------------
    def add(
        self,
        vectors: Any,
        ids: Any = None,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        texts: Sequence[str] | None = None,
    ) -> np.ndarray: ...

    def upsert(
        self,
        vectors: Any,
        ids: Any,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        texts: Sequence[str] | None = None,
    ) -> np.ndarray: ...

    def add_texts(
        self,
        texts: Sequence[str],
        ids: Any = None,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray: ...

    def delete(self, ids: Any = None, filter: Any = None) -> int: ...  # noqa: A002

    def update_metadata(
        self,
        ids: Any = None,
        metadatas: Sequence[dict[str, Any] | None] | None = None,
        filter: Any = None,  # noqa: A002
        merge: dict[str, Any] | None = None,
    ) -> int: ...

    # -- searching ----------------------------------------------------------------------------
    def search(
        self,
        queries: Any,
        k: int = 10,
        exact: bool = False,
        filter: Any = None,  # noqa: A002
        nprobe: int | None = None,
    ) -> SearchResult: ...

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
    ) -> SearchResult: ...

    # -- reading back -------------------------------------------------------------------------
    def get(
        self,
        ids: Any = None,
        filter: Any = None,  # noqa: A002
        limit: int | None = 100,
        offset: int = 0,
        vectors: bool | None = None,
    ) -> GetResult: ...

    def count(self, filter: Any = None) -> int: ...  # noqa: A002

    def metadata(self, ids: Any) -> list[dict | None]: ...

    def texts(self, ids: Any) -> list[str | None]: ...

    def __len__(self) -> int: ...

    # -- upkeep and description ---------------------------------------------------------------
    def create_index(self, field: str) -> None: ...

    def compact(self) -> None: ...

    def info(self) -> dict[str, Any]: ...

    def close(self) -> None: ...

    # -- live recall (``slimvec.engine.quality``) ---------------------------------------------
    def set_target_recall(self, target: float | None) -> None:
        """Hold recall@k at or above ``target`` (None: only measure); committed with the
        collection (every shard; both spaces of an upgrade)."""
        ...

    def live_recall(self) -> dict[str, Any]:
        """``info()["quality"]``: the recall measured on live searches, and the target."""
        ...


#: The protocol's members: (name, "method" or "property"), in declaration order.
MEMBERS: tuple[tuple[str, str], ...] = tuple(
    (name, "property" if isinstance(value, property) else "method")
    for name, value in vars(CollectionProtocol).items()
    if (not name.startswith("_") or name == "__len__")
    and (callable(value) or isinstance(value, property))
)
