"""Checks of the independent reference backtest (tests/support/reference_sim.py) against hand computations.

Every expected number here is worked out in the test from the raw CSV rows, read with the ``csv``
module (no pandas), so the reference and these checks cannot share a misreading of the data.
"""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from support.reference_sim import LEG_COLUMNS, TRADE_COLUMNS, crypto_view, index_signal, simulate, simulate_multi

NY = ZoneInfo("America/New_York")
REL = 1e-12
FEE, SLIP, CASH = 0.001, 0.0005, 100000.0
GOLDEN = {"threshold": 0.0, "confirm_days": 1, "fee": FEE, "slippage": SLIP, "cash": CASH, "max_hold_days": 30}


# ------------------------------------------------------------------------------------------ helpers
def read_rows(path: Path) -> list[dict]:
    """Raw rows: {'date': datetime.date, 'open': float, 'high': float, 'close': float}."""
    with open(path, newline="") as fh:
        return [
            {
                "date": date.fromisoformat(r["Date"]),
                "open": float(r["Open"]),
                "high": float(r["High"]),
                "close": float(r["Close"]),
            }
            for r in csv.DictReader(fh)
        ]


@pytest.fixture(scope="module")
def rut(data_dir) -> list[dict]:
    return read_rows(data_dir / "RUT.csv")


@pytest.fixture(scope="module")
def btc(data_dir) -> dict[date, dict]:
    return {r["date"]: r for r in read_rows(data_dir / "BTC-USD.csv")}


def record_closes(rows: list[dict]) -> dict[date, float]:
    """Sessions whose close is above every earlier close -> the earlier maximum (H)."""
    out, best = {}, None
    for r in rows:
        if best is not None and r["close"] > best:
            out[r["date"]] = best
        best = r["close"] if best is None else max(best, r["close"])
    return out


def utc(d: date) -> pd.Timestamp:
    return pd.Timestamp(d).tz_localize("UTC")


def approx(x: float) -> object:
    return pytest.approx(x, rel=REL, abs=0.0)


def check_trade(tr: pd.Series, exp: dict) -> None:
    for key, val in exp.items():
        if isinstance(val, float):
            assert tr[key] == approx(val), key
        elif val is None:
            assert pd.isna(tr[key]), key
        else:
            assert tr[key] == val, key


def hand_entry(btc: dict, fill_day: date, equity: float) -> dict:
    price = btc[fill_day]["open"] * (1 + SLIP)
    size = 1.0 * equity / (price * (1 + FEE)) * (1 - 1e-9)
    return {"price": price, "size": size, "fee": size * price * FEE, "cash_after": equity - size * price * (1 + FEE)}


# ------------------------------------------------------------------------- (1) confirming sessions
def test_record_closes_are_the_confirming_sessions(data_dir, rut):
    sig = index_signal(data_dir / "RUT.csv", {"threshold": 0.0, "confirm_days": 1})
    records = record_closes(rut)
    # hand: both episode starts are record closes, and the session before each is not
    for d, prev in [(date(2016, 11, 14), date(2016, 11, 11)), (date(2020, 11, 13), date(2020, 11, 12))]:
        assert d in records and prev not in records
        row = sig.loc[pd.Timestamp(d)]
        assert bool(row["confirm"]) and bool(row["is_break"])
        assert row["confirm_level"] == records[d]  # B = H = the earlier record close (threshold 0)
        assert not bool(sig.loc[pd.Timestamp(prev), "confirm"])
    # with k = 1 and threshold 0 the confirming sessions are exactly the record closes
    assert set(sig.index[sig["confirm"]].date) == set(records)
    # the first session has no history and is never a break
    assert not bool(sig["is_break"].iloc[0]) and not bool(sig["confirm"].iloc[0])


def test_intraday_high_record_is_not_a_signal(data_dir, rut):
    # 2024-11-25: the intraday High (2466.49) beat every earlier close and every earlier High, but the
    # Close (2442.03) stayed below the record close of 2442.74 -> not a break.
    d = date(2024, 11, 25)
    i = next(k for k, r in enumerate(rut) if r["date"] == d)
    before = rut[:i]
    assert rut[i]["high"] > max(r["close"] for r in before)
    assert rut[i]["high"] > max(r["high"] for r in before)
    assert rut[i]["close"] <= max(r["close"] for r in before)
    sig = index_signal(data_dir / "RUT.csv", {})
    assert not bool(sig.loc[pd.Timestamp(d), "is_break"])
    assert not bool(sig.loc[pd.Timestamp(d), "confirm"])


def test_confirm_days_and_threshold_by_hand(data_dir, rut):
    closes = [r["close"] for r in rut]
    prior = [max(closes[:1])]  # prior[b] = highest close before session b (b >= 1)
    for c in closes[1:]:
        prior.append(max(prior[-1], c))
    prior = [None] + prior[:-1]
    for k, th in [(3, 0.0), (2, 0.01), (5, 0.002)]:
        expected = set()
        for b in range(1, len(rut) - k + 1):
            B = prior[b] * (1 + th)
            if all(closes[s] > B for s in range(b, b + k)):
                expected.add(rut[b + k - 1]["date"])
        sig = index_signal(data_dir / "RUT.csv", {"threshold": th, "confirm_days": k})
        assert set(sig.index[sig["confirm"]].date) == expected, (k, th)
    # 2016-11-14 breaks 1295.80; 11-14, 11-15, 11-16 all close above it -> confirmed on 11-16 with k = 3
    sig = index_signal(data_dir / "RUT.csv", {"confirm_days": 3})
    assert bool(sig.loc["2016-11-16", "confirm"]) and not bool(sig.loc["2016-11-14", "confirm"])
    assert sig.loc["2016-11-16", "confirm_level"] == 1295.800048828125


