"""Live recall benchmark (issue 30): is the estimate right, what does measuring cost, does a
target hold through drift.

    .venv/bin/python benchmarks/recall_monitor.py [--part estimate|overhead|drift|all]
        [--n 200000] [--queries 2000] [--drift-n 100000] [--out results/recall_monitor.json]

1. **estimate**: each collection answers every query (one query per call) while sampling ~200
   of them (rate 200 / queries, no budget); the estimate and its 95 % interval after those
   samples are compared with the true recall@10 of *all* the queries (their results against
   exact search, offline). Synthetic low-rank vectors (``--n``, latent 48, 384-d: flat default
   spec, a cheap flat spec, ``ivf:512``) and the real debian-gemma set (3,000 EmbeddingGemma
   vectors; the planner would answer such a small set exactly, so the funnel is forced, and
   ``ivf:32`` trains at this size because ``FLAT_ROWS`` is lowered).
2. **overhead**: QPS of single-query searches with sampling off and at the default 1 % (with
   the default 2 % budget), interleaved rounds in one process, medians compared. Each round
   ends with ``flush()`` inside its time, so a sampled round pays for every exact re-run it
   queued (none spills into the next round).
3. **drift**: ``target_recall=0.95`` on a collection of ``--drift-n`` low-rank vectors; then
   30 % more rows, isotropic (unlike anything the codes were fitted on), and half the traffic
   goes to them. After the adjustment window, the recall of 1,000 held-out queries at the
   setting the engine chose, and its QPS, against every fixed setting of the ladder measured
   on the same final data (the cheapest one meeting 0.95 is the bar). Sampling here is 5 %
   so that the window passes in a few thousand queries (at 1 % it takes 5x as many).

Threads: 2 (numba, BLAS). Timings start only once the 1-minute load is below ``--quiet`` (1.5);
the load at their start and end is printed. Speed figures are comparable only within one run.
"""

from __future__ import annotations

import os

THREADS = 2
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, str(THREADS))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import slimvec  # noqa: E402
from funnel import load  # noqa: E402
from slimvec.datasets.synthetic import isotropic, low_rank  # noqa: E402
from slimvec.engine import planner  # noqa: E402
from slimvec.engine.quality import LADDER, recall_at_k  # noqa: E402
from slimvec.index import ivf, sizing  # noqa: E402

K = 10
DEFAULT = slimvec.DEFAULT_SPEC
CHEAP = "rabitq*4 > f32"
DRIFT_SPEC = "rabitq:2*10 > f32"
console = Console(width=150)


def wait_quiet(limit: float) -> float:
    """Sleep until the 1-minute load is below ``limit``; returns it (speed figures only then)."""
    while os.getloadavg()[0] >= limit:
        console.print(f"  load {os.getloadavg()[0]:.2f} >= {limit}: waiting")
        time.sleep(30)
    return round(os.getloadavg()[0], 2)


def build(path: Path, spec: str, docs: np.ndarray, **options) -> slimvec.Collection:
    col = slimvec.create(path, docs.shape[1], spec=spec, **options)
    for lo in range(0, len(docs), 50_000):
        col.add(docs[lo : lo + 50_000])
    return col


def searched(col, queries: np.ndarray) -> tuple[np.ndarray, float]:
    """Ids of one search per query, and the seconds they took."""
    out = np.empty((len(queries), K), np.int64)
    start = time.perf_counter()
    for i, q in enumerate(queries):
        out[i] = col.search(q[None], K).ids[0]
    return out, time.perf_counter() - start


def true_recall(col, queries: np.ndarray, found: np.ndarray) -> float:
    truth = np.concatenate(
        [
            col.search(queries[lo : lo + 200], K, exact=True).ids
            for lo in range(0, len(queries), 200)
        ]
    )
    return float(recall_at_k(found, truth)[0].mean())


# -- 1. the estimate against the truth --------------------------------------------------------
def estimate_part(args, root: Path) -> list[dict]:
    synthetic = low_rank(args.n, queries=args.queries, latent=48, seed=1)
    gemma = load("gemma", 3000, 500)
    configs = [
        (synthetic, DEFAULT, False), (synthetic, CHEAP, False),
        (synthetic, "ivf:512 | rabitq:2*20 > f32", False),
        (gemma, DEFAULT, True), (gemma, CHEAP, True), (gemma, "ivf:32 | rabitq:2*10 > f32", True),
    ]  # fmt: skip
    rows = []
    for i, (ds, spec, small) in enumerate(configs):
        with contextlib.ExitStack() as stack:
            if small:  # 3,000 rows: force the funnel, and let ivf:32 train
                stack.enter_context(planner.funnel_only())
                sizing.FLAT_ROWS, saved = 1000, sizing.FLAT_ROWS
                stack.callback(setattr, ivf, "FLAT_ROWS", saved)
            col = build(root / f"estimate-{i}", spec, ds.docs)
            col.quality.configure(rate=min(1.0, 200 / len(ds.queries)), budget=None, seed=0)
            found, _ = searched(col, ds.queries)
            report = col.quality.flush().report(None)
            kind, plan = next(iter(report["plans"].items()))
            truth = true_recall(col, ds.queries, found)
            col.close()
        low, high = plan["interval"]
        rows.append({
            "data": f"{ds.name} {len(ds.docs):,}", "spec": spec, "plan": kind,
            "samples": plan["samples"], "queries": len(ds.queries),
            "estimate": plan["estimate"], "low": low, "high": high, "true": round(truth, 4),
            "error": round(plan["estimate"] - truth, 4), "covered": low <= truth <= high,
        })  # fmt: skip
        console.print(rows[-1])
    return rows


