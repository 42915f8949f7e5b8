"""The parity cases shared by the engine tests: parameter dicts, the configs that carry them, the independent
re-implementation's answers, and the comparison that the parity contract (docs/reference/parity.md) defines.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from feeds.symbols import filename_for
from riskon.config import parse
from support.reference_sim import simulate, simulate_multi

SEED = dict(threshold=0.0, confirm_days=3, trail=0.25, index_exit_dd=0.10, fee=0.001, slippage=0.0005)
CASES = {
    "seed": SEED,
    "hold30_k1": dict(confirm_days=1, max_hold_days=30, fee=0.001, slippage=0.0005),
    "weekly_delay_cooldown": dict(confirm="weekly", trail=0.15, cooldown_days=10, signal_delay=1, fee=0.002),
    "thr_break_half": dict(
        threshold=0.01, confirm_days=2, index_exit_below_break=True, max_hold_days=90, fee=0.0025,
        slippage=0.001, fraction=0.5,
    ),
    "lag5_delay2": dict(confirm_days=1, lag_hours=5.0, trail=0.10, signal_delay=2),
    "window_trail": dict(confirm_days=2, trail=0.2, start="2017-01-01", end="2021-12-31", fee=0.0005, slippage=0.0002),
    "value_iwn": dict(index="IWN", confirm_days=2, trail=0.2, index_exit_dd=0.08, fee=0.001, slippage=0.0005),
    "tight_everything": dict(
        confirm_days=1, trail=0.05, max_hold_days=7, index_exit_dd=0.03, cooldown_days=3, fee=0.003, slippage=0.002
    ),
}  # fmt: skip


def config_for(p: dict):
    """A riskon config carrying the same parameters as the reference's dict."""
    return parse(
        {
            "name": "parity",
            "data": {
                "index": p.get("index", "^RUT"),
                "asset": "BTC-USD",
                "publication_lag_hours": p.get("lag_hours", 0.0),
                **({"start": p["start"]} if p.get("start") else {}),
                **({"end": p["end"]} if p.get("end") else {}),
            },
            "strategy": {
                "rule": "ath_confirmed",
                "signal_delay": p.get("signal_delay", 0),
                "cooldown_days": float(p.get("cooldown_days", 0)),
                "params": {
                    "threshold": p.get("threshold", 0.0),
                    "confirm_days": p.get("confirm_days", 1),
                    "confirm": p.get("confirm") or "days",
                },
            },
            "exits": {
                k: v
                for k, v in {
                    "trailing_stop": p.get("trail"),
                    "max_hold_days": p.get("max_hold_days"),
                    "index_drawdown": p.get("index_exit_dd"),
                    "index_below_break": p.get("index_exit_below_break", False),
                }.items()
                if v is not None
            },
            "costs": {"fee_bps": p.get("fee", 0.0) * 1e4, "slippage_bps": p.get("slippage", 0.0) * 1e4},
            "portfolio": {"cash": p.get("cash", 100_000.0), "fraction": p.get("fraction", 1.0), **portfolio_keys(p)},
            "report": {"tearsheet": False, "chart": False},
        }
    )


#: [portfolio] keys of issue 18 a parity dict may carry (the reference takes them under the same names).
PORTFOLIO_KEYS = ("cash_rate", "sizing", "vol_target", "vol_lookback", "vol_cap", "notional")


def portfolio_keys(p: dict) -> dict:
    """The cash-rate and sizing keys of a parity dict, as a config's [portfolio] takes them."""
    return {k: p[k] for k in PORTFOLIO_KEYS if k in p}


def reference(data_dir, p: dict):
    """The independent re-implementation's trades and equity for a single-asset parameter dict ``p``."""
    index_file = {"^RUT": "RUT.csv", "IWN": "IWN.csv"}[p.get("index", "^RUT")]
    params = {k: v for k, v in p.items() if k != "index"}
    return simulate(str(data_dir / index_file), str(data_dir / "BTC-USD.csv"), params)


def assert_same(ours: pd.DataFrame, ref: pd.DataFrame, eq_ours: pd.Series, eq_ref: pd.Series) -> None:
    """The parity contract: dates, sides and reasons exact; prices, sizes, fees, PnL and equity to 1e-9 relative."""
    assert len(ours) == len(ref), f"{len(ours)} trades vs reference {len(ref)}"
    for col in ("signal_session", "decision_time", "entry_time", "exit_decision_time", "exit_time", "exit_reason"):
        a, b = ours[col].tolist(), ref[col].tolist()
        assert [str(x) for x in a] == [str(x) for x in b], col
    assert ours["open"].tolist() == ref["open"].tolist()
    for col in ("entry_price", "size", "entry_fee", "exit_price", "exit_fee", "pnl"):
        np.testing.assert_allclose(ours[col].to_numpy(), ref[col].to_numpy(dtype="float64"), rtol=1e-9, err_msg=col)
    assert eq_ours.index.equals(eq_ref.index)
    np.testing.assert_allclose(eq_ours.to_numpy(), eq_ref.to_numpy(), rtol=1e-9)


BINANCE = [f"binance:{c}/USDT" for c in ("BTC", "ETH", "SOL", "MATIC", "ADA", "XRP", "TRX")]
YAHOO_ALTS = ["ETH-USD", "LTC-USD", "DOGE-USD", "LINK-USD", "ADA-USD", "MATIC-USD"]

MULTI_CASES = {
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


def multi_config_for(p: dict):
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
            "portfolio": {"fraction": p.get("fraction", 1.0), **portfolio_keys(p)},
            "report": {"tearsheet": False, "chart": False},
        }
    )


def multi_reference(data_dir, p: dict):
    """The independent re-implementation's legs (assets named as riskon names them) and equity for ``p``."""
    index_file = {"^RUT": "RUT.csv", "IWN": "IWN.csv"}[p.get("index", "^RUT")]
    assets = p.get("assets", ["BTC-USD"])
    files = [str(data_dir / filename_for(a)) for a in assets]
    params = {k: v for k, v in p.items() if k not in ("index", "assets")}
    trades, equity = simulate_multi(str(data_dir / index_file), files, params)
    stems = {filename_for(a)[:-4]: a for a in assets}
    return trades.assign(asset=trades["asset"].map(stems)), equity
