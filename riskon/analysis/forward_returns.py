"""Forward returns after a signal and their uncertainty: reference bars, h-day returns, the bootstraps.

The event study (``riskon.analysis.episodes``) defines what is measured; this module holds the pieces:
the as-of reference bar of a signal session, close-to-close forward returns that are dropped (never
truncated) past the data, and the episode and moving-block bootstraps with seeded generators.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd

from feeds.align import align


# ------------------------------------------------------------------------------------------------ returns
def reference_bars(frame: pd.DataFrame, sessions: pd.DataFrame, signals: pd.DatetimeIndex, lag: float) -> np.ndarray:
    """Per signal session: the position of the first bar of ``frame`` that sees it (``feeds.align``), or -1.

    -1 when no bar sees it yet or when the coin's first bar already does (the coin was not trading when
    the session became known, so it has no reference close for it).
    """
    seen = align(frame, sessions, lag=lag)["idx_pos"].to_numpy()
    target = sessions.index.get_indexer(signals)
    ref = np.searchsorted(seen, target, side="left")  # idx_pos is non-decreasing
    ok = (target >= 0) & (ref < len(seen)) & (ref > 0)
    return np.where(ok, ref, -1)


def forward_return(close: pd.Series, ref: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Close-to-close return over ``horizon`` calendar days from each reference bar, and the end bar.

    NaN (end -1) where the reference is -1 or the end lies past the data: dropped, never truncated.
    """
    times = close.index.as_unit("us").asi8
    values = close.to_numpy(dtype="float64")
    ref = np.asarray(ref, dtype=np.int64)
    want = times[np.maximum(ref, 0)] + horizon * 86_400_000_000
    end = np.searchsorted(times, want, side="left")
    ok = (ref >= 0) & (end < len(times))
    end = np.where(ok, end, -1)
    ok &= times[np.maximum(end, 0)] == want
    end = np.where(ok, end, -1)
    ret = np.where(ok, values[np.maximum(end, 0)] / values[np.maximum(ref, 0)] - 1.0, np.nan)
    return ret, end


def all_days_series(close: pd.Series, horizon: int) -> pd.Series:
    """The ``horizon``-day forward return from every bar that has one, indexed by that bar (all days)."""
    every = np.arange(len(close))
    ret, _ = forward_return(close, every, horizon)
    ok = ~np.isnan(ret)
    return pd.Series(ret[ok], index=close.index[ok], name=f"{horizon}d")


# ------------------------------------------------------------------------------------------------ bootstrap
def seeded_rng(seed: int, asset: str, horizon: int, what: int) -> np.random.Generator:
    """A generator seeded by the study's seed, the asset, the horizon and which interval it draws (reruns match)."""
    return np.random.default_rng([seed, zlib.crc32(asset.encode()), horizon, what])


def episode_bootstrap(sums: np.ndarray, counts: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``draws`` resamples of whole episodes: sum of drawn episodes' values / their count.

    With one value per episode (``counts`` all 1) this is the plain bootstrap of the episode mean.
    """
    k = len(sums)
    if k == 0:
        return np.full(draws, np.nan)
    pick = rng.integers(0, k, size=(draws, k))
    return sums[pick].sum(axis=1) / counts[pick].sum(axis=1)


def block_bootstrap(values: np.ndarray, block: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``draws`` moving-block bootstrap resamples of a series (blocks of ``block`` consecutive values).

    Each resample joins ``ceil(m / block)`` blocks with uniform random starts and cuts it to the series'
    length ``m``. ``block = 1`` is the iid bootstrap.
    """
    x = np.asarray(values, dtype="float64")
    m = len(x)
    if m == 0:
        return np.full(draws, np.nan)
    b = int(min(max(block, 1), m))
    nb = -(-m // b)
    tail = m - (nb - 1) * b  # length of the last (cut) block
    cs = np.concatenate([[0.0], np.cumsum(x)])
    starts = rng.integers(0, m - b + 1, size=(draws, nb))
    full = (cs[starts[:, :-1] + b] - cs[starts[:, :-1]]).sum(axis=1)
    last = cs[starts[:, -1] + tail] - cs[starts[:, -1]]
    return (full + last) / m


def interval(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    """The percentile interval of the finite draws at ``confidence`` (NaN, NaN without any)."""
    d = draws[np.isfinite(draws)]
    if len(d) == 0:
        return math.nan, math.nan
    a = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(d, [a, 1.0 - a])
    return float(lo), float(hi)
