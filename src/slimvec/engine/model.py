"""The model a collection embeds texts with: recorded in the manifest, loaded on first use.

The manifest records which model made a collection's vectors (name, dim, fingerprint:
:func:`slimvec.encoders.encoder_spec`). A handle loads that model by name the first time a
text is embedded, or takes an ``Encoder`` object the caller attaches (a custom or local model);
either way the object is checked against the record, because vectors of two models must never
be mixed. A commit that changes the record (a finished model upgrade) drops the loaded model.
"""

from __future__ import annotations

import threading
from typing import Any

from slimvec.errors import InvalidInputError


class ModelSlot:
    """One handle's text encoder, checked against the record of the view it serves."""

    def __init__(self, where: str, create: str = "slimvec.create(path, "):
        self.where, self.create = where, create  # the collection and its maker, for messages
        self.model: Any = None
        self.record: dict | None = None  # what ``model`` was checked against
        self._lock = threading.Lock()  # two threads' first text call load the model once

    def follow(self, record: dict | None) -> None:
        """A new view: keep the model only if the view records the same one."""
        if record != self.record:
            self.model = None

    def attach(self, encoder: Any, record: dict | None) -> Any:
        """Use ``encoder`` (a name, path or ``Encoder``) if it is the recorded model."""
        from slimvec.encoders import encoder_spec, get_encoder
        from slimvec.encoders.base import model_mismatch

        model = get_encoder(encoder)
        if record is None:
            raise InvalidInputError(
                f"collection {self.where} was created without an encoder; it cannot take one"
            )
        found = encoder_spec(model)
        field = model_mismatch(record, found)
        if field is not None:
            raise InvalidInputError(
                f"encoder {found['name']!r} ({found['dim']}-d, fingerprint "
                f"{found['fingerprint']}) is not the model this collection was built with "
                f"({record['name']!r}, {record['dim']}-d, fingerprint "
                f"{record['fingerprint']}): its {field} differs. Vectors of different "
                f"models must not be mixed; use the original model"
            )
        self.model, self.record = model, record
        return model

    def get(self, record: dict | None) -> Any:
        """The recorded model, loaded by name on first use."""
        with self._lock:
            if self.model is None:
                if record is None:
                    raise InvalidInputError(
                        f"collection {self.where} has no encoder, so it takes vectors, not "
                        f"texts; create it with {self.create}encoder='all-MiniLM-L6-v2')"
                    )
                self.attach(record["name"], record)
            return self.model


def resolve(encoder: Any, dim: Any) -> tuple[Any, Any]:
    """(model or None, dim) for a new collection: an encoder decides the dim, and a ``dim``
    given beside it must agree."""
    if encoder is None:
        return None, dim
    from slimvec.encoders import get_encoder

    model = get_encoder(encoder)
    if dim is not None and dim != model.dim:
        raise InvalidInputError(
            f"dim={dim} but encoder {model.name!r} gives {model.dim}-dim vectors; "
            f"leave dim out to take the encoder's"
        )
    return model, model.dim
