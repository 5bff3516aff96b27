"""Vectors and results on the wire: JSON lists for anyone, binary forms for bulk transfers.

A vector field in a JSON body is either nested lists (``[[0.1, ...], ...]``) or a binary
object ``{"b64": "...", "dtype": "float32" | "float16", "shape": [n, dim]}`` holding the
little-endian bytes base64-encoded; a whole request body may also be one ``.npy`` array
(``Content-Type: application/x-npy``). Binary forms skip JSON number parsing, which is most of
the cost of a bulk add (``benchmarks/server.py`` measures it). This module knows nothing about
HTTP, so the client and the server share it.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from slimvec.errors import InvalidInputError

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
        shape = tuple(int(s) for s in field["shape"])
        raw = base64.b64decode(field["b64"], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{what} as a binary field must be {{'b64': <base64 bytes>, 'dtype': one of "
            f"{sorted(dtypes)}, 'shape': [n, dim]}} ({type(exc).__name__}: {exc})"
        ) from None
    if any(s < 0 for s in shape) or int(np.prod(shape)) * dtype.itemsize != len(raw):
        raise InvalidInputError(
            f"{what}: {len(raw)} bytes do not hold a {field['dtype']} array of shape {list(shape)}"
        )
    return np.frombuffer(raw, dtype).reshape(shape)


def to_npy(array: np.ndarray, dtype: str = "float32") -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=WIRE_DTYPES[dtype]), allow_pickle=False)
    return buffer.getvalue()


def from_npy(body: bytes, what: str = "vectors") -> np.ndarray:
    """An ``application/x-npy`` body as an array (float32 or float16 only; never pickles)."""
    try:
        array = np.load(io.BytesIO(body), allow_pickle=False)
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


def result_to_json(ids: np.ndarray, scores: np.ndarray, binary: bool) -> dict[str, Any]:
    """A search result as JSON: binary fields (exact, -inf kept) or lists with null for the
    -inf scores that pad rows with fewer than k hits (JSON has no infinity)."""
    if binary:
        return {"ids": encode_array(ids, "int64"), "scores": encode_array(scores, "float32")}
    finite = np.isfinite(scores)
    score_rows = [
        [s if ok else None for s, ok in zip(row, ok_row)]
        for row, ok_row in zip(scores.tolist(), finite.tolist())
    ]
    return {"ids": ids.tolist(), "scores": score_rows}


def result_from_json(body: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    ids, scores = body["ids"], body["scores"]
    if isinstance(ids, dict):
        return (
            decode_array(ids, "ids", RESULT_DTYPES).astype(np.int64),
            decode_array(scores, "scores", RESULT_DTYPES).astype(np.float32),
        )
    score_array = np.array(
        [[-np.inf if s is None else s for s in row] for row in scores], np.float32
    ).reshape(len(ids), -1)
    return np.array(ids, np.int64).reshape(len(ids), -1), score_array
