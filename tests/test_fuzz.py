"""benchmarks/fuzz.py in CI: its classifier tells each kind of bad outcome apart, and a sample
of its cases (every API and HTTP kind of door, two CLI commands) is refused clearly with
nothing written. The whole run's table is in BENCHMARKS.md ("Fuzzing the doors")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import fuzz
from slimvec.errors import InvalidInputError
from slimvec.server.app import create_app
from slimvec.server.auth import KeyFile


def _raise(exc: Exception):
    def run():
        raise exc

    return run


@pytest.mark.parametrize(
    "run, outcome",
    [
        (_raise(InvalidInputError("dim must be ...")), fuzz.GOOD),
        (_raise(KeyError("x")), fuzz.RAW),
        (_raise(TypeError("expected str")), fuzz.RAW),
        (lambda: [None], fuzz.ACCEPTED),
        (lambda: SimpleNamespace(status_code=500, text="boom"), fuzz.SERVER),
        (lambda: SimpleNamespace(status_code=200, text="{}"), fuzz.ACCEPTED),
        (lambda: SimpleNamespace(status_code=400, text="<html>", json=dict), fuzz.RAW),
        (lambda: subprocess.CompletedProcess([], 0, "ok", ""), fuzz.ACCEPTED),
        (lambda: subprocess.CompletedProcess([], 1, "", "Traceback ...\nKeyError"), fuzz.RAW),
        (lambda: subprocess.CompletedProcess([], 2, "", "error: dim must be"), fuzz.GOOD),
    ],
)
def test_the_classifier_tells_outcomes_apart(run, outcome):
    assert fuzz.classify_call(run)[0] == outcome


def test_a_4xx_showing_the_servers_path_and_a_refusal_that_wrote_are_bad(tmp_path):
    fuzz.make_collections(tmp_path)
    reply = SimpleNamespace(status_code=404, text=f"no {tmp_path}/c", json=dict)
    assert fuzz.classify_call(lambda: reply, tmp_path)[0] == fuzz.LEAK

    def writes_then_raises():
        import numpy as np

        import slimvec

        slimvec.open(tmp_path / "c").add(np.ones((1, fuzz.DIM), np.float32))
        raise InvalidInputError("refused (but wrote)")

    case = fuzz.Case("api", "writes", writes_then_raises, tmp_path / "c")
    assert fuzz.run_case(case).outcome == fuzz.WROTE
    created = fuzz.Case(
        "api", "creates", lambda: (tmp_path / "x").mkdir() or 1 / 0, None, absent=tmp_path / "x"
    )
    assert fuzz.run_case(created).outcome == fuzz.WROTE


def test_a_sample_of_the_fuzz_cases_is_refused_clearly(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    fuzz.make_collections(root)
    key_file, keys = fuzz.make_keys(root)
    results = [fuzz.run_case(c) for c in fuzz.api_cases(root)[::7]]
    cli = {c.name: c for c in fuzz.cli_cases(root)}
    results += [fuzz.run_case(cli[n]) for n in ("create --dim 1000000000", "add nan.npy")]
    app = create_app(root, keys=KeyFile.load(key_file), models=["fuzz-model"])
    with TestClient(app, raise_server_exceptions=False) as client:
        results += [fuzz.run_case(c, root) for c in fuzz.http_cases(root, client, keys)[::7]]
    assert len(results) > 80
    assert {r.surface for r in results} == {"api", "cli", "http"}
    assert [r for r in results if r.outcome != fuzz.GOOD] == []
    assert "| total | " in fuzz.table(results)
