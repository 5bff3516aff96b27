"""The shared API contract (api_contract.py) against sharded collections: 2 shards on a local
Ray cluster (``ray.init(num_cpus=2)``, started once for the module; ~5 s)."""

from __future__ import annotations

import itertools

import pytest

ray = pytest.importorskip("ray")

import slimvec.distributed as sd  # noqa: E402 - needs Ray
from api_contract import *  # noqa: E402, F403 - the shared tests
from api_contract import __all__ as _contract  # noqa: E402, F401


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(params=["sharded"])
def make_collection(request, tmp_path, ray_local):
    """A fresh 2-shard collection per call, closed (its actors stopped) after the test."""
    counter = itertools.count()
    made = []

    def make(name, dim=None, **create_kwargs):
        col = sd.create(tmp_path / f"{name}-{next(counter)}", dim, shards=2, **create_kwargs)
        made.append(col)
        return col

    def reopen(col):
        col.close()
        made.append(sd.open(col.root))
        return made[-1]

    make.get_order = "id"  # get() without ids lists by id / key, not insertion order
    make.reopen = reopen
    yield make
    for col in made:
        col.close()
