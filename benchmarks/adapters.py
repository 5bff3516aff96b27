"""Overhead of the framework adapters over the raw slimvec API (issue 18): bulk add and
single-query search p50 (k=10) on the same documents, same spec, same run.

    .venv/bin/python benchmarks/adapters.py [--n 100000] [--queries 300] [--chunk 10000]

Data: the first ``n`` real sentences with their 384-dim embeddings (the cached sentence pool,
``python -m slimvec.datasets.sentences --build``; ``--data random`` without it). Embeddings are
precomputed (LangChain's ``Embeddings`` is a dictionary lookup), so what is timed is each
adapter's own work: building documents/nodes, mapping ids and filters, fetching texts and
metadata. Documents/nodes are built before timing, as an application would hold them.

Load noise is shared, not compared: adds are interleaved chunk by chunk and every query is
timed on each store in turn, the first store rotating (the one after another store's fsyncs
pays for its writeback), so a busy moment slows all stores alike. Two raw baselines:
``search`` alone (ids and scores) and
``search`` + ``get`` of the hits' texts and metadata (what a framework returns).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import slimvec

K = 10


def documents(data: str, n: int, queries: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if data == "sentences":
        from slimvec.datasets.sentences import load_sentences

        ds = load_sentences(n, n_queries=queries, texts=True)
        return np.ascontiguousarray(ds.docs), ds.queries, list(ds.doc_texts)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    texts = [f"document {i}: " + "lorem ipsum dolor sit amet " * 4 for i in range(n)]
    return x, x[rng.choice(n, queries, replace=False)] + 0.05, texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="sentences", choices=("sentences", "random"))
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--chunk", type=int, default=10_000, help="documents per add call")
    args = parser.parse_args()
    from haystack import Document
    from langchain_core.embeddings import Embeddings
    from llama_index.core.schema import TextNode
    from llama_index.core.vector_stores.types import VectorStoreQuery

    from slimvec.integrations import haystack, langchain, llamaindex

    x, queries, texts = documents(args.data, args.n, args.queries)
    ids = [f"doc-{i}" for i in range(args.n)]
    metas = [{"n": i, "part": i % 10, "source": f"file-{i % 97}.txt"} for i in range(args.n)]
    row = {t: i for i, t in enumerate(texts)}

    class Lookup(Embeddings):
        def embed_documents(self, batch):
            return x[[row[t] for t in batch]]

        def embed_query(self, text):
            return x[row[text]]

    hs_docs = [
        Document(id=i, content=t, meta=m, embedding=v.tolist())
        for i, t, m, v in zip(ids, texts, metas, x)
    ]
    li_nodes = [
        TextNode(id_=i, text=t, metadata=m, embedding=v.tolist())
        for i, t, m, v in zip(ids, texts, metas, x)
    ]

    tmp = Path(tempfile.mkdtemp())
    warm = slimvec.create(tmp / "warm", dim=x.shape[1], metric="cosine", ids="str")
    for start in (0, 1000):  # load and compile the add and search kernels before timing
        part = slice(start, start + 1000)
        warm.add(x[part], ids=ids[part], metadata=metas[part], texts=texts[part])
        warm.search(queries[:2], k=K)
    raw = slimvec.create(tmp / "raw", dim=x.shape[1], metric="cosine", ids="str")
    lc = langchain.SlimvecVectorStore(Lookup(), path=tmp / "lc")
    hs = haystack.SlimvecDocumentStore(tmp / "hs", embedding_dim=x.shape[1])
    li = llamaindex.SlimvecVectorStore(path=tmp / "li")
    adders = {
        "raw": lambda s: raw.add(x[s], ids=ids[s], metadata=metas[s], texts=texts[s]),
        "langchain": lambda s: lc.add_texts(texts[s], metas[s], ids=ids[s]),
        "haystack": lambda s: hs.write_documents(hs_docs[s]),
        "llamaindex": lambda s: li.add(li_nodes[s]),
    }
    add_s = dict.fromkeys(adders, 0.0)
    names = list(adders)
    for c, start in enumerate(range(0, args.n, args.chunk)):
        part = slice(start, min(args.n, start + args.chunk))
        for name in names[c % len(names) :] + names[: c % len(names)]:  # rotate who goes first
            began = time.perf_counter()
            adders[name](part)
            add_s[name] += time.perf_counter() - began

    searchers = {
        "raw": lambda q: raw.search(q, k=K),
        "raw+get": lambda q: raw.get(raw.search(q, k=K).ids[0].tolist(), vectors=False),
        "langchain": lambda q: lc.similarity_search_with_score_by_vector(q.tolist(), k=K),
        "haystack": lambda q: hs.embedding_retrieval(q.tolist(), top_k=K),
        "llamaindex": lambda q: li.query(
            VectorStoreQuery(query_embedding=q.tolist(), similarity_top_k=K)
        ),
    }
    for search in searchers.values():  # warm caches and compiled kernels
        for q in queries[:5]:
            search(q)
    times = {name: [] for name in searchers}
    for i, q in enumerate(queries):
        names = list(searchers)
        for name in names[i % len(names) :] + names[: i % len(names)]:  # rotate who goes first
            began = time.perf_counter()
            searchers[name](q)
            times[name].append(time.perf_counter() - began)
    p50 = {name: float(np.median(t)) * 1000 for name, t in times.items()}

    same = [
        [d.metadata["n"] for d, _ in lc.similarity_search_with_score_by_vector(q.tolist(), k=K)]
        == [int(i[4:]) for i in raw.search(q, k=K).ids[0]]
        for q in queries[:20]
    ]
    load = os.getloadavg()
    title = (
        f"adapters over raw slimvec: n={args.n} ({args.data}, dim {x.shape[1]}), spec "
        f"{raw.spec!r}, {args.queries} queries, adds of {args.chunk}; load "
        f"{load[0]:.1f}/{load[1]:.1f}; LangChain hits == raw hits on {sum(same)}/{len(same)}"
    )
    table = Table(title=title)
    for col in ("store", "bulk add s", "× raw add", "search p50 ms", "× raw search", "× raw+get"):
        table.add_column(col, justify="left" if col == "store" else "right")
    for name in ("raw", "raw+get", "langchain", "haystack", "llamaindex"):
        add = add_s.get(name)
        table.add_row(
            name,
            "" if add is None else f"{add:.2f}",
            "" if add is None else f"{add / add_s['raw']:.2f}",
            f"{p50[name]:.3f}",
            f"{p50[name] / p50['raw']:.2f}",
            f"{p50[name] / p50['raw+get']:.2f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
