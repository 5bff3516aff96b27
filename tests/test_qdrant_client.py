"""The real qdrant-client (pinned in the dev extra) against a real ``slimvec serve``: every
call of the Qdrant API subset slimvec answers, results checked against NumPy brute force and
against the same collection read through ``slimvec.connect``, and bad requests answered with
Qdrant-shaped 4xx errors."""

from __future__ import annotations

import runpy
import uuid
import warnings

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse
from tests.serving import process_server

import slimvec
from slimvec.server.auth import new_key

DIM, N = 16, 300
RNG = np.random.default_rng(7)
VECTORS = RNG.standard_normal((N, DIM)).astype(np.float32)
QUERIES = RNG.standard_normal((5, DIM)).astype(np.float32)
UUIDS = [str(uuid.UUID(int=int(i) * 7919 + 1)) for i in range(N)]


def ids_of(i: int) -> int | str:
    """Half the points have integer ids, half UUIDs: one collection holds both, as in Qdrant."""
    return i if i % 2 else UUIDS[i]


def payload_of(i: int) -> dict:
    return {"n": i, "group": "even" if i % 2 == 0 else "odd", "meta": {"tens": i // 10}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("qdrant")
    key_file = tmp / "keys.toml"
    keys = {r: new_key(key_file, r, r) for r in ("read-write", "read-only")}
    (tmp / "root").mkdir()
    with process_server(tmp / "root", "--api-key-file", str(key_file)) as (url, _):
        yield url, keys


@pytest.fixture(scope="module")
def client(server):
    url, keys = server
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Api key is used with an insecure connection"
        yield QdrantClient(url=url, prefix="qdrant", api_key=keys["read-write"], timeout=60)


def brute_force(distance: str, stored: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Qdrant's scores of every stored vector (similarities, or distances for Euclid)."""
    if distance == "Cosine":
        s = stored / np.linalg.norm(stored, axis=1, keepdims=True)
        return s @ (query / np.linalg.norm(query))
    if distance == "Dot":
        return stored @ query
    return np.linalg.norm(stored - query, axis=1)


@pytest.fixture(scope="module", params=["Cosine", "Dot", "Euclid"])
def filled(request, client):
    name = f"points-{request.param.lower()}"
    distance = models.Distance(request.param)
    assert client.create_collection(name, models.VectorParams(size=DIM, distance=distance))
    client.upsert(
        name,
        [
            models.PointStruct(id=ids_of(i), vector=VECTORS[i], payload=payload_of(i))
            for i in range(N)
        ],
    )
    return name, request.param


def expected(distance: str, query: np.ndarray, limit: int, rows: np.ndarray | None = None) -> tuple:
    rows = np.arange(N) if rows is None else rows
    scores = brute_force(distance, VECTORS[rows], query)
    order = np.argsort(scores if distance == "Euclid" else -scores, kind="stable")[:limit]
    return [ids_of(int(rows[i])) for i in order], scores[order]


def test_query_points_matches_brute_force_for_each_distance(client, filled):
    name, distance = filled
    info = client.get_collection(name)
    assert info.points_count == N and info.config.params.vectors.size == DIM
    assert info.config.params.vectors.distance == models.Distance(distance)
    for q in QUERIES:
        got = client.query_points(name, query=q.tolist(), limit=10).points
        ids, scores = expected(distance, q, 10)
        assert [p.id for p in got] == ids
        np.testing.assert_allclose([p.score for p in got], scores, rtol=1e-4, atol=1e-4)
    # filter, offset, score threshold, payload and vectors in one request
    q = QUERIES[0]
    rows = np.array([i for i in range(N) if i % 2 == 0 and i // 10 >= 5])
    ids, scores = expected(distance, q, 8, rows)
    flt = models.Filter(
        must=[models.FieldCondition(key="group", match=models.MatchValue(value="even"))],
        must_not=[models.FieldCondition(key="meta.tens", range=models.Range(lt=5))],
    )
    got = client.query_points(
        name, query=q.tolist(), query_filter=flt, limit=5, offset=3, with_payload=True,
        with_vectors=True, score_threshold=float(scores[6] + scores[7]) / 2,
    ).points  # fmt: skip
    assert [p.id for p in got] == ids[3:7]  # offset 3; the threshold keeps 7 of 8
    i = ids[3] if isinstance(ids[3], int) else UUIDS.index(ids[3])
    assert got[0].payload == payload_of(i)
    stored = VECTORS[i] / (np.linalg.norm(VECTORS[i]) if distance == "Cosine" else 1)
    np.testing.assert_allclose(got[0].vector, stored, rtol=1e-5, atol=1e-6)
    # a batch, and a point id as the query (the point itself left out)
    batch = client.query_batch_points(
        name, [models.QueryRequest(query=q.tolist(), limit=3) for q in QUERIES[:2]]
    )
    assert [[p.id for p in r.points] for r in batch] == [
        expected(distance, q, 3)[0] for q in QUERIES[:2]
    ]
    by_id = client.query_points(name, query=ids_of(5), limit=3).points
    others = np.array([i for i in range(N) if i != 5])
    assert [p.id for p in by_id] == expected(distance, VECTORS[5], 3, others)[0]


def test_same_ids_and_scores_as_slimvec_connect(client, filled, server):
    """The collection read through slimvec's own client gives the same answer. An Euclid
    collection is, to slimvec, an inner-product one a dimension wider: searched with
    ``[q, 1]``, its scores ``s`` are the distances ``sqrt(|q|^2 - 2 s)``."""
    name, distance = filled
    url, keys = server
    col = slimvec.connect(url, api_key=keys["read-only"]).open(name)
    queries = QUERIES
    if distance == "Euclid":
        queries = np.hstack([QUERIES, np.ones((len(QUERIES), 1), np.float32)])
    res = col.search(queries, k=10)
    for q, ids, scores in zip(QUERIES, res.ids, res.scores):
        if distance == "Euclid":
            scores = np.sqrt(np.maximum(float(q @ q) - 2.0 * scores.astype(np.float64), 0))
        got = client.query_points(name, query=q.tolist(), limit=10).points
        assert [p.id for p in got] == [int(k) if k.isdigit() else k for k in ids]
        np.testing.assert_allclose([p.score for p in got], scores, rtol=1e-6)


def test_retrieve_scroll_count(client, filled):
    name, _ = filled
    got = client.retrieve(name, [ids_of(3), ids_of(4), 10**6], with_vectors=False)
    assert [r.id for r in got] == [3, UUIDS[4]] and got[0].payload == payload_of(3)
    # scroll: integer ids ascending, then UUIDs, pages chained by next_page_offset
    seen, offset = [], None
    odd = models.Filter(
        must=[models.FieldCondition(key="group", match=models.MatchValue(value="odd"))]
    )
    while True:
        page, offset = client.scroll(name, scroll_filter=odd, limit=40, offset=offset)
        seen += [r.id for r in page]
        if offset is None:
            break
    assert seen == list(range(1, N, 2))
    page, _ = client.scroll(name, limit=3, offset=UUIDS[0], with_payload=False)
    in_order = sorted(UUIDS[::2], key=lambda u: uuid.UUID(u).int)
    assert [r.id for r in page] == in_order[in_order.index(UUIDS[0]) :][:3]
    assert client.count(name).count == N
    tens = models.Filter(
        must=[models.FieldCondition(key="meta.tens", match=models.MatchAny(any=[0, 1]))]
    )
    assert client.count(name, count_filter=tens).count == 20


def test_writes_payload_and_indexes(client):
    name = "writes"
    client.create_collection(name, models.VectorParams(size=DIM, distance=models.Distance.COSINE))
    points = [
        models.PointStruct(id=ids_of(i), vector=VECTORS[i].tolist(), payload=payload_of(i))
        for i in range(20)
    ]
    client.upload_points(name, points, wait=True)
    client.upsert(
        name, models.Batch(ids=[100, 101], vectors=VECTORS[:2].tolist(), payloads=[{"x": None}, {}])
    )
    assert client.count(name).count == 22
    null = models.Filter(must=[models.IsNullCondition(is_null=models.PayloadField(key="x"))])
    assert [r.id for r in client.scroll(name, scroll_filter=null)[0]] == [100]
    client.upsert(name, [models.PointStruct(id=100, vector=VECTORS[5].tolist(), payload={"x": 1})])
    assert client.retrieve(name, [100])[0].payload == {"x": 1} and client.count(name).count == 22

    client.set_payload(name, {"flag": True}, points=[1, 3])
    client.set_payload(name, {"k": "v"}, points=[1], key="meta")
    client.delete_payload(name, ["n"], points=[3])
    client.overwrite_payload(name, {"only": 1}, points=[5])
    flagged = models.Filter(
        must=[models.FieldCondition(key="flag", match=models.MatchValue(value=True))]
    )
    client.set_payload(name, {"seen": 1}, points=flagged)
    client.clear_payload(name, [7])
    got = {r.id: r.payload for r in client.retrieve(name, [1, 3, 5, 7])}
    assert got[1] == {**payload_of(1), "flag": True, "seen": 1, "meta": {"tens": 0, "k": "v"}}
    assert got[3] == {"group": "odd", "meta": {"tens": 0}, "flag": True, "seen": 1}
    assert got[5] == {"only": 1} and got[7] == {}

    client.create_payload_index(name, "n", models.PayloadSchemaType.INTEGER)
    schema = client.get_collection(name).payload_schema
    assert schema["n"].data_type == models.PayloadSchemaType.INTEGER and schema["n"].points == 17
    client.delete_payload_index(name, "n")
    assert client.get_collection(name).payload_schema == {}

    client.delete(name, [1, 999])  # an unknown id is no error, as in Qdrant
    big = models.Filter(must=[models.FieldCondition(key="n", range=models.Range(gte=10))])
    client.delete(name, models.FilterSelector(filter=big))
    assert client.count(name).count == 22 - 1 - 10
    assert client.delete_collection(name) and not client.collection_exists(name)
    assert name not in [c.name for c in client.get_collections().collections]


def test_legacy_search_routes(client, filled, server):
    """search and search/batch: gone from qdrant-client 1.20, still sent by older clients."""
    name, distance = filled
    url, keys = server
    base = f"{url}/qdrant/collections/{name}/points"
    headers = {"api-key": keys["read-only"]}
    body = {"vector": QUERIES[1].tolist(), "limit": 4, "offset": 1, "with_payload": ["n"]}
    reply = httpx.post(f"{base}/search", json=body, headers=headers).json()
    assert reply["status"] == "ok" and isinstance(reply["time"], float)
    ids, _ = expected(distance, QUERIES[1], 5)
    assert [p["id"] for p in reply["result"]] == ids[1:]
    i = ids[1] if isinstance(ids[1], int) else UUIDS.index(ids[1])
    assert reply["result"][0]["payload"] == {"n": i}
    batch = {"searches": [{"vector": q.tolist(), "limit": 2} for q in QUERIES[:3]]}
    reply = httpx.post(f"{base}/search/batch", json=batch, headers=headers).json()
    assert [[p["id"] for p in r] for r in reply["result"]] == [
        expected(distance, q, 2)[0] for q in QUERIES[:3]
    ]


def qdrant_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) <= {"status", "time", "result"} and isinstance(body["status"]["error"], str)
    return body["status"]["error"]


def test_bad_requests_get_qdrant_shaped_4xx(client, filled, server):
    name, _ = filled
    url, keys = server
    base = f"{url}/qdrant/collections"
    rw, ro = {"api-key": keys["read-write"]}, {"api-key": keys["read-only"]}
    assert "doesn't exist" in qdrant_error(httpx.get(f"{base}/nope", headers=ro), 404)
    assert "dimension" in qdrant_error(
        httpx.post(f"{base}/{name}/points/query", json={"query": [1.0, 2.0]}, headers=ro), 400
    )
    geo = {"must": [{"key": "g", "geo_radius": {"center": {"lon": 0, "lat": 0}, "radius": 1}}]}
    body = {"query": QUERIES[0].tolist(), "filter": geo}
    assert "geo" in qdrant_error(
        httpx.post(f"{base}/{name}/points/query", json=body, headers=ro), 400
    )
    named = {"vectors": {"image": {"size": 4, "distance": "Dot"}}}
    assert "named vectors" in qdrant_error(httpx.put(f"{base}/x", json=named, headers=rw), 400)
    manhattan = {"vectors": {"size": 4, "distance": "Manhattan"}}
    assert "Manhattan" in qdrant_error(httpx.put(f"{base}/x", json=manhattan, headers=rw), 400)
    exists = {"vectors": {"size": DIM, "distance": "Cosine"}}
    assert "already" in qdrant_error(httpx.put(f"{base}/{name}", json=exists, headers=rw), 409)
    point = {"points": [{"id": "not-a-uuid", "vector": [0.0] * DIM}]}
    assert "UUID" in qdrant_error(httpx.put(f"{base}/{name}/points", json=point, headers=rw), 400)
    assert qdrant_error(httpx.put(f"{base}/{name}/points", json=point, headers=ro), 403)
    assert qdrant_error(httpx.get(f"{base}/{name}"), 401)
    json_header = {**ro, "content-type": "application/json"}
    bad_json = httpx.post(f"{base}/{name}/points/count", content=b"{", headers=json_header)
    assert "JSON" in qdrant_error(bad_json, 400)
    assert "Not found" in qdrant_error(httpx.get(f"{url}/qdrant/aliases", headers=ro), 404)
    with pytest.raises(UnexpectedResponse) as raised:
        client.query_points(name, query=QUERIES[0].tolist(), using="image")
    assert raised.value.status_code == 400 and b"named vectors" in raised.value.content


def test_an_unmodified_qdrant_app_runs(server, monkeypatch, capsys):
    """examples/qdrant_quickstart.py knows nothing of slimvec; Qdrant's quickstart answers."""
    url, keys = server
    monkeypatch.setenv("QDRANT_URL", f"{url}/qdrant")
    monkeypatch.setattr(
        httpx.Client, "send", _with_key(httpx.Client.send, keys["read-write"])
    )  # the example passes no api_key: the test server requires one
    runpy.run_path("examples/qdrant_quickstart.py", run_name="__main__")
    out = capsys.readouterr().out
    assert "top 3: [(4, 1.362), (1, 1.273), (3, 1.208)]" in out
    assert "in London: [(2, {'city': 'London'})]" in out
    assert "scroll: [1, 2, 3, 4, 5, 6] count: 6" in out


def _with_key(send, key):
    def send_with_key(self, request, *args, **kwargs):
        request.headers["api-key"] = key
        return send(self, request, *args, **kwargs)

    return send_with_key
