"""Flat segments through the 4-bit table scan (issue 28): the default spec against FAISS, one run.

    .venv/bin/python benchmarks/flat_scan.py [--sizes 6000,30000,200000,1000000] [--fit]

For each size (384 dims, ``slimvec.datasets.synthetic.low_rank``: 48 latent directions plus
noise, the low intrinsic dimension of embeddings, seeded, held-out queries; with ``--real``
also the 6,000 MiniLM Debian vectors of ../shared): single-query p50
(over ``--single`` queries) and batch-of-200 QPS (median of ``--batches``) of

* ``search`` as the planner chooses (its plan printed), and ``exact=True``;
* the default spec's own funnel (``planner.funnel_only``): the flat table scan, then f32
  rescoring of its 400-row shortlist;
* FAISS ``IndexFlatIP`` (exact; its answers are the truth for recall@10);
* FAISS ``IndexRaBitQFastScan`` (2 bits, its default 8-bit queries) + ``IndexRefineFlat``
  (k_factor 40: the same 400-row shortlist),

with recall@10, RAM bytes per vector and the 1-minute load at the start and end of each size
(each size's timings start only once the load is below ``--quiet``, 1.5 by default). FAISS and numba
both run on 2 threads. ``--fit`` also prints the planner constants the funnel's times imply
(``engine/planner.py`` ``table_byte_*`` and ``funnel_query``): the slope over the two largest
sizes per row and bit-plane byte, the intercept per query.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import faiss
import numba
import numpy as np

import slimvec
from slimvec.datasets.synthetic import low_rank
from slimvec.engine import planner

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "debian-gemma"
K, BATCH, DIM = 10, 200, 384


def minilm() -> tuple[np.ndarray, np.ndarray]:
    docs = np.load(DATA / "minilm_doc_emb.npy").astype(np.float32)
    return docs, np.load(DATA / "minilm_query_emb.npy").astype(np.float32)[:BATCH]


def p50(search, queries: np.ndarray) -> float:
    for q in queries[:5]:
        search(q[None])
    times = []
    for q in queries:
        start = time.perf_counter()
        search(q[None])
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def batch_time(search, queries: np.ndarray, reps: int) -> float:
    search(queries)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        search(queries)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]))


def load() -> float:
    return os.getloadavg()[0]


def wait_quiet(limit: float) -> None:
    """Sleep until the 1-minute load is below ``limit`` (figures are recorded only then)."""
    while load() >= limit:
        print(f"  load {load():.2f} >= {limit}: waiting", flush=True)
        time.sleep(30)


def measure(name: str, x: np.ndarray, queries: np.ndarray, args) -> dict:
    n = len(x)
    wait_quiet(args.quiet)
    print(f"# {name}: {n:,} x {x.shape[1]}, load {load():.2f}", flush=True)
    flat = faiss.IndexFlatIP(x.shape[1])
    flat.add(x)
    truth = flat.search(queries, K)[1]
    fast = faiss.IndexRaBitQFastScan(x.shape[1], faiss.METRIC_INNER_PRODUCT, 32, 2)
    refine = faiss.IndexRefineFlat(fast)
    refine.k_factor = 40
    refine.train(x[: min(n, 100_000)])
    refine.add(x)
    col = slimvec.create(tempfile.mkdtemp() + "/c", x.shape[1])
    col.add(x)
    single = queries[: args.single]
    wait_quiet(args.quiet)  # building the indexes loaded the machine
    rows = {"load_start": load()}

    def slim(**kw):
        return lambda q: col.search(q, k=K, **kw)

    def funnel(q):
        with planner.funnel_only():
            return col.search(q, k=K)

    runs = {
        "slimvec search": slim(),
        "slimvec exact=True": slim(exact=True),
        "slimvec funnel (table scan)": funnel,
        "FAISS IndexFlatIP": lambda q: flat.search(q, K),
        "FAISS RaBitQFastScan+RefineFlat": lambda q: refine.search(q, K),
    }
    for label, run in runs.items():
        single_s = p50(run, single)
        batch_s = batch_time(run, queries, args.batches)
        found = run(queries)
        ids = found.ids if hasattr(found, "ids") else found[1]
        rows[label] = {"p50": single_s, "batch": batch_s, "recall": recall(ids, truth)}
        if label == "slimvec search":
            rows[label]["plans"] = (
                col.search(single[:1], k=K).explain["plan"],
                col.search(queries, k=K).explain["plan"],
            )
    rows["ram"] = {
        "slimvec": col.info()["ram_bytes_per_vector"],
        "faiss_rabitq_refine": fast.code_size + 4 * x.shape[1],
        "f32": 4 * x.shape[1],
    }
    rows["load_end"] = load()
    col.close()
    return rows


def report(name: str, n: int, rows: dict) -> None:
    base = rows["FAISS IndexFlatIP"]
    print("\n| set | rows | search | p50 ms | ×FlatIP | batch-200 QPS | ×FlatIP | recall@10 |")
    print("|---|---|---|---|---|---|---|---|")
    for label, r in rows.items():
        if label in ("ram", "load_start", "load_end"):
            continue
        plans = r.get("plans")
        shown = label + (f" ({plans[0]} / {plans[1]})" if plans else "")
        print(
            f"| {name} | {n:,} | {shown} | {1e3 * r['p50']:.2f} | {base['p50'] / r['p50']:.2f} "
            f"| {BATCH / r['batch']:,.0f} | {base['batch'] / r['batch']:.2f} | {r['recall']:.3f} |"
        )
    print(
        f"RAM B/vector: {rows['ram']}; load {rows['load_start']:.2f} at the start, "
        f"{rows['load_end']:.2f} at the end\n",
        flush=True,
    )


def fit(results: list[tuple[int, dict]], plane_bytes: int) -> None:
    """Slope and intercept of the forced funnel's times over the two largest sizes."""
    (n1, r1), (n2, r2) = results[-2:]
    f1, f2 = r1["slimvec funnel (table scan)"], r2["slimvec funnel (table scan)"]
    single = (f2["p50"] - f1["p50"]) / (n2 - n1) / plane_bytes * 1e9
    batch = (f2["batch"] - f1["batch"]) / (n2 - n1) / plane_bytes / BATCH * 1e9
    fixed_single = f1["p50"] * 1e9 - single * n1 * plane_bytes
    fixed_batch = (f1["batch"] * 1e9 - batch * n1 * plane_bytes * BATCH) / BATCH
    print(
        f"fit over {n1:,} and {n2:,} rows: table_byte_single {single:.4f} ns, "
        f"table_byte_batch {batch:.4f} ns, fixed per query {fixed_single / 1e3:.0f} us "
        f"(single) / {fixed_batch / 1e3:.0f} us (in a batch)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="6000,30000,200000,1000000")
    parser.add_argument("--single", type=int, default=100, help="queries for the p50")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--real", action="store_true", help="also the 6,000 MiniLM vectors")
    parser.add_argument("--fit", action="store_true")
    parser.add_argument("--quiet", type=float, default=1.5, help="wait for a load below this")
    args = parser.parse_args()
    faiss.omp_set_num_threads(2)
    print(f"numba threads {numba.get_num_threads()}, FAISS threads 2")
    if args.real:
        docs, queries = minilm()
        report("MiniLM Debian", len(docs), measure("MiniLM Debian", docs, queries, args))
    results = []
    for n in map(int, args.sizes.split(",")):
        data = low_rank(n, queries=BATCH, dim=DIM, latent=48, seed=1)
        docs, queries = (np.ascontiguousarray(a, np.float32) for a in (data.docs, data.queries))
        rows = measure("low-rank", docs, queries, args)
        report("low-rank", n, rows)
        results.append((n, rows))
    if args.fit and len(results) >= 2:
        fit(results, plane_bytes=2 * DIM // 8)


if __name__ == "__main__":
    main()
