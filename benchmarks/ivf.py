"""IVF benchmark (issue 14): slimvec ``ivf:N`` against FAISS's partitioned indexes, one run.

    .venv/bin/python benchmarks/ivf.py [--data sentences|mix|lowrank] [--n 1000000]
        [--queries 1000] [--nlist 1024] [--no-hnsw] [--no-crossover] [--out results.json]
        [--rss] [--spec SPEC ...]

Every configuration is measured on the same vectors in the same process: recall@10 against
exact float32 search (FAISS IndexFlatIP, also timed as the baseline), QPS at batch 100,
p50 single-query latency, RAM bytes per vector and build time.

* slimvec: ``ivf:NLIST | rabitq:2*20 > f32`` (and ``rabitq*40``), ``nprobe`` swept; resident
  memory measured in a fresh process that opens the collection and runs the sweep (VmRSS,
  split into anonymous memory and touched memory-mapped files, which include the originals
  the rescoring reads).
* FAISS IndexIVFRaBitQ (2-bit, qb=4), IndexIVFRaBitQFastScan (2-bit, its default query bits)
  and IndexIVFPQFastScan (PQ d/2 x 4 bits), each bare and
  wrapped in IndexRefineFlat (k_factor 20, like slimvec's ``*20`` shortlist; its float32 copy
  is counted as disk, as slimvec's memory-mapped originals are), same ``nlist``, ``nprobe``
  swept; IndexHNSWSQ8 (M=32, efConstruction 40), efSearch swept.
* ``--rss``: only the slimvec rows (``--spec``, default both) and their resident memory, no
  FAISS peers: the quick check of what an opened IVF collection holds (anonymous memory per
  vector above the fresh process's own, and touched file pages).
* ``--crossover``: at small n, flat ``rabitq:2*20 > f32`` against the IVF spec (n/39 lists
  at most), which is what ``index.sizing.FLAT_ROWS`` was chosen from.

Data: ``sentences`` = the 1M real-sentence pool (``python -m slimvec.datasets.sentences
--build``); ``mix`` = normalised mixes of two real sentence vectors plus small noise (the
issue's recipe for a larger set); ``lowrank`` = synthetic latent-48 vectors. Recall counts a
returned id as a hit when its exact score reaches the exact 10th score (ties among
near-duplicates count). Threads: 2 everywhere (numba, FAISS, BLAS).
"""

from __future__ import annotations

import os

THREADS = 2
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, str(THREADS))

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import faiss  # noqa: E402
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import slimvec  # noqa: E402
from funnel import LOADS, _index_bytes, load, recall_at_k, time_search  # noqa: E402
from slimvec.datasets.base import Dataset  # noqa: E402
from slimvec.index import ivf, sizing  # noqa: E402

K = 10
NPROBES = (4, 8, 16, 32, 64, 128, 256)  # those above --nlist are skipped
EF_SEARCH = (16, 32, 64, 128, 256)
SPECS = ("ivf:{nlist} | rabitq:2*20 > f32", "ivf:{nlist} | rabitq*40 > f32")
console = Console()

RSS_CHILD = """
import json, sys, numpy as np, slimvec
path, qfile, nprobes = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
def status():
    fields = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) * 1024
    return fields
before = status()
col = slimvec.open(path)
opened = status()
q = np.load(qfile)
for nprobe in nprobes:
    for i in range(0, len(q), 100):
        col.search(q[i : i + 100], 10, nprobe=nprobe)
print(json.dumps({"start": before, "opened": opened, "searched": status()}))
"""


