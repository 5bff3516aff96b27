"""A user's own retrieval set from files: vectors, optional texts, ids and relevance judgements.

A directory may hold (every file optional except one source of documents)::

    vectors.npy | docs.npy | doc_emb.npy       documents, (n_docs, dim)
    queries.npy | query_emb.npy                queries, (n_queries, dim)
    qrels.tsv                                  query_id doc_id relevance (header optional; the
                                               4-column TREC form "qid 0 docid rel" works too)
    docs.jsonl, queries.jsonl                  {"id": ..., "text": ...} per line, row order
    doc_ids.txt, query_ids.txt                 one id per line, when there are no .jsonl ids

Without ids, a row's id is its row number as a string ("0", "1", ...). ``prefix`` selects one
of several embeddings in a directory (``prefix="minilm_"`` reads ``minilm_doc_emb.npy``). A
directory of texts without vectors is embedded when a ``model`` is given (once; cached).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from slimvec.datasets.base import Dataset
from slimvec.datasets.cache import (
    cache_root,
    cached_embeddings,
    slug,
)
from slimvec.errors import DatasetUnavailableError, InvalidInputError

DOC_VECTORS = ("vectors.npy", "docs.npy", "doc_emb.npy")
QUERY_VECTORS = ("queries.npy", "query_emb.npy")
PathLike = str | Path

if TYPE_CHECKING:
    from slimvec.encoders.base import Encoder


def _pick(directory: Path | None, given: PathLike | None, names: tuple[str, ...], prefix: str):
    """The file the user named (must exist), else the first default name present, else None."""
    if given is not None:
        path = Path(given).expanduser()
        if directory is not None and not path.is_absolute():
            path = directory / path
        if not path.is_file():
            raise DatasetUnavailableError(f"{path} does not exist (or is not a file)")
        return path
    if directory is None:
        return None
    for name in names:
        if (directory / f"{prefix}{name}").is_file():
            return directory / f"{prefix}{name}"
    return None


def read_vectors(path: Path, what: str) -> np.ndarray:
    """A (n, dim) float32 array from a .npy file, checked for shape and finite values."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InvalidInputError(
            f"{path} is not a readable .npy array ({exc}); save vectors with np.save(path, x)"
        ) from exc
    if array.ndim != 2 or 0 in array.shape:
        raise InvalidInputError(
            f"{what} in {path} must be a non-empty 2-D array (rows = vectors), got shape "
            f"{array.shape}"
        )
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise InvalidInputError(f"{what} in {path} must hold numbers, got dtype {array.dtype}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise InvalidInputError(
            f"{what} in {path} have NaN or infinite values in rows {bad[:10].tolist()}"
            f"{' ...' if len(bad) > 10 else ''} ({len(bad)} rows); fix or drop them"
        )
    return array


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) of each non-blank line of a JSON-lines file; a line that is
    not JSON is an ``InvalidInputError`` naming the file and line. The one JSONL reader: the
    dataset loader and ``slimvec add`` read through it."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except ValueError as exc:
                raise InvalidInputError(f"{path}:{number} is not valid JSON ({exc})") from exc


def read_jsonl(path: Path) -> tuple[list[str | None], list[str]]:
    """(ids or None per line, texts) from a JSON-lines file of {"id", "text"} objects."""
    ids: list[str | None] = []
    texts: list[str] = []
    for number, item in iter_jsonl(path):
        if isinstance(item, str):
            item = {"text": item}
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise InvalidInputError(
                f'{path}:{number} must be an object with a "text" string (and optionally '
                f'an "id"), e.g. {{"id": "doc1", "text": "..."}}'
            )
        ids.append(None if item.get("id") is None else str(item["id"]))
        texts.append(item["text"])
    return ids, texts


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """{query id: {doc id: relevance}} keeping relevance > 0; a non-numeric first row is a
    header."""
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) not in (3, 4):
                raise InvalidInputError(
                    f"{path}:{number} must have 3 columns (query_id doc_id relevance) or the 4 "
                    f"of TREC qrels (query_id 0 doc_id relevance), got {len(fields)}"
                )
            query, doc, relevance = fields[0], fields[-2], fields[-1]
            try:
                grade = int(float(relevance))
            except ValueError:
                if number == 1:
                    continue  # header
                raise InvalidInputError(
                    f"{path}:{number}: relevance must be a number, got {relevance!r}"
                ) from None
            if grade > 0:
                qrels.setdefault(query, {})[doc] = grade
    return qrels


def _ids(
    directory: Path | None, name: str, from_jsonl: list[str | None] | None, n: int, what: str
) -> list[str]:
    if from_jsonl is not None and all(i is not None for i in from_jsonl):
        ids = [str(i) for i in from_jsonl]
        source = f"the ids in the {what} .jsonl"
    elif directory is not None and (directory / name).is_file():
        ids = (directory / name).read_text(encoding="utf-8").splitlines()
        ids = [i.strip() for i in ids if i.strip()]
        source = str(directory / name)
    else:
        return [str(i) for i in range(n)]
    if len(ids) != n:
        raise InvalidInputError(f"{source} has {len(ids)} ids but there are {n} {what}")
    if len(set(ids)) != n:
        repeated = [i for i, count in Counter(ids).items() if count > 1]
        raise InvalidInputError(f"{source} repeats ids {repeated[:5]}; ids must be unique")
    return ids


def _count_check(vectors: np.ndarray | None, texts: list[str] | None, what: str, paths) -> None:
    if vectors is not None and texts is not None and len(vectors) != len(texts):
        raise InvalidInputError(
            f"{paths[0]} has {len(vectors)} {what} vectors but {paths[1]} has {len(texts)} "
            f"texts; row i of the vectors must be line i of the texts"
        )


