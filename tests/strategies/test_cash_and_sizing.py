"""Idle cash that earns a rate and the sizing rules beside ``fraction`` (issue 18 §1 cash, §2).

backtrader, the fast kernel and the independent reference (tests/support/reference_sim.py, written from the
convention text of strategies/cash.py) agree to 1e-9 on the snapshot with a constant rate, a hand-made yield
series, volatility targeting (one coin, a basket, top-k) and a notional above and below the equity; hand
computations pin the interest, the as-of rate, a volatility-targeted size and the notional cap.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from riskon.config import ConfigError, parse
from riskon.runner import buy_and_hold, prepare, strategy_params
from strategies.backtest import StrategyParams, backtest
from strategies.fastsim import fast_backtest
from support.parity_cases import SEED, assert_same, config_for, multi_config_for, multi_reference, reference

SEED_VOL = dict(SEED, sizing="vol_target", vol_target=0.4, vol_lookback=30, vol_cap=1.0)
CASES = {
    "seed_cash_4pct": (config_for, dict(SEED, cash_rate=0.04)),
    "seed_negative_rate": (config_for, dict(SEED, cash_rate=-0.005)),
    "seed_vol_target": (config_for, SEED_VOL),
    "seed_vol_target_cash": (config_for, dict(SEED_VOL, vol_target=0.25, vol_lookback=60, vol_cap=0.8, cash_rate=0.04)),
    "vol_skips_early_entry": (config_for, dict(SEED_VOL, start="2014-12-01")),
    "notional_below_equity": (config_for, dict(SEED, sizing="notional", notional=40_000.0, cash_rate=0.02)),
    "notional_above_equity": (config_for, dict(SEED, confirm_days=1, sizing="notional", notional=150_000.0)),
    "basket_vol_target_cash": (multi_config_for, dict(
        mode="basket", assets=["BTC-USD", "ETH-USD", "SOL-USD"], confirm_days=2, trail=0.25, fee=0.0025,
        slippage=0.001, start="2019-01-01", sizing="vol_target", vol_target=0.5, vol_lookback=20, vol_cap=0.8,
        cash_rate=0.05)),
    "basket_listing_inside_lookback": (multi_config_for, dict(
        mode="basket", assets=["binance:BTC/USDT", "binance:ETH/USDT", "binance:MATIC/USDT"], confirm_days=1,
        max_hold_days=60, fee=0.001, slippage=0.0005, start="2019-03-01", sizing="vol_target", vol_target=0.6,
        vol_lookback=45, cash_rate=0.03)),
    "topk_vol_target": (multi_config_for, dict(
        mode="top_k", assets=["binance:ETH/USDT", "binance:SOL/USDT", "binance:XRP/USDT", "binance:ADA/USDT"], k=2,
        momentum_days=30, trail=0.15, fee=0.001, slippage=0.0005, sizing="vol_target", vol_target=0.7,
        vol_lookback=14, cash_rate=0.04)),
    "basket_notional": (multi_config_for, dict(
        mode="basket", assets=["BTC-USD", "ETH-USD"], confirm_days=2, trail=0.2, fee=0.001, start="2018-01-01",
        sizing="notional", notional=60_000.0, cash_rate=0.01)),
}  # fmt: skip


def _three(data_dir, make, p):
    cfg = make(p)
    _, bars, assets, _ = prepare(cfg)
    params = strategy_params(cfg)
    fast = fast_backtest(bars, params, assets)
    slow = backtest(bars, params, assets=assets)
    return fast, slow, *(reference(data_dir, p) if make is config_for else multi_reference(data_dir, p))


@pytest.mark.parametrize("name", list(CASES))
def test_backtrader_fast_and_reference_agree(data_dir, name):
    make, p = CASES[name]
    fast, slow, ref_trades, ref_equity = _three(data_dir, make, p)
    assert len(ref_trades) >= 5, "the case must trade"
    assert_same(fast.trades, ref_trades, fast.equity, ref_equity)
    assert_same(slow.trades, ref_trades, slow.equity, ref_equity)
    assert fast.trades["asset"].tolist() == slow.trades["asset"].tolist() == ref_trades["asset"].tolist()
    assert fast.log == [line for line in slow.log if "skipped:" in line or "capped at the equity" in line]


def test_the_cash_rate_changes_the_equity_and_zero_changes_nothing(data_dir):
    cfg = config_for(SEED)
    _, bars, assets, _ = prepare(cfg)
    base = strategy_params(cfg)
    plain = fast_backtest(bars, base, assets)
    zero = fast_backtest(bars, dataclasses.replace(base, cash_rate=0.0), assets)
    earning = fast_backtest(bars, dataclasses.replace(base, cash_rate=0.04), assets)
    assert np.array_equal(plain.equity.to_numpy(), zero.equity.to_numpy())
    assert earning.equity.iloc[-1] > plain.equity.iloc[-1] * 1.2  # in cash most of the time: 4% a year adds up


def _quiet_window(start: str, end: str):
    """A seed window with no entry event: nothing trades, the equity is the cash."""
    cfg = config_for(dict(SEED, start=start, end=end))
    _, bars, assets, _ = prepare(cfg)
    assert not bars["event"].any()
    return cfg, bars, assets


def test_one_day_of_interest_by_hand(data_dir):
    cfg, bars, assets = _quiet_window("2015-01-01", "2015-01-02")
    p = dataclasses.replace(strategy_params(cfg), cash_rate=0.05)
    day = 100000 * ((1.05) ** (1 / 365) - 1)
    assert day == pytest.approx(13.3681, abs=1e-4)
    want = [100000 + day, (100000 + day) * (1.05) ** (1 / 365)]
    for res in (fast_backtest(bars, p, assets), backtest(bars, p, assets=assets)):
        assert res.trades.empty
        np.testing.assert_allclose(res.equity.to_numpy(), want, rtol=1e-12)
    _, ref = reference(data_dir, dict(SEED, start="2015-01-01", end="2015-01-02", cash_rate=0.05))
    np.testing.assert_allclose(ref.to_numpy(), want, rtol=1e-12)


def test_a_yield_series_is_used_as_of_each_bar_open(data_dir):
    cfg, bars, assets = _quiet_window("2015-01-01", "2015-01-05")
    t = bars.index
    # 2% known before the first open; 10% known exactly at bar 2's open (usable there); 30% known a
    # microsecond after bar 3's open (first used by bar 4); the last value is known after the run
    series = pd.Series(
        [0.02, 0.10, 0.30, 0.90],
        index=pd.DatetimeIndex(
            [t[0] - pd.Timedelta(hours=3), t[2], t[3] + pd.Timedelta(microseconds=1), t[4] + pd.Timedelta(hours=1)]
        ),  # fmt: skip
        name="HANDMADE",
    )
    rates = [0.02, 0.02, 0.10, 0.10, 0.30]
    want = 100000 * np.cumprod([(1 + r) ** (1 / 365) for r in rates])
    p = dataclasses.replace(strategy_params(cfg), cash_rate=series)
    for res in (fast_backtest(bars, p, assets), backtest(bars, p, assets=assets)):
        np.testing.assert_allclose(res.equity.to_numpy(), want, rtol=1e-12)
    _, ref = reference(data_dir, dict(SEED, start="2015-01-01", end="2015-01-05", cash_rate=series))
    np.testing.assert_allclose(ref.to_numpy(), want, rtol=1e-12)


def test_a_hand_made_yield_series_on_the_seed_run(data_dir):
    cfg = config_for(SEED)
    _, bars, assets, _ = prepare(cfg)
    days = pd.date_range("2014-01-01", "2026-12-31", freq="7D", tz="UTC") + pd.Timedelta(hours=21)
    series = pd.Series(0.03 + 0.02 * np.sin(np.arange(len(days)) / 9.0), index=days, name="WAVE")
    p = dataclasses.replace(strategy_params(cfg), cash_rate=series)
    fast, slow = fast_backtest(bars, p, assets), backtest(bars, p, assets=assets)
    ref_trades, ref_equity = reference(data_dir, dict(SEED, cash_rate=series))
    assert_same(fast.trades, ref_trades, fast.equity, ref_equity)
    assert_same(slow.trades, ref_trades, slow.equity, ref_equity)


def test_a_yield_series_that_starts_after_the_first_bar_is_a_data_error(data_dir):
    from feeds.errors import DataError

    cfg, bars, assets = _quiet_window("2015-01-01", "2015-01-05")
    late = pd.Series([0.05], index=pd.DatetimeIndex([bars.index[1]]), name="LATE")
    p = dataclasses.replace(strategy_params(cfg), cash_rate=late)
    with pytest.raises(DataError, match=r"^the cash_rate series LATE is first known on 2015-01-02 00:00 UTC, after"):
        fast_backtest(bars, p, assets)


def test_a_volatility_targeted_size_by_hand(data_dir):
    cfg = config_for(SEED_VOL)
    _, bars, assets, _ = prepare(cfg)
    res = fast_backtest(bars, strategy_params(cfg), assets)
    closes = assets["BTC-USD"]["close"]
    sized = 0
    for tr in res.trades.itertuples():
        i = bars.index.get_loc(tr.decision_time)
        window = closes.iloc[i - 30 : i + 1].to_numpy()
        vol = np.std(window[1:] / window[:-1] - 1.0, ddof=1) * math.sqrt(365)
        share = min(1.0, 0.4 / vol)
        want = share * res.equity.iloc[i] / (tr.entry_price * 1.001) * (1 - 1e-9)
        assert tr.size == pytest.approx(want, rel=1e-12)
        sized += share < 1.0
    assert sized >= 5  # the target binds on most entries (BTC's volatility is above 40% a year)


def test_vol_target_skips_an_entry_without_history_and_says_so(data_dir):
    fast, slow, ref_trades, _ = _three(data_dir, config_for, CASES["vol_skips_early_entry"][1])
    note = (
        "1 entry skipped: vol_target sizing needs a close 30 bars before the decision for every chosen coin "
        "(its volatility is unknown before that)"
    )
    assert fast.log == [note] and note in slow.log
    assert str(ref_trades["decision_time"].iloc[0]) > "2015-01-01"  # the 2014-12-30 decision was dropped


def test_notional_below_the_equity_buys_the_notional(data_dir):
    cfg = config_for(CASES["notional_below_equity"][1])
    _, bars, assets, _ = prepare(cfg)
    res = fast_backtest(bars, strategy_params(cfg), assets)
    spent = res.trades["size"] * res.trades["entry_price"] * 1.001
    np.testing.assert_allclose(spent.to_numpy(), 40_000.0 * (1 - 1e-9), rtol=1e-12)
    assert res.log == []


def test_notional_above_the_equity_is_capped_and_counted(data_dir):
    cfg = config_for(CASES["notional_above_equity"][1])
    _, bars, assets, _ = prepare(cfg)
    fast = fast_backtest(bars, strategy_params(cfg), assets)
    slow = backtest(bars, strategy_params(cfg), assets=assets)
    eq_at = fast.equity.reindex(fast.trades["decision_time"]).to_numpy()
    budget = np.minimum(150_000.0, eq_at)
    spent = (fast.trades["size"] * fast.trades["entry_price"] * 1.001).to_numpy()
    np.testing.assert_allclose(spent, budget * (1 - 1e-9), rtol=1e-12)
    capped = int((eq_at < 150_000.0).sum())
    assert 0 < capped < len(fast.trades)
    line = (
        f"{capped} of {len(fast.trades)} entries capped at the equity: notional 150,000.00 exceeded the equity at "
        "the decision, so they bought with all of it (never on margin)"
    )
    assert fast.log == [line] and line in slow.log


def test_buy_and_hold_earns_the_rate_on_its_idle_cash():
    index = pd.date_range("2024-01-01", periods=4, freq="D", tz="UTC")
    a = pd.DataFrame({"open": [10.0, 11, 12, 13], "close": [11.0, 12, 13, 14]}, index=index)
    b = pd.DataFrame({"open": [np.nan, np.nan, 5.0, 6], "close": [np.nan, np.nan, 6.0, 7]}, index=index)
    p = StrategyParams(cash=1000.0, cash_rate=0.10)
    got = buy_and_hold({"a": a, "b": b}, p).to_numpy()
    g = 1.10 ** (1 / 365) - 1
    size_a = 500 / 10 * (1 - 1e-9)
    size_b = 500 / 5 * (1 - 1e-9)
    cash = 1000 - size_a * 10
    want = []
    for i in range(4):
        cash -= size_b * 5 if i == 2 else 0.0
        cash *= 1 + g
        want.append(cash + size_a * a["close"].iloc[i] + (size_b * b["close"].iloc[i] if i >= 2 else 0.0))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # b's share waits in cash for two bars and earns two days of interest before it is spent
    assert got[1] - size_a * 12 == pytest.approx((1000 - size_a * 10) * (1 + g) ** 2, rel=1e-12)


@pytest.mark.parametrize(
    ("portfolio", "message"),
    [
        ({"sizing": "vol_target"}, "[portfolio] sizing = 'vol_target' needs vol_target set, e.g. vol_target = 0.4"),
        ({"sizing": "notional"}, "[portfolio] sizing = 'notional' needs notional set, e.g. notional = 25000"),
        ({"sizing": "vol_target", "vol_target": 0.4, "fraction": 0.5},
         "[portfolio] fraction = 0.5 applies to sizing = 'fraction' only; drop it (sizing = 'vol_target' sets the "
         "size and vol_cap caps it)"),
        ({"sizing": "kelly"}, "[portfolio].sizing must be one of 'fraction', 'vol_target', 'notional', got 'kelly'"),
        ({"cash_rate": -1.5}, "[portfolio].cash_rate must be >= -0.99, got -1.5"),
        ({"vol_lookback": 1}, "[portfolio].vol_lookback must be >= 2, got 1"),
    ],
)  # fmt: skip
def test_bad_portfolio_keys_are_one_line(portfolio, message):
    with pytest.raises(ConfigError) as e:
        parse({"portfolio": portfolio}, "x.toml")
    assert str(e.value).startswith(f"x.toml: {message}")


def test_a_yield_symbol_is_kept_as_a_symbol():
    cfg = parse({"portfolio": {"cash_rate": "dgs3mo"}})
    assert cfg.portfolio["cash_rate"] == "DGS3MO"
    assert parse({"portfolio": {"cash_rate": 0.04}}).portfolio["cash_rate"] == 0.04


def test_a_cached_yield_symbol_runs_end_to_end(data_dir, tmp_path):
    from feeds.yields import import_yield, load_yield
    from riskon.runner import run

    days = pd.bdate_range("2014-01-01", "2026-06-30")
    values = 1.5 + np.round(np.cos(np.arange(len(days)) / 200.0), 2)  # percent
    csv = tmp_path / "KBILL.csv"
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "value": values}).to_csv(csv, index=False)
    import_yield(csv, "KBILL", "percent")
    p = dict(SEED, cash_rate="KBILL", start="2016-01-01", end="2022-12-31")
    cfg = config_for(p)
    ref_trades, ref_equity = reference(data_dir, dict(p, cash_rate=load_yield("KBILL")))
    for engine in ("fast", "backtrader"):
        res = run(cfg, engine=engine)
        assert res.fingerprints["yield:KBILL"] == load_yield("KBILL").attrs["fingerprint"]
        assert_same(res.trades, ref_trades, res.equity, ref_equity)