def mix(base: np.ndarray, n: int, seed: int | list[int] = 0, noise: float = 0.05) -> np.ndarray:
    """n vectors, each the normalised mix a x_i + (1 - a) x_j + noise of two real vectors
    (a ~ U(0.5, 1), noise ~ N(0, 1/d) per coordinate); ``benchmarks/scale.py`` builds its
    10M set from chunks of these, seeded ``[seed, chunk]``."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), np.float32)
    for start in range(0, n, 100_000):
        m = min(n, start + 100_000) - start
        i, j = rng.integers(0, len(base), m), rng.integers(0, len(base), m)
        a = rng.uniform(0.5, 1.0, (m, 1)).astype(np.float32)
        v = a * base[i] + (1 - a) * base[j]
        v += noise / np.sqrt(base.shape[1]) * rng.standard_normal(v.shape, dtype=np.float32)
        out[start : start + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def dataset(data: str, n: int, queries: int) -> Dataset:
    if data != "mix":
        return load(data, n, queries)
    real = load("sentences", min(n, 1_000_000), queries)
    docs = mix(real.docs, n)
    return Dataset(
        name=f"mix-{n}",
        doc_ids=[str(i) for i in range(n)],
        query_ids=real.query_ids,
        docs=docs,
        queries=real.queries,
        model=real.model,
    )


def exact(x: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, dict]:
    """Exact 10th scores per query, and IndexFlatIP's own row (timed like the others)."""
    flat = faiss.IndexFlatIP(x.shape[1])
    flat.add(x)
    scores, _ = flat.search(q, K)
    _, qps, p50 = time_search(lambda qb: flat.search(qb, K)[1], q[:200])
    return scores[:, K - 1], {
        "name": "faiss IndexFlatIP",
        "recall": 1.0,
        "qps": qps,
        "p50_ms": p50,
        "ram_bytes": 4 * x.shape[1],
    }


def _nprobes(nlist: int) -> list[int]:
    return [p for p in NPROBES if p <= nlist]


def slimvec_rows(spec: str, ds: Dataset, kth: np.ndarray, tmp: Path, nlist: int) -> list[dict]:
    x, q = ds.docs, ds.queries
    path = tmp / "col"
    t0 = time.perf_counter()
    col = slimvec.create(path, dim=x.shape[1], spec=spec)
    col.add(x)
    build = time.perf_counter() - t0
    info = col.info()
    sizes = info["ivf"]["list_sizes"]
    console.print(f"  {spec}: built in {build:.0f} s, lists {sizes}")
    rows = []
    for nprobe in _nprobes(nlist):
        found, qps, p50 = time_search(lambda qb, p=nprobe: col.search(qb, K, nprobe=p).ids, q)
        rows.append(
            {
                "name": f"slimvec {spec} nprobe={nprobe}",
                "recall": recall_at_k(found, x, q, kth),
                "qps": qps,
                "p50_ms": p50,
                "ram_bytes": info["ram_bytes_per_vector"],
                "build_s": build,
            }
        )
        console.print(f"    nprobe {nprobe}: recall {rows[-1]['recall']:.4f}, QPS {qps:.0f}")
    col.close()
    qfile = tmp / "queries.npy"
    np.save(qfile, q)
    child = subprocess.run(
        [sys.executable, "-c", RSS_CHILD, str(path), str(qfile), json.dumps(_nprobes(nlist))],
        capture_output=True,
        text=True,
        check=True,
    )
    rss = json.loads(child.stdout)
    ivf_bytes = sum(f.stat().st_size for f in (path / ivf.IVF_DIR).rglob("*") if f.is_file())
    extra = {
        "rss_searched_bytes_per_vector": rss["searched"]["VmRSS"] / len(x),
        "rss_anon_bytes_per_vector": rss["searched"]["RssAnon"] / len(x),
        "rss_file_bytes_per_vector": rss["searched"]["RssFile"] / len(x),
        "rss_process_start_bytes": rss["start"]["VmRSS"],
        "ivf_file_bytes_per_vector": ivf_bytes / len(x),
        "disk_bytes_per_vector": info["disk_bytes_per_vector"],
        "list_sizes": sizes,
    }
    extra["rss_anon_added_bytes_per_vector"] = (
        rss["searched"]["RssAnon"] - rss["start"]["RssAnon"]
    ) / len(x)
    extra["rss_anon_opened_bytes_per_vector"] = (
        rss["opened"]["RssAnon"] - rss["start"]["RssAnon"]
    ) / len(x)
    console.print(f"    RSS {extra}")
    for row in rows:
        row.update(extra)
    _remove(path)
    return rows


