"""What a server lets a client learn or load: /metrics shows a key only its collections,
create names only the models the server was started with, /docs works offline."""

from __future__ import annotations

import re

import numpy as np
from starlette.testclient import TestClient

import slimvec
from slimvec.server.app import create_app
from slimvec.server.auth import KeyFile, new_key

DIM = 4


def test_metrics_show_an_allow_listed_key_only_its_collections(tmp_path):
    root = tmp_path / "root"
    slimvec.create(root / "mine", dim=DIM).add(np.eye(DIM, dtype=np.float32)[:3])
    slimvec.create(root / "secret-x", dim=DIM).add(np.eye(DIM, dtype=np.float32))
    keys = tmp_path / "keys.toml"
    narrow = new_key(keys, "narrow", collections=["mine"])
    wide = new_key(keys, "wide")
    with TestClient(create_app(root, keys=KeyFile.load(keys))) as client:
        seen = {}
        for name, key in (("narrow", narrow), ("wide", wide)):
            response = client.get("/metrics", headers={"api-key": key})
            assert response.status_code == 200
            if name == "narrow":
                assert "secret-x" not in response.text
            seen[name] = re.findall(
                r'^slimvec_collection_vectors\{collection="([^"]+)"\} (\S+)$',
                response.text,
                flags=re.M,
            )
    assert seen["wide"] == [("mine", "3.0"), ("secret-x", "4.0")]
    assert seen["narrow"] == [("mine", "3.0")]
