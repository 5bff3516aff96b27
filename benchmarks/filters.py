"""Filtered search benchmark (issue 13): slimvec against FAISS and LanceDB, same data, one run.

    .venv/bin/python benchmarks/filters.py [--n 1000000] [--queries 200] [--no-hnsw]
                                           [--no-lance] [--out results.json]

Data: ``n`` synthetic embedding-like unit vectors (384-d: 1,000 clusters in a 48-d anisotropic
subspace plus full-rank noise; isotropic Gaussians have no neighbours worth finding), queries
near random documents. Metadata per vector: ``bucket`` uniform in 0..9,999 (the filter
``bucket < t`` selects t/10,000 of the rows: 50%, 10%, 1%, 0.1%, 0.01%) and ``package`` (the
vector's cluster). The *correlated* filter is, per query, the package of its exact nearest
neighbour (the hard case for post-filtering and graph indexes: the matching rows sit where the
query is).

Per filter and system: recall@10 against exact filtered search (numpy over the float32
originals and the mask; a hit is a returned id scoring at least the 10th exact score), short
lists (queries answered with fewer than min(10, matching) ids), QPS, and the ratio of filtered
to unfiltered QPS of the same system. slimvec also reports the plan and the filter-evaluation
milliseconds. Peers: FAISS IndexFlatIP and IndexHNSWSQ8 (M=32, efSearch=128) with an
IDSelectorBitmap in SearchParameters (the mask is built by numpy, as slimvec's is); LanceDB
``.where(sql, prefilter=True)`` on an IVF_FLAT index (sqrt(n) lists, nprobes=20; IVF_PQ took
4.5 minutes to train on 20k vectors on the loaded shared CPU, so the flat lists stand in).
Batches of 100 queries, except the correlated filter and LanceDB (one query per call).
Everything runs with 2 threads.
"""

from __future__ import annotations

import os

THREADS = 2
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, str(THREADS))
os.environ.setdefault("LANCE_LOG", "error")

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import faiss  # noqa: E402
import numpy as np  # noqa: E402

import slimvec  # noqa: E402

K = 10
BATCH = 100
SELECTIVITIES = (0.5, 0.1, 0.01, 0.001, 0.0001)


def embedding_like(n: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    basis = (rng.standard_normal((48, dim)) / np.sqrt(np.arange(1, 49))[:, None]).astype(np.float32)
    centres = rng.standard_normal((1000, 48)).astype(np.float32)
    cluster = rng.integers(0, 1000, n)
    x = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):
        part = slice(start, min(n, start + 100_000))
        z = centres[cluster[part]] + 0.8 * rng.standard_normal((len(x[part]), 48))
        x[part] = z.astype(np.float32) @ basis
        x[part] += 0.05 * rng.standard_normal(x[part].shape).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, cluster, rng


def exact_filtered(x: np.ndarray, q: np.ndarray, mask: np.ndarray) -> tuple:
    """Exact top-K among masked rows, and each query's K-th score (ties count as hits)."""
    rows = np.flatnonzero(mask)
    sub = x[rows]
    ids = np.full((len(q), K), -1, np.int64)
    kth = np.full(len(q), -np.inf, np.float32)
    for start in range(0, len(q), 20):
        scores = q[start : start + 20] @ sub.T
        kk = min(K, len(rows))
        if kk == 0:
            continue
        top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        vals = np.take_along_axis(scores, top, 1)
        order = np.argsort(-vals, axis=1)
        ids[start : start + 20, :kk] = rows[np.take_along_axis(top, order, 1)]
        kth[start : start + 20] = vals[np.arange(len(vals)), order[:, -1]]
    return ids, kth