def faiss_ivf_rows(ds: Dataset, kth: np.ndarray, nlist: int, tmp: Path) -> list[dict]:
    x, q = ds.docs, ds.queries
    n, d = x.shape
    train = x[np.random.default_rng(0).choice(n, min(n, 100_000), replace=False)]
    quantizer = faiss.IndexFlatIP(d)
    rows = []
    for kind in ("rabitq", "rabitq_fastscan", "fastscan"):
        t0 = time.perf_counter()
        if kind == "rabitq":
            base = faiss.IndexIVFRaBitQ(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT, True, 2)
            base.qb = 4
            name, code = f"IndexIVFRaBitQ 2-bit qb=4 nlist={nlist}", base.code_size + 8
        elif kind == "rabitq_fastscan":  # 2-bit RaBitQ scanned with 4-bit SIMD tables
            base = faiss.IndexIVFRaBitQFastScan(
                quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT, 32, True, 2
            )
            name = f"IndexIVFRaBitQFastScan 2-bit nlist={nlist}"
            code = base.code_size + 8
        else:  # the quantizer trained above is reused (FAISS skips its k-means)
            base = faiss.IndexIVFPQFastScan(
                quantizer, d, nlist, d // 2, 4, faiss.METRIC_INNER_PRODUCT
            )
            name, code = f"IndexIVFPQFastScan PQ{d // 2}x4 nlist={nlist}", d // 4 + 8
        base.train(train)
        base.add(x)
        build = time.perf_counter() - t0
        disk = _index_bytes(base, tmp) / n
        console.print(f"  faiss {name}: built in {build:.0f} s ({disk:.0f} B/vec on disk)")
        refined = faiss.IndexRefineFlat(base, faiss.swig_ptr(x))
        refined.k_factor = 20
        for label, index in ((name, base), (f"{name} + RefineFlat x20", refined)):
            for nprobe in _nprobes(nlist):
                base.nprobe = nprobe
                found, qps, p50 = time_search(lambda qb, ix=index: ix.search(qb, K)[1], q)
                rows.append(
                    {
                        "name": f"faiss {label} nprobe={nprobe}",
                        "recall": recall_at_k(found, x, q, kth),
                        "qps": qps,
                        "p50_ms": p50,
                        "ram_bytes": code,
                        "build_s": build,
                    }
                )
                console.print(
                    f"    {label} nprobe {nprobe}: recall {rows[-1]['recall']:.4f}, QPS {qps:.0f}"
                )
        del refined, base
    return rows


def faiss_hnsw_rows(ds: Dataset, kth: np.ndarray) -> list[dict]:
    x, q = ds.docs, ds.queries
    d = x.shape[1]
    t0 = time.perf_counter()
    hnsw = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, 32)
    hnsw.hnsw.efConstruction = 40
    hnsw.train(x)
    hnsw.add(x)
    build = time.perf_counter() - t0
    console.print(f"  faiss IndexHNSWSQ8: built in {build:.0f} s")
    rows = []
    for ef in EF_SEARCH:
        hnsw.hnsw.efSearch = ef
        found, qps, p50 = time_search(lambda qb: hnsw.search(qb, K)[1], q)
        rows.append(
            {
                "name": f"faiss IndexHNSWSQ8 M=32 efS={ef}",
                "recall": recall_at_k(found, x, q, kth),
                "qps": qps,
                "p50_ms": p50,
                "ram_bytes": d + 2 * 32 * 4,
                "build_s": build,
            }
        )
        console.print(f"    efSearch {ef}: recall {rows[-1]['recall']:.4f}, QPS {qps:.0f}")
    return rows


