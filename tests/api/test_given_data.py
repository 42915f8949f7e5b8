"""Bring your own data and signals: ``riskon.run(config, index=df, asset=df, signal=series)`` (issue 17).

Frames a user hands in are validated exactly as a CSV import of the same symbol is (the same one-line
errors, the same warnings), and then give the run the cache would have given. A supplied entry signal
replaces the rule; riskon cannot check it for lookahead, so the run says "signal supplied, not checked"
wherever its rule is shown: the result, the notebook view and the tear sheet.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import riskon
from feeds.errors import DataError
from feeds.loader import import_file
from riskon.config import ConfigError

SEED = "runs/seed.toml"


@pytest.fixture(scope="module")
def seed_run(data_dir):
    return riskon.run(SEED)


def yahoo_frame(symbol: str) -> pd.DataFrame:
    """A cached series as yfinance returns it: capitalised columns, a local-time-zone index, no attrs."""
    f = riskon.load(symbol).rename(columns=lambda c: c.replace("_", " ").title())
    f.index = f.index.tz_convert("America/New_York" if symbol.startswith("^") else "UTC").rename("Date")
    f.attrs = {}
    return f


def test_frames_give_the_same_run_as_the_cache(seed_run):
    res = riskon.run(SEED, index=yahoo_frame("^RUT"), asset=yahoo_frame("BTC-USD"))
    assert res.equity.tolist() == seed_run.equity.tolist()
    pd.testing.assert_frame_equal(res.trades, seed_run.trades)
    assert res.fingerprints == seed_run.fingerprints
    assert not res.signal_supplied and res.rule_text == seed_run.rule_text


def test_frames_are_validated_as_an_import_is(data_dir, tmp_path):
    bad = yahoo_frame("BTC-USD")
    bad.iloc[5, bad.columns.get_loc("Close")] = -1.0
    with pytest.raises(DataError) as err:
        riskon.run(SEED, asset=bad)
    assert str(err.value) == (
        "BTC-USD (DataFrame): zero or negative prices on 2014-09-22 (close); prices must be positive"
    )
    # the same rows written as a CSV file fail the import with the same words (only the name differs)
    path = tmp_path / "BTC-USD.csv"
    bad.reset_index().assign(Date=lambda f: f["Date"].dt.strftime("%Y-%m-%d")).to_csv(path, index=False)
    with pytest.raises(DataError) as err_file:
        import_file(path, cache=None)
    assert str(err_file.value) == str(err.value).replace("BTC-USD (DataFrame)", str(path))

    weekend = yahoo_frame("^RUT")
    weekend.index = weekend.index + pd.Timedelta(days=1)  # Friday sessions move to Saturday
    with pytest.raises(DataError, match=r"^\^RUT \(DataFrame\): bars on dates that are not NYSE sessions: "):
        riskon.run(SEED, index=weekend)
    with pytest.raises(ConfigError) as err:
        riskon.run(SEED, asset={"ETH-USD": yahoo_frame("BTC-USD")})
    assert str(err.value) == "asset frame 'ETH-USD' is not a target of seed; targets: BTC-USD"


def test_frame_warnings_are_announced(seed_run):
    asset = yahoo_frame("BTC-USD")
    asset = pd.concat([asset, asset.iloc[[100]]])  # one exact duplicate row: dropped and reported
    said: list[str] = []
    res = riskon.run(SEED, asset=asset, announce=said.append)
    assert said == ["warning: BTC-USD (DataFrame): dropped exact duplicate rows on 2014-12-26"]
    assert res.equity.tolist() == seed_run.equity.tolist()


def test_a_supplied_signal_replaces_the_rule_and_is_marked(seed_run, tmp_path):
    signal = seed_run.sessions["signal"]  # the rule's own output, handed in as a plain Series
    res = riskon.run(SEED, signal=signal)
    assert res.signal_supplied
    assert res.equity.tolist() == seed_run.equity.tolist()
    assert res.trades["signal_session"].tolist() == seed_run.trades["signal_session"].tolist()
    assert res.rule_text == "signal supplied, not checked"
    assert "signal supplied, not checked" in res._repr_html_()
    page = res.tearsheet(tmp_path / "tearsheet.html").read_text(encoding="utf-8")
    assert "<title>riskon: seed (signal supplied, not checked)</title>" in page


def test_a_supplied_signal_trades_only_on_its_sessions(seed_run):
    # one hand-picked session: Friday 2020-11-13, seen by BTC's bar of that day, filled at Saturday's open
    signal = pd.Series(True, index=pd.DatetimeIndex(["2020-11-13"]))
    res = riskon.run(SEED, signal=signal)
    t = res.trades
    assert len(t) == 1
    assert t["signal_session"].iloc[0] == pd.Timestamp("2020-11-13")
    assert t["entry_time"].iloc[0] == pd.Timestamp("2020-11-14", tz="UTC")
    btc = riskon.load("BTC-USD")
    assert t["entry_price"].iloc[0] == pytest.approx(btc.loc["2020-11-14", "open"] * 1.0005, rel=1e-12)


SIGNAL_ERRORS = {
    "not boolean": (
        pd.Series([1, 0], index=pd.DatetimeIndex(["2020-11-12", "2020-11-13"])),
        "signal: must be a boolean Series (True on the sessions that fire), got dtype int64; convert it with "
        ".astype(bool) after dropping missing values",
    ),
    "not a session": (
        pd.Series([True], index=pd.DatetimeIndex(["2020-11-14"])),
        "signal: 2020-11-14 is not a ^RUT session (1 such date(s)); a signal lives on the index's sessions",
    ),
    "times of day": (
        pd.Series([True], index=pd.DatetimeIndex(["2020-11-13 16:00"])),
        "signal: 2020-11-13 16:00:00 is not a date; index the signal by session date (midnight, no time zone)",
    ),
    "twice": (
        pd.Series([True, False], index=pd.DatetimeIndex(["2020-11-13", "2020-11-13"])),
        "signal: the date 2020-11-13 appears twice",
    ),
    "a list": ([True], "signal: expected a boolean pandas Series on ^RUT sessions, got list"),
}


@pytest.mark.parametrize("case", list(SIGNAL_ERRORS))
def test_bad_signals_are_one_line_errors(data_dir, case):
    signal, message = SIGNAL_ERRORS[case]
    with pytest.raises(DataError) as err:
        riskon.run(SEED, signal=signal)
    assert str(err.value) == message


def test_time_zone_aware_signal_stamps_are_read_as_new_york_dates(seed_run):
    closes = pd.DatetimeIndex(["2020-11-13 21:00"], tz="UTC")  # the session's close, 16:00 in New York
    res = riskon.run(SEED, signal=pd.Series(True, index=closes))
    assert res.trades["signal_session"].tolist() == [pd.Timestamp("2020-11-13")]


def test_a_supplied_signal_has_no_break_level(data_dir):
    cfg = {"exits": {"index_below_break": True}}
    with pytest.raises(ConfigError) as err:
        riskon.run(cfg, signal=pd.Series(True, index=pd.DatetimeIndex(["2020-11-13"])))
    assert str(err.value) == (
        "run: [exits] index_below_break needs a break level, which a supplied signal has not; set it to false"
    )
    assert np.isnan(
        riskon.run({}, signal=pd.Series(True, index=pd.DatetimeIndex(["2020-11-13"]))).bars["event_level"]
    ).all()
