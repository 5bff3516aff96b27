"""Where metadata filters are evaluated (issue 13): three storage options at 1M rows, one run.

    .venv/bin/python benchmarks/filter_storage.py [--n 1000000]

Each option turns a condition into a boolean allow-mask over all rows (what the funnel's first
pass takes). Metadata per row: ``package`` (one of 10,000 strings, Zipf-like), ``year``
(1990-2025), ``tags`` (a list of 1-3 of 50 strings). Options:

- ``columns``: slimvec's ``MetadataColumns`` (typed numpy columns; strings dictionary-coded),
  scanned, and with ``create_index`` (sorted permutation, cost follows the matches);
- ``sqlite``: the metadata JSON in SQLite (what slimvec's MetaStore holds) with expression
  indexes on ``json_extract``, rowids fetched into the mask;
- ``roaring``: one pyroaring bitmap per keyword value / per year (skipped if not installed).

Prints milliseconds per condition (best of 7: the shared CPU's load adds noise, never speed)
and build seconds.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from slimvec.search.columns import MetadataColumns
from slimvec.search.filters import parse_filter

CONDITIONS = {
    "package == (top value, ~9%)": {"package": "pkg0"},
    "package == (rare value, ~0.01%)": {"package": "pkg500"},
    "year >= 2020 (~17%)": {"year": {"$gte": 2020}},
    "1995 <= year < 1996 (~3%)": {"year": {"$gte": 1995, "$lt": 1996}},
    "tags has t7 (list, ~4%)": {"tags": "t7"},
    "package in 3 values": {"package": {"$in": ["pkg1", "pkg2", "pkg3"]}},
}


def make_metadata(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    ranks = np.minimum(rng.zipf(1.3, n) - 1, 9999)
    years = rng.integers(1990, 2026, n)
    ntags = rng.integers(1, 4, n)
    tags = rng.integers(0, 50, (n, 3))
    return [
        {
            "package": f"pkg{ranks[i]}",
            "year": int(years[i]),
            "tags": [f"t{t}" for t in tags[i, : ntags[i]]],
        }
        for i in range(n)
    ]


def best_ms(fn, repeat: int = 7) -> tuple[float, np.ndarray]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(1000 * (time.perf_counter() - start))
    return min(times), out


def sqlite_option(metas: list[dict], directory: Path):
    db = sqlite3.connect(directory / "meta.sqlite")
    db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, meta TEXT)")
    db.executemany(
        "INSERT INTO items VALUES (?, ?)", ((i, json.dumps(m)) for i, m in enumerate(metas))
    )
    db.execute("CREATE INDEX pkg ON items (json_extract(meta, '$.package'))")
    db.execute("CREATE INDEX yr ON items (json_extract(meta, '$.year'))")
    db.commit()
    n = len(metas)

    def run(sql: str, args: tuple) -> np.ndarray:
        rows = np.fromiter((r for (r,) in db.execute(sql, args)), np.int64)
        mask = np.zeros(n, bool)
        mask[rows] = True
        return mask

    pkg = "SELECT id FROM items WHERE json_extract(meta, '$.package') = ?"
    queries = {
        "package == (top value, ~9%)": (pkg, ("pkg0",)),
        "package == (rare value, ~0.01%)": (pkg, ("pkg500",)),
        "year >= 2020 (~17%)": (
            "SELECT id FROM items WHERE json_extract(meta, '$.year') >= ?",
            (2020,),
        ),
        "1995 <= year < 1996 (~3%)": (
            "SELECT id FROM items WHERE json_extract(meta, '$.year') >= ? "
            "AND json_extract(meta, '$.year') < ?",
            (1995, 1996),
        ),
        "tags has t7 (list, ~4%)": (
            "SELECT id FROM items WHERE EXISTS (SELECT 1 FROM json_each(meta, '$.tags') "
            "WHERE value = ?)",
            ("t7",),
        ),
        "package in 3 values": (
            "SELECT id FROM items WHERE json_extract(meta, '$.package') IN (?, ?, ?)",
            ("pkg1", "pkg2", "pkg3"),
        ),
    }
    return {name: (lambda q=q: run(*q)) for name, q in queries.items()}


def roaring_option(metas: list[dict]):
    from pyroaring import BitMap

    n = len(metas)
    by_value: dict[tuple[str, object], list[int]] = {}
    for i, m in enumerate(metas):
        by_value.setdefault(("package", m["package"]), []).append(i)
        by_value.setdefault(("year", m["year"]), []).append(i)
        for t in m["tags"]:
            by_value.setdefault(("tags", t), []).append(i)
    maps = {key: BitMap(rows) for key, rows in by_value.items()}
    empty = BitMap()

    def mask(bm) -> np.ndarray:
        out = np.zeros(n, bool)
        out[np.frombuffer(bm.to_array(), np.uint32)] = True
        return out

    def union(keys):
        return BitMap.union(*(maps.get(k, empty) for k in keys))

    return {
        "package == (top value, ~9%)": lambda: mask(maps[("package", "pkg0")]),
        "package == (rare value, ~0.01%)": lambda: mask(maps.get(("package", "pkg500"), empty)),
        "year >= 2020 (~17%)": lambda: mask(union([("year", y) for y in range(2020, 2026)])),
        "1995 <= year < 1996 (~3%)": lambda: mask(maps[("year", 1995)]),
        "tags has t7 (list, ~4%)": lambda: mask(maps[("tags", "t7")]),
        "package in 3 values": lambda: mask(union([("package", f"pkg{i}") for i in (1, 2, 3)])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args()
    n = args.n
    metas = make_metadata(n)
    options: dict[str, dict] = {}
    build: dict[str, float] = {}

    start = time.perf_counter()
    columns = MetadataColumns.from_metadata(np.arange(n), metas)
    build["columns"] = time.perf_counter() - start
    trees = {name: parse_filter(f) for name, f in CONDITIONS.items()}
    options["columns"] = {name: (lambda t=t: columns.mask(t, n)) for name, t in trees.items()}
    indexed = MetadataColumns.from_metadata(np.arange(n), metas)
    start = time.perf_counter()
    for name in ("package", "year", "tags"):
        indexed.create_index(name)
    build["columns+index"] = build["columns"] + time.perf_counter() - start
    options["columns+index"] = {name: (lambda t=t: indexed.mask(t, n)) for name, t in trees.items()}

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        options["sqlite"] = sqlite_option(metas, Path(tmp))
        build["sqlite"] = time.perf_counter() - start
        try:
            start = time.perf_counter()
            options["roaring"] = roaring_option(metas)
            build["roaring"] = time.perf_counter() - start
        except ImportError:
            print("pyroaring is not installed: roaring bitmaps not measured")

        reference = {name: fn() for name, fn in options["columns"].items()}
        import os

        print(f"n={n:,}; load average {os.getloadavg()[0]:.2f}; ms per condition -> mask")
        names = list(options)
        print(f"{'condition':34s} {'matches':>9s} " + " ".join(f"{o:>14s}" for o in names))
        for cond in CONDITIONS:
            cells = []
            for option in names:
                ms, mask = best_ms(options[option][cond])
                assert (mask == reference[cond]).all(), (option, cond)
                cells.append(f"{ms:14.2f}")
            print(f"{cond:34s} {int(reference[cond].sum()):9,d} " + " ".join(cells))
        print(f"{'build (s)':34s} {'':9s} " + " ".join(f"{build[o]:14.1f}" for o in names))


if __name__ == "__main__":
    main()
