"""Validation of a normalised frame: errors refuse the data, warnings keep it and say where.

Errors (raised as ``DataError``, nothing is changed): no rows, missing columns,
the same timestamp twice with different values, bars finer than the declared
timeframe (hourly bars under a daily name), bars before 1900 or opening after
the current time (the bar still in progress is allowed), NaN, infinite,
non-positive or absurd (above 1e12) prices, ``adj_close`` included, a 1,000×
close-to-close jump either way (unless ``allow_jumps``), high < low,
open/close outside [low, high], negative volume, daily index/ETF bars on dates
that are not NYSE sessions.
Warnings (returned, data kept): exact duplicate rows (dropped), unsorted rows
(sorted), zero or missing volume, large moves, gaps in the calendar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from feeds import clock
from feeds.errors import DataError
from feeds.frame import PRICE_COLUMNS, timeframe_delta

#: A close-to-close move larger than this is reported (it may be real: DOGE +355 % on 2021-01-28).
LARGE_MOVE = {"crypto": 0.6, "equity": 0.4}
#: Prices above this are refused as absurd (a unit slip or garbage, e.g. 1e300).
MAX_PRICE = 1e12
#: A close this many times the previous one (or this many times smaller) is refused unless allowed.
MAX_JUMP = 1000.0
#: No bar may open before this date (in the series' own time zone).
EARLIEST = pd.Timestamp("1900-01-01")
#: Bars spaced closer than this fraction of the declared timeframe (median) are the wrong timeframe.
_FINER_THAN = 0.75
_MAX_DATES = 5


@dataclass(frozen=True)
class DataWarning:
    """A fact about the data worth knowing that does not stop it being used."""

    kind: str
    message: str
    dates: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return self.message


def _fmt(index: pd.Index, daily: bool) -> tuple[str, ...]:
    fmt = "%Y-%m-%d" if daily else "%Y-%m-%d %H:%M"
    return tuple(pd.DatetimeIndex(index).strftime(fmt))


def _dates_text(dates: tuple[str, ...]) -> str:
    shown = ", ".join(dates[:_MAX_DATES])
    more = len(dates) - _MAX_DATES
    return shown + (f" and {more} more" if more > 0 else "")


def validate(
    frame: pd.DataFrame,
    name: str,
    *,
    crypto: bool,
    timeframe: str = "1d",
    local_tz: str = "UTC",
    now: datetime | pd.Timestamp | None = None,
    allow_jumps: bool = False,
) -> tuple[pd.DataFrame, list[DataWarning]]:
    """Check ``frame`` (normalised, UTC index) and return the cleaned frame and its warnings.

    ``name`` says what is checked (a file or a symbol) in every message. Raises
    ``DataError`` for the error classes; the input frame is never modified.
    ``now`` is the clock bars may not open after (default :func:`feeds.clock.utc_now`);
    ``allow_jumps`` accepts 1,000× close-to-close jumps (they are still warned about).
    """
    daily = timeframe.endswith("d")
    warnings: list[DataWarning] = []
    if frame.empty:
        raise DataError(f"{name}: no data rows; nothing was imported")
    missing = [c for c in PRICE_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{name}: missing column(s) {', '.join(missing)}; expected open, high, low, close, volume")
    frame = frame.copy()
    if "volume" not in frame.columns:
        frame["volume"] = np.nan
    if "adj_close" not in frame.columns:
        frame["adj_close"] = frame["close"]

    # duplicates: identical rows are harmless, conflicting ones are not
    dup_all = frame.index.duplicated(keep=False)
    if dup_all.any():
        exact = frame.reset_index().duplicated(keep="first").to_numpy()
        conflict = frame[dup_all & ~frame.reset_index().duplicated(keep=False).to_numpy()]
        if len(conflict):
            dates = _fmt(conflict.index.unique(), daily)
            raise DataError(
                f"{name}: the same timestamp appears twice with different values on "
                f"{_dates_text(dates)}; keep one row per bar and import again"
            )
        dates = _fmt(frame.index[exact].unique(), daily)
        frame = frame[~exact]
        warnings.append(
            DataWarning("duplicates", f"{name}: dropped exact duplicate rows on {_dates_text(dates)}", dates)
        )
    if not frame.index.is_monotonic_increasing:
        frame = frame.sort_index(kind="stable")
        warnings.append(DataWarning("unsorted", f"{name}: rows were not in time order; sorted them"))

    _check_spacing(frame.index, name, timeframe)
    _check_dates(frame.index, name, daily=daily, local_tz=local_tz, now=clock.as_utc(now))

    prices = frame[[*PRICE_COLUMNS, "adj_close"]]
    bad = prices.isna().any(axis=1)
    if bad.any():
        cols = [c for c in prices.columns if prices[c].isna().any()]
        raise DataError(
            f"{name}: missing (NaN) prices on {_dates_text(_fmt(frame.index[bad], daily))} ({', '.join(cols)}); "
            "fill or delete those rows and import again"
        )
    bad = np.isinf(frame[[*PRICE_COLUMNS, "adj_close", "volume"]].to_numpy()).any(axis=1)
    if bad.any():
        raise DataError(f"{name}: infinite values on {_dates_text(_fmt(frame.index[bad], daily))}")
    bad = (prices <= 0).any(axis=1)
    if bad.any():
        cols = [c for c in prices.columns if (prices[c] <= 0).any()]
        raise DataError(
            f"{name}: zero or negative prices on {_dates_text(_fmt(frame.index[bad], daily))} ({', '.join(cols)}); "
            "prices must be positive"
        )
    bad = (prices > MAX_PRICE).any(axis=1)
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        col = next(c for c in ("close", *PRICE_COLUMNS, "adj_close") if prices[c].iloc[first] > MAX_PRICE)
        raise DataError(
            f"{name}: absurd price {col} {prices[col].iloc[first]:g} on {_fmt(frame.index[[first]], daily)[0]} "
            f"(prices above {MAX_PRICE:g} are refused; {int(bad.sum())} bar(s)); check the file's units and values"
        )
    if not allow_jumps:
        _check_jumps(frame["close"], name, daily)
    o, h, lo, c = (frame[col].to_numpy() for col in PRICE_COLUMNS)
    bad = h < lo
    if bad.any():
        raise DataError(f"{name}: high < low on {_dates_text(_fmt(frame.index[bad], daily))}")
    bad = (o > h) | (o < lo) | (c > h) | (c < lo)
    if bad.any():
        raise DataError(f"{name}: open or close outside [low, high] on {_dates_text(_fmt(frame.index[bad], daily))}")
    vol = frame["volume"]
    if (vol < 0).any():
        raise DataError(f"{name}: negative volume on {_dates_text(_fmt(frame.index[vol < 0], daily))}")
    if vol.isna().any():
        dates = _fmt(frame.index[vol.isna()], daily)
        warnings.append(DataWarning("missing_volume", f"{name}: no volume on {_dates_text(dates)}", dates))
    if (vol == 0).any():
        dates = _fmt(frame.index[vol == 0], daily)
        warnings.append(
            DataWarning("zero_volume", f"{name}: zero volume on {len(dates)} bar(s): {_dates_text(dates)}", dates)
        )

    limit = LARGE_MOVE["crypto" if crypto else "equity"]
    move = frame["close"].pct_change().abs()
    big = move > limit
    if big.any():
        dates = _fmt(frame.index[big], daily)
        moves = ", ".join(
            f"{d} {frame['close'].pct_change().iloc[i]:+.0%}"
            for d, i in zip(dates[:_MAX_DATES], np.flatnonzero(big)[:_MAX_DATES], strict=False)
        )
        warnings.append(
            DataWarning("large_move", f"{name}: close-to-close moves over {limit:.0%}: {moves} (kept)", dates)
        )

    if not crypto and daily:
        extra = _non_sessions(frame.index, local_tz)
        if len(extra):
            raise DataError(
                f"{name}: bars on dates that are not NYSE sessions: {_dates_text(tuple(extra.strftime('%Y-%m-%d')))}; "
                "remove those rows or check the file's time zone"
            )
    gaps = _gaps(frame.index, crypto=crypto, timeframe=timeframe, local_tz=local_tz)
    if len(gaps):
        dates = _fmt(gaps, daily)
        warnings.append(DataWarning("gaps", f"{name}: {len(dates)} missing bar(s): {_dates_text(dates)}", dates))
    return frame, warnings


def _spacing_text(step: pd.Timedelta) -> str:
    """A spacing the way timeframes are written: ``1h``, ``4h``, ``90m``, ``30s``."""
    seconds = int(step.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{step.total_seconds():g}s"


def _kind(timeframe: str) -> str:
    words = {"1m": "minute", "1h": "hourly", "1d": "daily", "1w": "weekly"}
    return words.get(timeframe, timeframe)


def _check_spacing(index: pd.DatetimeIndex, name: str, timeframe: str) -> None:
    """Refuse bars spaced (median) well below the declared timeframe: hourly bars under a daily name."""
    if len(index) < 2:
        return
    declared = timeframe_delta(timeframe)
    step = pd.Series(index.unique()).diff().dropna().median()
    if pd.isna(step) or step >= declared * _FINER_THAN:
        return
    found = _spacing_text(step)
    raise DataError(
        f"{name}: the bars are {found} apart (median spacing) but the series is declared {timeframe}: "
        f"{_kind(found)} bars under a {_kind(timeframe)} name or timeframe; "
        f"import it with --timeframe {found} (timeframe='{found}') or use {_kind(timeframe)} bars"
    )


def _check_dates(index: pd.DatetimeIndex, name: str, *, daily: bool, local_tz: str, now: pd.Timestamp) -> None:
    """Refuse bars before 1900 (local date) and bars opening after ``now`` (the bar in progress is fine)."""
    local = index.tz_convert(local_tz).tz_localize(None)
    early = local < EARLIEST
    if early.any():
        dates = tuple(local[early].strftime("%Y-%m-%d"))
        raise DataError(
            f"{name}: bars before 1900 on {_dates_text(dates)}; check the date column "
            "(two-digit years, or the wrong epoch unit)"
        )
    future = index > now
    if future.any():
        raise DataError(
            f"{name}: {int(future.sum())} bar(s) in the future (after {now:%Y-%m-%d %H:%M} UTC) on "
            f"{_dates_text(_fmt(index[future], daily))}; check the dates, the file's time zone and the clock"
        )


def _check_jumps(close: pd.Series, name: str, daily: bool) -> None:
    """Refuse a close 1,000× the previous one, or 1,000× smaller: a unit or decimal slip, not a market move."""
    values = close.to_numpy(dtype="float64")
    if len(values) < 2:
        return
    ratio = values[1:] / values[:-1]
    bad = (ratio >= MAX_JUMP) | (ratio <= 1 / MAX_JUMP)
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0]) + 1
    before, after = _fmt(close.index[[i - 1, i]], daily)
    r = ratio[i - 1]
    how = f"jumps {r:,.0f}x" if r > 1 else f"falls {1 / r:,.0f}x"
    more = f" ({int(bad.sum())} such jumps)" if bad.sum() > 1 else ""
    raise DataError(
        f"{name}: close {how} on {after}, from {values[i - 1]:g} on {before} to {values[i]:g}{more}; "
        "fix the file (a unit or decimal slip?) or, if it is real, import with --allow-jumps (allow_jumps=True)"
    )


def _gaps(index: pd.DatetimeIndex, *, crypto: bool, timeframe: str, local_tz: str) -> pd.DatetimeIndex:
    """Bars the calendar expects between the first and last bar that are not there."""
    if len(index) < 2:
        return pd.DatetimeIndex([], tz="UTC")
    if crypto:
        step = timeframe_delta(timeframe)
        expected = pd.date_range(index[0], index[-1], freq=step)
        return expected.difference(index)
    if not timeframe.endswith("d"):
        return pd.DatetimeIndex([], tz="UTC")
    from feeds.sessions import nyse_sessions  # lazy: the market calendar is slow to import

    local = index.tz_convert(local_tz).tz_localize(None).normalize()
    sessions = nyse_sessions(local[0], local[-1])
    missing = sessions.difference(local)
    return missing.tz_localize(local_tz).tz_convert("UTC")


def _non_sessions(index: pd.DatetimeIndex, local_tz: str) -> pd.DatetimeIndex:
    """Local dates of daily index/ETF bars that the NYSE calendar has no session on (tz-naive)."""
    from feeds.sessions import nyse_sessions  # lazy: the market calendar is slow to import

    local = index.tz_convert(local_tz).tz_localize(None).normalize()
    return local.difference(nyse_sessions(local[0], local[-1]))
