"""Live recall (``slimvec.engine.quality``): sampled searches re-run exactly in the background,
the estimate and its interval, persistence across reopen, drift that really lowers recall, and
a target the engine holds by turning its knobs, with hysteresis; per-call parameters win."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

import slimvec
from slimvec.datasets import synthetic
from slimvec.engine import planner, quality, searcher
from slimvec.engine.quality import LADDER, MIN_SAMPLES, interval, recall_at_k
from slimvec.errors import InvalidInputError
from slimvec.index import sizing

DIM = 64
#: A cheap spec whose recall the drift below really lowers (RaBitQ with a short shortlist).
SPEC = "rabitq*4 > f32"


@pytest.fixture(autouse=True)
def _funnel():
    """Small collections would be answered exactly by the planner; measure the funnel."""
    with planner.funnel_only():
        yield


def _offline(col, q, k=10, **params) -> float:
    found = col.search(q, k, **params).ids
    truth = col.search(q, k, exact=True, filter=params.get("filter")).ids
    recalls, _ = recall_at_k(found, truth)
    return float(recalls.mean())


def _measured(col, q, k=10, batch=5, **params):
    """Search ``q`` in batches, each measured before the next runs (deterministic steps)."""
    for lo in range(0, len(q), batch):
        col.search(q[lo : lo + batch], k, **params)
        col.quality.flush()
    return col.info()["quality"]


@pytest.fixture
def low_rank():
    return synthetic.low_rank(4000, queries=200, dim=DIM, seed=1)


@pytest.fixture
def col(tmp_path, low_rank):
    c = slimvec.create(tmp_path / "c", DIM, spec=SPEC)
    c.add(low_rank.docs)
    c.quality.configure(rate=1.0, budget=None, seed=0)
    yield c
    c.close()


# -- the interval -----------------------------------------------------------------------------
def test_interval_covers_the_true_recall_and_narrows():
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(300):
        recalls = rng.binomial(10, 0.9, 100) / 10
        _, low, high = interval(recalls, np.full(100, 10))
        covered += low <= 0.9 <= high
    assert covered >= 0.9 * 300
    widths = [np.subtract(*interval(np.full(n, 0.8), np.full(n, 10))[2:0:-1]) for n in (20, 200)]
    assert widths[1] < widths[0]
    mean, low, high = interval(np.ones(50), np.full(50, 10))  # all perfect: still an interval
    assert mean == 1.0 and high == pytest.approx(1.0) and 0.99 < low < 1.0
    assert np.isnan(interval([], [])[0])


def test_recall_at_k_ignores_padding():
    found = np.array([[1, 2, 3], [4, -1, -1], [7, 8, 9]])
    truth = np.array([[3, 2, 5], [4, 6, -1], [-1, -1, -1]])
    recalls, trials = recall_at_k(found, truth)
    assert recalls.tolist() == pytest.approx([2 / 3, 1 / 2]) and trials.tolist() == [3, 2]


# -- sampling ---------------------------------------------------------------------------------
def test_every_sampled_query_is_measured_and_the_estimate_is_the_offline_recall(col, low_rank):
    q = low_rank.queries[:100]
    report = _measured(col, q)
    flat = report["plans"]["flat"]
    assert flat["samples"] == 100 and report["dropped"] == 0
    assert flat["estimate"] == pytest.approx(_offline(col, q), abs=1e-3)
    low, high = flat["interval"]
    assert low < flat["estimate"] < high
    assert report["target_recall"] is None and report["adjustments"] == []


def test_sampling_rate_and_budget(col, low_rank):
    col.quality.configure(rate=0.0)
    assert "flat" not in _measured(col, low_rank.queries[:50])["plans"]
    col.quality.configure(rate=0.5, seed=3)
    sampled = _measured(col, low_rank.queries)["plans"]["flat"]["samples"]
    assert 60 < sampled < 140
    col.quality.configure(rate=1.0, budget=1e-9)  # one sample spends the budget
    before = col.info()["quality"]["plans"]["flat"]["total_samples"]
    report = _measured(col, low_rank.queries[:50], batch=1)
    assert report["plans"]["flat"]["total_samples"] - before <= 1
    assert report["skipped_for_budget"] >= 49
    with pytest.raises(InvalidInputError):
        col.quality.configure(rate=2)


def test_exact_plans_are_not_sampled(col, low_rank):
    assert "flat" not in _measured(col, low_rank.queries[:20], exact=True)["plans"]


def test_a_sample_whose_commit_changed_is_dropped(col, low_rank, monkeypatch):
    monkeypatch.setattr(col.quality, "_start", lambda: None)  # hold the job in the queue
    col.search(low_rank.queries[:3], 10)
    col.add(low_rank.docs[:5])  # a new commit before the re-run
    monkeypatch.undo()
    col.quality._start()
    report = col.quality.flush().report(None)
    assert report["dropped"] == 1 and "flat" not in report["plans"]


def test_queued_samples_share_one_exact_rerun(col, low_rank, monkeypatch):
    q = low_rank.queries[:6]
    monkeypatch.setattr(col.quality, "_start", lambda: None)  # queue them all first
    for one in q:
        col.search(one[None], 10)
    monkeypatch.undo()
    calls, real = [], col.search_rows
    monkeypatch.setattr(col, "search_rows", lambda *a: calls.append(len(a[0])) or real(*a))
    col.quality._start()
    report = col.quality.flush().report(None)
    assert calls == [6] and report["plans"]["flat"]["samples"] == 6
    assert report["plans"]["flat"]["estimate"] == pytest.approx(_offline(col, q), abs=1e-3)


def test_filtered_searches_are_their_own_kind(tmp_path, low_rank, monkeypatch):
    monkeypatch.setattr(searcher, "EXACT_FILTER_ROWS", 100)  # the masked funnel, as at scale
    c = slimvec.create(tmp_path / "f", DIM, spec=SPEC)
    c.add(low_rank.docs, metadata=[{"g": i % 2} for i in range(len(low_rank.docs))])
    c.quality.configure(rate=1.0, budget=None)
    q = low_rank.queries[:60]
    report = _measured(c, q, filter={"g": 1})
    assert set(report["plans"]) == {"filtered"}
    assert report["plans"]["filtered"]["estimate"] == pytest.approx(
        _offline(c, q, filter={"g": 1}), abs=1e-3
    )
    c.close()


# -- persistence ------------------------------------------------------------------------------
def test_the_estimate_and_setting_survive_reopen_and_writes(col, low_rank, tmp_path):
    col.set_target_recall(0.99)
    _measured(col, low_rank.queries[:80])
    before = col.info()["quality"]
    col.add(low_rank.docs[:100])  # the writer's sweep keeps QUALITY.json
    col.flush()
    col.close()
    assert (tmp_path / "c" / quality.QUALITY_FILE).is_file()
    again = slimvec.open(tmp_path / "c")
    after = again.info()["quality"]
    assert after["target_recall"] == 0.99
    assert after["plans"]["flat"]["samples"] == before["plans"]["flat"]["samples"]
    assert after["plans"]["flat"]["setting"] == before["plans"]["flat"]["setting"]
    assert after["adjustments"] == before["adjustments"]
    again.close()


def test_a_damaged_quality_file_starts_afresh(col, low_rank, tmp_path, caplog):
    _measured(col, low_rank.queries[:20])
    col.close()
    (tmp_path / "c" / quality.QUALITY_FILE).write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="slimvec.engine.quality"):
        again = slimvec.open(tmp_path / "c")
    assert again.info()["quality"]["plans"] == {} and "unreadable" in caplog.text
    assert len(again.search(low_rank.queries[:2], 5).ids) == 2
    again.close()


# -- drift, and a target held -----------------------------------------------------------------
def test_isotropic_rows_after_low_rank_lower_the_estimate_and_the_target_restores_it(
    col, low_rank, caplog
):
    old = _measured(col, low_rank.queries[:100])["plans"]["flat"]["estimate"]
    iso = synthetic.isotropic(1500, queries=400, dim=DIM, seed=2)
    col.add(iso.docs)  # 27 % new rows unlike the fitted ones; traffic moves to them
    col.quality.configure(window=100)
    new = _measured(col, iso.queries[:100])["plans"]["flat"]["estimate"]
    assert new < old - 0.15
    assert new == pytest.approx(_offline(col, iso.queries[:100]), abs=0.05)
    with caplog.at_level(logging.WARNING, logger="slimvec.engine.quality"):
        col.set_target_recall(0.9)
        _measured(col, iso.queries[:300], batch=2)
    report = col.info()["quality"]
    assert "below the target" in caplog.text
    assert report["adjustments"] and all(a["plan"] == "flat" for a in report["adjustments"])
    assert report["plans"]["flat"]["setting"]["step"] > 0
    assert _offline(col, iso.queries[300:]) >= 0.9  # held-out queries, at the new setting


@pytest.fixture
def small_ivf(monkeypatch):
    monkeypatch.setattr(sizing, "FLAT_ROWS", 700)


def test_ivf_drift_is_fixed_by_nprobe(tmp_path, small_ivf):
    pytest.importorskip("faiss")
    dim, rng = 32, np.random.default_rng(1)
    centers = np.random.default_rng(0).standard_normal((60, dim))
    x = (centers[rng.integers(0, 60, 6000)] + 0.6 * rng.standard_normal((6000, dim))).astype(
        np.float32
    )
    c = slimvec.create(tmp_path / "ivf", dim, spec="ivf:64 | rabitq:2*10 > f32")
    c.add(x)
    c.quality.configure(rate=1.0, budget=None, window=100)
    q_old = (centers[rng.integers(0, 60, 60)] + 0.6 * rng.standard_normal((60, dim))).astype(
        np.float32
    )
    assert _measured(c, q_old)["plans"]["ivf"]["estimate"] > 0.97
    c.add(rng.standard_normal((2500, dim)).astype(np.float32))  # not clustered like the lists
    q_new = rng.standard_normal((400, dim)).astype(np.float32)
    assert _measured(c, q_new[:100])["plans"]["ivf"]["estimate"] < 0.9
    c.set_target_recall(0.95)
    _measured(c, q_new[100:350], batch=2)
    report = c.info()["quality"]
    setting = report["plans"]["ivf"]["setting"]
    assert setting["step"] > 0 and not setting["exact"]
    assert _offline(c, q_new[350:]) >= 0.93  # 50 held-out queries
    explain = c.search(q_new[:1], 10).explain
    assert explain["tuning"]["scale"] == setting["scale"]
    c.close()


def test_per_call_parameters_win_over_the_target(tmp_path, small_ivf):
    pytest.importorskip("faiss")
    x = np.random.default_rng(0).standard_normal((3000, 32)).astype(np.float32)
    c = slimvec.create(tmp_path / "p", 32, spec="ivf:32 | rabitq:2*10 > f32")
    c.add(x)
    c.set_target_recall(0.99)
    c.quality._kinds["ivf"].step = 4  # as if the target had climbed
    q = x[:5] + 0.1
    tuned = c.search(q, 10)
    assert tuned.explain["tuning"] == {"scale": LADDER[4].scale, "exact": False}
    given = c.search(q, 10, nprobe=2)
    assert "tuning" not in given.explain
    c.set_target_recall(None)
    plain = c.search(q, 10, nprobe=2)
    assert np.array_equal(given.ids, plain.ids)
    c.set_target_recall(0.99)
    assert c.search(q, 10, exact=True).explain["why"] == "exact=True"
    with pytest.raises(InvalidInputError):
        c.set_target_recall(1.5)
    c.close()


def test_hysteresis_no_oscillation_at_the_boundary(col):
    extra = {"target_recall": 0.95}
    monitor = col.quality
    bad, good = np.full(MIN_SAMPLES, 0.9), np.full(MIN_SAMPLES, 0.97)
    trials = np.full(MIN_SAMPLES, 10)
    monitor.record("flat", 0, bad, trials, extra=extra)
    assert monitor._kinds["flat"].step == 1  # the mean fell below the target: one step up
    for _ in range(20):  # at step 1 recall is fine, the step below still is not
        monitor.record("flat", 1, good, trials, (bad, trials), extra=extra)
    assert monitor._kinds["flat"].step == 1 and len(monitor.adjustments) == 1
    # the step below near the target (mean 0.955): its lower bound stays under it, no move
    near = np.where(np.arange(MIN_SAMPLES) % 10 < 5, 1.0, 0.9)
    for _ in range(20):
        monitor.record("flat", 1, good, trials, (near, trials), extra=extra)
    assert monitor._kinds["flat"].step == 1 and len(monitor.adjustments) == 1
    for _ in range(4):  # the cheaper step clearly holds it now: one step down, and it stays
        monitor.record("flat", 1, good, trials, (np.ones(MIN_SAMPLES), trials), extra=extra)
    for _ in range(20):
        monitor.record("flat", 0, np.full(MIN_SAMPLES, 0.96), trials, extra=extra)
    assert monitor._kinds["flat"].step == 0 and len(monitor.adjustments) == 2
    moves = [(a["from"]["step"], a["to"]["step"]) for a in monitor.adjustments]
    assert moves == [(0, 1), (1, 0)]


def test_quality_file_is_json_with_every_kind(col, low_rank, tmp_path):
    _measured(col, low_rank.queries[:30])
    body = json.loads((tmp_path / "c" / quality.QUALITY_FILE).read_text())
    assert body["format"] == "slimvec-quality" and len(body["kinds"]["flat"]["window"]) == 30


# -- where people look: the CLI, /metrics, a remote collection's info ---------------------------
def test_cli_table_json_and_plot(col, low_rank, tmp_path):
    from typer.testing import CliRunner

    from slimvec.cli import app

    col.set_target_recall(0.99)
    _measured(col, low_rank.queries[:60])
    col.close()
    runner = CliRunner()
    shown = runner.invoke(app, ["quality", str(tmp_path / "c"), "--plot", str(tmp_path / "r.png")])
    assert shown.exit_code == 0, shown.output
    assert (
        "flat" in shown.output and "target: 0.99" in shown.output and "step 0 -> 1" in shown.output
    )
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    as_json = runner.invoke(app, ["quality", str(tmp_path / "c"), "--json"])
    assert json.loads(as_json.output)["plans"]["flat"]["total_samples"] == 60


def test_cli_sets_and_clears_the_target(col, low_rank, tmp_path):
    from typer.testing import CliRunner

    from slimvec.cli import app

    _measured(col, low_rank.queries[:20])
    col.close()
    runner = CliRunner()
    path = str(tmp_path / "c")
    shown = runner.invoke(app, ["quality", path, "--target", "0.95"])
    assert shown.exit_code == 0 and "target: 0.95" in shown.output, shown.output
    assert slimvec.open(path).live_recall()["target_recall"] == 0.95
    for bad, said in (("1.5", "got 1.5"), ("x", "got 'x'"), ("nan", "got nan")):
        refused = runner.invoke(app, ["quality", path, "--target", bad])
        assert refused.exit_code == 2 and said in refused.output, refused.output
    cleared = runner.invoke(app, ["quality", path, "--target", "none", "--json"])
    assert json.loads(cleared.output)["target_recall"] is None
    assert "--target" in runner.invoke(app, ["quality", "--help"]).output


def test_metrics_and_a_remote_collection_show_the_estimate(low_rank, tmp_path):
    import httpx

    from serving import thread_server
    from slimvec.server.app import create_app

    root = tmp_path / "root"
    c = slimvec.create(root / "docs", DIM, spec=SPEC, target_recall=0.9)
    c.add(low_rank.docs)
    c.quality.configure(rate=1.0, budget=None)
    _measured(c, low_rank.queries[:20])
    c.close()
    with thread_server(create_app(root)) as url:
        metrics = httpx.get(url + "/metrics").text
        assert 'slimvec_recall_estimate{collection="docs",plan="flat"}' in metrics
        assert 'slimvec_recall_samples{collection="docs",plan="flat"} 20.0' in metrics
        assert 'slimvec_recall_target{collection="docs"} 0.9' in metrics
        remote = slimvec.connect(url).open("docs")
        assert remote.info()["quality"]["plans"]["flat"]["samples"] == 20


def test_shards_reports_combine_weighted_by_samples():
    def shard(estimate, low, high, samples):
        plan = {"estimate": estimate, "interval": [low, high], "samples": samples}
        plan.update(total_samples=samples, below_target=estimate < 0.9, last_change=None)
        return {"target_recall": 0.9, "plans": {"flat": plan}, "adjustments": []}

    both = quality.combine([shard(1.0, 0.98, 1.0, 300), shard(0.8, 0.7, 0.88, 100), None])
    flat = both["plans"]["flat"]
    assert flat["estimate"] == pytest.approx(0.95) and flat["samples"] == 400
    assert flat["interval"] == pytest.approx([0.91, 0.97]) and flat["below_target"]
    assert both["target_recall"] == 0.9 and both["shards"] == 2
