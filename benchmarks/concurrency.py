"""Threads sharing collection handles while another process writes: errors, results outside
their filter, and counts, for this checkout (and an older one with --baseline-src).

    .venv/bin/python benchmarks/concurrency.py [--seconds 8] [--baseline-src OLD/src]

Two scenarios, each with a writer process making small adds, metadata updates, deletes,
upserts, flushes and compactions (tests/concurrent_load.py) for ``--seconds``:

* ``local``: 4 threads share one ``slimvec.open`` handle (exact, filtered, BM25-filtered
  searches, ``get(filter=)``, ``count``), as every ``slimvec serve`` worker does.
* ``http``: ``slimvec serve --workers 2`` and 8 client threads of ``--http-calls`` calls each,
  the writer writing until they are done.

A row counts the calls, the calls that raised (or answered non-2xx), the results that broke
their filter, and whether the shared handle's count equals a fresh handle's afterwards. The
test suite runs short versions (tests/test_concurrency.py, tests/test_server.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCENARIO = r"""
import json, subprocess, sys, tempfile, threading, time
sys.path.insert(0, sys.argv[3])
import slimvec
from concurrent_load import WRITER, join, run_readers, seed_collection
scenario, seconds, _, http_calls = sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
root = sys.argv[5]
col = slimvec.create(root + "/c", dim=16, spec="rabitq:2*40 > f32")
seed_collection(col)
col.close()
stop = threading.Event()
server = None
if scenario == "local":
    shared = slimvec.open(root + "/c")
    tally, readers = run_readers(lambda i: shared, 4, stop)
else:
    from serving import process_server
    server = process_server(__import__("pathlib").Path(root), "--workers", "2")
    url, proc = server.__enter__()
    with open(root + "/server.pid", "w") as f:  # its own session: the harness may need to kill it
        f.write(str(proc.pid))
    clients = [slimvec.connect(url) for _ in range(8)]
    tally, readers = run_readers(lambda i: clients[i].open("c"), 8, stop, calls=http_calls)
if scenario == "local":  # readers run while the writer writes for `seconds`
    writer = subprocess.run([sys.executable, "-c", WRITER, root + "/c", str(seconds)],
                            capture_output=True, text=True)
    time.sleep(0.3)
    stop.set()
    join(readers, 600)
else:  # every client makes its calls while the writer writes, then the writer stops
    writer = subprocess.Popen([sys.executable, "-c", WRITER, root + "/c", "1e9"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    join(readers, 1800)
    writer.terminate()
    writer.wait()
    writer.returncode, writer.stdout = 0, "terminated after the readers"
    writer.stderr = ""
fresh = len(slimvec.open(root + "/c"))
if scenario == "local":
    counts = [len(shared)]
else:
    counts = sorted({clients[0].open("c").count() for _ in range(6)})
    server.__exit__(None, None, None)
print(json.dumps({"calls": tally.calls, "errors": len(tally.errors), "wrong": len(tally.wrong),
                  "first_error": (tally.errors or tally.wrong or [""])[0][:160], "counts": counts,
                  "fresh": fresh, "writer_rounds": str(writer.stdout).strip(),
                  "writer_error": writer.stderr[-300:] if writer.returncode else ""}))
"""


def _failed(why: str) -> dict:
    return {"calls": 0, "errors": 1, "wrong": 0, "counts": [], "fresh": None, "first_error": why}


def run(src: Path, scenario: str, seconds: float, http_calls: int, timeout: float) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{ROOT / 'tests'}"}
    root = tempfile.mkdtemp(prefix="slimvec-concurrency-")
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                SCENARIO,
                scenario,
                str(seconds),
                str(ROOT / "tests"),
                str(http_calls),
                root,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        # its writer and server are other processes (the server and its workers in a session
        # of their own)
        subprocess.run(["pkill", "-9", "-f", root], check=False)
        with contextlib.suppress(OSError, ValueError):
            os.killpg(int(Path(root, "server.pid").read_text()), signal.SIGKILL)
        return _failed(f"hung: no result in {timeout:.0f} s")
    if out.returncode:
        return _failed(f"crashed ({out.returncode}): {out.stderr.strip()[-160:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="how long the writer writes")
    parser.add_argument("--http-calls", type=int, default=1000, help="calls per HTTP client")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a run is hung")
    parser.add_argument("--baseline-src", type=Path, help="an older checkout's src/ to compare")
    args = parser.parse_args()
    sides = [("this checkout", ROOT / "src")]
    if args.baseline_src:
        sides.insert(0, ("baseline", args.baseline_src.resolve()))
    print(
        f"{'code':<14} {'scenario':<8} {'calls':>7} {'raised':>7} {'off-filter':>10} "
        f"{'count(s) / fresh':>20}  first error"
    )
    for scenario in ("local", "http"):
        for label, src in sides:
            r = run(src, scenario, args.seconds, args.http_calls, args.timeout)
            counts = f"{','.join(map(str, r['counts']))} / {r['fresh']}"
            print(
                f"{label:<14} {scenario:<8} {r['calls']:>7} {r['errors']:>7} {r['wrong']:>10} "
                f"{counts:>20}  {r.get('first_error', '')}",
                flush=True,
            )


if __name__ == "__main__":
    main()
