"""API keys: who may read or write which collections.

The key file is TOML with one table per key, holding only a hash of the key::

    [keys.ci-reader]
    sha256 = "9f86d0..."          # hashlib.sha256(key).hexdigest()
    role = "read-only"            # or "read-write"
    collections = ["docs"]        # optional allow-list; absent = every collection

``slimvec apikey keys.toml NAME`` adds an entry and prints the key once. Keys are 32 random
bytes, so a plain SHA-256 is enough to make a stolen key file useless (no password stretching
needed for high-entropy secrets); the hash of the key presented is compared with each entry's
by ``hmac.compare_digest``, in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from slimvec.errors import AuthError, InvalidInputError

ROLES = ("read-only", "read-write")
KEY_PREFIX = "sv_"


@dataclass(frozen=True)
class Principal:
    """The key a request came with (or the anonymous user of a server without keys)."""

    name: str
    role: str
    collections: frozenset[str] | None = None  # None: all

    def may_see(self, collection: str) -> bool:
        return self.collections is None or collection in self.collections

    def check(self, collection: str | None, write: bool) -> None:
        """Raise ``AuthError`` (HTTP 403) unless this key may do it."""
        if collection is not None and not self.may_see(collection):
            raise AuthError(
                f"API key {self.name!r} is not allowed to use collection {collection!r}",
                status=403,
            )
        if write and self.role != "read-write":
            raise AuthError(
                f"API key {self.name!r} is read-only; this request writes (use a read-write key)",
                status=403,
            )


ANONYMOUS = Principal("anonymous", "read-write")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyFile:
    """The keys a server accepts, loaded once at start."""

    def __init__(self, entries: dict[str, tuple[str, Principal]]):
        self._entries = entries

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def load(cls, path: str | Path) -> KeyFile:
        path = Path(path)
        try:
            body = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidInputError(
                f"API key file {str(path)!r} does not exist; make one with "
                f"`slimvec apikey {path} NAME`"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInputError(
                f"API key file {str(path)!r} is not valid TOML: {exc}"
            ) from None
        entries = {}
        for name, entry in body.get("keys", {}).items():
            digest = entry.get("sha256") if isinstance(entry, dict) else None
            role = entry.get("role", "read-only") if isinstance(entry, dict) else None
            allowed = entry.get("collections") if isinstance(entry, dict) else None
            if not (isinstance(digest, str) and len(digest) == 64) or role not in ROLES:
                raise InvalidInputError(
                    f"API key file {str(path)!r}: entry {name!r} needs sha256 = <64 hex digits> "
                    f"and role = one of {ROLES}"
                )
            if allowed is not None and not (
                isinstance(allowed, list) and all(isinstance(c, str) for c in allowed)
            ):
                raise InvalidInputError(
                    f"API key file {str(path)!r}: entry {name!r}: collections must be a list "
                    f"of collection names"
                )
            collections = None if allowed is None else frozenset(allowed)
            entries[name] = (digest.lower(), Principal(name, role, collections))
        return cls(entries)

    def authenticate(self, key: str | None) -> Principal:
        """The principal of ``key``, or ``AuthError`` (HTTP 401)."""
        if not key:
            raise AuthError(
                "this server needs an API key: send it as the 'api-key' header or "
                "'Authorization: Bearer <key>'",
                status=401,
            )
        digest = hash_key(key)
        found = None
        for expected, principal in self._entries.values():  # no early exit: constant time
            if hmac.compare_digest(digest, expected):
                found = principal
        if found is None:
            raise AuthError("the API key is not valid for this server", status=401)
        return found


def new_key(
    path: str | Path, name: str, role: str = "read-only", collections: list[str] | None = None
) -> str:
    """Append a key entry to the key file (created if missing) and return the key itself,
    which is stored nowhere else."""
    from slimvec.remote.names import check_name

    if role not in ROLES:
        raise InvalidInputError(f"role must be one of {ROLES}, got {role!r}")
    if not name.replace("-", "").replace("_", "").isalnum():
        raise InvalidInputError(f"key name {name!r}: use letters, digits, '-' and '_'")
    for c in collections or []:
        check_name(c)
    path = Path(path)
    existing = KeyFile.load(path)._entries if path.exists() else {}
    if name in existing:
        raise InvalidInputError(f"{str(path)!r} already has a key named {name!r}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    lines = [f"\n[keys.{name}]", f'sha256 = "{hash_key(key)}"', f'role = "{role}"']
    if collections is not None:
        lines.append("collections = [" + ", ".join(f'"{c}"' for c in collections) + "]")
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    path.chmod(0o600)
    return key