# -- 2. overhead ------------------------------------------------------------------------------
def overhead_part(args, root: Path) -> list[dict]:
    ds = low_rank(args.n, queries=args.queries, latent=48, seed=2)
    rows = []
    for i, spec in enumerate((DEFAULT, "ivf:512 | rabitq:2*20 > f32")):
        col = build(root / f"overhead-{i}", spec, ds.docs)
        searched(col, ds.queries[:200])  # warm up (numba, page cache)
        start_load = wait_quiet(args.quiet)
        qps = {0.0: [], 0.01: []}
        for _ in range(args.rounds):
            for rate in (0.0, 0.01):
                col.quality.configure(rate=rate)
                start = time.perf_counter()
                searched(col, ds.queries)
                col.quality.flush()  # the round pays for every re-run it caused
                qps[rate].append(len(ds.queries) / (time.perf_counter() - start))
        report = col.quality.flush().report(None)
        off, on = float(np.median(qps[0.0])), float(np.median(qps[0.01]))
        rows.append({
            "data": f"{ds.name} {len(ds.docs):,}", "spec": spec, "rounds": args.rounds,
            "qps_off": round(off, 1), "qps_1pct": round(on, 1),
            "overhead_pct": round(100 * (1 - on / off), 2),
            "measuring_share": report["measuring_share"],
            "samples": sum(p["total_samples"] for p in report["plans"].values()),
            "load": f"{start_load} -> {os.getloadavg()[0]:.2f}",
        })  # fmt: skip
        console.print(rows[-1])
        col.close()
    return rows


# -- 3. drift, with a target --------------------------------------------------------------------
def drift_part(args, root: Path) -> dict:
    n, extra = args.drift_n, int(0.3 * args.drift_n)
    old = low_rank(n, queries=4000, latent=48, seed=3)
    new = isotropic(extra, queries=4000, dim=old.docs.shape[1], seed=4)
    col = build(root / "drift", DRIFT_SPEC, old.docs, target_recall=0.95)
    col.quality.configure(rate=0.05, budget=None, seed=0)
    searched(col, old.queries[:2000])
    col.quality.flush()
    settled = col.info()["quality"]["plans"]["flat"]
    col.add(new.docs)
    mix = np.concatenate([old.queries[2000:], new.queries])
    mix = mix[np.random.default_rng(0).permutation(len(mix))]
    live, held = mix[:-1000], mix[-1000:]
    unadjusted = None
    for lo in range(0, len(live), 500):  # the adjustment window, in steps of 500 queries
        found, _ = searched(col, live[lo : lo + 500])
        if unadjusted is None:  # the first 500 after the drift ran at the old setting
            unadjusted = true_recall(col, live[lo : lo + 500], found)
        col.quality.flush()
    report = col.info()["quality"]
    chosen = report["plans"]["flat"]["setting"]["step"]
    col.quality.configure(rate=0.0)
    start_load = wait_quiet(args.quiet)
    found, seconds = searched(col, held)
    result = {
        "data": f"{old.name} {n:,} + isotropic {extra:,}", "spec": DRIFT_SPEC,
        "before_drift_estimate": settled["estimate"], "step_before": settled["setting"]["step"],
        "after_drift_unadjusted_true": round(unadjusted, 4),
        "chosen_step": chosen, "chosen_scale": LADDER[chosen].scale,
        "chosen_exact": LADDER[chosen].exact,
        "held_out_true": round(true_recall(col, held, found), 4),
        "held_out_qps": round(len(held) / seconds, 1),
        "adjustments": [(a["from"]["step"], a["to"]["step"]) for a in report["adjustments"]],
        "fixed": [],
    }  # fmt: skip
    monitor_kind = col.quality._kinds["flat"]  # to run each fixed setting of the ladder
    for step in range(len(LADDER)):
        monitor_kind.step = step
        found, seconds = searched(col, held)
        recall = true_recall(col, held, found)
        result["fixed"].append({"step": step, "scale": LADDER[step].scale,
                                "exact": LADDER[step].exact, "true": round(recall, 4),
                                "qps": round(len(held) / seconds, 1)})  # fmt: skip
        console.print(result["fixed"][-1])
        if recall >= 0.99:
            break
    meeting = [f for f in result["fixed"] if f["true"] >= 0.95]
    result["cheapest_fixed_meeting"] = meeting[0] if meeting else None
    monitor_kind.step = chosen
    result["load"] = f"{start_load} -> {os.getloadavg()[0]:.2f}"
    if args.plot:
        from slimvec.eval.plots import plot_recall

        plot_recall(col.quality.history(), report, args.plot)
    col.close()
    console.print(result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("estimate", "overhead", "drift", "all"), default="all")
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--drift-n", type=int, default=100_000)
    parser.add_argument("--quiet", type=float, default=1.5, help="timings wait for this load")
    parser.add_argument("--plot", type=Path, default=None, help="drift: recall over time PNG")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out: dict = {"load_1min": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="quality_bench_") as tmp:
        root = Path(tmp)
        if args.part in ("estimate", "all"):
            out["estimate"] = estimate_part(args, root)
        if args.part in ("overhead", "all"):
            out["overhead"] = overhead_part(args, root)
        if args.part in ("drift", "all"):
            out["drift"] = drift_part(args, root)
    out["load_1min_end"] = os.getloadavg()[0]
    for name, rows in out.items():
        if isinstance(rows, list) and rows:
            table = Table(title=name, title_justify="left")
            for column in rows[0]:
                table.add_column(column)
            for row in rows:
                table.add_row(*(str(v) for v in row.values()))
            console.print(table)
    if args.out:
        args.out.write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
