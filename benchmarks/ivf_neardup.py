"""Why an ``ivf:32 | rabitq*40`` collection can miss a query's own near-duplicate at 32 dims.

    .venv/bin/python benchmarks/ivf_neardup.py [--seeds 1 2 3] [--noise 0.1 0.3]

20,000 normalised low-rank 32-d vectors (``datasets.synthetic.low_rank``, latent 8), 200
queries that are perturbed copies of rows. For the IVF collection (every list probed) and the
flat ``rabitq*40 > f32`` one: recall@10 against exact search, and where the query's own row
ranks in the first pass (a rank >= 400 leaves the 400-row shortlist). Then why: RaBitQ's
error scales with |r| sqrt(1 - cos^2(q, r)) for the residual r a row is coded as, and the
script prints that factor for the own rows, flat (residual from the data mean) and IVF
(residual from the row's list centroid). BENCHMARKS.md "IVF at small dims" has the reading.
Takes about a minute.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

import slimvec
from slimvec.datasets.synthetic import low_rank

DIM, N, QUERIES, SHORTLIST = 32, 20_000, 200, 400


def first_pass(col: slimvec.Collection, view: np.ndarray) -> np.ndarray:
    """(queries, rows) first-pass estimates of every row (all lists / the whole flat scan)."""
    index = col._view.ivf
    if index is None:
        codec = col.pipeline.codecs[col.pipeline.first_key]
        codes = col._view.resident(col.pipeline.first_key)
        rows, scores = codec.scan(codec.prepare(view), codes, len(codes), None)
    else:
        from slimvec.kernels.ivfscan import probe_top, query_tables

        codec = index.codec
        probes, qa = index.probe(view, index.nlist)
        p = codec.quantised(codec.prepare(view))
        rows, scores, _ = probe_top(
            query_tables(p.planes, codec.bits), qa, p.delta, p.lo, p.qsums, probes,
            index.list_set(), -codec.half, len(col), None,
        )  # fmt: skip
    out = np.full((len(view), rows.shape[1]), np.nan, np.float32)
    np.put_along_axis(out, rows, scores, axis=1)
    return out


def spread(r: np.ndarray, q: np.ndarray) -> tuple[float, float]:
    """Mean |cos(q, r)| and mean |r| sqrt(1 - cos^2): the estimator's error scale."""
    norm = np.linalg.norm(r, axis=1)
    cos = np.einsum("ij,ij->i", r, q) / norm / np.linalg.norm(q, axis=1)
    return float(np.abs(cos).mean()), float((norm * np.sqrt(1 - cos**2)).mean())


def run(seed: int, noise: float, tmp: Path) -> None:
    x = low_rank(N, queries=1, dim=DIM, latent=8, seed=seed).docs.astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rng = np.random.default_rng(seed + 100)
    own = rng.choice(N, QUERIES, replace=False)
    q = x[own] + noise * rng.standard_normal((QUERIES, DIM)).astype(np.float32) / np.sqrt(DIM)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    cols = {}
    for name, spec in (("ivf", "ivf:32 | rabitq*40 > f32"), ("flat", "rabitq*40 > f32")):
        cols[name] = slimvec.create(tmp / f"{name}-{seed}-{noise}", dim=DIM, spec=spec)
        cols[name].add(x)
    truth = cols["flat"].search(q, 10, exact=True).ids
    line = [f"seed {seed} noise {noise}:"]
    exact = q @ x.T
    for name, col in cols.items():
        found = col.search(q, 10, nprobe=32 if name == "ivf" else None).ids
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
        est = first_pass(col, q)
        mine = est[np.arange(QUERIES), own]
        rank = (est > mine[:, None]).sum(axis=1)
        line.append(
            f"{name} recall@10 {recall:.3f}, own row out of the shortlist "
            f"{int((rank >= SHORTLIST).sum())}/{QUERIES} (worst rank {rank.max()}, its "
            f"estimate error {(mine - exact[np.arange(QUERIES), own])[rank.argmax()]:+.3f});"
        )
    index = cols["ivf"]._view.ivf
    centroid = cols["flat"].pipeline.codecs[cols["flat"].pipeline.first_key].centroid
    flat_cos, flat_err = spread(x[own] - centroid, q)
    ivf_cos, ivf_err = spread(x[own] - index.centroids[index.assign(x[own])], q)
    line.append(
        f"own rows: |cos(q, r)| flat {flat_cos:.2f} ivf {ivf_cos:.2f}, "
        f"|r| sqrt(1 - cos^2) flat {flat_err:.2f} ivf {ivf_err:.2f}"
    )
    print(" ".join(line))
    for col in cols.values():
        col.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--noise", type=float, nargs="+", default=[0.1, 0.3])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for noise in args.noise:
                run(seed, noise, Path(tmp))


if __name__ == "__main__":
    main()
