"""Fuzzing the doors: hundreds of bad inputs through the in-process API, the CLI and HTTP, each
outcome classified, and after each one a check that nothing was written.

An outcome is good when the input is refused clearly: a ``slimvec`` error in-process, a
non-zero exit with an ``error:`` line and no traceback from the CLI, a 4xx with an
``{"error": {...}}`` body that does not show the server's directory over HTTP. It is bad when
it is a raw Python error, a 5xx, an input the README says is refused but was accepted, a 4xx
that shows the server's path, or a refusal after which the collection changed (its count,
its committed manifest, its log) or no longer opens.

    python benchmarks/fuzz.py                       # all three surfaces, a real `slimvec serve`
    python benchmarks/fuzz.py --surfaces api,http   # some of them

The table (counts per surface x outcome) and every bad case are printed; exit code 1 if any
case is bad. ``tests/test_fuzz.py`` runs a sample of these cases (HTTP through the ASGI app).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import slimvec
from slimvec.errors import SlimvecError

GOOD = "refused clearly"
RAW = "raw Python error"
ACCEPTED = "accepted (README: refused)"
SERVER = "server 5xx"
LEAK = "4xx showing server path"
WROTE = "wrote despite refusing"
OUTCOMES = (GOOD, RAW, ACCEPTED, SERVER, LEAK, WROTE)
SURFACES = ("api", "cli", "http")

DIM = 8
ROWS = 20
SLIMVEC = str(Path(sys.executable).with_name("slimvec"))


@dataclass
class Case:
    """One bad input: ``run`` feeds it through a door and returns what came back (a value,
    an ``httpx`` response or a ``CompletedProcess``); ``target`` is the collection directory
    it must leave unchanged, ``absent`` a path it must not create."""

    surface: str
    name: str
    run: Callable[[], Any]
    target: Path | None = None
    absent: Path | None = None


@dataclass
class Result:
    surface: str
    name: str
    outcome: str
    detail: str


# -- classifying ---------------------------------------------------------------------------------
def classify_reply(reply: Any, root: Path | None = None) -> tuple[str, str]:
    """What a door answered, before looking at the disk."""
    if isinstance(reply, subprocess.CompletedProcess):
        said = (reply.stderr or "") + (reply.stdout or "")
        if reply.returncode == 0:
            return ACCEPTED, said.strip()[-200:]
        if "Traceback" in said:
            return RAW, said.strip().splitlines()[-1][:200]
        return GOOD, said.strip()[:200]
    if hasattr(reply, "status_code"):  # an HTTP response
        if reply.status_code >= 500:
            return SERVER, f"{reply.status_code} {reply.text[:200]}"
        if reply.status_code < 400:
            return ACCEPTED, f"{reply.status_code} {reply.text[:200]}"
        if root is not None and str(root) in reply.text:
            return LEAK, reply.text[:200]
        try:
            body = reply.json()["error"]
            return GOOD, f"{reply.status_code} {body['type']}: {body['message'][:160]}"
        except (ValueError, KeyError, TypeError):
            return RAW, f"{reply.status_code} not an error body: {reply.text[:160]}"
    return ACCEPTED, repr(reply)[:200]


def classify_call(fn: Callable[[], Any], root: Path | None = None) -> tuple[str, str]:
    """Run one bad input: a slimvec error is a clear refusal, any other exception raw."""
    try:
        reply = fn()
    except SlimvecError as exc:
        return GOOD, f"{type(exc).__name__}: {str(exc)[:160]}"
    except Exception as exc:  # what the fuzzer is looking for
        return RAW, f"{type(exc).__name__}: {str(exc)[:160]}"
    return classify_reply(reply, root)


def state(path: Path) -> tuple:
    """What a refused input must leave as it was: the live count (through a fresh handle),
    the committed manifest and the write-ahead log's size."""
    manifest = path / "MANIFEST.json"
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    log = json.loads(manifest.read_text()).get("log")
    log_size = (path / log).stat().st_size if log and (path / log).exists() else 0
    col = slimvec.open(path)
    try:
        return len(col), digest, log_size
    finally:
        col.close()


