"""``ConfirmedHigh`` and ``RuleSignal``: the rule's own signals as backtrader indicators, without lookahead.

They must give bar for bar what the rule gives a ``riskon run`` (which needs the index's full history the
feed carries), and a line's value at bar t may depend only on what bar t can see: the raw sources are cut
at instants t with ``strategies.lookahead.cut_sources`` (the method of ``riskon check lookahead``), a feed
is built from the cut frames, and every value it gives must equal the full feed's on the same bars. A
planted peeking rule, dropped into a user rules folder, must be caught by the same comparison.
"""

from __future__ import annotations

import os
from pathlib import Path

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

import riskon
import riskon.bt as rbt
from feeds.loader import load
from strategies import rules
from strategies.errors import RuleError
from strategies.lookahead import cut_sources

CUTS = [
    "2020-11-13T21:30Z",  # half an hour after the Friday 2020-11-13 record close (16:00 New York)
    "2020-11-16T21:30Z",  # after the Monday close that confirms a 3-session window
    "2021-01-12T12:00Z",  # mid-morning UTC, before that day's session closes
    "2021-03-15T00:00Z",  # the Sunday/Monday boundary
]


class Record(bt.Strategy):
    """Records the values of one indicator, built from ``make(data)``, at every bar."""

    params = (("make", None),)

    def __init__(self) -> None:
        self.ind = self.p.make(self.data)
        self.signal: list[float] = []
        self.level: list[float] = []

    def next(self) -> None:
        self.signal.append(self.ind.signal[0])
        self.level.append(self.ind.level[0])


def values(feed, make, runonce: bool = True) -> pd.DataFrame:
    cerebro = bt.Cerebro(stdstats=False, runonce=runonce)
    cerebro.adddata(feed)
    cerebro.addstrategy(Record, make=make)
    rec = cerebro.run()[0]
    return pd.DataFrame({"signal": rec.signal, "level": rec.level}, index=feed.aligned.index)


@pytest.fixture(scope="module")
def raw(data_dir):
    return load("^RUT", "1d"), load("BTC-USD", "1d")


@pytest.fixture(scope="module")
def feed(data_dir):
    return rbt.IndexCryptoFeed(index="^RUT", asset="BTC-USD")


@pytest.mark.parametrize("runonce", [True, False])
def test_confirmed_high_is_the_seed_runs_signal(feed, runonce):
    run = riskon.run("runs/seed.toml")
    got = values(feed, lambda d: rbt.ConfirmedHigh(d, confirm_days=3), runonce)
    assert got.index.equals(run.bars.index)
    assert got["signal"].tolist() == run.bars["event"].astype(float).tolist()
    np.testing.assert_array_equal(got["level"].to_numpy(), run.bars["event_level"].to_numpy())
    # by hand from the raw file: sessions closing above the prior record for 3 sessions, inside BTC's dates
    c = pd.read_csv(Path(os.environ["RISKON_DATA"]) / "RUT.csv", index_col="Date", parse_dates=True)["Close"]
    prior = c.cummax().shift(1)
    held = (c > prior) & (c.shift(-1) > prior) & (c.shift(-2) > prior)
    confirming = held.shift(2, fill_value=False).astype(bool)
    inside = confirming[(confirming.index >= "2014-09-17") & (confirming.index <= run.bars.index[-1].tz_localize(None))]
    assert int(got["signal"].sum()) == int(inside.sum()) == 96  # one bar sees each confirming session first
    # Friday 2020-11-13's record (the seed's golden episode) confirms on Tuesday 11-17, seen by that day's bar
    assert got.loc[pd.Timestamp("2020-11-17", tz="UTC"), "signal"] == 1.0


def test_rule_signal_of_any_rule_is_that_rules_run_signal(feed):
    run = riskon.run({"strategy": {"rule": "n_day_high", "params": {"window": 252}}})
    got = values(feed, lambda d: rbt.RuleSignal(d, "n_day_high", window=252))
    assert got["signal"].tolist() == run.bars["event"].astype(float).tolist()
    np.testing.assert_array_equal(got["level"].to_numpy(), run.bars["event_level"].to_numpy())


