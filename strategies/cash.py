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


__all__ = ["DAYS_PER_YEAR", "bar_days", "growth_per_bar", "rate_per_bar"]
