"""ccxt pagination, offline: a real ``ccxt.binance`` whose raw klines endpoint is served from a dict.

Only ``publicGetKlines`` (what binance's ``fetch_ohlcv`` calls for a spot
market) is replaced, so ccxt's own request building and kline parsing run for
real, and so does our paging.
"""

from __future__ import annotations

import ccxt
import pandas as pd
import pytest

from feeds.errors import DataError, NetworkError
from feeds.exchange import fetch_ccxt

DAY = 86_400_000
HOUR = 3_600_000
T0 = 1_609_459_200_000  # 2021-01-01 00:00 UTC in ms

BTC_USDT = {
    "id": "BTCUSDT",
    "symbol": "BTC/USDT",
    "base": "BTC",
    "quote": "USDT",
    "baseId": "BTC",
    "quoteId": "USDT",
    "type": "spot",
    "spot": True,
    "margin": False,
    "swap": False,
    "future": False,
    "option": False,
    "contract": False,
    "linear": None,
    "inverse": None,
    "active": True,
    "precision": {"amount": 1e-5, "price": 0.01},
    "limits": {},
    "info": {},
}


def kline(t: int, step: int) -> list:
    """A raw Binance kline row with prices derived from its bar number (so every bar is distinct)."""
    i = (t - T0) // step
    o = 100 + i
    return [
        t,
        f"{o:.2f}",
        f"{o + 5:.2f}",
        f"{o - 5:.2f}",
        f"{o + 1:.2f}",
        f"{10 + i}.5",
        t + step - 1,
        "1",
        7,
        "1",
        "1",
        "0",
    ]


class Klines:
    """The raw endpoint: bars from ``first`` to ``last`` (ms, inclusive), served per ``startTime``/``limit``."""

    def __init__(self, first: int, last: int, step: int = DAY, *, overlap: int = 0, page_cap: int | None = None):
        self.first, self.last, self.step = first, last, step
        self.overlap, self.page_cap = overlap, page_cap
        self.calls: list[dict] = []
        self.empty_from: int | None = None
        self.fail: list[BaseException] = []

    def __call__(self, params=None):
        params = dict(params or {})
        self.calls.append(params)
        if self.fail:
            raise self.fail.pop(0)
        start, limit = int(params["startTime"]), int(params["limit"])
        if self.page_cap:
            limit = min(limit, self.page_cap)
        if self.empty_from is not None and start >= self.empty_from:
            return []
        t = max(self.first, start - (start - self.first) % self.step) - self.overlap * self.step
        t = max(t, self.first)
        rows = []
        while t <= self.last and len(rows) < limit + self.overlap:
            rows.append(kline(t, self.step))
            t += self.step
        return rows


def exchange(klines: Klines):
    ex = ccxt.binance({"enableRateLimit": False})
    ex.set_markets([BTC_USDT])
    ex.publicGetKlines = klines
    ex.load_markets = lambda *a, **k: ex.markets  # never reach the network for markets
    return ex


