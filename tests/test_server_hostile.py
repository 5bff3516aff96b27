"""Hostile requests get a 4xx with a clear message, never a 500 or the server's paths."""

import base64
import io
import json

import numpy as np
import pytest
from starlette.testclient import TestClient

from slimvec.server.app import create_app

DIM = 4


@pytest.fixture
def client(tmp_path):
    (tmp_path / "notes.txt").write_text("a plain file in the served directory")
    with TestClient(create_app(tmp_path), raise_server_exceptions=False) as c:
        assert c.put("/collections/c", json={"dim": DIM}).status_code == 201
        c.post("/collections/c/points", json={"vectors": np.eye(DIM).tolist()})
        yield c, tmp_path


def _b64(shape, nbytes=0):
    return {"b64": base64.b64encode(b"\0" * nbytes).decode(), "dtype": "float32", "shape": shape}


def _npy_claiming(rows):
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((1, DIM), np.float32))
    data = buffer.getvalue()
    return data.replace(b"(1, 4)", f"({rows}, 4)".encode().ljust(6))


@pytest.mark.parametrize(
    "route, body, words",
    [
        ("search", b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        ("search", json.dumps({"vectors": _b64([2**32, 2**32])}), "do not hold"),
        ("search", json.dumps({"vectors": _b64([2.5, 8], 80)}), "not a list of integers"),
        ("points", json.dumps({"vectors": [[1, 0, 0, 0]], "ids": [2**64]}), "id"),
        ("points/get", json.dumps({"ids": [2**64]}), "id"),
    ],
)
def test_bad_bodies_are_4xx(client, route, body, words):
    c, root = client
    response = c.post(
        f"/collections/c/{route}", content=body, headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text
    assert words in response.json()["error"]["message"]
    assert str(root) not in response.text


def test_an_npy_header_claiming_more_rows_than_sent_is_refused(client):
    c, _ = client
    for rows in (10**12, 2):
        response = c.post(
            "/collections/c/search",
            content=_npy_claiming(rows),
            headers={"content-type": "application/x-npy"},
        )
        assert response.status_code == 400, response.text
        assert "declares shape" in response.json()["error"]["message"]


def test_a_plain_file_is_not_a_collection(client):
    c, root = client
    for path in ("/collections/notes.txt", "/collections/notes.txt/count"):
        response = c.get(path)
        assert response.status_code == 404, response.text
        assert str(root) not in response.text


def test_lookups_refuse_ids_that_are_not_integers(tmp_path):
    import slimvec

    col = slimvec.create(tmp_path / "c", dim=DIM)
    col.add(np.eye(DIM, dtype=np.float32), metadata=[{"i": i} for i in range(DIM)])
    for bad in ([2**64], [1.5]):  # 1.5 used to answer id 1's metadata
        for lookup in (col.get, col.metadata, col.texts):
            with pytest.raises(slimvec.InvalidInputError, match="64-bit integers"):
                lookup(bad)
    assert col.metadata([-1, 1]) == [None, {"i": 1}]  # unknown ids: None, as documented


def test_serve_refuses_a_missing_directory_unless_asked_to_create_it(tmp_path):
    from typer.testing import CliRunner

    from slimvec.cli import app

    result = CliRunner().invoke(app, ["serve", str(tmp_path / "typo")])
    assert result.exit_code == 2 and "--create" in result.output
    assert not (tmp_path / "typo").exists()