# ------------------------------------------------------------------------- (2) golden 2016-11-14
def test_golden_trade_2016(data_dir, rut, btc):
    params = GOLDEN | {"start": "2016-11-01", "end": "2016-12-31"}
    trades, equity = simulate(data_dir / "RUT.csv", data_dir / "BTC-USD.csv", params)
    assert list(trades.columns) == ["position", "asset", *TRADE_COLUMNS] == LEG_COLUMNS
    assert trades["position"].tolist() == [0] and trades["asset"].tolist() == ["BTC-USD"]

    records = record_closes(rut)
    # no record close between 2016-11-01 and the episode start, none after the exit fill in 2016
    assert [d for d in records if date(2016, 11, 1) <= d < date(2016, 11, 14)] == []
    assert [d for d in records if date(2016, 12, 16) <= d <= date(2016, 12, 31)] == []
    assert len(trades) == 1

    # session 2016-11-14 closes 16:00 EST = 21:00 UTC, before BTC bar 2016-11-14 closes (11-15 00:00 UTC)
    e = hand_entry(btc, date(2016, 11, 15), CASH)
    exit_decision = date(2016, 11, 15) + timedelta(days=30)  # 2016-12-15: 30 calendar days after the fill
    exit_price = btc[date(2016, 12, 16)]["open"] * (1 - SLIP)
    exit_fee = e["size"] * exit_price * FEE
    pnl = e["size"] * exit_price - exit_fee - e["size"] * e["price"] - e["fee"]
    check_trade(
        trades.iloc[0],
        {
            "signal_session": pd.Timestamp("2016-11-14"),
            "decision_time": utc(date(2016, 11, 14)),
            "entry_time": utc(date(2016, 11, 15)),
            "entry_price": e["price"],
            "size": e["size"],
            "entry_fee": e["fee"],
            "exit_decision_time": utc(exit_decision),
            "exit_time": utc(date(2016, 12, 16)),
            "exit_price": exit_price,
            "exit_fee": exit_fee,
            "pnl": pnl,
            "exit_reason": "max_hold",
            "open": False,
        },
    )
    # equity: cash before the fill, cash + size * close while in, cash + proceeds after
    assert equity.index[0] == utc(date(2016, 11, 1)) and equity.index[-1] == utc(date(2016, 12, 31))
    assert len(equity) == 61 and str(equity.index.dtype) == "datetime64[us, UTC]"
    assert equity[utc(date(2016, 11, 14))] == CASH
    for d in (date(2016, 11, 15), date(2016, 11, 30), date(2016, 12, 15)):
        assert equity[utc(d)] == approx(e["cash_after"] + e["size"] * btc[d]["close"])
    final = e["cash_after"] + e["size"] * exit_price * (1 - FEE)
    assert equity.iloc[-1] == approx(final)
    assert final == approx(CASH + pnl)
    # fees = rate x turnover
    turnover = e["size"] * (e["price"] + exit_price)
    assert trades["entry_fee"].sum() + trades["exit_fee"].sum() == approx(FEE * turnover)


# ------------------------------------------------------------------------- (3) golden 2020-11-13
def test_golden_trades_2020(data_dir, rut, btc):
    params = GOLDEN | {"start": "2020-11-01", "end": "2020-12-31"}
    trades, equity = simulate(data_dir / "RUT.csv", data_dir / "BTC-USD.csv", params)
    records = record_closes(rut)
    assert [d for d in records if date(2020, 11, 1) <= d < date(2020, 11, 13)] == []
    # the exit fills at the open of 2020-12-15; session 2020-12-15 is a record close, seen by BTC bar
    # 2020-12-15 (its close 12-16 00:00 UTC) -> with cooldown 0 it is taken on the exit-fill bar itself
    assert date(2020, 12, 15) in records
    assert len(trades) == 2

    # trade 1: Friday 2020-11-13 record, seen by BTC bar 11-13, filled at Saturday's open
    e1 = hand_entry(btc, date(2020, 11, 14), CASH)
    x1 = btc[date(2020, 12, 15)]["open"] * (1 - SLIP)  # decision 12-14 (= 11-14 + 30 days), fill 12-15
    xf1 = e1["size"] * x1 * FEE
    pnl1 = e1["size"] * x1 - xf1 - e1["size"] * e1["price"] - e1["fee"]
    check_trade(
        trades.iloc[0],
        {
            "signal_session": pd.Timestamp("2020-11-13"),
            "decision_time": utc(date(2020, 11, 13)),
            "entry_time": utc(date(2020, 11, 14)),
            "entry_price": e1["price"],
            "size": e1["size"],
            "entry_fee": e1["fee"],
            "exit_decision_time": utc(date(2020, 12, 14)),
            "exit_time": utc(date(2020, 12, 15)),
            "exit_price": x1,
            "exit_fee": xf1,
            "pnl": pnl1,
            "exit_reason": "max_hold",
            "open": False,
        },
    )
    # trade 2: decided at the close of 12-15 with equity = cash after trade 1, still open on 12-31
    cash1 = e1["cash_after"] + e1["size"] * x1 * (1 - FEE)
    assert cash1 == approx(CASH + pnl1)
    e2 = hand_entry(btc, date(2020, 12, 16), cash1)
    last_close = btc[date(2020, 12, 31)]["close"]
    pnl2 = e2["size"] * last_close - e2["size"] * e2["price"] - e2["fee"]
    check_trade(
        trades.iloc[1],
        {
            "signal_session": pd.Timestamp("2020-12-15"),
            "decision_time": utc(date(2020, 12, 15)),
            "entry_time": utc(date(2020, 12, 16)),
            "entry_price": e2["price"],
            "size": e2["size"],
            "entry_fee": e2["fee"],
            "exit_decision_time": None,
            "exit_time": utc(date(2020, 12, 31)),
            "exit_price": last_close,
            "exit_fee": 0.0,
            "pnl": pnl2,
            "exit_reason": "open",
            "open": True,
        },
    )
    assert equity.iloc[-1] == approx(e2["cash_after"] + e2["size"] * last_close)
    assert equity.iloc[-1] == approx(CASH + pnl1 + pnl2)
    assert (equity > 0).all()


