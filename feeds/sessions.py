"""The NYSE calendar: which dates are sessions and when each session closed (UTC).

An index bar for session D becomes known at D's close: 16:00 New York, earlier on
early-close days. pandas_market_calendars keeps that calendar, early closes
included; we only cache its answers and put them on one time unit.

Building 40 years of NYSE schedule costs about a second on every run, so the answer
is kept on disk in the cache folder (``calendars/``), keyed by the span and by the
versions of the calendar library and pandas (its holiday rules): a new version of
either computes it again, and a missing, torn or read-only file only costs the second.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import pandas as pd

from feeds.errors import DataError

CALENDAR = "NYSE"


def _versions() -> str:
    parts = []
    for dist in ("pandas_market_calendars", "pandas"):
        try:
            parts.append(f"{dist}={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{dist}=?")
    return ",".join(parts)


def calendar_file(start: str, end: str, root: Path | None = None) -> Path:
    """Where the schedule for ``start``..``end`` is kept: the cache's ``calendars/`` folder, versioned name."""
    # the cache module is only needed for its root folder; importing it at module level would tie
    # the calendar to the Parquet cache for every caller of the session helpers
    from feeds.cache import default_root

    key = hashlib.sha256(f"{CALENDAR}|{start}|{end}|{_versions()}".encode()).hexdigest()[:16]
    return (root or default_root()) / "calendars" / f"{CALENDAR}_{start}_{end}_{key}.parquet"


def _compute(start: str, end: str) -> pd.DataFrame:
    import pandas_market_calendars as mcal  # lazy: slow to import, and only a cold calendar cache needs it

    with warnings.catch_warnings():
        # the calendar library's own pandas deprecations are not the user's concern
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        sched = mcal.get_calendar(CALENDAR).schedule(start_date=start, end_date=end)
    sched = sched[["market_open", "market_close"]].copy()
    sched.index = pd.DatetimeIndex(sched.index).as_unit("us")
    return sched


def _store(path: Path, sched: pd.DataFrame) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".parquet")
        try:
            with os.fdopen(fd, "wb") as f:
                sched.to_parquet(f)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        return  # a read-only or full cache folder: the schedule is still used in this process


@lru_cache(maxsize=8)
def _schedule(start: str, end: str) -> pd.DataFrame:
    path = calendar_file(start, end)
    try:
        sched = pd.read_parquet(path)
        sched.index = pd.DatetimeIndex(sched.index).as_unit("us")
        return sched
    except (OSError, ValueError):  # not computed yet with these versions, or torn by another tool
        pass
    sched = _compute(start, end)
    _store(path, sched)
    return sched


def _span(first: pd.Timestamp, last: pd.Timestamp) -> tuple[str, str]:
    # cache whole years so repeated calls hit the same schedule
    return f"{first.year}-01-01", f"{last.year}-12-31"


def nyse_sessions(first: pd.Timestamp, last: pd.Timestamp) -> pd.DatetimeIndex:
    """NYSE session dates (tz-naive midnight) from ``first`` to ``last`` inclusive."""
    sched = _schedule(*_span(pd.Timestamp(first), pd.Timestamp(last)))
    idx = sched.index
    return idx[(idx >= pd.Timestamp(first).normalize()) & (idx <= pd.Timestamp(last).normalize())]


def session_closes(dates: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The UTC close instant of each NYSE session date in ``dates`` (tz-naive dates).

    A date that is not an NYSE session is an error: an index bar on it cannot be
    placed in time, and guessing would put it on the wrong side of a crypto bar.
    """
    dates = pd.DatetimeIndex(dates).normalize().as_unit("us")
    if len(dates) == 0:
        return pd.DatetimeIndex([], tz="UTC").as_unit("us")
    sched = _schedule(*_span(dates.min(), dates.max()))
    closes = pd.DatetimeIndex(sched["market_close"]).tz_convert("UTC").as_unit("us")
    pos = sched.index.get_indexer(dates)
    if (pos < 0).any():
        bad = dates[pos < 0].strftime("%Y-%m-%d")
        raise DataError(
            f"index bars on dates that are not NYSE sessions: {', '.join(bad[:5])}"
            + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            + "; remove those rows or check the file's time zone"
        )
    return closes[pos]


def week_ending(dates: pd.DatetimeIndex) -> pd.Series:
    """True for each session date that is the last NYSE session of its calendar week.

    Decided by the calendar, not by the data: a Thursday before Good Friday is
    week-ending, and the last session in a file is week-ending only if the
    calendar's next session falls in a later week.
    """
    dates = pd.DatetimeIndex(dates).normalize().as_unit("us")
    if len(dates) == 0:
        return pd.Series([], dtype=bool)
    start, end = _span(dates.min(), dates.max() + pd.Timedelta(days=14))
    cal = _schedule(start, end).index
    nxt = cal[cal.get_indexer(dates) + 1]
    week = dates.to_period("W-SUN")
    return pd.Series(week != nxt.to_period("W-SUN"), index=dates)
