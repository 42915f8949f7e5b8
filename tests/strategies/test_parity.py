"""Parity: the backtrader strategy against the independent re-implementation (tests/support/reference_sim.py).

Trade count, dates and sides must agree exactly; prices, sizes, fees, PnL and equity to 1e-9
relative. Every backtest also checks the accounting invariants: no refused order (the run would
raise), cash never below zero, total fees = fee rate x turnover.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskon.runner import run
from strategies.backtest import TRADE_COLUMNS, backtest, check_accounting
from support.forked import forked_map
from support.parity_cases import CASES, assert_same, config_for, reference


@pytest.fixture(scope="module")
def runs(data_dir):
    # each case's backtrader run in forked workers on CI's second core (tests/support/forked.py): the same Results
    return dict(zip(CASES, forked_map(lambda p: run(config_for(p)), list(CASES.values())), strict=True))


@pytest.mark.parametrize("name", list(CASES))
def test_backtrader_matches_reference(data_dir, runs, name):
    res = runs[name]
    ref_trades, ref_equity = reference(data_dir, CASES[name])
    assert len(ref_trades) >= 3, "a parity case must trade"
    assert_same(res.trades, ref_trades, res.equity, ref_equity)
    assert check_accounting(res.backtest) == []
    assert res.backtest.cash.min() >= 0
    fee = CASES[name].get("fee", 0.0)
    assert res.backtest.fees == pytest.approx(fee * res.backtest.turnover, rel=1e-12, abs=1e-12)
    assert list(res.trades.columns) == TRADE_COLUMNS


def test_cases_cover_gap_up_entries_and_exit_bar_signals(runs):
    """The cases include entries that fill above the decision bar's high and events on exit-decision bars."""
    gap_ups = exit_bar_events = exit_fill_entries = 0
    for res in runs.values():
        bars, tr = res.bars, res.trades
        for t in tr.itertuples():
            if bars.loc[t.entry_time, "open"] > bars.loc[t.decision_time, "high"]:
                gap_ups += 1
        closed = tr[~tr["open"]]
        exit_bar_events += int(bars.loc[closed["exit_decision_time"], "event"].sum())
        exit_fill_entries += int(tr["decision_time"].isin(closed["exit_time"]).sum())
    assert gap_ups >= 3  # backtrader's default cash check would have refused these (Margin)
    assert exit_bar_events >= 1  # a signal on the bar an exit is decided: ignored, still in position
    assert exit_fill_entries >= 1  # a signal on the exit fill bar itself: taken (cooldown 0)


def test_runonce_and_reruns_are_identical(runs):
    res = runs["seed"]
    again = backtest(res.bars, res.backtest.params, assets=res.assets, runonce=False)
    pd.testing.assert_series_equal(again.equity, res.equity, check_exact=True)
    pd.testing.assert_frame_equal(again.trades, res.trades, check_exact=True)
    third = backtest(res.bars, res.backtest.params, assets=res.assets, runonce=True)
    pd.testing.assert_series_equal(third.equity, res.equity, check_exact=True)


def test_default_commission_class_would_charge_100x_less(runs):
    """Guard: our fee setup charges fee x notional; CommInfoBase's percent default would not."""
    res = runs["seed"]
    fills = res.backtest.fills
    np.testing.assert_allclose(fills["fee"], fills["price"] * fills["size"] * 0.001, rtol=1e-12)


@pytest.mark.parametrize("name", ["seed", "weekly_delay_cooldown"])
def test_array_feed_equals_pandas_feed(runs, name):
    """The fast array-backed feed and backtrader's PandasData give identical trades and equity."""
    res = runs[name]
    slow = backtest(res.bars, res.backtest.params, assets=res.assets, pandas_feed=True)
    pd.testing.assert_series_equal(slow.equity, res.equity, check_exact=True)
    pd.testing.assert_frame_equal(slow.trades, res.trades, check_exact=True)
