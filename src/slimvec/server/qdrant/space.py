"""A Qdrant collection's vector space over a slimvec collection: size, distance, payload
index schemas, kept in ``qdrant.json`` in the collection's directory.

Cosine and Dot are slimvec's ``cosine`` and ``ip`` metrics. slimvec has no Euclidean metric,
so an ``Euclid`` collection stores each vector ``x`` as ``[x, -|x|²/2]`` in an ``ip``
collection one dimension wider, and searches with ``[q, 1]``: the inner product is then
``(|q|² - |q - x|²) / 2``, which ranks exactly as the distance does and gives it back as
``sqrt(|q|² - 2·score)``. A collection without ``qdrant.json`` (created by slimvec) is Cosine
or Dot by its metric.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import slimvec
from slimvec.errors import InvalidInputError

CONFIG = "qdrant.json"
METRICS = {"Cosine": "cosine", "Dot": "ip", "Euclid": "ip"}


@dataclass
class Space:
    size: int
    distance: str
    indexes: dict[str, str] = field(default_factory=dict)  # payload key -> Qdrant data type
    metadata: dict[str, Any] | None = None

    @classmethod
    def of(cls, col: slimvec.Collection) -> Space:
        path = Path(col.path) / CONFIG
        if path.is_file():
            return cls(**json.loads(path.read_text()))
        return cls(col.dim, "Cosine" if col.metric == "cosine" else "Dot")

    def save(self, directory: Path) -> None:
        part = directory / (CONFIG + ".part")
        part.write_text(json.dumps(asdict(self)))
        os.replace(part, directory / CONFIG)

    @property
    def euclid(self) -> bool:
        return self.distance == "Euclid"

    def dim(self) -> int:
        """The slimvec collection's dimension."""
        return self.size + 1 if self.euclid else self.size

    def check(self, vectors: Any, where: str) -> np.ndarray:
        """Vectors of this space as an (n, size) float32 array, or a 400 naming ``where``."""
        try:
            array = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"{where}: a vector is a list of {self.size} numbers (named, sparse and "
                f"multi-vectors are not supported)"
            ) from None
        if array.ndim != 2 or array.shape[1] != self.size:
            got = array.shape[-1] if array.ndim else "no"
            raise InvalidInputError(
                f"Wrong input: Vector dimension error: expected dim: {self.size}, got {got} "
                f"({where})"
            )
        if not np.isfinite(array).all():
            raise InvalidInputError(f"{where}: vectors hold NaN or infinity")
        return array

    def stored(self, vectors: np.ndarray) -> np.ndarray:
        if not self.euclid:
            return vectors
        norms = np.einsum("ij,ij->i", vectors, vectors)
        return np.hstack([vectors, (-0.5 * norms)[:, None]]).astype(np.float32)

    def queries(self, vectors: np.ndarray) -> np.ndarray:
        if not self.euclid:
            return vectors
        return np.hstack([vectors, np.ones((len(vectors), 1), np.float32)])

    def scores(self, raw: np.ndarray, queries: np.ndarray) -> np.ndarray:
        """Qdrant's scores: similarities for Cosine and Dot, distances for Euclid."""
        if not self.euclid:
            return raw
        norms = np.einsum("ij,ij->i", queries, queries).astype(np.float64)
        return np.sqrt(np.maximum(norms[:, None] - 2.0 * raw, 0.0))

    def original(self, stored: np.ndarray) -> np.ndarray:
        return stored[:, : self.size] if self.euclid else stored

    def better(self, score: float, threshold: float) -> bool:
        """Whether a score passes ``score_threshold`` (at most it, for distances)."""
        return score <= threshold if self.euclid else score >= threshold

    def describe(self) -> dict[str, Any]:
        return {"size": self.size, "distance": self.distance}
