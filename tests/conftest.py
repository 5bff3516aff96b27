"""Shared fixtures: real MiniLM embeddings of Debian texts committed in tests/data (see
tests/data/debian_minilm/README.md), and seeded synthetic sets. No test reads anything outside
the repository."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from slimvec.datasets import Dataset, load_files

#: 3,000 Debian package descriptions, 509 synopsis queries (one relevant description each), their
#: all-MiniLM-L6-v2 vectors (float16) and, for the first 400 descriptions, multilingual-e5-small
#: vectors; made by tests/data/make_fixture.py (tests/data/debian_minilm/README.md).
FIXTURE = Path(__file__).resolve().parent / "data" / "debian_minilm"


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit vectors around 50 random centres: structured like embeddings, unlike pure noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, dim))
    x = centres[rng.integers(0, 50, n)] + 0.8 * rng.standard_normal((n, dim))
    x += 0.5  # a shared offset, as real embedding models have (anisotropy)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@cache
def debian_fixture() -> Dataset:
    """The committed Debian set: ids, texts, qrels and MiniLM vectors (float32), rows in order.
    For module-level use; tests take the ``debian_minilm`` fixture. Treat it as read-only."""
    return load_files(FIXTURE, model="sentence-transformers/all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def debian_minilm() -> Dataset:
    return debian_fixture()


@pytest.fixture(scope="session")
def minilm(debian_minilm) -> tuple[np.ndarray, np.ndarray]:
    """(docs, queries) all-MiniLM-L6-v2 vectors of Debian texts: (3000, 384), (509, 384)."""
    return debian_minilm.docs, debian_minilm.queries


@pytest.fixture(scope="session")
def e5_docs() -> np.ndarray:
    """multilingual-e5-small vectors (400, 384) of the fixture's first 400 documents."""
    return np.load(FIXTURE / "e5_doc_emb.npy").astype(np.float32)


@pytest.fixture(scope="session")
def clustered768() -> tuple[np.ndarray, np.ndarray]:
    """(docs, queries) synthetic 768-d vectors (6000, 1000) around 50 centres (``_clustered``)."""
    return _clustered(6000, 768, 1), _clustered(1000, 768, 2)


@pytest.fixture(scope="session")
def gemma(clustered768) -> tuple[np.ndarray, np.ndarray]:
    """The old name of ``clustered768``, still used by test_cli.py: synthetic, not EmbeddingGemma
    (those vectors are not in the repository)."""
    return clustered768


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
