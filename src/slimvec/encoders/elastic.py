"""Elastic text encoders: the first ``layers`` transformer layers and the first ``dims`` output
dimensions of a sentence-transformers model — an operating point of a 2D Matryoshka model.

Encoding cost grows with depth, storage and search cost with dimension; a model trained with
a 2D Matryoshka loss (2DMSE / Starbucks; sentence-transformers' ``Matryoshka2dLoss``) keeps
usable embeddings at shallow depths *and* short prefixes, so both become dials. Any model can be
cut this way — an untrained one just loses more quality (``benchmarks/elastic_encoder.py``
measures both).

The operating point is part of the model's identity: the name becomes
``"<model>@layers=L,dims=D"`` (the full point keeps the plain name), so a collection built at
(L, D) refuses an encoder at another point, and ``slimvec.open`` rebuilds the right one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from slimvec.encoders.sentence import DEFAULT_MODEL, SentenceTransformerEncoder
from slimvec.errors import InvalidInputError

_POINT = re.compile(r"^(?P<model>.+)@layers=(?P<layers>\d+),dims=(?P<dims>\d+)$")
#: Where the transformer blocks sit in common Hugging Face architectures.
_LAYER_PATHS = ("encoder.layer", "encoder.layers", "layers", "transformer.layer", "h")


def split_point(name: str) -> tuple[str, int, int] | None:
    """``"m@layers=3,dims=128"`` -> ("m", 3, 128); None for a plain model name."""
    match = _POINT.match(name)
    if match is None:
        return None
    return match["model"], int(match["layers"]), int(match["dims"])


def _blocks(model: Any) -> tuple[Any, str, Any]:
    """(parent module, attribute, ModuleList) of the transformer blocks of ``model``."""
    import torch

    auto = getattr(model[0], "auto_model", None)
    for path in _LAYER_PATHS:
        *parents, attr = path.split(".")
        parent = auto
        for name in parents:
            parent = getattr(parent, name, None)
        node = getattr(parent, attr, None)
        if isinstance(node, torch.nn.ModuleList):
            return parent, attr, node
    raise InvalidInputError(
        f"cannot find the transformer layers of {type(auto).__name__} (looked for "
        f"{', '.join(_LAYER_PATHS)}); layers= works with BERT-, RoBERTa- and GPT-style models"
    )


class ElasticEncoder(SentenceTransformerEncoder):
    """A sentence-transformers model run through its first ``layers`` layers, keeping the first
    ``dims`` dimensions (None = all). Raises ``InvalidInputError`` for layers outside 1..depth or
    dims outside 1..the model's dimension."""

    def __init__(
        self,
        model_name_or_path: str | Path = DEFAULT_MODEL,
        layers: int | None = None,
        dims: int | None = None,
        device: str = "cpu",
        query_prompt: str | None = None,
        doc_prompt: str | None = None,
    ):
        super().__init__(model_name_or_path, device, query_prompt, doc_prompt)
        parent, attr, blocks = _blocks(self.model)
        self.depth = len(blocks)
        self.full_dim = self.dim
        self.layers = self._check(layers, self.depth, "layers", "transformer layers")
        self.dims = self._check(dims, self.full_dim, "dims", "output dimensions")
        if self.layers < self.depth:  # drop the later blocks: they are never run
            import torch

            setattr(parent, attr, torch.nn.ModuleList(list(blocks)[: self.layers]))
            config = getattr(self.model[0].auto_model, "config", None)
            if config is not None and hasattr(config, "num_hidden_layers"):
                config.num_hidden_layers = self.layers
        self.dim = self.dims
        if (self.layers, self.dims) != (self.depth, self.full_dim):
            self.name = f"{self.name}@layers={self.layers},dims={self.dims}"

    def _check(self, value: int | None, top: int, what: str, unit: str) -> int:
        if value is None:
            return top
        if (
            isinstance(value, bool)
            or not isinstance(value, int | np.integer)
            or not (1 <= value <= top)
        ):
            raise InvalidInputError(
                f"{what} must be an integer in 1..{top} ({self.name!r} has {top} {unit}), "
                f"got {value!r}"
            )
        return int(value)

    def _encode(self, texts: list[str], kind: str, batch_size: int) -> np.ndarray:
        return np.asarray(super()._encode(texts, kind, batch_size))[:, : self.dims]

    def _encode_tokens(self, texts: list[str], kind: str, batch_size: int) -> list[np.ndarray]:
        return [t[:, : self.dims] for t in super()._encode_tokens(texts, kind, batch_size)]
