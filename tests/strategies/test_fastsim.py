"""Parity of the vectorised simulator: against the independent reference and against backtrader.

Trade count, dates, sides and reasons exact; prices, sizes, fees, PnL and equity to 1e-9 relative,
on the fixed parity cases and on a few hundred random parameter sets (BTC, a basket, top-k).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskon.runner import prepare, strategy_params
from strategies.backtest import StrategyParams, backtest
from strategies.fastsim import fast_backtest, is_supported
from support.forked import forked_map
from support.parity_cases import CASES, MULTI_CASES, assert_same, config_for, multi_config_for, multi_reference

ALL_CASES = {**{f"single:{k}": (config_for, v) for k, v in CASES.items()},
             **{f"multi:{k}": (multi_config_for, v) for k, v in MULTI_CASES.items()}}  # fmt: skip


@pytest.mark.parametrize("name", list(ALL_CASES))
def test_fast_path_matches_reference(data_dir, name):
    make_config, p = ALL_CASES[name]
    cfg = make_config(p)
    _, bars, assets, _ = prepare(cfg)
    fast = fast_backtest(bars, strategy_params(cfg), assets)
    ref_trades, ref_equity = multi_reference(data_dir, p)
    assert fast.trades["asset"].tolist() == ref_trades["asset"].tolist()
    assert_same(fast.trades, ref_trades, fast.equity, ref_equity)
    assert fast.fees == pytest.approx(p.get("fee", 0.0) * fast.turnover, rel=1e-12, abs=1e-12)


def _random_params(rng: np.random.Generator, mode: str) -> StrategyParams:
    def maybe(values, p_none=0.4):
        return None if rng.random() < p_none else float(rng.choice(values))

    return StrategyParams(
        signal_delay=int(rng.integers(0, 3)),
        cooldown_days=float(rng.choice([0, 0, 2, 7, 30])),
        trail=maybe([0.05, 0.1, 0.15, 0.25, 0.4]),
        stop=maybe([0.05, 0.1, 0.2], 0.6),
        take_profit=maybe([0.1, 0.3, 1.0], 0.6),
        max_hold_days=maybe([5, 30, 90, 365]),
        index_exit_dd=maybe([0.03, 0.08, 0.15], 0.5),
        index_exit_below_break=bool(rng.random() < 0.3),
        fraction=float(rng.choice([1.0, 1.0, 0.5, 0.25])),
        fee=float(rng.choice([0.0, 0.0005, 0.001, 0.003])),
        slippage=float(rng.choice([0.0, 0.0005, 0.002])),
        mode=mode,
        k=int(rng.integers(1, 5)),
        momentum_days=int(rng.choice([7, 30, 90])),
    )


def _data(mode: str):
    from riskon.config import parse

    target = {
        "single": {"assets": ["BTC-USD"]},
        "basket": {"mode": "basket", "assets": ["binance:BTC/USDT", "binance:ETH/USDT", "binance:SOL/USDT",
                                                "binance:MATIC/USDT", "binance:DOGE/USDT"]},
        "top_k": {"mode": "top_k", "assets": ["binance:ETH/USDT", "binance:SOL/USDT", "binance:XRP/USDT",
                                              "binance:ADA/USDT", "binance:MATIC/USDT", "binance:TRX/USDT"]},
    }[mode]  # fmt: skip
    data = {"start": "2019-06-01", "end": "2025-06-30"} if mode != "single" else {}
    out = {}
    for rule in ({"confirm_days": 1}, {"confirm_days": 3, "threshold": 0.005}, {"confirm": "weekly"}):
        cfg = parse({"data": data, "target": target, "strategy": {"params": rule}})
        _, bars, assets, _ = prepare(cfg)
        out[str(rule)] = (bars, assets)
    return out


@pytest.mark.parametrize(("mode", "count"), [("single", 120), ("basket", 30), ("top_k", 30)])
def test_fast_path_matches_backtrader_on_random_parameters(data_dir, mode, count):
    rng = np.random.default_rng({"single": 1, "basket": 2, "top_k": 3}[mode])
    datasets = list(_data(mode).values())
    drawn = [_random_params(rng, mode) for _ in range(count)]  # the same draws, in the same order, as one by one

    def slow_of(n: int):
        bars, assets = datasets[n % len(datasets)]
        slow = backtest(bars, drawn[n], assets=assets)
        return slow.trades, slow.equity

    # backtrader (~all of this test's time) runs in forked workers on CI's second core; checked here, in order
    trades_seen = 0
    for n, (slow_trades, slow_equity) in enumerate(forked_map(slow_of, range(count))):
        bars, assets = datasets[n % len(datasets)]
        fast = fast_backtest(bars, drawn[n], assets)
        assert_same(fast.trades, slow_trades, fast.equity, slow_equity)
        assert fast.trades["asset"].tolist() == slow_trades["asset"].tolist()
        trades_seen += len(fast.trades)
    assert trades_seen > count * 3


def test_intrabar_is_not_simulated():
    assert is_supported(StrategyParams(intrabar=True))[0] is False
    assert is_supported(StrategyParams())[0] is True


def test_no_fastmath():
    from strategies import fastsim

    assert not fastsim._simulate.targetoptions.get("fastmath", False)
    assert pd.isna(np.nan) and fastsim._nan(None) != fastsim._nan(None)
