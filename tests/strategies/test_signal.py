"""The ``ath_confirmed`` rule and bar events, checked against the raw CSV and brute force."""

from __future__ import annotations

import csv
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from feeds.align import align, session_frame
from feeds.loader import load
from strategies.rules import make
from strategies.signals import bar_events


@pytest.fixture(scope="module")
def raw_rut(data_dir):
    with open(data_dir / "RUT.csv", newline="") as f:
        return [(r["Date"], float(r["High"]), float(r["Close"])) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def sessions(data_dir):
    return session_frame(load("^RUT"))


def prior_highs(closes: list[float]) -> list[float]:
    """The highest close strictly before each session (None for the first)."""
    out, best = [None], closes[0]
    for c in closes[1:]:
        out.append(best)
        best = max(best, c)
    return out


def brute_days(closes: list[float], threshold: float, k: int) -> list[bool]:
    """Confirmed breaks by the letter of DESIGN §5, one window per break."""
    n = len(closes)
    out = [False] * n
    prior = prior_highs(closes)
    for b in range(1, n):
        level = prior[b] * (1 + threshold)
        if closes[b] > level and b + k - 1 < n and all(closes[s] > level for s in range(b, b + k)):
            out[b + k - 1] = True
    return out


def brute_weekly(dates: list[str], closes: list[float], threshold: float) -> list[bool]:
    """Weekly confirmation: the first week-ending session after the break, every close above B."""
    n = len(closes)
    week = [date.fromisoformat(d).isocalendar()[:2] for d in dates]
    # the data's sessions are the full NYSE calendar; the very last one ends its week only if it is a Friday
    # (2026-08-21, the snapshot's last session, is a Friday)
    last_is_week_end = date.fromisoformat(dates[-1]).weekday() == 4
    ends = [week[i] != week[i + 1] for i in range(n - 1)] + [last_is_week_end]
    out = [False] * n
    prior = prior_highs(closes)
    for b in range(1, n):
        level = prior[b] * (1 + threshold)
        if not closes[b] > level:
            continue
        s = b
        while s < n and not ends[s]:
            s += 1
        if s < n and all(closes[i] > level for i in range(b, s + 1)):
            out[s] = True
    return out


def signal_dates(rule_out: pd.DataFrame) -> set[str]:
    return {d.strftime("%Y-%m-%d") for d in rule_out.index[rule_out["signal"]]}


def test_record_closes_on_known_dates(sessions, raw_rut):
    out = make("ath_confirmed", threshold=0.0, confirm_days=1).compute(sessions)
    got = signal_dates(out)
    assert {"2016-11-14", "2020-11-13"} <= got
    # independently: a record close is a close above every earlier close
    best, expected = -np.inf, set()
    for i, (d, _, c) in enumerate(raw_rut):
        if i > 0 and c > best:
            expected.add(d)
        best = max(best, c)
    assert got == expected
    assert raw_rut[0][0] not in got  # the first session has no prior high and is never a break


def test_intraday_record_without_record_close_is_not_a_signal(sessions, raw_rut):
    out = make("ath_confirmed").compute(sessions)
    got = signal_dates(out)
    best_close, best_high, intraday_only = raw_rut[0][2], raw_rut[0][1], []
    for d, h, c in raw_rut[1:]:
        if h > max(best_high, best_close) and c <= best_close:
            intraday_only.append(d)
        best_close, best_high = max(best_close, c), max(best_high, h)
    assert len(intraday_only) > 10
    assert not got & set(intraday_only)


@pytest.mark.parametrize(("threshold", "k"), [(0.0, 1), (0.0, 2), (0.0, 3), (0.0, 5), (0.01, 2), (0.005, 4)])
def test_confirm_days_matches_brute_force(sessions, raw_rut, threshold, k):
    out = make("ath_confirmed", threshold=threshold, confirm_days=k).compute(sessions)
    expected = brute_days([c for _, _, c in raw_rut], threshold, k)
    assert out["signal"].tolist() == expected
    # the level is the break level of the window that confirmed
    closes = np.array([c for _, _, c in raw_rut])
    for s in np.flatnonzero(out["signal"].to_numpy()):
        assert out["level"].iloc[s] == pytest.approx(closes[: s - k + 1].max() * (1 + threshold), rel=1e-15)


@pytest.mark.parametrize("threshold", [0.0, 0.01])
def test_weekly_matches_brute_force(sessions, raw_rut, threshold):
    out = make("ath_confirmed", threshold=threshold, confirm="weekly").compute(sessions)
    expected = brute_weekly([d for d, _, _ in raw_rut], [c for _, _, c in raw_rut], threshold)
    assert out["signal"].tolist() == expected
    # a weekly signal falls on the last session of a week: Friday, or Thursday before Good Friday
    for d in out.index[out["signal"]]:
        nxt = d + timedelta(days=1)
        assert d.weekday() == 4 or nxt.strftime("%Y-%m-%d") not in {x for x, _, _ in raw_rut}


def test_weekly_uses_the_calendar_before_good_friday(sessions):
    week_end = sessions["idx_week_end"]
    assert week_end.loc["2024-03-28"]  # Maundy Thursday: Good Friday 2024-03-29 is closed
    assert not week_end.loc["2024-03-27"]


def test_events_do_not_repeat_on_weekends(sessions):
    btc = load("BTC-USD")
    rule_out = make("ath_confirmed").compute(sessions)
    bars = align(btc, sessions)
    ev = bar_events(bars, rule_out)
    events = ev.index[ev["event"]]
    assert not any(d.weekday() >= 5 for d in events)
    # one event per confirming session visible in the BTC era
    first_pos = int(bars["idx_pos"].iloc[0])
    confirming = np.flatnonzero(rule_out["signal"].to_numpy())
    visible = confirming[confirming > first_pos]
    assert ev["event"].sum() == len(visible) + int(rule_out["signal"].iloc[first_pos])
    assert ev.loc["2020-11-13", "event"].item() and not ev.loc["2020-11-14":"2020-11-15", "event"].any()
    assert ev.loc["2020-11-13", "event_session"] == pd.Timestamp("2020-11-13")


def test_hourly_events_fire_once_per_session(sessions):
    idx = pd.date_range("2020-11-09", "2020-11-21", freq="1h", tz="UTC", inclusive="left").as_unit("us")
    bars = pd.DataFrame({c: 1.0 for c in ("open", "high", "low", "close", "adj_close", "volume")}, index=idx)
    bars.attrs.update(symbol="X", source="t", timeframe="1h", tz="UTC")
    rule_out = make("ath_confirmed").compute(sessions)
    ev = bar_events(align(bars, sessions, lag=2.0), rule_out)
    fired = ev.index[ev["event"]]
    # record closes 2020-11-13 (Fri), 16, 17, 18(?), ... each seen first at its close + 2 h
    expected = [
        pd.Timestamp(d)
        for d in rule_out.loc["2020-11-09":"2020-11-20"].index[rule_out.loc["2020-11-09":"2020-11-20", "signal"]]
    ]
    assert len(fired) == len(expected)
    for t, s in zip(fired, expected, strict=True):
        # the bar closing exactly at close + 2 h is the first to see it: it opens at close + 1 h
        close = sessions.loc[s, "idx_close_time"]
        assert t == close + pd.Timedelta(hours=1)


def test_a_signal_seen_on_the_first_bar_only_if_it_carries_it(sessions):
    btc = load("BTC-USD")
    rule_out = make("ath_confirmed").compute(sessions)
    bars = align(btc.loc["2020-11-14":], sessions)  # first bar sees Friday 2020-11-13, a record close
    ev = bar_events(bars, rule_out)
    assert ev["event"].iloc[0]
    bars = align(btc.loc["2020-11-15":], sessions)  # Sunday sees the same session: it is carried, so it fires
    assert bar_events(bars, rule_out)["event"].iloc[0]
    bars = align(btc.loc["2020-11-12":], sessions)  # 2020-11-12 was not a record close
    assert not bar_events(bars, rule_out)["event"].iloc[0]
