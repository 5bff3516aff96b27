"""Model upgrade without re-indexing, measured on the Debian set with two real models.

Old and new model embeddings are precomputed in ../shared/data/debian-gemma (all-MiniLM-L6-v2,
384-d, and EmbeddingGemma-300M, 768-d; row i = the same document or query in both), and by
``benchmarks/successor_model.py`` for two more new models: MiniLM-ft (MiniLM fine-tuned on Debian
pairs outside the test set: a close successor, the everyday upgrade) and e5 (multilingual-e5-small,
another family). For each upgrade (``--pairs``, default MiniLM → Gemma / e5 / MiniLM-ft and
Gemma → MiniLM) the run measures nDCG@10 / recall@10 against the qrels of

* (a) the old model (old queries over the old index),
* (b) the new model after a full re-embed (new queries over new documents),
* (c) new-model queries through an adapter over the old index, the adapter fitted on a paired
  sample of 1%, 5% and 20% of the corpus (documents embedded by both models), for every adapter
  kind, averaged over ``--seeds`` random samples; with the adapter's own held-out report,

then mixed-space search at 50% backfill (half the corpus re-embedded, scores calibrated before
merging), relative representations (cosines to anchor documents) as a model-agnostic space, and
the embedding time saved against a full re-embed (at the models' measured speeds on 2 cores).

    .venv/bin/python benchmarks/successor_model.py       # once: makes MiniLM-ft and e5
    .venv/bin/python benchmarks/upgrade.py [--seeds 3] [--pairs MiniLM>MiniLM-ft,...]
        [--markdown /work/notes/upgrade_results.md]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # 2 shared cores: BLAS threads thrash
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slimvec.compat import RelativeRepresentation, ScoreCalibrator, probe_scores
from slimvec.compat.adapters import fit_adapter
from slimvec.compat.upgrade import BLEND_DEPTH, BLEND_OLD_WEIGHT
from slimvec.eval.metrics import Judgements, ndcg_at_k, qrels_recall_at_k
from slimvec.kernels.topk import select_top

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "debian-gemma"
SUCCESSORS = Path.home() / ".cache" / "slimvec" / "upgrade"
#: Measured encode speeds of Debian docs on these 2 cores, texts per second
#: (Gemma: ../shared/README.md; MiniLM, MiniLM-ft and e5 timed by successor_model.py).
SPEED = {"MiniLM": 116.0, "Gemma": 5.0, "MiniLM-ft": 116.0, "e5": 10.8}
#: Where each model's embeddings are: (directory, file prefix); None = the --data directory.
FILES: dict[str, tuple[Path | None, str]] = {
    "MiniLM": (None, "minilm_"),
    "Gemma": (None, ""),
    "MiniLM-ft": (SUCCESSORS / "minilm-ft", ""),
    "e5": (SUCCESSORS / "e5", ""),
}
DEFAULT_PAIRS = "MiniLM>MiniLM-ft,MiniLM>e5,MiniLM>Gemma,Gemma>MiniLM"
KINDS = ("procrustes", "linear", "scores", "mlp", "auto")
K = 10


@dataclass
class Space:
    name: str
    docs: np.ndarray
    queries: np.ndarray


def load(data: Path) -> tuple[dict[str, Space], Judgements, Callable[[np.ndarray], Judgements]]:
    """Both models' embeddings, the qrels, and a maker of qrels for a subset of query rows."""
    with open(data / "docs.jsonl") as f:
        doc_ids = [json.loads(line)["id"] for line in f]
    with open(data / "queries.jsonl") as f:
        query_ids = [json.loads(line)["id"] for line in f]
    qrels: dict[str, dict[str, int]] = {}
    with open(data / "qrels.tsv") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            qrels.setdefault(row["query_id"], {})[row["doc_id"]] = int(row["relevance"])
    spaces = {}
    for name, (where, prefix) in FILES.items():
        where = where or data
        if (where / f"{prefix}doc_emb.npy").exists():
            docs, queries = (
                np.load(where / f"{prefix}{kind}_emb.npy") for kind in ("doc", "query")
            )
            spaces[name] = Space(name, docs.astype(np.float32), queries.astype(np.float32))

    def judge_rows(rows: np.ndarray) -> Judgements:
        return Judgements.from_qrels(qrels, [query_ids[i] for i in rows], doc_ids)

    return spaces, Judgements.from_qrels(qrels, query_ids, doc_ids), judge_rows


