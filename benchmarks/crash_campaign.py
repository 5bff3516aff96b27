"""kill -9 campaign for the write path (issue 11): random writes killed at random moments.

Each trial starts a writer process that performs random operations on one collection (add one
document with text and metadata, add a batch, delete, flush the log, compact) and prints each
operation after it returned; the campaign kills it (SIGKILL) after a random number of them
plus a random delay, then checks the collection against the ledger of confirmed operations:
every confirmed document is there with its text and metadata, every confirmed delete holds,
nothing else appears (the operation in flight may land or not, never half), SQLite's
integrity check passes, and the collection opens and searches. Throughout the campaign a
second, long-lived writer adds documents of its own id range, and a long-lived reader searches
(dense and sparse) in a loop counting errors.

    .venv/bin/python benchmarks/crash_campaign.py --trials 200
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

import slimvec

DIM = 32

WRITER = textwrap.dedent(
    """
    import json, sys, numpy as np, slimvec
    path, seed, start_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(seed)
    col = slimvec.open(path)
    next_id = start_id
    def say(op, **kw):
        print(json.dumps({"op": op, **kw}), flush=True)
    while True:
        r = rng.random()
        mine = [int(i) for i in col.live_ids() if start_id <= i < start_id + 10**6]
        if r < 0.55:
            ids = [next_id]
            say("begin_add", ids=ids)
            col.add(rng.standard_normal((1, 32)), ids=ids, texts=[f"doc w{next_id}"],
                    metadata=[{"id": next_id}])
            next_id += 1
            say("add", ids=ids)
        elif r < 0.7:
            ids = list(range(next_id, next_id + 80))
            say("begin_add", ids=ids)
            col.add(rng.standard_normal((80, 32)), ids=ids, texts=[f"doc w{i}" for i in ids],
                    metadata=[{"id": i} for i in ids])
            next_id += 80
            say("add", ids=ids)
        elif r < 0.88 and mine:
            ids = [int(i) for i in rng.choice(mine, min(len(mine), 3), replace=False)]
            say("begin_delete", ids=ids)
            col.delete(ids)
            say("delete", ids=ids)
        elif r < 0.95:
            say("begin_flush")
            col.flush()
            say("flush")
        else:
            say("begin_compact")
            col.compact()
            say("compact")
    """
)

SECOND_WRITER = textwrap.dedent(
    """
    import sys, time, numpy as np, slimvec
    path, ledger = sys.argv[1], sys.argv[2]
    col = slimvec.open(path)
    rng = np.random.default_rng(1)
    i = 10**12
    while True:
        col.add(rng.standard_normal((1, 32)), ids=[i], texts=[f"second {i}"],
                metadata=[{"id": i}])
        with open(ledger, "a") as f:
            f.write(f"{i}\\n")
        i += 1
        time.sleep(0.02)
    """
)

READER = textwrap.dedent(
    """
    import sys, numpy as np, slimvec
    col = slimvec.open(sys.argv[1])
    rounds = errors = 0
    samples = []
    q = np.random.default_rng(2).standard_normal((4, 32))
    while open(sys.argv[2]).read() != "stop":
        try:
            col.search(q, k=5); col.search_texts("doc", k=5, mode="sparse"); len(col)
        except Exception as exc:
            errors += 1
            samples.append(repr(exc)[:200])
        rounds += 1
    print(rounds, errors, samples[:3])
    """
)


def check(path: Path, confirmed: dict[int, bool], in_flight: dict, second: set[int]) -> str:
    """'' if the collection agrees with the ledger, else what is wrong."""
    col = slimvec.open(path)
    live = set(col.live_ids().tolist())
    mine = {i for i in live if 1_000_000 <= i < 10**12}
    if not set(range(300)) <= live:  # the seed documents, never deleted
        return f"seed documents lost: {sorted(set(range(300)) - live)[:5]}"
    expected = {i for i, alive in confirmed.items() if alive}
    maybe_added = set(in_flight.get("ids", [])) if in_flight.get("op") == "begin_add" else set()
    maybe_deleted = (
        set(in_flight.get("ids", [])) if in_flight.get("op") == "begin_delete" else set()
    )
    lost = expected - mine - maybe_deleted
    extra = mine - expected - maybe_added
    if lost or extra:
        return f"lost {sorted(lost)[:5]} extra {sorted(extra)[:5]}"
    if in_flight.get("op") == "begin_add" and 0 < len(maybe_added & mine) < len(maybe_added):
        return "half of an add landed"
    missing_second = second - live
    if missing_second:
        return f"second writer lost {sorted(missing_second)[:5]}"
    sample = sorted(mine | (second & live))
    sample = random.Random(0).sample(sample, min(200, len(sample)))
    metas = col.metadata(sample)
    texts = col.texts(sample)
    for i, meta, text in zip(sample, metas, texts):
        if meta != {"id": i} or text not in (f"doc w{i}", f"second {i}"):
            return f"id {i}: metadata {meta} text {text!r}"
    db = sqlite3.connect(next(path.glob("meta-*.sqlite")))
    ok = db.execute("PRAGMA integrity_check").fetchone()[0]
    db.close()
    if ok != "ok":
        return f"integrity_check: {ok}"
    col.search(np.ones((2, DIM)), k=5)
    col.close()
    return ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="slimvec-crash-"))
    path, ledger, stop = work / "c", work / "second.txt", work / "stop"
    ledger.write_text("")
    stop.write_text("")
    col = slimvec.create(path, dim=DIM, spec="binary*10 > int8*4 > f32")
    col.add(np.random.default_rng(0).standard_normal((300, DIM)), texts=["seed"] * 300)
    col.close()
    second = subprocess.Popen([sys.executable, "-c", SECOND_WRITER, str(path), str(ledger)])
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(path), str(stop)], stdout=subprocess.PIPE, text=True
    )
    confirmed: dict[int, bool] = {}
    failures, ops_total, kinds = [], 0, {}
    start_id = 1_000_000
    t0 = time.time()
    for trial in range(args.trials):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(trial), str(start_id)],
            stdout=subprocess.PIPE,
            text=True,
        )
        wanted = rng.randint(1, 12)
        in_flight: dict = {}
        done = 0
        while done < wanted:
            line = proc.stdout.readline()
            if not line:
                break
            event = json.loads(line)
            if event["op"].startswith("begin_"):
                in_flight = event
                continue
            done += 1
            ops_total += 1
            kinds[event["op"]] = kinds.get(event["op"], 0) + 1
            for i in event.get("ids", []):
                confirmed[i] = event["op"] == "add"
            in_flight = {}
        time.sleep(rng.uniform(0, 0.05))
        os.kill(proc.pid, signal.SIGKILL)
        rest = proc.communicate()[0]  # events printed before the kill landed
        for line in rest.splitlines():
            event = json.loads(line)
            if event["op"].startswith("begin_"):
                in_flight = event
                continue
            for i in event.get("ids", []):
                confirmed[i] = event["op"] == "add"
            in_flight = {}
        second_ids = {int(x) for x in ledger.read_text().split()}
        problem = check(path, confirmed, in_flight, second_ids)
        if in_flight.get("ids"):  # the operation in flight landed or not: the ledger learns which
            live = set(slimvec.open(path).live_ids().tolist())
            for i in in_flight["ids"]:
                confirmed[i] = i in live
        if problem:
            failures.append((trial, problem))
            print(f"trial {trial}: {problem}", flush=True)
        start_id += 1_000_000
        if trial % 20 == 0:
            print(f"{trial + 1} trials, {ops_total} confirmed ops, {len(failures)} failures")
    stop.write_text("stop")
    second.kill()
    rounds, errors, samples = reader.communicate(timeout=120)[0].split(" ", 2)
    final = slimvec.open(path)
    print()
    print(
        "| trials | confirmed ops | by kind | failures | reader rounds | reader errors | "
        "documents at the end | segments | minutes |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.trials} | {ops_total} | {kinds} | {len(failures)} | {rounds} | {errors} "
        f"| {len(final)} | {final.info()['segments']} | {(time.time() - t0) / 60:.1f} |"
    )
    if int(errors):
        print("reader errors:", samples)


if __name__ == "__main__":
    main()
