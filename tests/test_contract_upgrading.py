"""The shared API contract (api_contract.py) against collections with a model upgrade in
progress: each is created with an old model, then ``begin_upgrade`` to a new one (fitted on a
sample of texts, so it starts empty). Vectors given to ``add`` / ``search`` are the old
model's and land in the old space; texts go to the new model's space."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import slimvec
from api_contract import *  # noqa: F403 - the shared tests
from api_contract import __all__ as _contract  # noqa: F401
from slimvec.encoders import Encoder

SAMPLE = [f"sample {i} on {['html', 'fonts', 'sqlite', 'images'][i % 4]} tools" for i in range(120)]


class Model(Encoder):
    """A deterministic stand-in for an embedding model (no torch): a seeded vector per text."""

    def __init__(self, name: str, dim: int, seed: int):
        self.name, self.dim, self.seed = name, dim, seed

    def _encode(self, texts, kind, batch_size):
        rows = [
            np.random.default_rng([self.seed, *map(ord, t[:32])]).standard_normal(self.dim)
            for t in texts
        ]
        return np.array(rows, np.float32)


@pytest.fixture(params=["upgrading"])
def make_collection(tmp_path):
    counter = itertools.count()
    made = []

    def make(name, dim=None, encoder=None, **create_kwargs):
        old = encoder or Model(f"old-{dim}", dim, 0)
        path = tmp_path / f"{name}-{next(counter)}"
        col = slimvec.create(path, dim, encoder=old, **create_kwargs)
        col = col.begin_upgrade(Model("new-24", 24, 1), sample_texts=SAMPLE)
        assert isinstance(col, slimvec.UpgradingCollection) and len(col) == 0
        made.append(col)
        return col

    def reopen(col):
        old, path = col.encoder, col.path
        col.close()
        made.append(slimvec.open(path, encoder=old))
        assert isinstance(made[-1], slimvec.UpgradingCollection)
        return made[-1]

    make.has_encoder = True  # an upgrade always has its two models
    make.reopen = reopen
    make.cannot = {
        "string ids": "model upgrades of string-id collections are not supported yet",
        "upsert": "upsert during a model upgrade is not supported yet",
    }
    yield make
    for col in made:
        col.close()