def crossover(ds: Dataset, tmp: Path) -> list[dict]:
    """Flat against IVF at small n: where partitioning starts to pay (``FLAT_ROWS``)."""
    out = []
    saved = sizing.FLAT_ROWS
    sizing.FLAT_ROWS = 0  # train at every size here, to compare
    try:
        for n in (5_000, 20_000, 50_000):
            x, q = np.ascontiguousarray(ds.docs[:n]), ds.queries[:500]
            nlist = max(8, min(int(4 * np.sqrt(n)), n // sizing.MIN_PER_LIST))
            kth = np.sort(q @ x.T, axis=1)[:, -K]
            for spec in ("rabitq:2*20 > f32", f"ivf:{nlist} | rabitq:2*20 > f32"):
                path = tmp / "small"
                col = slimvec.create(path, dim=x.shape[1], spec=spec)
                col.add(x)
                nprobe = {} if "ivf" not in spec else {"nprobe": sizing.default_nprobe(nlist)}
                found, qps, p50 = time_search(
                    lambda qb, c=col, o=nprobe: c.search(qb, K, **o).ids, q
                )
                out.append(
                    {"n": n, "spec": spec, **nprobe, "recall": recall_at_k(found, x, q, kth),
                     "qps": qps, "p50_ms": p50}
                )  # fmt: skip
                console.print(f"  crossover {out[-1]}")
                col.close()
                _remove(path)
    finally:
        sizing.FLAT_ROWS = saved
    return out


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def table(rows: list[dict], flat_qps: float) -> Table:
    t = Table(title="recall@10 / QPS (batch 100) / p50 single query / RAM bytes per vector")
    for col in ("configuration", "recall@10", "QPS", "x FlatIP", "p50 ms", "RAM B/vec", "build s"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            r["name"], f"{r['recall']:.4f}", f"{r['qps']:.0f}", f"{r['qps'] / flat_qps:.1f}",
            f"{r['p50_ms']:.2f}", f"{r['ram_bytes']:.0f}", f"{r.get('build_s', 0):.0f}",
        )  # fmt: skip
    return t


def markdown(rows: list[dict], flat_qps: float) -> str:
    """The table as markdown, for BENCHMARKS.md."""
    lines = [
        "| configuration | recall@10 | QPS | × FlatIP | p50 ms | RAM B/vec | build s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['recall']:.4f} | {r['qps']:,.0f} | {r['qps'] / flat_qps:.1f}× "
            f"| {r['p50_ms']:.2f} | {r['ram_bytes']:.0f} | {r.get('build_s', 0):.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="sentences", choices=("sentences", "mix", "lowrank"))
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--no-hnsw", action="store_true", help="skip HNSWSQ8 (slow to build)")
    parser.add_argument("--no-crossover", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--rss", action="store_true", help="slimvec rows and their RSS only")
    parser.add_argument("--spec", action="append", help="slimvec spec ({nlist} is filled in)")
    args = parser.parse_args()
    specs = args.spec or SPECS
    faiss.omp_set_num_threads(THREADS)
    ds = dataset(args.data, args.n, args.queries)
    x = np.ascontiguousarray(ds.docs, dtype=np.float32)
    ds.docs = x
    console.print(f"{ds.name}: {x.shape}, load average {os.getloadavg()}")
    kth, flat = exact(x, ds.queries)
    console.print(f"  FlatIP {flat['qps']:.1f} QPS")
    rows = [flat]
    with tempfile.TemporaryDirectory(dir=os.environ.get("IVF_BENCH_TMP")) as t:
        tmp = Path(t)
        for spec in specs:
            rows += slimvec_rows(spec.format(nlist=args.nlist), ds, kth, tmp, args.nlist)
        if not args.rss:
            rows += faiss_ivf_rows(ds, kth, args.nlist, tmp)
        if not (args.rss or args.no_hnsw):
            rows += faiss_hnsw_rows(ds, kth)
        small = [] if args.no_crossover or args.rss else crossover(ds, tmp)
    console.print(table(rows, flat["qps"]))
    result = {
        "data": ds.name,
        "n": len(x),
        "queries": len(ds.queries),
        "nlist": args.nlist,
        "threads": THREADS,
        "load_average_1min": {"min": min(LOADS), "max": max(LOADS)},
        "rows": rows,
        "crossover": small,
    }
    console.print(f"load average (1 min) while timing: {result['load_average_1min']}")
    print(markdown(rows, flat["qps"]))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
