"""An in-memory array that grows by appending rows, in amortised O(1) per row."""

from __future__ import annotations

import numpy as np


class GrowableArray:
    """Rows appended at the end; ``array`` is a view of the rows so far (writable).

    Capacity doubles when full, so n single-row appends copy O(n) rows in total, not O(n^2).
    """

    def __init__(self, initial: np.ndarray):
        self._data = np.array(initial, copy=True)
        self._n = len(initial)

    @classmethod
    def empty(cls, dtype: np.dtype | type, width: int | None = None) -> GrowableArray:
        return cls(np.empty((0,) if width is None else (0, width), dtype))

    def append(self, rows: np.ndarray) -> None:
        need = self._n + len(rows)
        if need > len(self._data):
            shape = (max(need, 2 * len(self._data), 16), *self._data.shape[1:])
            grown = np.empty(shape, self._data.dtype)
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[self._n : need] = rows
        self._n = need

    @property
    def array(self) -> np.ndarray:
        return self._data[: self._n]
