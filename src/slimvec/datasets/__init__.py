"""Retrieval sets to measure compression on: real corpora built offline and the user's own files.

>>> from slimvec.datasets import load
>>> ds = load("debian", size=3000, model="all-MiniLM-L6-v2")   # texts, qrels, (3000, 384) docs
>>> ds = load("path/to/dir")                                     # vectors.npy, queries.npy, ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slimvec.datasets.base import Dataset
from slimvec.datasets.cache import cache_root
from slimvec.datasets.debian import cached_models, debian_dir, load_debian
from slimvec.datasets.files import load_files
from slimvec.errors import DatasetUnavailableError, InvalidInputError

__all__ = [
    "Dataset",
    "DatasetUnavailableError",
    "list_datasets",
    "load",
    "load_debian",
    "load_files",
]

_BUILT_IN = {"debian": load_debian}


def load(name: str | Path, **kwargs: Any) -> Dataset:
    """A dataset by name (``"debian"``) or from a directory / ``.npy`` path of the user's own
    files; keyword arguments go to ``load_debian`` or ``load_files``."""
    key = str(name)
    if key in _BUILT_IN:
        return _BUILT_IN[key](**kwargs)
    path = Path(key).expanduser()
    if path.exists():
        return load_files(path, **kwargs)
    raise InvalidInputError(
        f"unknown dataset {key!r}: use one of {sorted(_BUILT_IN)} or the path of a directory "
        f"holding vectors.npy (+ queries.npy, qrels.tsv)"
    )


def list_datasets() -> list[dict[str, Any]]:
    """What can be loaded, and what is already built in the cache (``cache_root()``)."""
    return [
        {
            "name": "debian",
            "description": "Debian package search: query = one-line synopsis, relevant doc = "
            "long description (~60k docs; fetched with apt, needs root once)",
            "cached": (debian_dir() / "corpus.json").is_file(),
            "embeddings": cached_models(),
            "location": str(debian_dir()),
        },
        {
            "name": "<directory>",
            "description": "your own vectors.npy / queries.npy / qrels.tsv "
            "(+ docs.jsonl, queries.jsonl texts)",
            "cached": None,
            "embeddings": [],
            "location": str(cache_root()),
        },
    ]