def score(x, q, found, exact_ids, kth) -> tuple[float, int]:
    """(recall@K, short lists) of ``found`` against the exact filtered answer."""
    hits, want, short = 0, 0, 0
    for i in range(len(q)):
        expected = int((exact_ids[i] >= 0).sum())
        got = found[i][found[i] >= 0]
        short += len(got) < expected
        want += expected
        if len(got):
            hits += min(expected, int((x[got] @ q[i] >= kth[i] - 1e-5).sum()))
    return hits / max(want, 1), short


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def batched(search, q: np.ndarray) -> tuple[float, np.ndarray]:
    """QPS and ids of ``search(batch)`` over batches of BATCH queries."""
    parts, seconds = [], 0.0
    search(q[:BATCH])  # warm-up (numba, caches)
    for start in range(0, len(q), BATCH):
        took, ids = timed(lambda s=start: search(q[s : s + BATCH]))
        seconds += took
        parts.append(ids)
    return len(q) / seconds, np.concatenate(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--spec", default="binary*40 > f32")
    parser.add_argument("--no-hnsw", action="store_true", help="skip FAISS HNSWSQ8 (slow build)")
    parser.add_argument("--no-lance", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    faiss.omp_set_num_threads(THREADS)
    n, dim = args.n, 384
    x, cluster, rng = embedding_like(n, dim)
    q = x[rng.choice(n, args.queries, replace=False)] + 0.02 * rng.standard_normal(
        (args.queries, dim)
    ).astype(np.float32)
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    bucket = rng.integers(0, 10_000, n)
    print(f"n={n:,} dim={dim} queries={len(q)} load average {os.getloadavg()[0]:.1f}")

    filters = {}
    for s in SELECTIVITIES:
        t = int(s * 10_000)
        filters[f"{s:.2%}"] = ({"bucket": {"$lt": t}}, bucket < t, f"bucket < {t}")
    nearest = np.concatenate([np.argmax(q[i : i + 50] @ x.T, axis=1) for i in range(0, len(q), 50)])
    corr_packages = cluster[nearest]

    tmp = Path(tempfile.mkdtemp(prefix="slimvec-filters-"))
    results: list[dict] = []
    try:
        took, col = timed(lambda: build_slimvec(tmp / "c", x, bucket, cluster, args.spec))
        print(f"slimvec {args.spec!r} built in {took:.0f} s")
        systems = {"slimvec": SlimvecSystem(col)}
        took, flat = timed(lambda: FaissSystem(faiss.IndexFlatIP(dim), x))
        systems["faiss-flat"] = flat
        if not args.no_hnsw:
            took, hnsw = timed(lambda: FaissSystem(make_hnsw(dim), x, ef=128))
            print(f"FAISS HNSWSQ8 built in {took:.0f} s")
            systems["faiss-hnswsq8"] = hnsw
        if not args.no_lance:
            try:
                took, lance = timed(lambda: LanceSystem(tmp / "lance", x, bucket, cluster))
                print(f"LanceDB IVF_FLAT built in {took:.0f} s")
                systems["lancedb-ivf"] = lance
            except ImportError as exc:
                print(f"LanceDB not measured: {exc}")

        unfiltered_qps = {}
        for name, system in systems.items():
            qq = q if name != "lancedb-ivf" else q[:50]
            unfiltered_qps[name], _ = batched(lambda b, s=system: s.search(b, None), qq)
            unfiltered_qps[name + "/1"] = system.single_qps(q[:50], None)
        header = (
            f"{'filter':>10s} {'system':>14s} {'recall@10':>9s} {'short':>5s} {'QPS':>8s} "
            f"{'x unfilt':>8s} {'filter ms':>9s}  plan"
        )
        print(header)
        for label, (spec, mask, sql) in filters.items():
            exact_ids, kth = exact_filtered(x, q, mask)
            for name, system in systems.items():
                qq = q if name != "lancedb-ivf" else q[:50]
                flt = (spec, mask, sql)
                qps, found = batched(lambda b, s=system, f=flt: s.search(b, f), qq)
                rec, short = score(x, qq, found, exact_ids[: len(qq)], kth[: len(qq)])
                row = {
                    "filter": label,
                    "system": name,
                    "recall": rec,
                    "short": short,
                    "qps": qps,
                    "vs_unfiltered": qps / unfiltered_qps[name],
                    **system.notes(spec),
                }
                results.append(row)
                print_row(row)
        # correlated: a different filter per query, one query per call
        label = "correlated"
        per_query = [
            ({"package": int(p)}, cluster == p, f"package = {int(p)}") for p in corr_packages[:50]
        ]
        exact = [exact_filtered(x, q[i : i + 1], m) for i, (_, m, _) in enumerate(per_query)]
        exact_ids = np.concatenate([e[0] for e in exact])
        kth = np.concatenate([e[1] for e in exact])
        for name, system in systems.items():
            found, seconds = [], 0.0
            for i, flt in enumerate(per_query):
                took, ids = timed(lambda i=i, flt=flt, s=system: s.search(q[i : i + 1], flt))
                seconds += took
                found.append(ids)
            rec, short = score(x, q[:50], np.concatenate(found), exact_ids, kth)
            qps = len(per_query) / seconds
            row = {
                "filter": label,
                "system": name,
                "recall": rec,
                "short": short,
                "qps": qps,
                "vs_unfiltered": qps / unfiltered_qps[name + "/1"],
                **system.notes(per_query[0][0]),
            }
            results.append(row)
            print_row(row)
        print(f"load average {os.getloadavg()[0]:.1f}")
        if args.out:
            args.out.write_text(json.dumps(results, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def print_row(row: dict) -> None:
    print(
        f"{row['filter']:>10s} {row['system']:>14s} {row['recall']:9.3f} {row['short']:5d} "
        f"{row['qps']:8.0f} {row['vs_unfiltered']:8.2f} "
        f"{row.get('filter_ms', float('nan')):9.2f}  {row.get('plan', '')}",
        flush=True,
    )


def build_slimvec(path, x, bucket, cluster, spec):
    col = slimvec.create(path, dim=x.shape[1], spec=spec)
    step = 250_000
    for start in range(0, len(x), step):
        stop = min(len(x), start + step)
        metas = [
            {"bucket": int(b), "package": int(c)}
            for b, c in zip(bucket[start:stop], cluster[start:stop])
        ]
        col.add(x[start:stop], metadata=metas)
    return col


class SlimvecSystem:
    def __init__(self, col):
        self.col = col
        self.last = None

    def search(self, q, flt):
        res = self.col.search(q, k=K, filter=None if flt is None else flt[0])
        self.last = res.explain
        return res.ids

    def single_qps(self, q, flt):
        took, _ = timed(lambda: [self.search(q[i : i + 1], flt) for i in range(len(q))])
        return len(q) / took

    def notes(self, spec):
        best = min(timed(lambda: self.col.count(spec))[0] for _ in range(5))
        return {"filter_ms": 1000 * best, "plan": self.last["plan"] if self.last else ""}


def make_hnsw(dim):
    index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 40
    return index


class FaissSystem:
    def __init__(self, index, x, ef=None):
        if not index.is_trained:
            index.train(x[:100_000])
        index.add(x)
        self.index, self.ef = index, ef

    def search(self, q, flt):
        params = None
        if flt is not None:
            mask = flt[1]
            bits = np.packbits(mask, bitorder="little")
            self._sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
            self._bits = bits  # the selector points into it
            if self.ef is not None:
                params = faiss.SearchParametersHNSW(sel=self._sel, efSearch=self.ef)
            else:
                params = faiss.SearchParameters(sel=self._sel)
        elif self.ef is not None:
            params = faiss.SearchParametersHNSW(efSearch=self.ef)
        _, ids = self.index.search(q, K, params=params)
        return ids

    def single_qps(self, q, flt):
        took, _ = timed(lambda: [self.search(q[i : i + 1], flt) for i in range(len(q))])
        return len(q) / took

    def notes(self, spec):
        return {}


class LanceSystem:
    def __init__(self, path, x, bucket, cluster):
        import lancedb
        import pyarrow as pa

        db = lancedb.connect(str(path))
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1])
        table = pa.table(
            {
                "id": pa.array(np.arange(len(x))),
                "vector": vectors,
                "bucket": pa.array(bucket),
                "package": pa.array(cluster),
            }
        )
        self.table = db.create_table("docs", table)
        self.table.create_index(
            metric="dot",
            num_partitions=int(np.sqrt(len(x))),
            index_type="IVF_FLAT",
        )

    def search(self, q, flt):
        out = np.full((len(q), K), -1, np.int64)
        for i in range(len(q)):
            query = self.table.search(q[i]).nprobes(20).limit(K)
            if flt is not None:
                query = query.where(flt[2], prefilter=True)
            ids = query.select(["id"]).to_arrow()["id"].to_numpy()
            out[i, : len(ids)] = ids
        return out

    def single_qps(self, q, flt):
        took, _ = timed(lambda: self.search(q, flt))
        return len(q) / took

    def notes(self, spec):
        return {}


if __name__ == "__main__":
    main()
