"""Which embedding model a vector space belongs to, so vectors from two models never mix.

Vectors from different models are not comparable: a 384-d MiniLM vector and a 384-d e5 vector
have the same shape and unrelated coordinates, and searching one with the other returns noise
without any error. A :class:`SpaceIdentity` (model name, dimension and, when an encoder is
attached, a fingerprint of its embeddings of fixed probe texts) is recorded with every space;
:meth:`SpaceIdentity.check_compatible` refuses foreign vectors with a message saying why and
what to do instead (start a model upgrade).

Matching rules: dimensions must agree; when both sides carry a fingerprint, the fingerprints
decide (names are labels: ``"all-MiniLM-L6-v2"`` and a local path to the same weights match);
otherwise the names must agree (case-insensitive). Names and fingerprints compare with
:func:`slimvec.encoders.base.same_name` / ``same_weights``, as a collection's encoder check does.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from slimvec.encoders.base import same_name, same_weights
from slimvec.errors import InvalidInputError, SpaceMismatchError
from slimvec.validation import check_int


class EncoderLike(Protocol):
    """What :meth:`SpaceIdentity.from_encoder` needs (``slimvec.encoders.Encoder`` has it)."""

    name: str
    dim: int

    def fingerprint(self) -> str: ...


@dataclass(frozen=True)
class SpaceIdentity:
    """Model identity of a vector space: ``name``, ``dim``, an optional ``fingerprint`` and the
    probe values behind it (which tell float noise that flipped the fingerprint from another
    model, see ``slimvec.encoders.base.model_mismatch``)."""

    name: str
    dim: int
    fingerprint: str | None = None
    probe: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidInputError(
                f"a space needs a model name (a non-empty string), got {self.name!r}"
            )
        # frozen: store the checked value as a plain int (a NumPy integer would not go to JSON)
        object.__setattr__(self, "dim", check_int(self.dim, "a space's dim"))
        if self.fingerprint is not None and (
            not isinstance(self.fingerprint, str) or not self.fingerprint
        ):
            raise InvalidInputError(
                f"fingerprint must be a non-empty string or None, got {self.fingerprint!r}"
            )

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_encoder(cls, encoder: EncoderLike) -> SpaceIdentity:
        """Identity of the space ``encoder`` embeds into (runs it once on the probe texts)."""
        missing = [a for a in ("name", "dim") if not hasattr(encoder, a)]
        if missing or not callable(getattr(encoder, "fingerprint", None)):
            raise InvalidInputError(
                f"{type(encoder).__name__} is not an encoder: it needs .name, .dim and "
                f".fingerprint() (see slimvec.encoders)"
            )
        probe = getattr(encoder, "probe_values", None)
        return cls(
            str(encoder.name),
            int(encoder.dim),
            str(encoder.fingerprint()),
            tuple(probe()) if callable(probe) else None,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.probe is None:
            del data["probe"]
        else:
            data["probe"] = list(self.probe)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> SpaceIdentity:
        if not isinstance(data, dict) or not {"name", "dim"} <= data.keys():
            raise InvalidInputError(
                f"a space identity is a dict with 'name', 'dim' and optionally 'fingerprint', "
                f"got {data!r}"
            )
        unknown = data.keys() - {"name", "dim", "fingerprint", "probe"}
        if unknown:
            raise InvalidInputError(f"unknown space identity fields {sorted(unknown)}")
        probe = data.get("probe")
        return cls(
            data["name"],
            data["dim"],
            data.get("fingerprint"),
            None if probe is None else tuple(float(v) for v in probe),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SpaceIdentity:
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"space identity is not valid JSON ({exc})") from exc
        return cls.from_dict(data)

    # -- comparison ---------------------------------------------------------------------------
    @property
    def label(self) -> str:
        return f"{self.name!r} ({self.dim}-d)"

    def mismatch(self, other: SpaceIdentity) -> str | None:
        """Why vectors of ``other`` cannot join this space, or None when they can."""
        if self.dim != other.dim:
            return f"the dimensions differ ({other.dim} vs {self.dim})"
        if self.fingerprint is not None and other.fingerprint is not None:
            if same_weights(self.fingerprint, self.probe, other.fingerprint, other.probe):
                return None
            if same_name(self.name, other.name):
                return (
                    f"the model's fingerprint changed ({other.fingerprint} vs "
                    f"{self.fingerprint}): same name, different weights, revision or settings "
                    f"(prompt, pooling, normalisation)"
                )
            return (
                f"they are different models (fingerprints {other.fingerprint} vs "
                f"{self.fingerprint})"
            )
        if not same_name(self.name, other.name):
            return "they are different models (and no fingerprint shows they embed alike)"
        return None

    def compatible(self, other: SpaceIdentity) -> bool:
        return self.mismatch(other) is None

    def check_compatible(self, other: SpaceIdentity) -> None:
        """Raise :class:`SpaceMismatchError` unless vectors of ``other`` may join this space."""
        reason = self.mismatch(other)
        if reason is not None:
            raise SpaceMismatchError(
                f"vectors from model {other.label} cannot be added to a space of model "
                f"{self.label}: {reason}. Embed them with {self.name!r}, or switch models "
                f"with an upgrade (Collection.begin_upgrade) instead of mixing spaces"
            )
