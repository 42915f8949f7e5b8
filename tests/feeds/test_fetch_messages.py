"""What a failed fetch says, offline: one line naming the failure (no network or unknown symbol) and the cure,
with no third-party warning or log line around it, and a download announced before it starts.

The real yfinance and ccxt run; only their HTTP call is replaced (``support.fake_yahoo``): curl_cffi
raising its offline ``DNSError``, Yahoo's answers for an unknown symbol, requests' ``ConnectionError``.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import ccxt
import pandas as pd
import pytest
import yfinance

from feeds.errors import DataError, NetworkError
from feeds.exchange import fetch_ccxt
from feeds.loader import fetch, import_file, load
from feeds.quiet import quiet_libraries
from feeds.yahoo import empty_answer, fetch_yahoo
from support import fake_yahoo

ROOT = Path(__file__).resolve().parents[2]
HINT = "the cache is unchanged. Check the connection, or use a CSV file: put {file} in the folder RISKON_DATA names, "
HINT += "or run `riskon data import FILE`"


def no_network(symbol: str, source: str, detail: str, file: str) -> str:
    return f"{symbol}: {source} did not answer ({detail}): no network; " + HINT.format(file=file)


YAHOO_DNS = "DNSError: Could not resolve host: query2.finance.yahoo.com"


@pytest.fixture
def wire(monkeypatch, tmp_path):
    """``wire(kind)`` serves yfinance's and ccxt's HTTP calls as ``support.fake_yahoo`` does; returns the URL list."""
    yfinance.set_tz_cache_location(str(tmp_path / "yf"))

    def use(kind: str) -> list[str]:
        patches, calls = fake_yahoo.wire(kind)
        for target, name, fn in patches:
            monkeypatch.setattr(target, name, fn)
        yfinance.data.YfData.cache_get.cache_clear()  # no answer from an earlier test is served again
        return calls

    return use


def _fetch_quietly(fn, *args, **kwargs):
    """Call ``fn`` with every warning recorded (none filtered out); return (error raised, warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises((DataError, NetworkError)) as err:
            fn(*args, **kwargs)
    return err.value, caught


# ---------------------------------------------------------------------------------------------- Yahoo
def test_offline_yahoo_is_one_no_network_line_and_no_third_party_warning(wire, caplog):
    calls = wire("offline")
    caplog.set_level(logging.DEBUG)
    error, caught = _fetch_quietly(fetch_yahoo, "BTC-USD")
    assert type(error) is NetworkError
    assert str(error) == no_network("BTC-USD", "Yahoo", YAHOO_DNS, "BTC-USD.csv")
    assert [str(w.message)[:60] for w in caught] == []  # yfinance's six lines of Pandas4Warning are gone
    assert [r.name for r in caplog.records] == []  # and none of its log lines reached the root logger
    assert calls and {u.split("/")[2] for u in calls} <= {"fc.yahoo.com", "guce.yahoo.com", "query1.finance.yahoo.com",
                                                            "query2.finance.yahoo.com"}  # fmt: skip


def test_offline_yahoo_with_a_start_is_still_no_network(wire):
    # the cached tail's update: yfinance's time zone lookup fails too and logs "possibly delisted; no timezone found"
    wire("offline")
    error, _ = _fetch_quietly(fetch_yahoo, "^RUT", start="2026-08-21T04:00:00+00:00")
    assert type(error) is NetworkError
    assert str(error) == no_network("^RUT", "Yahoo", YAHOO_DNS, "RUT.csv")


@pytest.mark.parametrize(
    ("start", "said"),
    [(None, "No data found, symbol may be delisted"), ("2024-01-02", "possibly delisted; no timezone found")],
)
def test_a_symbol_yahoo_does_not_know_is_an_unknown_symbol(wire, start, said):
    wire("unknown")
    error, caught = _fetch_quietly(fetch_yahoo, "NOPE-USD", start=start)
    assert type(error) is DataError
    assert str(error) == (
        f"NOPE-USD: unknown symbol: Yahoo has no NOPE-USD ({said}); "
        "check the symbol as Yahoo writes it (^RUT, IWM, BTC-USD, ETH-USD)"
    )
    assert caught == []


def test_a_rate_limit_is_neither_no_network_nor_an_unknown_symbol(wire):
    wire("rate_limited")
    error, _ = _fetch_quietly(fetch_yahoo, "IWM")
    assert type(error) is NetworkError
    assert str(error) == (
        "IWM: Yahoo refused the request (YFRateLimitError('Too Many Requests. Rate limited. Try after a while.')): "
        "it is rate-limiting this machine, the network is fine; wait a few minutes and try again"
    )


def test_what_yfinance_logs_offline_is_read_as_no_network():
    # the records yfinance 1.7 logged on this machine with no network, a start given, in order
    logged = [
        "Cookie/crumb fetch failed (DNSError), continuing without crumb",
        "Failed to get ticker '^RUT' reason: Failed to perform, curl: (6) Could not resolve host: "
        "query2.finance.yahoo.com. See https://curl.se/libcurl/c/libcurl-errors.html first for more details.",
        "$^RUT: possibly delisted; no timezone found",
        "\n1 Failed download:",
        "['^RUT']: possibly delisted; no timezone found",
    ]
    error = empty_answer("^RUT", "1d", logged)
    assert str(error) == no_network("^RUT", "Yahoo", YAHOO_DNS, "RUT.csv")
    assert str(empty_answer("^RUT", "1d", logged[2:])).startswith("^RUT: unknown symbol: Yahoo has no ^RUT")
    assert str(
        empty_answer("IWM", "1d", ["['IWM']: possibly delisted; no price data found (1d 2030-01-02 -> ...)"])
    ) == (
        "IWM: Yahoo has no 1d bars in the requested range (possibly delisted; no price data found (1d 2030-01-02 -> "
        "...)); check the dates (--start, --end) and the symbol"
    )
    assert str(empty_answer("IWM", "1d", [])) == (
        "Yahoo returned no data for IWM: unknown symbol, no data in that range, or no network"
    )


def test_a_connection_error_out_of_download_is_no_network(monkeypatch):
    from curl_cffi.requests.exceptions import DNSError

    def download(*args, **kwargs):
        raise DNSError(fake_yahoo.OFFLINE_CURL.format(host="fc.yahoo.com"), 6)

    monkeypatch.setattr(yfinance, "download", download)
    with pytest.raises(NetworkError) as err:
        fetch_yahoo("ETH-USD")
    assert str(err.value) == no_network(
        "ETH-USD", "Yahoo", "DNSError: Could not resolve host: fc.yahoo.com", "ETH-USD.csv"
    )


# ---------------------------------------------------------------------------------------------- ccxt
def test_offline_exchange_is_one_no_network_line(wire):
    calls = wire("offline")
    error, caught = _fetch_quietly(fetch_ccxt, "binance:BTC/USDT", "1d", "2021-01-01")
    assert type(error) is NetworkError
    assert str(error) == no_network("binance:BTC/USDT", "binance", "NetworkError", "binance_BTC-USDT_1d.csv")
    assert calls == ["https://api.binance.com/api/v3/exchangeInfo"]  # ccxt loads its markets first
    assert caught == []


def _binance_with(pairs: list[str]) -> ccxt.Exchange:
    ex = ccxt.binance({"enableRateLimit": False})
    ex.set_markets([{"id": p.replace("/", ""), "symbol": p, "base": p.split("/")[0], "quote": p.split("/")[1],
                     "type": "spot", "spot": True, "active": True, "precision": {}, "limits": {}, "info": {}}
                    for p in pairs])  # fmt: skip
    ex.load_markets = lambda *a, **k: ex.markets
    return ex


def test_a_pair_the_exchange_does_not_list_is_an_unknown_symbol():
    with pytest.raises(DataError) as err:
        fetch_ccxt("binance:FOO/USDT", "1d", "2021-01-01", exchange=_binance_with(["BTC/USDT"]))
    assert str(err.value) == (
        "binance:FOO/USDT: unknown symbol: binance does not list FOO/USDT; "
        "check the symbol as binance writes it (e.g. binance:BTC/USDT)"
    )


def test_an_exchange_that_answers_unavailable_is_named_as_such():
    ex = _binance_with(["BTC/USDT"])
    said = ('binance {"code":0,"msg":"Service unavailable from a restricted location according to '
            "'b. Eligibility' in https://www.binance.com/en/terms.\"}")  # fmt: skip

    def refuse(params=None):
        raise ccxt.ExchangeNotAvailable(said)

    ex.publicGetKlines = refuse
    with pytest.raises(NetworkError) as err:
        fetch_ccxt("binance:BTC/USDT", "1d", "2021-01-01", exchange=ex)
    assert str(err.value) == (
        f"binance:BTC/USDT: binance did not answer (ExchangeNotAvailable: {said[:160]}): binance is unavailable "
        "from here (down, or refusing this location); " + HINT.format(file="binance_BTC-USDT_1d.csv")
    )


# ---------------------------------------------------------------------------------------------- the loader
def test_a_download_is_announced_before_it_starts(wire, cache):
    wire("offline")
    said: list[str] = []

    def announce(line: str) -> None:
        said.append(line)

    with pytest.raises(NetworkError) as err:
        fetch("BTC-USD", cache=cache, deadline=20, announce=announce)
    assert said == ["downloading BTC-USD (1d) from Yahoo: all history (gives up after 20 s) ..."]
    assert str(err.value) == no_network("BTC-USD", "Yahoo", YAHOO_DNS, "BTC-USD.csv")


def test_the_update_of_a_cached_series_is_announced_with_its_span(wire, cache, tmp_path):
    csv = tmp_path / "RUT.csv"
    csv.write_text("Date,Open,High,Low,Close,Adj Close,Volume\n2020-11-12,1697,1707,1691,1700,1699.75,4000000000\n")
    import_file(csv, cache=cache)
    wire("offline")
    said: list[str] = []
    with pytest.raises(NetworkError):
        fetch("^RUT", end="2021-01-01", cache=cache, deadline=7.5, announce=said.append)
    assert said == [
        "downloading ^RUT (1d) from Yahoo: the bars from 2020-11-12 on to 2021-01-01 (gives up after 7.5 s) ..."
    ]
    assert len(cache.read("^RUT")) == 1  # unchanged


def test_load_announces_the_download_and_says_the_cure_once(wire, cache, monkeypatch):
    monkeypatch.delenv("RISKON_DATA", raising=False)
    wire("offline")
    said: list[str] = []
    with pytest.raises(NetworkError) as err:
        load("binance:ETH/USDT", cache=cache, announce=said.append)
    assert said == ["downloading binance:ETH/USDT (1d) from binance: all history (gives up after 20 s) ..."]
    assert str(err.value) == no_network("binance:ETH/USDT", "binance", "NetworkError", "binance_ETH-USDT_1d.csv")
    assert not cache.has("binance:ETH/USDT")


# ---------------------------------------------------------------------------------------------- quiet
def test_quiet_drops_third_party_warnings_keeps_our_own_and_keeps_log_records(caplog):
    caplog.set_level(logging.DEBUG)
    ours = str(ROOT / "feeds" / "yahoo.py")
    theirs = str(Path(yfinance.__file__).with_name("multi.py"))
    before = logging.lastResort
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_libraries("yfinance") as records:
            warnings.warn_explicit("inplace is deprecated", pd.errors.Pandas4Warning, theirs, 220)
            warnings.warn_explicit("ours", UserWarning, ours, 1)
            logging.getLogger("yfinance").error("['BTC-USD']: DNSError('...')")
            logging.getLogger("yfinance.data").warning("Cookie/crumb fetch failed (DNSError)")
            assert logging.lastResort is not before  # a logger without handlers prints nothing either
        logging.getLogger("yfinance").error("after the block")
    assert [(str(w.message), w.filename) for w in caught] == [("ours", ours)]
    assert [r.getMessage() for r in records] == ["['BTC-USD']: DNSError('...')", "Cookie/crumb fetch failed (DNSError)"]
    assert [r.getMessage() for r in caplog.records] == ["after the block"]  # everything restored
    assert logging.lastResort is before
