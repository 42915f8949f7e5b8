"""Checks of the independent reference backtest (tests/reference_sim.py) against hand computations.

Every expected number here is worked out in the test from the raw CSV rows, read with the ``csv``
module (no pandas), so the reference and these checks cannot share a misreading of the data.
"""

from __future__ import annotations

import csv
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_sim import TRADE_COLUMNS, crypto_view, index_signal, simulate  # noqa: E402

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
    assert list(trades.columns) == TRADE_COLUMNS

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