def ms(t: pd.Timestamp | str) -> int:
    return int(pd.Timestamp(t).value // 1_000_000)


def test_pages_until_the_requested_end_and_lands_ms_timestamps_exactly():
    src = Klines(T0, T0 + 99 * DAY)
    sleeps = []
    df, warnings = fetch_ccxt(
        "binance:BTC/USDT",
        "1d",
        "2021-01-01",
        "2021-01-11",
        exchange=exchange(src),
        limit=4,
        now=pd.Timestamp("2021-06-01", tz="UTC"),
        sleep=sleeps.append,
    )
    assert [c["startTime"] for c in src.calls] == [T0, T0 + 4 * DAY, T0 + 8 * DAY]
    assert all(c["limit"] == 4 and c["symbol"] == "BTCUSDT" and c["interval"] == "1d" for c in src.calls)
    assert sleeps == [] and warnings == []

    # end is exclusive: bars opening 2021-01-01 .. 2021-01-10
    assert len(df) == 10
    assert str(df.index.dtype) == "datetime64[us, UTC]" and df.index.name == "time"
    assert (df.index.asi8 // 1000).tolist() == [T0 + i * DAY for i in range(10)]
    assert df.index[0] == pd.Timestamp("2021-01-01 00:00", tz="UTC")
    assert df.loc[pd.Timestamp("2021-01-10", tz="UTC")].to_dict() == {
        "open": 109.0,
        "high": 114.0,
        "low": 104.0,
        "close": 110.0,
        "volume": 19.5,
        "adj_close": 110.0,
    }
    assert df.attrs == {"symbol": "binance:BTC/USDT", "source": "ccxt:binance", "timeframe": "1d", "tz": "UTC"}


def test_hourly_bars_page_by_the_bar_length():
    src = Klines(T0, T0 + 500 * HOUR, step=HOUR)
    df, _ = fetch_ccxt(
        "binance:BTC/USDT",
        "1h",
        "2021-01-01 00:00",
        "2021-01-02 00:00",
        exchange=exchange(src),
        limit=10,
        now=pd.Timestamp("2021-02-01", tz="UTC"),
        sleep=lambda s: None,
    )
    assert [c["startTime"] for c in src.calls] == [T0, T0 + 10 * HOUR, T0 + 20 * HOUR]
    assert all(c["interval"] == "1h" for c in src.calls)
    assert (df.index.asi8 // 1000).tolist() == [T0 + i * HOUR for i in range(24)]
    assert df["open"].tolist() == [100.0 + i for i in range(24)]


def test_overlapping_pages_store_each_bar_once():
    # this endpoint also sends the 2 bars before startTime on every page
    src = Klines(T0, T0 + 99 * DAY, overlap=2)
    df, _ = fetch_ccxt(
        "binance:BTC/USDT",
        "1d",
        "2021-01-03",
        "2021-01-15",
        exchange=exchange(src),
        limit=5,
        now=pd.Timestamp("2021-06-01", tz="UTC"),
        sleep=lambda s: None,
    )
    assert len(src.calls) >= 2
    assert df.index.is_unique and df.index.is_monotonic_increasing
    assert (df.index.asi8 // 1000).tolist() == [T0 + i * DAY for i in range(2, 14)]
    assert df["close"].tolist() == [101.0 + i for i in range(2, 14)]


def test_an_empty_page_ends_paging():
    src = Klines(T0, T0 + 99 * DAY)
    src.empty_from = T0 + 6 * DAY  # the exchange has nothing from 2021-01-07 on
    df, _ = fetch_ccxt(
        "binance:BTC/USDT",
        "1d",
        "2021-01-01",
        "2021-03-01",
        exchange=exchange(src),
        limit=3,
        now=pd.Timestamp("2021-06-01", tz="UTC"),
        sleep=lambda s: None,
    )
    assert [c["startTime"] for c in src.calls] == [T0, T0 + 3 * DAY, T0 + 6 * DAY]
    assert len(df) == 6 and df.index[-1] == pd.Timestamp("2021-01-06", tz="UTC")


def test_a_short_last_page_is_kept_and_the_next_empty_page_stops():
    src = Klines(T0, T0 + 6 * DAY)  # 7 bars listed; pages of 5 -> 5, then 2, then nothing
    df, warnings = fetch_ccxt(
        "binance:BTC/USDT",
        "1d",
        "2021-01-01",
        None,
        exchange=exchange(src),
        limit=5,
        now=pd.Timestamp("2021-06-01", tz="UTC"),
        sleep=lambda s: None,
    )
    assert [c["startTime"] for c in src.calls] == [T0, T0 + 5 * DAY, T0 + 7 * DAY]
    assert (df.index.asi8 // 1000).tolist() == [T0 + i * DAY for i in range(7)]
    assert warnings == []


def test_an_exchange_page_smaller_than_our_limit_does_not_stop_paging():
    src = Klines(T0, T0 + 99 * DAY, page_cap=3)  # asks 10, the exchange sends at most 3
    df, _ = fetch_ccxt(
        "binance:BTC/USDT",
        "1d",
        "2021-01-01",
        "2021-01-08",
        exchange=exchange(src),
        limit=10,
        now=pd.Timestamp("2021-06-01", tz="UTC"),
        sleep=lambda s: None,
    )
    assert len(df) == 7


def test_rate_limit_backs_off_then_succeeds():
    src = Klines(T0, T0 + 99 * DAY)
    src.fail = [ccxt.RateLimitExceeded("binance 429 Too Many Requests"), ccxt.DDoSProtection("binance 418")]
    sleeps: list[float] = []
    df, _ = fetch_ccxt(
        "binance:BTC/USDT",
        "1d",
        "2021-01-01",
        "2021-01-05",
        exchange=exchange(src),
        limit=10,
        now=pd.Timestamp("2021-06-01", tz="UTC"),
        sleep=sleeps.append,
    )
    assert sleeps == [1.0, 2.0]  # at least a second, doubling
    assert [c["startTime"] for c in src.calls] == [T0, T0, T0]  # the same page, retried
    assert len(df) == 4


def test_rate_limit_that_never_ends_is_a_network_error():
    src = Klines(T0, T0 + 99 * DAY)
    src.fail = [ccxt.RateLimitExceeded("429")] * 10
    sleeps: list[float] = []
    with pytest.raises(NetworkError, match="rate-limited by binance 5 times in a row"):
        fetch_ccxt(
            "binance:BTC/USDT",
            "1d",
            "2021-01-01",
            "2021-01-05",
            exchange=exchange(src),
            now=pd.Timestamp("2021-06-01", tz="UTC"),
            sleep=sleeps.append,
        )
    assert sleeps == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_a_bar_still_in_progress_is_not_stored():
    src = Klines(T0, T0 + 99 * DAY)
    now = pd.Timestamp("2021-01-05 13:30", tz="UTC")  # the 2021-01-05 bar closes at 2021-01-06 00:00
    df, _ = fetch_ccxt(
        "binance:BTC/USDT", "1d", "2021-01-01", None, exchange=exchange(src), limit=10, now=now, sleep=lambda s: None
    )
    assert df.index[-1] == pd.Timestamp("2021-01-04", tz="UTC")
    assert len(df) == 4

    at_close = pd.Timestamp("2021-01-06 00:00", tz="UTC")  # exactly at its close it is complete
    df, _ = fetch_ccxt(
        "binance:BTC/USDT",
        "1d",
        "2021-01-01",
        None,
        exchange=exchange(src),
        limit=10,
        now=at_close,
        sleep=lambda s: None,
    )
    assert df.index[-1] == pd.Timestamp("2021-01-05", tz="UTC")


def test_a_missing_bar_is_a_gap_warning():
    src = Klines(T0, T0 + 99 * DAY)
    real = src.__call__

    def without_jan_3(params=None):
        return [r for r in real(params) if r[0] != T0 + 2 * DAY]

    ex = exchange(src)
    ex.publicGetKlines = without_jan_3
    df, warnings = fetch_ccxt(
        "binance:BTC/USDT",
        "1d",
        "2021-01-01",
        "2021-01-06",
        exchange=ex,
        now=pd.Timestamp("2021-06-01", tz="UTC"),
        sleep=lambda s: None,
    )
    assert len(df) == 4
    assert [(w.kind, w.dates) for w in warnings] == [("gaps", ("2021-01-03",))]


def test_unknown_pair_is_a_data_error():
    src = Klines(T0, T0 + 9 * DAY)
    with pytest.raises(DataError, match="binance does not list ETH/USDT") as err:
        fetch_ccxt("binance:ETH/USDT", "1d", "2021-01-01", exchange=exchange(src), now=pd.Timestamp("2021-06-01"))
    assert "\n" not in str(err.value)
    assert src.calls == []


def test_bad_symbol_from_the_endpoint_is_a_data_error():
    src = Klines(T0, T0 + 9 * DAY)
    src.fail = [ccxt.BadSymbol("binance {'code':-1121,'msg':'Invalid symbol.'}")]
    with pytest.raises(DataError, match="binance does not list BTC/USDT"):
        fetch_ccxt("binance:BTC/USDT", "1d", "2021-01-01", exchange=exchange(src), now=pd.Timestamp("2021-06-01"))


@pytest.mark.parametrize(
    "error",
    [
        ccxt.NetworkError("connection reset\nby peer"),
        ccxt.RequestTimeout("timed out"),
        ccxt.ExchangeNotAvailable("503"),
    ],
)
def test_network_failures_are_network_errors_in_one_line(error):
    src = Klines(T0, T0 + 9 * DAY)
    src.fail = [error]
    with pytest.raises(NetworkError, match="binance:BTC/USDT: binance did not answer") as err:
        fetch_ccxt("binance:BTC/USDT", "1d", "2021-01-01", exchange=exchange(src), now=pd.Timestamp("2021-06-01"))
    assert "\n" not in str(err.value)


def test_nothing_in_range_is_a_network_error():
    src = Klines(T0, T0 + 9 * DAY)
    with pytest.raises(NetworkError, match="returned no 1d bars in the requested range"):
        fetch_ccxt(
            "binance:BTC/USDT",
            "1d",
            "2022-01-01",
            "2022-02-01",
            exchange=exchange(src),
            now=pd.Timestamp("2022-06-01", tz="UTC"),
            sleep=lambda s: None,
        )


def test_a_yahoo_symbol_is_not_an_exchange_pair():
    with pytest.raises(DataError, match="not an exchange pair; write it as exchange:BASE/QUOTE"):
        fetch_ccxt("BTC-USD", "1d")


def test_the_raw_endpoint_really_is_what_fetch_ohlcv_calls():
    src = Klines(T0, T0 + 9 * DAY)
    rows = exchange(src).fetch_ohlcv("BTC/USDT", "1d", since=T0 + DAY, limit=2)
    assert src.calls == [{"interval": "1d", "limit": 2, "symbol": "BTCUSDT", "startTime": T0 + DAY}]
    assert rows == [[T0 + DAY, 101.0, 106.0, 96.0, 102.0, 11.5], [T0 + 2 * DAY, 102.0, 107.0, 97.0, 103.0, 12.5]]
    assert ms("2021-01-02") == T0 + DAY


def test_a_start_that_is_not_a_date_is_a_data_error():
    src = Klines(T0, T0 + 9 * DAY)
    with pytest.raises(DataError, match="'soon' is not a date or time"):
        fetch_ccxt("binance:BTC/USDT", "1d", "soon", exchange=exchange(src), now=pd.Timestamp("2021-06-01"))
    assert src.calls == []


def test_incremental_fetch_of_a_cached_pair_adds_only_the_missing_tail(tmp_path, cache, monkeypatch):
    import feeds.exchange
    from feeds.loader import fetch, import_file

    csv = tmp_path / "binance_BTC-USDT_1d.csv"
    rows = [kline(T0 + i * DAY, DAY)[:6] for i in range(5)]  # 2021-01-01 .. 2021-01-05, as the exchange has them
    csv.write_text("timestamp,open,high,low,close,volume\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    import_file(csv, cache=cache)

    src = Klines(T0, T0 + 9 * DAY)
    monkeypatch.setattr(feeds.exchange, "make_exchange", lambda name: exchange(src))
    filled = fetch("binance:BTC/USDT", "1d", cache=cache, deadline=20)  # runs in a forked child
    assert filled.added == 5
    assert filled.meta["rows"] == 10 and filled.meta["last"] == "2021-01-10T00:00:00+00:00"
    assert filled.meta["source"] == "csv:binance_BTC-USDT_1d.csv+ccxt:binance"
    frame = cache.read("binance:BTC/USDT")
    assert (frame.index.asi8 // 1000).tolist() == [T0 + i * DAY for i in range(10)]
    assert frame["close"].tolist() == [101.0 + i for i in range(10)]