def test_weekend_bars_do_not_resignal(data_dir):
    view = crypto_view(data_dir / "RUT.csv", data_dir / "BTC-USD.csv", {"start": "2020-11-10", "end": "2020-11-18"})
    sat, sun, mon = utc(date(2020, 11, 14)), utc(date(2020, 11, 15)), utc(date(2020, 11, 16))
    assert bool(view.loc[utc(date(2020, 11, 13)), "event"])
    for d in (sat, sun):
        assert view.loc[d, "seen_session"] == pd.Timestamp("2020-11-13")
        assert not bool(view.loc[d, "event"])
    assert bool(view.loc[mon, "event"])  # 2020-11-16 is the next record close
    assert view.loc[mon, "event_session"] == pd.Timestamp("2020-11-16")


def test_cooldown_blocks_the_exit_fill_bar(data_dir, rut):
    params = GOLDEN | {"start": "2020-11-01", "end": "2020-12-31", "cooldown_days": 1}
    trades, _ = simulate(data_dir / "RUT.csv", data_dir / "BTC-USD.csv", params)
    # exit filled 2020-12-15; (12-15 - 12-15).days = 0 < 1 blocks that bar's event; the next event is
    # the next record close after 12-15 (each weekday session is first seen by the same-date BTC bar)
    nxt = min(d for d in record_closes(rut) if d > date(2020, 12, 15))
    assert len(trades) == 2
    assert trades["signal_session"].iloc[1] == pd.Timestamp(nxt)
    assert trades["decision_time"].iloc[1] == utc(nxt)
    assert trades["entry_time"].iloc[1] == utc(nxt + timedelta(days=1))
    # boundary: cooldown = (nxt - exit fill).days no longer blocks nxt; one day more does
    gap = (nxt - date(2020, 12, 15)).days
    after = min(d for d in record_closes(rut) if d > nxt)
    for cooldown, expect in [(gap, nxt), (gap + 1, after)]:
        trades, _ = simulate(data_dir / "RUT.csv", data_dir / "BTC-USD.csv", params | {"cooldown_days": cooldown})
        assert trades["signal_session"].iloc[1] == pd.Timestamp(expect), cooldown


def test_first_bar_sees_only_the_session_it_carries(data_dir):
    # starting on Saturday 2020-11-14: that first bar carries the confirming session of Friday 11-13
    trades, _ = simulate(
        data_dir / "RUT.csv", data_dir / "BTC-USD.csv", GOLDEN | {"start": "2020-11-14", "end": "2020-11-20"}
    )
    assert trades["signal_session"].iloc[0] == pd.Timestamp("2020-11-13")
    assert trades["decision_time"].iloc[0] == utc(date(2020, 11, 14))


def test_signal_delay_and_last_bar(data_dir):
    base = GOLDEN | {"start": "2016-11-01", "end": "2016-12-31"}
    trades, _ = simulate(data_dir / "RUT.csv", data_dir / "BTC-USD.csv", base | {"signal_delay": 2})
    assert trades["decision_time"].iloc[0] == utc(date(2016, 11, 16))
    assert trades["entry_time"].iloc[0] == utc(date(2016, 11, 17))
    # a decision on the last bar cannot fill
    trades, equity = simulate(
        data_dir / "RUT.csv", data_dir / "BTC-USD.csv", base | {"start": "2016-11-10", "end": "2016-11-14"}
    )
    assert trades.empty and (equity == CASH).all()


