"""Parity for baskets and top-k momentum: backtrader against the independent re-implementation.

Each leg's dates and side exact; prices, sizes, fees, PnL and the equity curve to 1e-9 relative.
Also covers fixed stops, take profits, coins whose data ends mid-position, and coins listed late.
"""

from __future__ import annotations

import pandas as pd
import pytest

from feeds.symbols import filename_for
from reference_sim import simulate_multi
from riskon.config import parse
from riskon.runner import run
from strategies.backtest import check_accounting
from test_parity import assert_same

BINANCE = [f"binance:{c}/USDT" for c in ("BTC", "ETH", "SOL", "MATIC", "ADA", "XRP", "TRX")]
YAHOO_ALTS = ["ETH-USD", "LTC-USD", "DOGE-USD", "LINK-USD", "ADA-USD", "MATIC-USD"]

CASES = {
    "basket_binance_trail": dict(mode="basket", assets=BINANCE[:4], confirm_days=2, trail=0.2, fee=0.001,
                                 slippage=0.0005),
    "basket_yahoo_alts_dataend": dict(mode="basket", assets=YAHOO_ALTS, confirm_days=3, max_hold_days=120,
                                      index_exit_dd=0.1, fee=0.001, slippage=0.0005, start="2018-01-01"),
    "topk2_m30": dict(mode="top_k", assets=BINANCE, k=2, momentum_days=30, trail=0.15, fee=0.001, slippage=0.0005),
    "topk3_m90_weekly": dict(mode="top_k", assets=BINANCE, k=3, momentum_days=90, confirm="weekly", stop=0.1,
                             take_profit=0.3, cooldown_days=5, fee=0.002),
    "basket_matic_dataend": dict(mode="basket", assets=["binance:BTC/USDT", "binance:ETH/USDT", "binance:MATIC/USDT"],
                                 confirm_days=1, max_hold_days=1200, fee=0.001, slippage=0.0005, start="2021-10-01"),
    "basket_yahoo_dataend": dict(mode="basket", assets=["BTC-USD", "MATIC-USD", "ADA-USD"], confirm_days=1,
                                 max_hold_days=1500, fee=0.001, slippage=0.0005, start="2021-06-01"),
    "single_stop_tp": dict(mode="single", assets=["BTC-USD"], confirm_days=1, stop=0.08, take_profit=0.25, fee=0.001,
                           slippage=0.001, signal_delay=1),
    "basket_half_fraction": dict(mode="basket", assets=["BTC-USD", "ETH-USD", "SOL-USD"], confirm_days=2, trail=0.25,
                                 fraction=0.5, fee=0.0025, slippage=0.001, start="2019-01-01", end="2025-12-31"),
}  # fmt: skip


def config_for(p: dict):
    """A riskon config carrying the same parameters as the reference's dict."""
    exits = {
        "trailing_stop": p.get("trail"),
        "max_hold_days": p.get("max_hold_days"),
        "index_drawdown": p.get("index_exit_dd"),
        "stop": p.get("stop"),
        "take_profit": p.get("take_profit"),
    }
    return parse(
        {
            "name": "parity_multi",
            "data": {
                "index": "^RUT",
                "asset": p["assets"][0],
                **({"start": p["start"]} if p.get("start") else {}),
                **({"end": p["end"]} if p.get("end") else {}),
            },
            "strategy": {
                "rule": "ath_confirmed",
                "signal_delay": p.get("signal_delay", 0),
                "cooldown_days": float(p.get("cooldown_days", 0)),
                "params": {"confirm_days": p.get("confirm_days", 1), "confirm": p.get("confirm") or "days"},
            },
            "exits": {k: v for k, v in exits.items() if v is not None},
            "target": {
                "mode": p["mode"],
                "assets": p["assets"],
                "k": p.get("k", 3),
                "momentum_days": p.get("momentum_days", 30),
            },
            "costs": {"fee_bps": p.get("fee", 0.0) * 1e4, "slippage_bps": p.get("slippage", 0.0) * 1e4},
            "portfolio": {"fraction": p.get("fraction", 1.0)},
            "report": {"tearsheet": False, "chart": False},
        }
    )


@pytest.fixture(scope="module")
def runs(data_dir):
    return {name: run(config_for(p)) for name, p in CASES.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_multi_asset_matches_reference(data_dir, runs, name):
    p = CASES[name]
    files = [str(data_dir / filename_for(a)) for a in p["assets"]]
    ref_trades, ref_equity = simulate_multi(
        str(data_dir / "RUT.csv"), files, {k: v for k, v in p.items() if k != "assets"}
    )
    res = runs[name]
    stems = {filename_for(a)[:-4]: a for a in p["assets"]}
    ref_trades = ref_trades.assign(asset=ref_trades["asset"].map(stems))
    assert len(ref_trades) >= 4
    assert res.trades["asset"].tolist() == ref_trades["asset"].tolist()
    assert res.trades["position"].tolist() == ref_trades["position"].tolist()
    assert_same(res.trades, ref_trades, res.equity, ref_equity)
    assert check_accounting(res.backtest) == []
    assert res.backtest.fees == pytest.approx(p.get("fee", 0.0) * res.backtest.turnover, rel=1e-12, abs=1e-12)


def test_cases_cover_data_ends_late_listings_and_all_exits(runs):
    reasons = set()
    for res in runs.values():
        reasons |= set(res.trades["exit_reason"])
    assert {"data_end", "trail", "stop", "take_profit", "max_hold", "index_dd", "open"} <= reasons
    basket = runs["basket_binance_trail"].trades
    legs = basket.groupby("position")["asset"].count()
    assert legs.min() < legs.max()  # SOL (listed 2020-08-11) joins baskets only after its first bar
    sol_first = basket.loc[basket["asset"] == "binance:SOL/USDT", "decision_time"].min()
    assert sol_first >= pd.Timestamp("2020-08-11", tz="UTC")
    ended = runs["basket_matic_dataend"].trades
    ended = ended[ended["exit_reason"] == "data_end"]
    assert set(ended["asset"]) == {"binance:MATIC/USDT"}
    assert (ended["exit_time"].dt.strftime("%Y-%m-%d") == "2024-09-10").all()


def test_equity_is_never_nan_before_listings(runs):
    for res in runs.values():
        assert not res.equity.isna().any()
        assert res.equity.index[0] == min(f.first_valid_index() for f in res.assets.values())
