"""BM25 over a collection's texts, scored by ``bm25s``, updated and persisted with the collection.

**Why a rebuild.** ``bm25s`` precomputes every (term, document) weight, and each weight depends
on corpus-wide statistics (document count, document frequencies, average length), so one added
or deleted document changes them all. Per-segment ``bm25s`` indexes merged at search time would
score each segment with its own statistics, which ranks documents from different segments
inconsistently. So this index keeps the *tokenised* corpus (term ids, never re-tokenised) and
rebuilds the ``bm25s`` index from the live documents on the first search after a change.
The rebuild costs about 1.4 µs per corpus token (bm25s 0.3.16 on 2 shared cores: 0.3 s for
6,000 Debian descriptions / 0.23M tokens, 3.3 s for 60,000 / 2.3M tokens), paid once by the
first search after any add or delete: batch your changes, then search. Searches that follow
no change pay nothing extra; saves are incremental (~25 ms for a small batch at 60k docs).

**Persistence.** Each ``save(directory, generation)`` writes only what is new since the last
save, as generation-numbered files, and never touches a file an earlier save wrote:

* ``bm25-<gen>-seg.npz``: the documents added since the last save (ids, token offsets, term
  ids as int32) and the terms they introduced (UTF-8 bytes + offsets; no pickle);
* ``bm25-<gen>-del.npy``: a packed bitmap of deleted rows, when it changed;
* ``bm25-<gen>.json``: parameters, tokenisation (the stopword list itself, so a later bm25s
  with another list cannot change an existing index), and the ordered list of segment files.

It returns every file the index now consists of; the collection names them in its manifest,
which stays the single commit point (a crash before the manifest is replaced leaves files no
manifest names, which the collection's sweep removes). The ``bm25s`` score matrix itself is
derived data, rebuilt on the first search after ``load`` rather than stored: storing it would
rewrite it in full on every commit. ``compact()`` drops deleted rows and unused terms, and the
next save writes one fresh segment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from itertools import islice, pairwise
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import Stemmer
from bm25s.tokenization import Tokenizer, _infer_stopwords

from slimvec.errors import CorruptCollectionError, DuplicateIdError, InvalidInputError
from slimvec.store.files import (
    atomic_write_text,
    fsync_dir,
    load_array,
    load_arrays,
    save_array,
    save_arrays,
)
from slimvec.store.growable import GrowableArray, Tombstones
from slimvec.validation import as_ids, check_int, check_k

FORMAT = "slimvec-bm25"
FORMAT_VERSION = 1
PREFIX = "bm25"
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
# Methods whose score is 0 for a document sharing no term with the query, so "no match" can be
# told apart from a weak match; BM25L and BM25+ give every document a positive score.
METHODS = ("lucene", "robertson", "atire")


class BM25Index:
    """Sparse lexical retrieval keyed by slimvec's int64 ids.

    Parameters follow Lucene's BM25 (``k1``, ``b``; ``method`` picks the bm25s variant).
    Tokenisation: ``lower``-case, split with ``token_pattern`` (words of 2+ characters), drop
    ``stopwords`` (a language name known to bm25s, a list of words, or None), then stem with
    the Snowball ``stemmer`` for a language (PyStemmer) or not at all (None). Stopwords are
    matched before stemming, as in Lucene's English analyzer.
    """

    def __init__(
        self,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
        stopwords: str | Sequence[str] | None = "english",
        stemmer: str | None = "english",
        lower: bool = True,
        token_pattern: str = TOKEN_PATTERN,
    ):
        if method not in METHODS:
            raise InvalidInputError(
                f"unknown BM25 method {method!r}; use one of {', '.join(METHODS)} (BM25L and "
                f"BM25+ score every document, so a non-matching one cannot be left out)"
            )
        if not (np.isfinite(k1) and k1 >= 0 and np.isfinite(b) and 0 <= b <= 1):
            raise InvalidInputError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        if stemmer is not None and stemmer not in Stemmer.algorithms():
            raise InvalidInputError(
                f"no Snowball stemmer for {stemmer!r}; use one of "
                f"{', '.join(Stemmer.algorithms())}, or stemmer=None"
            )
        try:
            re.compile(token_pattern)
        except re.error as exc:
            raise InvalidInputError(f"token_pattern is not a valid regex: {exc}") from exc
        self.k1, self.b, self.method = float(k1), float(b), method
        self.stemmer, self.lower, self.token_pattern = stemmer, bool(lower), token_pattern
        self.stopwords = _resolve_stopwords(stopwords)
        self._tokenizer = Tokenizer(
            lower=self.lower,
            splitter=token_pattern,
            stopwords=self.stopwords,
            stemmer=None if stemmer is None else Stemmer.Stemmer(stemmer),
        )
        self._terms: list[str] = []  # term id -> term (stem)
        self._ids = GrowableArray.empty(np.int64)  # row -> slimvec id
        self._offsets = GrowableArray(np.zeros(1, np.int64))  # row -> start in _tokens
        self._tokens = GrowableArray.empty(np.int32)
        self._deleted = Tombstones(np.zeros(0, bool))
        # persistence: which rows/terms are already in files, and which files
        self._saved: list[tuple[str, int, int, int, int]] = []  # (name, row0, row1, term0, term1)
        self._deleted_file: str | None = None
        self._deleted_dirty = False
        self._generation = -1
        # the bm25s index over live rows, rebuilt lazily
        #: (bm25s index, the id of each of its documents), built on the first search after a
        #: change and replaced as one reference: threads searching at once never pair one
        #: build's index with another's ids
        self._built: tuple[bm25s.BM25, np.ndarray] | None = None

    # -- contents ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._ids.array) - self._deleted.count

    def __repr__(self) -> str:
        return (
            f"BM25Index(n={len(self)}, terms={len(self._terms)}, k1={self.k1}, b={self.b}, "
            f"method={self.method!r}, stemmer={self.stemmer!r})"
        )

    @property
    def ids(self) -> np.ndarray:
        """Ids of the documents held, in insertion order."""
        return self._ids.array[~self._deleted.array]

    def info(self) -> dict[str, Any]:
        return {
            "documents": len(self),
            "deleted_rows": self._deleted.count,
            "terms": len(self._terms),
            "tokens": len(self._tokens.array),
            "stale": self._built is None,
            "params": self._params(),
        }

    # -- writing -------------------------------------------------------------------------------
    def add(self, ids: Any, texts: Sequence[str]) -> None:
        """Tokenise and hold ``texts`` under ``ids``; the next search sees them."""
        texts = _check_texts(texts, "texts", allow_empty=True)
        new_ids = as_ids(ids, len(texts))
        live = self.ids
        clash = new_ids[np.isin(new_ids, live)]
        if len(clash):
            raise DuplicateIdError(
                f"ids already in the BM25 index: {clash[:10].tolist()}; delete them first"
            )
        before = len(self._terms)
        token_lists = self._tokenizer.tokenize(
            texts, update_vocab=True, show_progress=False, allow_empty=False
        )
        vocab = self._tokenizer.get_vocab_dict()
        self._terms.extend(islice(vocab.keys(), before, None))
        if len(self._terms) != len(vocab):
            raise RuntimeError("tokenizer vocabulary and BM25 terms went out of step")
        lengths = np.fromiter((len(t) for t in token_lists), np.int64, len(token_lists))
        flat = np.fromiter((t for doc in token_lists for t in doc), np.int32, int(lengths.sum()))
        self._offsets.append(self._offsets.array[-1] + np.cumsum(lengths))
        self._tokens.append(flat)
        self._ids.append(new_ids)
        self._deleted.append(np.zeros(len(new_ids), bool))
        self._built = None

    def delete(self, ids: Any) -> int:
        """Remove the documents with these ids; ids not held are ignored (a collection may hold
        vectors without text). Returns how many documents were removed."""
        wanted = np.atleast_1d(np.asarray(ids))
        if wanted.size == 0:
            return 0
        wanted = np.unique(wanted.ravel())
        wanted = as_ids(wanted, len(wanted))
        hit = np.isin(self._ids.array, wanted) & ~self._deleted.array
        n = int(hit.sum())
        if n:
            self._deleted.mark(np.flatnonzero(hit))
            self._deleted_dirty = True
            self._built = None
        return n

    def compact(self) -> None:
        """Drop deleted rows and terms no live document uses; the next save rewrites all."""
        keep = ~self._deleted.array
        offsets = self._offsets.array
        lengths = np.diff(offsets)[keep]
        token_keep = np.repeat(keep, np.diff(offsets))
        tokens = self._tokens.array[token_keep]
        used = np.zeros(len(self._terms), bool)
        used[tokens] = True
        remap = np.cumsum(used) - 1
        terms = [t for t, u in zip(self._terms, used.tolist()) if u]
        ids = self._ids.array[keep]
        self._ids = GrowableArray(ids)
        self._offsets = GrowableArray(np.r_[0, np.cumsum(lengths)])
        self._tokens = GrowableArray(remap[tokens].astype(np.int32))
        self._deleted = Tombstones(np.zeros(len(ids), bool))
        self._set_vocab(terms)
        self._saved = []
        self._deleted_file = None
        self._deleted_dirty = False
        self._built = None

    # -- searching -----------------------------------------------------------------------------
    def search(
        self, query_texts: Sequence[str], k: int = 10, allow_ids: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (ids (nq, k) int64, scores (nq, k) float32) per query, best first.

        Only documents sharing at least one term with the query are returned; the rest of the
        row is id -1 with score -inf. ``allow_ids`` restricts results to those ids (a filter).
        """
        queries = _check_texts(query_texts, "query_texts", allow_empty=False)
        k = check_k(k)
        nq = len(queries)
        out_ids = np.full((nq, k), -1, np.int64)
        out_scores = np.full((nq, k), -np.inf, np.float32)
        if len(self) == 0:
            return out_ids, out_scores
        retriever, live_ids = self._ensure_built()
        q_tokens = self._tokenizer.tokenize(
            queries, update_vocab=False, show_progress=False, allow_empty=False
        )
        rows = [i for i, t in enumerate(q_tokens) if t]
        if not rows:
            return out_ids, out_scores
        mask = None
        if allow_ids is not None:
            allow = np.asarray(allow_ids, dtype=np.int64).ravel()
            mask = np.isin(live_ids, allow).astype(np.float32)
        kk = min(k, len(live_ids))
        docs, scores = retriever.retrieve(
            [q_tokens[i] for i in rows],
            k=kk,
            show_progress=False,
            n_threads=0,
            weight_mask=mask,
        )
        scores = np.asarray(scores, np.float32)
        hit = scores > 0
        out_ids[rows, :kk] = np.where(hit, live_ids[np.asarray(docs)], -1)
        out_scores[rows, :kk] = np.where(hit, scores, -np.inf)
        return out_ids, out_scores

    def _ensure_built(self) -> tuple[bm25s.BM25, np.ndarray]:
        built = self._built
        if built is not None:
            return built
        live = ~self._deleted.array
        offsets = self._offsets.array
        starts, ends = offsets[:-1][live], offsets[1:][live]
        flat = self._tokens.array.tolist()
        corpus = [flat[a:b] for a, b in zip(starts.tolist(), ends.tolist())]
        vocab = dict(zip(self._terms, range(len(self._terms))))
        retriever = bm25s.BM25(k1=self.k1, b=self.b, method=self.method, backend="numpy")
        retriever.index((corpus, vocab), create_empty_token=False, show_progress=False)
        self._built = (retriever, self._ids.array[live].copy())
        return self._built

    # -- persistence ---------------------------------------------------------------------------
    def save(self, directory: str | Path, generation: int) -> list[str]:
        """Write what changed since the last save as ``bm25-<generation>*`` files (fsynced) and
        return the names of every file the index now consists of, for the manifest.

        ``generation`` must be the collection's next, not-yet-committed generation; it must
        grow from one save to the next, so files of committed generations are never rewritten.
        """
        directory = Path(directory)
        check_int(generation, "generation", low=0)
        if generation <= self._generation:
            raise InvalidInputError(
                f"generation {generation} was already used (last {self._generation}); pass the "
                f"collection's next generation so committed files are never rewritten"
            )
        tag = f"{PREFIX}-{int(generation):06d}"
        saved = [s for s in self._saved if (directory / s[0]).is_file()]
        if len(saved) != len(self._saved):  # a file vanished: rewrite everything
            saved, self._deleted_file, self._deleted_dirty = [], None, self._deleted.count > 0
        row0 = saved[-1][2] if saved else 0
        term0 = saved[-1][4] if saved else 0
        n_rows, n_terms = len(self._ids.array), len(self._terms)
        if row0 < n_rows or term0 < n_terms or not saved:
            name = f"{tag}-seg.npz"
            offsets = self._offsets.array
            blob, term_offsets = _encode_terms(self._terms[term0:])
            save_arrays(
                directory / name,
                {
                    "ids": self._ids.array[row0:],
                    "offsets": offsets[row0:] - offsets[row0],
                    "tokens": self._tokens.array[offsets[row0] :],
                    "terms": blob,
                    "term_offsets": term_offsets,
                    "start": np.array([row0, term0], np.int64),
                },
            )
            saved.append((name, row0, n_rows, term0, n_terms))
        if self._deleted_dirty and (self._deleted.count or self._deleted_file):
            self._deleted_file = f"{tag}-del.npy"
            save_array(directory / self._deleted_file, np.packbits(self._deleted.array))
        header = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "generation": int(generation),
            "bm25s_version": bm25s.__version__,
            "params": self._params(),
            "segments": [s[0] for s in saved],
            "deleted": self._deleted_file,
            "rows": n_rows,
            "terms": n_terms,
        }
        atomic_write_text(directory / f"{tag}.json", json.dumps(header, indent=1))
        fsync_dir(directory)
        self._saved = saved
        self._deleted_dirty = False
        self._generation = int(generation)
        files = [f"{tag}.json", *header["segments"]]
        return files + ([self._deleted_file] if self._deleted_file else [])

    @classmethod
    def load(cls, directory: str | Path, file_names: Iterable[str]) -> BM25Index:
        """Open the index a ``save`` wrote, from the file names a manifest recorded."""
        directory = Path(directory)
        names = list(file_names)
        headers = [n for n in names if n.startswith(f"{PREFIX}-") and n.endswith(".json")]
        if len(headers) != 1:
            raise CorruptCollectionError(
                f"expected one {PREFIX}-<generation>.json among the BM25 files, got {headers}"
            )
        path = directory / headers[0]
        try:
            header = json.loads(path.read_text(encoding="utf-8"))
            if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
                raise CorruptCollectionError(
                    f"{path} is not a {FORMAT} v{FORMAT_VERSION} header; upgrade slimvec"
                )
            missing = [s for s in header["segments"] if s not in names]
            if missing or (header["deleted"] and header["deleted"] not in names):
                raise CorruptCollectionError(
                    f"{path} lists files the manifest does not: {missing or header['deleted']}"
                )
            index = cls(**header["params"])
            index._restore(directory, header)
        except CorruptCollectionError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CorruptCollectionError(
                f"BM25 index files are missing or damaged ({exc})"
            ) from exc
        return index

    def _restore(self, directory: Path, header: dict[str, Any]) -> None:
        ids, offsets, tokens, terms, saved = [], [np.zeros(1, np.int64)], [], [], []
        rows = n_terms = n_tokens = 0
        for name in header["segments"]:
            seg = load_arrays(directory / name)
            row0, term0 = (int(v) for v in seg["start"])
            if row0 != rows or term0 != n_terms:
                raise CorruptCollectionError(f"BM25 segment {name} is out of order")
            ids.append(seg["ids"])
            offsets.append(seg["offsets"][1:] + n_tokens)
            tokens.append(seg["tokens"])
            seg_terms = _decode_terms(seg["terms"], seg["term_offsets"])
            terms.extend(seg_terms)
            rows += len(seg["ids"])
            n_terms += len(seg_terms)
            n_tokens += len(seg["tokens"])
            saved.append((name, row0, rows, term0, n_terms))
        if rows != header["rows"] or n_terms != header["terms"]:
            raise CorruptCollectionError("BM25 segments do not add up to the header's counts")
        all_tokens = np.concatenate(tokens) if tokens else np.empty(0, np.int32)
        if len(all_tokens) and (all_tokens.min() < 0 or all_tokens.max() >= n_terms):
            raise CorruptCollectionError("BM25 segment holds term ids outside its vocabulary")
        self._ids = GrowableArray(np.concatenate(ids) if ids else np.empty(0, np.int64))
        self._offsets = GrowableArray(np.concatenate(offsets))
        self._tokens = GrowableArray(all_tokens)
        deleted = np.zeros(rows, bool)
        if header["deleted"]:
            packed = load_array(directory / header["deleted"])
            deleted = np.unpackbits(packed, count=rows).astype(bool)
        self._deleted = Tombstones(deleted)
        self._set_vocab(terms)
        self._saved = saved
        self._deleted_file = header["deleted"]
        self._generation = int(header["generation"])

    # -- helpers -------------------------------------------------------------------------------
    def _set_vocab(self, terms: list[str]) -> None:
        """Make the tokenizer assign exactly these term ids (and new ones after them)."""
        self._terms = list(terms)
        self._tokenizer.reset_vocab()
        vocab = {t: i for i, t in enumerate(self._terms)}
        if self.stemmer is None:
            self._tokenizer.word_to_id = vocab
        else:
            self._tokenizer.stem_to_sid = vocab

    def _params(self) -> dict[str, Any]:
        return {
            "k1": self.k1,
            "b": self.b,
            "method": self.method,
            "stopwords": list(self.stopwords) if self.stopwords is not None else None,
            "stemmer": self.stemmer,
            "lower": self.lower,
            "token_pattern": self.token_pattern,
        }


