"""Yahoo through yfinance 1.7, offline: every frame shape ``download``/``history`` return, and every failure.

The frames are built by hand in yfinance 1.7's exact shapes; one test checks
the hand-built shape against what the real ``yfinance.download`` assembles
(with ``Ticker.history`` served locally, so no request is made).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import yfinance

from feeds.errors import DataError, NetworkError
from feeds.yahoo import fetch_yahoo, normalise_yahoo

PRICE_ORDER = ["Adj Close", "Close", "High", "Low", "Open", "Volume"]  # download() sorts the Price level


def history(dates, tz: str | None, *, adj: bool = True, actions: bool = False, intraday: bool = False) -> pd.DataFrame:
    """A frame shaped like ``Ticker.history(auto_adjust=False)``: tz-aware index named Date/Datetime."""
    idx = pd.DatetimeIndex(pd.to_datetime(dates)).as_unit("us")
    if tz:
        idx = idx.tz_localize(tz)
    idx.name = "Datetime" if intraday else "Date"
    n = len(idx)
    close = 1700.0 + 10 * np.arange(n)
    cols = {
        "Open": close - 3,
        "High": close + 7,
        "Low": close - 9,
        "Close": close,
    }
    if adj:
        cols["Adj Close"] = close - 0.25
    cols["Volume"] = (4_000_000_000 + np.arange(n)).astype(np.int64)
    if actions:
        cols["Dividends"] = np.zeros(n)
        cols["Stock Splits"] = np.zeros(n)
    return pd.DataFrame(cols, index=idx)


def download_shape(hist: pd.DataFrame, ticker: str, *, ignore_tz: bool = True) -> pd.DataFrame:
    """``yf.download(ticker)`` for one ticker: ('Price', 'Ticker') MultiIndex columns, sorted Price level."""
    df = hist.copy()
    if ignore_tz and df.index.tz is not None:
        df.index = df.index.tz_localize(None)
    df = df[PRICE_ORDER]
    df.columns = pd.MultiIndex.from_tuples([(c, ticker) for c in PRICE_ORDER], names=["Price", "Ticker"])
    return df


def empty_download(ticker: str) -> pd.DataFrame:
    """What ``yf.download`` returns when every request failed: no rows, the usual columns."""
    cols = pd.MultiIndex.from_tuples([(c, ticker) for c in PRICE_ORDER], names=["Price", "Ticker"])
    return pd.DataFrame(index=pd.DatetimeIndex([], dtype="datetime64[s]"), columns=cols, dtype="float64")


EXCHANGE_TZ = {"^RUT": "America/New_York", "IWM": "America/New_York", "BTC-USD": "UTC"}


@pytest.fixture
def downloads(monkeypatch):
    """Patch ``yfinance.download``; set ``.frame`` or ``.error``; ``.calls`` records the arguments.

    Like the real one, it reads ``start``/``end`` with yfinance's own parser and,
    when that fails, logs and returns an empty frame rather than raising.
    """

    class Fake:
        frame: pd.DataFrame | None = None
        error: BaseException | None = None
        calls: list = []
        parsed: dict = {}

        def __call__(self, tickers, **kwargs):
            self.calls.append((tickers, kwargs))
            try:
                for key in ("start", "end"):
                    if kwargs.get(key) is not None:
                        self.parsed[key] = yfinance.utils._parse_user_dt(kwargs[key], EXCHANGE_TZ[tickers])
            except ValueError:
                return empty_download(tickers)
            if self.error is not None:
                raise self.error
            return self.frame

    fake = Fake()
    fake.calls, fake.parsed = [], {}
    monkeypatch.setattr(yfinance, "download", fake)
    return fake


RUT_DATES = ["2020-11-12", "2020-11-13", "2020-11-16"]


def test_hand_built_shapes_match_what_yfinance_download_really_returns(monkeypatch):
    served = history(RUT_DATES, "America/New_York")
    monkeypatch.setattr(yfinance.Ticker, "history", lambda self, *a, **k: served.copy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        real = yfinance.download("^RUT", start="2020-11-01", auto_adjust=False, progress=False, threads=False)
        real_tz = yfinance.download(
            "^RUT", start="2020-11-01", auto_adjust=False, progress=False, threads=False, ignore_tz=False
        )
    pd.testing.assert_frame_equal(real, download_shape(served, "^RUT"))
    pd.testing.assert_frame_equal(real_tz, download_shape(served, "^RUT", ignore_tz=False))
    assert real.columns.names == ["Price", "Ticker"] and real.index.name == "Date" and real.index.tz is None

    def failing(self, *a, **k):
        raise RuntimeError("curl: (6) Could not resolve host: query2.finance.yahoo.com")

    monkeypatch.setattr(yfinance.Ticker, "history", failing)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        real_empty = yfinance.download("^RUT", auto_adjust=False, progress=False, threads=False)
    pd.testing.assert_frame_equal(real_empty, empty_download("^RUT"), check_column_type=False, check_dtype=False)
    assert real_empty.empty


def test_multiindex_tz_naive_index_is_a_new_york_session_date():
    frame = normalise_yahoo(download_shape(history(RUT_DATES, "America/New_York"), "^RUT"), "^RUT")
    assert str(frame.index.dtype) == "datetime64[us, UTC]" and frame.index.name == "time"
    assert [t.isoformat() for t in frame.index] == [
        "2020-11-12T05:00:00+00:00",
        "2020-11-13T05:00:00+00:00",
        "2020-11-16T05:00:00+00:00",
    ]
    row = frame.loc[pd.Timestamp("2020-11-13 05:00", tz="UTC")]
    assert row.to_dict() == {
        "open": 1707.0,
        "high": 1717.0,
        "low": 1701.0,
        "close": 1710.0,
        "volume": 4_000_000_001.0,
        "adj_close": 1709.75,
    }
    assert (frame.dtypes == "float64").all()
    assert frame.attrs == {"symbol": "^RUT", "source": "yahoo", "timeframe": "1d", "tz": "America/New_York"}


def test_summer_session_is_four_hours_behind_utc():
    frame = normalise_yahoo(download_shape(history(["2021-07-01"], "America/New_York"), "IWM"), "IWM")
    assert frame.index[0] == pd.Timestamp("2021-07-01 04:00", tz="UTC")


@pytest.mark.parametrize(
    ("symbol", "tz", "expected"),
    [
        ("^RUT", "America/New_York", "2020-11-13 05:00"),
        ("BTC-USD", "UTC", "2020-11-13 00:00"),
    ],
)
def test_multiindex_tz_aware_index(symbol, tz, expected):
    raw = download_shape(history(["2020-11-12", "2020-11-13"], tz), symbol, ignore_tz=False)
    assert str(raw.index.tz) == tz
    frame = normalise_yahoo(raw, symbol)
    assert frame.index[1] == pd.Timestamp(expected, tz="UTC")
    assert frame["close"].tolist() == [1700.0, 1710.0]
    assert frame.attrs["tz"] == tz


def test_btc_naive_dates_are_utc_dates():
    frame = normalise_yahoo(download_shape(history(["2020-11-13"], "UTC"), "BTC-USD"), "BTC-USD")
    assert frame.index[0] == pd.Timestamp("2020-11-13 00:00", tz="UTC")


def test_flat_columns_from_ticker_history():
    # Ticker.history() default: auto-adjusted, no Adj Close, Dividends and Stock Splits, tz-aware
    raw = history(RUT_DATES, "America/New_York", adj=False, actions=True)
    assert list(raw.columns) == ["Open", "High", "Low", "Close", "Volume", "Dividends", "Stock Splits"]
    frame = normalise_yahoo(raw, "^RUT")
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert frame.index[1] == pd.Timestamp("2020-11-13 05:00", tz="UTC")
    assert frame["volume"].tolist() == [4e9, 4e9 + 1, 4e9 + 2]


def test_flat_columns_from_download_without_multi_level_index():
    raw = download_shape(history(RUT_DATES, "America/New_York"), "^RUT").droplevel(1, axis=1).rename_axis(None, axis=1)
    frame = normalise_yahoo(raw, "^RUT")
    assert frame["adj_close"].tolist() == [1699.75, 1709.75, 1719.75]


def test_intraday_bars_keep_their_time():
    raw = history(["2020-11-13 09:30", "2020-11-13 10:30"], "America/New_York", intraday=True)
    frame = normalise_yahoo(download_shape(raw, "^RUT", ignore_tz=False), "^RUT", interval="1h")
    assert list(frame.index) == [pd.Timestamp("2020-11-13 14:30", tz="UTC"), pd.Timestamp("2020-11-13 15:30", tz="UTC")]
    assert frame.attrs["timeframe"] == "1h"
    # with ignore_tz=True yfinance drops the zone but keeps New York wall time
    naive = normalise_yahoo(download_shape(raw, "^RUT", ignore_tz=True), "^RUT", interval="1h")
    pd.testing.assert_index_equal(naive.index, frame.index)


def test_rows_that_are_all_nan_are_dropped():
    raw = download_shape(history(RUT_DATES, "America/New_York"), "^RUT")
    raw.iloc[1] = np.nan  # what reindexing to another ticker's dates leaves behind
    frame = normalise_yahoo(raw, "^RUT")
    assert len(frame) == 2 and pd.Timestamp("2020-11-13 05:00", tz="UTC") not in frame.index


def test_missing_price_columns_is_a_data_error():
    raw = download_shape(history(RUT_DATES, "America/New_York"), "^RUT").drop(columns="Low", level=0)
    with pytest.raises(DataError, match="Yahoo data for \\^RUT lacks column\\(s\\) low"):
        normalise_yahoo(raw, "^RUT")


def test_fetch_yahoo_returns_validated_frame_and_passes_the_right_arguments(downloads):
    downloads.frame = download_shape(history(RUT_DATES, "America/New_York"), "^RUT")
    frame, warns = fetch_yahoo("^RUT", start="2020-11-12", end="2020-11-17")
    (ticker, kwargs) = downloads.calls[0]
    assert ticker == "^RUT"
    assert downloads.parsed == {
        "start": pd.Timestamp("2020-11-12", tz="America/New_York"),
        "end": pd.Timestamp("2020-11-17", tz="America/New_York"),
    }
    assert kwargs["interval"] == "1d"
    assert kwargs["auto_adjust"] is False and kwargs["progress"] is False and kwargs["threads"] is False
    assert warns == []  # 12, 13, 16 November 2020 are consecutive sessions
    assert frame["close"].tolist() == [1700.0, 1710.0, 1720.0]
    assert frame.attrs == {"symbol": "^RUT", "source": "yahoo", "timeframe": "1d", "tz": "America/New_York"}


def test_fetch_yahoo_reports_a_missing_session(downloads):
    downloads.frame = download_shape(history(["2020-11-12", "2020-11-16"], "America/New_York"), "^RUT")
    frame, warns = fetch_yahoo("^RUT")
    assert [(w.kind, w.dates) for w in warns] == [("gaps", ("2020-11-13",))]
    assert len(frame) == 2


def test_fetch_yahoo_drops_todays_unfinished_crypto_bar(downloads):
    today = pd.Timestamp.now(tz="UTC").normalize().tz_localize(None)
    dates = [today - pd.Timedelta(days=2), today - pd.Timedelta(days=1), today]
    downloads.frame = download_shape(history(dates, "UTC"), "BTC-USD")
    frame, _ = fetch_yahoo("BTC-USD")
    assert list(frame.index) == [d.tz_localize("UTC") for d in dates[:2]]
    assert frame.attrs["symbol"] == "BTC-USD" and frame.attrs["tz"] == "UTC"


def test_fetch_yahoo_empty_frame_is_a_network_error(downloads):
    downloads.frame = empty_download("^RUT")
    with pytest.raises(NetworkError) as err:
        fetch_yahoo("^RUT")
    msg = str(err.value)
    assert msg == "Yahoo returned no data for ^RUT: unknown symbol, no data in that range, or no network"


def test_fetch_yahoo_none_is_a_network_error(downloads):
    downloads.frame = None
    with pytest.raises(NetworkError, match="Yahoo returned no data for BTC-USD"):
        fetch_yahoo("BTC-USD")


def test_fetch_yahoo_curl_error_is_one_line_network_error(downloads):
    from curl_cffi.requests.exceptions import ConnectionError as CurlConnectionError

    downloads.error = CurlConnectionError(
        "Failed to perform, curl: (6) Could not resolve host: fc.yahoo.com.\n"
        "See https://curl.se/libcurl/c/libcurl-errors.html first for more details."
    )
    with pytest.raises(NetworkError) as err:
        fetch_yahoo("^RUT")
    msg = str(err.value)
    assert msg == (
        "^RUT: Yahoo did not answer (ConnectionError: Could not resolve host: fc.yahoo.com): no network; the cache is "
        "unchanged. Check the connection, or use a CSV file: put RUT.csv in the folder RISKON_DATA names, or run "
        "`riskon data import FILE`"
    )


def test_fetch_yahoo_any_exception_is_a_network_error(downloads):
    class YFRateLimitError(Exception):
        pass

    downloads.error = YFRateLimitError("Too Many Requests. Rate limited. Try after a while.")
    with pytest.raises(NetworkError, match="Yahoo download of IWM failed: YFRateLimitError: Too Many Requests"):
        fetch_yahoo("IWM")


def test_fetch_yahoo_bad_prices_are_a_data_error(downloads):
    raw = download_shape(history(RUT_DATES, "America/New_York"), "^RUT")
    raw.loc[raw.index[1], ("High", "^RUT")] = 1.0  # high below low
    downloads.frame = raw
    with pytest.raises(DataError, match="\\^RUT: high < low on 2020-11-13"):
        fetch_yahoo("^RUT")


@pytest.mark.parametrize(
    ("symbol", "start", "expected"),
    [
        ("^RUT", "2020-11-13T05:00:00+00:00", pd.Timestamp("2020-11-13 00:00", tz="America/New_York")),
        ("^RUT", pd.Timestamp("2020-11-13 05:00", tz="UTC"), pd.Timestamp("2020-11-13 00:00", tz="America/New_York")),
        ("BTC-USD", "2020-11-13T00:00:00+00:00", pd.Timestamp("2020-11-13 00:00", tz="UTC")),
        ("IWM", "2020-11-13", pd.Timestamp("2020-11-13 00:00", tz="America/New_York")),
    ],
)
def test_fetch_yahoo_passes_a_start_yfinance_can_read(downloads, symbol, start, expected):
    # the cache's last bar, as ``fetch`` passes it for an incremental update, is an ISO time with an offset;
    # yfinance reads strings only as YYYY-MM-DD and would answer with an empty frame
    downloads.frame = download_shape(history(["2020-11-13"], EXCHANGE_TZ[symbol]), symbol)
    frame, _ = fetch_yahoo(symbol, start=start)
    assert downloads.parsed["start"] == expected
    assert len(frame) == 1


def test_fetch_yahoo_start_that_is_not_a_date_is_a_data_error(downloads):
    with pytest.raises(DataError, match="start 'last tuesday' is not a date or time; use YYYY-MM-DD"):
        fetch_yahoo("^RUT", start="last tuesday")
    assert downloads.calls == []


def test_incremental_fetch_of_a_cached_series_adds_only_new_sessions(downloads, tmp_path, cache):
    from feeds.loader import fetch, import_file

    csv = tmp_path / "RUT.csv"
    csv.write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2020-11-12,1697,1707,1691,1700,1699.75,4000000000\n"
        "2020-11-13,1707,1717,1701,1710,1709.75,4000000001\n"
    )
    import_file(csv, cache=cache)
    # Yahoo answers from the last cached session on: one bar that overlaps (and agrees), two new ones
    hist = history(["2020-11-13", "2020-11-16", "2020-11-17"], "America/New_York")
    hist[["Open", "High", "Low", "Close", "Adj Close"]] += 10  # closes 1710, 1720, 1730: 2020-11-13 agrees
    hist["Volume"] += 1
    downloads.frame = download_shape(hist, "^RUT")
    filled = fetch("^RUT", cache=cache, deadline=20)
    assert filled.added == 2
    assert filled.meta["rows"] == 4
    assert filled.meta["last"] == "2020-11-17T05:00:00+00:00"
    assert filled.meta["source"] == "csv:RUT.csv+yahoo"
    assert cache.read("^RUT")["close"].tolist() == [1700.0, 1710.0, 1720.0, 1730.0]
