"""A 4-shard collection on a local Ray cluster vs one collection, same data, same run.

For each spec: add time, recall@10 against exact search, QPS at batch 100 (rounds
alternating between the two, so machine load hits both alike), single-query p50/p90, the
fixed fan-out cost of the router (p50 of a 4-shard collection of 4,000 vectors minus a local
one's: nothing to scan, so what is left is Ray round trips, serialisation and the merge),
and per-shard figures (RAM/disk per vector, one shard's QPS at batch 100) that feed a scale
model for 1B vectors printed at the end.

    .venv/bin/python benchmarks/distributed.py [--n 200000] [--shards 4] [--queries 300]

Data: the MiniLM Debian document vectors from ../shared, tiled with small noise up to ``n``
(real geometry at any size; see benchmarks/latency.py); a seeded clustered stand-in without it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import ray

import slimvec
import slimvec.distributed as sd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "debian-gemma"
SPECS = ("binary*40 > f32", "int8@128*20 > f32")


def corpus(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if (DATA / "minilm_doc_emb.npy").exists():
        docs = np.load(DATA / "minilm_doc_emb.npy").astype(np.float32)
        queries = np.load(DATA / "minilm_query_emb.npy").astype(np.float32)
    else:
        centres = rng.standard_normal((200, 384))
        docs = (centres[rng.integers(0, 200, 6000)] + rng.standard_normal((6000, 384))).astype(
            np.float32
        )
        queries = docs[:1000] + 0.5 * rng.standard_normal((1000, 384)).astype(np.float32)
    if n > len(docs):
        extra = docs[rng.integers(0, len(docs), n - len(docs))]
        extra = extra + 0.05 * rng.standard_normal(extra.shape).astype(np.float32)
        docs = np.vstack([docs, extra])
    docs = docs[:n] / np.linalg.norm(docs[:n], axis=1, keepdims=True)
    return docs.astype(np.float32), queries


def recall_at_10(found: np.ndarray, q: np.ndarray, docs: np.ndarray, truth) -> float:
    """A hit is an id whose exact score reaches the exact 10th best (ties count as hits)."""
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    tenth = truth.scores[:, 9:10] - 1e-6
    valid = found >= 0
    scores = np.einsum("qd,qkd->qk", qn, docs[np.maximum(found, 0)])
    return float(((scores >= tenth) & valid).sum() / found.size)


def batch_qps(search, queries: np.ndarray, batch: int) -> float:
    search(queries[:batch])
    t0 = time.perf_counter()
    for start in range(0, len(queries), batch):
        search(queries[start : start + batch])
    return len(queries) / (time.perf_counter() - t0)


def single_latencies(search, queries: np.ndarray) -> np.ndarray:
    for q in queries[:10]:
        search(q[None])
    out = np.empty(len(queries))
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        search(q[None])
        out[i] = time.perf_counter() - t0
    return 1000 * out


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def fanout_overhead(workdir: str, shards: int, queries: np.ndarray) -> dict:
    docs, _ = corpus(4000, seed=1)
    local = slimvec.create(f"{workdir}/tiny-local", 384, spec="f32")
    local.add(docs)
    with sd.create(f"{workdir}/tiny-sharded", 384, shards=shards, spec="f32") as col:
        col.add(docs)
        p_local, p_sharded, p_ping = [], [], []
        actors = [group[0] for group in col._actors]

        def ping(q):  # the bare fan-out: one no-op call to every shard actor, gathered
            return ray.get([a.count.remote() for a in actors])

        for _ in range(3):  # alternate rounds
            p_local.append(np.median(single_latencies(lambda q: local.search(q, 10), queries)))
            p_sharded.append(np.median(single_latencies(lambda q: col.search(q, 10), queries)))
            p_ping.append(np.median(single_latencies(ping, queries)))
    return {
        "local_p50": min(p_local),
        "sharded_p50": min(p_sharded),
        "ping_p50": min(p_ping),
        "load": load(),
    }


def run_spec(spec: str, docs, queries, args, workdir: str) -> dict:
    tag = spec.replace(" ", "").replace(">", "-").replace("*", "x").replace("@", "a")
    local = slimvec.create(f"{workdir}/local-{tag}", 384, spec=spec)
    t0 = time.perf_counter()
    local.add(docs)
    add_local = time.perf_counter() - t0
    col = sd.create(f"{workdir}/sharded-{tag}", 384, shards=args.shards, spec=spec)
    t0 = time.perf_counter()
    for start in range(0, len(docs), 100_000):
        col.add(docs[start : start + 100_000])
    add_sharded = time.perf_counter() - t0
    q = queries[: args.queries]
    truth = local.search(q, k=10, exact=True)
    row = {
        "spec": spec,
        "add_s": (add_local, add_sharded),
        "recall": (
            recall_at_10(local.search(q, 10).ids, q, docs, truth),
            recall_at_10(col.search(q, 10).ids, q, docs, truth),
        ),
    }
    qps_l, qps_s = [], []
    for _ in range(3):
        qps_l.append(batch_qps(lambda b: local.search(b, 10), q, args.batch))
        qps_s.append(batch_qps(lambda b: col.search(b, 10), q, args.batch))
    row["qps"] = (max(qps_l), max(qps_s))
    row["qps_load"] = load()
    lat_l = single_latencies(lambda x: local.search(x, 10), q[:200])
    lat_s = single_latencies(lambda x: col.search(x, 10), q[:200])
    row["p50"] = (np.median(lat_l), np.median(lat_s))
    row["p90"] = (np.percentile(lat_l, 90), np.percentile(lat_s, 90))
    row["lat_load"] = load()
    shard0 = col._actors[0][0]  # one shard alone, batch 100 (its own funnel, Ray call included)
    shard_n = col.info()["shard_info"][0]["count"]
    opts = {"exact": False}
    row["shard_qps"] = max(
        batch_qps(lambda b: ray.get(shard0.search.remote(b, 10, opts)), q, args.batch)
        for _ in range(3)
    )
    row["shard_n"] = shard_n
    info = col.info()
    row["ram_b"] = info["ram_bytes_per_vector"]
    row["disk_b"] = info["disk_bytes_per_vector"]
    col.close()
    local.close()
    return row


def scale_model(row: dict, cores_measured: int, target_qps: float = 100.0) -> list[str]:
    """1B vectors from one shard's measured figures (brute-force first stage: cost grows with
    the vectors scanned, so a query's cost is linear in N)."""
    n = 1e9
    scan_rate = row["shard_qps"] * row["shard_n"] / cores_measured  # vector-queries/core/s
    core_s_per_query = n / scan_rate
    cores = target_qps * core_s_per_query
    ram = n * row["ram_b"]
    disk = n * row["disk_b"]
    server_cores, server_ram = 32, 256e9  # a common cloud box (e.g. 32 vCPU / 256 GB)
    machines_ram = ram / (0.6 * server_ram)  # keep 40% for the page cache of rescoring reads
    machines_cpu = cores / server_cores
    return [
        f"| `{row['spec']}` | {row['recall'][1]:.3f} | {ram / 1e9:,.0f} GB | "
        f"{disk / 1e12:.2f} TB | {scan_rate / 1e6:.1f} M | {core_s_per_query:.1f} | "
        f"{cores:,.0f} | {max(machines_ram, machines_cpu):,.0f} "
        f"(RAM {machines_ram:.1f}, CPU {machines_cpu:.0f}) |"
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--specs", default=";".join(SPECS))
    args = ap.parse_args()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    docs, queries = corpus(args.n)
    print(
        f"n={args.n:,} dim=384 shards={args.shards} queries={args.queries} "
        f"batch={args.batch} cores={os.cpu_count()} {load()}"
    )
    with tempfile.TemporaryDirectory() as workdir:
        fan = fanout_overhead(workdir, args.shards, queries[:200])
        rows = [run_spec(s, docs, queries, args, workdir) for s in args.specs.split(";")]
    print()
    print(
        f"| spec | recall@10 1 / {args.shards} shards | add s | QPS batch {args.batch} "
        f"(1 / {args.shards} / ratio) | p50 ms (1 / {args.shards}) | p90 ms | "
        f"1 shard alone QPS | load |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| `{r['spec']}` | {r['recall'][0]:.3f} / {r['recall'][1]:.3f} | "
            f"{r['add_s'][0]:.1f} / {r['add_s'][1]:.1f} | {r['qps'][0]:.0f} / {r['qps'][1]:.0f}"
            f" / {r['qps'][1] / r['qps'][0]:.2f} | {r['p50'][0]:.2f} / {r['p50'][1]:.2f} | "
            f"{r['p90'][0]:.2f} / {r['p90'][1]:.2f} | {r['shard_qps']:.0f} "
            f"({r['shard_n']:,} vectors) | {r['qps_load']}, {r['lat_load']} |"
        )
    print()
    print(
        f"Fan-out overhead per query (4,000 vectors, f32, single query, best of 3 rounds): "
        f"local p50 {fan['local_p50']:.2f} ms, {args.shards} shards p50 "
        f"{fan['sharded_p50']:.2f} ms -> overhead {fan['sharded_p50'] - fan['local_p50']:.2f}"
        f" ms; bare fan-out (a no-op call to each shard actor, gathered) p50 "
        f"{fan['ping_p50']:.2f} ms ({fan['load']})"
    )
    print()
    print("1B-vector scale model at 100 QPS (batch 100) from the measured shard figures:")
    print(
        "| spec | recall@10 (measured) | RAM | disk | scan rate / core | core-s / query | "
        "cores for 100 QPS | 32-core/256 GB machines |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("\n".join(scale_model(r, os.cpu_count())))


if __name__ == "__main__":
    main()