def _resolve_stopwords(stopwords: str | Sequence[str] | None) -> list[str] | None:
    if stopwords is None or stopwords is False:
        return None
    if isinstance(stopwords, str):
        try:
            return list(_infer_stopwords(stopwords))
        except ValueError as exc:
            raise InvalidInputError(
                f"no built-in stopword list for {stopwords!r} ({exc}); pass a list of words "
                f"or stopwords=None"
            ) from exc
    words = list(stopwords)
    if not all(isinstance(w, str) for w in words):
        raise InvalidInputError("stopwords must be a language name, a list of strings, or None")
    return words


def _check_texts(texts: Any, what: str, allow_empty: bool) -> list[str]:
    """A non-empty list of strings (one string counts as one text, as in the collection)."""
    if isinstance(texts, str):
        texts = [texts]
    try:
        items = list(texts)
    except TypeError as exc:
        raise InvalidInputError(f"{what} must be a list of strings") from exc
    if not items:
        raise InvalidInputError(f"{what} is empty: pass at least one text")
    bad = [i for i, t in enumerate(items) if not isinstance(t, str)]
    if bad:
        raise InvalidInputError(
            f"{what} must all be strings; items {bad[:10]} are {type(items[bad[0]]).__name__}"
        )
    if not allow_empty:
        blank = [i for i, t in enumerate(items) if not t.strip()]
        if blank:
            raise InvalidInputError(
                f"{what} {blank[:10]} are empty or whitespace; every query needs some words"
            )
    return items


def _encode_terms(terms: list[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [t.encode("utf-8") for t in terms]
    lengths = np.fromiter(map(len, encoded), np.int64, len(encoded))
    blob = np.frombuffer(b"".join(encoded), np.uint8)
    return blob, np.r_[0, np.cumsum(lengths)].astype(np.int64)


def _decode_terms(blob: np.ndarray, offsets: np.ndarray) -> list[str]:
    raw = blob.tobytes()
    bounds = offsets.tolist()
    return [raw[a:b].decode("utf-8") for a, b in pairwise(bounds)]
