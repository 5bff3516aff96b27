"""Frontier plots of a bench run: quality against memory and against speed.

Two panels share the quality axis: bytes per vector held in RAM (log scale, lower is better)
and QPS (log scale, higher is better). Points on the Pareto frontier of each panel (nothing is
both cheaper/faster and better) are filled, joined by a step line and labelled; the rest are
hollow and unlabelled, so the plot stays readable with many configurations. The rows of an
``ivf:N`` spec's nprobe sweep are also joined into one recall/QPS curve on the speed panel,
each point marked with its nprobe.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slimvec.errors import InvalidInputError
from slimvec.eval.bench import BenchRow, pareto_mask

QUALITY_LABELS = {
    "recall@1": "recall@1 vs exact float32",
    "recall@10": "recall@10 vs exact float32",
    "recall@100": "recall@100 vs exact float32",
    "ndcg@10": "nDCG@10 (qrels)",
    "mrr@10": "MRR@10 (qrels)",
}
LOGIT_CLIP = 1e-4
QUALITY_TICKS = (0.1, 0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999)
ENGINE_STYLE = {"slimvec": ("tab:blue", "o"), "faiss": ("tab:orange", "s")}


def plot_frontiers(
    rows: Sequence[BenchRow],
    path: str | Path,
    quality: str = "recall@10",
    title: str | None = None,
) -> Path:
    """Write a two-panel PNG (quality vs RAM bytes/vector, quality vs QPS) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    points = [(r, r.quality(quality)) for r in rows]
    points = [(r, q) for r, q in points if q is not None]
    if not points:
        raise InvalidInputError(
            f"no row has {quality!r}; measured: recall@K for the bench k values, and "
            f"ndcg@10/mrr@10 only when the dataset has qrels"
        )
    names = [r.name for r, _ in points]
    engines = [r.engine for r, _ in points]
    qual = np.array([q for _, q in points], dtype=np.float64)
    ram = np.array([r.ram_bytes_per_vector for r, _ in points], dtype=np.float64)
    qps = np.array([r.qps for r, _ in points], dtype=np.float64)
    # Good configurations crowd just below 1.0: a logit axis spreads 0.9 / 0.99 / 0.999 evenly.
    # Exact 1.0 (and 0.0) cannot be drawn on it and are clipped to the plot's edge.
    shown = np.clip(qual, LOGIT_CLIP, 1 - LOGIT_CLIP)

    fig, axes = plt.subplots(1, 2, figsize=(15, 7), sharey=True)
    panels = (
        (axes[0], ram, ram, "RAM bytes per vector (log)", "memory"),
        (axes[1], qps, -qps, "queries per second, batch 100 (log)", "speed"),
    )
    for ax, x, cost, xlabel, what in panels:
        front = pareto_mask(cost, qual)
        for engine, (color, marker) in ENGINE_STYLE.items():
            mine = np.array([e == engine for e in engines])
            if not mine.any():
                continue
            ax.scatter(
                x[mine & ~front],
                shown[mine & ~front],
                s=36,
                marker=marker,
                facecolors="none",
                edgecolors=color,
                alpha=0.6,
                linewidths=1.2,
                label=f"{engine}" if ax is axes[0] else None,
            )
            ax.scatter(
                x[mine & front],
                shown[mine & front],
                s=70,
                marker=marker,
                color=color,
                zorder=3,
                label=f"{engine}, Pareto-optimal" if ax is axes[0] else None,
            )
        order = np.argsort(cost[front])
        ax.plot(x[front][order], shown[front][order], color="grey", lw=1, ls="--", zorder=1)
        labelled = np.flatnonzero(front)
        unit = "B/vec" if what == "memory" else "QPS"
        _label(
            ax,
            [
                (f"{names[i]}  ({qual[i]:.3f}, {x[i]:,.0f} {unit})", x[i], shown[i])
                for i in labelled
            ],
            what,
        )
        ax.set_xscale("log")
        ax.set_yscale("logit")
        ax.yaxis.set_major_locator(FixedLocator(QUALITY_TICKS))
        ax.yaxis.set_major_formatter(FuncFormatter(_tick))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_xlabel(xlabel)
        ax.grid(True, which="major", alpha=0.3)
        ax.set_title(f"quality vs {what}", fontsize=11)
    _ivf_curves(axes[1], [r for r, _ in points], shown)
    axes[0].set_ylabel(f"{QUALITY_LABELS.get(quality, quality)} (logit scale; 1.0 at the top)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.955),
        ncol=len(labels),
        fontsize=9,
        frameon=False,
    )
    first = points[0][0]
    subtitle = (
        f"{first.dataset}: {first.n_docs:,} docs x {first.dim} dims, {first.n_queries:,} queries"
    )
    fig.suptitle(title or subtitle, fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _ivf_curves(ax, rows: Sequence[BenchRow], shown: np.ndarray) -> None:
    """One line per ``ivf:N`` spec through its nprobe sweep (quality vs QPS), nprobe marked."""
    curves: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        if r.extra.get("spec") and r.extra.get("nprobe") is not None:
            curves.setdefault(r.extra["spec"], []).append(i)
    for n, (spec, members) in enumerate(curves.items()):
        members.sort(key=lambda i: rows[i].extra["nprobe"])
        qps = [rows[i].qps for i in members]
        ax.plot(
            qps,
            shown[members],
            color=f"C{(n + 2) % 10}",
            lw=1.4,
            marker=".",
            zorder=2,
            label=f"{spec}, nprobe sweep",
        )
        for i, x in zip(members, qps):
            ax.annotate(
                str(rows[i].extra["nprobe"]),
                (x, shown[i]),
                textcoords="offset points",
                xytext=(-4, -11),
                fontsize=7,
                color=f"C{(n + 2) % 10}",
            )
    if curves:
        ax.legend(loc="lower left", fontsize=8, frameon=False)


def _tick(value: float, _pos: int) -> str:
    return "1.0" if value >= 1 - LOGIT_CLIP else f"{value:g}"


def _label(ax, items: list[tuple[str, float, float]], kind: str) -> None:
    """Number the points left to right and list the numbers under the panel: names of specs
    are long and good ones crowd together, so a key stays readable where labels would not."""
    items = sorted(items, key=lambda item: (item[1], -item[2]))
    for n, (_, x, y) in enumerate(items, 1):
        ax.annotate(
            str(n),
            (x, y),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=9,
            fontweight="bold",
            bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7},
        )
    key = "\n".join(f"{n}  {text}" for n, (text, _, _) in enumerate(items, 1))
    ax.text(
        0.0,
        -0.13,
        f"Pareto-optimal for {kind}:\n{key}",
        transform=ax.transAxes,
        va="top",
        ha="left",
        fontsize=8.5,
        family="monospace",
    )


