"""Qdrant's JavaScript client (``@qdrant/js-client-rest``, from npm) against ``slimvec serve``.

    .venv/bin/python benchmarks/qdrant_js_smoke.py

Installs the pinned client from ``examples/qdrant_js/package.json`` into a temporary copy of
that folder (npm registry only), starts ``slimvec serve`` on an empty directory, runs
``examples/qdrant_js/quickstart.mjs`` against ``/qdrant`` and checks what it printed against
the same calls answered by a brute-force NumPy reading of Qdrant's semantics. Needs Node and
npm; it is a script, not a test, so that ``make test`` needs neither.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.serving import free_port, kill, wait_healthy

HERE = Path(__file__).resolve().parents[1] / "examples" / "qdrant_js"
POINTS = {
    1: [0.05, 0.61, 0.76, 0.74],
    2: [0.19, 0.81, 0.75, 0.11],
    3: [0.36, 0.55, 0.47, 0.94],
    4: [0.18, 0.01, 0.85, 0.8],
    5: [0.24, 0.18, 0.22, 0.44],
    6: [0.35, 0.08, 0.11, 0.44],
    "5c56c793-69f3-4fbf-87e6-c4bf54c28c26": [0.9, 0.1, 0.1, 0.1],
}


def expected() -> dict:
    """What Qdrant answers, read from its documented semantics (Dot: raw inner product)."""
    ids, vectors = list(POINTS), np.array(list(POINTS.values()))
    scores = vectors @ np.array([0.2, 0.1, 0.9, 0.7])
    top = np.argsort(-scores, kind="stable")[:3]
    return {
        "top": [[ids[i], round(float(scores[i]), 3)] for i in top],
        "london": [[2, "London"]],
        "scrolled": len(POINTS),
        "count": len(POINTS),
        "retrieved": ["Oslo"],
        "after_delete": len(POINTS) - 1,
    }


def main() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        sys.exit("needs node and npm on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "app"
        shutil.copytree(HERE, app)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=app, check=True,
        )  # fmt: skip
        data = Path(tmp) / "data"
        data.mkdir()
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "slimvec.cli", "serve", str(data), "--port", str(port),
             "--log-level", "warning"],
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, proc)
            out = subprocess.run(
                ["node", "quickstart.mjs"], cwd=app, capture_output=True, text=True,
                env={"PATH": "/usr/bin:/bin", "QDRANT_URL": url, "QDRANT_PREFIX": "qdrant"},
            )  # fmt: skip
        finally:
            kill(proc)
    if out.returncode:
        sys.exit(f"the JS client failed:\n{out.stderr}")
    got, want = json.loads(out.stdout.strip().splitlines()[-1]), expected()
    for key in want:
        status = "ok" if got[key] == want[key] else "DIFFERENT"
        print(f"{key:13} {status:9} slimvec {got[key]}  expected {want[key]}")
    if got != want:
        sys.exit(1)
    print("@qdrant/js-client-rest 1.20.0 against slimvec serve: every call as Qdrant answers it")


if __name__ == "__main__":
    main()
