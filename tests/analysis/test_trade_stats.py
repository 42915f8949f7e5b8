"""Trade analytics on hand-made bars: MAE/MFE windows, bars held, days, return; SQN's cap; per-position streaks.

Every expected number is written out by hand from the bars below, never through ``riskon.analysis.trade_stats``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from riskon.analysis.trade_stats import (
    TRADE_ANALYTICS,
    TRADE_STATS,
    excursions,
    trade_analytics,
    trade_stats,
    trade_stats_frame,
)
from strategies.backtest import TRADE_COLUMNS

NAN = math.nan
TIMES = pd.date_range("2024-03-01", periods=5, freq="D", tz="UTC").as_unit("us")

#: Five daily bars. Bar 1 has no high/low (its close stands for them); bar 3's extremes (200 / 50)
#: come after an exit filled at its open, so they must not count for a leg sold at that open.
BARS = pd.DataFrame(
    {
        "open": [100.0, 102.0, 96.0, 106.0, 148.0],
        "high": [103.0, NAN, 108.0, 200.0, 160.0],
        "low": [99.0, NAN, 97.0, 50.0, 140.0],
        "close": [102.0, 96.0, 107.0, 150.0, 155.0],
        "volume": 1.0,
    },
    index=TIMES,
)


def leg(position: int, asset: str, entry: int, exit_: int, entry_price: float, exit_price: float, reason: str,
        size: float = 10.0, entry_fee: float = 1.0, exit_fee: float = 1.5) -> dict:  # fmt: skip
    """One trade-table row: fills at bars ``entry`` and ``exit_`` of TIMES."""
    is_open = reason == "open"
    return {
        "position": position, "asset": asset, "signal_session": pd.Timestamp("2024-02-28"),
        "decision_time": TIMES[entry] - pd.Timedelta(days=1), "entry_time": TIMES[entry],
        "entry_price": entry_price, "size": size, "entry_fee": entry_fee,
        "exit_decision_time": pd.NaT if is_open else TIMES[exit_] - pd.Timedelta(days=1), "exit_time": TIMES[exit_],
        "exit_price": exit_price, "exit_fee": 0.0 if is_open else exit_fee,
        "pnl": size * exit_price - (0.0 if is_open else exit_fee) - size * entry_price - entry_fee,
        "exit_reason": reason, "open": is_open,
    }  # fmt: skip


def frame(rows: list[dict]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=TRADE_COLUMNS)
    out["exit_decision_time"] = pd.to_datetime(out["exit_decision_time"], utc=True).dt.as_unit("us")
    return out


def test_mae_mfe_on_five_hand_made_bars():
    """Entry filled at bar 0's open (100.05), exit at bar 3's open (105.947): bars 0..2 and the two fills count."""
    trades = frame([leg(0, "A", 0, 3, 100.05, 105.947, "trail")])
    got = excursions(trades, {"A": BARS}).iloc[0]
    # by hand: prices seen = fills 100.05, 105.947; bar 0: 103 / 99 / 102; bar 1: close 96 only; bar 2: 108 / 97 / 107
    # lowest 96 (bar 1's close: no high/low there), highest 108 (bar 2's high); bar 3's 200 and 50 are left out
    assert got["mae_price"] == 96.0 and got["mfe_price"] == 108.0
    assert got["mae"] == pytest.approx(96.0 / 100.05 - 1.0, abs=1e-15)  # -4.048 %
    assert got["mfe"] == pytest.approx(108.0 / 100.05 - 1.0, abs=1e-15)  # +7.946 %
    assert got["bars_held"] == 3


def test_the_exit_bars_high_and_low_are_left_out_but_its_fill_counts():
    """Sold at bar 2's open at 90 (a gap below everything seen): the fill is the low, bar 2's 108 is not the high."""
    trades = frame([leg(0, "A", 0, 2, 100.0, 90.0, "stop")])
    got = excursions(trades, {"A": BARS}).iloc[0]
    # by hand: fills 100, 90; bar 0: 103 / 99 / 102; bar 1: 96 -> low 90 (exit fill), high 103 (bar 0's high)
    assert (got["mae_price"], got["mfe_price"], got["bars_held"]) == (90.0, 103.0, 2)
    assert got["mae"] == pytest.approx(-0.10, abs=1e-15) and got["mfe"] == pytest.approx(0.03, abs=1e-15)


def test_a_round_trip_over_one_bar_uses_that_bar_only():
    """Bought at bar 2's open (96.5), sold at bar 3's open (106): bar 2's high 108 and low 97, not bar 3's."""
    got = excursions(frame([leg(0, "A", 2, 3, 96.5, 106.0, "index_dd")]), {"A": BARS}).iloc[0]
    assert (got["mae_price"], got["mfe_price"], got["bars_held"]) == (96.5, 108.0, 1)


def test_an_open_trade_counts_its_marking_bar_whole():
    """Open since bar 3's open (106.1), marked at bar 4's close (155): bars 3 and 4 were held through."""
    got = excursions(frame([leg(0, "A", 3, 4, 106.1, 155.0, "open")]), {"A": BARS}).iloc[0]
    # by hand: fill 106.1, mark 155; bar 3: 200 / 50 / 150; bar 4: 160 / 140 / 155 -> low 50, high 200
    assert (got["mae_price"], got["mfe_price"], got["bars_held"]) == (50.0, 200.0, 2)
    assert got["mae"] == pytest.approx(50.0 / 106.1 - 1.0, abs=1e-15)
    assert got["mfe"] == pytest.approx(200.0 / 106.1 - 1.0, abs=1e-15)


def test_a_same_bar_data_end_exit_uses_that_bars_high_low_and_close():
    """Bought at bar 4's open (148.1) and sold at its close (155, the coin's data ends): the bar was held whole."""
    got = excursions(frame([leg(0, "A", 4, 4, 148.1, 155.0, "data_end")]), {"A": BARS}).iloc[0]
    assert (got["mae_price"], got["mfe_price"], got["bars_held"]) == (140.0, 160.0, 1)
    assert got["mae"] == pytest.approx(140.0 / 148.1 - 1.0, abs=1e-15)


def test_days_and_return_per_leg():
    trades = frame([leg(0, "A", 0, 3, 100.05, 105.947, "trail"), leg(1, "B", 3, 4, 106.1, 155.0, "open")])
    got = trade_analytics(trades, {"A": BARS, "B": BARS})
    assert list(got.columns) == [*TRADE_COLUMNS, *TRADE_ANALYTICS]
    assert got["days"].tolist() == [3, 1]
    # by hand: pnl = 10 x 105.947 - 1.5 - 10 x 100.05 - 1 = 56.47 on a cost of 10 x 100.05 + 1 = 1001.5
    assert got.at[0, "return"] == pytest.approx(56.47 / 1001.5, rel=1e-12)
    # open: 10 x 155 - 0 - 1061 - 1 = 488 on 1062
    assert got.at[1, "return"] == pytest.approx(488.0 / 1062.0, rel=1e-12)


def test_days_are_whole_calendar_days_between_fill_bars():
    """Hourly bars: 2 days 5 hours between the fills shows as 2 days (the terminal's number)."""
    hours = pd.date_range("2024-03-01", periods=60, freq="h", tz="UTC").as_unit("us")
    bars = pd.DataFrame({"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0}, index=hours)
    row = leg(0, "H", 0, 0, 1.0, 1.0, "trail")
    row["entry_time"], row["exit_time"] = hours[3], hours[3 + 53]
    got = trade_analytics(frame([row]), {"H": bars})
    assert got.at[0, "days"] == 2 and got.at[0, "bars_held"] == 53


def positions_of(pnls: list[float], returns: list[float]) -> pd.DataFrame:
    """One-leg positions with the given pnl and return (cost = 1000 each), one day apart, held 1..n days."""
    rows = []
    for i, (p, r) in enumerate(zip(pnls, returns, strict=True)):
        cost = p / r if r else 1000.0
        start = pd.Timestamp("2020-01-01", tz="UTC") + pd.Timedelta(days=3 * i)
        rows.append({"position": i, "asset": "A", "signal_session": pd.NaT, "decision_time": start, "entry_time": start,
                     "entry_price": cost, "size": 1.0, "entry_fee": 0.0, "exit_decision_time": start,
                     "exit_time": start + pd.Timedelta(days=1 + i % 3), "exit_price": cost + p, "exit_fee": 0.0,
                     "pnl": p, "exit_reason": "trail", "open": False})  # fmt: skip
    return pd.DataFrame(rows, columns=TRADE_COLUMNS)


def test_sqn_caps_n_at_100():
    """150 trades alternating +3 % / -1 %: mean 1 %, std (ddof=1) = 2 x sqrt(150/149) %, N counted as 100."""
    returns = [0.03, -0.01] * 75
    got = trade_stats(positions_of([1000 * r for r in returns], returns))
    std = 0.02 * math.sqrt(150 / 149)  # by hand: every deviation is +-2 %, sum of squares 150 x 0.0004
    assert got["sqn"] == pytest.approx(math.sqrt(100) * 0.01 / std, rel=1e-12)
    assert got["expectancy_return"] == pytest.approx(0.01, rel=1e-12)
    assert got["expectancy"] == pytest.approx(10.0, rel=1e-12)
    assert got["max_losing_streak"] == 1


def test_streak_and_holding_days_by_hand():
    pnls = [5.0, -1.0, -2.0, 0.0, -1.0, -3.0, -4.0, 7.0]  # a zero is no loss: the streak is the last three losses
    got = trade_stats(positions_of(pnls, [p / 1000 for p in pnls]))
    assert got["max_losing_streak"] == 3
    # holding days 1 + i % 3: 1, 2, 3, 1, 2, 3, 1, 2 -> sorted 1 1 1 2 2 2 3 3; quartiles by linear interpolation
    # at positions 0, 1.75, 3.5, 5.25, 7 of the sorted list
    assert [got[f"hold_days_{k}"] for k in ("min", "p25", "median", "p75", "max")] == [1.0, 1.0, 2.0, 2.25, 3.0]
    assert got["expectancy"] == pytest.approx(sum(pnls) / 8, rel=1e-12)


def test_a_basket_position_counts_once():
    """Two positions of two legs each: legs -1/+3 (a win of +2) then -2/-2 (a loss): streak 1, not 3 legs."""
    rows = [leg(0, "A", 0, 2, 100.0, 99.9, "trail", entry_fee=0.0, exit_fee=0.0),  # pnl -1
            leg(0, "B", 0, 2, 100.0, 100.3, "trail", entry_fee=0.0, exit_fee=0.0),  # pnl +3
            leg(1, "A", 2, 4, 100.0, 99.8, "trail", entry_fee=0.0, exit_fee=0.0),  # pnl -2
            leg(1, "B", 2, 4, 100.0, 99.8, "trail", entry_fee=0.0, exit_fee=0.0)]  # fmt: skip
    got = trade_stats(frame(rows))
    assert got["max_losing_streak"] == 1
    # by hand: position pnl +2 and -4 on a cost of 2000 each: returns +0.1 % and -0.2 %
    assert got["expectancy"] == pytest.approx(-1.0, rel=1e-9)
    assert got["expectancy_return"] == pytest.approx((0.001 - 0.002) / 2, rel=1e-9)
    assert got["hold_days_min"] == got["hold_days_max"] == 2.0
    # SQN of two returns: mean -0.05 %, std = 0.15 % x sqrt(2) -> sqrt(2) x mean / std = -1/3
    assert got["sqn"] == pytest.approx(-1.0 / 3.0, rel=1e-9)


def test_no_trades():
    empty = pd.DataFrame(columns=TRADE_COLUMNS)
    got = trade_stats(empty)
    assert got["max_losing_streak"] == 0 and all(math.isnan(got[k]) for k in TRADE_STATS if k != "max_losing_streak")
    assert excursions(empty, {}).empty
    rows = trade_stats_frame(empty, ["strategy", "buy_and_hold"])
    assert list(rows.index) == list(TRADE_STATS) and rows["buy_and_hold"].isna().all()
    assert np.isnan(rows.at["sqn", "strategy"])
