"""Rows on their way into a segment, read a block at a time.

An add of any size streams: the writer reads the caller's rows in blocks of ``block_rows``,
checks, normalises and encodes each block, and appends it to the new segment's files
(``store.segments.write_segment``), so its working memory is the add budget
(``store.budget``: 1 GiB, or ``$SLIMVEC_ADD_MEMORY``) whatever the size of the input, and
the caller's array is never copied whole (a memory-mapped float16 file stays on disk).
Merges and compactions copy stored rows into their new segment the same way (``Stored``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from slimvec.errors import InvalidInputError
from slimvec.store.budget import block_rows, fit_rows
from slimvec.store.segments import write_segment
from slimvec.validation import check_finite, check_nonzero, finite_rows, normalise

#: Rows from which a write's bar shows (on a terminal, unless asked).
BAR_ROWS = 8 * 65_536
#: ``write_blocks``'s source of a new segment's arrays: rows lo:hi -> their arrays.
Block = Callable[[int, int], dict[str, np.ndarray]]


class Incoming:
    """Rows being added: the caller's ``array`` (any real dtype, already of the right shape:
    ``validation.as_array``) read, checked and, for cosine, normalised block by block.

    A NaN, an infinity or (cosine) an all-zero row makes the read raise the error
    ``as_matrix`` / ``normalise`` give for the whole input, naming its bad rows: the input is
    checked whole only then, before anything is committed. ``head``: rows already checked
    (the write-ahead log's) that come first.
    """

    #: Rows are as wide as each other (token sets give each one's stored token count).
    sizes = None

    def __init__(self, array: np.ndarray, cosine: bool, head: np.ndarray | None = None):
        self.array, self.cosine = array, cosine
        self.head = np.empty((0, array.shape[1]), np.float32) if head is None else head

    def __len__(self) -> int:
        return len(self.head) + len(self.array)

    def after(self, head: np.ndarray) -> Incoming:
        """These rows behind ``head``."""
        return Incoming(self.array, self.cosine, head)

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """Rows ``lo:hi`` as checked float32."""
        h = len(self.head)
        own = self._checked(self.array[max(lo - h, 0) : max(hi - h, 0)]) if hi > h else None
        if lo >= h:
            return own
        head = self.head[lo : min(hi, h)]
        return head if own is None else np.concatenate([head, own])

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows at sorted positions ``rows``, as checked float32 (a fitting sample)."""
        h, step = len(self.head), block_rows(self.array.shape[1])
        own = rows[rows >= h] - h
        blocks = [self._checked(self.array[own[i : i + step]]) for i in range(0, len(own), step)]
        return np.concatenate([self.head[rows[rows < h]], *blocks])

    def all(self) -> np.ndarray:
        return self.rows(0, len(self))

    def starts(self, width: int) -> np.ndarray:
        """First rows of the blocks the add is read in (``even_starts``)."""
        return even_starts(len(self), width)

    def _checked(self, block: np.ndarray) -> np.ndarray:
        x = finite_rows(block, "vectors", self._fail)
        if not self.cosine:
            return x
        try:
            return normalise(x)
        except InvalidInputError:
            self._fail()
            raise

    def _fail(self) -> None:
        check_finite(self.array, "vectors")
        if self.cosine:
            check_nonzero(self.array, "vectors")


class Stored:
    """Stored ``rows`` of ``view`` on their way into a new segment (a merge, a compaction):
    ``write_blocks``'s source, copied ``block_rows`` at a time as an add is read, so a merge
    holds the add budget, not the merged segments. ``keys``: the arrays ``block`` gathers by
    row (every stored one unless a row format copies some its own way)."""

    #: Rows are as wide as each other (stored token sets give each one's token count).
    sizes = None

    def __init__(self, view: Any, rows: np.ndarray, keys: list[str] | None = None):
        self.view, self.rows = view, rows
        self.keys = list(view.rows.layout(0)) if keys is None else keys

    def __len__(self) -> int:
        return len(self.rows)

    def starts(self, width: int) -> np.ndarray:
        """First rows of the blocks the rows are copied in (``even_starts``)."""
        return even_starts(len(self), width)

    def block(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Every stored array of rows ``lo:hi``, as the new segment holds them."""
        rows = self.rows[lo:hi]
        return {key: self.view.gather(key, rows) for key in self.keys}


def even_starts(n: int, width: int) -> np.ndarray:
    """First rows of the blocks ``n`` rows of ``width`` floats (the widest array a row
    becomes) are written in: ``block_rows`` apart."""
    return np.arange(0, n, block_rows(width))


def fit_sample(x: Incoming, width: int, seed: int) -> np.ndarray:
    """What the pipeline is first fitted on: every row of ``x`` up to ``fit_rows``, else a
    seeded sample of that many."""
    n, limit = len(x), fit_rows(width)
    if n <= limit:
        return x.all()
    return x.take(np.sort(np.random.default_rng(seed).choice(n, limit, replace=False)))


def write_blocks(
    view: Any,
    name: str,
    n: int,
    block: Block,
    progress: bool | None = None,
    source: Incoming | Stored | Any = None,
) -> None:
    """Segment ``name`` of ``n`` rows of ``view``'s format; ``block(lo, hi)``: the arrays of
    rows ``lo:hi`` (ids, row arrays, codes), to which the table-scan files are added. Written
    in blocks, so the segment is never whole in memory. ``source``: the rows being written
    (an add's, or the stored rows a merge or compaction copies: ``Stored``), which say where
    its blocks start and (token sets) how many tokens each row stores; none (a refit's
    re-encoding): blocks of ``block_rows``. ``progress``: a bar (None: for long writes, on a
    terminal)."""
    rows = view.rows
    width = max(view.manifest.dim, view.pipeline.out_dim)
    starts = even_starts(n, width) if source is None else source.starts(width)
    sizes = None if source is None else source.sizes
    quiet = (n < BAR_ROWS or None) if progress is None else not progress
    layout = {**rows.layout(n, sizes), **(rows.table_layout(n) if rows.table_scan else {})}

    def blocks() -> Iterator[dict[str, np.ndarray]]:
        with tqdm(total=n, desc="encoding", unit="row", disable=quiet) as bar:
            for lo, hi in zip(starts, [*starts[1:], n]):
                arrays = block(int(lo), int(hi))
                yield {**arrays, **rows.table_arrays(arrays)}
                bar.update(len(arrays["ids"]))

    write_segment(view.path, name, layout, blocks())
