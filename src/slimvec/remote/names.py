"""Collection names a server accepts: one safe directory entry each."""

from __future__ import annotations

import re

from slimvec.errors import InvalidInputError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def is_valid_name(name: str) -> bool:
    return isinstance(name, str) and bool(_NAME.fullmatch(name)) and ".." not in name


def check_name(name: str) -> str:
    """A collection name that is safe as one directory entry: no separators, no ``..``, no
    leading dot (hidden files), at most 128 characters."""
    if not is_valid_name(name):
        raise InvalidInputError(
            f"collection name {name!r} is not allowed: use 1-128 letters, digits, '_', '-' or "
            f"'.', starting with a letter or digit (no '/', no '..')"
        )
    return name