# ----------------------------------------------------------------------- (4) weekly confirmation
def test_weekly_confirmation(data_dir, rut):
    sig = index_signal(data_dir / "RUT.csv", {"confirm": "weekly"})
    records = record_closes(rut)

    # Tuesday 2016-11-15 breaks 1298.60 (the 11-14 close); closes through Friday 11-18 stay above it.
    # Monday 11-14 (B = 1295.80) also confirms on 11-18: the earliest break's level is attached.
    assert date(2016, 11, 15) in records and date(2016, 11, 14) in records
    week = [r for r in rut if date(2016, 11, 14) <= r["date"] <= date(2016, 11, 18)]
    assert all(r["close"] > records[date(2016, 11, 15)] for r in week[1:])
    assert bool(sig.loc["2016-11-18", "confirm"])
    assert sig.loc["2016-11-18", "confirm_level"] == records[date(2016, 11, 14)]
    for d in ("2016-11-14", "2016-11-15", "2016-11-16", "2016-11-17"):
        assert not bool(sig.loc[d, "confirm"])

    # Tuesday 2020-11-17 breaks 1785.34 but Wednesday closes 1769.32 <= B -> void. Friday 11-20 still
    # confirms Monday 11-16's break (B = 1744.04: every close 11-16..11-20 is above it).
    B17 = records[date(2020, 11, 17)]
    wed = next(r for r in rut if r["date"] == date(2020, 11, 18))
    assert wed["close"] <= B17
    assert bool(sig.loc["2020-11-20", "confirm"])
    assert sig.loc["2020-11-20", "confirm_level"] == records[date(2020, 11, 16)]

    # Good Friday 1996-04-05: Tuesday 1996-04-02's break confirms on Thursday 04-04, the week's last session
    assert date(1996, 4, 2) in records
    assert [r["date"] for r in rut if date(1996, 4, 1) <= r["date"] <= date(1996, 4, 8)][-2:] == [
        date(1996, 4, 4),
        date(1996, 4, 8),
    ]
    assert bool(sig.loc["1996-04-04", "confirm"])
    assert sig.loc["1996-04-04", "confirm_level"] <= records[date(1996, 4, 2)]

    # the whole history by hand (ISO weeks from datetime; the file has no missing sessions, so the
    # week's last session is the one whose next row is in a later week; the last week is left out)
    closes = [r["close"] for r in rut]
    wk = [r["date"].isocalendar()[:2] for r in rut]
    expected = set()
    best = closes[0]
    for b in range(1, len(rut) - 1):
        B, best = best, max(best, closes[b])
        s = b
        while s < len(rut) - 1:
            if not closes[s] > B:
                break
            if wk[s] != wk[s + 1]:
                expected.add(rut[s]["date"])
                break
            s += 1
    got = {d for d in sig.index[sig["confirm"]].date if wk[-1] != d.isocalendar()[:2]}
    assert got == expected

    # and the strategy: the 2016 episode enters after Friday 11-18, not on Monday 11-14
    trades, _ = simulate(
        data_dir / "RUT.csv", data_dir / "BTC-USD.csv", GOLDEN | {"confirm": "weekly", "start": "2016-11-01"}
    )
    assert trades["signal_session"].iloc[0] == pd.Timestamp("2016-11-18")
    assert trades["entry_time"].iloc[0] == utc(date(2016, 11, 19))


# ---------------------------------------------------------------------------- (5) alignment + lag
EARLY_CLOSES = {date(2016, 11, 25), date(2020, 11, 27), date(2020, 12, 24)}  # 13:00 New York


def hand_close_utc(d: date) -> datetime:
    t = time(13) if d in EARLY_CLOSES else time(16)
    return datetime.combine(d, t, tzinfo=NY).astimezone(UTC)


@pytest.mark.parametrize("lag", [0.0, 3.0, 4.0, 4.25, 5.0, 5.5, 7.0])
def test_as_of_join_by_hand(data_dir, rut, lag):
    for start, end in [("2016-11-01", "2016-12-31"), ("2020-11-01", "2020-12-31")]:
        view = crypto_view(
            data_dir / "RUT.csv", data_dir / "BTC-USD.csv", {"start": start, "end": end, "lag_hours": lag}
        )
        sessions = [r["date"] for r in rut if date(2016, 10, 1) <= r["date"] <= date(2021, 1, 31)]
        closes = {d: hand_close_utc(d) for d in sessions}
        for ts, row in view.iterrows():
            bar_close = datetime.combine(ts.date() + timedelta(days=1), time(0), tzinfo=UTC)
            seen = max(d for d in sessions if closes[d] <= bar_close - timedelta(hours=lag))
            assert row["seen_session"] == pd.Timestamp(seen), (ts, lag)


def test_lag_changes_what_a_bar_sees(data_dir):
    def seen(day: str, lag: float) -> pd.Timestamp:
        view = crypto_view(data_dir / "RUT.csv", data_dir / "BTC-USD.csv", {"start": day, "end": day, "lag_hours": lag})
        return view["seen_session"].iloc[0]

    # winter (EST): 2016-11-14 closes 21:00 UTC -> bar 11-14 (close 11-15 00:00) sees it with lag <= 3 h
    assert seen("2016-11-14", 3.0) == pd.Timestamp("2016-11-14")
    assert seen("2016-11-14", 4.0) == pd.Timestamp("2016-11-11")
    # summer (EDT): 2018-06-05 closes 20:00 UTC -> seen with lag 4 h exactly (20:00 <= 00:00 - 4 h), not 4.25 h
    assert seen("2018-06-05", 4.0) == pd.Timestamp("2018-06-05")
    assert seen("2018-06-05", 4.25) == pd.Timestamp("2018-06-04")
    # early close 2020-11-27 13:00 EST = 18:00 UTC: with lag 5 h bar 11-27 sees its own session,
    # while the regular 2020-11-24 session (21:00 UTC) is seen only by bar 11-25
    assert seen("2020-11-27", 5.0) == pd.Timestamp("2020-11-27")
    assert seen("2020-11-24", 5.0) == pd.Timestamp("2020-11-23")
    assert seen("2020-11-25", 5.0) == pd.Timestamp("2020-11-24")
    assert seen("2020-11-26", 5.0) == pd.Timestamp("2020-11-25")  # Thanksgiving: no session

    view = crypto_view(
        data_dir / "RUT.csv", data_dir / "BTC-USD.csv", {"start": "2020-11-20", "end": "2020-11-30", "lag_hours": 5.0}
    )
    events = view.index[view["event"]].strftime("%Y-%m-%d").tolist()
    # record closes 11-23, 11-24 and 11-27: the first two show up a bar late, the early close on time
    assert events == ["2020-11-24", "2020-11-25", "2020-11-27"]
    assert view.loc[utc(date(2020, 11, 27)), "event_session"] == pd.Timestamp("2020-11-27")

    # the 2016 golden with lag 4 h: the 11-14 session appears on bar 11-15, so the entry is a day later
    trades, _ = simulate(
        data_dir / "RUT.csv",
        data_dir / "BTC-USD.csv",
        GOLDEN | {"start": "2016-11-01", "end": "2016-12-31", "lag_hours": 4},
    )
    assert trades["signal_session"].iloc[0] == pd.Timestamp("2016-11-14")
    assert trades["decision_time"].iloc[0] == utc(date(2016, 11, 15))
    assert trades["entry_time"].iloc[0] == utc(date(2016, 11, 16))


