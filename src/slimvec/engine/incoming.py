"""Rows on their way into a segment, read a block at a time, and the memory an add may use.

An add of any size streams: the writer reads the caller's rows in blocks of ``block_rows``,
checks, normalises and encodes each block, and appends it to the new segment's files
(``store.segments.write_segment``), so its working memory is the add budget whatever the
size of the input, and the caller's array is never copied whole (a memory-mapped float16
file stays on disk). The budget is ``ADD_MEMORY`` bytes, or ``$SLIMVEC_ADD_MEMORY``
(``"512M"``, ``"2G"``, bytes).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from slimvec.errors import InvalidInputError
from slimvec.store.segments import whole, write_segment
from slimvec.validation import check_finite, check_nonzero, finite_rows, normalise

#: Working memory of an add beyond the caller's array, unless ``$SLIMVEC_ADD_MEMORY`` says.
ADD_MEMORY = 1 << 30
#: Working bytes per row and input dimension while a block is encoded (float32 rows, their
#: normalised and transformed copies, a codec's rotated residuals and codes; measured with
#: tracemalloc in tests/test_streaming_add.py, with room to spare).
BYTES_PER_ROW_DIM = 64
#: ... and while the pipeline is fitted on the first rows (PCA takes a float64 copy).
FIT_BYTES_PER_ROW_DIM = 16
#: The first fit takes every row of the first segment up to this many (``fit_rows``), else a
#: sample of that many: as many as refits stop at (``engine.writer.REFIT_ENOUGH``).
MAX_FIT_ROWS = 65_536
#: Rows per encoding chunk of rows held whole, and (x 8) where an add's bar starts to show.
ENCODE_CHUNK = 65_536
#: Largest block: beyond it blocks cost more Python overhead than they save.
MAX_BLOCK_ROWS = 65_536
#: Blocks are whole multiples of the table-scan layout's 32 rows, so block layouts concatenate.
BLOCK_ALIGN = 32
#: ``write_blocks``'s source of a new segment's arrays: rows lo:hi -> their arrays.
Block = Callable[[int, int], dict[str, np.ndarray]]
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def add_memory() -> int:
    """The add budget in bytes: ``$SLIMVEC_ADD_MEMORY`` if set, else ``ADD_MEMORY``."""
    text = os.environ.get("SLIMVEC_ADD_MEMORY")
    if not text:
        return ADD_MEMORY
    match = _SIZE.match(text)
    if not match:
        raise InvalidInputError(
            f"SLIMVEC_ADD_MEMORY={text!r} is not a size; give bytes or e.g. '512M', '2G'"
        )
    number, unit = match.groups()
    return int(float(number) * 1024 ** ("kmgt".find(unit.lower()) + 1 if unit else 0))


def block_rows(width: int) -> int:
    """Rows per block for ``width``-dimensional rows under the add budget (at least 32)."""
    rows = add_memory() // (BYTES_PER_ROW_DIM * max(width, 1))
    return max(BLOCK_ALIGN, min(MAX_BLOCK_ROWS, rows) // BLOCK_ALIGN * BLOCK_ALIGN)


def fit_rows(width: int) -> int:
    """Rows the pipeline is first fitted on, under the add budget (at least 1,024)."""
    return max(1024, min(MAX_FIT_ROWS, add_memory() // (FIT_BYTES_PER_ROW_DIM * max(width, 1))))


class Incoming:
    """Rows being added: the caller's ``array`` (any real dtype, already of the right shape:
    ``validation.as_array``) read, checked and, for cosine, normalised block by block.

    A NaN, an infinity or (cosine) an all-zero row makes the read raise the error
    ``as_matrix`` / ``normalise`` give for the whole input, naming its bad rows: the input is
    checked whole only then, before anything is committed. ``head``: rows already checked
    (the write-ahead log's) that come first.
    """

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
        h = len(self.head)
        own = self._checked(self.array[rows[rows >= h] - h])
        return np.concatenate([self.head[rows[rows < h]], own])

    def all(self) -> np.ndarray:
        return self.rows(0, len(self))

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


def fit_sample(x: Incoming, width: int, seed: int) -> np.ndarray:
    """What the pipeline is first fitted on: every row of ``x`` up to ``fit_rows``, else a
    seeded sample of that many."""
    n, limit = len(x), fit_rows(width)
    if n <= limit:
        return x.all()
    return x.take(np.sort(np.random.default_rng(seed).choice(n, limit, replace=False)))


def write_blocks(view: Any, name: str, n: int, block: Block, progress: bool | None = None) -> None:
    """Segment ``name`` of ``n`` rows of ``view``'s format; ``block(lo, hi)``: the arrays of
    rows ``lo:hi`` (ids, row arrays, codes), to which the table-scan files are added. Written
    in blocks of ``block_rows``, so the segment is never whole in memory; formats that do
    not stream (multi-vector) give it as one block. ``progress``: a bar (None: for long
    writes, on a terminal)."""
    rows = view.rows
    if not rows.streams:
        arrays = block(0, n)
        write_segment(view.path, name, *whole({**arrays, **rows.table_arrays(arrays)}))
        return
    step = block_rows(max(view.manifest.dim, view.pipeline.out_dim))
    quiet = (n < 8 * ENCODE_CHUNK or None) if progress is None else not progress
    layout = {**rows.layout(n), **(rows.table_layout(n) if rows.table_scan else {})}

    def blocks() -> Iterator[dict[str, np.ndarray]]:
        with tqdm(total=n, desc="encoding", unit="row", disable=quiet) as bar:
            for lo in range(0, n, step):
                arrays = block(lo, min(n, lo + step))
                yield {**arrays, **rows.table_arrays(arrays)}
                bar.update(len(arrays["ids"]))

    write_segment(view.path, name, layout, blocks())


def encode_whole(pipeline: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    """Codes of rows held whole (multi-vector adds), encoded in chunks."""
    chunks = range(0, len(x), ENCODE_CHUNK)
    parts = [
        pipeline.encode(x[start : start + ENCODE_CHUNK])
        for start in tqdm(chunks, desc="encoding", unit="chunk", disable=len(chunks) < 8 or None)
    ]
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
