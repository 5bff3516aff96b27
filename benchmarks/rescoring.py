"""Rescoring a shortlist of binary / RaBitQ codes: byte-table kernel vs unpack + einsum.

    .venv/bin/python benchmarks/rescoring.py [--n 50000] [--queries 20] [--shortlist 4000]

The peer is the obvious NumPy path (unpack the gathered codes to floats, einsum with the
query), run in the same process; the table prints both times, their ratio and the largest
score difference.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from slimvec.codecs.rabitq import RaBitQCodec


def unpack_and_einsum(codec: RaBitQCodec, prepared, codes: np.ndarray) -> np.ndarray:
    u = np.zeros((*codes.shape[:-1], codec.dim), np.float32)
    for p in range(codec.bits):
        start = p * codec.plane_bytes
        bits = np.unpackbits(codes[..., start : start + codec.plane_bytes], axis=-1)
        u += bits[..., : codec.dim] * np.float32(1 << p)
    dots = np.einsum("qcd,qd->qc", u, prepared.rotated)
    f = codec.factors(codes)[..., 0]
    return (f * (dots - codec.half * prepared.sums[:, None]) + prepared.offsets[:, None]).astype(
        np.float32
    )


def best_of(fn, rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--shortlist", type=int, default=4000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.n, args.dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[: args.queries]
    rows = rng.integers(0, args.n, (args.queries, args.shortlist))
    print(f"load average {os.getloadavg()[0]:.1f}; {args.queries} queries x {args.shortlist}")
    print(f"{'code':<10} {'byte tables':>12} {'unpack+einsum':>14} {'speed-up':>9} {'max diff':>9}")
    for bits in (1, 2, 4):
        codec = RaBitQCodec(args.dim, bits).fit(x)
        gathered = codec.encode(x)[rows]
        codec.score(codec.prepare(q), gathered)  # compile
        ours = best_of(lambda c=codec, g=gathered: c.score(c.prepare(q), g))
        peer = best_of(lambda c=codec, g=gathered: unpack_and_einsum(c, c.prepare(q), g))
        diff = np.abs(
            codec.score(codec.prepare(q), gathered)
            - unpack_and_einsum(codec, codec.prepare(q), gathered)
        ).max()
        print(
            f"{codec.token:<10} {ours * 1000:>10.1f}ms {peer * 1000:>12.1f}ms "
            f"{peer / ours:>8.1f}x {diff:>9.1e}"
        )


if __name__ == "__main__":
    main()
