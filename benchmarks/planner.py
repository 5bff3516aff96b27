"""The planner against its two plans and FAISS, in one run: is ``search`` ever slower than
``search(exact=True)``, and where do the funnel and exact search cross?

    .venv/bin/python benchmarks/planner.py [--sizes 1000,10000,30000,100000] [--dims 384,768]

For each size, dimension and batch (1 query and 200): median time of the default search
(the planner's choice, printed), of ``exact=True``, of the funnel forced
(``planner.funnel_only()``, as bench and the tests do) and of FAISS ``IndexFlatIP``.
``default/exact`` must stay <= ~1
(noise aside); ``funnel/exact`` shows where compressed codes start to pay. Data: low-rank
plus noise (like embeddings: a few strong directions), seeded.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import faiss
import numpy as np

import slimvec
from slimvec.engine import planner


def data(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((48, d)).astype(np.float32)
    x = rng.standard_normal((n, 48)).astype(np.float32) @ mix
    x += 1.4 * rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def median_time(reps: int, fn, *args, **kwargs) -> float:
    fn(*args, **kwargs)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def forced_funnel(col, q, k):
    with planner.funnel_only():
        return col.search(q, k=k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,30000,100000")
    parser.add_argument("--dims", default="384,768")
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()
    print(
        f"{'dim':>4} {'rows':>7} {'batch':>5} {'plan':>10} {'default ms':>10} {'exact ms':>9} "
        f"{'funnel ms':>9} {'faiss ms':>9} {'default/exact':>13} {'funnel/exact':>12}"
    )
    for d in map(int, args.dims.split(",")):
        for n in map(int, args.sizes.split(",")):
            x, queries = data(n, d, 0), data(200, d, 1)
            col = slimvec.create(tempfile.mkdtemp() + "/c", d)
            col.add(x)
            flat = faiss.IndexFlatIP(d)
            flat.add(x)
            for batch in (1, 200):
                q = queries[:batch]
                reps = args.reps if batch == 1 else max(3, args.reps // 3)
                plan = col.search(q, k=10).explain["plan"]
                default = median_time(reps, col.search, q, k=10)
                exact = median_time(reps, col.search, q, k=10, exact=True)
                funnel = median_time(reps, forced_funnel, col, q, 10)
                ff = median_time(reps, flat.search, q, 10)
                print(
                    f"{d:>4} {n:>7} {batch:>5} {plan:>10} {1e3 * default:>10.2f} "
                    f"{1e3 * exact:>9.2f} {1e3 * funnel:>9.2f} {1e3 * ff:>9.2f} "
                    f"{default / exact:>13.2f} {funnel / exact:>12.2f}",
                    flush=True,
                )
            col.close()


if __name__ == "__main__":
    main()