# --------------------------------------------------------------------------------- other exits
def test_index_exits_and_trail_by_hand(data_dir, rut, btc):
    base = {"fee": FEE, "slippage": SLIP, "start": "2020-11-01", "end": "2020-12-31"}
    rows = {r["date"]: r for r in rut}
    # trailing stop by hand on the 2020 trade: peak from the 11-14 fill bar's close on
    trail = 0.05
    trades, _ = simulate(data_dir / "RUT.csv", data_dir / "BTC-USD.csv", base | {"trail": trail})
    d, peak = date(2020, 11, 14), 0.0
    while True:
        peak = max(peak, btc[d]["close"])
        if btc[d]["close"] < peak * (1 - trail):
            break
        d += timedelta(days=1)
    assert trades["exit_reason"].iloc[0] == "trail"
    assert trades["exit_decision_time"].iloc[0] == utc(d)
    assert trades["exit_price"].iloc[0] == approx(btc[d + timedelta(days=1)]["open"] * (1 - SLIP))

    # index drawdown: x = 0 exits on the first seen session below its all-time high
    trades, _ = simulate(data_dir / "RUT.csv", data_dir / "BTC-USD.csv", base | {"index_exit_dd": 0.0})
    d = date(2020, 11, 14)
    while True:
        s = max(x for x in rows if x <= d)
        if rows[s]["close"] < max(r["close"] for r in rut if r["date"] <= s):
            break
        d += timedelta(days=1)
    assert trades["exit_reason"].iloc[0] == "index_dd"
    assert trades["exit_decision_time"].iloc[0] == utc(d)


def test_index_exit_below_break_by_hand(data_dir, rut, btc):
    # over the whole BTC history: each trade exits at the first bar from its fill on whose seen session
    # (daily bars, no lag: the latest session dated on or before the bar) closes at or below B, the
    # record close the signal session broke (threshold 0, k = 1)
    trades, _ = simulate(
        data_dir / "RUT.csv", data_dir / "BTC-USD.csv", {"fee": FEE, "slippage": SLIP, "index_exit_below_break": True}
    )
    sessions = [r["date"] for r in rut]
    records = record_closes(rut)
    by_date = {r["date"]: r for r in rut}
    assert (trades["exit_reason"] == "index_break").sum() >= 5
    for _, tr in trades[~trades["open"]].iterrows():
        B = records[tr["signal_session"].date()]
        d = tr["entry_time"].date()
        while by_date[max(s for s in sessions if s <= d)]["close"] > B:
            d += timedelta(days=1)
        assert tr["exit_reason"] == "index_break"
        assert tr["exit_decision_time"] == utc(d)
        assert tr["exit_time"] == utc(d + timedelta(days=1))
        assert tr["exit_price"] == approx(btc[d + timedelta(days=1)]["open"] * (1 - SLIP))


def test_unknown_param_is_an_error(data_dir):
    with pytest.raises(ValueError, match="unknown params"):
        simulate(data_dir / "RUT.csv", data_dir / "BTC-USD.csv", {"treshold": 0.01})


# ------------------------------------------------------------------- (6) several targets (legs)
def read_ccxt(path: Path) -> dict[date, dict]:
    """Raw ccxt rows (timestamp = bar open, ms UTC) -> {date: {'open', 'close'}}."""
    with open(path, newline="") as fh:
        return {
            datetime.fromtimestamp(int(r["timestamp"]) / 1000, UTC).date(): {
                "open": float(r["open"]),
                "close": float(r["close"]),
            }
            for r in csv.DictReader(fh)
        }


def binance(data_dir: Path, coin: str) -> Path:
    return data_dir / f"binance_{coin}-USDT_1d.csv"


def hand_legs(bars: dict[str, dict], fill_day: date, equity: float) -> dict[str, dict]:
    """Equal budget per chosen coin: price, size, fee and the cash it costs, by coin name."""
    n = len(bars)
    out = {}
    for name, rows in bars.items():
        price = rows[fill_day]["open"] * (1 + SLIP)
        size = (1.0 * equity / n) / (price * (1 + FEE)) * (1 - 1e-9)
        out[name] = {"price": price, "size": size, "fee": size * price * FEE, "cost": size * price * (1 + FEE)}
    return out


def check_legs(trades: pd.DataFrame, position: int, legs: dict[str, dict]) -> None:
    rows = trades[trades["position"] == position]
    assert rows["asset"].tolist() == list(legs)  # list order of the files
    for (_, tr), leg in zip(rows.iterrows(), legs.values(), strict=True):
        assert tr["entry_price"] == approx(leg["price"])
        assert tr["size"] == approx(leg["size"])
        assert tr["entry_fee"] == approx(leg["fee"])


