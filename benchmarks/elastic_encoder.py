"""Elastic (2D Matryoshka) encoders: nDCG@10 and encoding speed over a (layers x dims) grid.

all-MiniLM-L6-v2 cut to its first L transformer layers and first D dimensions, as shipped
("plain") and after a short 2D-Matryoshka fine-tune ("2D"): sentence-transformers'
``Matryoshka2dLoss`` around in-batch-negatives (MultipleNegativesRankingLoss), every layer and
every dim in {384, 256, 128, 64} on every step, one epoch over Debian (synopsis, description)
pairs of packages *outside* the shared evaluation set (the pair selection of
``successor_model.py``). The model is cached in ``~/.cache/slimvec/elastic/``.

Evaluation: the shared Debian set (../shared/data/debian-gemma): its first ``--queries``
synopsis queries, their relevant long descriptions plus random others up to ``--docs``
documents. Texts/s = documents encoded per second at each depth (dims do not change encoding
cost); the speed-up is against the full plain model timed in the same run. The fine-tune also
adapts the model to Debian text, so its full-depth row is the fair reference for its own cuts.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/elastic_encoder.py [--pairs 800]
        [--train-minutes 15] [--docs 2000] [--queries 500] [--train-only] [--markdown FILE]

Training stops after one epoch or ``--train-minutes``; on 2 cores shared at a load average of
~20 a 13-minute budget made 33 steps, and evaluating 500 documents took 16 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from slimvec.eval.metrics import Judgements, ndcg_at_k, qrels_recall_at_k
from successor_model import DATA, training_pairs

OUT = Path.home() / ".cache" / "slimvec" / "elastic"
MODEL_DIR = OUT / "models" / "minilm-debian-2d"
BATCH = 16  # pairs per step (in-batch negatives)
LAYERS = (2, 3, 4, 6)
DIMS = (384, 256, 128, 64)


def train_2d(
    pairs: list[tuple[str, str]],
    minutes: float,
    batch: int = BATCH,
    lr: float = 1e-4,
    seed: int = 0,
):
    """Matryoshka2dLoss(MNRL) over ``pairs``, one epoch or ``minutes`` of it, whichever ends
    first; returns (the trained model, the number of steps taken)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import (
        Matryoshka2dLoss,
        MultipleNegativesRankingLoss,
    )
    from tqdm import tqdm

    from slimvec.encoders.sentence import packaged_minilm_path

    random.seed(seed)
    torch.manual_seed(seed)
    model = SentenceTransformer(str(packaged_minilm_path()), device="cpu")
    model.max_seq_length = 64  # the budget of 2 shared cores: a description's first 64 tokens
    loss_fn = Matryoshka2dLoss(
        model,
        MultipleNegativesRankingLoss(model),
        list(DIMS),
        n_layers_per_step=-1,  # all depths each step: cheap, the layer outputs are cached
        n_dims_per_step=-1,
    )
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    deadline = time.perf_counter() + 60 * minutes
    steps = 0
    for start in tqdm(range(0, len(pairs) - batch + 1, batch), desc="2D fine-tune", unit="batch"):
        if time.perf_counter() > deadline:
            break
        queries, docs = zip(*pairs[start : start + batch], strict=True)
        features = [model.preprocess(list(queries)), model.preprocess(list(docs))]
        loss = loss_fn(features, None)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        steps += 1
    model.eval()
    return model, steps


def ensure_model(n_pairs: int, minutes: float) -> Path:
    if (MODEL_DIR / "config.json").exists():
        return MODEL_DIR
    pairs = training_pairs(n_pairs, seed=1)
    print(
        f"2D-Matryoshka fine-tune of all-MiniLM-L6-v2 on {len(pairs)} Debian pairs outside the set"
    )
    t0 = time.perf_counter()
    model, steps = train_2d(pairs, minutes)
    MODEL_DIR.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(MODEL_DIR))
    seconds = time.perf_counter() - t0
    (MODEL_DIR / "training.json").write_text(
        json.dumps({"pairs_seen": BATCH * steps, "steps": steps, "seconds": round(seconds)})
    )
    print(f"trained {steps} steps ({BATCH * steps} pairs) in {seconds:.0f} s -> {MODEL_DIR}")
    return MODEL_DIR


