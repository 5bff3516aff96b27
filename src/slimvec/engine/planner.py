"""Which plan answers an unfiltered search: exact BLAS over the float32 originals, or the
funnel (a first pass over compact codes, flat or through IVF lists, then rescoring).

Compressed codes pay off only past a size: the funnel has a fixed cost per query (preparing
the query's tables, gathering and rescoring its shortlist) that exact search does not, and
exact search's matrix product is fast on small sets. So the plan is priced from the live row
count, the number of queries and the dimension, and the cheaper one runs; recall can only
gain (exact is exact). The prices are nanoseconds measured on the project's 2-core machines
(``benchmarks/planner.py`` measures both plans and FAISS's ``IndexFlatIP`` in one run and
prints the crossover); their ratios, not their absolute values, decide.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Costs:
    """Nanoseconds per unit of work (see the module docstring)."""

    #: exact, several queries: one multiply-add of the (queries x rows x dim) product, with
    #: the top-k selection of its scores
    exact_mac: float = 0.065
    #: exact, one query: streaming one byte of the float32 originals (memory-bound)
    exact_byte: float = 0.037
    #: funnel: fixed cost per query (query tables, shortlist gather and rescoring)
    funnel_query: float = 600_000.0
    #: funnel: first pass, per query and scanned row per code byte (one query: per row read)
    scan_byte_batch: float = 0.045
    scan_byte_single: float = 0.15


COSTS = Costs()


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
    """Exact search: the product is compute-bound for batches, memory-bound for one query."""
    costs = COSTS
    return max(queries * rows * dim * costs.exact_mac, rows * dim * 4 * costs.exact_byte)


def funnel_ns(queries: int, rows: int, code_bytes: float, scanned: float = 1.0) -> float:
    """The funnel over ``rows`` live rows of ``code_bytes`` first-stage bytes, of which the
    first pass reads the fraction ``scanned`` (1 for a flat scan, nprobe / nlist for IVF)."""
    costs = COSTS
    per_byte = costs.scan_byte_single if queries == 1 else costs.scan_byte_batch
    scan = queries * rows * scanned * code_bytes * per_byte
    return queries * costs.funnel_query + scan


def choose(queries: int, rows: int, dim: int, code_bytes: float, scanned: float = 1.0) -> Plan:
    """The cheaper plan for ``queries`` queries over ``rows`` live rows."""
    exact = exact_ns(queries, rows, dim) / 1e6
    funnel = funnel_ns(queries, rows, code_bytes, scanned) / 1e6
    if exact <= funnel:
        why = f"{rows:,} rows x {queries} queries: exact search costs less than the funnel"
        return Plan("exact", why, round(exact, 3), round(funnel, 3))
    why = f"{rows:,} rows x {queries} queries: the funnel costs less than exact search"
    return Plan("funnel", why, round(exact, 3), round(funnel, 3))
