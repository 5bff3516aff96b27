"""Relative representations (Moschella et al., ICLR 2023): a vector as its cosines to anchors.

Two models embed the same texts in unrelated coordinates, but the *similarities* between texts
agree far better than the coordinates. Describing every vector by its cosine to a fixed set of
anchor texts (each model embedding the anchors itself) gives a space that no longer depends on
the model: a document stored as relative vector under model A can be searched by a query
embedded with model B, with no adapter fitted.

Cost, which is why it suits small collections only:

* dimension = number of anchors, and the quality needs many anchors (hundreds to thousands),
  so vectors are often *larger* than the originals (1,000 anchors = 1,000-d for a 384-d model)
  and every add or query costs one extra (n × dim × anchors) matrix product;
* it is lossy even within one model (the anchors span only part of the space), and the anchor
  texts must be embedded by every model that will ever read the space;
* measured on the Debian set (benchmarks/upgrade.py, MiniLM documents, anchors = sample
  documents, centred): within MiniLM recall@10 drops from 0.904 to 0.77 (300 anchors) – 0.78
  (1,200); with queries from a fine-tuned MiniLM successor it reaches 0.84 – 0.85 (re-embedded:
  0.95), from other model families far less: Gemma 0.52 – 0.58, e5 0.36 – 0.46 (re-embedded
  0.96 / 0.90). Usable between close model versions, not across families.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from slimvec.encoders import Encoder, get_encoder
from slimvec.errors import InvalidInputError, not_fitted
from slimvec.transforms.base import Transform, normalise_rows
from slimvec.validation import as_matrix, as_texts


class RelativeRepresentation(Transform):
    """``x -> cos(x, anchors)``, optionally centred, rows unit-normalised for cosine search.

    ``anchors`` are *this model's* embeddings of the shared anchor texts. With ``center=True``
    the anchors' mean is subtracted from vectors and anchors first: raw cosines between
    embeddings of one model share a large common component (anisotropy) that carries no
    information about which anchor a text is close to.
    """

    kind = "relative"
    prefix_renormalises = True

    def __init__(self, anchors: np.ndarray | None = None, center: bool = True, normalise=True):
        self.center = center
        self.normalise = normalise
        self.anchors: np.ndarray | None = None
        self.mean: np.ndarray | None = None
        super().__init__(0)
        if anchors is not None:
            self.set_anchors(anchors)

    def set_anchors(self, anchors: np.ndarray) -> RelativeRepresentation:
        a = as_matrix(anchors, None, "anchor vectors")
        if len(a) < 2:
            raise InvalidInputError(
                f"relative representations need at least 2 anchors, got {len(a)}; use a few "
                f"hundred anchor texts embedded with this model"
            )
        self.mean = a.mean(axis=0) if self.center else np.zeros(a.shape[1], np.float32)
        self.anchors = normalise_rows(a - self.mean)
        self.dim = len(a)
        return self

    def fit(self, x: np.ndarray) -> RelativeRepresentation:
        """Nothing to learn from data: the anchors define the space."""
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if self.anchors is None:
            raise not_fitted(self, first="set_anchors")
        v = as_matrix(x, None, "vectors")
        if v.shape[1] != self.anchors.shape[1]:
            raise InvalidInputError(
                f"vectors have {v.shape[1]} dims but the anchors were embedded in "
                f"{self.anchors.shape[1]}; embed anchors and vectors with the same model"
            )
        rel = normalise_rows(v - self.mean) @ self.anchors.T
        return normalise_rows(rel) if self.normalise else np.ascontiguousarray(rel, np.float32)

    def state(self) -> dict[str, np.ndarray]:
        if self.anchors is None:
            return {}
        return {"anchors": self.anchors, "mean": self.mean, "normalise": np.array(self.normalise)}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.anchors = np.asarray(state["anchors"], np.float32)
        self.mean = np.asarray(state["mean"], np.float32)
        self.normalise = bool(state["normalise"])
        self.center = bool(np.any(self.mean != 0))
        self.dim = len(self.anchors)


class RelativeEncoder(Encoder):
    """A model-agnostic space for a collection: any model's texts as cosines to anchor texts.

    ``slimvec.create(path, encoder=RelativeEncoder("all-MiniLM-L6-v2", anchor_texts))`` stores
    relative vectors; later ``slimvec.open(path, encoder=RelativeEncoder(new_model,
    anchor_texts))`` searches the same documents with another model, nothing re-embedded. The
    space's identity (name and fingerprint) is the anchor texts, not the model, so the
    collection accepts any model over the same anchors and refuses other anchors. Keep the
    anchor texts (a few hundred to a few thousand representative documents) with your code:
    they *are* the space. Lossy and larger than the model's own vectors (module docstring):
    for small collections that change models often, not for recall-critical search.
    """

    def __init__(
        self,
        model: str | Path | Encoder,
        anchor_texts: Sequence[str],
        *,
        center: bool = True,
        batch_size: int | None = None,
    ):
        texts = as_texts(anchor_texts, "anchor_texts")
        self.model = get_encoder(model)
        digest = hashlib.sha256(f"center={center}\x00".encode())
        for text in texts:
            digest.update(text.encode() + b"\x00")
        self.name = f"relative-{digest.hexdigest()[:12]}"
        self._fingerprint = digest.hexdigest()[:16]  # the anchors define the space
        anchors = self.model.encode(texts, kind="doc", batch_size=batch_size)
        self.relative = RelativeRepresentation(anchors, center=center)
        self.dim = self.relative.dim
        self.default_batch_size = self.model.default_batch_size  # type: ignore[misc]

    def _encode(self, texts: list[str], kind: str, batch_size: int) -> np.ndarray:
        vectors = self.model.encode(texts, kind=kind, batch_size=batch_size, progress=False)  # type: ignore[arg-type]
        return self.relative.transform(vectors)

    def __repr__(self) -> str:
        return f"RelativeEncoder(model={self.model.name!r}, anchors={self.dim}, name={self.name!r})"