def test_single_mode_is_simulate(data_dir):
    params = GOLDEN | {"trail": 0.2, "stop": 0.1, "take_profit": 0.5, "fee": FEE}
    a, ea = simulate(data_dir / "RUT.csv", data_dir / "BTC-USD.csv", params)
    b, eb = simulate_multi(data_dir / "RUT.csv", [data_dir / "BTC-USD.csv"], params | {"mode": "single"})
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_series_equal(ea, eb)
    assert list(b.columns) == LEG_COLUMNS and (b["asset"] == "BTC-USD").all()
    assert b["position"].tolist() == list(range(len(b)))
    # a one-file basket is the same backtest
    c, _ = simulate_multi(data_dir / "RUT.csv", [data_dir / "BTC-USD.csv"], params | {"mode": "basket"})
    pd.testing.assert_frame_equal(a, c)
    with pytest.raises(ValueError, match="exactly one"):
        simulate_multi(data_dir / "RUT.csv", [data_dir / "BTC-USD.csv", data_dir / "ETH-USD.csv"], {})
    with pytest.raises(ValueError, match="twice"):
        simulate_multi(data_dir / "RUT.csv", [data_dir / "BTC-USD.csv"] * 2, {"mode": "basket"})
    with pytest.raises(ValueError, match="mode"):
        simulate_multi(data_dir / "RUT.csv", [data_dir / "BTC-USD.csv"], {"mode": "topk"})


def test_basket_two_then_three_coins(data_dir, rut):
    files = [binance(data_dir, c) for c in ("BTC", "ETH", "SOL")]
    bars = {f.stem: read_ccxt(f) for f in files}
    sol_first = min(bars["binance_SOL-USDT_1d"])
    assert sol_first == date(2020, 8, 11)
    records = record_closes(rut)
    params = GOLDEN | {"mode": "basket"}

    # 2018: SOL has no bar yet -> two legs of CASH/2 each (the SOL file has no bar in the window)
    trades, equity = simulate_multi(data_dir / "RUT.csv", files, params | {"start": "2018-06-01", "end": "2018-07-31"})
    first = min(d for d in records if d >= date(2018, 6, 1))
    assert first == date(2018, 6, 4)  # Monday: seen by the 06-04 bar, filled at the 06-05 open
    assert [d for d in records if date(2018, 7, 6) <= d <= date(2018, 7, 31)] == []
    two = {k: bars[k] for k in ("binance_BTC-USDT_1d", "binance_ETH-USDT_1d")}
    legs = hand_legs(two, date(2018, 6, 5), CASH)
    assert len(trades) == 2 and set(trades["position"]) == {0}
    check_legs(trades, 0, legs)
    for leg in legs.values():  # equal weights: each leg spends half the equity (less the 1e-9 haircut)
        assert leg["cost"] == approx(CASH / 2 * (1 - 1e-9))
    cash = CASH - sum(leg["cost"] for leg in legs.values())
    for tr, name in zip(trades.itertuples(), legs, strict=True):
        assert tr.decision_time == utc(first) and tr.entry_time == utc(date(2018, 6, 5))
        assert tr.exit_reason == "max_hold" and tr.exit_decision_time == utc(date(2018, 7, 5))
        assert tr.exit_time == utc(date(2018, 7, 6))
        assert tr.exit_price == approx(two[name][date(2018, 7, 6)]["open"] * (1 - SLIP))
    assert equity.index[0] == utc(date(2018, 6, 1)) and equity.index[-1] == utc(date(2018, 7, 31))
    assert equity[utc(date(2018, 6, 4))] == CASH
    for d in (date(2018, 6, 5), date(2018, 6, 20), date(2018, 7, 5)):
        assert equity[utc(d)] == approx(cash + sum(legs[k]["size"] * two[k][d]["close"] for k in two))
    final = cash + sum(legs[k]["size"] * two[k][date(2018, 7, 6)]["open"] * (1 - SLIP) * (1 - FEE) for k in two)
    assert equity.iloc[-1] == approx(final) == approx(CASH + trades["pnl"].sum())

    # 2020: three legs of CASH/3; exit filled 12-15, re-entry on the 12-15 record with the cash after
    trades, equity = simulate_multi(data_dir / "RUT.csv", files, params | {"start": "2020-11-01", "end": "2020-12-31"})
    legs = hand_legs(bars, date(2020, 11, 14), CASH)
    assert trades["position"].tolist() == [0, 0, 0, 1, 1, 1]
    check_legs(trades, 0, legs)
    for leg in legs.values():
        assert leg["cost"] == approx(CASH / 3 * (1 - 1e-9))
    cash = CASH - sum(leg["cost"] for leg in legs.values())
    cash += sum(legs[k]["size"] * bars[k][date(2020, 12, 15)]["open"] * (1 - SLIP) * (1 - FEE) for k in bars)
    legs2 = hand_legs(bars, date(2020, 12, 16), cash)
    check_legs(trades, 1, legs2)
    assert (trades["entry_time"].iloc[3:] == utc(date(2020, 12, 16))).all()
    assert trades["open"].iloc[3:].all() and (trades["exit_reason"].iloc[3:] == "open").all()
    cash2 = cash - sum(leg["cost"] for leg in legs2.values())
    last = date(2020, 12, 31)
    assert equity.iloc[-1] == approx(cash2 + sum(legs2[k]["size"] * bars[k][last]["close"] for k in bars))
    assert equity.iloc[-1] == approx(CASH + trades["pnl"].sum())


