"""Input checks shared by every entry point; each failure says what to do instead."""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slimvec.errors import DuplicateIdError, InvalidInputError
from slimvec.spec import MAX_DIM

METRICS = ("cosine", "ip")


def as_matrix(
    data: Any, dim: int | None, what: str = "vectors", allow_single: bool = False
) -> np.ndarray:
    """``data`` as a C-contiguous float32 (n, dim) array, or a clear ``InvalidInputError``.

    ``dim=None`` accepts any width.
    """
    array = as_array(data, dim, what, allow_single)
    return finite_rows(array, what, lambda: check_finite(array, what))


def as_array(
    data: Any, dim: int | None, what: str = "vectors", allow_single: bool = False
) -> np.ndarray:
    """``data`` as a 2-D real array of ``dim`` columns, in its own dtype and not copied when
    it is one already (a memory-mapped float16 file stays on disk): ``as_matrix``'s checks of
    shape and type; its values are checked block by block as they are read
    (``finite_rows``)."""
    width = "dim" if dim is None else dim
    try:
        array = np.asarray(data)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(
            f"{what} must be a 2-D numeric array of shape (n, {width}); could not read it ({exc})"
        ) from exc
    if array.dtype == object:
        raise InvalidInputError(
            f"{what} must be a 2-D numeric array of shape (n, {width}); got ragged or non-numeric "
            f"data (every row needs exactly {width} numbers)"
        )
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise InvalidInputError(
            f"{what} must hold real numbers, got dtype {array.dtype}; convert with "
            f"np.asarray(x, dtype=np.float32)"
        )
    if allow_single and array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise InvalidInputError(
            f"{what} must be 2-D with shape (n, {width}), got shape {array.shape}"
            + ("; for one vector use x.reshape(1, -1)" if array.ndim == 1 else "")
        )
    if array.shape[0] == 0:
        raise InvalidInputError(f"{what} is empty: pass at least one row")
    if dim is not None and array.shape[1] != dim:
        raise InvalidInputError(
            f"{what} have {array.shape[1]} dims but this collection holds {dim}-dim vectors; "
            f"use the same embedding model (and dimension) the collection was created with"
        )
    return array


def finite_rows(block: np.ndarray, what: str, fail: Callable[[], None]) -> np.ndarray:
    """``block`` as C-contiguous float32; if a value is NaN or infinite (or overflows float32)
    ``fail`` raises the error, which names the bad rows of the whole input."""
    with np.errstate(over="ignore"):  # 1e39 becomes inf: refused below
        out = np.ascontiguousarray(block, dtype=np.float32)
    if not np.isfinite(out).all():
        fail()
    return out


#: Rows per block when an input is checked whole for its error message.
CHECK_ROWS = 16_384


def check_finite(array: np.ndarray, what: str) -> None:
    """``InvalidInputError`` naming (the first ten of) every row of ``array`` that holds NaN
    or infinite values, read block by block."""
    bad: list[np.ndarray] = []
    for lo in range(0, len(array), CHECK_ROWS):
        with np.errstate(over="ignore"):
            block = np.asarray(array[lo : lo + CHECK_ROWS], dtype=np.float32)
        bad.append(lo + np.flatnonzero(~np.isfinite(block).all(axis=1)))
    rows = np.concatenate(bad)
    if len(rows):
        raise InvalidInputError(
            f"{what} contain NaN or infinite values in rows {rows[:10].tolist()}"
            f"{' ...' if len(rows) > 10 else ''}; fix or drop those rows"
        )


def check_nonzero(array: np.ndarray, what: str) -> None:
    """``normalise``'s error naming every all-zero row of ``array``, read block by block."""
    zeros = []
    for lo in range(0, len(array), CHECK_ROWS):
        block = np.asarray(array[lo : lo + CHECK_ROWS], dtype=np.float32)
        zeros.append(lo + np.flatnonzero(~block.any(axis=1)))
    rows = np.concatenate(zeros)
    if len(rows):
        _zero_rows(rows, what)


