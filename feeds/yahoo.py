"""Yahoo Finance through yfinance: indices, ETFs and USD crypto pairs.

yfinance 1.x ``download()`` returns ``(Price, Ticker)`` MultiIndex columns and a
tz-naive daily index by default, and on failure returns an empty frame and
only logs why (to the ``yfinance`` logger); ``Ticker.history()`` raises instead
(a ``curl_cffi`` error). Every shape ends here as a normalised frame or one
clear error, and the log records (read, never printed) tell "no network" from
"unknown symbol":

- offline, curl_cffi's ``DNSError``/``ConnectionError``/``Timeout`` ("curl: (6) Could not resolve
  host: ...") is logged, and with a ``start`` also "possibly delisted; no timezone found" (the time
  zone lookup failed too): a network error, whatever else is said;
- for a symbol Yahoo does not know, its chart API answers "No data found, symbol may be delisted"
  (or, with a ``start``, the time zone is missing: every listed symbol has one);
- "no price data found" is a known symbol without bars in the requested range.
"""

from __future__ import annotations

import re

import pandas as pd

from feeds.advice import no_network, unknown_symbol
from feeds.errors import DataError, NetworkError
from feeds.frame import COLUMNS, SeriesMeta, attach, timeframe_delta
from feeds.quiet import quiet_libraries
from feeds.symbols import exchange_tz, is_crypto
from feeds.validate import DataWarning, validate

_RENAME = {"adj close": "adj_close", "adjclose": "adj_close"}

#: Loggers a Yahoo download may write to (their records are kept, not printed).
LOGGERS = ("yfinance", "curl_cffi", "urllib3", "peewee")
#: What yfinance logs, or raises, when the machine cannot reach Yahoo (curl_cffi and requests errors).
_NETWORK = re.compile(
    r"Could not resolve|Failed to resolve|Name or service not known|Temporary failure in name resolution"
    r"|curl: \((?:5|6|7|28|35|52|55|56)\)|Connection (?:refused|reset|aborted)|Network is unreachable|timed out"
    r"|\b(?:DNSError|ConnectionError|ConnectTimeout|ReadTimeout|Timeout|TimeoutError|ProxyError|SSLError)\b",
    re.IGNORECASE,
)
_RATE_LIMIT = re.compile(r"Too Many Requests|Rate limited", re.IGNORECASE)
#: What it logs when Yahoo answered and does not know the symbol.
_UNKNOWN = re.compile(r"symbol may be delisted|no timezone found|Quote not found", re.IGNORECASE)
#: What it logs for a known symbol without bars in the requested range.
_NO_BARS = re.compile(r"no price data found", re.IGNORECASE)
_CURL = re.compile(r"curl: \(\d+\) (.+?)(?:\.? See https?:|\.?'?\)?(?: \||$))")
_ERROR_NAME = re.compile(r"\b([A-Z]\w*(?:Error|Timeout))\b")
_PREFIX = re.compile(r"^\s*(?:\[[^\]]*\]: |\$\S+: )")


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
    start, end = _as_datetime(start, "start"), _as_datetime(end, "end")
    # third-party warnings (six lines of Pandas4Warning) and log lines stay off the terminal
    with quiet_libraries(*LOGGERS) as records:
        import yfinance as yf  # lazy: slow to import and only Yahoo fetches need it

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
            raise _raised(symbol, interval, e) from None
    if raw is None or len(raw) == 0:
        raise empty_answer(symbol, interval, [r.getMessage() for r in records])
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


def _detail(text: str) -> str:
    """The short cause in one failure text: ``DNSError: Could not resolve host: query2.finance.yahoo.com``."""
    text = " ".join(text.split())  # curl's reason may run on to a second line ("See https://curl.se/...")
    name, curl = _ERROR_NAME.search(text), _CURL.search(text)
    if curl:
        return f"{name.group(1)}: {curl.group(1)}" if name else curl.group(1)
    return _PREFIX.sub("", text)[:160]


def _network_detail(texts: list[str]) -> str:
    """The cause told by the network failure texts together: the first error type named and curl's first reason."""
    flat = " | ".join(" ".join(t.split()) for t in texts)
    name, curl = _ERROR_NAME.search(flat), _CURL.search(flat)
    if curl and name:
        return f"{name.group(1)}: {curl.group(1)}"
    return _detail(texts[0]) if not curl else curl.group(1)


def empty_answer(symbol: str, interval: str, texts: list[str]) -> DataError | NetworkError:
    """The error for an empty ``yf.download`` frame, from what yfinance logged meanwhile (``texts``).

    No network beats everything else said (offline, the failed time zone lookup is also logged as
    "possibly delisted"); then a rate limit; then an unknown symbol or an empty range. When the log
    says none of these, the message says every cause it could be.
    """
    network = [t for t in texts if _NETWORK.search(t)]
    if network:
        return NetworkError(no_network(symbol, interval, "Yahoo", _network_detail(network)))
    # the last word is yfinance's own summary ("['NOPE-USD']: No data found, symbol may be delisted")
    said = [_PREFIX.sub("", t.strip()) for t in reversed(texts) if t.strip()]
    for text in said:
        if _RATE_LIMIT.search(text):
            return NetworkError(
                f"{symbol}: Yahoo refused the request ({text[:120]}): it is rate-limiting this machine, "
                "the network is fine; wait a few minutes and try again"
            )
    for text in said:
        if _UNKNOWN.search(text):
            return DataError(unknown_symbol(symbol, "Yahoo", f"Yahoo has no {symbol} ({text[:120]})",
                                            "^RUT, IWM, BTC-USD, ETH-USD"))  # fmt: skip
    for text in said:
        if _NO_BARS.search(text):
            return DataError(
                f"{symbol}: Yahoo has no {interval} bars in the requested range ({text[:160]}); "
                "check the dates (--start, --end) and the symbol"
            )
    return NetworkError(f"Yahoo returned no data for {symbol}: unknown symbol, no data in that range, or no network")


def _raised(symbol: str, interval: str, error: Exception) -> NetworkError:
    """The error for an exception out of ``yf.download``: no network when it is a connection error."""
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, OSError) or _NETWORK.search(type(error).__name__):
        return NetworkError(no_network(symbol, interval, "Yahoo", _detail(text)))
    return NetworkError(f"Yahoo download of {symbol} failed: {text}".splitlines()[0])