def test_top_k_momentum_by_hand(data_dir, rut):
    coins = ("BTC", "ETH", "XRP", "TRX", "ADA", "LTC", "BNB")
    files = [binance(data_dir, c) for c in coins]
    bars = {f.stem: read_ccxt(f) for f in files}
    start, m = date(2018, 5, 20), 30
    params = GOLDEN | {"mode": "top_k", "k": 2, "momentum_days": m, "start": str(start), "end": "2018-07-31"}
    trades, _ = simulate_multi(data_dir / "RUT.csv", files, params)

    # every record close whose look-back day falls before the window's first bar finds no eligible coin
    # and is dropped; the first with dec - 30 >= 2018-05-20 is 06-19 (the 06-18 one looks back to 05-19)
    records = sorted(d for d in records_between(rut, start, date(2018, 7, 31)))
    dec = next(d for d in records if d - timedelta(days=m) >= start)
    assert dec == date(2018, 6, 19) and date(2018, 6, 18) in records
    back, fill = dec - timedelta(days=m), dec + timedelta(days=1)
    eligible = [k for k, rows in bars.items() if dec in rows and fill in rows and back in rows]
    # TRX trades on dec but listed 2018-06-11: no bar 30 days back
    assert dec in bars["binance_TRX-USDT_1d"] and "binance_TRX-USDT_1d" not in eligible and len(eligible) == 6
    momentum = {k: bars[k][dec]["close"] / bars[k][back]["close"] - 1 for k in eligible}
    top = sorted(eligible, key=lambda k: -momentum[k])[:2]
    chosen = [k for k in bars if k in top]  # rows in list order
    legs = hand_legs({k: bars[k] for k in chosen}, fill, CASH)
    assert set(trades["position"]) == {0}
    check_legs(trades, 0, legs)
    assert (trades["decision_time"] == utc(dec)).all() and (trades["signal_session"] == pd.Timestamp(dec)).all()
    assert (trades["exit_decision_time"] == utc(fill + timedelta(days=30))).all()

    # k above the number of eligible coins: all six, in list order, CASH/6 each
    trades, _ = simulate_multi(data_dir / "RUT.csv", files, params | {"k": 10})
    check_legs(trades, 0, hand_legs({k: bars[k] for k in eligible}, fill, CASH))


def records_between(rut: list[dict], first: date, last: date) -> list[date]:
    return [d for d in record_closes(rut) if first <= d <= last]


def test_data_end_sells_one_leg(data_dir, rut):
    files = [binance(data_dir, c) for c in ("BTC", "ETH", "MATIC")]
    bars = {f.stem: read_ccxt(f) for f in files}
    matic = "binance_MATIC-USDT_1d"
    end_day = max(bars[matic])
    assert end_day == date(2024, 9, 10)
    params = {"mode": "basket", "fee": FEE, "slippage": SLIP, "start": "2021-11-01", "end": "2024-12-31"}
    trades, equity = simulate_multi(data_dir / "RUT.csv", files, params)

    dec = min(records_between(rut, date(2021, 11, 1), date(2024, 12, 31)))
    assert dec == date(2021, 11, 2)
    legs = hand_legs(bars, date(2021, 11, 3), CASH)
    assert len(trades) == 3 and set(trades["position"]) == {0}  # no exit: one position throughout
    check_legs(trades, 0, legs)
    cash = CASH - sum(leg["cost"] for leg in legs.values())

    # MATIC: sold at its last close, no slippage, with the fee
    close = bars[matic][end_day]["close"]
    notional = legs[matic]["size"] * close
    tr = trades[trades["asset"] == matic].iloc[0]
    check_trade(
        tr,
        {
            "exit_decision_time": utc(end_day),
            "exit_time": utc(end_day),
            "exit_price": close,
            "exit_fee": notional * FEE,
            "pnl": notional * (1 - FEE) - legs[matic]["cost"],
            "exit_reason": "data_end",
            "open": False,
        },
    )
    cash += notional * (1 - FEE)
    rest = [k for k in bars if k != matic]
    for d in (end_day, end_day + timedelta(days=1)):
        assert equity[utc(d)] == approx(cash + sum(legs[k]["size"] * bars[k][d]["close"] for k in rest))
    # the day before: all three legs marked at their closes
    prev = end_day - timedelta(days=1)
    before = CASH - sum(leg["cost"] for leg in legs.values())
    assert equity[utc(prev)] == approx(before + sum(legs[k]["size"] * bars[k][prev]["close"] for k in bars))
    # BTC and ETH stay open to the last bar
    last = date(2024, 12, 31)
    for k in rest:
        tr = trades[trades["asset"] == k].iloc[0]
        assert bool(tr["open"]) and tr["exit_reason"] == "open" and tr["exit_time"] == utc(last)
        assert tr["exit_price"] == bars[k][last]["close"] and tr["exit_fee"] == 0.0
    assert equity.iloc[-1] == approx(cash + sum(legs[k]["size"] * bars[k][last]["close"] for k in rest))
    assert equity.iloc[-1] == approx(CASH + trades["pnl"].sum())


