"""How many documents can a d-dimensional embedding tell apart? A diagnostic, not a law.

* :mod:`slimvec.capacity.free_embedding` — the free-embedding experiment of Weller et al.
  (2025): critical n per dimension, a cubic fit, extrapolation, ``capacity_warning``.
* :mod:`slimvec.capacity.limit_data` — a LIMIT-style dataset generator (real words, offline).

``capacity_command`` is the body of ``slimvec capacity --dim D --k K [--quick]``.
"""

from __future__ import annotations

from slimvec.capacity.free_embedding import (
    PAPER_MAX_DIM,
    PAPER_SOURCE,
    QUICK,
    CapacityFit,
    FreeEmbeddingRun,
    _fmt,
    capacity_warning,
    critical_n,
    fit_capacity,
    optimise,
    solvable,
)
from slimvec.capacity.limit_data import limit_dataset, limit_large, limit_small
from slimvec.validation import check_int

# Dimensions measured by the command: quick takes ~15 s of CPU, the full run ~3-4 minutes on
# 2 shared cores (an iteration costs ~n^3 and critical n grows ~d^3, so d = 20 alone is ~6 min).
QUICK_DIMS = (4, 6, 8, 10, 12)
FULL_DIMS = (4, 6, 8, 10, 12, 14, 16)

__all__ = [
    "FULL_DIMS",
    "QUICK_DIMS",
    "CapacityFit",
    "FreeEmbeddingRun",
    "capacity_command",
    "capacity_warning",
    "corpus_verdict",
    "critical_n",
    "fit_capacity",
    "limit_dataset",
    "limit_large",
    "limit_small",
    "optimise",
    "solvable",
]


def capacity_command(
    dim: int, k: int = 2, quick: bool = False, n_docs: int | None = None
) -> CapacityFit:
    """Measure critical n at small d, fit the paper's cubic, and print a table and the
    extrapolation to ``dim`` next to the paper's published fit. Returns the fit."""
    from rich.console import Console
    from rich.table import Table

    check_int(dim, "--dim")
    console = Console()
    dims = QUICK_DIMS if quick else FULL_DIMS
    fit = fit_capacity(dims, k, quick=quick)
    paper = CapacityFit.paper()

    table = Table(title=f"Free-embedding critical n (k = {k}{', quick settings' if quick else ''})")
    table.add_column("d", justify="right")
    table.add_column("critical n (this run)", justify="right")
    table.add_column("queries C(n, k)", justify="right")
    if k == 2:
        table.add_column("paper's cubic", justify="right")
    from math import comb

    for d, n in zip(fit.dims.astype(int).tolist(), fit.critical.astype(int).tolist()):
        row = [str(d), str(n), f"{comb(n, k):,}"]
        if k == 2:
            row.append(f"{paper.predict(d):.0f}")
        table.add_row(*row)
    console.print(table)

    ext = Table(title=f"Extrapolation to d = {dim}")
    ext.add_column("fit")
    ext.add_column("critical n at d", justify="right")
    ext.add_column("90% bootstrap interval", justify="right")
    ci = fit.interval(dim)
    ext.add_row(
        f"cubic on this run (r² = {fit.r2:.3f})",
        f"{fit.predict(dim):,.0f}",
        "n/a" if ci is None else f"{ci[0]:,.0f} .. {ci[1]:,.0f}",
    )
    if k == 2:
        ext.add_row(PAPER_SOURCE, f"{paper.predict(dim):,.0f}", "not published")
    console.print(ext)
    settings = ", ".join(f"{key}={value}" for key, value in fit.settings.items())
    console.print(f"[dim]settings: {settings}[/dim]")
    if quick:
        console.print(
            f"[yellow]quick mode ({QUICK}) stops early and so underestimates critical n; run "
            f"without --quick for the paper's settings.[/yellow]"
        )
    # One reference decides the warning: the paper's fit for k = 2 (measured up to d = 45),
    # this run's for other k (the paper has none); the verdict names both when they disagree.
    reference = None if k == paper.k else fit
    warning = capacity_warning(dim, n_docs, k, fit=reference) if n_docs is not None else None
    console.print(fit.describe(dim, note=warning is None))
    if n_docs is not None:
        console.print(corpus_verdict(n_docs, dim, fit, paper if k == paper.k else None))
    if warning:
        console.print(f"[bold yellow]warning:[/bold yellow] {warning}")
    return fit


def corpus_verdict(
    n_docs: int, dim: int, fit: CapacityFit, paper: CapacityFit | None = None
) -> str:
    """Where ``n_docs`` stands against this run's estimate (its 90% interval, when it has one)
    and the paper's, in one sentence that never contradicts the warning: the warning follows
    the paper's fit when there is one, and the sentence says which estimate it follows."""
    est, ci = fit.predict(dim), fit.interval(dim)
    if ci is not None and ci[0] <= n_docs <= ci[1]:
        ours = (
            f"within this run's 90% interval ({_fmt(ci[0])} to {_fmt(ci[1])}), which cannot "
            f"settle it"
        )
    else:
        ours = f"{'above' if n_docs > est else 'below'} this run's estimate ({_fmt(est)})"
    text = f"Your {n_docs:,} documents are {ours}"
    if paper is None:
        return text + "."
    theirs = paper.predict(dim)
    side = "above" if n_docs > theirs else "below"
    agree = ours.startswith(side)
    text += f"{' and' if agree else '; they are'} {side} the paper's ({_fmt(theirs)})"
    if not agree:
        text += f": the paper's fit, measured up to d = {PAPER_MAX_DIM}, is the firmer guide"
    return text + "."
