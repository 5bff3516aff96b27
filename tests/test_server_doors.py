"""What a server lets a client learn or load: /metrics shows a key only its collections,
create names only the models the server was started with, /docs works offline."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from starlette.testclient import TestClient

import slimvec
from api_contract import HashEncoder
from slimvec.server.app import create_app
from slimvec.server.auth import KeyFile, new_key

DIM = 4
JSON = {"content-type": "application/json"}


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


# -- create names only the models the server was started with ----------------------------------
@pytest.fixture
def loads(monkeypatch):
    """Every model load a create asks for (by name or path), answered with a fake model."""
    import slimvec.encoders

    asked = []

    def get_encoder(name, *args, **kwargs):
        asked.append(name)
        return name if isinstance(name, HashEncoder) else HashEncoder()

    monkeypatch.setattr(slimvec.encoders, "get_encoder", get_encoder)
    return asked


@pytest.mark.parametrize(
    "options",
    [
        {"encoder": "/etc/passwd"},
        {"encoder": "../../root/model"},
        {"encoder": "sentence-transformers/no-such-model-anywhere"},
        {"encoder": "all-MiniLM-L6-v2"},  # a real model, but not one this server offers
        {"encoder": 5},
        {"encoder": {"name": "hash-16"}},
        {"encoder": "\ud800"},
        {"dim": DIM, "layers": 3},  # an operating point of the default model
    ],
)
def test_create_refuses_models_the_server_was_not_started_with(tmp_path, loads, options):
    app = create_app(tmp_path, encoders={"hash-16": HashEncoder()}, models=["e5-offered"])
    with TestClient(app, raise_server_exceptions=False) as client:
        body = json.dumps(options)  # ASCII: "\ud800" travels as JSON's escape
        response = client.put("/collections/c", content=body, headers=JSON)
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    if "encoder" in options:
        assert "offered: e5-offered, hash-16" in message and "--models" in message
    assert "is a file" not in message and str(tmp_path) not in message
    assert loads == []  # no file probed, no model fetched
    assert not (tmp_path / "c").exists()


def test_create_loads_an_offered_model_by_name(tmp_path, loads):
    app = create_app(tmp_path, encoders={"hash-16": HashEncoder()}, models=["e5-offered"])
    with TestClient(app) as client:
        assert client.put("/collections/a", json={"encoder": "e5-offered"}).status_code == 201
        assert client.put("/collections/b", json={"encoder": "hash-16"}).status_code == 201
        info = client.get("/collections/b").json()
    assert loads[0] == "e5-offered" and isinstance(loads[1], HashEncoder)
    assert info["encoder"]["name"] == "hash-16"


def test_serve_models_reach_the_workers_app(tmp_path, monkeypatch):
    """`slimvec serve --models a,b` -> ServeConfig -> each worker's create_app."""
    from typer.testing import CliRunner

    import slimvec.server.app as server_app
    from slimvec.cli import app as cli

    configs = []
    monkeypatch.setattr(server_app, "serve", lambda config, **kw: configs.append(config))
    result = CliRunner().invoke(cli, ["serve", str(tmp_path), "--models", "a-model, b-model,"])
    assert result.exit_code == 0, result.output
    assert configs[0].models == ["a-model", "b-model"]
    monkeypatch.setenv(server_app.CONFIG_ENV, json.dumps({**vars(configs[0])}))
    with TestClient(server_app.app_from_env(), raise_server_exceptions=False) as client:
        response = client.put("/collections/c", json={"encoder": "c-model"})
    assert response.status_code == 400
    assert "offered: a-model, b-model" in response.json()["error"]["message"]


# -- /docs and /redoc work offline ---------------------------------------------------------------
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_pages_load_only_packaged_assets(tmp_path, page):
    with TestClient(create_app(tmp_path)) as client:
        html = client.get(page)
        assert html.status_code == 200
        assert not re.search(r"https?:|//[a-z]", html.text, flags=re.I), html.text
        assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
        assert any(a.endswith(".js") for a in assets)
        urls = [*assets, re.search(r"(/openapi\.json)", html.text).group(1)]
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200 and len(response.content) > 1000, url


def test_an_integer_too_long_to_read_is_a_400(tmp_path):
    """CPython refuses to read integers of more than 4,300 digits: that was a 500."""
    slimvec.create(tmp_path / "c", dim=DIM)
    body = b'{"vectors": [[1, 1, 1, 1]], "ids": [' + b"9" * 5000 + b"]}"
    with TestClient(create_app(tmp_path), raise_server_exceptions=False) as client:
        response = client.post("/collections/c/points", content=body, headers=JSON)
        assert response.status_code == 400, response.text
        assert "more than 4,300 digits" in response.json()["error"]["message"]
        assert client.get("/collections/c/count").json() == {"count": 0}
