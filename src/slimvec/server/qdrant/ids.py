"""Qdrant point ids (unsigned integers or UUIDs) as slimvec ids, and back.

A collection created through the Qdrant API holds string ids (``ids="str"``), so one
collection can hold both kinds, as in Qdrant: an integer ``7`` is stored as the key ``"7"``
and a UUID in its canonical hyphenated lowercase form. The forms cannot collide (a UUID has
hyphens), so a key of ASCII digits is an integer id on the way out. A collection created by
slimvec with int ids (the default) takes integer point ids only.
"""

from __future__ import annotations

import uuid
from typing import Any

from slimvec.errors import InvalidInputError

MAX_INT_ID = 2**63 - 1  # slimvec ids are int64; Qdrant's are u64


def point_key(point_id: Any, id_kind: str) -> int | str:
    """The slimvec id of a Qdrant point id, for a collection of ``id_kind`` ids."""
    if isinstance(point_id, int) and not isinstance(point_id, bool):
        if not 0 <= point_id <= MAX_INT_ID:
            raise InvalidInputError(
                f"point id {point_id} is out of range: integer ids are 0..{MAX_INT_ID}"
            )
        return point_id if id_kind == "int" else str(point_id)
    if isinstance(point_id, str):
        try:
            canonical = str(uuid.UUID(point_id))
        except ValueError:
            raise InvalidInputError(
                f"point id {point_id!r} is neither an unsigned integer nor a UUID"
            ) from None
        if id_kind == "int":
            raise InvalidInputError(
                f"point id {point_id!r} is a UUID but this collection holds integer ids (it "
                f"was created by slimvec with ids='int'); collections created through the "
                f"Qdrant API take both kinds"
            )
        return canonical
    raise InvalidInputError(
        f"a point id is an unsigned integer or a UUID string, got {point_id!r:.60}"
    )


def point_keys(point_ids: Any, id_kind: str, where: str = "points") -> list[int | str]:
    if not isinstance(point_ids, list):
        raise InvalidInputError(f"{where} must be a list of point ids, got {point_ids!r:.60}")
    return [point_key(i, id_kind) for i in point_ids]


def point_id(key: Any) -> int | str:
    """The Qdrant point id of a slimvec id (an int, or a string key)."""
    if isinstance(key, str):
        return int(key) if key.isascii() and key.isdigit() else key
    return int(key)


def sort_key(key: Any) -> tuple[int, Any]:
    """Qdrant's scroll order: integer ids ascending, then UUIDs (then any other keys)."""
    pid = point_id(key)
    if isinstance(pid, int):
        return (0, pid)
    try:
        return (1, uuid.UUID(pid).int)
    except ValueError:
        return (2, pid)
