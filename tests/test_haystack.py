"""Haystack's own document-store suite (``haystack.testing.document_store``
``DocumentStoreBaseExtendedTests`` = ``DocumentStoreBaseTests`` (count, write with the
duplicate policies, delete, every filter test) + delete-all, delete-by-filter and
update-by-filter) against ``SlimvecDocumentStore``, plus its embedding retriever. Nothing of
theirs is skipped.

``assert_documents_are_equal`` is overridden, as their docstring asks of stores that change a
document on the way (Chroma's and Qdrant's integrations do the same): slimvec keeps float32
vectors, so a returned embedding equals the written float64 list up to float32 rounding.
Everything else (ids, content, meta, order) is compared exactly."""

import os
import threading

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # no network calls from tests

import numpy as np
import pytest
from haystack import Document, Pipeline
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack.errors import FilterError
from haystack.testing.document_store import DocumentStoreBaseExtendedTests

import slimvec
from slimvec.errors import InvalidInputError
from slimvec.integrations.haystack import SlimvecDocumentStore, SlimvecEmbeddingRetriever


def _strip(doc):
    out = doc.to_dict()
    out.pop("embedding")
    return out


class TestSlimvecDocumentStore(DocumentStoreBaseExtendedTests):
    @pytest.fixture
    def document_store(self, tmp_path):
        return SlimvecDocumentStore(tmp_path / "hs", embedding_dim=768)

    def assert_documents_are_equal(self, received, expected):
        assert [_strip(d) for d in received] == [_strip(d) for d in expected]
        for got, want in zip(received, expected):
            assert (got.embedding is None) == (want.embedding is None)
            if want.embedding is not None:
                np.testing.assert_allclose(got.embedding, want.embedding, rtol=1e-6, atol=1e-7)

    def test_write_documents(self, document_store):
        """Their placeholder for the default policy: ours is FAIL, as Haystack's in-memory
        store (nothing written when an id exists)."""
        docs = [Document(id="1", content="one"), Document(id="2", content="two")]
        assert document_store.write_documents(docs) == 2
        with pytest.raises(DuplicateDocumentError):
            document_store.write_documents([Document(id="3", content="x"), docs[0]])
        self.assert_documents_are_equal(document_store.filter_documents(), docs)


def _docs():
    rng = np.random.default_rng(0)
    return [
        Document(
            id=f"d{i}",
            content=f"document {i}",
            meta={"section": "vcs" if i % 2 else "web", "year": 2000 + i},
            embedding=rng.standard_normal(8).tolist(),
        )
        for i in range(6)
    ] + [Document(id="plain", content="no embedding", meta={"section": "vcs"})]


def test_retriever_in_a_pipeline_with_filters_and_persistence(tmp_path):
    store = SlimvecDocumentStore(tmp_path / "hs", embedding_dim=8)
    docs = _docs()
    store.write_documents(docs)
    pipe = Pipeline()
    pipe.add_component("retriever", SlimvecEmbeddingRetriever(store, top_k=3))
    out = pipe.run({"retriever": {"query_embedding": docs[3].embedding}})["retriever"]["documents"]
    assert out[0].id == "d3" and out[0].score == pytest.approx(1.0, abs=1e-5) and len(out) == 3
    assert "plain" not in {d.id for d in out}  # documents without embeddings are not retrieved
    absent = {"field": "meta.lang", "operator": "==", "value": "en"}  # no document has "lang"
    assert store.filter_documents(absent) == []
    assert len(store.filter_documents({**absent, "operator": "!="})) == 7
    assert store.delete_by_filter(absent) == 0
    only_vcs = {"field": "meta.section", "operator": "==", "value": "vcs"}
    hits = pipe.run({"retriever": {"query_embedding": docs[2].embedding, "filters": only_vcs}})
    assert {d.id for d in hits["retriever"]["documents"]} == {"d1", "d3", "d5"}
    retriever = SlimvecEmbeddingRetriever.from_dict(SlimvecEmbeddingRetriever(store).to_dict())
    assert retriever.run(docs[0].embedding, top_k=1)["documents"][0].id == "d0"
    col = slimvec.open(tmp_path / "hs")  # an ordinary collection
    assert col.id_kind == "str" and len(col) == 7 and col.texts(["d1"]) == ["document 1"]
    store.write_documents(
        [Document(id="d0", content="new", embedding=docs[5].embedding)],
        policy=DuplicatePolicy.OVERWRITE,
    )
    again = SlimvecDocumentStore(tmp_path / "hs", embedding_dim=8)
    no_year = again.filter_documents({"field": "meta.year", "operator": "==", "value": None})
    assert [d.id for d in no_year] == ["plain", "d0"]  # d0 replaced: written last
    assert again.count_documents() == 7