def test_a_filter_rule_is_the_state_of_the_session_each_bar_sees(feed, data_dir):
    got = values(feed, lambda d: rbt.RuleSignal(d, "index_above_ma", window=200))
    # by hand from the raw file: close > mean of the last 200 closes, read at the session each bar sees
    rut = pd.read_csv(data_dir / "RUT.csv", index_col="Date", parse_dates=True)["Close"]
    above = (rut > rut.rolling(200).mean()).astype(float)
    seen = pd.DatetimeIndex(feed.aligned["idx_session"])
    assert got["signal"].tolist() == above.reindex(seen).fillna(0.0).tolist()
    assert got["level"].isna().all()


def test_window_feed_keeps_the_index_full_history(feed, data_dir):
    short = rbt.IndexCryptoFeed(index="^RUT", asset="BTC-USD", start="2020-11-01", end="2021-06-30")
    rut = pd.read_csv(data_dir / "RUT.csv", index_col="Date", parse_dates=True)["Close"]
    first = short.aligned.iloc[0]  # 2020-11-01 is a Sunday: it sees Friday 2020-10-30
    assert first["idx_session"] == pd.Timestamp("2020-10-30")
    assert first["idx_ath"] == rut.loc[:"2020-10-30"].max()  # the 2018 record, from the 1987-start history
    full = values(feed, lambda d: rbt.ConfirmedHigh(d, confirm_days=3))
    part = values(short, lambda d: rbt.ConfirmedHigh(d, confirm_days=3))
    pd.testing.assert_frame_equal(part, full.loc[part.index])


def _cut_diffs(raw, t: pd.Timestamp, make) -> list[str]:
    index, asset = raw
    asset = asset[asset.index >= pd.Timestamp("2020-06-01", tz="UTC")]
    asset.attrs = dict(raw[1].attrs)
    full = values(rbt.IndexCryptoFeed(index=index, asset=asset), make)
    idx_c, ast_c = cut_sources(index, asset, t)
    cut = values(rbt.IndexCryptoFeed(index=idx_c, asset=ast_c), make)
    assert (cut.index + pd.Timedelta(days=1) <= t).all() and cut.index.equals(full.index[: len(cut)])
    out = []
    for col in ("signal", "level"):
        a, b = full[col].to_numpy()[: len(cut)], cut[col].to_numpy()
        bad = np.flatnonzero(~((a == b) | (np.isnan(a) & np.isnan(b))))
        if len(bad):
            out.append(f"{col} on {cut.index[bad[0]]:%Y-%m-%d} changes when the data is cut at {t}")
    return out


@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize(
    "make",
    [lambda d: rbt.ConfirmedHigh(d, confirm_days=3), lambda d: rbt.RuleSignal(d, "n_day_high", window=20)],
    ids=["confirmed_high", "n_day_high"],
)
def test_no_value_changes_when_the_future_is_cut_away(raw, cut, make):
    assert _cut_diffs(raw, pd.Timestamp(cut), make) == []


PEEK = '''
import pandas as pd
from strategies.params import Param
from strategies.rules import Rule


class Peek(Rule):
    """Planted bug: fires on a session when the NEXT close is higher."""

    name = "peek"

    def compute(self, sessions):
        close = sessions["idx_close"]
        return pd.DataFrame({"signal": (close.shift(-1) > close).to_numpy()}, index=sessions.index)
'''


def test_a_peeking_rule_from_a_user_folder_is_caught(raw, tmp_path, monkeypatch):
    folder = tmp_path / "myrules"
    folder.mkdir()
    (folder / "peek.py").write_text(PEEK, encoding="utf-8")
    monkeypatch.setenv("RISKON_RULES", str(folder))
    rules.refresh()
    try:
        diffs = _cut_diffs(raw, pd.Timestamp("2020-11-14T00:00Z"), lambda d: rbt.RuleSignal(d, "peek"))
    finally:
        monkeypatch.delenv("RISKON_RULES")
        rules.refresh()
    # the cut run cannot see Monday 11-16 closing higher than Friday 11-13: its bar of 11-13 does not fire
    assert diffs == ["signal on 2020-11-13 changes when the data is cut at 2020-11-14 00:00:00+00:00"]


def test_an_indicator_needs_the_combined_feed(raw):
    cerebro = bt.Cerebro(stdstats=False)
    frame = raw[1][["open", "high", "low", "close", "volume"]].tail(50)
    frame.index = frame.index.tz_localize(None)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(Record, make=lambda d: rbt.ConfirmedHigh(d))
    with pytest.raises(RuleError) as err:
        cerebro.run()
    assert str(err.value) == (
        "ConfirmedHigh needs riskon.bt.IndexCryptoFeed as its data (it carries the index's full history), "
        "got PandasData"
    )
