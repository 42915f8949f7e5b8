"""Arrow list<double> columns from per-row float arrays, without Python loops (the store's benchmark series)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def _list_array(values: list, rows_per_piece: int = 256) -> pa.ChunkedArray:
    """A list<double> Arrow column from per-row float arrays (None for failed runs), built without Python loops.

    Rows that are consecutive rows of one C-contiguous block (a fast-engine chunk's returns) become a
    piece over that block's memory, without a copy; other rows are copied in pieces of a few hundred:
    one flat buffer for a whole batch (tens of MB) is a fresh memory mapping each time, and touching its
    pages cost more than the copy itself.
    """
    pieces = []
    start = 0
    while start < len(values):
        run = _block_run(values, start)
        if run is not None:
            flat, count, n = run
            stop = start + count
            offsets = np.arange(0, count * n + 1, n, dtype=np.int32)
            pieces.append(pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=pa.float64())))
        else:
            stop = start + 1
            while stop < len(values) and stop - start < rows_per_piece and _block_run(values, stop) is None:
                stop += 1
            part = values[start:stop]
            lengths = np.array([0 if v is None else len(v) for v in part], dtype=np.int32)
            offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
            flat = np.concatenate([np.asarray(v, dtype="float64") for v in part if v is not None] or [np.empty(0)])
            mask = pa.array([v is None for v in part], type=pa.bool_())
            pieces.append(pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=pa.float64()), mask=mask))
        start = stop
    return pa.chunked_array(pieces, type=pa.list_(pa.float64()))


def _block_run(values: list, start: int) -> tuple[np.ndarray, int, int] | None:
    """``(flat, rows, length)`` when ``values[start:]`` begins with at least two float64 rows lying back to back
    in one array's memory (the rows of a fast-engine chunk's returns block): ``flat`` views that memory."""
    first = values[start]
    base = getattr(first, "base", None)
    if not isinstance(base, np.ndarray) or not base.flags.c_contiguous or base.dtype != np.float64:
        return None
    if first.ndim != 1 or not first.flags.c_contiguous or first.dtype != np.float64 or len(first) == 0:
        return None
    n = len(first)
    at = first.ctypes.data
    k = start + 1
    while k < len(values):
        v = values[k]
        if (
            getattr(v, "base", None) is not base or v.shape != (n,) or v.dtype != np.float64
            or v.strides != (8,) or v.ctypes.data != at + (k - start) * n * 8
        ):  # fmt: skip
            break
        k += 1
    count = k - start
    if count < 2:
        return None
    offset = (at - base.ctypes.data) // 8
    return base.reshape(-1)[offset : offset + count * n], count, n


__all__ = ["_list_array"]