def plot_recall(
    history: dict[str, list[list[float]]], report: dict[str, Any], path: str | Path
) -> Path:
    """Write a PNG of a collection's live recall over time (``slimvec quality --plot``): per
    plan kind the estimate with its 95 % interval as a band, the target as a dashed line and
    each adjustment of the speed knobs as a vertical tick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        raise InvalidInputError(
            "no recall measured yet: searches are sampled as they run (1 % by default); "
            "search the collection, then plot again"
        )
    fig, ax = plt.subplots(figsize=(8, 4.2))
    start = min(points[0][0] for points in history.values())
    for kind, points in sorted(history.items()):
        t, mean, low, high = (np.array(column) for column in zip(*points))
        minutes = (t - start) / 60
        (line,) = ax.plot(minutes, mean, label=f"{kind} recall@k", lw=1.6)
        ax.fill_between(minutes, low, high, color=line.get_color(), alpha=0.2, lw=0)
    if report.get("target_recall") is not None:
        ax.axhline(report["target_recall"], color="tab:red", ls="--", lw=1, label="target")
    for i, adjustment in enumerate(report.get("adjustments", [])):
        ax.axvline(
            (adjustment["time"] - start) / 60, color="grey", lw=0.8, alpha=0.6,
            label="adjustment" if i == 0 else None,
        )  # fmt: skip
    ax.set_xlabel("minutes since the first measurement")
    ax.set_ylabel("recall@k (estimate, 95 % interval)")
    ax.set_title("live recall, measured on sampled searches")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
