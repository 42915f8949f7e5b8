"""As-of alignment of NYSE sessions onto crypto bars: the two clocks, lags, holidays, DST."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from feeds.align import align, session_frame
from feeds.frame import SeriesMeta, attach
from feeds.loader import load
from feeds.sessions import session_closes


@pytest.fixture(scope="module")
def rut(data_dir):
    return load("^RUT")


@pytest.fixture(scope="module")
def sessions(rut):
    return session_frame(rut)


@pytest.fixture(scope="module")
def btc(data_dir):
    return load("BTC-USD")


def hourly(start: str, end: str) -> pd.DataFrame:
    """Synthetic hourly crypto bars (prices are irrelevant to alignment)."""
    idx = pd.date_range(start, end, freq="1h", tz="UTC", inclusive="left").as_unit("us").rename("time")
    n = len(idx)
    df = pd.DataFrame({c: np.full(n, 100.0) for c in ("open", "high", "low", "close", "adj_close")}, index=idx)
    df["volume"] = 1.0
    return attach(df, SeriesMeta("BTC-USD", "test", "1h", "UTC"))


def row(frame: pd.DataFrame, when: str) -> pd.Series:
    return frame.loc[pd.Timestamp(when, tz="UTC")]


def test_weekend_sees_friday_with_age(sessions, btc):
    a = align(btc, sessions)
    # Friday 2020-11-13 (EST): session closes 21:00 UTC, the BTC bar closes at 2020-11-14 00:00 UTC
    for day, age in (("2020-11-13", 0.125), ("2020-11-14", 1.125), ("2020-11-15", 2.125)):
        r = row(a, day)
        assert r["idx_session"] == pd.Timestamp("2020-11-13")
        assert r["idx_age"] == pytest.approx(age, abs=1e-12)
    assert row(a, "2020-11-16")["idx_session"] == pd.Timestamp("2020-11-16")
    # summer (EDT): the close is 20:00 UTC, 4 hours before the bar's close
    assert row(a, "2021-06-18")["idx_age"] == pytest.approx(4 / 24, abs=1e-12)
    assert row(a, "2021-06-20")["idx_age"] == pytest.approx(2 + 4 / 24, abs=1e-12)


def test_monday_holiday_and_day_after_thanksgiving(sessions, btc):
    a = align(btc, sessions)
    # MLK day 2020-01-20: no session; Monday's bar still sees Friday 2020-01-17
    r = row(a, "2020-01-20")
    assert r["idx_session"] == pd.Timestamp("2020-01-17")
    assert r["idx_age"] == pytest.approx(3.125, abs=1e-12)
    # Thanksgiving 2020-11-26 is closed, the next day closes early at 13:00 New York = 18:00 UTC
    assert row(a, "2020-11-26")["idx_session"] == pd.Timestamp("2020-11-25")
    r = row(a, "2020-11-27")
    assert r["idx_session"] == pd.Timestamp("2020-11-27")
    assert r["idx_age"] == pytest.approx(0.25, abs=1e-12)
    closes = session_closes(pd.DatetimeIndex(["2020-11-27", "2020-11-25"]))
    assert list(closes) == [pd.Timestamp("2020-11-27 18:00", tz="UTC"), pd.Timestamp("2020-11-25 21:00", tz="UTC")]


def test_first_bar_sees_full_history_ath(sessions, btc, data_dir):
    a = align(btc, sessions)
    with open(data_dir / "RUT.csv", newline="") as f:
        closes = [(r["Date"], float(r["Close"])) for r in csv.DictReader(f)]
    upto = [c for d, c in closes if d <= "2014-09-17"]
    first = a.iloc[0]
    assert a.index[0] == pd.Timestamp("2014-09-17", tz="UTC")
    assert first["idx_close"] == upto[-1]
    assert first["idx_ath"] == max(upto)  # from 1987 on, not from the first BTC day
    assert first["idx_ath"] > first["idx_close"]


@pytest.mark.parametrize(
    ("bar_open", "lag", "session"),
    [
        # spring forward (2021-03-14): Friday closes 21:00 UTC, Monday 20:00 UTC
        ("2021-03-12 19:00", 0, "2021-03-11"),  # closes 20:00, before Friday's 21:00 close
        ("2021-03-12 20:00", 0, "2021-03-12"),  # closes 21:00 = Friday's close (EST)
        ("2021-03-15 18:00", 0, "2021-03-12"),
        ("2021-03-15 19:00", 0, "2021-03-15"),  # closes 20:00 = Monday's close (EDT)
        ("2021-03-15 19:00", 2, "2021-03-12"),
        ("2021-03-15 21:00", 2, "2021-03-15"),  # closes 22:00 = 20:00 + 2 h lag
        # fall back (2021-11-07): Friday closes 20:00 UTC, Monday 21:00 UTC
        ("2021-11-05 19:00", 0, "2021-11-05"),
        ("2021-11-08 19:00", 0, "2021-11-05"),  # closes 20:00, but Monday now closes 21:00
        ("2021-11-08 20:00", 0, "2021-11-08"),
        ("2021-11-08 20:00", 0.5, "2021-11-05"),
        ("2021-11-08 21:00", 0.5, "2021-11-08"),
    ],
)
def test_hourly_bars_across_dst(sessions, bar_open, lag, session):
    bars = hourly("2021-03-10", "2021-03-17") if bar_open < "2021-06" else hourly("2021-11-03", "2021-11-10")
    a = align(bars, sessions, lag=lag)
    r = row(a, bar_open)
    assert r["idx_session"] == pd.Timestamp(session)


def test_hourly_naive_date_join_would_differ(sessions):
    """The hourly bars of a session day before the close must not see that day's close."""
    a = align(hourly("2020-11-16", "2020-11-17"), sessions, lag=1)
    before = a[a.index < pd.Timestamp("2020-11-16 21:00", tz="UTC")]  # close 21:00 UTC + 1 h lag = 22:00
    assert (before["idx_session"] == pd.Timestamp("2020-11-13")).all()
    after = a[a.index >= pd.Timestamp("2020-11-16 21:00", tz="UTC")]
    assert (after["idx_session"] == pd.Timestamp("2020-11-16")).all()
    assert row(a, "2020-11-16 21:00")["idx_age"] == pytest.approx(1 / 24, abs=1e-12)