def load_files(
    source: PathLike | None = None,
    *,
    docs: PathLike | None = None,
    queries: PathLike | None = None,
    qrels: PathLike | None = None,
    doc_texts: PathLike | None = None,
    query_texts: PathLike | None = None,
    prefix: str = "",
    name: str | None = None,
    model: str | Path | Encoder | None = None,
    progress: bool | None = None,
) -> Dataset:
    """Load a retrieval set from a directory (or a documents ``.npy`` file) of the layout in the
    module docstring. File arguments override the default names; relative ones are taken
    inside ``source``.

    ``model`` names the model the vectors came from; when there are texts but no vectors it is
    the model (name, path or ``Encoder``) that embeds them, once, cached by text and model.
    """
    directory: Path | None = None
    if source is not None:
        path = Path(source).expanduser()
        if path.is_dir():
            directory = path
        elif path.is_file() and path.suffix == ".npy" and docs is None:
            directory, docs = path.parent, path
        else:
            raise DatasetUnavailableError(
                f"{path} is neither a directory nor a .npy file of document vectors; give a "
                f"directory holding vectors.npy (and optionally queries.npy, qrels.tsv)"
            )
    doc_path = _pick(directory, docs, DOC_VECTORS, prefix)
    query_path = _pick(directory, queries, QUERY_VECTORS, prefix)
    qrels_path = _pick(directory, qrels, ("qrels.tsv",), "")
    doc_text_path = _pick(directory, doc_texts, ("docs.jsonl",), "")
    query_text_path = _pick(directory, query_texts, ("queries.jsonl",), "")
    if doc_path is None and doc_text_path is None:
        where = directory if directory is not None else "the arguments"
        raise DatasetUnavailableError(
            f"no documents in {where}: expected one of "
            f"{', '.join(prefix + n for n in DOC_VECTORS)} (or docs.jsonl texts); save "
            f"document vectors with np.save('vectors.npy', x) or pass docs=PATH"
        )

    doc_vectors = read_vectors(doc_path, "document vectors") if doc_path else None
    query_vectors = read_vectors(query_path, "query vectors") if query_path else None
    if (
        doc_vectors is not None
        and query_vectors is not None
        and doc_vectors.shape[1] != query_vectors.shape[1]
    ):
        raise InvalidInputError(
            f"document vectors have {doc_vectors.shape[1]} dims ({doc_path.name}) but query "
            f"vectors have {query_vectors.shape[1]} ({query_path.name}); both must come from "
            f"the same model"
        )
    doc_jsonl_ids, doc_text_list = read_jsonl(doc_text_path) if doc_text_path else (None, None)
    q_jsonl_ids, query_text_list = read_jsonl(query_text_path) if query_text_path else (None, None)
    _count_check(doc_vectors, doc_text_list, "document", (doc_path, doc_text_path))
    _count_check(query_vectors, query_text_list, "query", (query_path, query_text_path))
    n_docs = len(doc_vectors) if doc_vectors is not None else len(doc_text_list or [])
    n_queries = len(query_vectors) if query_vectors is not None else len(query_text_list or [])
    doc_ids = _ids(directory, "doc_ids.txt", doc_jsonl_ids, n_docs, "documents")
    query_ids = _ids(directory, "query_ids.txt", q_jsonl_ids, n_queries, "queries")

    judgements = read_qrels(qrels_path) if qrels_path else {}
    unknown_q = sorted(set(judgements) - set(query_ids))
    if unknown_q:
        raise InvalidInputError(
            f"{qrels_path} judges queries {unknown_q[:5]} that are not among the {n_queries} "
            f"query ids (ids are row numbers '0', '1', ... unless queries.jsonl or "
            f"query_ids.txt gives them)"
        )
    known_docs = set(doc_ids)
    unknown_d = sorted({d for rel in judgements.values() for d in rel} - known_docs)
    if unknown_d:
        raise InvalidInputError(
            f"{qrels_path} refers to documents {unknown_d[:5]} that are not among the "
            f"{n_docs} document ids (ids are row numbers unless docs.jsonl or doc_ids.txt "
            f"gives them)"
        )
    model_name = model if isinstance(model, str) or model is None else str(model)
    if doc_vectors is None and query_vectors is None and model is not None:
        doc_vectors, query_vectors, model_name = _embed(
            model, doc_text_list or [], query_text_list or [], progress
        )
    if name is None:
        base = directory if directory is not None else (doc_path or doc_text_path).parent
        name = f"{base.name}{'-' + prefix.strip('_-') if prefix else ''}"
    return Dataset(
        name=name,
        doc_ids=doc_ids,
        query_ids=query_ids,
        doc_texts=doc_text_list,
        query_texts=query_text_list,
        qrels=judgements,
        docs=doc_vectors,
        queries=query_vectors,
        model=model_name if doc_vectors is not None else None,
    )


def _embed(
    model: str | Path | Encoder, doc_texts: list[str], query_texts: list[str], progress
) -> tuple[np.ndarray, np.ndarray, str]:
    from slimvec.encoders import get_encoder

    encoder = get_encoder(model)
    digest = hashlib.sha256()
    for text in [*doc_texts, "\x00queries\x00", *query_texts]:
        digest.update(text.encode("utf-8") + b"\x00")
    directory = cache_root() / "files" / digest.hexdigest()[:16] / slug(encoder.name)
    docs, queries = cached_embeddings(encoder, directory, doc_texts, query_texts, progress=progress)
    return docs, queries, encoder.name
