"""Single-query latency on a quiet and on a busy machine: slimvec vs FAISS, same run.

A numba parallel region waits for every worker thread; when other processes keep the cores
busy, one descheduled worker stalls a sub-millisecond query for a whole scheduler slice. Small
scans therefore run on one thread (``slimvec.kernels.threads``). This script measures p50/p90/
p99 latency of one query at a time (k = 10, the default spec) with the serial path on ("auto")
and off ("always parallel"), next to FAISS IndexFlatIP and IndexBinaryFlat, first on a quiet
machine and then with ``--burners`` busy processes (default: one per core). From
``IVF_ROWS`` documents on, a partitioned collection (``ivf:N | rabitq:2*20 > f32``, N the power
of two nearest sqrt(n), its default nprobe) and FAISS IndexIVFPQFastScan + RefineFlat ×20 (same
N and nprobe) join the table.

    .venv/bin/python benchmarks/latency.py [--sizes 6000,200000] [--queries 400]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import slimvec
from slimvec.index import sizing
from slimvec.kernels import threads

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "debian-gemma"
#: From this many documents the IVF rows are measured too.
IVF_ROWS = 100_000


def _burn(stop) -> None:
    while not stop.is_set():
        sum(range(10_000))


def corpus(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MiniLM Debian vectors, tiled with small noise past 6,000 (real geometry, any size)."""
    docs = np.load(DATA / "minilm_doc_emb.npy").astype(np.float32)
    queries = np.load(DATA / "minilm_query_emb.npy").astype(np.float32)
    rng = np.random.default_rng(seed)
    if n > len(docs):
        extra = docs[rng.integers(0, len(docs), n - len(docs))]
        extra = extra + 0.05 * rng.standard_normal(extra.shape).astype(np.float32)
        docs = np.vstack([docs, extra / np.linalg.norm(extra, axis=1, keepdims=True)])
    return docs[:n], queries


def latencies(search, queries: np.ndarray) -> np.ndarray:
    for q in queries[:20]:
        search(q[None])
    out = np.empty(len(queries))
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        search(q[None])
        out[i] = time.perf_counter() - t0
    return 1000 * out


def engines(docs: np.ndarray, workdir: str):
    import faiss

    col = slimvec.create(f"{workdir}/c{len(docs)}", dim=docs.shape[1])
    col.add(docs)
    flat = faiss.IndexFlatIP(docs.shape[1])
    flat.add(docs)
    binary = faiss.IndexBinaryFlat(docs.shape[1])
    binary.add(np.packbits(docs > 0, axis=1))

    def always_parallel(q):
        saved, threads.SERIAL_WORK = threads.SERIAL_WORK, -1
        try:
            return col.search(q, 10)
        finally:
            threads.SERIAL_WORK = saved

    found = {
        "slimvec auto": lambda q: col.search(q, 10),
        "slimvec always parallel": always_parallel,
        "faiss IndexFlatIP": lambda q: flat.search(q, 10),
        "faiss IndexBinaryFlat (k=400)": lambda q: binary.search(np.packbits(q > 0, axis=1), 400),
    }
    if len(docs) >= IVF_ROWS:
        found.update(ivf_engines(docs, workdir))
    return found


def ivf_engines(docs: np.ndarray, workdir: str):
    import faiss

    n, d = docs.shape
    nlist = 2 ** round(np.log2(np.sqrt(n)))
    nprobe = sizing.default_nprobe(nlist)
    col = slimvec.create(f"{workdir}/ivf{n}", dim=d, spec=f"ivf:{nlist} | rabitq:2*20 > f32")
    col.add(docs)
    quantizer = faiss.IndexFlatIP(d)
    fastscan = faiss.IndexIVFPQFastScan(quantizer, d, nlist, d // 2, 4, faiss.METRIC_INNER_PRODUCT)
    fastscan.train(docs)
    fastscan.add(docs)
    fastscan.nprobe = nprobe
    refined = faiss.IndexRefineFlat(fastscan, faiss.swig_ptr(docs))
    refined.k_factor = 20

    def faiss_search(q, alive=(quantizer, fastscan, docs)):  # SWIG keeps no references
        return refined.search(q, 10)

    return {
        f"slimvec ivf:{nlist} nprobe {nprobe}": lambda q: col.search(q, 10),
        "faiss IVFPQFastScan+refine, same N and nprobe": faiss_search,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="6000,200000")
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--burners", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in map(int, args.sizes.split(",")):
            docs, queries = corpus(n)
            queries = queries[: args.queries]
            found = engines(docs, tmp)
            for load in ("quiet", f"{args.burners} busy processes"):
                stop = mp.Event()
                burners = [mp.Process(target=_burn, args=(stop,)) for _ in range(args.burners)]
                if load != "quiet":
                    for b in burners:
                        b.start()
                    time.sleep(0.5)
                try:
                    for name, search in found.items():
                        ms = latencies(search, queries)
                        rows.append((n, load, name, *np.percentile(ms, [50, 90, 99])))
                        print(
                            f"{n:>8,} {load:<18} {name:<30} p50 {rows[-1][3]:7.3f} "
                            f"p90 {rows[-1][4]:7.3f} p99 {rows[-1][5]:7.3f} ms",
                            flush=True,
                        )
                finally:
                    stop.set()
                    for b in burners:
                        if b.is_alive():
                            b.join()
    print("\n| docs | machine | engine | p50 ms | p90 ms | p99 ms | p50 / FAISS Flat p50 |")
    print("|---|---|---|---|---|---|---|")
    for n, load, name, p50, p90, p99 in rows:
        peer = next(r[3] for r in rows if r[:2] == (n, load) and r[2] == "faiss IndexFlatIP")
        print(f"| {n:,} | {load} | {name} | {p50:.3f} | {p90:.3f} | {p99:.3f} | {p50 / peer:.2f} |")


if __name__ == "__main__":
    main()