def normalise(
    x: np.ndarray, what: str = "vectors", refuse: Callable[[np.ndarray], None] | None = None
) -> np.ndarray:
    """Unit-norm rows for cosine similarity; zero rows cannot be normalised: ``refuse`` (or
    an error naming them as rows of ``what``) raises for them. Norms are taken in float64,
    so components up to float32's limit (3e38) do not overflow to inf."""
    norms = np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    zero = norms[:, 0] == 0
    if zero.any():
        (refuse or (lambda rows: _zero_rows(rows, what)))(np.flatnonzero(zero))
    return np.ascontiguousarray(x / norms, dtype=np.float32)


def _zero_rows(rows: np.ndarray, what: str) -> None:
    raise InvalidInputError(
        f"{what} rows {rows[:10].tolist()} are all zeros and have no "
        f"direction for cosine similarity; drop them"
    )


#: Ids are confined to 0 .. 2**53 - 1: exact as JSON numbers (the HTTP API) and in JavaScript.
MAX_ID = 2**53 - 1
#: Results per query: a search returns (queries, k) arrays, so k bounds its memory.
MAX_K = 100_000


def as_ids(ids: Any, n: int) -> np.ndarray:
    """User ids as a unique, non-negative int64 array of length ``n``."""
    try:
        array = np.asarray(ids)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"ids must be a 1-D array of integers ({exc})") from exc
    if array.ndim != 1 or len(array) != n:
        raise InvalidInputError(
            f"ids must be a 1-D array with one id per vector ({n}), got shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.integer):
        if array.dtype.kind == "f" and np.all(array == np.round(array)):
            array = array.astype(np.int64)
        else:
            raise InvalidInputError(f"ids must be integers, got dtype {array.dtype}")
    if array.size and (array.max() > MAX_ID or array.min() < 0):
        raise InvalidInputError(
            f"ids must be >= 0 (-1 marks a missing result) and <= {MAX_ID} (2**53 - 1, exact in "
            f"JSON and JavaScript), got {array.min()} .. {array.max()}"
        )
    array = array.astype(np.int64)
    uniq, counts = np.unique(array, return_counts=True)
    if (counts > 1).any():
        raise DuplicateIdError(
            f"ids repeat within the batch: {uniq[counts > 1][:10].tolist()}; each id must be unique"
        )
    return array


def as_metadata(metadata: Any, n: int) -> list[dict | None] | None:
    if metadata is None:
        return None
    if isinstance(metadata, dict) or not isinstance(metadata, Sequence) or len(metadata) != n:
        raise InvalidInputError(
            f"metadata must be a list with one dict (or None) per vector ({n} items)"
        )
    for i, item in enumerate(metadata):
        if item is not None and not isinstance(item, dict):
            raise InvalidInputError(f"metadata[{i}] must be a dict or None, got {type(item)}")
        if item is None:
            continue
        _check_json_value(item, f"metadata[{i}]", 0)
        try:
            text = json.dumps(item, allow_nan=False, ensure_ascii=False)  # NaN/inf break filters
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"metadata[{i}] is not JSON-serialisable: {exc}; use null for a missing number"
            ) from exc
        check_utf8(text, f"metadata[{i}]")
    return list(metadata)


#: Deepest nesting of dicts and lists a metadata value may have (JSON libraries and SQLite's
#: JSON functions stop near 1,000; filters address top-level fields).
MAX_METADATA_DEPTH = 32


def _check_json_value(value: Any, where: str, depth: int) -> None:
    """String keys only (JSON would turn ``1`` into ``"1"`` silently) and bounded nesting."""
    if depth > MAX_METADATA_DEPTH:
        raise InvalidInputError(
            f"{where} is nested deeper than {MAX_METADATA_DEPTH} levels; flatten it"
        )
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInputError(
                    f"{where} has the key {key!r} ({type(key).__name__}); metadata keys must be "
                    f"strings (JSON would store it as {str(key)!r})"
                )
            _check_json_value(item, f"{where}[{key!r}]", depth + 1)
    elif isinstance(value, (list, tuple)):
        for j, item in enumerate(value):
            _check_json_value(item, f"{where}[{j}]", depth + 1)


