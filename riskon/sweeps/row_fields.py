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
    raw = np.ascontiguousarray(returns, dtype=np.float64).tobytes()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little", signed=True)


def moments_of(r: np.ndarray) -> tuple[float, float, float, int]:
    """Per-day Sharpe ratio (mean / std ddof=1), skewness, non-excess kurtosis and count; NaN when flat.

    The arithmetic of ``riskon.analysis.robustness.moments`` (which calls this), so stored and recomputed
    moments are the same doubles.
    """
    n = r.size
    dev = r - r.mean()
    m2 = float(np.mean(dev**2))
    if m2 <= 1e-12 * float(np.mean(r * r)):  # constant within rounding
        return math.nan, math.nan, math.nan, n
    sd = math.sqrt(m2 * n / (n - 1))
    sr = float(r.mean()) / sd
    skew = float(np.mean(dev**3)) / m2**1.5
    kurt = float(np.mean(dev**4)) / m2**2
    return sr, skew, kurt, n


def block_stats(returns: np.ndarray, excess: np.ndarray) -> list[np.ndarray]:
    """The per-day series of ``BLOCK_STATS`` (the elementwise formulas of ``riskon.analysis.overfitting``)."""
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
    n = len(series[0])
    block = n // n_blocks
    if block < 2:
        return None
    skip = n - block * n_blocks
    return np.stack([np.ascontiguousarray(s[skip:]).reshape(n_blocks, block).sum(axis=1) for s in series])


def row_fields(returns: np.ndarray, rf: np.ndarray | None = None) -> dict:
    """The stored fields of one ok run from its daily returns and risk-free returns per day (None: 0)."""
    r = np.ascontiguousarray(returns, dtype=np.float64)
    excess = r if rf is None else r - rf
    sr, skew, kurt, n = moments_of(excess) if r.size >= 2 else (math.nan, math.nan, math.nan, r.size)
    blocks = block_sums(block_stats(r, excess)) if r.size else None
    return {
        "n_days": int(n),
        "digest": digest(r),
        "sr_day": sr,
        "skew": skew,
        "kurt": kurt,
        "blocks": None if blocks is None else blocks.tobytes(),
    }


def unpack_blocks(blobs: list[bytes], n_blocks: int = N_BLOCKS) -> np.ndarray:
    """Stored ``blocks`` of N runs as one N × len(BLOCK_STATS) × n_blocks array."""
    flat = np.frombuffer(b"".join(blobs), dtype=np.float64)
    return flat.reshape(len(blobs), len(BLOCK_STATS), n_blocks)


__all__ = ["BLOCK_STATS", "N_BLOCKS", "block_stats", "block_sums", "digest", "moments_of", "row_fields",
           "unpack_blocks"]  # fmt: skip
