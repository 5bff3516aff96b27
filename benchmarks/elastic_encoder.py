"""Elastic (2D Matryoshka) encoders: nDCG@10 and encoding speed over a (layers x dims) grid.

all-MiniLM-L6-v2 cut to its first L transformer layers and first D dimensions, as shipped
("plain") and after a 2D-Matryoshka fine-tune ("2D", ``train_2d``): in-batch-negatives
(MultipleNegativesRankingLoss) at every depth in ``LAYERS`` x every dims prefix in ``DIMS``
from one forward pass, plus a distillation of the frozen original model's in-batch score
distribution into every point, over Debian (synopsis, description) pairs of packages *outside*
the shared evaluation set (the pair selection of ``successor_model.py``), for one epoch or
``--train-minutes``. The model is cached in ``~/.cache/slimvec/elastic/models/``
(``minilm-debian-2d-v2``; delete it to retrain; ``--also v1=PATH`` adds another model's
quality to the table, e.g. the earlier 33-step ``Matryoshka2dLoss`` model ``minilm-debian-2d``).

Evaluation: the shared Debian set (../shared/data/debian-gemma): its first ``--queries``
synopsis queries, their relevant long descriptions plus random others up to ``--docs``
documents. Quality comes from one forward pass per model (every depth's mean-pooled hidden
state, checked against ``ElasticEncoder``) and is cached per model and set. Docs/s = the first
``--time-docs`` documents encoded per second at each depth by ``ElasticEncoder`` (dims do not
change encoding cost), plain and 2D models and depths interleaved, best of two rounds; the
speed-up is against depth 6 in the same run.

    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/elastic_encoder.py --train-minutes 68 \
        [--docs 2000] [--queries 500] [--train-only] [--also v1=PATH] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from slimvec.eval.metrics import Judgements, ndcg_at_k, qrels_recall_at_k
from successor_model import DATA, training_pairs

OUT = Path.home() / ".cache" / "slimvec" / "elastic"
MODEL_DIR = OUT / "models" / "minilm-debian-2d-v2"  # v1: the 33-step Matryoshka2dLoss run
BATCH = 32  # pairs per step (in-batch negatives)
LAYERS = (2, 3, 4, 6)
DIMS = (384, 256, 128, 64)


EVAL_MAX_TOKENS = 256  # all-MiniLM-L6-v2's own max_seq_length, kept by the saved model
SCALE = 20.0  # similarity scale of MultipleNegativesRankingLoss (temperature 0.05)


def _pooled_layers(model, features, layers) -> dict:
    """Mean-pooled (the MiniLM pooling) sentence embeddings after each of ``layers`` transformer
    layers, all from one forward pass: the 2D loss costs one forward + backward per batch."""
    out = model[0](features)
    mask = out["attention_mask"].unsqueeze(-1).to(out["all_layer_embeddings"][0].dtype)
    count = mask.sum(1).clamp(min=1e-9)
    return {L: (out["all_layer_embeddings"][L] * mask).sum(1) / count for L in layers}


def two_d_loss(q: dict, d: dict, teacher_scores, distill: float):
    """Mean over every (layer, dims) point of in-batch-negatives cross-entropy
    (MultipleNegativesRankingLoss) plus ``distill`` x the KL divergence from the frozen full
    model's query-by-document score distribution (the ESE/2DMSE alignment of shallow layers
    to the full model, here to the *original* full model so that the full depth is kept)."""
    import torch
    from torch.nn import functional as F

    target = torch.arange(teacher_scores.shape[0])
    teacher = F.softmax(SCALE * teacher_scores, dim=1)
    total = 0.0
    n = 0
    for L in q:
        for dims in DIMS:
            scores = SCALE * (
                F.normalize(q[L][:, :dims], dim=-1) @ F.normalize(d[L][:, :dims], dim=-1).T
            )
            total = total + F.cross_entropy(scores, target)
            if distill > 0:
                kl = F.kl_div(F.log_softmax(scores, dim=1), teacher, reduction="batchmean")
                total = total + distill * kl
            n += 1
    return total / n


def train_2d(
    pairs: list[tuple[str, str]],
    minutes: float,
    batch: int = BATCH,
    lr: float = 1e-4,
    distill: float = 1.0,
    max_tokens: int = 48,
    seed: int = 0,
    checkpoint: Path | None = None,
):
    """The 2D-Matryoshka fine-tune: one epoch over ``pairs`` or ``minutes`` of it, whichever ends
    first; returns (the trained model, the number of steps taken).

    What it trains, and why it differs from ``Matryoshka2dLoss(MNRL)``: that loss trains every
    depth including the embedding layer's output (depth 0) and the unused depths 1 and 5, and
    aligns shallow layers to the model's *own* (moving) last layer. Here the loss is taken only
    at the depths a user would pick (``LAYERS``) x every dims prefix, from one forward pass, and
    shallow points are distilled towards the frozen original model's in-batch score
    distribution (a soft target over all 2 x batch texts instead of one positive), which keeps
    the full model where it was. More learning per CPU-minute: the word-embedding matrix (half
    the parameters, 11.7M) is frozen, so AdamW and its dense gradient skip it; texts are cut to
    ``max_tokens``; the learning rate warms up for 10 steps then decays linearly with the time
    budget, so a short run still ends annealed."""
    import torch
    from sentence_transformers import SentenceTransformer
    from tqdm import tqdm

    from slimvec.encoders.sentence import packaged_minilm_path

    random.seed(seed)
    torch.manual_seed(seed)
    model = SentenceTransformer(str(packaged_minilm_path()), device="cpu")
    teacher = SentenceTransformer(str(packaged_minilm_path()), device="cpu").eval()
    for m in (model, teacher):
        m.max_seq_length = max_tokens
    teacher.requires_grad_(False)
    auto = model[0].auto_model
    auto.embeddings.word_embeddings.weight.requires_grad_(False)
    auto.config.output_hidden_states = True
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=lr)
    model.train()
    budget = 60 * minutes
    t0 = time.perf_counter()
    last_save = t0
    steps = 0
    for start in tqdm(range(0, len(pairs) - batch + 1, batch), desc="2D fine-tune", unit="batch"):
        elapsed = time.perf_counter() - t0
        if elapsed > budget:
            break
        for group in optimiser.param_groups:
            group["lr"] = lr * min(1.0, (steps + 1) / 10) * max(0.02, 1 - elapsed / budget)
        queries, docs = zip(*pairs[start : start + batch], strict=True)
        fq, fd = model.preprocess(list(queries)), model.preprocess(list(docs))
        with torch.no_grad():
            tq = teacher(fq)["sentence_embedding"]
            td = teacher(fd)["sentence_embedding"]
            teacher_scores = (
                torch.nn.functional.normalize(tq, dim=-1)
                @ torch.nn.functional.normalize(td, dim=-1).T
            )
        loss = two_d_loss(
            _pooled_layers(model, fq, LAYERS),
            _pooled_layers(model, fd, LAYERS),
            teacher_scores,
            distill,
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        steps += 1
        if steps % 25 == 0:
            print(f"step {steps} loss {loss.item():.4f} load {os.getloadavg()[0]:.1f}", flush=True)
        if checkpoint is not None and time.perf_counter() - last_save > 900:
            _save(model, checkpoint, {"steps": steps, "final": False})
            last_save = time.perf_counter()
    model.eval()
    return model, steps


def _save(model, path: Path, info: dict) -> None:
    """Save with MiniLM's own text length (``EVAL_MAX_TOKENS``), not the training one: the
    saved tokenizer's length is what every later encode truncates to, and a model that cut
    documents at 48 tokens would look ~3x faster than the plain one for that reason alone."""
    train_length = model.max_seq_length
    model.max_seq_length = EVAL_MAX_TOKENS
    model[0].auto_model.config.output_hidden_states = False
    path.mkdir(parents=True, exist_ok=True)
    model.save(str(path))
    model[0].auto_model.config.output_hidden_states = True
    model.max_seq_length = train_length
    (path / "training.json").write_text(json.dumps(info))


def ensure_model(
    n_pairs: int, minutes: float, batch: int, lr: float, distill: float, max_tokens: int
) -> Path:
    info = MODEL_DIR / "training.json"
    if info.exists() and json.loads(info.read_text()).get("final", True):
        return MODEL_DIR
    pairs = training_pairs(n_pairs, seed=1)
    load = os.getloadavg()[0]
    print(
        f"2D-Matryoshka fine-tune of all-MiniLM-L6-v2 on up to {len(pairs)} Debian pairs outside "
        f"the set; load average {load:.1f}",
        flush=True,
    )
    t0 = time.perf_counter()
    model, steps = train_2d(pairs, minutes, batch, lr, distill, max_tokens, checkpoint=MODEL_DIR)
    seconds = time.perf_counter() - t0
    _save(
        model,
        MODEL_DIR,
        {
            "final": True,
            "pairs_seen": batch * steps,
            "steps": steps,
            "batch": batch,
            "lr": lr,
            "distill": distill,
            "max_tokens": max_tokens,
            "seconds": round(seconds),
            "load_start": round(load, 1),
            "load_end": round(os.getloadavg()[0], 1),
        },
    )
    print(f"trained {steps} steps ({batch * steps} pairs) in {seconds:.0f} s -> {MODEL_DIR}")
    return MODEL_DIR


def evaluation_set(n_docs: int, n_queries: int, seed: int = 0):
    """(doc texts, query texts, Judgements): the first queries, their relevant documents and
    random other documents of the shared set."""
    docs = [json.loads(line) for line in (DATA / "docs.jsonl").read_text().splitlines()]
    queries = [json.loads(x) for x in (DATA / "queries.jsonl").read_text().splitlines()][:n_queries]
    qrels: dict[str, dict[str, int]] = {}
    for line in (DATA / "qrels.tsv").read_text().splitlines()[1:]:
        qid, did, rel = line.split()
        qrels.setdefault(qid, {})[did] = int(rel)
    wanted = {d for q in queries for d in qrels.get(q["id"], {})}
    others = [d["id"] for d in docs if d["id"] not in wanted]
    random.Random(seed).shuffle(others)
    keep = wanted | set(others[: max(0, n_docs - len(wanted))])
    docs = [d for d in docs if d["id"] in keep]
    judgements = Judgements.from_qrels(qrels, [q["id"] for q in queries], [d["id"] for d in docs])
    return [d["text"] for d in docs], [q["text"] for q in queries], judgements


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def all_depths(model: str, texts: list[str], batch: int = 32) -> dict[int, np.ndarray]:
    """Unit embeddings after each of ``LAYERS`` layers, from *one* forward pass per batch (the
    ElasticEncoder at depth L computes exactly the mean-pooled hidden state after layer L, which
    is checked below on a few texts): quality needs one pass per model, not one per depth."""
    import torch

    from slimvec.encoders import ElasticEncoder

    st = ElasticEncoder(model).model
    st[0].auto_model.config.output_hidden_states = True
    order = np.argsort([-len(t) for t in texts], kind="stable")  # similar lengths per batch
    out = {L: np.zeros((len(texts), 384), np.float32) for L in LAYERS}
    with torch.no_grad():
        for s in range(0, len(texts), batch):
            rows = order[s : s + batch]
            features = st.preprocess([texts[i] for i in rows])
            hidden = st[0](features)
            mask = features["attention_mask"].unsqueeze(-1).float()
            for L in LAYERS:
                pooled = (hidden["all_layer_embeddings"][L] * mask).sum(1) / mask.sum(1)
                out[L][rows] = pooled.numpy()
    for L in LAYERS:  # the same vectors as the encoder a user would run at this depth
        check = ElasticEncoder(model, layers=L).encode(texts[:4], progress=False)
        assert np.allclose(unit(out[L][:4]), check, atol=1e-4), f"depth {L} differs"
    return {L: unit(v) for L, v in out.items()}


def quality(label: str, model: str, docs, queries, judgements) -> list[dict]:
    """nDCG@10 / recall@10 at every (layers, dims) point; cached per model and evaluation set."""
    cache = OUT / f"quality-{label}-{len(docs)}-{len(queries)}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    t0 = time.perf_counter()
    d, q = all_depths(model, docs), all_depths(model, queries)
    rows = []
    for L in sorted(LAYERS, reverse=True):
        for dims in DIMS:
            scores = unit(q[L][:, :dims]) @ unit(d[L][:, :dims]).T
            top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
            rows.append(
                {
                    "layers": L,
                    "dims": dims,
                    "ndcg": ndcg_at_k(top, judgements, 10),
                    "recall": qrels_recall_at_k(top, judgements, 10),
                }
            )
    print(f"  {label}: quality in {time.perf_counter() - t0:.0f} s", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(rows))
    return rows


def speeds(models: dict[str, str], docs: list[str], rounds: int = 2) -> dict[str, dict]:
    """Documents/s per model and depth (dims do not change encoding cost), with the models and
    depths interleaved and repeated ``rounds`` times, best round kept, so that load changes on
    the shared machine hit every cell alike."""
    from slimvec.encoders import ElasticEncoder

    encoders = {
        (label, L): ElasticEncoder(path, layers=L) for label, path in models.items() for L in LAYERS
    }
    for enc in encoders.values():
        enc.encode(docs[:16], progress=False)  # warm-up: first calls allocate
    best: dict[str, dict] = {label: {} for label in models}
    for _ in range(rounds):
        for (label, L), enc in encoders.items():
            t0 = time.perf_counter()
            enc.encode(docs, kind="doc", progress=False)
            speed = len(docs) / (time.perf_counter() - t0)
            best[label][L] = max(best[label].get(L, 0.0), speed)
    return best


def table(results: dict[str, list[dict]], speed: dict[str, dict]) -> str:
    """Markdown: nDCG@10 of every model per point, the last model against the full plain one
    and against its own full depth, and docs/s of the timed models (same architecture, so the
    speed-up is their mean ratio to depth 6)."""
    labels, timed = list(results), list(speed)
    last = labels[-1]
    full = {
        lab: next(r for r in results[lab] if r["layers"] == 6 and r["dims"] == 384)
        for lab in labels
    }
    head = " | ".join(f"{lab} nDCG@10" for lab in labels)
    lines = [
        f"| L | D | {head} | {last} vs full plain | {last} vs own full | "
        f"docs/s ({' / '.join(timed)}) | speed-up |",
        "|---|---|" + "---|" * (len(labels) + 4),
    ]
    for i, row in enumerate(results[last]):
        cells = " | ".join(f"{results[lab][i]['ndcg']:.4f}" for lab in labels)
        depth = row["layers"]
        ups = [speed[lab][depth] / speed[lab][6] for lab in timed]
        lines.append(
            f"| {depth} | {row['dims']} | {cells} | "
            f"{100 * (row['ndcg'] / full['plain']['ndcg'] - 1):+.1f}% | "
            f"{100 * (row['ndcg'] / full[last]['ndcg'] - 1):+.1f}% | "
            f"{' / '.join(f'{speed[lab][depth]:.1f}' for lab in timed)} | "
            f"{np.mean(ups):.2f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=20000, help="fine-tuning pairs (at most)")
    parser.add_argument("--batch", type=int, default=BATCH, help="pairs per step")
    parser.add_argument("--lr", type=float, default=1e-4, help="peak learning rate")
    parser.add_argument(
        "--distill", type=float, default=1.0, help="weight of the full-model score distillation"
    )
    parser.add_argument("--max-tokens", type=int, default=48, help="training text length")
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--time-docs", type=int, default=200, help="documents timed per depth")
    parser.add_argument("--train-only", action="store_true")
    parser.add_argument(
        "--quality-only",
        nargs="+",
        metavar="LABEL=PATH",
        help="only compute (and cache) the quality of these models, e.g. plain=all-MiniLM-L6-v2",
    )
    parser.add_argument(
        "--also", nargs="*", default=[], metavar="LABEL=PATH", help="more models in the table"
    )
    parser.add_argument("--train-minutes", type=float, default=15.0, help="training time budget")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads; 1 on a shared machine (2 threads under a load of 15 ran 10x slower)",
    )
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    docs, queries, judgements = evaluation_set(args.docs, args.queries)
    if args.quality_only:
        for item in args.quality_only:
            label, path = item.split("=", 1)
            quality(label, path, docs, queries, judgements)
        return
    path = ensure_model(
        args.pairs, args.train_minutes, args.batch, args.lr, args.distill, args.max_tokens
    )
    if args.train_only:
        return
    models = {"plain": "all-MiniLM-L6-v2", **dict(a.split("=", 1) for a in args.also)}
    models["2D"] = str(path)  # last: the model the comparison columns are about
    print(f"{len(docs)} docs, {len(queries)} queries; load average {os.getloadavg()[0]:.1f}")
    results = {lab: quality(lab, m, docs, queries, judgements) for lab, m in models.items()}
    load = os.getloadavg()[0]
    # every model has MiniLM's architecture: timing the plain and the 2D one is enough
    speed = speeds({k: models[k] for k in ("plain", "2D")}, docs[: args.time_docs])
    text = table(results, speed)
    print(f"\nload average while timing: {load:.1f} -> {os.getloadavg()[0]:.1f}\n{text}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps({"quality": results, "docs_s": speed}, indent=1))
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
