"""Yahoo Finance through yfinance: indices, ETFs and USD crypto pairs.

yfinance 1.x ``download()`` returns ``(Price, Ticker)`` MultiIndex columns and a
tz-naive daily index by default, and on failure returns an empty frame and
only logs; ``Ticker.history()`` raises instead (a ``curl_cffi`` error). Every
shape ends here as a normalised frame or one clear error.
"""

from __future__ import annotations

import logging

import pandas as pd

from feeds.errors import DataError, NetworkError
from feeds.frame import COLUMNS, SeriesMeta, attach, timeframe_delta
from feeds.symbols import exchange_tz, is_crypto
from feeds.validate import DataWarning, validate

_RENAME = {"adj close": "adj_close", "adjclose": "adj_close"}


def normalise_yahoo(raw: pd.DataFrame, symbol: str, interval: str = "1d") -> pd.DataFrame:
    """Turn any frame yfinance returns for one symbol into the normalised frame (metadata attached)."""
    if raw is None or len(raw) == 0:
        raise NetworkError(f"Yahoo returned no data for {symbol}: unknown symbol, no data in that range, or no network")
    df = raw.copy()
    if isinstance(df.columns, pd.MultiIndex):
        level = next((i for i in range(df.columns.nlevels) if symbol in df.columns.get_level_values(i)), None)
        if level is not None:
            df = df.xs(symbol, axis=1, level=level)
        else:
            df.columns = df.columns.get_level_values(0)
    df.columns = [_RENAME.get(str(c).strip().lower(), str(c).strip().lower().replace(" ", "_")) for c in df.columns]
    missing = [c for c in ("open", "high", "low", "close") if c not in df.columns]
    if missing:
        raise DataError(f"Yahoo data for {symbol} lacks column(s) {', '.join(missing)}")
    tz = exchange_tz(symbol)
    idx = pd.DatetimeIndex(df.index)
    daily = interval.endswith(("d", "wk", "mo"))
    if idx.tz is None:
        # yfinance gives exchange-local wall time (dates for daily bars) when it drops the zone
        idx = idx.tz_localize(tz)
    if daily:
        idx = idx.tz_convert(tz).normalize()
        idx = pd.DatetimeIndex([pd.Timestamp(d.date(), tz=tz) for d in idx]) if len(idx) else idx
    df.index = idx.tz_convert("UTC").as_unit("us").rename("time")
    df = df[[c for c in COLUMNS if c in df.columns]].astype("float64")
    df = df.dropna(how="all", subset=["open", "high", "low", "close"])
    tf = "1d" if interval == "1d" else interval
    return attach(df, SeriesMeta(symbol, "yahoo", tf, tz))


def _as_datetime(when: str | pd.Timestamp | None, what: str):
    """``start``/``end`` as a datetime: yfinance parses a string only as ``YYYY-MM-DD``.

    A naive value is exchange-local (as yfinance reads it); an aware one keeps its instant,
    so the cache's last bar (``2026-08-21T04:00:00+00:00``) can be passed as it is stored.
    """
    if when is None:
        return None
    try:
        return pd.Timestamp(when).to_pydatetime()
    except (ValueError, TypeError):
        raise DataError(f"{what} {when!r} is not a date or time; use YYYY-MM-DD") from None


def fetch_yahoo(
    symbol: str,
    start: str | None = None,
    end: str | None = None,
    interval: str = "1d",
    timeout: float = 10.0,
) -> tuple[pd.DataFrame, list[DataWarning]]:
    """Download ``symbol`` from Yahoo and return the validated frame and its warnings.

    Run it through ``feeds.deadline.call_with_deadline``: yfinance can hang past its timeout.
    """
    import yfinance as yf  # lazy: slow to import and only Yahoo fetches need it

    logging.getLogger("yfinance").setLevel(logging.CRITICAL)
    start, end = _as_datetime(start, "start"), _as_datetime(end, "end")
    try:
        raw = yf.download(
            symbol,
            start=start,
            end=end,
            interval=interval,
            auto_adjust=False,
            actions=False,
            progress=False,
            threads=False,
            timeout=timeout,
        )
    except Exception as e:  # curl_cffi, requests, JSON decoding: all mean "Yahoo did not answer"
        raise NetworkError(f"Yahoo download of {symbol} failed: {type(e).__name__}: {e}".splitlines()[0]) from None
    frame = normalise_yahoo(raw, symbol, interval)
    # a bar still in progress is not stored
    now = pd.Timestamp.now(tz="UTC")
    if is_crypto(symbol):
        frame = frame[frame.index + timeframe_delta("1d" if interval == "1d" else interval) <= now]
    meta = frame.attrs.copy()
    frame, warnings = validate(
        frame, symbol, crypto=is_crypto(symbol), timeframe=meta["timeframe"], local_tz=meta["tz"]
    )
    frame.attrs.update(meta)
    return frame, warnings
