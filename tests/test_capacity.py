"""Free-embedding experiment, capacity fit and warning, and the LIMIT-style generator."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

import slimvec.capacity as capacity
import slimvec.capacity.free_embedding as fe
from slimvec.capacity import (
    CapacityFit,
    capacity_warning,
    critical_n,
    fit_capacity,
    limit_data,
    limit_dataset,
    limit_small,
    optimise,
    solvable,
)
from slimvec.capacity.limit_data import PACKAGED, word_source
from slimvec.errors import InvalidInputError

FAST = {"max_iters": 2000, "patience": 200}


def test_relevant_sets_are_all_combinations():
    for n, k in [(5, 2), (6, 3), (4, 1)]:
        assert fe.relevant_sets(n, k).tolist() == [list(c) for c in combinations(range(n), k)]


@pytest.mark.parametrize("loss", ["triples", "sum"])
def test_analytic_gradient_matches_finite_differences(loss):
    rng = np.random.default_rng(0)
    sets = fe.relevant_sets(5, 2)
    q = rng.standard_normal((len(sets), 3))
    x = rng.standard_normal((5, 3))
    _, _, grad_q, grad_x = fe.infonce(q, x, sets, 0.5, loss)
    eps = 1e-6
    for array, grad in ((q, grad_q), (x, grad_x)):
        for idx in [(0, 0), (3, 1), (4, 2)]:
            old = array[idx]
            array[idx] = old + eps
            up = fe.infonce(q, x, sets, 0.5, loss)[0]
            array[idx] = old - eps
            down = fe.infonce(q, x, sets, 0.5, loss)[0]
            array[idx] = old
            assert grad[idx] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9)


def test_loss_values_by_hand():
    # one query, relevant docs 0 and 1, one other doc; scores (1, 0, 0) / t with t = 1
    q = np.array([[1.0, 0.0]])
    x = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    sets = np.array([[0, 1]])
    e = np.exp([1.0, 0.0, 0.0])
    triples, acc, _, _ = fe.infonce(q, x, sets, 1.0, "triples")
    assert triples == pytest.approx(-0.5 * (np.log(e[0] / e.sum()) + np.log(e[1] / e.sum())))
    summed, _, _, _ = fe.infonce(q, x, sets, 1.0, "sum")
    assert summed == pytest.approx(-np.log((e[0] + e[1]) / e.sum()))
    assert acc == 0.0  # doc 1 ties doc 2: not strictly above every non-relevant score


def test_known_solvable_and_unsolvable_cases():
    run = optimise(4, 4, **FAST)
    assert run.solved and run.accuracy == 1.0
    assert solvable(7, 4, **FAST)
    # 30 documents on a circle: far too many pairs for 2 dimensions
    bad = optimise(30, 2, **FAST)
    assert not bad.solved and bad.accuracy < 0.5


def test_critical_n_brackets_the_boundary():
    tries: list[tuple[int, bool]] = []
    found = critical_n(4, on_try=lambda n, ok: tries.append((n, ok)), **FAST)
    assert found >= 5  # n <= d is solvable by construction; the optimiser does better
    assert (found, True) in tries or found == 4
    assert (found + 1, False) in tries  # the search stopped at a measured failure
    assert solvable(found, 4, **FAST) and not solvable(found + 1, 4, **FAST)  # deterministic


def test_sum_loss_stalls_on_a_trivial_case():
    # the footnote form is satisfied by one dominant relevant document (documented deviation)
    assert not optimise(4, 4, loss="sum", **FAST).solved


def test_fit_recovers_a_known_cubic(monkeypatch):
    truth = np.array([0.004, 0.05, 4.0, -10.0])
    rng = np.random.default_rng(1)

    def fake(d, k=2, **kwargs):
        return round(float(np.polyval(truth, d)) + rng.normal(0, 0.5))

    monkeypatch.setattr(fe, "critical_n", fake)
    fit = fit_capacity([4, 8, 12, 16, 20, 24, 28, 32], seeds=(0, 1), progress=False)
    assert fit.r2 > 0.999
    np.testing.assert_allclose(fit.predict(40), np.polyval(truth, 40), rtol=0.02)
    lo, hi = fit.interval(40)
    assert lo < fit.predict(40) < hi
    assert "extrapolated from d = 4..32" in fit.describe(384, n_docs=10)
    assert "within the measured range" in fit.describe(16)
    with pytest.raises(InvalidInputError, match="at least 4"):
        fit_capacity([4, 8, 12], progress=False)


def test_from_points_and_interval_floor():
    fit = CapacityFit.from_points([4, 6, 8, 10, 12, 14, 16], [7, 18, 29, 38, 51, 65, 79])
    assert fit.r2 > 0.99 and len(fit.boot_coefs) > 1000
    lo, hi = fit.interval(768)
    assert lo >= 79 and hi > fit.predict(768) * 0.5  # never below what was measured
    assert fit.interval(2) == pytest.approx(fit.interval(2))  # below the range: no floor
    with pytest.raises(InvalidInputError, match="at least 4"):
        CapacityFit.from_points([4, 6, 8], [7, 18, 29])
    # a cubic through a few noisy small-d points can bend down: floored and flagged
    down = CapacityFit.from_points([4, 5, 6, 7, 8], [7, 12, 18, 22, 26])
    assert down.bends_down and down.predict(384) == 26
    assert "bends down" in down.describe(384)
    assert not fit.bends_down and fit.predict(16) >= 79


def test_paper_fit_reproduces_published_extrapolations():
    paper = CapacityFit.paper()
    # Weller et al.: "500k (512), 1.7m (768), 4m (1024), 107m (3072), 250m (4096)"
    for d, n in [(512, 500e3), (768, 1.7e6), (1024, 4e6), (3072, 107e6), (4096, 250e6)]:
        assert paper.predict(d) == pytest.approx(n, rel=0.05)


def test_capacity_warning():
    assert capacity_warning(768, 100_000) is None
    text = capacity_warning(64, 100_000)
    assert text and "100,000" in text and "diagnostic" in text and "2601.20844" in text
    assert "k = 5" in capacity_warning(64, 100_000, k=5)
    with pytest.raises(InvalidInputError, match="dim"):
        capacity_warning(0, 10)
    with pytest.raises(InvalidInputError, match="n_docs"):
        capacity_warning(64, -1)


def test_input_errors():
    with pytest.raises(InvalidInputError, match="smaller than n"):
        optimise(3, 4, k=3)
    with pytest.raises(InvalidInputError, match="unknown loss"):
        optimise(5, 4, loss="margin")
    with pytest.raises(InvalidInputError, match="too many"):
        optimise(10_000, 4)


def test_capacity_command_prints_tables(monkeypatch, capsys):
    fake = CapacityFit(
        dims=np.array([4.0, 6, 8, 10]),
        critical=np.array([9.0, 18, 29, 38]),
        coefs=np.polyfit([4, 6, 8, 10], [9, 18, 29, 38], 3),
        r2=1.0,
    )
    monkeypatch.setattr(capacity, "fit_capacity", lambda *a, **kw: fake)
    capacity.capacity_command(384, quick=True, n_docs=10**9)
    out = capsys.readouterr().out
    assert "Extrapolation to d = 384" in out and "critical n" in out and "warning" in out


def test_capacity_command_never_says_below_then_warns_above(monkeypatch, capsys):
    """`capacity --dim 384 --docs 1000000` once said the corpus was below the estimate (this
    run's wide extrapolation) and then warned it was above it (the paper's fit). One verdict
    now names both estimates, and the warning follows the one it says it follows."""
    ours = CapacityFit.from_points([4, 6, 8, 10, 12], [9, 18, 29, 38, 52], n_boot=500)
    paper = CapacityFit.paper()
    lo, hi = ours.interval(384)
    assert lo < paper.predict(384) < 1_000_000 < hi  # the case of the report
    monkeypatch.setattr(capacity, "fit_capacity", lambda *a, **kw: ours)
    capacity.capacity_command(384, quick=True, n_docs=1_000_000)
    out = " ".join(capsys.readouterr().out.split())
    assert "below that estimate" not in out and "warning" in out
    assert "within this run's 90% interval" in out and "above the paper's (219k)" in out
    assert "the paper's fit, measured up to d = 45, is the firmer guide" in out

    verdict = capacity.corpus_verdict
    assert verdict(10**9, 384, ours, paper) == (
        f"Your 1,000,000,000 documents are above this run's estimate "
        f"({fe._fmt(ours.predict(384))}) and above the paper's (219k)."
    )
    narrow = CapacityFit(dims=ours.dims, critical=ours.critical, coefs=ours.coefs)  # no interval
    assert "below this run's estimate" in verdict(1_000_000, 384, narrow, paper)
    assert "above the paper's" in verdict(1_000_000, 384, narrow, paper)
    assert verdict(100, 384, narrow) == (
        f"Your 100 documents are below this run's estimate ({fe._fmt(narrow.predict(384))})."
    )
    # k = 3: no published fit; this run's fit decides, and the warning says so
    monkeypatch.setattr(capacity, "fit_capacity", lambda *a, **kw: narrow)
    capacity.capacity_command(384, k=3, quick=True, n_docs=10**9)
    out = " ".join(capsys.readouterr().out.split())
    assert "paper's (" not in out and "above this run's estimate" in out
    assert "warning" in out and "this run" in out.split("warning")[1]


def test_limit_small_structure_and_determinism():
    ds = limit_small(seed=3)
    assert len(ds.doc_texts) == 46 and len(ds.query_texts) == 1000
    assert ds == limit_small(seed=3)
    assert ds.doc_texts != limit_small(seed=4).doc_texts
    pairs = {tuple(sorted(rel)) for rel in ds.qrels.values()}
    assert len(pairs) == 1000 and all(len(p) == 2 for p in pairs)  # distinct pairs, k = 2
    attrs = {d: _attributes(t) for d, t in zip(ds.doc_ids, ds.doc_texts)}
    counts = {len(t.split(" likes ")[1].split(", ")) for t in ds.doc_texts}
    assert len(counts) == 1  # every document lists the same number of attributes (+1 for "and")
    for qid, qtext in zip(ds.query_ids, ds.query_texts):
        word = qtext.removeprefix("Who likes ").removesuffix("?")
        holders = {d for d, a in attrs.items() if word in a}
        assert holders == set(ds.qrels[qid])  # the attribute is in exactly its relevant docs


def test_limit_large_has_distractors_and_bm25_solves_small():
    from slimvec.sparse import BM25Index

    ds = limit_dataset(500, n_queries=100, seed=0)
    assert len(ds.doc_ids) == 500 and ds.name == "limit-500"
    relevant = {d for rel in ds.qrels.values() for d in rel}
    assert len(relevant) == 15  # C(15, 2) = 105 >= 100 queries: a 15-document core
    index = BM25Index()
    index.add(np.arange(500), ds.doc_texts)
    ids, _ = index.search(ds.query_texts, k=2)
    found = [{ds.doc_ids[i] for i in row} for row in ids]
    assert all(f == set(ds.qrels[q]) for f, q in zip(found, ds.query_ids))


def test_word_source_is_debians_list_when_installed_else_the_package(tmp_path, monkeypatch):
    debian_list = tmp_path / "american-english"
    monkeypatch.setattr(limit_data, "WORDLIST", debian_list)
    assert word_source() == PACKAGED  # no Debian list here
    assert word_source(PACKAGED) == PACKAGED
    debian_list.write_text("apple\n")
    assert word_source() == debian_list
    assert word_source(str(debian_list)) == debian_list
    assert word_source(PACKAGED) == PACKAGED  # asked for by name


def test_limit_from_the_packaged_words_and_from_a_word_file(tmp_path):
    from english_words import get_english_words_set

    web2 = get_english_words_set(["web2"])
    ds = limit_dataset(60, n_queries=100, seed=1, wordlist=PACKAGED)
    words = {w for t in ds.doc_texts for w in _attributes(t)}
    assert len(words) > 100 and words <= web2
    assert all(q.removeprefix("Who likes ").removesuffix("?") in web2 for q in ds.query_texts)
    assert {n for t in ds.doc_texts for n in t.split(" likes ")[0].split()} <= web2
    # the same words in a file (one per line, any order) give the same set
    listed = tmp_path / "words.txt"
    listed.write_text("\n".join(sorted(web2, reverse=True)))
    again = limit_dataset(60, n_queries=100, seed=1, wordlist=listed)
    assert again.doc_texts == ds.doc_texts and again.query_texts == ds.query_texts


def test_no_word_list_at_all_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(limit_data, "WORDLIST", tmp_path / "absent")
    monkeypatch.setattr(limit_data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"slimvec\[limit\].*wamerican"):
        limit_small()
    small = tmp_path / "few.txt"
    small.write_text("apple\nBerlin\n")
    with pytest.raises(InvalidInputError, match="too few usable words"):
        limit_small(wordlist=small)


def test_limit_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="wamerican"):
        limit_small(wordlist=tmp_path / "missing")
    with pytest.raises(InvalidInputError, match="core"):
        limit_dataset(10, n_queries=1000)
    with pytest.raises(InvalidInputError, match="relevant"):
        limit_dataset(46, n_queries=1000, n_core=20)


def _attributes(text: str) -> set[str]:
    listing = text.split(" likes ", 1)[1].rstrip(".")
    head, _, last = listing.rpartition(" and ")
    return set(head.split(", ")) | {last}
