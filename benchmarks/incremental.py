"""One document at a time (issue 11): single adds with texts, then search, vs a bulk load.

Measures, in one run:
* N single-document adds (vector + text + metadata, each durable when it returns): total
  seconds and adds/s, the segment and file counts afterwards, whether the collection opens
  under ``ulimit -n 256``; and, with ``--baseline-src`` (the ``src`` of an older checkout), the
  same workload on that code for ``--baseline-adds`` adds (the rate is what compares);
* single-query p50 latency (approximate and exact) of the grown collection vs the same vectors
  loaded in bulk;
* recall@10 against exact search of a collection grown one document at a time vs loaded in
  bulk, for every spec of the README (Debian MiniLM vectors from ../shared).

    .venv/bin/python benchmarks/incremental.py --adds 10000 \\
        --baseline-src /tmp/slimvec-old/src --baseline-adds 1000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

import slimvec

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "debian-gemma"
README_SPECS = [
    "binary*40 > f32",
    "int8*4 > f32",
    "f16@128*20 > f32",
    "pca:256 | binary*40 > int8",
]

SINGLE_ADDS = textwrap.dedent(
    """
    import sys, time, numpy as np, slimvec
    path, n = sys.argv[1], int(sys.argv[2])
    x = np.load(sys.argv[3])[:n]
    col = slimvec.create(path, dim=x.shape[1])
    t = time.perf_counter()
    for i in range(n):
        col.add(x[i : i + 1], ids=[i], texts=[f"document {i} text"], metadata=[{"i": i}])
    print(time.perf_counter() - t)
    """
)

OPEN_UNDER_ULIMIT = textwrap.dedent(
    """
    import resource, sys, numpy as np, slimvec
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    col = slimvec.open(sys.argv[1])
    col.search(np.ones((1, col.dim), np.float32), k=10)
    print(len(col))
    """
)


def vectors(n: int) -> tuple[np.ndarray, np.ndarray]:
    docs = np.load(SHARED / "minilm_doc_emb.npy").astype(np.float32)
    queries = np.load(SHARED / "minilm_query_emb.npy").astype(np.float32)
    reps = -(-n // len(docs))
    rng = np.random.default_rng(0)
    x = np.concatenate([docs + 0.02 * rng.standard_normal(docs.shape) for _ in range(reps)])[:n]
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), queries[:200]


def p50_ms(col, queries: np.ndarray, exact: bool) -> float:
    times = []
    for q in queries:
        t = time.perf_counter()
        col.search(q[None], k=10, exact=exact)
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def run_adds(src: str | None, path: Path, n: int, data: Path) -> float:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    out = subprocess.run(
        [sys.executable, "-c", SINGLE_ADDS, str(path), str(n), str(data)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return float(out.stdout.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--adds", type=int, default=10_000)
    ap.add_argument("--baseline-src", default=None, help="src/ of the code to compare with")
    ap.add_argument("--baseline-adds", type=int, default=1000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="slimvec-incr-"))
    x, queries = vectors(args.adds)
    data = work / "x.npy"
    np.save(data, x)
    print(f"load average at start: {os.getloadavg()[0]:.2f}")

    rows = []
    seconds = run_adds(None, work / "grown", args.adds, data)
    rows.append(("slimvec (this checkout)", args.adds, seconds))
    if args.baseline_src:
        base = run_adds(args.baseline_src, work / "baseline", args.baseline_adds, data)
        rows.append((f"baseline ({args.baseline_src})", args.baseline_adds, base))
    print("\n| code | single adds | seconds | adds/s | ms/add |")
    print("|---|---|---|---|---|")
    for name, n, s in rows:
        print(f"| {name} | {n} | {s:.1f} | {n / s:.0f} | {1000 * s / n:.2f} |")
    if args.baseline_src:
        speedup = (rows[0][1] / rows[0][2]) / (rows[1][1] / rows[1][2])
        print(f"\nrate vs baseline: {speedup:.1f}x")

    grown = slimvec.open(work / "grown")
    info = grown.info()
    files = sum(1 for p in (work / "grown").rglob("*") if p.is_file())
    probe = subprocess.run(
        [sys.executable, "-c", OPEN_UNDER_ULIMIT, str(work / "grown")],
        capture_output=True,
        text=True,
    )
    opens = probe.returncode == 0 and probe.stdout.strip() == str(args.adds)
    bulk = slimvec.create(work / "bulk", dim=x.shape[1])
    bulk.add(x, ids=np.arange(len(x)))
    print(
        "\n| collection | segments | files | log rows | opens under ulimit -n 256 "
        "| p50 ms approx | p50 ms exact |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, col in (("grown one at a time", grown), ("bulk-loaded", bulk)):
        col_files = sum(1 for p in col.path.rglob("*") if p.is_file())
        print(
            f"| {name} | {col.info()['segments']} | {col_files if col is bulk else files} "
            f"| {col.info()['log_rows']} | {opens if col is grown else True} "
            f"| {p50_ms(col, queries, False):.2f} | {p50_ms(col, queries, True):.2f} |"
        )
    del info

    print("\n| spec | recall@10 bulk | recall@10 grown one at a time | difference |")
    print("|---|---|---|---|")
    n = min(6000, len(x))
    for spec in README_SPECS:
        b = slimvec.create(work / f"b-{spec}", dim=x.shape[1], spec=spec)
        b.add(x[:n])
        g = slimvec.create(work / f"g-{spec}", dim=x.shape[1], spec=spec)
        for i in range(n):
            g.add(x[i : i + 1])
        truth = b.search(queries, k=10, exact=True).ids
        rb, rg = (
            recall(b.search(queries, k=10).ids, truth),
            recall(g.search(queries, k=10).ids, truth),
        )
        print(f"| `{spec}` | {rb:.4f} | {rg:.4f} | {rg - rb:+.4f} |")


if __name__ == "__main__":
    main()
