"""One backtest of the ``RiskOn`` strategy, returned as plain pandas objects.

The caller hands in the master calendar's bars (index lines and rule events
already computed) and each target coin's prices on that calendar. This module
sets up backtrader (cheat-on-open fills, percentage fees as fractions, slippage
on opens and uncapped) and turns its fills into a trade list (one row per coin
leg) and an equity curve indexed by bar open time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from strategies.cash import run_growth
from strategies.sizing import sizing_notes

if TYPE_CHECKING:
    from strategies.strategy import RiskOn

TRADE_COLUMNS = [
    "position", "asset", "signal_session", "decision_time", "entry_time", "entry_price", "size", "entry_fee",
    "exit_decision_time", "exit_time", "exit_price", "exit_fee", "pnl", "exit_reason", "open",
]  # fmt: skip


@dataclass(frozen=True)
class StrategyParams:
    """Everything the strategy needs beyond the bars: delays, exits, targets, sizing and costs."""

    signal_delay: int = 0
    cooldown_days: float = 0.0
    trail: float | None = None
    stop: float | None = None
    take_profit: float | None = None
    max_hold_days: float | None = None
    index_exit_dd: float | None = None
    index_exit_below_break: bool = False
    exit_rule: bool = False
    fraction: float = 1.0
    fee: float = 0.0
    slippage: float = 0.0
    cash: float = 100_000.0
    mode: str = "single"
    k: int = 3
    momentum_days: int = 30
    liquidity_cap: float | None = None
    intrabar: bool = False
    sizing: str = "fraction"  # fraction | vol_target | notional (strategies.sizing)
    vol_target: float | None = None  # vol_target: target annual volatility of the position
    vol_lookback: int = 30  # vol_target: bars of daily returns, up to and including the decision bar
    vol_cap: float = 1.0  # vol_target: the largest share of equity an entry may buy
    notional: float | None = None  # notional: cash per entry (capped at the equity)
    #: annual rate idle cash earns (strategies.cash): a constant or a yield series (annual fractions,
    #: indexed by known-at stamps); a series is data, so it is left out of comparisons and the repr
    cash_rate: float | pd.Series = field(default=0.0, compare=False, repr=False)


@dataclass
class BacktestResult:
    """A backtest's outputs: equity at each bar's close, trades (one row per leg), fills and turnover."""

    equity: pd.Series
    cash: pd.Series
    trades: pd.DataFrame
    fills: pd.DataFrame
    params: StrategyParams
    initial_cash: float
    log: list[str] = field(default_factory=list)

    @property
    def returns(self) -> pd.Series:
        """Daily (per-bar) returns of the equity, the first against the initial cash."""
        return equity_returns(self.equity, self.initial_cash).rename("returns")

    @property
    def turnover(self) -> float:
        """Total traded notional (sum of price x size over every fill)."""
        return float((self.fills["price"] * self.fills["size"]).sum()) if len(self.fills) else 0.0

    @property
    def fees(self) -> float:
        """Total fees paid."""
        return float(self.fills["fee"].sum()) if len(self.fills) else 0.0

    @property
    def positions(self) -> pd.DataFrame:
        """One row per position (all legs of one entry summed): entry, exit, net pnl, holding days."""
        if self.trades.empty:
            return pd.DataFrame(columns=["entry_time", "exit_time", "pnl", "open"])
        g = self.trades.groupby("position", sort=True)
        return pd.DataFrame(
            {
                "entry_time": g["entry_time"].min(),
                "exit_time": g["exit_time"].max(),
                "pnl": g["pnl"].sum(),
                "open": g["open"].any(),
            }
        )


def equity_returns(equity: pd.Series, initial_cash: float) -> pd.Series:
    """Bar-to-bar returns of an equity curve, the first bar against the starting cash."""
    prev = equity.shift(1)
    prev.iloc[0] = initial_cash
    return equity / prev - 1.0


def spans(assets: dict[str, pd.DataFrame]) -> list[tuple[int, int]]:
    """Per asset: the first and last master-calendar bar where it has a price."""
    out = []
    for frame in assets.values():
        has = np.flatnonzero(frame["close"].notna().to_numpy())
        out.append((int(has[0]), int(has[-1])) if len(has) else (1 << 30, -1))
    return out


def backtest(
    bars: pd.DataFrame,
    params: StrategyParams,
    assets: dict[str, pd.DataFrame] | None = None,
    runonce: bool = True,
    pandas_feed: bool = False,
) -> BacktestResult:
    """Run ``RiskOn`` over the master ``bars`` and the target ``assets`` (default: the bars' own OHLCV)."""
    # backtrader loads here, not with this module: the fast engine uses the types above without it
    from feeds.btcompat import bt
    from feeds.btfeed import make_feed
    from strategies.strategy import RiskOn, RiskOnBroker

    if len(bars) < 2:
        raise ValueError("a backtest needs at least two bars")
    assets = assets if assets is not None else {bars.attrs.get("symbol", "asset"): bars}
    for name, frame in assets.items():
        if not frame.index.equals(bars.index):
            raise ValueError(f"{name}: prices are not on the master calendar")
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True, runonce=runonce, preload=True, maxcpus=1)
    cerebro.broker = RiskOnBroker()
    for name, frame in assets.items():
        cerebro.adddata(make_feed(frame, bars, name=name, pandas=pandas_feed))
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
    kwargs = {k: getattr(params, k) for k in RiskOn.params._getkeys() if hasattr(params, k)}
    growth = run_growth(bars.index, params.cash_rate)  # the same g_i as the fast engine, from the same stamps
    cerebro.addstrategy(RiskOn, spans=spans(assets), cash_growth=growth, **kwargs)
    strat = cerebro.run()[0]
    index = bars.index
    equity = pd.Series(strat.equity, index=index, name="equity")
    cash = pd.Series(strat.cash_path, index=index, name="cash")
    fills = pd.DataFrame(strat.fills)
    names = list(assets)
    if len(fills):
        fills.insert(0, "time", index[fills["bar"].to_numpy()])
        fills.insert(1, "asset", [names[j] for j in fills["feed"]])
    trades = _trades(bars, assets, strat, fills)
    entries = int(trades["position"].nunique()) if len(trades) else 0
    notes = sizing_notes(params.sizing, strat.n_skipped, strat.n_capped, entries, params.vol_lookback, params.notional)
    return BacktestResult(equity, cash, trades, fills, params, params.cash, strat.log + notes)


