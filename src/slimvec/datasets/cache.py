"""Where built datasets and their embeddings live on disk, and how they are written.

Everything goes under one user cache directory (``$SLIMVEC_CACHE``, else
``~/.cache/slimvec``) so a corpus is parsed and a model run over it once, then reused by every
command. Files are written to a temporary name and renamed, so an interrupted run never leaves
a half-written cache entry behind.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from slimvec.encoders.base import Encoder


def cache_root() -> Path:
    """The user cache directory of slimvec (not created here)."""
    if os.environ.get("SLIMVEC_CACHE"):
        return Path(os.environ["SLIMVEC_CACHE"]).expanduser()
    return Path.home() / ".cache" / "slimvec"


def slug(text: str) -> str:
    """A file-name-safe form of a model name or path (``org/model`` -> ``org--model``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text.replace("/", "--")).strip("-.") or "model"


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or None when it is missing or damaged (then it is rebuilt)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def save_npy(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)
    os.replace(tmp, path)


def cached_embeddings(
    encoder: Encoder,
    directory: Path,
    doc_texts: list[str],
    query_texts: list[str],
    *,
    batch_size: int | None = None,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(docs, queries) embedded by ``encoder``, computed once and then read from ``directory``.

    The entry is reused only if the encoder's fingerprint and the number of texts match, so a
    different model published under the same name is re-run instead of silently mixed in.
    """
    meta_path = directory / "meta.json"
    expected = {
        "model": encoder.name,
        "dim": int(encoder.dim),
        "fingerprint": encoder.fingerprint(),
        "n_docs": len(doc_texts),
        "n_queries": len(query_texts),
    }
    if read_json(meta_path) == expected:
        try:
            docs = np.load(directory / "docs.npy")
            queries = np.load(directory / "queries.npy")
        except (OSError, ValueError):
            pass
        else:
            if docs.shape == (len(doc_texts), encoder.dim) and len(queries) == len(query_texts):
                return docs, queries
    docs = encoder.encode(doc_texts, kind="doc", batch_size=batch_size, progress=progress)
    queries = encoder.encode(query_texts, kind="query", batch_size=batch_size, progress=progress)
    save_npy(directory / "docs.npy", docs)
    save_npy(directory / "queries.npy", queries)
    write_json(meta_path, expected)  # last: it is what marks the entry complete
    return docs, queries
