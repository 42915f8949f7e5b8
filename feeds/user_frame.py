"""A DataFrame the user already has, turned into the one normalised frame and validated as an import is.

``riskon.run(config, index=df, asset=df)`` and ``riskon.bt.IndexCryptoFeed(index=df, asset=df)``
accept frames from anywhere (yfinance, a database, a notebook). Column names are matched
case-insensitively (``Open``, ``Adj Close``), the time comes from a ``DatetimeIndex`` or a
``date``/``datetime``/``time``/``timestamp`` column, and the rows then go through
``feeds.validate.validate`` with exactly the arguments a CSV import of the same symbol uses: the
same errors refuse the frame, the same warnings are reported. A time-zone-naive daily date is a
session date in the symbol's own zone (New York for indices and ETFs, UTC for crypto), as in a
Yahoo-style CSV file; a time-zone-aware index is converted to UTC.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from feeds.cache import fingerprint
from feeds.errors import DataError
from feeds.frame import COLUMNS, SeriesMeta, attach
from feeds.symbols import canonical_symbol, canonical_timeframe, exchange_tz, is_crypto
from feeds.validate import DataWarning, validate

_TIME_NAMES = ("date", "datetime", "time", "timestamp")


def _name(column: object) -> str:
    return re.sub(r"\s+", "_", str(column).strip().lower())


def _flat_columns(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    """yfinance's ``(Price, Ticker)`` column MultiIndex of one ticker flattened to its price names."""
    if not isinstance(frame.columns, pd.MultiIndex):
        return frame
    if frame.columns.nlevels == 2 and frame.columns.get_level_values(1).nunique() == 1:
        return frame.droplevel(1, axis=1)
    raise DataError(f"{what}: columns are a MultiIndex of several series; pass one symbol's frame")


def _times(frame: pd.DataFrame, what: str, tz: str) -> pd.DatetimeIndex:
    """The bar-open times of ``frame`` in UTC: its DatetimeIndex or its time column."""
    if isinstance(frame.index, pd.DatetimeIndex):
        index = frame.index
    else:
        col = next((c for c in frame.columns if _name(c) in _TIME_NAMES), None)
        if col is None:
            raise DataError(
                f"{what}: no times; give the frame a DatetimeIndex or a date column (date, datetime, time, timestamp)"
            )
        try:
            index = pd.DatetimeIndex(pd.to_datetime(frame[col]))
        except (ValueError, TypeError) as e:
            raise DataError(f"{what}: column {col!r} is not dates ({str(e).splitlines()[0]})") from None
    if index.isna().any():
        raise DataError(f"{what}: {int(index.isna().sum())} row(s) have no time (NaT); drop them and try again")
    if index.tz is None:
        try:
            index = index.tz_localize(tz, ambiguous="raise", nonexistent="raise")
        except (ValueError, TypeError) as e:  # pytz/zoneinfo errors are ValueError subclasses
            raise DataError(f"{what}: local times are ambiguous in {tz} ({e}); give the index a time zone") from None
    return index.tz_convert("UTC").as_unit("us").rename("time")


def from_frame(
    frame: pd.DataFrame, symbol: str, timeframe: str = "1d", *, allow_jumps: bool = False
) -> tuple[pd.DataFrame, list[DataWarning]]:
    """``frame`` as riskon's normalised frame for ``symbol``, validated as a CSV import is, and its warnings.

    Raises ``DataError`` (one line naming the symbol and the problem) for anything an import refuses.
    The result carries the symbol, source ``frame``, timeframe, time zone and content fingerprint in its
    ``attrs``, like a frame read from the cache; the input is never modified.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{symbol}: expected a pandas DataFrame of bars, got {type(frame).__name__}")
    symbol, timeframe = canonical_symbol(symbol), canonical_timeframe(timeframe)
    what = f"{symbol} (DataFrame)"
    if frame.empty:
        raise DataError(f"{what}: no data rows")
    tz = exchange_tz(symbol)
    frame = _flat_columns(frame, what)
    names = [_name(c) for c in frame.columns]
    doubled = sorted({n for n in names if names.count(n) > 1 and n in COLUMNS})
    if doubled:
        raise DataError(f"{what}: column {doubled[0]!r} appears twice (names are matched ignoring case)")
    out = pd.DataFrame(index=_times(frame, what, tz))
    for col, name in zip(frame.columns, names, strict=True):
        if name not in COLUMNS:
            continue
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype="float64")
        junk = np.isnan(values) & frame[col].notna().to_numpy()
        if junk.any():
            row = int(np.flatnonzero(junk)[0])
            raise DataError(f"{what}: non-numeric {name} {frame[col].iloc[row]!r} on row {row}")
        out[name] = values
    out, warnings = validate(out, what, crypto=is_crypto(symbol), timeframe=timeframe, local_tz=tz,
                             allow_jumps=allow_jumps)  # fmt: skip
    out = attach(out, SeriesMeta(symbol, "frame", timeframe, tz))
    out.attrs["fingerprint"] = fingerprint(out)
    return out, warnings
