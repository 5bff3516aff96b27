"""Live recall: a collection measures the recall of its own searches and can hold a target.

**Measuring.** Every handle has a :class:`Monitor`. It samples a fraction of the queries its
searches answer (``rate``, default 1 %), and never spends more than ``budget`` (default 2 %) of
the search time it has seen on measuring. A worker thread re-runs each sampled query exactly
(float32 originals, with its filter) through the collection's public path, so the re-run pins
a view of its own; the sample counts only if the search and the re-run saw the same commit
(``Collection.version``), otherwise it is dropped. A query's recall@k is the share of the exact
top-k the search returned. Samples are kept per plan kind (``"flat"``, ``"ivf"``,
``"filtered"``; a text search's dense side counts as the plan it ran) in a rolling window of
``window`` samples; the estimate is their mean with a 95 % interval (:func:`interval`).
Searches that ran an exact plan (small collections, few matching rows) are not sampled: their
recall is 1 by construction.

**Holding a target** (``target_recall`` in the manifest, set by ``create(...,
target_recall=)`` or ``set_target_recall``). Each plan kind sits on a step of :data:`LADDER`:
a factor on the lists an ``ivf:N`` search probes or, flat, on every shortlist, and as the last
step the exact plan. A kind climbs one step when the mean recall of ``MIN_SAMPLES`` samples at
its step is below the target, and steps down only when the step below, run in the background
on the same sampled queries, has the *lower bound* of its interval at or above the target over
a block of ``2 * MIN_SAMPLES`` new samples (each block judged once): the gap between the two
rules is the hysteresis. Every move is
recorded. A call that gives ``exact`` or ``nprobe`` itself runs as given.

**Persisting.** ``QUALITY.json`` in the collection directory, replaced atomically every
``PERSIST_EVERY`` samples, at each adjustment and on close. It is telemetry, not data: the
manifest does not name it, so saving it commits nothing (a commit would change every handle's
view and version); several processes measuring one collection each write it, the last one
wins. The target itself is a setting and is committed in the manifest.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import queue
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from slimvec.engine import searcher
from slimvec.engine.arguments import SearchParams, Tuning
from slimvec.errors import InvalidInputError
from slimvec.search.result import SearchResult
from slimvec.store.files import atomic_write_text

log = logging.getLogger(__name__)

QUALITY_FILE = "QUALITY.json"
DEFAULT_RATE = 0.01
DEFAULT_BUDGET = 0.02
#: Samples per plan kind the estimate is taken over (the rolling window).
WINDOW = 500
#: Samples at a step before the tuner may climb from it (twice that to step down to it).
MIN_SAMPLES = 30
#: Samples per step the tuner keeps.
STEP_WINDOW = 100
PERSIST_EVERY = 50
#: A point of the recall-over-time history every this many samples (the last HISTORY kept).
HISTORY_EVERY = 10
HISTORY = 1000
ADJUSTMENTS = 100
#: Most queued sampled searches the worker takes at once (merged into one exact re-run).
BATCH = 64
#: The worker thread exits after this long without work (a later sample starts it again).
IDLE_SECONDS = 5.0
Z = 1.96  # 95 %
#: The settings a target climbs through, cheapest first.
LADDER: tuple[Tuning, ...] = (
    *(Tuning(scale) for scale in (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)),
    Tuning(exact=True),
)
KINDS = ("flat", "ivf", "filtered")
#: ``Monitor.configure``'s "leave as it is" (its ``budget`` may be None: no limit).
UNCHANGED: Any = object()


def interval(recalls: Any, trials: Any) -> tuple[float, float, float]:
    """(mean, low, high) of per-query recalls, ``trials`` = each query's k.

    Wilson's score interval for ``n_eff`` trials: per-query recalls are shares of k, not coin
    flips, so ``n_eff`` is the count whose binomial variance p(1-p)/n_eff equals the observed
    variance of the mean, bounded by the queries (each one counting once) and by their k's
    (every result a coin flip of its own). All-perfect samples then still get an interval.
    """
    r = np.asarray(recalls, np.float64)
    n = len(r)
    if n == 0:
        return math.nan, 0.0, 1.0
    p = float(r.mean())
    var = float(r.var(ddof=1)) / n if n > 1 else 0.0
    cap = float(np.sum(trials))
    n_eff = min(cap, max(n, p * (1 - p) / var)) if var > 0 else cap
    z2 = Z * Z
    centre = (p + z2 / (2 * n_eff)) / (1 + z2 / n_eff)
    half = Z * math.sqrt(p * (1 - p) / n_eff + z2 / (4 * n_eff * n_eff)) / (1 + z2 / n_eff)
    return p, max(0.0, centre - half), min(1.0, centre + half)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per query: (share of the exact top-k ids in ``found``, how many exact ids there were);
    queries with no exact result are left out (both arrays skip them)."""
    recalls, trials = [], []
    for got, want in zip(found, truth):
        want = want[want != -1]
        if len(want):
            recalls.append(len(np.intersect1d(got[got != -1], want)) / len(want))
            trials.append(len(want))
    return np.asarray(recalls), np.asarray(trials)


