"""Shared fixtures: real MiniLM embeddings of Debian texts committed in tests/data (see
tests/data/debian_minilm/README.md), and seeded synthetic sets. No test reads anything outside
the repository."""

from __future__ import annotations

import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from slimvec.datasets import Dataset, load_files

#: 3,000 Debian package descriptions, 509 synopsis queries (one relevant description each), their
#: all-MiniLM-L6-v2 vectors (float16) and, for the first 400 descriptions, multilingual-e5-small
#: vectors; made by scripts/make_test_fixture.py (tests/data/debian_minilm/README.md).
FIXTURE = Path(__file__).resolve().parent / "data" / "debian_minilm"


#: The slow tier: `make test-fast` (pytest -m "not slow") leaves these out, `make test` runs
#: them. Seconds measured on 2 shared cores with a warm numba cache (cold runs are slower);
#: "file.py" alone marks the whole module. Kept here rather than as decorators so that one list
#: shows the tier and its cost; an entry that no longer names a collected test is warned about.
SLOW = {
    "test_fde.py::test_fde_tracks_chamfer_on_real_tokens": 15,  # MiniLM token sets, 300 texts
    "test_pooling.py::test_real_tokens_counts_and_maxsim": 2,  # the same token sets
    "test_upgrade_real_models.py": 13,  # MiniLM -> e5 upgrade with both real models
    "test_rag_example.py": 11,  # LangChain RAG example, real model, Debian index via apt
    "test_server_page.py": 8,  # four headless Chromium runs
    "test_distributed_cluster.py": 10,  # a two-node Ray cluster
    "test_contract_sharded.py": 46,  # the contract suite on 2 Ray shards
    "test_concurrency.py::test_threads_share_a_handle_while_another_process_writes": 10,
    "test_distributed.py::test_ingest_texts_in_parallel_and_resume": 14,
    "test_distributed.py::test_ingest_survives_a_shard_killed_mid_run": 8,
    "test_distributed.py::test_a_shard_that_cannot_start_is_named": 7.5,
    "test_distributed.py::test_a_replica_answers_when_a_shard_actor_dies": 7,
    "test_distributed.py::test_texts_with_an_encoder": 6,
    "test_distributed.py::test_reopen_serves_the_same_collection": 5.5,
    "test_upgrade.py::test_keyword_search_covers_both_spaces_during_an_upgrade": 12,
    "test_upgrade.py::test_backfill_resumes_after_kill": 7.5,  # 2 kill points
    "test_server.py::test_threads_search_two_workers_while_another_process_writes": 7.5,
    "test_write_path.py::test_single_adds_keep_segments_logarithmic_and_files_bounded": 10,
    "test_cli.py::test_upgrade_commands_end_to_end": 19,  # cold; 2.5 s warm
}


def pytest_collection_modifyitems(config, items):
    files, found = set(), set()
    for item in items:
        module = item.nodeid.split("::")[0].rsplit("/", 1)[-1]
        test = f"{module}::{item.originalname if hasattr(item, 'originalname') else item.name}"
        files.add(module)
        for key in (module, test):
            if key in SLOW:
                item.add_marker(pytest.mark.slow)
                found.add(key)
    stale = sorted(k for k in SLOW if k.split("::")[0] in files and k not in found)
    if stale:
        warnings.warn(
            pytest.PytestWarning(f"tests/conftest.py SLOW names no collected test: {stale}"),
            stacklevel=1,
        )


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
    from slimvec.index import sizing

    monkeypatch.setattr(sizing, "FLAT_ROWS", 1000)
    return sizing


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "planner: the test sees the planner's real prices (see _funnel_plans)"
    )


@pytest.fixture(autouse=True)
def _funnel_plans(request):
    """Most tests check the funnel's answers on small collections, where the planner would
    answer exactly (it costs less there; slimvec.engine.planner): they run inside
    ``planner.funnel_only()``. Tests marked ``planner`` see the planner's own choice."""
    if request.node.get_closest_marker("planner") is not None:
        yield
        return
    from slimvec.engine import planner

    with planner.funnel_only():
        yield
