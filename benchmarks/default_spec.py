"""Which spec should be the default? Recall@10 of candidate funnels on every data set we have.

    .venv/bin/python benchmarks/default_spec.py [--low-rank-n 200000] [--queries 300]
                                                [--specs "rabitq:3*10 > f32" ...] [--out x.json]

Data sets (all with metric cosine, recall@10 against exact float32 search in the same run):
``minilm`` and ``gemma`` = ../shared/data/debian-gemma (6,000 Debian docs, 1,000 synopsis
queries); ``low-rank`` = ``slimvec.datasets.synthetic.low_rank`` (latent 48 + isotropic noise);
``isotropic`` = 10,000 x 384 Gaussian vectors, with held-out Gaussian queries and, as the
README example does, with the first documents as queries (``isotropic-self``).

Each spec runs through the same ``Pipeline`` a collection uses (fitted on all documents), on
codes held in arrays. Also printed: RAM bytes per vector of the first stage (+ 8-byte id)
relative to float32, and QPS at batch 100 (2 threads; the machine is shared: ``uptime`` is
printed with the table and the timings are only comparable within one run).
"""

from __future__ import annotations

import os

THREADS = 2
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, str(THREADS))

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402

from slimvec.datasets.synthetic import isotropic, low_rank  # noqa: E402
from slimvec.search.funnel import ORIGINAL, ArrayCodes, Pipeline  # noqa: E402
from slimvec.spec import parse_spec  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "debian-gemma"
K = 10
SPECS = [
    "binary*40 > f32",
    "rot:{d} | binary*40 > f32",
    "rabitq*40 > f32",
    "rabitq*100 > f32",
    "rabitq:2*20 > f32",
    "rabitq:2*40 > f32",
    "rabitq:3*10 > f32",
    "rabitq:3*20 > f32",
    "rabitq:4*10 > f32",
    "int8@128*20 > f32",
]


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def datasets(low_rank_n: int, nq: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    if (SHARED / "doc_emb.npy").exists():
        out["minilm"] = (
            np.load(SHARED / "minilm_doc_emb.npy"),
            np.load(SHARED / "minilm_query_emb.npy"),
        )
        out["gemma"] = (np.load(SHARED / "doc_emb.npy"), np.load(SHARED / "query_emb.npy"))
    lr = low_rank(low_rank_n, queries=nq, latent=48, seed=1)
    out[f"low-rank-48 ({low_rank_n:,})"] = (lr.docs, lr.queries)
    iso = isotropic(10_000, queries=nq, seed=0)
    out["isotropic"] = (iso.docs, iso.queries)
    out["isotropic-self"] = (iso.docs, iso.docs[:nq])
    return {
        name: (unit(d.astype(np.float32)), unit(q[:nq].astype(np.float32)))
        for name, (d, q) in out.items()
    }


def exact_top(docs: np.ndarray, queries: np.ndarray) -> np.ndarray:
    out = np.empty((len(queries), K), np.int64)
    for s in range(0, len(queries), 100):
        scores = queries[s : s + 100] @ docs.T
        part = np.argpartition(-scores, K, axis=1)[:, :K]
        out[s : s + 100] = part
    return out


def evaluate(spec_text: str, docs: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> dict:
    spec = parse_spec(spec_text.format(d=docs.shape[1]))
    if any(s.dims and s.dims > docs.shape[1] for s in spec.stages):
        return {}
    pipe = Pipeline(spec, docs.shape[1], "cosine")
    t0 = time.perf_counter()
    pipe.fit(docs)
    codes = pipe.encode(docs)
    codes[ORIGINAL] = docs
    build = time.perf_counter() - t0
    source = ArrayCodes(codes)
    pipe.search(queries[:100], K, source, None)  # warm-up (compilation)
    t0 = time.perf_counter()
    rows = np.concatenate(
        [pipe.search(queries[s : s + 100], K, source, None)[0] for s in range(0, len(queries), 100)]
    )
    qps = len(queries) / (time.perf_counter() - t0)
    rec = float(np.mean([len(set(r) & set(t)) / K for r, t in zip(rows, truth)]))
    ram = pipe.bytes_per_vector(pipe.first_key) + 8
    return {
        "spec": str(spec),
        "recall": rec,
        "ram_bpv": ram,
        "ram_ratio": ram / (4 * docs.shape[1]),
        "qps": qps,
        "build_s": build,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--low-rank-n", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--specs", nargs="*", default=SPECS)
    parser.add_argument("--only", nargs="*", help="data set name prefixes to run (default all)")
    parser.add_argument("--out")
    args = parser.parse_args()
    numba.set_num_threads(THREADS)
    results = {}
    for name, (docs, queries) in datasets(args.low_rank_n, args.queries).items():
        if args.only and not any(name.startswith(o) for o in args.only):
            continue
        truth = exact_top(docs, queries)
        rows = []
        for spec in args.specs:
            row = evaluate(spec, docs, queries, truth)
            if row:
                rows.append(row)
                print(
                    f"{name:28s} {row['spec']:32s} recall@10 {row['recall']:.4f}  "
                    f"RAM {row['ram_bpv']:4d} B ({row['ram_ratio']:.3f} of f32)  "
                    f"{row['qps']:8.0f} QPS",
                    flush=True,
                )
        results[name] = {
            "n": len(docs),
            "dim": docs.shape[1],
            "rows": rows,
            "load": os.getloadavg()[0],
        }
        print(f"-- {name}: load average {os.getloadavg()[0]:.1f}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
