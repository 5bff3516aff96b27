"""Every first-stage code over FDEs, in a multi-vector collection, against NumPy (issue 31's
done-when): the shortlist the funnel hands to MaxSim is what NumPy's scoring of the same stored
codes ranks first (int8, binary, PCA + float16), or holds what NumPy's float FDE inner
products rank first (RaBitQ's estimator, and IVF lists over it, which approximate that
product). The FDE itself is checked against a point-by-point port of MUVERA in test_fde."""

from __future__ import annotations

import numpy as np
import pytest

import slimvec
from slimvec.engine.rows import RowFormat
from test_multivector_collection import _token_sets

K = 10
FDE_PARAMS = {"r_reps": 4, "k_sim": 4, "d_proj": 8}  # 512 dims


@pytest.fixture(scope="module")
def corpus():
    return _token_sets(600, 32, 0), _token_sets(30, 32, 1, 2, 8)


def _collection(path, spec, docs):
    col = slimvec.create(path, dim=32, multivector=True, spec=spec, fde=FDE_PARAMS)
    col.add(docs)
    return col


def _shortlist(col, queries, nprobe=None):
    """(query FDEs, the rows the first stage hands to MaxSim)."""
    view, rows = col._view, col._view.rows
    q = rows.queries_in(queries)
    if nprobe is None:
        found, _ = rows.pipeline.search(q.fde, K, view, None)
    else:
        found, _ = RowFormat.ivf_search(rows, view, q.fde, K, None, nprobe)
    return q.fde, found


def _top(scores, keep):
    return np.argsort(-scores, axis=1, kind="stable")[:, :keep]


def _overlap(a, b):
    """Mean share of each row of ``b`` found in the same row of ``a``."""
    return np.mean([len(set(x) & set(y)) / len(y) for x, y in zip(a, b)])


@pytest.mark.parametrize(
    ("spec", "floor"), [("int8*20 > maxsim", 0.97), ("pca:64 | f16*20 > maxsim", 0.99)]
)
def test_the_shortlist_is_numpy_scoring_of_the_stored_codes(tmp_path, corpus, spec, floor):
    """int8: q . (low + step * code) (the scan quantises queries to int8, hence the floor);
    PCA + float16: the PCA-projected query . the float16 codes."""
    docs, queries = corpus
    col = _collection(tmp_path / "c", spec, docs)
    fde, found = _shortlist(col, queries)
    pipeline = col._view.rows.pipeline
    key = pipeline.first_key
    codes = col._view.gather(key, np.arange(len(docs))).astype(np.float32)
    codec = pipeline.codecs[key]
    if spec.startswith("int8"):
        scores = fde @ (codec.low + codec.step * codes).T
    else:
        scores = pipeline.transform(fde) @ codes.T
    assert found.shape == (len(queries), K * 20)
    assert _overlap(found, _top(scores, K * 20)) >= floor


def test_binary_shortlist_is_numpy_hamming_of_the_stored_sign_bits(tmp_path, corpus):
    """``rot:D | binary``: the shortlist holds every document whose NumPy Hamming distance
    (query signs about the fitted mean against the stored sign bits) is below the cut-off
    distance, and none beyond it (Hamming distances tie: the cut-off's own are arbitrary)."""
    docs, queries = corpus
    col = _collection(tmp_path / "c", "rot:256 | binary*20 > maxsim", docs)
    fde, found = _shortlist(col, queries)
    pipeline = col._view.rows.pipeline
    key = pipeline.first_key
    mean = pipeline.codecs[key].mean
    z = pipeline.transform(fde)
    along = np.outer(z @ mean / (mean @ mean), mean)
    qbits = (z - along) >= 0
    stored = np.unpackbits(col._view.gather(key, np.arange(len(docs))), axis=1)[:, : z.shape[1]]
    distance = (qbits[:, None, :] != stored[None, :, :].astype(bool)).sum(axis=2)
    for d, rows in zip(distance, found):
        cut = np.sort(d)[len(rows) - 1]
        assert set(np.flatnonzero(d < cut)) <= set(rows)
        assert (d[rows] <= cut).all()


@pytest.mark.parametrize(
    ("spec", "nprobe"), [("rabitq:2*3 > maxsim", None), ("ivf:8 | rabitq:2*3 > maxsim", 8)]
)
def test_rabitq_shortlists_hold_numpy_fde_top(tmp_path, corpus, monkeypatch, spec, nprobe):
    """RaBitQ estimates the FDE inner product: its shortlist (30 of 600) holds NumPy's top-10
    of the FDEs' products; an IVF first pass over every list does too."""
    from slimvec.index import sizing

    monkeypatch.setattr(sizing, "FLAT_ROWS", 300)
    docs, queries = corpus
    col = _collection(tmp_path / "c", spec, docs)
    if nprobe is not None:
        assert col.info()["ivf"]["state"] == "trained"
    _, found = _shortlist(col, queries, nprobe)
    fde = col._view.rows.fde  # its compiled encoding, checked against the port in test_fde
    truth = _top(fde.encode_queries(queries) @ fde.encode_documents(docs).T, K)
    assert _overlap(found, truth) >= 0.9
