"""One backtest of the ``RiskOn`` strategy over an aligned frame, returned as plain pandas objects.

The caller hands in bars with their events already computed; this module sets
up backtrader (cheat-on-open fills, percentage fees as fractions, slippage on
opens and uncapped) and turns its fills into a trade list and an equity curve
indexed by bar open time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from feeds.btcompat import bt
from feeds.btfeed import make_feed
from strategies.strategy import RiskOn

TRADE_COLUMNS = [
    "signal_session", "decision_time", "entry_time", "entry_price", "size", "entry_fee",
    "exit_decision_time", "exit_time", "exit_price", "exit_fee", "pnl", "exit_reason", "open",
]  # fmt: skip


@dataclass(frozen=True)
class StrategyParams:
    """Everything the strategy needs beyond the bars: delays, exits, sizing and costs."""

    signal_delay: int = 0
    cooldown_days: float = 0.0
    trail: float | None = None
    max_hold_days: float | None = None
    index_exit_dd: float | None = None
    index_exit_below_break: bool = False
    fraction: float = 1.0
    fee: float = 0.0
    slippage: float = 0.0
    cash: float = 100_000.0


@dataclass
class BacktestResult:
    """A backtest's outputs: equity at each bar's close, trades, fills and turnover."""

    equity: pd.Series
    cash: pd.Series
    trades: pd.DataFrame
    fills: pd.DataFrame
    params: StrategyParams
    initial_cash: float
    extra: dict = field(default_factory=dict)

    @property
    def returns(self) -> pd.Series:
        """Daily (per-bar) returns of the equity, the first against the initial cash."""
        prev = self.equity.shift(1)
        prev.iloc[0] = self.initial_cash
        return (self.equity / prev - 1.0).rename("returns")

    @property
    def turnover(self) -> float:
        """Total traded notional (sum of price x size over every fill)."""
        return float((self.fills["price"] * self.fills["size"]).sum()) if len(self.fills) else 0.0

    @property
    def fees(self) -> float:
        """Total fees paid."""
        return float(self.fills["fee"].sum()) if len(self.fills) else 0.0


def backtest(bars: pd.DataFrame, params: StrategyParams, runonce: bool = True) -> BacktestResult:
    """Run ``RiskOn`` over ``bars`` (aligned frame with ``event``/``event_level``) in backtrader."""
    if len(bars) < 2:
        raise ValueError("a backtest needs at least two bars")
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True, runonce=runonce, preload=True, maxcpus=1)
    cerebro.adddata(make_feed(bars))
    cerebro.broker.setcash(params.cash)
    cerebro.broker.set_coo(True)
    cerebro.broker.set_coc(False)
    # percabs: the fee is a fraction (0.001 = 10 bps); CommInfoBase's default would read it as percent
    cerebro.broker.addcommissioninfo(bt.CommissionInfo(commission=params.fee, percabs=True))
    if params.slippage:
        # slip the open too, and never cap the fill at the bar's high/low
        cerebro.broker.set_slippage_perc(
            params.slippage, slip_open=True, slip_limit=True, slip_match=True, slip_out=True
        )
    kwargs = {k: getattr(params, k) for k in RiskOn.params._getkeys()}
    cerebro.addstrategy(RiskOn, **kwargs)
    strat = cerebro.run()[0]
    index = bars.index
    equity = pd.Series(strat.equity, index=index, name="equity")
    cash = pd.Series(strat.cash_path, index=index, name="cash")
    fills = pd.DataFrame(strat.fills)
    if len(fills):
        fills.insert(0, "time", index[fills["bar"].to_numpy()])
    trades = _trades(bars, strat, fills)
    return BacktestResult(equity, cash, trades, fills, params, params.cash)


def _trades(bars: pd.DataFrame, strat: RiskOn, fills: pd.DataFrame) -> pd.DataFrame:
    """Pair entry and exit fills into trades; a position open at the end is marked at the last close."""
    index = bars.index
    buys = [d for d in strat.decisions if d["side"] == "buy"]
    sells = [d for d in strat.decisions if d["side"] == "sell"]
    rows = []
    records = fills.to_dict("records") if len(fills) else []
    entries = [f for f in records if f["side"] == "buy"]
    exits = [f for f in records if f["side"] == "sell"]
    for k, e in enumerate(entries):
        dec = buys[k]
        row = {
            "signal_session": bars["event_session"].iloc[dec["seen_bar"]],
            "decision_time": index[dec["bar"]],
            "entry_time": index[e["bar"]],
            "entry_price": e["price"],
            "size": e["size"],
            "entry_fee": e["fee"],
        }
        if k < len(exits):
            x = exits[k]
            row.update(
                exit_decision_time=index[sells[k]["bar"]],
                exit_time=index[x["bar"]],
                exit_price=x["price"],
                exit_fee=x["fee"],
                exit_reason=x["reason"],
                open=False,
            )
        else:
            row.update(
                exit_decision_time=pd.NaT,
                exit_time=index[-1],
                exit_price=float(bars["close"].iloc[-1]),
                exit_fee=0.0,
                exit_reason="open",
                open=True,
            )
        row["pnl"] = (
            row["size"] * row["exit_price"] - row["exit_fee"] - row["size"] * row["entry_price"] - row["entry_fee"]
        )
        rows.append(row)
    out = pd.DataFrame(rows, columns=TRADE_COLUMNS)
    out["open"] = out["open"].astype(bool)
    for col in ("entry_price", "size", "entry_fee", "exit_price", "exit_fee", "pnl"):
        out[col] = out[col].astype("float64")
    return out


def check_accounting(result: BacktestResult) -> list[str]:
    """The invariants every backtest must satisfy; returns the violations (empty when all hold)."""
    problems = []
    if (result.cash < -1e-9 * result.initial_cash).any():
        problems.append(f"cash went below zero (min {result.cash.min():.6f})")
    expected = result.params.fee * result.turnover
    if not np.isclose(result.fees, expected, rtol=1e-9, atol=1e-9):
        problems.append(f"fees {result.fees} != fee rate x turnover {expected}")
    return problems