def run_case(case: Case, root: Path | None = None) -> Result:
    """Feed one case and classify it, the disk included."""
    before = state(case.target) if case.target is not None else None
    outcome, detail = classify_call(case.run, root)
    if outcome in (GOOD, LEAK, RAW, SERVER):  # refused somehow: nothing may have changed
        if case.target is not None:
            try:
                after = state(case.target)
            except Exception as exc:
                return Result(case.surface, case.name, WROTE, f"no longer opens: {exc!r}"[:200])
            if after != before:
                changed = f"count/manifest/log {before} -> {after}"
                return Result(case.surface, case.name, WROTE, f"{detail}; {changed}"[:300])
        if case.absent is not None and case.absent.exists():
            return Result(case.surface, case.name, WROTE, f"{detail}; created {case.absent.name}")
    return Result(case.surface, case.name, outcome, detail)


# -- the collections the cases hit ---------------------------------------------------------------
def make_collections(root: Path) -> None:
    """``c``: int ids, metadata and texts; ``s``: string ids. Both hold ROWS rows."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    c = slimvec.create(root / "c", dim=DIM)
    c.add(
        x,
        metadata=[{"i": i, "tag": "ab"[i % 2]} for i in range(ROWS)],
        texts=[f"text {i}" for i in range(ROWS)],
    )
    c.close()
    s = slimvec.create(root / "s", dim=DIM, ids="str")
    s.add(x, ids=[f"doc-{i}" for i in range(ROWS)])
    s.close()


def deep(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def deep_filter(levels: int) -> dict:
    value: dict = {"i": 1}
    for _ in range(levels):
        value = {"$and": [value]}
    return value


ONE = np.ones((1, DIM), np.float32)

#: Vectors the README says are refused (wrong shape or dimension, NaN/inf, non-numeric, empty).
BAD_VECTORS: dict[str, Any] = {
    "7 dims": np.ones((1, DIM - 1), np.float32),
    "9 dims": np.ones((1, DIM + 1), np.float32),
    "3-D": np.ones((1, 1, DIM), np.float32),
    "0 rows": np.zeros((0, DIM), np.float32),
    "NaN": np.where(np.arange(DIM) == 3, np.nan, 1.0)[None].astype(np.float32),
    "inf": np.where(np.arange(DIM) == 3, np.inf, 1.0)[None].astype(np.float32),
    "-inf": np.where(np.arange(DIM) == 3, -np.inf, 1.0)[None].astype(np.float32),
    "1e39 (float32 overflow)": [[1e39] * DIM],
    "ragged lists": [[1.0] * DIM, [1.0] * (DIM - 1)],
    "strings": [["a"] * DIM],
    "object array": np.array([[object()] * DIM], dtype=object),
    "complex": np.ones((1, DIM), np.complex64),
    "booleans": np.ones((1, DIM), bool),
    "datetimes": np.array([["2020-01-01"] * DIM], dtype="datetime64[D]"),
    "None": None,
    "dict": {"vectors": 1},
    "a string": "1,2,3",
    "bytes": b"\0" * 4 * DIM,
    "a scalar": 5,
    "None entries": [[None] * DIM],
    "all zeros (cosine)": np.zeros((1, DIM), np.float32),
}

#: Ids that are not integers in 0 .. 2**53 - 1 (README: Limits).
BAD_IDS: dict[str, Any] = {
    "-1": [-1],
    "2**53": [2**53],
    "2**63": [2**63],
    "2**64": [2**64],
    "1.5": [1.5],
    "NaN": [float("nan")],
    "a string": ["a"],
    "None": [None],
    "nested": [[1]],
    "True": [True],
    "uint64 max": np.array([2**64 - 1], np.uint64),
    "two for one vector": [100, 101],
    "a bare string": "1",
    "a dict": {"a": 1},
}

#: Ids to look up (metadata, texts, get, delete) that are not ids at all. (An int64 outside
#: 0 .. 2**53 - 1 is simply not found, as a search's -1 is: not a case.)
BAD_LOOKUPS: dict[str, Any] = {
    "2**64": [2**64],
    "1.5": [1.5],
    "a string": ["a"],
    "None item": [None],
    "nested": [[1]],
    "a dict": {"a": 1},
    "NaN": [float("nan")],
}

#: Metadata that cannot be stored as documented (one JSON object per vector, string keys,
#: nesting <= 32, no NaN, valid Unicode). Integers beyond 64 bits are stored exactly (JSON
#: text), so they are not a case.
BAD_METADATA: dict[str, Any] = {
    "a dict, not a list": {"a": 1},
    "two for one vector": [{"a": 1}, {"a": 2}],
    "an int item": [1],
    "a string item": ["x"],
    "int key": [{1: "a"}],
    "tuple key": [{(1, 2): "a"}],
    "NaN value": [{"a": float("nan")}],
    "inf value": [{"a": float("inf")}],
    "set value": [{"a": {1}}],
    "bytes value": [{"a": b"x"}],
    "object value": [{"a": object()}],
    "lone surrogate key": [{"\ud800": 1}],
    "lone surrogate value": [{"a": "bad \ud800"}],
    "nested 40 deep": [deep(40)],
    "nested 2000 deep": [deep(2000)],
}

#: Filters that are not the documented MongoDB-style operators on fields.
BAD_FILTERS: dict[str, Any] = {
    "a string": "i = 1",
    "a number": 5,
    "a list": [{"i": 1}],
    "unknown top operator": {"$bogus": 1},
    "unknown field operator": {"i": {"$bogus": 1}},
    "$in of a number": {"i": {"$in": 5}},
    "$and of a string": {"$and": "x"},
    "$and of numbers": {"$and": [1, 2]},
    "$gt of a list": {"i": {"$gt": [1]}},
    "nested 2000 deep": deep_filter(2000),
    "lone surrogate field": {"\ud800": 1},
    "lone surrogate value": {"tag": "\ud800"},
    "NaN value": {"i": float("nan")},
}

BAD_K: dict[str, Any] = {
    "0": 0,
    "-1": -1,
    "1.5": 1.5,
    "True": True,
    "'10'": "10",
    "10**6": 10**6,
    "None": None,
    "2**64": 2**64,
    "NaN": float("nan"),
}


# -- in-process API ------------------------------------------------------------------------------
def api_cases(root: Path) -> list[Case]:
    c_path, s_path = root / "c", root / "s"
    col, scol = slimvec.open(c_path), slimvec.open(s_path)
    cases: list[Case] = []

    def case(name: str, fn: Callable[[], Any], target: Path | None = c_path, **kw: Any) -> None:
        cases.append(Case("api", name, fn, target, **kw))

    for name, v in BAD_VECTORS.items():
        case(f"add(vectors={name})", lambda v=v: col.add(v))
        case(f"upsert(vectors={name})", lambda v=v: col.upsert(v, ids=[100]))
        if name not in ("0 rows",):  # an empty batch of queries is refused too, see below
            case(f"search(queries={name})", lambda v=v: col.search(v, k=3))
    case("search(queries=0 rows)", lambda: col.search(np.zeros((0, DIM), np.float32), k=3))
    for name, ids in BAD_IDS.items():
        case(f"add(ids={name})", lambda ids=ids: col.add(ONE, ids=ids))
        case(f"upsert(ids={name})", lambda ids=ids: col.upsert(ONE, ids=ids))
    case("add(ids=existing 0)", lambda: col.add(ONE, ids=[0]))
    case("add(ids=repeated in batch)", lambda: col.add(np.ones((2, DIM)), ids=[50, 50]))
    case("upsert(ids=None)", lambda: col.upsert(ONE, ids=None))
    for name, ids in BAD_LOOKUPS.items():
        for method in ("metadata", "texts", "get", "delete"):
            case(f"{method}(ids={name})", lambda m=method, ids=ids: getattr(col, m)(ids))
    case("metadata(None)", lambda: col.metadata(None))
    case("texts(None)", lambda: col.texts(None))
    for name, md in BAD_METADATA.items():
        case(f"add(metadata={name})", lambda md=md: col.add(ONE, metadata=md))
        if name != "two for one vector":
            case(f"update_metadata([0], {name})", lambda md=md: col.update_metadata([0], md))
    case(
        "update_metadata(filter, merge=int key)",
        lambda: col.update_metadata(filter={"i": 1}, merge={1: "a"}),
    )
    case("update_metadata(unknown id 999)", lambda: col.update_metadata([999], [{"a": 1}]))
    for name, texts in {
        "lone surrogate": ["bad \ud800"],
        "an int": [1],
        "None": [None],
        "two for one vector": ["a", "b"],
        "a number": 5,
        "bytes": [b"x"],
    }.items():
        case(f"add(texts={name})", lambda t=texts: col.add(ONE, texts=t))
    for name, k in BAD_K.items():
        case(f"search(k={name})", lambda k=k: col.search(ONE, k=k))
    for name, f in BAD_FILTERS.items():
        case(f"search(filter={name})", lambda f=f: col.search(ONE, k=3, filter=f))
        case(f"count(filter={name})", lambda f=f: col.count(f))
        case(f"delete(filter={name})", lambda f=f: col.delete(filter=f))
        case(f"get(filter={name})", lambda f=f: col.get(filter=f))
    case("delete() without ids or filter", lambda: col.delete())
    case("search(nprobe=-1)", lambda: col.search(ONE, k=3, nprobe=-1))
    for name, field in {"5": 5, "empty": "", "None": None, "lone surrogate": "\ud800"}.items():
        case(f"create_index({name})", lambda f=field: col.create_index(f))
    case("search_texts without an encoder", lambda: col.search_texts("hello"))
    case("add_texts without an encoder", lambda: col.add_texts(["hello"]))
    for name, ids in {
        "int ids": [1],
        "lone surrogate": ["bad \ud800"],
        "None": [None],
        "repeated": ["x", "x"],
        "existing": ["doc-0"],
    }.items():
        n = len(ids)
        case(
            f"str-id add(ids={name})",
            lambda i=ids, n=n: scol.add(np.ones((n, DIM)), ids=i),
            target=s_path,
        )
    case("str-id metadata(ids=[1.5])", lambda: scol.metadata([1.5]), target=s_path)

    # create and open: nothing may be left behind
    fresh = iter(range(10**6))

    def creating(name: str, **options: Any) -> None:
        path = root / f"new-{next(fresh)}"
        case(f"create({name})", lambda: slimvec.create(path, **options), target=None, absent=path)

    for name, dim in {
        "0": 0,
        "-1": -1,
        "1.5": 1.5,
        "'8'": "8",
        "None": None,
        "True": True,
        "10**6": 10**6,
        "65,537": 65_537,
        "2**63": 2**63,
        "NaN": float("nan"),
        "[8]": [8],
    }.items():
        creating(f"dim={name}", dim=dim)
    for metric in ("l7", "", None, 5, "Cosine"):
        creating(f"metric={metric!r}", dim=DIM, metric=metric)
    for spec in (
        "bogus",
        "rabitq:99",
        "f32 >",
        "",
        "ivf:0 | f32",
        "pca:0",
        "mrl:70000 > f32",
        "f32*0",
        None,
        5,
        "int8*100001 > f32",
        "> f32",
    ):
        creating(f"spec={spec!r}", dim=DIM, spec=spec)
    for ids in ("float", None, 5, ""):
        creating(f"ids={ids!r}", dim=DIM, ids=ids)
    for name, keyword in {
        "bogus option": {"bogus": 1},
        "a string": "x",
        "k1=-1": {"k1": -1},
        "b=5": {"b": 5},
    }.items():
        creating(f"keyword={name}", dim=DIM, keyword=keyword)
    for name, options in {
        "pool_factor=0": {"pool_factor": 0},
        "token_code='x'": {"token_code": "x"},
        "fde bogus": {"fde": {"bogus": 1}},
        "fde r_reps=-1": {"fde": {"r_reps": -1}},
        "no dim, no encoder": {"dim": None},
    }.items():
        creating(f"multivector, {name}", **{"dim": DIM, **options, "multivector": True})
    creating("fde on a single-vector collection", dim=DIM, fde={"r_reps": 2})
    creating("encoder=5", encoder=5)
    creating("encoder=object()", encoder=object())
    (root / "plain-file").write_text("not a collection")
    (root / "empty-dir").mkdir()
    for name, path in {
        "None": None,
        "NUL": "a\0b",
        "5": 5,
        "a plain file": root / "plain-file",
        "an existing collection": c_path,
    }.items():
        case(f"create(path={name})", lambda p=path: slimvec.create(p, dim=DIM))
    for name, path in {
        "None": None,
        "NUL": "a\0b",
        "5": 5,
        "missing": root / "missing",
        "a plain file": root / "plain-file",
        "a directory without a manifest": root / "empty-dir",
    }.items():
        case(f"open({name})", lambda p=path: slimvec.open(p), absent=root / "missing")
    return cases


# -- the command line ----------------------------------------------------------------------------
def cli_cases(root: Path) -> list[Case]:
    c = root / "c"
    files = root / "cli-files"
    files.mkdir(exist_ok=True)
    np.save(files / "7dims.npy", np.ones((2, DIM - 1), np.float32))
    np.save(files / "3d.npy", np.ones((2, 1, DIM), np.float32))
    np.save(files / "nan.npy", np.full((2, DIM), np.nan, np.float32))
    np.save(files / "objects.npy", np.array([[object()] * DIM], dtype=object), allow_pickle=True)
    np.save(files / "zeros.npy", np.zeros((1, DIM), np.float32))
    (files / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    (files / "garbage.jsonl").write_text("{not json\n")
    (files / "not-object.jsonl").write_text("[1, 2, 3]\n")
    (files / "bad-vector.jsonl").write_text(json.dumps({"vector": [1] * (DIM - 1)}) + "\n")
    (files / "nan-vector.jsonl").write_text('{"vector": [NaN, 1, 1, 1, 1, 1, 1, 1]}\n')
    (files / "bad-id.jsonl").write_text(json.dumps({"id": 2**64, "vector": [1] * DIM}) + "\n")
    (files / "float-id.jsonl").write_text(json.dumps({"id": 1.5, "vector": [1] * DIM}) + "\n")
    (files / "surrogate.jsonl").write_text('{"vector": [1,1,1,1,1,1,1,1], "t": "\\ud800"}\n')
    (files / "deep.jsonl").write_text(json.dumps({"vector": [1] * DIM, "m": deep(40)}) + "\n")
    (files / "text-no-encoder.jsonl").write_text('{"text": "hello"}\n')
    (files / "notes.txt").write_text("hello\n")
    np.save(files / "q7.npy", np.ones((1, DIM - 1), np.float32))
    cases: list[Case] = []

    def case(name: str, *args: str, target: Path | None = c, absent: Path | None = None) -> None:
        argv = [SLIMVEC, *[str(a) for a in args]]

        def run() -> subprocess.CompletedProcess:
            return subprocess.run(
                argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
            )

        cases.append(Case("cli", name, run, target, absent))

    fresh = iter(range(10**6))
    for flags in (
        ["--dim", "0"],
        ["--dim", "-1"],
        ["--dim", "abc"],
        ["--dim", "1000000000"],
        ["--dim", "65537"],
        ["--dim", "8", "--metric", "l7"],
        ["--dim", "8", "--spec", "bogus"],
        ["--dim", "8", "--ids", "float"],
        [],
    ):
        path = root / f"cli-new-{next(fresh)}"
        case(
            f"create {' '.join(flags) or '(no dim)'}",
            "create",
            path,
            *flags,
            target=None,
            absent=path,
        )
    case("create over an existing collection", "create", c, "--dim", "8")
    for name in (
        "7dims.npy",
        "3d.npy",
        "nan.npy",
        "objects.npy",
        "zeros.npy",
        "garbage.npy",
        "garbage.jsonl",
        "not-object.jsonl",
        "bad-vector.jsonl",
        "nan-vector.jsonl",
        "bad-id.jsonl",
        "float-id.jsonl",
        "surrogate.jsonl",
        "deep.jsonl",
        "text-no-encoder.jsonl",
        "notes.txt",
        "missing.npy",
    ):
        case(f"add {name}", "add", c, files / name)
    for k in ("0", "-5", "abc", "1000000000"):
        case(f"search -k {k}", "search", c, "-q", files / "zeros.npy", "-k", k)
    case("search 7-dim queries", "search", c, "-q", files / "q7.npy")
    case("search --text without an encoder", "search", c, "--text", "hello")
    case("search neither query nor text", "search", c)
    for f in ("{not json", "[1]", '{"$bogus": 1}', '{"i": {"$in": 5}}', '"x"'):
        case(f"search --filter {f}", "search", c, "-q", files / "zeros.npy", "--filter", f)
        case(f"count --filter {f}", "count", c, "--filter", f)
    case("delete nothing", "delete", c)
    case("delete id 2**64", "delete", c, str(2**64))
    case("delete id abc", "delete", c, "abc")
    case("delete id 1.5", "delete", c, "1.5")
    case("get id 2**64", "get", c, str(2**64))
    for name, path in {
        "missing": root / "missing",
        "a plain file": files / "notes.txt",
        "a directory without a manifest": files,
    }.items():
        case(f"info {name}", "info", path, absent=root / "missing")
        case(f"check {name}", "check", path, absent=root / "missing")
    missing = root / "no-such-root"
    case("serve a missing directory", "serve", missing, absent=missing)
    case("serve --workers 0", "serve", root, "--workers", "0")
    case("serve 0.0.0.0 without keys", "serve", root, "--host", "0.0.0.0")
    case("serve --api-key-file missing", "serve", root, "--api-key-file", root / "nokeys.toml")
    return cases


# -- HTTP ----------------------------------------------------------------------------------------
def _json(value: Any) -> bytes:
    """JSON as a client in any language may send it: NaN literals and "\\ud800" escapes kept."""
    return json.dumps(value, ensure_ascii=True, default=repr).encode()


def _npy(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _b64(shape: Any, nbytes: int, dtype: str = "float32") -> dict:
    import base64

    return {"b64": base64.b64encode(b"\0" * nbytes).decode(), "dtype": dtype, "shape": shape}


def http_cases(root: Path, client: Any, keys: dict[str, str]) -> list[Case]:
    """Cases sent through ``client`` (``httpx.Client`` with a base URL, or Starlette's
    ``TestClient``); ``keys``: "rw", "ro" (read-only) and "only-s" (allow-listed to s)."""
    c = root / "c"
    rw = {"api-key": keys["rw"], "content-type": "application/json"}
    cases: list[Case] = []

    def send(
        name: str,
        method: str,
        url: str,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict | None = None,
        target: Path | None = c,
        absent: Path | None = None,
    ) -> None:
        content = raw if raw is not None else (None if body is None else _json(body))
        hdrs = rw if headers is None else headers

        def run() -> Any:
            return client.request(method, url, content=content, headers=hdrs)

        cases.append(Case("http", name, run, target, absent))

    points, search = "/collections/c/points", "/collections/c/search"
    one = [[1.0] * DIM]
    for name, v in BAD_VECTORS.items():
        if isinstance(v, np.ndarray) and v.dtype.kind in "OcM":
            v = v.tolist() if v.dtype.kind != "M" else v.astype(str).tolist()
        elif isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, bytes):
            v = v.decode("latin-1")
        send(f"add vectors={name}", "POST", points, {"vectors": v})
        send(f"search vectors={name}", "POST", search, {"vectors": v, "k": 3})
    for name, b64 in {
        "b64 shape 2**32 x 2**32": _b64([2**32, 2**32], 0),
        "b64 shape [2.5, 8]": _b64([2.5, 8], 80),
        "b64 shape [-1, 8]": _b64([-1, 8], 32),
        "b64 shape 'x'": _b64("x", 32),
        "b64 bytes short of shape": _b64([4, 8], 32),
        "b64 dtype int64": _b64([1, 8], 64, "int64"),
        "b64 dtype object": _b64([1, 8], 64, "object"),
        "b64 not base64": {"b64": "***", "dtype": "float32", "shape": [1, 8]},
        "b64 no shape": {"b64": "AAAA", "dtype": "float32"},
        "b64 all zeros (cosine)": _b64([1, 8], 32),
    }.items():
        send(f"add {name}", "POST", points, {"vectors": b64})
        send(f"search {name}", "POST", search, {"vectors": b64})
    npy = {**rw, "content-type": "application/x-npy"}
    for name, data in {
        "garbage": b"\x93NUMPY\x01\x00garbage",
        "7 dims": _npy(np.ones((1, DIM - 1), np.float32)),
        "3-D": _npy(np.ones((1, 1, DIM), np.float32)),
        "objects (pickle)": _npy(np.array([[object()] * DIM], dtype=object)),
        "header claims 10**12 rows": _npy(np.ones((1, DIM), np.float32)).replace(
            b"(1, 8)", b"(1000000000000, 8)"
        ),
        "NaN": _npy(np.full((1, DIM), np.nan, np.float32)),
        "empty body": b"",
    }.items():
        send(f"add .npy {name}", "POST", points, raw=data, headers=npy)
        send(f"search .npy {name}", "POST", search, raw=data, headers=npy)
    for name, ids in BAD_IDS.items():
        if isinstance(ids, np.ndarray):
            ids = ids.tolist()
        send(f"add ids={name}", "POST", points, {"vectors": one, "ids": ids})
        send(f"upsert ids={name}", "POST", points + "/upsert", {"vectors": one, "ids": ids})
    for name, ids in BAD_LOOKUPS.items():
        for route in ("get", "delete", "metadata", "texts"):
            send(f"{route} ids={name}", "POST", f"{points}/{route}", {"ids": ids})
    no_json = ("int key", "tuple key", "set value", "bytes value", "object value", "2000 deep")
    json_metadata = {k: v for k, v in BAD_METADATA.items() if not k.endswith(no_json)}
    vector = "[[" + ", ".join(["1"] * DIM) + "]]"
    deep_metadata = '{"a": ' * 2000 + "1" + "}" * 2000
    send(
        "add metadata=nested 2000 deep",
        "POST",
        points,
        raw=f'{{"vectors": {vector}, "metadata": [{deep_metadata}]}}'.encode(),
    )
    deep_and = '{"$and": [' * 2000 + '{"i": 1}' + "]}" * 2000
    send(
        "search filter=nested 2000 deep",
        "POST",
        search,
        raw=f'{{"vectors": {vector}, "filter": {deep_and}}}'.encode(),
    )
    send(
        "delete filter=nested 2000 deep",
        "POST",
        points + "/delete",
        raw=f'{{"filter": {deep_and}}}'.encode(),
    )
    for name, md in json_metadata.items():
        send(f"add metadata={name}", "POST", points, {"vectors": one, "metadata": md})
        if isinstance(md, list) and len(md) == 1:
            send(
                f"update_metadata {name}",
                "POST",
                points + "/update_metadata",
                {"ids": [0], "metadata": md},
            )
    for name, k in BAD_K.items():
        send(f"search k={name}", "POST", search, {"vectors": one, "k": k})
    for name, f in BAD_FILTERS.items():
        if name.endswith("2000 deep"):
            continue  # sent as raw JSON above
        send(f"search filter={name}", "POST", search, {"vectors": one, "filter": f})
        send(f"count filter={name}", "POST", "/collections/c/count", {"filter": f})
        send(f"delete filter={name}", "POST", points + "/delete", {"filter": f})
    send("texts lone surrogate", "POST", points, {"vectors": one, "texts": ["bad \ud800"]})
    send(
        "search_texts without an encoder",
        "POST",
        "/collections/c/search_texts",
        {"texts": ["hello"]},
    )
    send("add_texts without an encoder", "POST", "/collections/c/texts", {"texts": ["hi"]})
    send("batch search, searches not a list", "POST", search + "/batch", {"searches": 5})
    send(
        "batch search, bad k inside",
        "POST",
        search + "/batch",
        {"searches": [{"vectors": one, "k": -1}]},
    )
    send(
        "str-id add int ids",
        "POST",
        "/collections/s/points",
        {"vectors": one, "ids": [1]},
        target=root / "s",
    )
    send(
        "str-id add surrogate id",
        "POST",
        "/collections/s/points",
        {"vectors": one, "ids": ["\ud800"]},
        target=root / "s",
    )
    # bodies and headers
    for name, raw in {
        "not JSON": b"{not json",
        "JSON nested 5,000 deep": b"[" * 5000 + b"]" * 5000,
        "a JSON array": b"[1, 2]",
        "a JSON string": b'"x"',
        "invalid UTF-8": b'{"vectors": "\xff\xfe"}',
        "NaN literal": b'{"vectors": [[NaN, 1, 1, 1, 1, 1, 1, 1]]}',
        "huge integer": b'{"vectors": [[1e999999, 1, 1, 1, 1, 1, 1, 1]]}',
        "a 5,000-digit integer id": b'{"vectors": [[1, 1, 1, 1, 1, 1, 1, 1]], "ids": ['
        + b"9" * 5000
        + b"]}",
        "unknown field": b'{"vectors": [[1, 1, 1, 1, 1, 1, 1, 1]], "bogus": 1}',
        "no vectors": b"{}",
    }.items():
        send(f"add body {name}", "POST", points, raw=raw)
    send(
        "add with text/plain",
        "POST",
        points,
        raw=b"{}",
        headers={**rw, "content-type": "text/plain"},
    )
    send("add with no content type", "POST", points, raw=b"{}", headers={"api-key": keys["rw"]})
    send(
        "add without a key",
        "POST",
        points,
        {"vectors": one},
        headers={"content-type": "application/json"},
    )
    send(
        "add with a wrong key",
        "POST",
        points,
        {"vectors": one},
        headers={**rw, "api-key": "sv_nope"},
    )
    send(
        "add with a read-only key",
        "POST",
        points,
        {"vectors": one},
        headers={**rw, "api-key": keys["ro"]},
    )
    send(
        "search outside the key's allow-list",
        "POST",
        search,
        {"vectors": one},
        headers={**rw, "api-key": keys["only-s"]},
    )
    send("metrics without a key", "GET", "/metrics", headers={})
    send("bearer with no token", "GET", "/collections", headers={"authorization": "Bearer"})
    # names
    (root / "plain.txt").write_text("a plain file in the served directory")
    for name, url in {
        "'..'": "/collections/../points",
        "%2e%2e": "/collections/%2e%2e/count",
        "encoded slash": "/collections/a%2Fb/count",
        "NUL": "/collections/a%00b/count",
        "a plain file": "/collections/plain.txt/count",
        "300 characters": "/collections/" + "a" * 300,
        "hidden": "/collections/.hidden",
        "unicode": "/collections/%F0%9F%98%80",
        "missing": "/collections/nope",
        "lone surrogate escape": "/collections/%ED%A0%80/count",
    }.items():
        send(f"GET name {name}", "GET", url)
    send("drop a missing collection", "DELETE", "/collections/nope")
    send("compact a missing collection", "POST", "/collections/nope/compact")
    send("method not allowed", "PATCH", "/collections/c")
    send("unknown route", "GET", "/nothing/here")
    # create options: nothing may be created
    for i, (name, options) in enumerate(
        {
            "dim=0": {"dim": 0},
            "dim=10**9": {"dim": 10**9},
            "dim=65,537": {"dim": 65537},
            "dim=1.5": {"dim": 1.5},
            "dim='8'": {"dim": "8"},
            "no dim": {},
            "dim=true": {"dim": True},
            "metric l7": {"dim": DIM, "metric": "l7"},
            "spec bogus": {"dim": DIM, "spec": "bogus"},
            "spec *0": {"dim": DIM, "spec": "f32*0"},
            "ids float": {"dim": DIM, "ids": "float"},
            "keyword bogus": {"dim": DIM, "keyword": {"bogus": 1}},
            "encoder /etc/passwd": {"encoder": "/etc/passwd"},
            "encoder not offered": {"encoder": "all-MiniLM-L6-v2"},
            "encoder a collection's path": {"encoder": "./c"},
            "encoder 5": {"encoder": 5},
            "layers without encoder": {"dim": DIM, "layers": 2},
            "path option": {"dim": DIM, "path": "/tmp/elsewhere"},
            "unknown option": {"dim": DIM, "bogus": 1},
            "multivector pool_factor 0": {"dim": DIM, "multivector": True, "pool_factor": 0},
            "a list body": [DIM],
        }.items()
    ):
        send(
            f"create {name}",
            "PUT",
            f"/collections/new-{i}",
            options,
            target=None,
            absent=root / f"new-{i}",
        )
    send("create an existing collection", "PUT", "/collections/c", {"dim": DIM})
    return cases


@contextmanager
def served(root: Path, key_file: Path) -> Iterator[str]:
    """A real ``slimvec serve`` process over ``root``; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [
        SLIMVEC,
        "serve",
        str(root),
        "--port",
        str(port),
        "--api-key-file",
        str(key_file),
        "--models",
        "fuzz-model",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        for _ in range(600):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("slimvec serve did not answer /healthz within 60 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def make_keys(root: Path) -> tuple[Path, dict[str, str]]:
    from slimvec.server.auth import new_key

    key_file = root.parent / "keys.toml"
    keys = {
        "rw": new_key(key_file, "rw", role="read-write"),
        "ro": new_key(key_file, "ro"),
        "only-s": new_key(key_file, "only-s", role="read-write", collections=["s"]),
    }
    return key_file, keys


# -- report --------------------------------------------------------------------------------------
def table(results: list[Result]) -> str:
    counts = Counter((r.surface, r.outcome) for r in results)
    surfaces = [s for s in SURFACES if any(r.surface == s for r in results)]
    lines = [
        "| surface | cases | " + " | ".join(OUTCOMES) + " |",
        "|---|---:|" + "---:|" * len(OUTCOMES),
    ]
    for surface in [*surfaces, "total"]:
        row = [r for r in results if surface in (r.surface, "total")]
        cells = [
            str(
                sum(counts[(s, o)] for s in surfaces)
                if surface == "total"
                else counts[(surface, o)]
            )
            for o in OUTCOMES
        ]
        lines.append(f"| {surface} | {len(row)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--surfaces", default=",".join(SURFACES))
    args = parser.parse_args()
    surfaces = args.surfaces.split(",")
    work = Path(tempfile.mkdtemp(prefix="slimvec-fuzz-"))
    root = work / "root"
    root.mkdir()
    results: list[Result] = []
    try:
        make_collections(root)
        if "api" in surfaces:
            results += [run_case(c) for c in api_cases(root)]
        if "cli" in surfaces:
            results += [run_case(c) for c in cli_cases(root)]
        if "http" in surfaces:
            import httpx

            key_file, keys = make_keys(root)
            with served(root, key_file) as url, httpx.Client(base_url=url, timeout=60) as client:
                results += [run_case(c, root) for c in http_cases(root, client, keys)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(table(results))
    bad = [r for r in results if r.outcome != GOOD]
    print(f"\n{len(results)} bad inputs, {len(bad)} bad outcomes")
    for r in bad:
        print(f"  [{r.surface}] {r.name}: {r.outcome}: {r.detail}")
    return 1 if bad else 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
