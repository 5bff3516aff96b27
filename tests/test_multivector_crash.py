"""kill -9 during a multi-vector add (residual, rotated and PQ token codes; table-scan FDE
codes): the last commit stands with the same answers and fitted codebook, and the next add
works."""

import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import slimvec
from killpoints import child_env

DIM = 32
SPEC = "rabitq:2*10 > maxsim:res2"
POINTS = ["after_segment", "mid_tables", "after_manifest"]

CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import slimvec
    from killpoints import arm
    from test_multivector_crash import token_sets

    path, point = sys.argv[1], sys.argv[2]
    arm(point)
    slimvec.open(path).add(token_sets(150, 9), ids=np.arange(1000, 1150))
    print("finished without crashing")
    """
)


def token_sets(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    topics = np.random.default_rng(0).standard_normal((20, DIM))
    out = []
    for m in rng.integers(2, 20, n):
        x = topics[rng.integers(0, 20, m)] + 0.4 * rng.standard_normal((m, DIM))
        out.append((x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32))
    return out


@pytest.mark.parametrize(
    ("spec", "point"),
    [(SPEC, p) for p in POINTS]
    + [("rabitq:2*10 > maxsim:pq8", "mid_tables"), ("rabitq:2*10 > maxsim:rq2", "after_segment")],
)
def test_kill_during_a_multivector_add(tmp_path, spec, point):
    path = tmp_path / "c"
    col = slimvec.create(path, dim=DIM, multivector=True, spec=spec, fde={"r_reps": 4})
    col.add(token_sets(200, 1), ids=np.arange(200))
    queries = token_sets(8, 2)
    before = col.search(queries, k=5)
    book = col._view.rows._codebook()
    col.close()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), point],
        capture_output=True,
        text=True,
        timeout=300,
        env=child_env(),
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    col = slimvec.open(path)
    committed = point == "after_manifest"
    assert len(col) == (350 if committed else 200)
    after = col._view.rows._codebook().state()
    for key, value in book.state().items():  # fitted once, kept
        np.testing.assert_array_equal(after[key], value)
    if not committed:
        again = col.search(queries, k=5)
        np.testing.assert_array_equal(again.ids, before.ids)
        np.testing.assert_array_equal(again.scores, before.scores)
    # the next add works and its documents are found by their own tokens
    new = token_sets(30, 3)
    col.add(new, ids=np.arange(5000, 5030))
    reopened = slimvec.open(path)
    assert len(reopened) == len(col)
    found = reopened.search(new[:5], k=1, exact=True).ids[:, 0]
    np.testing.assert_array_equal(found, np.arange(5000, 5005))
