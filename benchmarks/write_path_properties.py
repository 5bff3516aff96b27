"""The long profile of the write-path state machine (issue 27, item 5): thousands of steps.

    .venv/bin/python benchmarks/write_path_properties.py [--steps 10000] [--seconds 600]

Runs ``WritePathMachine`` from tests/test_write_path_properties.py (adds, upserts, deletes by
id and by filter, metadata updates, flushes, compactions, reopens, a second handle's writes,
invalid adds; the collection checked against a model after every step) in rounds of
``--examples`` runs of up to ``--steps-per-run`` steps, each round with its own seed, until
``--steps`` steps ran or ``--seconds`` passed. A failing round is shrunk by hypothesis and
its minimal failing sequence printed; the run goes on with the next seed. Prints the steps
run, the failures (0 expected), the elapsed time and how often each rule ran. The test suite
runs the fast profile (``FAST`` in the test module).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from hypothesis import seed as hypothesis_seed
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_write_path_properties import FAST, WritePathMachine  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10_000, help="stop after this many steps")
    parser.add_argument("--seconds", type=float, default=3600, help="or after this long")
    parser.add_argument("--steps-per-run", type=int, default=80, help="steps of one run")
    parser.add_argument("--examples", type=int, default=10, help="runs per round (one seed)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first round")
    args = parser.parse_args()
    profile = settings(
        FAST,
        max_examples=args.examples,
        stateful_step_count=args.steps_per_run,
        derandomize=False,
    )
    start = time.perf_counter()
    rounds = failures = 0
    while WritePathMachine.steps < args.steps and time.perf_counter() - start < args.seconds:
        machine = hypothesis_seed(args.seed + rounds)(type("Round", (WritePathMachine,), {}))
        rounds += 1
        try:
            run_state_machine_as_test(machine, settings=profile)
        except Exception as exc:  # a failure: hypothesis shrank it; print it, go on
            failures += 1
            print(f"FAILURE in round {rounds} (seed {args.seed + rounds - 1}):", flush=True)
            print("".join(traceback.format_exception(exc))[-4000:], flush=True)
        elapsed = time.perf_counter() - start
        print(
            f"round {rounds}: {WritePathMachine.steps} steps, {failures} failures, {elapsed:.0f} s",
            flush=True,
        )
    elapsed = time.perf_counter() - start
    steps = WritePathMachine.steps
    print(
        f"\nsteps run: {steps}  failures: {failures}  rounds: {rounds}  "
        f"elapsed: {elapsed:.1f} s  ({steps / elapsed:.1f} steps/s)"
    )
    print("rules:", ", ".join(f"{k} {v}" for k, v in WritePathMachine.rules_run.most_common()))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
