"""Streaming adds (issue 29, part 1): the peak memory and speed of one large add from a
memory-mapped float16 file, for the default spec and ``ivf:1024 | rabitq:2*20 > f32``.

    .venv/bin/python benchmarks/add_memory.py [--n 1000000] [--dim 384]
        [--baseline-src /tmp/addmem_base/src] [--work /tmp/addmem_bench]

The data (``slimvec.datasets.synthetic.low_rank``, seed 0) is generated once into
``WORK/x-f16.npy`` in its own process. Each (code, spec) is measured in a fresh subprocess
(``slimvec.create`` + one ``col.add`` of the whole memory-mapped array, then ``close``):
peak RSS (``ru_maxrss``; it counts the pages of the memory-mapped input the add read, which the
budget allows: the caller's array), the add's seconds and rows/s. ``--baseline-src`` runs the
same against another checkout's ``src`` (e.g. ``git worktree add /tmp/addmem_base <sha>``)
first, for a before/after table. Memory figures hold at any load; time figures only on a
quiet machine (the 1-minute load is printed at the start and end).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ["rabitq:2*40 > f32", "ivf:1024 | rabitq:2*20 > f32"]

DATA = textwrap.dedent(
    """
    import sys
    import numpy as np
    from numpy.lib.format import open_memmap
    from slimvec.datasets.synthetic import low_rank

    path, n, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    out = open_memmap(path + ".tmp", mode="w+", dtype=np.float16, shape=(n, dim))
    step = 250_000
    for i, lo in enumerate(range(0, n, step)):
        m = min(step, n - lo)
        out[lo : lo + m] = low_rank(m, queries=1, dim=dim, seed=i).docs
    out.flush()
    del out
    import os
    os.replace(path + ".tmp", path)
    """
)

CHILD = textwrap.dedent(
    """
    import json, os, resource, sys, time
    import numpy as np
    import slimvec

    data, path, spec = sys.argv[1], sys.argv[2], sys.argv[3]
    x = np.load(data, mmap_mode="r")
    col = slimvec.create(path, dim=x.shape[1], spec=spec)
    with open("/proc/self/status") as f:
        rss_before = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS"))
    start = time.perf_counter()
    col.add(x)
    seconds = time.perf_counter() - start
    col.close()
    budget = None
    try:
        from slimvec.store.budget import add_memory
        budget = add_memory()
    except ImportError:
        pass
    print(json.dumps({
        "rows": len(x), "spec": spec, "seconds": seconds, "source": slimvec.__file__,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "input_bytes": x.nbytes, "budget": budget, "rss_before": rss_before,
    }))
    """
)


def load() -> float:
    return os.getloadavg()[0]


def measure(src: Path, data: Path, work: Path, spec: str, label: str) -> dict:
    path = work / f"collection-{label}"
    shutil.rmtree(path, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(data), str(path), spec],
        capture_output=True,
        text=True,
        env=env,
    )
    shutil.rmtree(path, ignore_errors=True)
    if proc.returncode != 0:
        return {"rows": None, "spec": spec, "error": proc.stderr.strip().splitlines()[-1:]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["source"].startswith(str(src)), (out["source"], src)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--baseline-src", type=Path)
    parser.add_argument("--work", type=Path, default=Path("/tmp/addmem_bench"))
    parser.add_argument("--specs", nargs="*", default=SPECS)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = args.work / f"x-f16-{args.n}x{args.dim}.npy"
    if not data.exists():
        subprocess.run(
            [sys.executable, "-c", DATA, str(data), str(args.n), str(args.dim)], check=True
        )
    runs = [("before", args.baseline_src)] if args.baseline_src else []
    runs.append(("after", ROOT / "src"))
    print(f"load at start {load():.2f}", flush=True)
    rows = []
    for label, src in runs:
        for spec in args.specs:
            r = measure(src, data, args.work, spec, label)
            r["code"] = label
            rows.append(r)
            print(json.dumps(r), flush=True)
    print(f"load at end {load():.2f}")
    print()
    print(
        "| code | rows | spec | peak RSS | RSS before the add | input (f16 memmap) | budget "
        "| build s | rows/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    gib = 1 << 30
    for r in rows:
        spec = r["spec"].replace("|", "\\|")
        if r.get("rows") is None:
            print(f"| {r['code']} | - | `{spec}` | failed: {r['error']} | | | | | |")
            continue
        budget = "-" if r["budget"] is None else f"{r['budget'] / gib:.2f} GiB"
        print(
            f"| {r['code']} | {r['rows']:,} | `{spec}` | {r['peak_rss'] / gib:.2f} GiB "
            f"| {r['rss_before'] / gib:.2f} GiB | {r['input_bytes'] / gib:.2f} GiB | {budget} "
            f"| {r['seconds']:.1f} "
            f"| {r['rows'] / r['seconds']:,.0f} |"
        )


if __name__ == "__main__":
    main()
