"""`run_bench` on a small real set (the committed MiniLM vectors of Debian texts): sane,
self-consistent rows; files and plot written."""

from __future__ import annotations

import csv
from itertools import pairwise

import numpy as np
import pytest

from slimvec.datasets.base import Dataset
from slimvec.errors import InvalidInputError, SpecError
from slimvec.eval.bench import (
    BenchRow,
    exact_top,
    pareto_mask,
    prepare_vectors,
    read_json,
    run_bench,
    thread_limit,
    write_csv,
    write_json,
)
from slimvec.eval.metrics import Judgements, ndcg_at_k
from slimvec.eval.plots import plot_frontiers

SPECS = ["f32", "binary", "binary*40 > f32", "int8*4 > f32"]
DIM = 384


def small_set(ds: Dataset, n_docs: int = 1500, n_queries: int = 100) -> Dataset:
    """The first ``n_docs`` documents of the committed set and the first ``n_queries`` queries
    whose relevant documents are among them, with their qrels."""
    doc_ids = ds.doc_ids[:n_docs]
    inside = set(doc_ids)
    rows = [i for i, q in enumerate(ds.query_ids) if set(ds.qrels[q]) <= inside][:n_queries]
    assert len(rows) == n_queries
    return Dataset(
        "debian-minilm-small",
        doc_ids,
        [ds.query_ids[i] for i in rows],
        qrels={ds.query_ids[i]: ds.qrels[ds.query_ids[i]] for i in rows},
        docs=ds.docs[:n_docs],
        queries=ds.queries[rows],
        model=ds.model,
    )


@pytest.fixture(scope="module")
def dataset(debian_minilm) -> Dataset:
    return small_set(debian_minilm)


@pytest.fixture(scope="module")
def rows(dataset) -> list[BenchRow]:
    return run_bench(
        dataset, SPECS, k_values=(1, 10, 100), progress=False, latency_queries=10, threads=1
    )


def test_rows_are_sane(rows, dataset):
    by = {r.name: r for r in rows}
    assert [r.name for r in rows] == SPECS
    exact = by["f32"]
    assert exact.recall == {1: 1.0, 10: 1.0, 100: 1.0}
    # measured on these 1,500 MiniLM vectors: binary 0.589, binary*40 > f32 0.999
    assert by["binary"].recall[10] < 0.8  # sign bits alone lose neighbours
    assert by["binary*40 > f32"].recall[10] > by["binary"].recall[10]
    assert by["binary*40 > f32"].recall[10] >= 0.98
    for r in rows:
        assert 0 <= r.recall[1] <= 1 and 0 <= r.recall[100] <= 1
        assert r.qps > 0 and r.build_seconds > 0 and 0 < r.p50_ms <= r.p99_ms
        assert r.n_docs == 1500 and r.n_queries == len(dataset.query_ids) and r.dim == DIM
        assert r.engine == "slimvec"
    # RAM: 1 bit/dim < 1 byte/dim < 4 bytes/dim, plus the id and bookkeeping
    assert by["binary"].ram_bytes_per_vector < by["int8*4 > f32"].ram_bytes_per_vector
    assert by["int8*4 > f32"].ram_bytes_per_vector < exact.ram_bytes_per_vector
    assert 4 * DIM + 8 <= exact.ram_bytes_per_vector <= 4 * DIM + 16  # codes + id + flags
    # disk keeps the float32 originals for every spec, plus the codes
    assert all(r.disk_bytes_per_vector >= 4 * DIM for r in rows)
    assert by["int8*4 > f32"].disk_bytes_per_vector > exact.disk_bytes_per_vector


def test_qrels_metrics_agree_with_exact_search(rows, dataset):
    docs, queries = prepare_vectors(dataset)
    truth = exact_top(docs, queries, 10)
    judgements = Judgements.from_qrels(dataset.qrels, dataset.query_ids, dataset.doc_ids)
    exact = rows[0]
    assert exact.ndcg10 == pytest.approx(ndcg_at_k(truth, judgements, 10))
    assert 0 < exact.mrr10 <= exact.ndcg10 + 1e-9 <= 1 + 1e-9  # one relevant doc: MRR <= nDCG
    # the funnel keeps quality; sign bits alone lose some (measured: exact 0.904, binary*40 >
    # f32 0.904, binary 0.846)
    assert rows[2].ndcg10 >= exact.ndcg10 - 0.02
    assert rows[1].ndcg10 < rows[2].ndcg10


