"""Search hot path, this checkout vs an older one, interleaved in one run (issue 10's check
that the redesign moved code without slowing searches).

    .venv/bin/python benchmarks/hot_path.py --baseline-src /path/to/old/checkout/src

Two worker processes (one per source tree, same venv) build the same collection from the same
seeded vectors, then take turns: each round runs a batch of queries and single queries in one
worker, then the other, so machine load hits both alike. The table gives each side's median
over the rounds and the ratio (new / old time: < 1 is faster now).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

WORKER = r"""
import json, sys, time, tempfile
import numpy as np
import slimvec
n, dim, spec, batch, singles = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
f32 = np.float32
mix = rng.standard_normal((48, dim)).astype(f32)
x = rng.standard_normal((n, 48)).astype(f32) @ mix + 1.4 * rng.standard_normal((n, dim)).astype(f32)
q = x[rng.integers(0, n, batch)] + 0.1 * rng.standard_normal((batch, dim)).astype(f32)
col = slimvec.create(tempfile.mkdtemp() + "/c", dim, spec=spec)
col.add(x)
col.search(q, k=10); col.search(q[:1], k=10)  # compile, warm caches
print("ready", flush=True)
for line in sys.stdin:
    t = time.perf_counter(); col.search(q, k=10); batch_s = time.perf_counter() - t
    lat = []
    for i in range(singles):
        t = time.perf_counter(); col.search(q[i : i + 1], k=10); lat.append(time.perf_counter() - t)
    print(json.dumps({"batch": batch_s, "p50": float(np.median(lat))}), flush=True)
"""


def start(src: Path, params: list) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(src))
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, json.dumps(params)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    assert proc.stdout.readline().strip() == "ready", f"worker for {src} failed"
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-src", type=Path, required=True)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--specs", nargs="*", default=["binary*40 > f32", "int8*4 > f32", "f32"])
    args = parser.parse_args()
    here = Path(__file__).resolve().parents[1] / "src"
    print(f"load average {os.getloadavg()[0]:.1f}; n={args.n:,} dim={args.dim}; batch 100 queries")
    print(
        f"{'spec':<18} {'batch new/old':>22} {'ratio':>6} {'1-query p50 new/old':>24} {'ratio':>6}"
    )
    for spec in args.specs:
        params = [args.n, args.dim, spec, 100, 50]
        new, old = start(here, params), start(args.baseline_src, params)
        got: dict[str, list] = {"new": [], "old": []}
        for _ in range(args.rounds):
            for name, proc in (("new", new), ("old", old)):
                proc.stdin.write("go\n")
                proc.stdin.flush()
                got[name].append(json.loads(proc.stdout.readline()))
        for proc in (new, old):
            proc.stdin.close()
            proc.wait()
        med = {
            side: {key: float(np.median([r[key] for r in rounds])) for key in ("batch", "p50")}
            for side, rounds in got.items()
        }
        b, p = med["new"]["batch"] / med["old"]["batch"], med["new"]["p50"] / med["old"]["p50"]
        print(
            f"{spec:<18} {med['new']['batch'] * 1e3:>9.1f} / {med['old']['batch'] * 1e3:>7.1f} ms "
            f"{b:>6.2f} {med['new']['p50'] * 1e3:>10.3f} / {med['old']['p50'] * 1e3:>7.3f} ms "
            f"{p:>6.2f}"
        )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