def test_data_end_closes_the_whole_position(data_dir, tmp_path):
    # synthetic index: RUT with record closes on 2024-09-10 (MATIC's last bar), 09-11 and 09-12;
    # targets: Binance MATIC and a coin listed 2024-01-01 (Binance BTC rows from then on)
    with open(data_dir / "RUT.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    bump = {"2024-09-10": 5000.0, "2024-09-11": 5001.0, "2024-09-12": 5002.0}
    for r in rows:
        if r["Date"] in bump:
            r["Close"] = r["Adj Close"] = repr(bump[r["Date"]])
    index = tmp_path / "IDX.csv"
    with open(index, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    late = tmp_path / "LATE-USDT.csv"
    with open(binance(data_dir, "BTC"), newline="") as src, open(late, "w", newline="") as dst:
        lines = src.readlines()
        first_ms = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)
        dst.writelines([lines[0], *[ln for ln in lines[1:] if int(ln.split(",")[0]) >= first_ms]])
    matic_rows, late_rows = read_ccxt(binance(data_dir, "MATIC")), read_ccxt(late)
    files = [binance(data_dir, "MATIC"), late]
    params = {"mode": "basket", "fee": FEE, "slippage": SLIP, "start": "2021-11-01", "end": "2024-10-31"}

    trades, equity = simulate_multi(index, files, params)
    # position 0: MATIC alone (the late coin has no bar on 2021-11-02), sold by data end on 09-10
    legs = hand_legs({"binance_MATIC-USDT_1d": matic_rows}, date(2021, 11, 3), CASH)
    check_legs(trades, 0, legs)
    leg = legs["binance_MATIC-USDT_1d"]
    proceeds = leg["size"] * matic_rows[date(2024, 9, 10)]["close"] * (1 - FEE)
    cash = CASH - leg["cost"] + proceeds
    assert trades["exit_reason"].iloc[0] == "data_end" and trades["exit_time"].iloc[0] == utc(date(2024, 9, 10))
    assert equity[utc(date(2024, 9, 10))] == approx(cash) and equity[utc(date(2024, 9, 11))] == approx(cash)
    # the 09-10 event is ignored (in position on that bar); the 09-11 one is taken: late coin only
    assert trades["position"].tolist() == [0, 1] and trades["asset"].iloc[1] == "LATE-USDT"
    assert trades["signal_session"].iloc[1] == pd.Timestamp("2024-09-11")
    check_legs(trades, 1, hand_legs({"LATE-USDT": late_rows}, date(2024, 9, 12), cash))

    # cooldown counts from the data-end bar: 2 days block 09-11 (1 day after), not 09-12 (2 days)
    trades, _ = simulate_multi(index, files, params | {"cooldown_days": 2})
    assert trades["signal_session"].iloc[1] == pd.Timestamp("2024-09-12")
    check_legs(trades, 1, hand_legs({"LATE-USDT": late_rows}, date(2024, 9, 13), cash))


def test_fixed_stop_and_take_profit_by_hand(data_dir, btc):
    def first_exit(fill: date, hit) -> date:
        d = fill
        while not hit(d):
            d += timedelta(days=1)
        return d

    # take profit on the 2020-11-13 entry: PV = size * close above cost * 1.2, cost = size * entry price
    tp = 0.2
    params = {"fee": FEE, "slippage": SLIP, "start": "2020-11-01", "end": "2020-12-31", "take_profit": tp}
    trades, _ = simulate(data_dir / "RUT.csv", data_dir / "BTC-USD.csv", params)
    e = hand_entry(btc, date(2020, 11, 14), CASH)
    cost = e["size"] * e["price"]
    d = first_exit(date(2020, 11, 14), lambda d: e["size"] * btc[d]["close"] > cost * (1 + tp))
    assert d > date(2020, 11, 14)
    check_trade(
        trades.iloc[0],
        {
            "size": e["size"],
            "exit_decision_time": utc(d),
            "exit_time": utc(d + timedelta(days=1)),
            "exit_price": btc[d + timedelta(days=1)]["open"] * (1 - SLIP),
            "exit_reason": "take_profit",
        },
    )

    # fixed stop on the 2021-11-02 entry (BTC's 2021 top): PV below cost * 0.9; a looser trail does not
    # fire first, and the stop outranks max_hold on the same bar
    stop = 0.1
    params = {"fee": FEE, "slippage": SLIP, "start": "2021-11-01", "end": "2022-03-31", "stop": stop, "trail": 0.3}
    trades, _ = simulate(data_dir / "RUT.csv", data_dir / "BTC-USD.csv", params)
    e = hand_entry(btc, date(2021, 11, 3), CASH)
    cost = e["size"] * e["price"]
    d = first_exit(date(2021, 11, 3), lambda d: e["size"] * btc[d]["close"] < cost * (1 - stop))
    peak = max(
        e["size"] * btc[date(2021, 11, 3) + timedelta(days=i)]["close"] for i in range((d - date(2021, 11, 3)).days + 1)
    )
    assert e["size"] * btc[d]["close"] >= peak * (1 - 0.3)  # the trail alone would not have fired yet
    expected = {
        "signal_session": pd.Timestamp("2021-11-02"),
        "entry_time": utc(date(2021, 11, 3)),
        "exit_decision_time": utc(d),
        "exit_time": utc(d + timedelta(days=1)),
        "exit_price": btc[d + timedelta(days=1)]["open"] * (1 - SLIP),
        "exit_reason": "stop",
    }
    check_trade(trades.iloc[0], expected)
    held = (d - date(2021, 11, 3)).days
    trades, _ = simulate(data_dir / "RUT.csv", data_dir / "BTC-USD.csv", params | {"max_hold_days": held})
    check_trade(trades.iloc[0], expected)
    trades, _ = simulate(data_dir / "RUT.csv", data_dir / "BTC-USD.csv", params | {"max_hold_days": held - 1})
    assert trades["exit_reason"].iloc[0] == "max_hold"