def test_files_round_trip_and_plot(rows, tmp_path):
    csv_path = write_csv(rows, tmp_path / "bench.csv")
    with open(csv_path) as fh:
        table = list(csv.DictReader(fh))
    assert [t["name"] for t in table] == SPECS
    assert float(table[0]["recall@10"]) == 1.0
    back = read_json(write_json(rows, tmp_path / "bench.json"))
    assert [b.to_dict() for b in back] == [r.to_dict() for r in rows]
    png = plot_frontiers(rows, tmp_path / "bench.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000
    with pytest.raises(InvalidInputError, match="ndcg@10"):
        plot_frontiers(
            [BenchRow("x", "slimvec", {10: 1.0}, None, None, 1, 1, 1, 1, 1, 1, 1, 1, 1)],
            tmp_path / "none.png",
            quality="ndcg@10",
        )


def test_faiss_baselines_in_the_same_run(dataset):
    pytest.importorskip("faiss")
    small = Dataset(
        "tiny",
        dataset.doc_ids[:800],
        dataset.query_ids[:40],
        qrels={},
        docs=dataset.docs[:800],
        queries=dataset.queries[:40],
    )
    rows = run_bench(
        small,
        ["binary*40 > f32"],
        k_values=(10,),
        baselines=True,
        progress=False,
        latency_queries=5,
        threads=1,
    )
    names = [r.name for r in rows]
    assert names[0] == "binary*40 > f32" and len(rows) == 5
    assert {r.engine for r in rows[1:]} == {"faiss"}
    flat = rows[1]
    assert flat.name.startswith("faiss Flat") and flat.recall[10] == 1.0
    assert flat.ram_bytes_per_vector >= 4 * DIM
    binary = next(r for r in rows if "Binary" in r.name)
    assert binary.ram_bytes_per_vector == DIM / 8 and binary.recall[10] > 0.9
    assert all(0 < r.recall[10] <= 1 and r.qps > 0 for r in rows)
    assert all(r.ndcg10 is None for r in rows)  # no qrels, no nDCG


def test_recall_at_100_uses_its_own_search(dataset, tmp_path):
    """A k=100 funnel keeps 10x more candidates than a k=10 one; each k is measured apart."""
    small = Dataset(
        "tiny",
        dataset.doc_ids[:600],
        dataset.query_ids[:20],
        docs=dataset.docs[:600],
        queries=dataset.queries[:20],
    )
    (row,) = run_bench(
        small,
        ["binary*2 > f32"],
        k_values=(10, 100),
        progress=False,
        latency_queries=2,
        workdir=tmp_path,
        threads=1,
    )
    assert row.recall[100] > row.recall[10]
    assert (tmp_path / "00-slimvec" / "collection" / "MANIFEST.json").exists()  # kept


def test_bad_input(dataset):
    no_vectors = Dataset("texts only", ["a"], ["q"], doc_texts=["x"], query_texts=["y"])
    with pytest.raises(InvalidInputError, match="no embeddings"):
        run_bench(no_vectors, ["f32"], progress=False)
    with pytest.raises(SpecError):
        run_bench(dataset, ["f32", "binary*40 > f99"], progress=False)
    with pytest.raises(SpecError, match="multiple of 8"):
        run_bench(dataset, ["binary@100*4 > f32"], progress=False)
    with pytest.raises(InvalidInputError, match="nothing to measure"):
        run_bench(dataset, [], progress=False)
    with pytest.raises(InvalidInputError, match="k_values"):
        run_bench(dataset, ["f32"], k_values=(0, 10), progress=False)
    with pytest.raises(InvalidInputError, match="threads"):
        run_bench(dataset, ["f32"], progress=False, threads=0)


def test_thread_limit_restores_settings():
    import numba

    before = numba.get_num_threads()
    with thread_limit(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before


def test_pareto_mask_by_hand():
    cost = [1, 2, 3, 3, 4]
    quality = [0.5, 0.9, 0.8, 0.95, 0.95]
    # (3, 0.8) is beaten by (2, 0.9); (4, 0.95) by (3, 0.95)
    assert pareto_mask(cost, quality).tolist() == [True, True, False, True, False]
    assert pareto_mask([1, 1], [0.5, 0.5]).tolist() == [True, True]  # ties dominate nothing
    assert np.all(pareto_mask([5], [0.1]))


# -- IVF: an nprobe sweep per spec, a curve in the plot ---------------------------------------
def _clustered(n: int, n_queries: int, dim: int = 32, seed: int = 0) -> Dataset:
    """Clustered vectors whose neighbours cross list boundaries (as in tests/test_ivf.py)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((40, dim))
    x = centers[rng.integers(0, 40, n + n_queries)] + rng.standard_normal((n + n_queries, dim))
    x = x.astype(np.float32)
    return Dataset(
        "clustered",
        [str(i) for i in range(n)],
        [str(i) for i in range(n_queries)],
        docs=x[:n],
        queries=x[n:],
    )


def test_default_grid_adds_ivf_specs_only_when_they_can_train(small_ivf):
    from slimvec.eval.bench import default_specs, ivf_specs

    assert small_ivf.suggested_nlist(3000) == 64 and small_ivf.suggested_nlist(1_000_000) == 1024
    assert small_ivf.suggested_nlist(2000) == 32  # 64 lists would need 2,496 training rows
    specs = default_specs(32, 3000)
    assert [s for s in specs if s.startswith("ivf:")] == [
        "ivf:64 | rabitq*40 > f32",
        "ivf:64 | rabitq:2*20 > f32",
    ]
    assert not [s for s in default_specs(32, 900) if s.startswith("ivf:")]
    assert not [s for s in default_specs(32) if s.startswith("ivf:")]
    none, why = ivf_specs(900)
    assert none == [] and "900 docs < 1,000" in why and "FLAT_ROWS" in why
    assert "64 lists" in ivf_specs(3000)[1] and "up to 32" in ivf_specs(3000)[1]
    assert small_ivf.nprobe_sweep(1024) == [4, 8, 16, 32, 64, 128, 256, 512]
    assert small_ivf.nprobe_sweep(64) == [1, 2, 4, 8, 16, 32]
    # lists of ~47 rows and a shortlist of 400: only nprobe 32 holds twice that on average
    assert small_ivf.nprobe_sweep(64, rows=3000, shortlist=400) == [32]
    assert small_ivf.nprobe_sweep(64, rows=3000, shortlist=40) == [2, 4, 8, 16, 32]


def test_ivf_spec_measured_over_an_nprobe_sweep(small_ivf, tmp_path):
    data = _clustered(4000, 100)
    spec = "ivf:16 | rabitq*10 > f32"  # 250 rows a list: one list holds a query's shortlist
    rows = run_bench(
        data, [spec, "rabitq*10 > f32"], k_values=(10,), progress=False, latency_queries=3,
        threads=1,
    )  # fmt: skip
    sweep = [r for r in rows if r.extra.get("spec") == spec]
    assert [r.extra["nprobe"] for r in sweep] == small_ivf.nprobe_sweep(16) == [1, 2, 4, 8]
    assert [r.name for r in sweep][:2] == [f"{spec} nprobe=1", f"{spec} nprobe=2"]
    assert len({r.build_seconds for r in sweep}) == 1  # built once
    recall = [r.recall[10] for r in sweep]
    assert recall[0] < 0.9 < recall[-1]  # the lists cut work; half of them find nearly all
    assert all(b >= a - 0.02 for a, b in pairwise(recall))
    flat = rows[-1]
    assert flat.name == "rabitq*10 > f32" and "nprobe" not in flat.extra
    assert abs(recall[-1] - flat.recall[10]) < 0.05
    back = read_json(write_json(rows, tmp_path / "bench.json"))
    assert [b.extra.get("nprobe") for b in back] == [r.extra.get("nprobe") for r in rows]
    png = plot_frontiers(back, tmp_path / "bench.png")
    assert png.stat().st_size > 20_000
    # a chosen sweep; values above nlist are dropped
    rows = run_bench(
        data, [spec], k_values=(10,), progress=False, latency_queries=1, nprobes=(3, 16, 100)
    )
    assert [r.extra["nprobe"] for r in rows] == [3, 16]


def test_ivf_spec_too_small_to_train_is_one_flat_row(small_ivf):
    rows = run_bench(
        _clustered(600, 20), ["ivf:64 | rabitq*10 > f32"], k_values=(10,), progress=False,
        latency_queries=1,
    )  # fmt: skip
    (row,) = rows
    assert row.name == "ivf:64 | rabitq*10 > f32" and row.extra["nprobe"] is None