def kind_of(view: Any, params: SearchParams) -> str:
    """The plan kind a search will run (what its samples and setting are kept under)."""
    if params.filter is not None:
        return "filtered"
    return "ivf" if view.ivf is not None and view.ivf.trained else "flat"


def check_target(target: Any) -> float | None:
    if target is None:
        return None
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target <= 1:
        raise InvalidInputError(f"target_recall must be a number in (0, 1] or None, got {target!r}")
    return float(target)


def set_target(col: Any, target: Any) -> None:
    """Commit ``target`` (None: only measure) as the collection's ``target_recall``."""
    target = check_target(target)
    with col.transaction() as m:
        if m.extra.get("target_recall") == target:
            return
        if target is None:
            m.extra.pop("target_recall", None)
        else:
            m.extra["target_recall"] = target
        m.commit(col.path)


@dataclass
class _Job:
    q: np.ndarray
    found: np.ndarray
    k: int
    filter: Any
    version: tuple[int, int]
    kind: str
    step: int  # on the ladder; -1: the call set its own exact/nprobe


def _batches(jobs: list[_Job]) -> list[_Job]:
    """Queued jobs that can share one exact re-run (same k, filter, commit and step) merged:
    exact search of many queries costs little more than of one (it reads every row once)."""
    groups: dict[tuple, list[_Job]] = {}
    for job in jobs:
        key = (job.k, repr(job.filter), job.version, job.kind, job.step)
        groups.setdefault(key, []).append(job)
    return [
        replace(
            group[0],
            q=np.concatenate([j.q for j in group]),
            found=np.concatenate([j.found for j in group]),
        )
        for group in groups.values()
    ]


class _Kind:
    """One plan kind's samples, its step on the ladder, and its history."""

    def __init__(self, window: int):
        self.window: deque[tuple[float, float, int]] = deque(maxlen=window)  # time, recall, k
        self.step = 0
        self.steps: dict[int, deque[tuple[float, int]]] = {}
        self.history: deque[list[float]] = deque(maxlen=HISTORY)
        self.total = 0
        self.last_change: float | None = None
        self.below = False  # the last estimate was below the target (warned once)
        self.fresh = 0  # samples of the step below not yet judged (descent looks at each once)

    def at(self, step: int) -> deque[tuple[float, int]]:
        return self.steps.setdefault(step, deque(maxlen=STEP_WINDOW))

    def estimate(self) -> tuple[float, float, float]:
        return interval([r for _, r, _ in self.window], [k for _, _, k in self.window])

    def describe(self, target: float | None) -> dict[str, Any]:
        mean, low, high = self.estimate()
        here = self.at(self.step)
        at_mean, at_low, at_high = interval([r for r, _ in here], [k for _, k in here])
        return {
            "estimate": None if math.isnan(mean) else round(mean, 4),
            "interval": [round(low, 4), round(high, 4)],
            "samples": len(self.window),
            "window": self.window.maxlen,
            "total_samples": self.total,
            "updated": self.window[-1][0] if self.window else None,
            "last_change": self.last_change,
            "below_target": bool(target is not None and len(self.window) and mean < target),
            "setting": setting(self.step) if target is not None else setting(0),
            "at_setting": {
                "estimate": None if math.isnan(at_mean) else round(at_mean, 4),
                "interval": [round(at_low, 4), round(at_high, 4)],
                "samples": len(here),
            },
        }

    def state(self) -> dict[str, Any]:
        return {
            "window": [list(s) for s in self.window],
            "step": self.step,
            "steps": {str(s): [list(v) for v in d] for s, d in self.steps.items() if d},
            "history": list(self.history),
            "total": self.total,
            "last_change": self.last_change,
        }

    def load(self, state: dict[str, Any]) -> None:
        self.window.extend((float(t), float(r), int(k)) for t, r, k in state["window"])
        self.step = min(max(int(state["step"]), 0), len(LADDER) - 1)
        for s, values in state["steps"].items():
            self.at(int(s)).extend((float(r), int(k)) for r, k in values)
        self.history.extend([float(v) for v in point] for point in state["history"])
        self.total = int(state["total"])
        self.last_change = state["last_change"]


