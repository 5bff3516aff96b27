"""The paired sample an upgrade is fitted on: the same texts seen by the old and the new model.

Two kinds of pairs, because the adapters and calibrators serve *queries*:

* documents — sample documents embedded by the new model, their old vectors read from the
  collection (exactly what the index holds);
* query probes — short snippets of those documents (a sentence each) embedded *as queries* by
  both models. Asymmetric models (e5, Gemma) put queries elsewhere than documents, so document
  pairs alone teach an adapter the wrong distribution and make document-document cosines a
  biased stand-in for query-document scores. Measured on Debian with 5% samples: adding the
  snippet pairs lifted adapter recall@10 by 7-16 points between MiniLM and e5 (a one-off run,
  2 seeds); benchmarks/upgrade.py adds 200 real paired queries instead: Procrustes +10 to +16
  points across families, score matching -2 to +11. And merging the two models' raw cosines
  during a backfill fails outright for MiniLM + e5 (0.48 recall@10; e5's cosines sit far
  higher) unless they are calibrated on query-like probes (0.89).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from slimvec.errors import InvalidInputError
from slimvec.search.funnel import ORIGINAL
from slimvec.validation import as_texts

#: Default sample: this fraction of the stored documents, clipped to [MIN, MAX].
SAMPLE_FRACTION = 0.05
SAMPLE_MIN = 200
SAMPLE_MAX = 5_000
#: Query probes: up to PER_TEXT sentences of each sample text, MIN_WORDS..MAX_WORDS words,
#: at most PROBES in all (each is embedded by both models).
PER_TEXT = 3
MIN_WORDS, MAX_WORDS = 4, 24
PROBES = 1_000
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass
class PairedSample:
    """Row i of ``new_*`` and ``old_*`` is one text in both models (unit vectors)."""

    new_docs: np.ndarray
    old_docs: np.ndarray
    new_queries: np.ndarray  # (0, new_dim) when only vectors were given
    old_queries: np.ndarray
    source: str  # "pairs", "texts" or "stored"

    @property
    def new(self) -> np.ndarray:
        """Every new-model vector, documents then query probes (what adapters fit on)."""
        return np.vstack([self.new_docs, self.new_queries])

    @property
    def old(self) -> np.ndarray:
        return np.vstack([self.old_docs, self.old_queries])


def query_snippets(texts: Sequence[str], seed: int = 0) -> list[str]:
    """Query-like probes: the first ``PER_TEXT`` sentences of ``MIN_WORDS`` or more words of each
    text, cut to ``MAX_WORDS`` words, at most ``PROBES`` of them (a seeded choice)."""
    snippets = []
    for text in texts:
        sentences = (s.split() for s in _SENTENCE_END.split(text))
        kept = [" ".join(w[:MAX_WORDS]) for w in sentences if len(w) >= MIN_WORDS]
        snippets += kept[:PER_TEXT]
    if len(snippets) > PROBES:
        chosen = np.random.default_rng(seed).choice(len(snippets), PROBES, replace=False)
        snippets = [snippets[i] for i in np.sort(chosen)]
    return snippets


def draw_sample(
    col: Any,
    new_encoder: Any,
    sample_texts: Sequence[str] | None,
    sample_pairs: tuple[Any, Any] | None,
    seed: int,
) -> PairedSample:
    """``sample_pairs = (new_vectors, old_vectors)`` as given, or ``sample_texts`` embedded by
    both models, or by default a seeded ~5% (200 to 5,000) of the stored documents."""
    if sample_pairs is not None:
        if not isinstance(sample_pairs, (tuple, list)) or len(sample_pairs) != 2:
            raise InvalidInputError(
                "sample_pairs must be (new_vectors, old_vectors): the same texts embedded by "
                "the new and by the old model"
            )
        new, old = (np.asarray(a, dtype=np.float32) for a in sample_pairs)
        for what, x, dim in (("new", new, new_encoder.dim), ("old", old, col.dim)):
            if x.ndim != 2 or x.shape[1] != dim:
                raise InvalidInputError(
                    f"sample_pairs' {what}-model vectors must have shape (n, {dim}), got {x.shape}"
                )
        no_new, no_old = np.empty((0, new.shape[1]), np.float32), np.empty((0, col.dim), np.float32)
        return PairedSample(unit(new), unit(old), no_new, no_old, "pairs")
    if sample_texts is not None:
        texts = as_texts(sample_texts, "sample_texts")
        old, source = col.encoder.encode(texts, kind="doc"), "texts"
    else:
        live = col.live_ids()
        with_text = np.setdiff1d(live, without_text(col, live))
        n = int(np.clip(round(SAMPLE_FRACTION * len(with_text)), SAMPLE_MIN, SAMPLE_MAX))
        rng = np.random.default_rng(seed)
        ids = np.sort(rng.choice(with_text, size=min(n, len(with_text)), replace=False))
        texts = col.texts(ids)
        old, source = stored_vectors(col, ids), "stored"
    new = new_encoder.encode(texts, kind="doc")
    snippets = query_snippets(texts, seed)
    return PairedSample(
        unit(new),
        unit(old),
        new_encoder.encode(snippets, kind="query").reshape(-1, new_encoder.dim),
        col.encoder.encode(snippets, kind="query").reshape(-1, col.dim),
        source,
    )


def without_text(col: Any, ids: np.ndarray) -> np.ndarray:
    """Those of live ``ids`` stored without a text (a backfill cannot re-embed them)."""
    ids = np.asarray(ids)
    return ids[[text is None for text in col.texts(ids)]]


def stored_vectors(col: Any, ids: np.ndarray) -> np.ndarray:
    """The float32 vectors the collection stores for live ``ids``."""
    rows, _ = col.rows_of(ids)
    return col.gather(ORIGINAL, rows)


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
