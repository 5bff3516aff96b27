"""Overhead of the framework adapters over the raw slimvec API (issue 18), same data, same
spec, same run: bulk add, and single-query search p50 (k=10).

    python benchmarks/adapters.py --n 20000 --dim 64

Embeddings are precomputed (the adapters call a lookup "model"), so what is timed is the
adapter's own work: building documents, mapping ids, fetching metadata and texts.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import slimvec


def _p50(fn, queries) -> float:
    times = []
    for q in queries:
        start = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    from haystack import Document
    from langchain_core.embeddings import Embeddings

    from slimvec.integrations.haystack import SlimvecDocumentStore
    from slimvec.integrations.langchain import SlimvecVectorStore

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.n, args.dim)).astype(np.float32)
    texts = [f"document number {i}" for i in range(args.n)]
    ids = [f"doc-{i}" for i in range(args.n)]
    metas = [{"n": i, "part": i % 10} for i in range(args.n)]
    row = {t: i for i, t in enumerate(texts)}
    queries = x[rng.choice(args.n, args.queries, replace=False)] + 0.1

    class Lookup(Embeddings):
        def embed_documents(self, batch):
            return x[[row[t] for t in batch]]

        def embed_query(self, text):
            return x[row[text]]

    tmp = Path(tempfile.mkdtemp())
    warm = slimvec.create(tmp / "warm", dim=args.dim, ids="str")  # compile/load kernels first
    warm.add(x[:5000], ids=ids[:5000], metadata=metas[:5000], texts=texts[:5000])
    warm.search(queries[:2], k=10)
    results = []
    start = time.perf_counter()
    col = slimvec.create(tmp / "raw", dim=args.dim, ids="str")
    col.add(x, ids=ids, metadata=metas, texts=texts)
    raw_add = time.perf_counter() - start
    raw_search = _p50(lambda q: col.search(q, k=10), queries)
    raw_fetch = _p50(lambda q: col.get(col.search(q, k=10).ids[0].tolist(), vectors=False), queries)
    results.append(("raw Collection (search + get)", raw_add, raw_search, raw_fetch))

    start = time.perf_counter()
    lc = SlimvecVectorStore(Lookup(), path=tmp / "lc")
    lc.add_texts(texts, metas, ids=ids)
    lc_add = time.perf_counter() - start
    lc_search = _p50(lambda q: lc.similarity_search_by_vector(q.tolist(), k=10), queries)
    results.append(("LangChain SlimvecVectorStore", lc_add, lc_search, lc_search))

    docs = [
        Document(id=i, content=t, meta=m, embedding=v.tolist())
        for i, t, m, v in zip(ids, texts, metas, x)
    ]
    start = time.perf_counter()
    hs = SlimvecDocumentStore(tmp / "hs", embedding_dim=args.dim)
    hs.write_documents(docs)
    hs_add = time.perf_counter() - start
    hs_search = _p50(lambda q: hs.embedding_retrieval(q.tolist(), top_k=10), queries)
    results.append(("Haystack SlimvecDocumentStore", hs_add, hs_search, hs_search))

    load = os.getloadavg()[0]
    print(f"n={args.n} dim={args.dim} spec={col.spec!r} queries={args.queries} load={load:.1f}")
    print(
        f"{'store':32} {'bulk add s':>10} {'x raw':>6} {'search p50 ms':>14} {'x raw':>6}"
        f" {'x raw+get':>9}"
    )
    for name, add, search, fetch in results:
        print(
            f"{name:32} {add:10.2f} {add / raw_add:6.2f} {search:14.3f} "
            f"{search / raw_search:6.2f} {fetch / raw_fetch:9.2f}"
        )


if __name__ == "__main__":
    main()
