"""Shared fixtures: real embeddings from ../shared when present, seeded synthetic ones otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "debian-gemma"


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit vectors around 50 random centres: structured like embeddings, unlike pure noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, dim))
    x = centres[rng.integers(0, 50, n)] + 0.8 * rng.standard_normal((n, dim))
    x += 0.5  # a shared offset, as real embedding models have (anisotropy)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="session")
def gemma() -> tuple[np.ndarray, np.ndarray]:
    """(docs, queries) EmbeddingGemma vectors (6000x768, 1000x768), or a synthetic stand-in."""
    if (SHARED / "doc_emb.npy").exists():
        docs = np.load(SHARED / "doc_emb.npy").astype(np.float32)
        queries = np.load(SHARED / "query_emb.npy").astype(np.float32)
        return docs, queries
    return _clustered(6000, 768, 1), _clustered(1000, 768, 2)


@pytest.fixture(scope="session")
def minilm() -> tuple[np.ndarray, np.ndarray]:
    """(docs, queries) all-MiniLM-L6-v2 vectors (384-d), or a synthetic stand-in."""
    if (SHARED / "minilm_doc_emb.npy").exists():
        docs = np.load(SHARED / "minilm_doc_emb.npy").astype(np.float32)
        queries = np.load(SHARED / "minilm_query_emb.npy").astype(np.float32)
        return docs, queries
    return _clustered(6000, 384, 3), _clustered(1000, 384, 4)


@pytest.fixture
def small() -> np.ndarray:
    return _clustered(500, 64, 5)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each row of ``truth`` found in the same row of ``found``."""
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


@pytest.fixture
def small_ivf(monkeypatch):
    """IVF trains from 1,000 rows here (the measured default is 20,000; the rule is the same)."""
    pytest.importorskip("faiss", reason="ivf:N trains its centroids with faiss-cpu")
    from slimvec.index import ivf

    monkeypatch.setattr(ivf, "FLAT_ROWS", 1000)
    return ivf