def quality(scores: np.ndarray, judge: Judgements) -> tuple[float, float]:
    top = select_top(scores, K)[0]
    return ndcg_at_k(top, judge, K), qrels_recall_at_k(top, judge, K)


def sample_rows(n: int, frac: float, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, max(10, round(frac * n)), replace=False))


# -- experiments --------------------------------------------------------------------------------
def adapters(old: Space, new: Space, judge: Judgements, fracs, seeds: int) -> list[dict]:
    rows = []
    n = len(old.docs)
    for frac in fracs:
        for kind in KINDS:
            runs = []
            for seed in range(seeds):
                s = sample_rows(n, frac, seed)
                t0 = time.perf_counter()
                adapter, report = fit_adapter(new.docs[s], old.docs[s], kind, seed=seed)
                fit_s = time.perf_counter() - t0
                nd, rc = quality(adapter.transform(new.queries) @ old.docs.T, judge)
                held = (report.recall, report.correlation, report.mean_cosine)
                runs.append((nd, rc, *held, fit_s, report.kind))
            arr = np.array([r[:6] for r in runs])
            rows.append(
                {
                    "frac": frac,
                    "pairs": len(sample_rows(n, frac, 0)),
                    "kind": kind,
                    "ndcg": arr[:, 0].mean(),
                    "recall": arr[:, 1].mean(),
                    "recall_min": arr[:, 1].min(),
                    "heldout_recall": arr[:, 2].mean(),
                    "heldout_corr": arr[:, 3].mean(),
                    "heldout_cos": arr[:, 4].mean(),
                    "fit_s": arr[:, 5].mean(),
                    "chosen": ",".join(sorted({r[6] for r in runs})),
                }
            )
            r = rows[-1]
            print(
                f"  {frac:>4.0%} {kind:<10} nDCG {r['ndcg']:.4f} R@10 {r['recall']:.4f} "
                f"held-out R@k {r['heldout_recall']:.3f} corr {r['heldout_corr']:.3f} "
                f"cos {r['heldout_cos']:.3f} "
                f"fit {r['fit_s']:.1f}s {r['chosen']}",
                flush=True,
            )
    return rows


def merged(scores_new: np.ndarray, scores_old: np.ndarray, new_rows, old_rows, n, judge):
    """Quality of one ranking over the whole corpus: new part native, old part as given."""
    scores = np.empty((len(scores_new), n), np.float32)
    scores[:, new_rows] = scores_new
    scores[:, old_rows] = scores_old
    return quality(scores, judge)


