"""LangChain's own standard suite (``langchain_tests`` ``VectorStoreIntegrationTests``, sync
and async) against ``SlimvecVectorStore``, plus what the suite does not cover: filters, MMR,
persistence to a directory ``slimvec.open`` reads, and bad input. Nothing of theirs skipped."""

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_tests.integration_tests import VectorStoreIntegrationTests

import slimvec
from api_contract import HashEncoder
from slimvec.errors import IdKindError, InvalidInputError
from slimvec.integrations.langchain import SlimvecEmbeddings, SlimvecVectorStore


class TestSlimvecStandard(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self, tmp_path):
        store = SlimvecVectorStore(self.get_embeddings(), path=tmp_path / "lc")
        yield store


@pytest.fixture()
def store(tmp_path):
    return SlimvecVectorStore(VectorStoreIntegrationTests.get_embeddings(), path=tmp_path / "lc")


DOCS = [
    Document(page_content="git version control", metadata={"section": "vcs", "year": 2005}),
    Document(page_content="mercurial version control", metadata={"section": "vcs", "year": 2005}),
    Document(page_content="nginx web server", metadata={"section": "web", "year": 2004}),
    Document(page_content="apache web server", metadata={"section": "web", "year": 1995}),
]


def test_filters_mmr_scores_and_persistence(store, tmp_path):
    ids = store.add_documents(DOCS, ids=["git", "hg", "nginx", "apache"])
    hits = store.similarity_search("nginx web server", k=4, filter={"section": "web"})
    assert [d.id for d in hits] == ["nginx", "apache"]
    assert store.similarity_search("x", k=4, filter={"lang": "en"}) == []  # no doc has "lang"
    assert len(store.similarity_search("x", k=4, filter={"lang": {"$ne": "en"}})) == 4
    old = store.similarity_search("x", k=4, filter={"year": {"$lt": 2000}})
    assert [d.id for d in old] == ["apache"]
    scored = store.similarity_search_with_relevance_scores("git version control", k=1)
    assert scored[0][0].id == "git" and scored[0][1] == pytest.approx(1.0, abs=1e-5)
    mmr = store.max_marginal_relevance_search("git version control", k=2, fetch_k=4)
    assert mmr[0].id == "git" and len({d.id for d in mmr}) == 2
    retriever = store.as_retriever(search_kwargs={"k": 1, "filter": {"section": "vcs"}})
    assert retriever.invoke("mercurial version control")[0].id == "hg"
    col = slimvec.open(tmp_path / "lc")  # an ordinary collection, string ids
    assert sorted(col.live_ids().tolist()) == sorted(ids) and col.texts(["hg"]) == [
        DOCS[1].page_content
    ]
    again = SlimvecVectorStore(store.embeddings, path=tmp_path / "lc")
    assert again.get_by_ids(["nginx"])[0].metadata == {"section": "web", "year": 2004}
    again.delete()
    assert again.similarity_search("git", k=1) == []


def test_from_texts_and_bad_input(store, tmp_path):
    built = SlimvecVectorStore.from_texts(
        ["a", "b"], store.embeddings, [{"n": 1}, {"n": 2}], ids=["x", "y"], path=tmp_path / "ft"
    )
    assert built.get_by_ids(["y", "x"])[0].metadata == {"n": 2}
    store.add_texts(["seed"], ids=["s"])
    with pytest.raises(InvalidInputError, match=r"\$regex"):
        store.similarity_search("q", filter={"section": {"$regex": "^w"}})
    with pytest.raises(InvalidInputError, match="callable"):
        store.similarity_search("q", filter=lambda doc: True)
    with pytest.raises(InvalidInputError, match="repeat"):
        store.add_texts(["a", "b"], ids=["d", "d"])
    with pytest.raises(InvalidInputError, match="JSON"):
        store.add_texts(["a"], metadatas=[{"f": object()}])
    with pytest.raises(InvalidInputError, match="ids for"):
        store.add_texts(["a", "b"], ids=["only-one"])
    assert [d.id for d in store.similarity_search("seed", k=5)] == ["s"]  # nothing written
    slimvec.create(tmp_path / "ints", dim=6).add(np.ones((1, 6)))
    with pytest.raises(IdKindError):
        SlimvecVectorStore(store.embeddings, path=tmp_path / "ints")


def test_slimvec_embeddings_wrap_an_encoder_as_docs_and_queries(tmp_path):
    class Asymmetric(HashEncoder):  # queries and docs differ, as with prompted models
        def _encode(self, texts, kind, batch_size):
            return super()._encode([f"{kind}: {t}" for t in texts], kind, batch_size)

    emb = SlimvecEmbeddings(Asymmetric())
    docs = emb.embed_documents(["git version control", "nginx web server"])
    query = emb.embed_query("git version control")
    assert len(docs) == 2 and len(docs[0]) == 16 and isinstance(docs[0][0], float)
    assert query == Asymmetric().encode(["git version control"], "query")[0].tolist()
    assert np.linalg.norm(docs[1]) == pytest.approx(1.0, abs=1e-6) and query != docs[0]
    store = SlimvecVectorStore.from_texts(["git version control"], emb, path=tmp_path / "e")
    assert store.similarity_search("git version control", k=1)[0].page_content.startswith("git")
    with pytest.raises(InvalidInputError, match="model must be"):
        SlimvecEmbeddings(42)
