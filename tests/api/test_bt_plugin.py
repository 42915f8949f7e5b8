"""``riskon.bt``: the combined feed from the cache or from DataFrames, and the tear-sheet analyzer for any strategy.

The feed built from two DataFrames a user already has (capitalised columns, naive dates, no attrs) must
equal the feed built from the cache line for line; ``idx_session`` decodes with ``bt.num2date``. The
analyzer is checked on ``RiskOn`` (its returns are the seed run's; its tear sheet shows the run's printed
numbers at 365 periods) and on a plain SMA-cross strategy on IWM (its returns equal backtrader's own
``TimeReturn``; it keeps IWM's trading-day calendar, annualises over 252 and says so).
"""

from __future__ import annotations

import math
import re

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

import riskon
import riskon.bt as rbt
from feeds.errors import DataError
from riskon.config import ConfigError
from riskon.metrics import format_metric


@pytest.fixture(scope="module")
def seed_run(data_dir):
    return riskon.run("runs/seed.toml")


def user_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """^RUT and BTC-USD as a user might hold them: Yahoo's column names, naive local dates, no attrs."""
    names = {"open": "Open", "high": "High", "low": "Low", "close": "Close", "adj_close": "Adj Close",
             "volume": "Volume"}  # fmt: skip
    out = []
    for sym, tz in (("^RUT", "America/New_York"), ("BTC-USD", "UTC")):
        f = riskon.load(sym).rename(columns=names)
        f.index = f.index.tz_convert(tz).tz_localize(None).rename("Date")
        f.attrs = {}
        out.append(f.reset_index())  # the dates as a column, not the index
    return out[0], out[1]


def lines(feed) -> pd.DataFrame:
    return feed.p.frame


def test_feed_from_dataframes_equals_feed_from_the_cache(data_dir):
    cached = rbt.IndexCryptoFeed(index="^RUT", asset="BTC-USD", start="2018-01-01")
    index, asset = user_frames()
    given = rbt.IndexCryptoFeed(index=index, asset=asset, start="2018-01-01")
    pd.testing.assert_frame_equal(lines(given), lines(cached))
    pd.testing.assert_frame_equal(given.sessions, cached.sessions)
    assert given.fingerprints == cached.fingerprints  # the same rows: the same content fingerprint
    assert given._name == cached._name == "BTC-USD"


def test_idx_session_is_backtraders_date_number(data_dir):
    feed = rbt.IndexCryptoFeed(index="^RUT", asset="BTC-USD", start="2020-11-13", end="2020-11-17")
    frame = lines(feed)
    seen = [bt.num2date(x).date().isoformat() for x in frame["idx_session"]]
    # Friday's bar sees Friday's close; Saturday and Sunday still see Friday; Monday sees Monday
    assert seen == ["2020-11-13", "2020-11-13", "2020-11-13", "2020-11-16", "2020-11-17"]
    assert frame["idx_age"].round(6).tolist() == [0.125, 1.125, 2.125, 0.125, 0.125]  # 16:00 NY = 21:00 UTC


def test_bad_frames_are_refused_as_an_import_would_be(data_dir):
    index, asset = user_frames()
    broken = asset.copy()
    broken.loc[10, "High"] = broken.loc[10, "Low"] / 2
    with pytest.raises(DataError) as err:
        rbt.IndexCryptoFeed(index=index, asset=broken)
    assert str(err.value) == "BTC-USD (DataFrame): high < low on 2014-09-27"
    with pytest.raises(DataError) as err:
        rbt.IndexCryptoFeed(index=index.drop(columns=["Close"]), asset=asset)
    assert str(err.value) == "^RUT (DataFrame): missing column(s) close; expected open, high, low, close, volume"
    with pytest.raises(ConfigError) as err:
        rbt.IndexCryptoFeed(index="^RUT", asset="BTC-USD", fromdate=pd.Timestamp("2020-01-01").to_pydatetime())
    assert str(err.value) == (
        "IndexCryptoFeed: use start/end, not fromdate/todate (those would cut bars away from under the index lines)"
    )


# -- the analyzer ------------------------------------------------------------------------------------------
def tearsheet_rows(path) -> tuple[str, dict[str, dict[str, str]]]:
    html = path.read_text(encoding="utf-8")
    header = re.search(r"<tr><th>Metric</th>((?:<th>[^<]*</th>)+)</tr>", html)
    cols = [c.replace("&amp;", "&") for c in re.findall(r"<th>([^<]*)</th>", header.group(1))]
    rows = {}
    for label, cells in re.findall(r"<tr><td>([^<]*)</td>((?:<td>[^<]*</td>)+)</tr>", html):
        values = re.findall(r"<td>([^<]*)</td>", cells)
        if len(values) == len(cols):
            rows.setdefault(label, dict(zip(cols, values, strict=True)))
    return html, rows