def mixed(old: Space, new: Space, judge: Judgements, seeds: int, sample_frac: float = 0.05):
    """50% backfill: a random half of the corpus re-embedded, the other half still old.

    Each variant is scored raw and with a quantile calibrator (top 20 per probe) fitted on two
    kinds of probes: the sample's documents as queries (what begin_upgrade has; self-matches
    excluded), and the evaluated query batch scored against the sample documents (label-free:
    any query can be scored in both spaces there).
    """
    n = len(old.docs)
    results: dict[str, list[tuple[float, float]]] = {}

    def add(name: str, value: tuple[float, float]) -> None:
        results.setdefault(name, []).append(value)

    def variants(tag, own_scores, src_queries, sample_rows_, probes_src, probes_new):
        add(f"{tag}; raw scores", merged(native, own_scores, new_rows, old_rows, n, judge))
        s_ = sample_rows_
        for probe, (src, tgt) in (
            ("sample docs", probe_scores(probes_src, old.docs[s_], probes_new, new.docs[s_], True)),
            ("query batch", probe_scores(src_queries, old.docs[s_], new.queries, new.docs[s_])),
        ):
            cal = ScoreCalibrator("quantile", top=20).fit(src, tgt)
            scores = cal.transform(own_scores)
            add(
                f"{tag}; calibrated on {probe}",
                merged(native, scores, new_rows, old_rows, n, judge),
            )

    for seed in range(seeds):
        perm = np.random.default_rng(100 + seed).permutation(n)
        new_rows, old_rows = np.sort(perm[: n // 2]), np.sort(perm[n // 2 :])
        native = new.queries @ new.docs[new_rows].T
        s = sample_rows(n, sample_frac, seed)  # the upgrade's paired sample
        for fitted_on, pairs in ((f"{sample_frac:.0%} sample", s), ("backfilled 50%", new_rows)):
            adapter, _ = fit_adapter(new.docs[pairs], old.docs[pairs], "auto", seed=seed)
            q = adapter.transform(new.queries)
            tag = f"new queries, old half via adapter fitted on {fitted_on}"
            probes = adapter.transform(new.docs[s])
            variants(tag, q @ old.docs[old_rows].T, q, s, probes, new.docs[s])
            if fitted_on.endswith("sample"):  # clients still sending old-model query vectors
                reverse, _ = fit_adapter(old.docs[pairs], new.docs[pairs], "auto", seed=seed)
                q_old = reverse.transform(old.queries)
                cal = ScoreCalibrator("quantile", top=20).fit(
                    *probe_scores(
                        reverse.transform(old.docs[s]), new.docs[s], old.docs[s], old.docs[s], True
                    )
                )
                add(
                    "old-model queries: old half native, new half via reverse adapter, calibrated",
                    merged(
                        cal.transform(q_old @ new.docs[new_rows].T),
                        old.queries @ old.docs[old_rows].T,
                        new_rows,
                        old_rows,
                        n,
                        judge,
                    ),
                )
        # Both encoders still available: each half searched natively by its own model's query.
        tag = "old-model queries on old half, new-model on new half"
        variants(tag, old.queries @ old.docs[old_rows].T, old.queries, s, old.docs[s], new.docs[s])
        # ... and the new half's shortlist blended with the old model's calibrated scores (the
        # backfilled documents' old vectors are still stored): what Upgrade.search_texts does
        cal = ScoreCalibrator("quantile", top=20).fit(
            *probe_scores(old.queries, old.docs[s], new.queries, new.docs[s])
        )
        own_new = new.queries @ new.docs[new_rows].T
        old_on_new = cal.transform(old.queries @ old.docs[new_rows].T)
        shortlist = np.argsort(-own_new, axis=1)[:, : BLEND_DEPTH * K]
        blended = np.full_like(own_new, -np.inf)
        mix = own_new + BLEND_OLD_WEIGHT * (old_on_new - own_new)
        np.put_along_axis(blended, shortlist, np.take_along_axis(mix, shortlist, 1), 1)
        add(
            f"{tag}; calibrated on query batch; new half's top {BLEND_DEPTH * K} blended "
            f"with old scores (weight {BLEND_OLD_WEIGHT})",
            merged(
                blended,
                cal.transform(old.queries @ old.docs[old_rows].T),
                new_rows,
                old_rows,
                n,
                judge,
            ),
        )
    return {name: tuple(np.mean(v, axis=0)) for name, v in results.items()}


def query_pairs(old: Space, new: Space, judge_rows, seeds: int, frac: float = 0.05, n_q=200):
    """Does adding paired *queries* to the sample help? Fit on 5% docs + 200 query pairs,
    evaluate on the other 800 queries (a, b and docs-only adapters on the same 800)."""
    rows = []
    for seed in range(seeds):
        perm = np.random.default_rng(200 + seed).permutation(len(new.queries))
        fit_q, eval_q = np.sort(perm[:n_q]), np.sort(perm[n_q:])
        judge = judge_rows(eval_q)
        s = sample_rows(len(old.docs), frac, seed)
        row = {
            "a": quality(old.queries[eval_q] @ old.docs.T, judge),
            "b": quality(new.queries[eval_q] @ new.docs.T, judge),
        }
        for kind in ("procrustes", "scores"):
            with_queries = (
                np.vstack([new.docs[s], new.queries[fit_q]]),
                np.vstack([old.docs[s], old.queries[fit_q]]),
            )
            for name, (x, y) in (
                ("docs", (new.docs[s], old.docs[s])),
                ("docs+queries", with_queries),
            ):
                adapter, _ = fit_adapter(x, y, kind, seed=seed)
                row[f"{kind}/{name}"] = quality(
                    adapter.transform(new.queries[eval_q]) @ old.docs.T, judge
                )
        rows.append(row)
    return {key: tuple(np.mean([r[key] for r in rows], axis=0)) for key in rows[0]}


def relative(old: Space, new: Space, judge: Judgements, fracs) -> list[dict]:
    """Cosines to anchor documents (the paired sample) as a space both models can read."""
    rows = []
    for frac in fracs:
        s = sample_rows(len(old.docs), frac, 0)
        for center in (False, True):
            rel_old = RelativeRepresentation(old.docs[s], center=center)
            rel_new = RelativeRepresentation(new.docs[s], center=center)
            docs = rel_old.transform(old.docs)
            cross = quality(rel_new.transform(new.queries) @ docs.T, judge)
            same = quality(rel_old.transform(old.queries) @ docs.T, judge)
            rows.append(dict(frac=frac, anchors=len(s), center=center, cross=cross, same=same))
    return rows


# -- report -------------------------------------------------------------------------------------
def direction_report(old: Space, new: Space, judge, judge_rows, fracs, seeds) -> list[str]:
    n = len(old.docs)
    a = quality(old.queries @ old.docs.T, judge)
    b = quality(new.queries @ new.docs.T, judge)
    print(f"\n== old {old.name} → new {new.name}: (a) {a[1]:.4f}  (b) {b[1]:.4f}", flush=True)
    rows = adapters(old, new, judge, fracs, seeds)
    full_s = n / SPEED[new.name]
    out = [
        f"### old = {old.name} ({old.docs.shape[1]}-d), new = {new.name} ({new.docs.shape[1]}-d)",
        "",
        f"(a) old model: nDCG@10 **{a[0]:.4f}**, recall@10 **{a[1]:.4f}**  ",
        f"(b) new model, fully re-embedded: nDCG@10 **{b[0]:.4f}**, recall@10 **{b[1]:.4f}** "
        f"(re-embedding {n:,} docs at {SPEED[new.name]:g} texts/s = {full_s / 60:.1f} min)",
        "",
        "(c) new-model queries through the adapter over the old index "
        f"(mean of {seeds} random samples; 'min' = worst sample):",
        "",
        "| sample | pairs | adapter | nDCG@10 | recall@10 (min) | % of (b) R@10 | ≥ (a)? "
        "| held-out R@k / corr / cos | fit s | embed sample + fit vs full re-embed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        embed_s = r["pairs"] / SPEED[new.name] + r["fit_s"]
        kind = r["kind"] + (f" → {r['chosen']}" if r["kind"] == "auto" else "")
        out.append(
            f"| {r['frac']:.0%} | {r['pairs']} | {kind} | {r['ndcg']:.4f} | {r['recall']:.4f} "
            f"({r['recall_min']:.4f}) | {100 * r['recall'] / b[1]:.1f}% | "
            f"{'yes' if r['recall'] >= a[1] else 'no'} | {r['heldout_recall']:.3f} / "
            f"{r['heldout_corr']:.3f} / {r['heldout_cos']:.3f} | {r['fit_s']:.1f} | "
            f"{embed_s:.0f} s vs {full_s:.0f} s "
            f"({100 * (1 - embed_s / full_s):.0f}% saved) |"
        )
    ceiling = []
    for kind in ("procrustes", "linear", "scores"):
        adapter, _ = fit_adapter(new.docs, old.docs, kind)
        nd, rc = quality(adapter.transform(new.queries) @ old.docs.T, judge)
        ceiling.append(f"{kind} {nd:.4f} / {rc:.4f}")
    out += [
        "",
        f"Ceiling — adapter fitted on all {n:,} documents (i.e. after a full re-embed), "
        f"nDCG@10 / recall@10: {'; '.join(ceiling)}.",
    ]
    print("  paired queries in the sample ...", flush=True)
    qp = query_pairs(old, new, judge_rows, seeds)
    out += [
        "",
        "Adding 200 paired *queries* to the 5% sample (evaluated on the other 800 queries; "
        f"mean of {seeds} splits):",
        "",
        "| on the 800 held-out queries | nDCG@10 | recall@10 |",
        "|---|---|---|",
    ]
    labels = {"a": "(a) old model", "b": "(b) new model, re-embedded"}
    out += [f"| {labels.get(key, key)} | {v[0]:.4f} | {v[1]:.4f} |" for key, v in qp.items()]
    print("  mixed-space search at 50% backfill ...", flush=True)
    mix = mixed(old, new, judge, seeds)
    out += [
        "",
        f"Mixed-space search at 50% backfill (random half re-embedded, mean of {seeds} splits; "
        "adapters chosen by fit_adapter('auto'); calibrator = quantile matching of the top 20 "
        "scores per probe, probes = the 5% sample's documents (self-matches excluded) or the "
        "evaluated queries scored against the sample documents, which exist in both spaces):",
        "",
        "| variant | nDCG@10 | recall@10 |",
        "|---|---|---|",
        f"| (a) all old | {a[0]:.4f} | {a[1]:.4f} |",
        f"| (b) all new | {b[0]:.4f} | {b[1]:.4f} |",
    ]
    out += [f"| {name} | {v[0]:.4f} | {v[1]:.4f} |" for name, v in mix.items()]
    rel = relative(old, new, judge, fracs)
    out += [
        "",
        "Relative representations (anchors = the sample's documents; dim = number of anchors; "
        "cross = new-model queries vs old-model documents, same = old model on both sides):",
        "",
        "| anchors (dim) | centred | cross nDCG@10 | cross R@10 | same-model nDCG@10 "
        "| same-model R@10 |",
        "|---|---|---|---|---|---|",
    ]
    out += [
        f"| {r['anchors']} | {'yes' if r['center'] else 'no'} | {r['cross'][0]:.4f} | "
        f"{r['cross'][1]:.4f} | {r['same'][0]:.4f} | {r['same'][1]:.4f} |"
        for r in rel
    ]
    return [*out, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--fractions", default="0.01,0.05,0.2")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pairs", default=DEFAULT_PAIRS, help="old>new,... model pairs")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = parser.parse_args()
    if not (args.data / "doc_emb.npy").exists():
        raise SystemExit(f"no Debian embeddings under {args.data}; pass --data")
    fracs = [float(f) for f in args.fractions.split(",")]
    spaces, judge, judge_rows = load(args.data)
    t0 = time.perf_counter()
    lines = []
    for pair in args.pairs.split(","):
        old, new = pair.split(">")
        missing = [name for name in (old, new) if name not in spaces]
        if missing:
            print(f"skipping {pair}: no embeddings for {missing}; run successor_model.py first")
            continue
        lines += direction_report(spaces[old], spaces[new], judge, judge_rows, fracs, args.seeds)
    lines.append(f"Total benchmark time {time.perf_counter() - t0:.0f} s.")
    print("\n" + "\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
