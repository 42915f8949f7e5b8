"""The one normalised frame every source returns, and the metadata it carries.

A frame is indexed by UTC-aware bar-open timestamps (index name ``time``) and has
lowercase ``open high low close volume`` plus ``adj_close``. Its ``attrs`` carry
the symbol, source, timeframe and exchange time zone, so a frame can travel
alone without losing what it is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

PRICE_COLUMNS = ("open", "high", "low", "close")
COLUMNS = (*PRICE_COLUMNS, "volume", "adj_close")


@dataclass(frozen=True)
class SeriesMeta:
    """What a price series is: its symbol, where it came from, its bar length and clock."""

    symbol: str
    source: str
    timeframe: str = "1d"
    tz: str = "UTC"


def attach(frame: pd.DataFrame, meta: SeriesMeta) -> pd.DataFrame:
    """Return ``frame`` with ``meta`` stored in its ``attrs``."""
    frame.attrs.update(asdict(meta))
    return frame


def meta_of(frame: pd.DataFrame) -> SeriesMeta:
    """Read the metadata a normalised frame carries."""
    a = frame.attrs
    return SeriesMeta(a["symbol"], a["source"], a.get("timeframe", "1d"), a.get("tz", "UTC"))


def empty_frame() -> pd.DataFrame:
    """An empty normalised frame (no rows, right columns and index type)."""
    idx = pd.DatetimeIndex([], tz="UTC", name="time").as_unit("us")
    return pd.DataFrame({c: pd.Series([], dtype="float64") for c in COLUMNS}, index=idx)


def normalise_index(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """UTC, microsecond unit, named ``time`` — one representation whatever the source."""
    if index.tz is None:
        index = index.tz_localize("UTC")
    return index.tz_convert("UTC").as_unit("us").rename("time")


def timeframe_delta(timeframe: str) -> pd.Timedelta:
    """The length of one bar for a ccxt-style timeframe string (``1m``, ``4h``, ``1d``, ``1w``)."""
    units = {"m": "min", "h": "h", "d": "D", "w": "W"}
    try:
        n, unit = int(timeframe[:-1]), units[timeframe[-1]]
    except (ValueError, KeyError, IndexError):
        raise ValueError(f"unknown timeframe {timeframe!r}: use a number and one of m, h, d, w (e.g. 1h, 1d)") from None
    return pd.Timedelta(n, unit=unit)
