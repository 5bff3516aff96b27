"""One qdrant-client workload against ``slimvec serve``'s Qdrant API and against Qdrant's
local mode (``QdrantClient(path=...)``, the in-process engine that ships with qdrant-client:
no Qdrant server installs offline from a registry package). Same vectors, same calls.

Reports per engine: upload time, recall@10 against exact float32 search, sequential
``query_points`` QPS (one query per request, p50 latency), and RAM per vector (slimvec: the
collection's own account of its resident codes; local mode keeps float32 vectors in NumPy,
4 bytes per dimension, plus its payload dicts).

    .venv/bin/python benchmarks/qdrant_api.py [--docs 50000] [--queries 300] [--distance Cosine]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import httpx
import numpy as np
from qdrant_client import QdrantClient, models

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.serving import free_port, kill, wait_healthy

from latency import corpus  # MiniLM Debian vectors tiled with noise: real geometry

BATCH = 1000
K = 10


def exact(docs: np.ndarray, queries: np.ndarray, distance: str) -> np.ndarray:
    if distance == "Euclid":
        d = (queries**2).sum(1)[:, None] - 2 * queries @ docs.T + (docs**2).sum(1)[None, :]
        return np.argsort(d, axis=1)[:, :K]
    if distance == "Cosine":
        docs = docs / np.linalg.norm(docs, axis=1, keepdims=True)
    return np.argsort(-(queries @ docs.T), axis=1)[:, :K]


def run(client: QdrantClient, docs: np.ndarray, queries: np.ndarray, distance: str) -> dict:
    name = "bench"
    if client.collection_exists(name):
        client.delete_collection(name)
    client.create_collection(name, models.VectorParams(size=docs.shape[1], distance=distance))
    t0 = time.perf_counter()
    for start in range(0, len(docs), BATCH):
        chunk = docs[start : start + BATCH]
        ids = list(range(start, start + len(chunk)))
        client.upsert(name, models.Batch(ids=ids, vectors=chunk.tolist(), payloads=None))
    upload = time.perf_counter() - t0
    truth = exact(docs, queries, distance)
    for q in queries[:20]:  # warm-up
        client.query_points(name, query=q.tolist(), limit=K)
    found, times = [], []
    for q in queries:
        t = time.perf_counter()
        points = client.query_points(name, query=q.tolist(), limit=K).points
        times.append(time.perf_counter() - t)
        found.append([p.id for p in points])
    recall = np.mean([len(set(f) & set(t.tolist())) / K for f, t in zip(found, truth)])
    return {
        "upload_s": upload,
        "recall@10": float(recall),
        "qps": len(queries) / sum(times),
        "p50_ms": 1000 * float(np.median(times)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--distance", default="Cosine", choices=["Cosine", "Dot", "Euclid"])
    args = parser.parse_args()
    docs, queries = corpus(args.docs)
    queries = np.resize(queries, (args.queries, docs.shape[1])).astype(np.float32)
    print(
        f"{args.docs:,} x {docs.shape[1]} MiniLM vectors, {args.queries} queries, {args.distance}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        cmd = [sys.executable, "-m", "slimvec.cli", "serve", tmp, "--port", str(port)]
        proc = subprocess.Popen(
            [*cmd, "--log-level", "warning"], stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, proc)
            client = QdrantClient(url=url, prefix="qdrant", timeout=300)
            result = run(client, docs, queries, args.distance)
            info = httpx.get(f"{url}/qdrant/collections/bench").json()["result"]["slimvec"]
            result["ram_bytes_per_vector"] = info["ram_bytes_per_vector"]
            rows.append(("slimvec serve (" + info["spec"] + ")", result))
        finally:
            kill(proc)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # local mode warns above 20k points
            local = QdrantClient(path=str(Path(tmp) / "local"))
            result = run(local, docs, queries, args.distance)
        result["ram_bytes_per_vector"] = 4 * docs.shape[1]
        rows.append(("qdrant-client local mode (float32)", result))
    header = f"{'engine':42} {'upload s':>9} {'recall@10':>10} {'QPS':>7} {'p50 ms':>7}"
    print(header + f" {'RAM B/vec':>10}")
    for label, r in rows:
        print(
            f"{label:42} {r['upload_s']:9.1f} {r['recall@10']:10.3f} {r['qps']:7.0f} "
            f"{r['p50_ms']:7.2f} {r['ram_bytes_per_vector']:10.0f}"
        )


if __name__ == "__main__":
    main()