def setting(step: int) -> dict[str, Any]:
    """A ladder step as ``info()`` shows it."""
    tuning = LADDER[step]
    return {"step": step, "scale": tuning.scale, "exact": tuning.exact}


class Monitor:
    """The live recall of one collection handle (see the module docstring)."""

    def __init__(self, col: Any):
        self._col = weakref.ref(col)
        self.path = col.path / QUALITY_FILE
        self.rate, self.budget, self.window = DEFAULT_RATE, DEFAULT_BUDGET, WINDOW
        self._rng = np.random.default_rng()
        self._lock = threading.Lock()
        self._kinds = {kind: _Kind(WINDOW) for kind in KINDS}
        self.adjustments: deque[dict[str, Any]] = deque(maxlen=ADJUSTMENTS)
        self.search_seconds = self.measure_seconds = 0.0
        self.dropped = self.skipped = 0
        self._unsaved = 0
        self._queue: queue.Queue[_Job] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._forced = threading.local()  # the worker's step-below runs
        self._load()
        weakref.finalize(col, self.save, only_if_unsaved=True)

    def configure(
        self,
        rate: float | None = None,
        budget: Any = UNCHANGED,
        window: int | None = None,
        seed: int | None = None,
    ) -> Monitor:
        """Share of queries sampled (0 turns measuring off), the most time measuring may take
        as a share of search time (``None``: no limit), samples per estimate, and a seed for
        the sampler (tests and benchmarks). Per handle; not persisted."""
        with self._lock:
            if rate is not None:
                if not 0 <= rate <= 1:
                    raise InvalidInputError(f"rate must be in [0, 1], got {rate!r}")
                self.rate = float(rate)
            if budget is not UNCHANGED:
                if budget is not None and not budget >= 0:
                    raise InvalidInputError(f"budget must be >= 0 or None, got {budget!r}")
                self.budget = budget
            if window is not None:
                if isinstance(window, bool) or not isinstance(window, int) or window < 1:
                    raise InvalidInputError(f"window must be a positive integer, got {window!r}")
                self.window = window
                for kind in self._kinds.values():
                    kind.window = deque(kind.window, maxlen=self.window)
            if seed is not None:
                self._rng = np.random.default_rng(seed)
        return self

    # -- the caller's path --------------------------------------------------------------------
    def search(self, view: Any, q: Any, k: int, params: SearchParams) -> SearchResult:
        """``searcher.run`` at this kind's setting, sampling some of its queries."""
        if threading.current_thread() is self._worker:  # a re-run: as asked, never sampled
            return searcher.run(view, q, k, params, getattr(self._forced, "tuning", None))
        target = view.manifest.extra.get("target_recall")
        kind = kind_of(view, params)
        own = params.exact or params.nprobe is not None  # the call's setting wins
        step = -1 if own else self._kinds[kind].step if target is not None else 0
        tuning = LADDER[step] if target is not None and not own else None
        start = time.perf_counter()
        result = searcher.run(view, q, k, params, tuning)
        exact = (result.explain or {}).get("plan") in ("exact-scan", "exact-rows")
        if self.rate <= 0 or (exact and not (tuning is not None and tuning.exact)):
            return result  # an exact plan of its own accord: recall 1, nothing to measure
        if not (hasattr(q, "__getitem__") and hasattr(q, "copy")):
            return result  # queries of a row format that cannot be sampled one by one
        elapsed = time.perf_counter() - start
        with self._lock:
            self.search_seconds += elapsed
            chosen = np.flatnonzero(self._rng.random(len(q)) < self.rate)
            spent = self.budget is not None and (
                self.measure_seconds > self.budget * self.search_seconds
            )
            if len(chosen) and spent:
                self.skipped += len(chosen)
                return result
        if len(chosen):
            version = (view.manifest.generation, view.tail.end)
            job = _Job(q[chosen].copy(), result.ids[chosen], result.ids.shape[1], params.filter,
                       version, kind, step)  # fmt: skip
            self._queue.put(job)
            self._start()
        return result

    # -- the worker ---------------------------------------------------------------------------
    def _start(self) -> None:
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="slimvec-recall")
                self._worker.daemon = True
                self._worker.start()

    def _work(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._worker = None
                        return
                continue
            jobs = [job]
            with contextlib.suppress(queue.Empty):
                while len(jobs) < BATCH:
                    jobs.append(self._queue.get_nowait())
            for batch in _batches(jobs):
                try:
                    self._measure(batch)
                except Exception:  # the measurement must never take the collection down
                    log.debug("recall sample failed", exc_info=True)
                    self.dropped += 1
            for _ in jobs:
                self._queue.task_done()

    def _measure(self, job: _Job) -> None:
        col = self._col()
        if col is None:
            return
        start = time.perf_counter()
        if col.version != job.version:
            self.dropped += 1
            return
        truth = job.found  # a search the target made exact is its own truth
        if job.step < 0 or not LADDER[job.step].exact:
            truth = col.search_rows(job.q, job.k, SearchParams(True, job.filter)).ids
        below = None
        if job.step > 0:  # the step below, on the same queries: whether it would do
            self._forced.tuning = LADDER[job.step - 1]
            try:
                below = col.search_rows(job.q, job.k, SearchParams(filter=job.filter))
            finally:
                self._forced.tuning = None
        same = col.version == job.version
        spent = time.perf_counter() - start
        with self._lock:
            self.measure_seconds += spent
        if not same:
            self.dropped += 1
            return
        recalls, trials = recall_at_k(job.found, truth)
        under = None if below is None else recall_at_k(below.ids, truth)
        self.record(job.kind, job.step, recalls, trials, under, col.manifest.extra)

    def record(
        self,
        kind_name: str,
        step: int,
        recalls: np.ndarray,
        trials: np.ndarray,
        below: tuple[np.ndarray, np.ndarray] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Count measured recalls of searches run at ``step`` (``below``: the same queries
        at the step below) and move the step if the target asks for it."""
        target = (extra or {}).get("target_recall")
        now = round(time.time(), 3)
        with self._lock:
            kind = self._kinds[kind_name]
            for r, k in zip(recalls.tolist(), trials.tolist()):
                kind.window.append((now, r, k))
                kind.total += 1
                if kind.total % HISTORY_EVERY == 0:
                    kind.history.append([now, *map(lambda v: round(v, 4), kind.estimate())])
                if step == kind.step:
                    kind.at(step).append((r, k))
            if below is not None and step == kind.step:
                kind.at(step - 1).extend(zip(below[0].tolist(), below[1].tolist()))
                kind.fresh += len(below[0])
            self._unsaved += len(recalls)
            moved = target is not None and self._tune(kind_name, kind, float(target), now)
            self._warn(kind_name, kind, target)
            due = moved or self._unsaved >= PERSIST_EVERY
        if due:
            self.save()

    def _tune(self, name: str, kind: _Kind, target: float, now: float) -> bool:
        """Climb on a mean below the target; step down on the step below's lower bound at or
        above it (under the lock)."""
        here = kind.at(kind.step)
        mean, _, _ = interval([r for r, _ in here], [k for _, k in here])
        if kind.step + 1 < len(LADDER) and len(here) >= MIN_SAMPLES and mean < target:
            why = f"recall {mean:.3f} < target {target} over {len(here)} samples"
            kind.steps.pop(kind.step + 1, None)  # measured long ago, if ever
            return self._move(name, kind, kind.step + 1, why, now)
        if kind.step > 0 and kind.fresh >= 2 * MIN_SAMPLES:
            # judged on a block of new samples each time: re-judging an overlapping window
            # after every sample would let chance carry its bound over the target
            block = list(kind.at(kind.step - 1))[-min(kind.fresh, STEP_WINDOW) :]
            kind.fresh = 0
            mean, low, _ = interval([r for r, _ in block], [k for _, k in block])
            if low >= target:
                why = f"the cheaper setting's recall {mean:.3f} (>= {low:.3f}) holds {target}"
                kind.steps.pop(kind.step - 2, None)
                return self._move(name, kind, kind.step - 1, why, now)
        return False

    def _move(self, name: str, kind: _Kind, step: int, why: str, now: float) -> bool:
        self.adjustments.append(
            {"time": now, "plan": name, "from": setting(kind.step), "to": setting(step), "why": why}
        )
        log.info("slimvec %s: %s plan %s -> %s (%s)", self.path.parent, name, kind.step, step, why)
        kind.step, kind.last_change, kind.fresh = step, now, 0
        return True

    def _warn(self, name: str, kind: _Kind, target: Any) -> None:
        below = target is not None and kind.estimate()[0] < target
        if below and not kind.below:
            log.warning(
                "slimvec %s: %s recall estimate %.3f is below the target %s",
                self.path.parent, name, kind.estimate()[0], target,
            )  # fmt: skip
        kind.below = below

    # -- reading it -----------------------------------------------------------------------------
    def flush(self) -> Monitor:
        """Wait for every queued sample to be measured, then save (tests, benchmarks, close)."""
        self._queue.join()
        self.save()
        return self

    def report(self, target: float | None) -> dict[str, Any]:
        """``info()["quality"]``."""
        with self._lock:
            plans = {n: k.describe(target) for n, k in self._kinds.items() if k.total}
            spent = self.measure_seconds / self.search_seconds if self.search_seconds else 0.0
            return {
                "target_recall": target,
                "rate": self.rate,
                "budget": self.budget,
                "plans": plans,
                "adjustments": list(self.adjustments),
                "dropped": self.dropped,
                "skipped_for_budget": self.skipped,
                "measuring_share": round(spent, 4),
            }

    def history(self) -> dict[str, list[list[float]]]:
        """Per plan kind: [time, estimate, low, high] points (``slimvec quality --plot``)."""
        with self._lock:
            return {n: list(k.history) for n, k in self._kinds.items() if k.history}

    # -- persisting -----------------------------------------------------------------------------
    def save(self, only_if_unsaved: bool = False) -> None:
        """Write ``QUALITY.json``; a read-only directory only logs (the state stays in RAM)."""
        with self._lock:
            if only_if_unsaved and not self._unsaved:
                return
            body = {
                "format": "slimvec-quality",
                "version": 1,
                "kinds": {n: k.state() for n, k in self._kinds.items() if k.total or k.step},
                "adjustments": list(self.adjustments),
            }
            self._unsaved = 0
        try:
            atomic_write_text(self.path, json.dumps(body))
        except OSError as exc:
            log.warning("slimvec: cannot save %s (%s); recall kept in memory", self.path, exc)

    def _load(self) -> None:
        try:
            body = json.loads(self.path.read_text(encoding="utf-8"))
            for name, state in body["kinds"].items():
                if name in self._kinds:
                    self._kinds[name].load(state)
            self.adjustments.extend(body["adjustments"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:  # telemetry: start afresh
            log.warning("slimvec: %s is unreadable (%s); recall is measured afresh", self.path, exc)
            self._kinds = {kind: _Kind(WINDOW) for kind in KINDS}
            self.adjustments.clear()

    def close(self) -> None:
        """Drop what is queued (its re-runs could not run on a closed handle) and save."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
            self._queue.task_done()
        self.save(only_if_unsaved=True)


def combine(reports: list[dict[str, Any] | None], over: str = "shards") -> dict[str, Any]:
    """Several collections' ``info()["quality"]`` as one (a sharded collection's shards, an
    upgrade's two spaces; ``over`` names the count of reports in the result): per plan kind
    the sample-weighted mean of the estimates and of the interval bounds (wider than the
    pooled interval, never narrower), the samples summed, every adjustment."""
    reports = [r for r in reports if r]
    plans: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        found = [r["plans"][kind] for r in reports if r["plans"].get(kind, {}).get("estimate")]
        n = sum(p["samples"] for p in found)
        if not n:
            continue
        weights = np.array([p["samples"] for p in found]) / n
        mean = float(weights @ [p["estimate"] for p in found])
        low, high = weights @ np.array([p["interval"] for p in found], np.float64)
        plans[kind] = {
            "estimate": round(mean, 4),
            "interval": [round(float(low), 4), round(float(high), 4)],
            "samples": n,
            "total_samples": sum(p["total_samples"] for p in found),
            "below_target": any(p["below_target"] for p in found),
            "last_change": max((p["last_change"] or 0 for p in found), default=0) or None,
        }  # fmt: skip
    targets = {r["target_recall"] for r in reports}
    return {
        "target_recall": targets.pop() if len(targets) == 1 else None,
        "plans": plans,
        "adjustments": sorted(
            (a for r in reports for a in r["adjustments"]), key=lambda a: a["time"]
        ),
        over: len(reports),
    }


class LiveRecall:
    """The live recall of a collection whose handle keeps a :class:`Monitor` in ``_quality``:
    its measurement, and the target it holds."""

    _quality: Monitor

    @property
    def quality(self) -> Monitor:
        """This handle's measurement (``configure`` it, ``flush`` it, read its ``history``);
        ``info()["quality"]`` reports it."""
        return self._quality

    def set_target_recall(self, target: float | None) -> None:
        """Keep recall@k at or above ``target`` by turning the speed knobs (shortlists, IVF
        nprobe, the exact plan); None: only measure. Committed with the collection."""
        set_target(self, target)

    def live_recall(self) -> dict[str, Any]:
        """``info()["quality"]`` without the rest of ``info()`` (what ``/metrics`` reads)."""
        return self._quality.report(self.manifest.extra.get("target_recall"))
