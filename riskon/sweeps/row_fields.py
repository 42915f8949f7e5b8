"""What the store keeps of a run's daily returns instead of the returns: a digest, moments and per-block sums.

Runs are deterministic, so a run's daily returns are rebuilt on demand (``riskon.sweeps.rebuild``); the
store keeps only what the statistics over thousands of runs need, computed once when the run is stored:

* ``digest``: a 64-bit BLAKE2b hash of the returns' bytes. With ``returns_start`` and ``n_days`` it tells
  identical returns apart from different ones, so identical runs count as one trial (the deflated Sharpe
  ratio) and one CSCV column, and it checks a rebuild bit for bit.
* ``sr_day``, ``skew``, ``kurt``: ``moments`` of the returns in excess of the run's risk-free rate (the PSR
  and DSR inputs: per-day Sharpe ratio, skewness, non-excess kurtosis).
* ``blocks``: ``N_BLOCKS`` per-block sums of four statistics (``BLOCK_STATS``) for CSCV. The oldest
  ``n_days mod N_BLOCKS`` days are left out and the rest is cut into ``N_BLOCKS`` equal blocks, exactly as
  ``riskon.analysis.overfitting.pbo`` cuts a single-calendar sweep, and each block is summed with the same
  NumPy reduction, so the sums are the very doubles the in-memory CSCV adds.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

#: CSCV blocks stored per run (``riskon results --splits`` default). Other split counts rebuild the returns.
N_BLOCKS = 16
#: The per-day statistics summed per block, in this order: what Sharpe, Sortino and growth CSCV scores add up.
BLOCK_STATS = ("excess", "excess_sq", "excess_down_sq", "log_growth")


def digest(returns: np.ndarray) -> int:
    """A signed 64-bit BLAKE2b digest of a run's daily returns (their float64 bytes)."""
    return _digest_of(np.ascontiguousarray(returns, dtype=np.float64))


def _digest_of(row: np.ndarray) -> int:
    # hashlib reads the contiguous row in place (no copy) and releases the GIL while it hashes
    return int.from_bytes(hashlib.blake2b(memoryview(row).cast("B"), digest_size=8).digest(), "little", signed=True)


def moments_of(r: np.ndarray) -> tuple[float, float, float, int]:
    """Per-day Sharpe ratio (mean / std ddof=1), skewness, non-excess kurtosis and count; NaN when flat.

    The arithmetic of ``riskon.analysis.robustness.moments`` (which calls this) and of the stored moments
    (``fields_of_rows``: the same reductions, one run or many at a time), so they are the same doubles.
    """
    x = np.ascontiguousarray(r, dtype=np.float64)[None, :]
    return _moments(x, x * x)[0]


def _moments(x: np.ndarray, sq: np.ndarray) -> list[tuple[float, float, float, int]]:
    """``moments_of`` of every row of ``x`` (k × n, C-contiguous rows), given ``sq = x * x``.

    Each reduction runs along a contiguous row, exactly as on that row alone (NumPy's pairwise sum);
    powers are products (``dev² · dev``, ``dev² · dev²``: NumPy's ``**3`` and ``**4`` call ``pow`` per
    element, 5× slower).
    """
    n = x.shape[1]
    mean = x.mean(axis=1)
    dev = x - mean[:, None]
    dev2 = dev * dev
    m2s = dev2.mean(axis=1).tolist()
    m3s = (dev2 * dev).mean(axis=1).tolist()
    dev2 *= dev2
    m4s = dev2.mean(axis=1).tolist()
    mss = sq.mean(axis=1).tolist()
    out = []
    for mu, m2, m3, m4, ms in zip(mean.tolist(), m2s, m3s, m4s, mss, strict=True):
        if m2 <= 1e-12 * ms:  # constant within rounding
            out.append((math.nan, math.nan, math.nan, n))
            continue
        sd = math.sqrt(m2 * n / (n - 1))
        out.append((mu / sd, m3 / m2**1.5, m4 / m2**2, n))
    return out


def block_stats(returns: np.ndarray, excess: np.ndarray) -> list[np.ndarray]:
    """The per-day series of ``BLOCK_STATS`` (the elementwise formulas of ``riskon.analysis.overfitting``).

    Elementwise, so ``returns`` and ``excess`` may be one run (n) or several (k × n).
    """
    return [
        excess,
        excess * excess,
        np.minimum(excess, 0.0) ** 2,
        np.log1p(np.maximum(returns, -1.0 + 1e-15)),
    ]