def _trades(bars: pd.DataFrame, assets: dict[str, pd.DataFrame], strat: RiskOn, fills: pd.DataFrame) -> pd.DataFrame:
    """Pair each leg's entry and exit fills; a leg open at the end is marked at its last close."""
    index = bars.index
    names = list(assets)
    buys = {k: d for k, d in enumerate(d for d in strat.decisions if d["side"] == "buy")}
    records = fills.to_dict("records") if len(fills) else []
    exits = {(f["position"], f["feed"]): f for f in records if f["side"] == "sell"}
    rows = []
    for e in (f for f in records if f["side"] == "buy"):
        dec = buys[e["position"]]
        row = {
            "position": e["position"],
            "asset": names[e["feed"]],
            "signal_session": bars["event_session"].iloc[dec["seen_bar"]],
            "decision_time": index[dec["bar"]],
            "entry_time": index[e["bar"]],
            "entry_price": e["price"],
            "size": e["size"],
            "entry_fee": e["fee"],
        }
        x = exits.get((e["position"], e["feed"]))
        if x is not None:
            row.update(
                exit_decision_time=index[int(x["decision_bar"])],
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
                exit_price=float(assets[names[e["feed"]]]["close"].iloc[-1]),
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
    out["position"] = out["position"].astype("int64")
    for col in ("entry_price", "size", "entry_fee", "exit_price", "exit_fee", "pnl"):
        out[col] = out[col].astype("float64")
    order = {n: i for i, n in enumerate(names)}
    return out.sort_values(["position", "asset"], key=lambda s: s.map(order) if s.name == "asset" else s).reset_index(
        drop=True
    )


def check_accounting(result: BacktestResult) -> list[str]:
    """The invariants every backtest must satisfy; returns the violations (empty when all hold)."""
    problems = []
    if (result.cash < -1e-9 * result.initial_cash).any():
        problems.append(f"cash went below zero (min {result.cash.min():.6f})")
    expected = result.params.fee * result.turnover
    if not np.isclose(result.fees, expected, rtol=1e-9, atol=1e-9):
        problems.append(f"fees {result.fees} != fee rate x turnover {expected}")
    if result.equity.isna().any():
        problems.append(f"equity is NaN on {result.equity.index[result.equity.isna()][0]:%Y-%m-%d}")
    return problems
