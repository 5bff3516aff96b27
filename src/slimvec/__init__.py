"""slimvec: compressed embedding retrieval with funnel search.

>>> import slimvec
>>> col = slimvec.create("docs.slim", dim=384)            # default spec: binary*40 > f32
>>> ids = col.add(vectors)
>>> res = col.search(queries, k=10)                         # res.ids, res.scores
"""

from slimvec.api import create, open  # noqa: A004
from slimvec.collection import Collection
from slimvec.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    CorruptCollectionError,
    DuplicateIdError,
    InvalidInputError,
    SlimvecError,
    SpecError,
)
from slimvec.search.result import SearchResult
from slimvec.spec import DEFAULT_SPEC, Spec, parse_spec

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SPEC",
    "Collection",
    "CollectionExistsError",
    "CollectionNotFoundError",
    "CorruptCollectionError",
    "DuplicateIdError",
    "InvalidInputError",
    "SearchResult",
    "SlimvecError",
    "Spec",
    "SpecError",
    "create",
    "open",
    "parse_spec",
]
