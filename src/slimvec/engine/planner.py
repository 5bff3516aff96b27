"""Which plan answers an unfiltered search: exact BLAS over the float32 originals, or the
funnel (a first pass over compact codes, flat or through IVF lists, then rescoring).

Compressed codes pay off only past a size: the funnel has a fixed cost per query (preparing
the query's tables, gathering and rescoring its shortlist) that exact search does not, and
exact search's matrix product is fast on small sets. So the plan is priced from the live row
count, the number of queries and the dimension, and the cheaper one runs; recall can only
gain (exact is exact). The prices are nanoseconds measured on the project's 2-core machines
(``benchmarks/planner.py`` measures both plans and FAISS's ``IndexFlatIP`` in one run and
prints the crossover; ``benchmarks/flat_scan.py --fit`` measures the flat table scan's and the
funnel's fixed costs); their ratios, not their absolute values, decide. A flat first pass is
priced by the kernel that runs it: the 4-bit table scan once every segment carries its layout
(``kernels.flatscan``), else the code scan of the first stage's codec.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Costs:
    """Nanoseconds per unit of work, fitted to ``benchmarks/planner.py`` on the project's
    2-core machine (384 and 768 dims, 1k-200k rows, 1 and 200 queries; BENCHMARKS.md "The
    planner after compiled top-k and query rotation", 2026-12-06, load 1.3 at the start)."""

    #: exact: selecting the top k among the scores, per query x row (``best_columns``: one
    #: comparison for most scores; it was 12 with ``np.argpartition``)
    select: float = 1.0
    #: exact, several queries: one multiply-add of the (queries x rows x dim) product
    #: (200 queries: 0.015-0.019 from 30k rows up)
    exact_mac: float = 0.017
    #: exact, one query: reading one byte of the float32 originals (memory-bound; 0.042-0.053
    #: from 30k x 384 up) or, while they fit in the last-level cache, ~0.02
    exact_byte: float = 0.045
    exact_byte_cached: float = 0.02
    cached_bytes: int = 24 << 20
    #: funnel: fixed cost per query (tables, shortlist gather and rescoring): base + per dim
    #: (the intercepts of the batch rows: 0.41 ms a query at 384 dims, 0.55 at 768)
    funnel_query: float = 270_000.0
    funnel_query_dim: float = 360.0
    #: funnel, several queries: first pass per query x row: base + per code byte
    scan_row: float = 6.0
    scan_byte_batch: float = 0.04
    #: funnel, one query: first pass per row per code byte (a single query does not reuse
    #: a code row once read: it is memory-bound once the codes outgrow the caches)
    scan_byte_single: float = 0.6
    #: funnel through the flat table scan (``kernels.flatscan``), per row (x query) per
    #: bit-plane byte (96 at 384-d 2-bit): one query, ~0.6 ms for 200k rows on two threads
    #: plus the memory-bound share at 1M (4-5 ms); batches of 200, the slopes of the batch
    #: rows from 30k to 200k rows (0.019-0.028).
    table_byte_single: float = 0.04
    table_byte_batch: float = 0.025
    #: funnel, one query: what a call costs beyond a batch's per-query share (0.68 ms for
    #: one query over 30k x 384, of which ~0.41 is the per-query share and ~0.12 the scan)
    single_call: float = 150_000.0


COSTS = Costs()
#: Inside ``funnel_only()`` (process-wide): the planner never swaps in exact search.
_FUNNEL_ONLY = 0


@contextmanager
def funnel_only() -> Iterator[None]:
    """Searches inside always run the spec's funnel: what measuring a spec needs (``slimvec
    bench`` / ``advise`` report a spec's own recall and speed, which is what it delivers once
    the collection outgrows the exact plan). Process-wide; meant for measurement tools."""
    global _FUNNEL_ONLY
    _FUNNEL_ONLY += 1
    try:
        yield
    finally:
        _FUNNEL_ONLY -= 1


@dataclass(frozen=True)
class Plan:
    kind: str  # "exact" | "funnel"
    why: str
    exact_ms: float
    funnel_ms: float

    def explain(self) -> dict[str, object]:
        return {
            "plan": "exact-scan" if self.kind == "exact" else "funnel",
            "why": self.why,
            "estimated_ms": {"exact": self.exact_ms, "funnel": self.funnel_ms},
        }


def exact_ns(queries: int, rows: int, dim: int) -> float:
    """Exact search: the product is compute-bound for batches, memory-bound for one query;
    then the top-k selection over every score."""
    costs = COSTS
    nbytes = rows * dim * 4
    per_byte = costs.exact_byte_cached if nbytes <= costs.cached_bytes else costs.exact_byte
    product = max(queries * rows * dim * costs.exact_mac, nbytes * per_byte)
    return product + queries * rows * costs.select


def funnel_ns(
    queries: int,
    rows: int,
    dim: int,
    code_bytes: float,
    scanned: float = 1.0,
    table_bytes: float = 0.0,
) -> float:
    """The funnel over ``rows`` live rows of ``code_bytes`` first-stage bytes, of which the
    first pass reads the fraction ``scanned`` (1 for a flat scan, nprobe / nlist for IVF);
    ``table_bytes``: the bit-plane bytes per row a flat table scan reads instead (0: none)."""
    costs = COSTS
    read = rows * scanned
    if table_bytes:
        per_byte = costs.table_byte_single if queries == 1 else costs.table_byte_batch
        scan = queries * read * table_bytes * per_byte
    elif queries == 1:
        scan = read * code_bytes * costs.scan_byte_single
    else:
        scan = queries * read * (costs.scan_row + code_bytes * costs.scan_byte_batch)
    fixed = queries * (costs.funnel_query + dim * costs.funnel_query_dim)
    return fixed + scan + (costs.single_call if queries == 1 else 0.0)


def choose(
    queries: int,
    rows: int,
    dim: int,
    code_bytes: float,
    scanned: float = 1.0,
    table_bytes: float = 0.0,
) -> Plan:
    """The cheaper plan for ``queries`` queries over ``rows`` live rows (``funnel_ns``)."""
    exact = exact_ns(queries, rows, dim) / 1e6
    funnel = funnel_ns(queries, rows, dim, code_bytes, scanned, table_bytes) / 1e6
    if _FUNNEL_ONLY:
        return Plan(
            "funnel", "measuring the spec (planner.funnel_only)", round(exact, 3), round(funnel, 3)
        )
    if exact <= funnel:
        why = f"{rows:,} rows x {queries} queries: exact search costs less than the funnel"
        return Plan("exact", why, round(exact, 3), round(funnel, 3))
    why = f"{rows:,} rows x {queries} queries: the funnel costs less than exact search"
    return Plan("funnel", why, round(exact, 3), round(funnel, 3))
