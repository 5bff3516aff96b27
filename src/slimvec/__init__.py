"""slimvec: compressed embedding retrieval with funnel search.

Layers (imports point down; ``tests/test_architecture.py`` enforces it): entry points (``cli``,
``server``, ``distributed``) -> tools (``eval``, ``datasets``, ``capacity``) -> this facade,
``api`` and ``remote`` -> ``collection``, ``multivector``, ``compat`` -> ``search`` (funnel,
fusion, filters), ``index`` (IVF, next), ``sparse``, ``encoders`` -> ``transforms``, ``codecs``
-> ``kernels`` -> ``store``, ``spec``, ``validation``, ``errors``.

>>> import slimvec
>>> col = slimvec.create("docs.slim", dim=384)            # default spec: rabitq:2*40 > f32
>>> ids = col.add(vectors)
>>> res = col.search(queries, k=10)                         # res.ids, res.scores
"""

from slimvec.api import create, open  # noqa: A004
from slimvec.collection import Collection
from slimvec.compat.upgrading import UpgradingCollection
from slimvec.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    CorruptCollectionError,
    DuplicateIdError,
    InvalidInputError,
    SlimvecError,
    SpecError,
)
from slimvec.protocol import CollectionProtocol
from slimvec.search.result import GetResult, SearchResult
from slimvec.spec import DEFAULT_SPEC, Spec, parse_spec

__version__ = "0.1.0"


def connect(url: str, api_key: str | None = None, **options):
    """A client for a ``slimvec serve`` server: ``client.open(name)`` / ``client.create(name,
    dim)`` give remote collections with the local API. Needs ``pip install 'slimvec[server]'``."""
    from slimvec.remote.client import connect as _connect

    return _connect(url, api_key=api_key, **options)


__all__ = [
    "DEFAULT_SPEC",
    "Collection",
    "CollectionExistsError",
    "CollectionNotFoundError",
    "CollectionProtocol",
    "CorruptCollectionError",
    "DuplicateIdError",
    "GetResult",
    "InvalidInputError",
    "SearchResult",
    "SlimvecError",
    "Spec",
    "SpecError",
    "UpgradingCollection",
    "connect",
    "create",
    "open",
    "parse_spec",
]
