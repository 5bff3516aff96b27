"""Measuring specs on real data: metrics, ``bench`` (grid of specs + FAISS peers), ``advise``
(cheapest spec meeting a recall target) and frontier plots.

>>> from slimvec.eval import run_bench, advise
>>> rows = run_bench(dataset, ["binary*40 > f32", "int8*4 > f32"], baselines=True)
>>> advice = advise(dataset, target_recall=0.99); advice.spec
"""

from slimvec.eval.advise import Advice, Candidate, advise
from slimvec.eval.bench import BenchRow, print_table, read_json, run_bench, write_csv, write_json
from slimvec.eval.metrics import (
    Judgements,
    mrr_at_k,
    ndcg_at_k,
    per_query_recall,
    qrels_recall_at_k,
    recall_at_k,
)
from slimvec.eval.plots import plot_frontiers

__all__ = [
    "Advice",
    "BenchRow",
    "Candidate",
    "Judgements",
    "advise",
    "mrr_at_k",
    "ndcg_at_k",
    "per_query_recall",
    "plot_frontiers",
    "print_table",
    "qrels_recall_at_k",
    "read_json",
    "recall_at_k",
    "run_bench",
    "write_csv",
    "write_json",
]