@pytest.mark.parametrize("lag", [0.0, 5.0, 27.5])
def test_property_no_bar_sees_a_future_close(sessions, btc, lag):
    """Over the whole history: every bar sees the latest session closed by its close minus the lag."""
    for bars, step in ((btc, pd.Timedelta(days=1)), (hourly("2019-12-25", "2021-01-05"), pd.Timedelta(hours=1))):
        a = align(bars, sessions, lag=lag)
        stamps = pd.DatetimeIndex(sessions["idx_close_time"])
        cutoff = bars.index + step - pd.Timedelta(hours=lag)
        pos = a["idx_pos"].to_numpy()
        seen = pos >= 0
        assert (stamps[pos[seen]] <= cutoff[seen]).all()
        nxt = np.minimum(pos + 1, len(stamps) - 1)
        later = pos + 1 < len(stamps)
        assert (stamps[nxt[later]] > cutoff[later]).all()
        assert (a.loc[seen, "idx_close"].to_numpy() == sessions["idx_close"].to_numpy()[pos[seen]]).all()
        ages = (cutoff[seen] + pd.Timedelta(hours=lag) - stamps[pos[seen]]) / pd.Timedelta(days=1)
        np.testing.assert_allclose(a.loc[seen, "idx_age"].to_numpy(), np.asarray(ages), rtol=0, atol=1e-9)
        assert a.index.equals(bars.index)  # still indexed by bar open time


def test_index_date_not_a_session_is_an_error(rut):
    bad = rut.iloc[:5].copy()
    bad.index = bad.index[:4].append(pd.DatetimeIndex([pd.Timestamp("1987-09-19 04:00", tz="UTC")]))  # a Saturday
    from feeds.errors import DataError

    with pytest.raises(DataError, match="not NYSE sessions: 1987-09-19"):
        session_frame(bad)