def block_sums(series: list[np.ndarray], n_blocks: int = N_BLOCKS) -> np.ndarray | None:
    """``len(series)`` × ``n_blocks`` sums: the oldest ``n mod n_blocks`` days dropped, equal contiguous blocks.

    None when a block would hold fewer than 2 days (CSCV refuses such a split). Each block is reduced by
    ``ndarray.sum`` over a contiguous row, as ``pbo`` reduces a column of a single-calendar sweep.
    """
    sums = _block_sums([np.asarray(s, dtype=np.float64)[None, :] for s in series], n_blocks)
    return None if sums is None else sums[0]


def _block_sums(series: list[np.ndarray], n_blocks: int = N_BLOCKS) -> np.ndarray | None:
    """``block_sums`` of k runs at once: each series k × n (C-contiguous rows); a k × len(series) × S array."""
    k, n = series[0].shape
    block = n // n_blocks
    if block < 2:
        return None
    skip = n - block * n_blocks
    out = np.empty((k, len(series), n_blocks))
    for j, s in enumerate(series):  # each block a contiguous run of one row: the same sum as on that row alone
        out[:, j, :] = s[:, skip:].reshape(k, n_blocks, block).sum(axis=2)
    return out


def row_fields(returns: np.ndarray, rf: np.ndarray | None = None) -> dict:
    """The stored fields of one ok run from its daily returns and risk-free returns per day (None: 0)."""
    return fields_of_rows(np.asarray(returns, dtype=np.float64)[None, :], rf)[0]


#: Runs reduced together by ``fields_of_rows``: their temporaries stay in the processor's cache.
ROWS_AT_ONCE = 32


def fields_of_rows(returns: np.ndarray, rf: np.ndarray | None = None) -> list[dict]:
    """``row_fields`` of k runs of one length and one risk-free rate at once (``returns``: k × n).

    The same doubles as one run at a time (every reduction runs along a contiguous row), in about a
    quarter of the time: the store computes a sweep's fields with it (``Store.write_batch``).
    """
    r = np.ascontiguousarray(returns, dtype=np.float64)
    rf = None if rf is None else np.asarray(rf, dtype=np.float64)[None, :]
    out: list[dict] = []
    for lo in range(0, r.shape[0], ROWS_AT_ONCE):
        out += _fields(r[lo : lo + ROWS_AT_ONCE], rf)
    return out


def _fields(r: np.ndarray, rf: np.ndarray | None) -> list[dict]:
    k, n = r.shape
    excess = r if rf is None else r - rf
    sq = excess * excess
    moms = _moments(excess, sq) if n >= 2 else [(math.nan, math.nan, math.nan, n)] * k
    blocks = None
    if n:
        down = np.minimum(excess, 0.0)
        down *= down
        # log1p only where a run moved: a day in cash (±0.0) is its own log1p, and most runs sit in cash often
        growth = r.copy()
        moved = r != 0.0
        growth[moved] = np.log1p(np.maximum(r[moved], -1.0 + 1e-15))
        blocks = _block_sums([excess, sq, down, growth])
    return [
        {
            "n_days": int(n),
            "digest": _digest_of(r[i]),
            "sr_day": moms[i][0],
            "skew": moms[i][1],
            "kurt": moms[i][2],
            "blocks": None if blocks is None else blocks[i].tobytes(),
        }
        for i in range(k)
    ]


def add_fields(rows: list[dict]) -> None:
    """Replace each row's ``returns`` and ``rf`` by its stored fields (``row_fields``), many runs at a time.

    Rows whose returns have one length and one risk-free array are reduced together (``fields_of_rows``:
    the same doubles as one at a time, ~4x faster); a row that already has its fields keeps them.
    """
    groups: dict[tuple, list[tuple]] = {}
    for r in rows:
        returns, rf = r.pop("returns", None), r.pop("rf", None)
        if "digest" not in r and returns is not None:
            groups.setdefault((len(returns), id(rf)), []).append((r, returns, rf))
    for members in groups.values():
        rf = members[0][2]
        for lo in range(0, len(members), 1024):  # at most ~36 MB of returns stacked at once
            part = members[lo : lo + 1024]
            stacked = np.stack([np.asarray(returns, dtype=np.float64) for _, returns, _ in part])
            for (r, _, _), fields in zip(part, fields_of_rows(stacked, rf), strict=True):
                r.update(fields)


def unpack_blocks(blobs: list[bytes], n_blocks: int = N_BLOCKS) -> np.ndarray:
    """Stored ``blocks`` of N runs as one N × len(BLOCK_STATS) × n_blocks array."""
    flat = np.frombuffer(b"".join(blobs), dtype=np.float64)
    return flat.reshape(len(blobs), len(BLOCK_STATS), n_blocks)


__all__ = ["BLOCK_STATS", "N_BLOCKS", "block_stats", "block_sums", "digest", "fields_of_rows", "moments_of",
           "ROWS_AT_ONCE", "add_fields", "row_fields", "unpack_blocks"]  # fmt: skip