def test_analyzer_on_riskon_is_the_runs_tearsheet(seed_run, tmp_path):
    cerebro = bt.Cerebro()
    cerebro.adddata(rbt.IndexCryptoFeed(index="^RUT", asset="BTC-USD"))
    cerebro.addstrategy(rbt.RiskOn, rule="ath_confirmed", confirm_days=3, trailing_stop=0.25, index_drawdown=0.10)
    cerebro.addanalyzer(rbt.QuantStatsAnalyzer, path=tmp_path / "seed.html")
    cerebro.broker.setcash(100_000)
    a = cerebro.run()[0].analyzers[0].get_analysis()
    assert (a["calendar"], a["periods"], a["note"]) == ("7-day", 365, None)
    np.testing.assert_allclose(a["returns"].to_numpy(), seed_run.returns.to_numpy(), rtol=0, atol=1e-12)
    assert list(a["returns"].index) == list(seed_run.returns.index.tz_localize(None))
    for name in ("cagr", "sharpe", "max_drawdown"):
        assert math.isclose(a["metrics"][name], seed_run.metrics.at[name, "strategy"], rel_tol=1e-9)
    html, rows = tearsheet_rows(a["path"])
    assert "Periods/Year: 365" in html and "<title>riskon: RiskOn on BTC-USD</title>" in html
    assert not re.search(r"(?:src|href)=[\"']?(?:https?:)?//", html)  # offline
    sharpe = format_metric("sharpe", seed_run.metrics.at["sharpe", "strategy"])
    assert rows["Sharpe"]["Strategy"] == sharpe
    cagr = format_metric("cagr", seed_run.metrics.at["cagr", "strategy"])
    assert rows["CAGR%"]["Strategy"] == cagr


class SmaCross(bt.Strategy):
    """A plain user strategy: 100 shares while the 20-day SMA is above the 50-day."""

    def __init__(self) -> None:
        self.cross = bt.ind.CrossOver(bt.ind.SMA(period=20), bt.ind.SMA(period=50))

    def next(self) -> None:
        if not self.position and self.cross > 0:
            self.buy(size=100)
        elif self.position and self.cross < 0:
            self.close()


def test_analyzer_on_an_sma_cross_on_iwm_keeps_its_trading_day_calendar(data_dir, tmp_path):
    iwm = riskon.load("IWM")[["open", "high", "low", "close", "volume"]]
    iwm.index = iwm.index.tz_convert("America/New_York").tz_localize(None)
    cerebro = bt.Cerebro()
    cerebro.adddata(bt.feeds.PandasData(dataname=iwm, name="IWM"))
    cerebro.addstrategy(SmaCross)
    cerebro.addanalyzer(rbt.QuantStatsAnalyzer, path=tmp_path / "iwm.html")
    cerebro.addanalyzer(bt.analyzers.TimeReturn, timeframe=bt.TimeFrame.Days)
    cerebro.broker.setcash(100_000)
    strategy = cerebro.run()[0]
    a, own = strategy.analyzers[0].get_analysis(), pd.Series(strategy.analyzers[1].get_analysis())
    assert a["calendar"] == "trading-day" and a["periods"] == 252
    assert a["note"] == (
        "IWM has no weekend bars: returns stay on its own trading-day calendar and are annualised over 252 periods, "
        "not 365"
    )
    assert len(a["returns"]) == len(iwm) == len(own)
    np.testing.assert_allclose(a["returns"].to_numpy(), own.to_numpy(), rtol=0, atol=1e-15)  # backtrader's own
    assert (a["returns"] != 0).sum() > 1000  # the strategy traded
    closes = iwm["close"].to_numpy()
    bench = np.r_[closes[0] / iwm["open"].iloc[0], closes[1:] / closes[:-1]] - 1.0
    np.testing.assert_allclose(a["benchmark"].to_numpy(), bench, rtol=0, atol=1e-15)
    html, rows = tearsheet_rows(a["path"])
    assert "Periods/Year: 252" in html
    assert "<title>riskon: SmaCross on IWM (trading-day calendar, 252 periods a year)</title>" in html
    r = a["returns"].to_numpy()
    sharpe_252 = r.mean() / r.std(ddof=1) * math.sqrt(252)
    assert rows["Sharpe"]["Strategy"] == f"{sharpe_252:.2f}"


def test_analyzer_aligns_a_benchmark_on_another_calendar(data_dir):
    """An IWM benchmark (trading days) against a BTC strategy (every day): compounded onto BTC's dates."""
    iwm = riskon.load("IWM")["close"]
    iwm_ret = iwm.pct_change().dropna()
    iwm_ret.index = iwm_ret.index.tz_convert("America/New_York").tz_localize(None).normalize()
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(rbt.IndexCryptoFeed(index="^RUT", asset="BTC-USD", start="2021-01-01", end="2021-01-31"))
    cerebro.addstrategy(bt.Strategy)
    cerebro.addanalyzer(rbt.QuantStatsAnalyzer, benchmark=iwm_ret.rename("IWM"))
    a = cerebro.run()[0].analyzers[0].get_analysis()
    b = a["benchmark"]
    assert len(b) == 31 and b.name == "IWM"
    # Saturday and Sunday carry nothing; Monday 2021-01-04 carries Monday's own move over Thursday 2020-12-31
    assert b.loc["2021-01-02"] == b.loc["2021-01-03"] == 0.0
    assert math.isclose(b.loc["2021-01-04"], iwm_ret.loc["2021-01-04"], rel_tol=1e-12)
    assert math.isclose((1 + b).prod(), (1 + iwm_ret.loc["2021-01-01":"2021-01-31"]).prod(), rel_tol=1e-12)
