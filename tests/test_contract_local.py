"""The shared API contract (api_contract.py) against local collections."""

from __future__ import annotations

import itertools

import pytest

import slimvec
from api_contract import *  # noqa: F403 - the shared tests
from api_contract import __all__ as _contract  # noqa: F401


@pytest.fixture(params=["local"])
def make_collection(tmp_path):
    counter = itertools.count()

    def make(name, dim=None, **create_kwargs):
        return slimvec.create(tmp_path / f"{name}-{next(counter)}", dim, **create_kwargs)

    def reopen(col):
        col.close()
        return slimvec.open(col.path)

    make.reopen = reopen
    return make
