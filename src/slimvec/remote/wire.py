"""Vectors and results on the wire: JSON lists for anyone, binary forms for bulk transfers.

A vector field in a JSON body is either nested lists (``[[0.1, ...], ...]``) or a binary
object ``{"b64": "...", "dtype": "float32" | "float16", "shape": [n, dim]}`` holding the
little-endian bytes base64-encoded; a whole request body may also be one ``.npy`` array
(``Content-Type: application/x-npy``). Binary forms skip JSON number parsing, which is most of
the cost of a bulk add (``benchmarks/server.py`` measures it). This module knows nothing about
HTTP, so the client and the server share it.

Ids in replies follow the collection's id kind: int64 ids may travel binary; string ids
(``ids="str"`` collections) always travel as a JSON list, with null where an int collection
has -1 (a row with fewer than k hits). A reader tells the kinds apart by the field's form, so
a client that asks for binary ids gets a dict for int ids and a list for string ids.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np

from slimvec.errors import InvalidInputError
from slimvec.store.files import load_array

#: dtypes a binary vector field may use (float16 halves the bytes; the server widens it).
WIRE_DTYPES = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2")}
RESULT_DTYPES = {"int64": np.dtype("<i8"), "float32": np.dtype("<f4")}


def encode_array(array: np.ndarray, dtype: str = "float32") -> dict[str, Any]:
    """``array`` as a binary JSON field (base64 of little-endian ``dtype`` bytes)."""
    wire = {**WIRE_DTYPES, **RESULT_DTYPES}[dtype]
    data = np.ascontiguousarray(array, dtype=wire)
    return {
        "b64": base64.b64encode(data.tobytes()).decode("ascii"),
        "dtype": dtype,
        "shape": list(data.shape),
    }


def decode_array(field: Any, what: str, dtypes: dict[str, np.dtype] = WIRE_DTYPES) -> Any:
    """A JSON field as an array: binary objects are decoded, anything else is returned as it
    is for the library's own validation (which gives its usual messages)."""
    if not isinstance(field, dict):
        return field
    try:
        dtype = dtypes[field["dtype"]]
        shape = tuple(field["shape"])
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in shape):
            raise ValueError(f"shape {list(shape)} is not a list of integers")
        raw = base64.b64decode(field["b64"], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{what} as a binary field must be {{'b64': <base64 bytes>, 'dtype': one of "
            f"{sorted(dtypes)}, 'shape': [n, dim]}} ({type(exc).__name__}: {exc})"
        ) from None
    if any(s < 0 for s in shape) or math.prod(shape) * dtype.itemsize != len(raw):
        raise InvalidInputError(
            f"{what}: {len(raw)} bytes do not hold a {field['dtype']} array of shape {list(shape)}"
        )
    return np.frombuffer(raw, dtype).reshape(shape)


def to_npy(array: np.ndarray, dtype: str = "float32") -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=WIRE_DTYPES[dtype]), allow_pickle=False)
    return buffer.getvalue()


def from_npy(body: bytes, what: str = "vectors") -> np.ndarray:
    """An ``application/x-npy`` body as an array (float32 or float16 only; never pickles).
    The header's shape must match the body's size before anything is allocated."""
    try:
        _check_npy_size(body)
        array = load_array(io.BytesIO(body))
    except (ValueError, OSError, EOFError) as exc:
        raise InvalidInputError(
            f"the request body is not a valid .npy array ({exc}); send np.save output, "
            f"float32 or float16"
        ) from None
    if array.dtype.newbyteorder("<") not in WIRE_DTYPES.values():
        raise InvalidInputError(
            f"{what} in a .npy body must be float32 or float16, got {array.dtype}"
        )
    return array


def _check_npy_size(body: bytes) -> None:
    """ValueError unless the .npy header's shape and dtype account for the body's bytes."""
    stream = io.BytesIO(body)
    version = np.lib.format.read_magic(stream)
    read_header = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, _, dtype = read_header(stream, max_header_size=10_000)
    expected = math.prod(shape) * dtype.itemsize
    if expected != len(body) - stream.tell():
        raise ValueError(
            f"its header declares shape {list(shape)} ({expected:,} bytes) but "
            f"{len(body) - stream.tell():,} bytes follow"
        )


def ids_to_json(ids: np.ndarray, binary: bool) -> Any:
    """Ids as a JSON field: int64 binary (if asked) or lists; string ids (an object array,
    None for padding) always as lists, which JSON holds as they are."""
    if ids.dtype == object or not binary:
        return ids.tolist()
    return encode_array(ids, "int64")


def ids_from_json(field: Any) -> np.ndarray:
    """The inverse of ``ids_to_json`` for a client that asked for binary ids: a binary field
    is int64 ids, a list holds string ids (a 1-D or 2-D object array, None kept)."""
    if isinstance(field, dict):
        return decode_array(field, "ids", RESULT_DTYPES).astype(np.int64)
    nested = bool(field) and isinstance(field[0], list)
    rows = np.empty((len(field), len(field[0])) if nested else len(field), object)
    rows[...] = field
    return rows


def result_to_json(ids: np.ndarray, scores: np.ndarray, binary: bool) -> dict[str, Any]:
    """A search result as JSON: binary fields (exact, -inf kept) or lists with null for the
    -inf scores that pad rows with fewer than k hits (JSON has no infinity)."""
    if binary:
        return {"ids": ids_to_json(ids, True), "scores": encode_array(scores, "float32")}
    finite = np.isfinite(scores)
    score_rows = [
        [s if ok else None for s, ok in zip(row, ok_row)]
        for row, ok_row in zip(scores.tolist(), finite.tolist())
    ]
    return {"ids": ids.tolist(), "scores": score_rows}


def result_from_json(body: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """A search result from JSON; with binary scores the ids are int64 (binary) or string
    ids (a list), as ``ids_to_json`` sent them."""
    ids, scores = body["ids"], body["scores"]
    if isinstance(scores, dict):
        score_array = decode_array(scores, "scores", RESULT_DTYPES).astype(np.float32)
        return ids_from_json(ids).reshape(score_array.shape), score_array
    score_array = np.array(
        [[-np.inf if s is None else s for s in row] for row in scores], np.float32
    ).reshape(len(ids), -1)
    return np.array(ids, np.int64).reshape(len(ids), -1), score_array
