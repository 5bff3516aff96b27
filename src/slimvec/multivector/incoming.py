"""Token sets on their way into a segment, a block of documents at a time.

The multi-vector side of :mod:`slimvec.engine.incoming`: an add of any number of documents
holds the caller's list plus the add budget. Each block's tokens are read, checked,
normalised, pooled and encoded (FDE codes, token codes) just before they are appended to the
segment's files. Token sets are ragged, so blocks are cut by their documents' widths (tokens
x dim, plus the FDE) under the same rule as single-vector rows (``store.budget``). The stored
token count of every document is known before anything is read (pooling keeps
``ceil(n / pool_factor)``), so the segment's token file is laid out once and written in order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from slimvec.errors import InvalidInputError
from slimvec.store.budget import fit_rows, weighted_starts
from slimvec.transforms.fde import check_token_sets, owning_sets, pack_checked
from slimvec.validation import normalise


class TokenIncoming:
    """Documents' token sets being added (the caller's matrices, structure checked now,
    values as each block is read). ``sizes``: stored tokens per document (after pooling)."""

    def __init__(self, token_sets: Any, rows: Any):
        self.mats = check_token_sets(token_sets, rows.dim, "documents")
        self.fde, self.pooler, self.cosine = rows.fde, rows.pooler, rows.metric == "cosine"
        lengths = np.fromiter(map(len, self.mats), np.int64, len(self.mats))
        self.sizes = -(-lengths // self.pooler.pool_factor)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)])  # in the new segment
        self.widths = widths(lengths, rows)

    def __len__(self) -> int:
        return len(self.mats)

    def starts(self, width: int) -> np.ndarray:
        """First documents of the blocks the add is read in (by their own widths: tokens and
        FDE; ``width``, the pipeline's, is not what a document costs)."""
        return weighted_starts(self.widths)

    def tokens(self, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Checked, normalised (cosine) and pooled CSR tokens of sorted documents ``docs``."""
        tokens, offsets = pack_checked([self.mats[i] for i in docs], "documents", docs)
        if self.cosine:
            tokens = normalise_sets(tokens, offsets, "documents", docs)
        return self.pooler.transform(tokens, offsets)

    def block(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(FDEs, tokens, offsets) of documents ``lo:hi``."""
        tokens, offsets = self.tokens(np.arange(lo, hi))
        return self.fde.encode_packed(tokens, offsets, query=False), tokens, offsets

    def fit_docs(self, seed: int) -> np.ndarray:
        """Documents the first fit takes: all up to ``fit_rows`` of their mean width, else a
        seeded sample of that many (they stand for the rest, as rows do in ``fit_sample``)."""
        n, limit = len(self), fit_rows(int(self.widths.mean()))
        if n <= limit:
            return np.arange(n)
        return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def widths(tokens: np.ndarray, rows: Any) -> np.ndarray:
    """Working floats of documents of ``tokens`` tokens each (its tokens, and its FDE): what
    the blocks of a write of token sets are cut by (``weighted_starts``)."""
    return tokens * rows.dim + rows.fde.out_dim


def placed(offsets: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """What documents ``lo:hi`` of a new segment (its token ``offsets``) append to its
    offsets file, written block by block: their ends (the first block the leading 0 too)."""
    return offsets[lo + 1 : hi + 1] if lo else offsets[: hi + 1]


def normalise_sets(
    tokens: np.ndarray, offsets: np.ndarray, what: str, numbers: np.ndarray | None = None
) -> np.ndarray:
    """Unit-norm CSR tokens (``validation.normalise``), refusing all-zero ones (no direction
    for cosine) by naming their sets (``numbers``: as in ``owning_sets``)."""

    def refuse(rows: np.ndarray) -> None:
        bad = owning_sets(rows, offsets, numbers)
        raise InvalidInputError(
            f"{what} {bad[:10].tolist()}{' ...' if len(bad) > 10 else ''} hold all-zero token "
            f"vectors, which have no direction for cosine similarity; drop them"
        )

    return normalise(tokens, what, refuse)
