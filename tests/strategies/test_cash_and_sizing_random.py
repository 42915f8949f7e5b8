"""Random parameter sets with a cash rate and every sizing rule: the fast kernel equals backtrader to 1e-9.

The draw of tests/strategies/test_fastsim.py (exits, timing, costs, targets) plus the cash rate (constant,
negative, a hand-made yield series) and the sizing rule with its keys.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskon.config import parse
from riskon.runner import prepare
from strategies.backtest import StrategyParams, backtest
from strategies.fastsim import fast_backtest
from support.forked import forked_map
from support.parity_cases import assert_same

TARGETS = {
    "single": {"assets": ["BTC-USD"]},
    "basket": {"mode": "basket", "assets": ["binance:BTC/USDT", "binance:ETH/USDT", "binance:SOL/USDT",
                                            "binance:MATIC/USDT"]},
    "top_k": {"mode": "top_k", "assets": ["binance:ETH/USDT", "binance:SOL/USDT", "binance:XRP/USDT",
                                          "binance:ADA/USDT", "binance:TRX/USDT"]},
}  # fmt: skip
WAVE = pd.Series(
    0.02 + 0.03 * np.sin(np.arange(700) / 11.0),
    index=pd.date_range("2014-01-01 21:00", periods=700, freq="7D", tz="UTC"),
    name="WAVE",
)


def random_params(rng: np.random.Generator, mode: str) -> StrategyParams:
    """Exits, timing, costs, a cash rate and a sizing rule, drawn at random."""

    def maybe(values, p_none=0.4):
        return None if rng.random() < p_none else float(rng.choice(values))

    sizing = str(rng.choice(["fraction", "vol_target", "vol_target", "notional"]))
    return StrategyParams(
        signal_delay=int(rng.integers(0, 3)),
        cooldown_days=float(rng.choice([0, 2, 7])),
        trail=maybe([0.05, 0.1, 0.25]),
        stop=maybe([0.05, 0.1], 0.7),
        take_profit=maybe([0.1, 0.3], 0.7),
        max_hold_days=maybe([5, 30, 90]),
        index_exit_dd=maybe([0.03, 0.08], 0.5),
        fraction=float(rng.choice([1.0, 0.5])) if sizing == "fraction" else 1.0,
        fee=float(rng.choice([0.0, 0.001, 0.003])),
        slippage=float(rng.choice([0.0, 0.0005, 0.002])),
        mode=mode,
        k=int(rng.integers(1, 4)),
        momentum_days=int(rng.choice([7, 30])),
        sizing=sizing,
        vol_target=float(rng.choice([0.2, 0.5, 1.5])),
        vol_lookback=int(rng.choice([2, 10, 30, 90])),
        vol_cap=float(rng.choice([1.0, 0.6])),
        notional=float(rng.choice([5_000.0, 60_000.0, 1e6])),
        cash_rate=[0.0, 0.04, -0.01, 0.25, WAVE][int(rng.integers(0, 5))],
    )


@pytest.mark.parametrize(("mode", "count"), [("single", 40), ("basket", 12), ("top_k", 12)])
def test_fast_equals_backtrader_on_random_cash_and_sizing(data_dir, mode, count):
    rng = np.random.default_rng({"single": 181, "basket": 182, "top_k": 183}[mode])
    data = {"start": "2019-06-01", "end": "2025-06-30"} if mode != "single" else {}
    datasets = []
    for rule in ({"confirm_days": 1}, {"confirm_days": 3}):
        _, bars, assets, _ = prepare(parse({"data": data, "target": TARGETS[mode], "strategy": {"params": rule}}))
        datasets.append((bars, assets))
    drawn = [random_params(rng, mode) for _ in range(count)]  # the same draws, in the same order, as one by one

    def slow_of(n: int):
        bars, assets = datasets[n % 2]
        slow = backtest(bars, drawn[n], assets=assets)
        return slow.trades, slow.equity, slow.log

    # backtrader (~all of this test's time) runs in forked workers on CI's second core; checked here, in order
    trades = 0
    for n, (slow_trades, slow_equity, slow_log) in enumerate(forked_map(slow_of, range(count))):
        bars, assets = datasets[n % 2]
        fast = fast_backtest(bars, drawn[n], assets)
        assert_same(fast.trades, slow_trades, fast.equity, slow_equity)
        assert fast.trades["asset"].tolist() == slow_trades["asset"].tolist()
        assert fast.log == [line for line in slow_log if "skipped:" in line or "capped at the equity" in line]
        trades += len(fast.trades)
    assert trades > count * 3
