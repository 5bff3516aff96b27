"""The memory an add may use: ``ADD_MEMORY`` bytes beyond the caller's array, or
``$SLIMVEC_ADD_MEMORY`` (``"512M"``, ``"2G"``, bytes). Whatever grows with an add's size is
read, encoded and written in blocks of ``block_rows`` under it (``engine.incoming``, and the
IVF lists, ``index.ivf``), or of ``weighted_starts`` for ragged rows (token sets:
``multivector.incoming``). Scratch that does not grow with the add comes on top: a token
codebook's k-means assignments (``kernels.residual.ASSIGN_BLOCK`` x its centroids, ~35 MB)
and the FDE's projection chunk (``transforms.fde.CHUNK_TOKENS`` tokens)."""

from __future__ import annotations

import os
import re

import numpy as np

from slimvec.errors import InvalidInputError

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
#: Largest block: beyond it blocks cost more Python overhead than they save.
MAX_BLOCK_ROWS = 65_536
#: Blocks are whole multiples of the table-scan layout's 32 rows, so block layouts concatenate.
BLOCK_ALIGN = 32
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


def weighted_starts(widths: np.ndarray) -> np.ndarray:
    """First rows of the blocks rows of ragged ``widths`` (working floats each: a document's
    tokens) are written in, under the ``block_rows`` rule: whole ``BLOCK_ALIGN`` groups of rows
    whose widths sum to the budget's share, passing it by at most the block's last group."""
    groups = np.add.reduceat(np.asarray(widths, np.int64), np.arange(0, len(widths), BLOCK_ALIGN))
    before = np.cumsum(groups) - groups
    block = before // max(add_memory() // BYTES_PER_ROW_DIM, 1)
    return np.flatnonzero(np.diff(block, prepend=-1)) * BLOCK_ALIGN


def fit_rows(width: int) -> int:
    """Rows the pipeline is first fitted on, under the add budget (at least 1,024)."""
    return max(1024, min(MAX_FIT_ROWS, add_memory() // (FIT_BYTES_PER_ROW_DIM * max(width, 1))))
