"""Exchanges through ccxt: ``exchange:BASE/QUOTE`` pairs at any timeframe.

``fetch_ohlcv`` returns at most ``limit`` bars from ``since``; we page forward
until the requested end, keep ccxt's throttle on, back off on rate-limit
errors, and never store a bar that is still in progress.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

from feeds.advice import no_network, unknown_symbol
from feeds.errors import DataError, NetworkError
from feeds.frame import SeriesMeta, attach, timeframe_delta
from feeds.quiet import quiet_libraries
from feeds.symbols import split_exchange_symbol
from feeds.validate import DataWarning, validate

#: Times a rate-limited request is retried before giving up.
RATE_LIMIT_RETRIES = 5
#: Loggers a ccxt request may write to (their records are kept, not printed).
LOGGERS = ("ccxt", "urllib3", "requests")


def make_exchange(name: str, timeout_ms: int = 10_000) -> Any:
    """A ccxt exchange instance with its rate limiter on."""
    import ccxt  # lazy: ccxt takes about a second to import and only fetches need it

    if name not in ccxt.exchanges:
        raise DataError(f"unknown exchange {name!r}; ccxt knows e.g. binance, kraken, coinbase, bybit, okx")
    return getattr(ccxt, name)({"enableRateLimit": True, "timeout": timeout_ms})


def _to_ms(when: str | pd.Timestamp | None, default: int) -> int:
    if when is None:
        return default
    try:
        ts = pd.Timestamp(when)
    except (ValueError, TypeError):
        raise DataError(f"{when!r} is not a date or time; use YYYY-MM-DD or YYYY-MM-DD HH:MM (UTC)") from None
    ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)


def fetch_ccxt(
    symbol: str,
    timeframe: str = "1d",
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    *,
    exchange: Any = None,
    limit: int = 1000,
    now: pd.Timestamp | None = None,
    sleep=time.sleep,
) -> tuple[pd.DataFrame, list[DataWarning]]:
    """Page through ``fetch_ohlcv`` for ``symbol`` (``binance:BTC/USDT``) from start to end.

    ``end`` is exclusive (bars opening before it). Returns the validated
    normalised frame and its warnings.
    """
    import ccxt  # lazy: ccxt takes about a second to import and only fetches need it

    parts = split_exchange_symbol(symbol)
    if parts is None:
        raise DataError(f"{symbol!r} is not an exchange pair; write it as exchange:BASE/QUOTE, e.g. binance:BTC/USDT")
    ex_name, pair = parts
    ex = exchange if exchange is not None else make_exchange(ex_name)
    step_ms = int(timeframe_delta(timeframe).total_seconds() * 1000)
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    now_ms = _to_ms(now, 0)
    since = _to_ms(start, 0)
    end_ms = min(_to_ms(end, now_ms), now_ms)
    rows: dict[int, list] = {}
    retries = 0
    while since < end_ms:
        try:
            with quiet_libraries(*LOGGERS):  # ccxt's and urllib3's warnings and log lines stay off the terminal
                batch = ex.fetch_ohlcv(pair, timeframe, since=since, limit=limit)
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as e:
            retries += 1
            if retries > RATE_LIMIT_RETRIES:
                raise NetworkError(f"{symbol}: rate-limited by {ex_name} {retries - 1} times in a row ({e})") from None
            sleep(max(getattr(ex, "rateLimit", 1000), 1000) / 1000 * 2 ** (retries - 1))
            continue
        except ccxt.BadSymbol:
            raise DataError(
                unknown_symbol(symbol, ex_name, f"{ex_name} does not list {pair}", f"e.g. {ex_name}:BTC/USDT")
            ) from None
        except ccxt.ExchangeNotAvailable as e:  # it answered, with 5xx or "restricted location": its words count
            said = str(e).splitlines()[0][:160] if str(e) else ""
            raise NetworkError(
                no_network(symbol, timeframe, ex_name, f"ExchangeNotAvailable: {said}".rstrip(": "),
                           cause=f"{ex_name} is unavailable from here (down, or refusing this location)")
            ) from None  # fmt: skip
        except ccxt.NetworkError as e:  # ccxt's own text is "binance GET https://...": the type says it all
            raise NetworkError(no_network(symbol, timeframe, ex_name, type(e).__name__)) from None
        except ccxt.ExchangeError as e:
            raise NetworkError(f"{symbol}: {ex_name} refused the request: {str(e)[:200]}") from None
        retries = 0
        if not batch:
            break
        for r in batch:
            rows[int(r[0])] = r
        last = int(batch[-1][0])
        if last < since:
            break
        since = last + step_ms
    kept = sorted(t for t in rows if t < end_ms and t + step_ms <= now_ms and t >= _to_ms(start, 0))
    if not kept:
        raise NetworkError(f"{symbol}: {ex_name} returned no {timeframe} bars in the requested range")
    data = [rows[t][:6] for t in kept]
    df = pd.DataFrame(data, columns=["time", "open", "high", "low", "close", "volume"])
    df.index = pd.DatetimeIndex(pd.to_datetime(df.pop("time"), unit="ms", utc=True)).as_unit("us").rename("time")
    df = df.astype("float64")
    df["adj_close"] = df["close"]
    df, warnings = validate(df, symbol, crypto=True, timeframe=timeframe)
    return attach(df, SeriesMeta(symbol, f"ccxt:{ex_name}", timeframe, "UTC")), warnings
