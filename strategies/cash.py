"""What idle cash earns, and what the risk-free asset returns, bar by bar: one convention for every engine.

A rate is annual and effective: one unit held for ``d`` calendar days grows to ``(1 + r) ** (d / 365)``
(the 365-day calendar, compounded daily; quantstats converts a float ``rf`` the same way). A rate is
either a constant or a yield series. A yield value is usable from its *known-at* stamp on (the series
carries those stamps as its index, in UTC), so the rate of bar ``i`` is the last value known at the
bar's open: nothing a bar could not have seen.

Bar ``i`` covers ``[t_i, t_{i+1})``; the last bar covers one bar length. Cash held through bar ``i``
(after the bar's opening fills) earns ``g_i`` by the bar's close, and the risk-free asset returns the
same ``g_i`` over the bar, so excess returns and idle cash can never disagree.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from feeds.errors import DataError

DAYS_PER_YEAR = 365.0


def bar_days(bar_times: pd.DatetimeIndex, bar_length: pd.Timedelta) -> np.ndarray:
    """Each bar's length in calendar days: the gap to the next bar's open, ``bar_length`` for the last."""
    us = bar_times.as_unit("us").asi8.astype("float64")
    ends = np.append(us[1:], us[-1] + bar_length / pd.Timedelta(microseconds=1)) if len(us) else us
    return (ends - us) / 86_400_000_000


def rate_per_bar(bar_times: pd.DatetimeIndex, rate: float | pd.Series, name: str = "rate") -> np.ndarray:
    """The annual rate in force during each bar: a constant, or the last yield value known at the bar's open.

    Raises ``DataError`` when a yield series starts after the first bar (no rate is known yet) or
    holds a NaN that would be used: silence there would mean a made-up rate.
    """
    n = len(bar_times)
    if not isinstance(rate, pd.Series):
        r = float(rate)
        if not np.isfinite(r) or r <= -1.0:
            raise DataError(f"{name} must be a finite annual rate above -100%, got {rate!r}")
        return np.full(n, r)
    if rate.empty:
        raise DataError(f"the {name} series {rate.name or ''} has no values; import it again".replace("  ", " "))
    known = rate.index.as_unit("us").asi8
    if (np.diff(known) <= 0).any():
        raise DataError(f"the {name} series {rate.name} is not sorted by date or has duplicate dates")
    at = np.searchsorted(known, bar_times.as_unit("us").asi8, side="right") - 1
    if n and at[0] < 0:
        first = rate.index[0]
        raise DataError(
            f"the {name} series {rate.name} is first known on {first:%Y-%m-%d %H:%M} UTC, after the run's first bar "
            f"({bar_times[0]:%Y-%m-%d}); import earlier history or start the run later"
        )
    values = rate.to_numpy(dtype="float64")[at]
    bad = ~np.isfinite(values) | (values <= -1.0)
    if bad.any():
        when = bar_times[int(np.flatnonzero(bad)[0])]
        raise DataError(f"the {name} series {rate.name} has no usable value for the bar of {when:%Y-%m-%d}")
    return values


def growth_per_bar(bar_times: pd.DatetimeIndex, bar_length: pd.Timedelta, rate: float | pd.Series,
                   name: str = "rate") -> np.ndarray:  # fmt: skip
    """``g_i``: what one unit of cash held through bar ``i`` earns by the bar's close (0 where the rate is 0)."""
    r = rate_per_bar(bar_times, rate, name)
    return np.power(1.0 + r, bar_days(bar_times, bar_length) / DAYS_PER_YEAR) - 1.0


def run_growth(bar_times: pd.DatetimeIndex, rate: float | pd.Series) -> np.ndarray:
    """``g_i`` of a run's master calendar: ``growth_per_bar`` with the calendar's own bar length.

    The master calendar is regular, so its last step is the bar length (one day for one bar alone).
    A rate of exactly 0 gives exact zeros, so a run without a cash rate keeps its numbers bit for bit.
    """
    if not isinstance(rate, pd.Series) and float(rate) == 0.0:
        return np.zeros(len(bar_times))
    step = bar_times[-1] - bar_times[-2] if len(bar_times) > 1 else pd.Timedelta(days=1)
    return growth_per_bar(bar_times, step, rate, name="cash_rate")


def rate_text(rate: float | pd.Series) -> str:
    """A rate in words for notes and pages: ``4%`` or ``the ^IRX yield series``."""
    if isinstance(rate, pd.Series):
        return f"the {rate.name} yield series"
    return f"{float(rate) * 100:.6g}%"


def rate_key(rate: float | pd.Series) -> tuple:
    """A hashable key of a rate (a yield series by its name and content), e.g. to share work between runs."""
    if isinstance(rate, pd.Series):
        return ("series", str(rate.name), series_fingerprint(rate))
    return ("constant", float(rate))


def series_fingerprint(rate: pd.Series) -> str:
    """The content fingerprint of a yield series: its ``attrs["fingerprint"]``, else a hash of stamps and values."""
    given = rate.attrs.get("fingerprint")
    if given:
        return str(given)
    digest = hashlib.sha256(rate.index.as_unit("us").asi8.tobytes())
    digest.update(rate.to_numpy(dtype="float64").tobytes())
    return digest.hexdigest()[:16]


__all__ = ["DAYS_PER_YEAR", "bar_days", "growth_per_bar", "rate_key", "rate_per_bar", "rate_text", "run_growth",
           "series_fingerprint"]  # fmt: skip