def evaluation_set(n_docs: int, n_queries: int, seed: int = 0):
    """(doc texts, query texts, Judgements): the first queries, their relevant documents and
    random other documents of the shared set."""
    docs = [json.loads(line) for line in (DATA / "docs.jsonl").read_text().splitlines()]
    queries = [json.loads(x) for x in (DATA / "queries.jsonl").read_text().splitlines()][:n_queries]
    qrels: dict[str, dict[str, int]] = {}
    for line in (DATA / "qrels.tsv").read_text().splitlines()[1:]:
        qid, did, rel = line.split()
        qrels.setdefault(qid, {})[did] = int(rel)
    wanted = {d for q in queries for d in qrels.get(q["id"], {})}
    others = [d["id"] for d in docs if d["id"] not in wanted]
    random.Random(seed).shuffle(others)
    keep = wanted | set(others[: max(0, n_docs - len(wanted))])
    docs = [d for d in docs if d["id"] in keep]
    judgements = Judgements.from_qrels(qrels, [q["id"] for q in queries], [d["id"] for d in docs])
    return [d["text"] for d in docs], [q["text"] for q in queries], judgements


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def evaluate(model: str, layers: int, docs, queries, judgements) -> list[dict]:
    """Encode at ``layers`` (timed), then score every dims prefix."""
    from slimvec.encoders import ElasticEncoder

    enc = ElasticEncoder(model, layers=layers)
    enc.encode(docs[:64], progress=False)  # warm-up: first calls allocate
    t0 = time.perf_counter()
    d = enc.encode(docs, kind="doc", progress=False)
    speed = len(docs) / (time.perf_counter() - t0)
    q = enc.encode(queries, kind="query", progress=False)
    rows = []
    for dims in DIMS:
        scores = unit(q[:, :dims]) @ unit(d[:, :dims]).T
        top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
        rows.append(
            {
                "layers": layers,
                "dims": dims,
                "ndcg": ndcg_at_k(top, judgements, 10),
                "recall": qrels_recall_at_k(top, judgements, 10),
                "texts_s": speed,
            }
        )
    return rows


def table(results: dict[str, list[dict]]) -> str:
    ref = next(r for r in results["plain"] if r["layers"] == 6 and r["dims"] == 384)
    lines = [
        "| L | D | plain nDCG@10 | 2D nDCG@10 | 2D vs full plain | 2D vs full 2D | "
        "docs/s (plain / 2D) | speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    full_2d = next(r for r in results["2D"] if r["layers"] == 6 and r["dims"] == 384)
    for plain, two in zip(results["plain"], results["2D"], strict=True):
        speed = (plain["texts_s"] + two["texts_s"]) / 2
        lines.append(
            f"| {plain['layers']} | {plain['dims']} | {plain['ndcg']:.4f} | {two['ndcg']:.4f} | "
            f"{100 * (two['ndcg'] / ref['ndcg'] - 1):+.1f}% | "
            f"{100 * (two['ndcg'] / full_2d['ndcg'] - 1):+.1f}% | "
            f"{plain['texts_s']:.0f} / {two['texts_s']:.0f} | "
            f"{speed / ((ref['texts_s'] + full_2d['texts_s']) / 2):.2f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=800, help="fine-tuning pairs")
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--train-only", action="store_true")
    parser.add_argument("--train-minutes", type=float, default=15.0, help="training time budget")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads; 1 on a shared machine (2 threads under a load of 15 ran 10x slower)",
    )
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    path = ensure_model(args.pairs, args.train_minutes)
    if args.train_only:
        return
    docs, queries, judgements = evaluation_set(args.docs, args.queries)
    print(f"{len(docs)} docs, {len(queries)} queries; load average {os.getloadavg()[0]:.1f}")
    results: dict[str, list[dict]] = {"plain": [], "2D": []}
    for layers in sorted(LAYERS, reverse=True):
        for label, model in (("plain", "all-MiniLM-L6-v2"), ("2D", str(path))):
            results[label] += evaluate(model, layers, docs, queries, judgements)
            print(f"  {label} L={layers}: {results[label][-1]['texts_s']:.0f} docs/s", flush=True)
    for rows in results.values():
        rows.sort(key=lambda r: (-r["layers"], -r["dims"]))
    text = table(results)
    print(f"\nload average after: {os.getloadavg()[0]:.1f}\n{text}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