def check_int(value: Any, name: str, low: int = 1, high: int | None = None) -> int:
    """``value`` as an ``int`` in ``[low, high]``, or an ``InvalidInputError`` naming ``name``.

    Python and NumPy integers pass; ``bool`` (an ``int`` subclass), floats and strings do not,
    so ``k=True`` or ``dim=8.0`` is caught rather than silently meaning 1 or 8.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < low
        or (high is not None and value > high)
    ):
        if high is not None:
            bound = f"an integer in {low}..{high}"
        elif low in (0, 1):
            bound = "a positive integer" if low else "a non-negative integer"
        else:
            bound = f"an integer >= {low}"
        raise InvalidInputError(f"{name} must be {bound}, got {value!r}")
    return int(value)


def as_path(path: Any, what: str = "path") -> Path:
    """``path`` as a ``Path``, or an ``InvalidInputError`` (not the ``TypeError`` or
    ``ValueError`` the OS layer raises for ``None``, a number or a NUL character)."""
    if not isinstance(path, (str, os.PathLike)) or isinstance(path, bytes):
        raise InvalidInputError(
            f"{what} must be a str or pathlib.Path, got {type(path).__name__} {path!r:.60}"
        )
    path = Path(path)
    if "\0" in str(path):
        raise InvalidInputError(f"{what} {str(path)!r:.80} contains a NUL character")
    return path


def check_options(options: Any, taker: Callable[..., Any], what: str, *given: str) -> dict:
    """``options`` as a dict of keyword arguments ``taker`` accepts (``given``: those the
    caller passes itself), so a typo is an ``InvalidInputError`` listing the known names
    rather than Python's ``TypeError`` from deep inside a create."""
    known = sorted(set(inspect.signature(taker).parameters) - {"self", *given})
    if not isinstance(options, dict):
        raise InvalidInputError(
            f"{what} must be a dict of options ({', '.join(known)}), got "
            f"{type(options).__name__} {options!r:.60}"
        )
    unknown = sorted(str(key) for key in options if key not in known)
    if unknown:
        raise InvalidInputError(f"{what} has unknown options {unknown}; known: {', '.join(known)}")
    return options


def check_dim(dim: Any) -> int:
    """``dim`` as an ``int`` in 1..``MAX_DIM`` (the README's limit), checked before a create
    writes anything: a manifest with a larger dim is refused as damaged when opened."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise InvalidInputError(f"dim must be a positive integer, got {dim!r}")
    if dim > MAX_DIM:
        raise InvalidInputError(
            f"dim={dim} is above the limit of {MAX_DIM:,} dims per vector; reduce the vectors "
            f"first (a Matryoshka prefix, or PCA) or split them into several collections"
        )
    return int(dim)


def check_k(k: Any) -> int:
    k = check_int(k, "k")
    if k > MAX_K:
        raise InvalidInputError(
            f"k={k} is above the limit of {MAX_K} results per query; page through results "
            f"with several searches, or use col.live_ids() to list everything"
        )
    return k


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise InvalidInputError(
            f"unknown metric {metric!r}; use 'cosine' (vectors are normalised) or 'ip' "
            f"(raw inner product)"
        )
    return metric


def as_texts(texts: Any, what: str = "texts") -> list[str]:
    """A non-empty list of strings (a single string counts as one text)."""
    if isinstance(texts, str):
        texts = [texts]
    if isinstance(texts, np.ndarray):
        texts = texts.tolist()
    if not isinstance(texts, Sequence) or not texts:
        raise InvalidInputError(f"{what} must be a non-empty list of strings")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise InvalidInputError(f"{what} must be strings; items {bad[:10]} are not")
    for i, text in enumerate(texts):
        check_utf8(text, f"{what}[{i}]")
    return list(texts)


def check_utf8(text: str, what: str) -> str:
    """``text`` if it can be stored as UTF-8: a lone surrogate (``"\ud800"``, which a JSON
    ``"\\ud800"`` escape decodes to) cannot, and would fail every later flush of the log."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{what} is not valid Unicode text: {exc.reason} at position {exc.start} "
            f"({text[max(0, exc.start - 10) : exc.start + 10]!r}); remove or replace that "
            f"character (e.g. text.encode('utf-8', 'replace').decode())"
        ) from None
    return text