def test_bad_input_names_the_problem_and_writes_nothing(tmp_path):
    store = SlimvecDocumentStore(tmp_path / "hs", embedding_dim=8, similarity="dot_product")
    store.write_documents(_docs())
    with pytest.raises(FilterError, match="regex"):
        store.filter_documents({"field": "meta.year", "operator": "regex", "value": "x"})
    with pytest.raises(FilterError, match="content"):
        store.filter_documents({"field": "content", "operator": "==", "value": "x"})
    with pytest.raises(FilterError, match="XOR"):
        store.filter_documents(
            {
                "operator": "XOR",
                "conditions": [{"field": "meta.year", "operator": "==", "value": 1}],
            }
        )
    cases = [
        lambda: store.write_documents([Document(id="z", content="x", embedding=[1.0, 2.0])]),
        lambda: store.write_documents([Document(id="z", content="x", meta={"_hs_norm": 1})]),
        lambda: store.write_documents([Document(id="z", content="x", meta={"f": object()})]),
        lambda: SlimvecDocumentStore(tmp_path / "other", similarity="l2"),
    ]
    for call in cases:
        with pytest.raises(InvalidInputError):
            call()
    assert store.count_documents() == 7


def test_update_by_filter_is_one_atomic_slimvec_call(tmp_path, monkeypatch):
    """One ``update_metadata(filter=, merge=)`` (rows chosen, read and rewritten under the
    write lock, one log record), so two writers merging different keys lose nothing."""
    first = SlimvecDocumentStore(tmp_path / "hs", embedding_dim=8)
    first.write_documents(_docs())
    second = SlimvecDocumentStore(tmp_path / "hs", embedding_dim=8)  # another handle
    calls = []
    update = first.collection.update_metadata
    monkeypatch.setattr(
        first.collection, "update_metadata", lambda *a, **kw: calls.append(kw) or update(*a, **kw)
    )
    monkeypatch.setattr(first.collection, "get", lambda *a, **kw: pytest.fail("read then write"))
    vcs = {"field": "meta.section", "operator": "==", "value": "vcs"}
    assert first.update_by_filter(vcs, {"team": "core"}) == 4
    assert calls == [{"filter": {"section": {"$eq": "vcs"}}, "merge": {"team": "core"}}]
    monkeypatch.undo()

    def merge(store, key):
        for i in range(25):
            assert store.update_by_filter(vcs, {key: i}) == 4

    threads = [
        threading.Thread(target=merge, args=(s, k)) for s, k in ((first, "a"), (second, "b"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    docs = SlimvecDocumentStore(tmp_path / "hs", embedding_dim=8).filter_documents(vcs)
    assert [(d.meta["a"], d.meta["b"], d.meta["team"]) for d in docs] == [(24, 24, "core")] * 4
    assert first.update_by_filter({}, {"all": 1}) == 7  # no filter: every document
    with pytest.raises(InvalidInputError, match="merge is not JSON"):
        first.update_by_filter(vcs, {"bad": object()})
    with pytest.raises(FilterError, match="regex"):
        first.update_by_filter({"field": "meta.a", "operator": "regex", "value": "x"}, {"c": 1})
    assert "bad" not in first.filter_documents(vcs)[0].meta
