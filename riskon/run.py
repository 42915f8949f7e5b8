"""A single run: config → cached data → aligned bars → rule events → backtest → metrics.

Each room hands the next a plain object; ``run`` returns a ``Result`` holding
the returns, equity, trades and metrics as pandas objects, and ``write_outputs``
turns it into the files under ``reports/<name>/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from feeds.align import align, session_frame
from feeds.cache import Cache
from feeds.loader import load
from riskon.config import RunConfig
from riskon.metrics import metrics
from strategies import rules
from strategies.backtest import BacktestResult, StrategyParams, backtest, check_accounting
from strategies.signals import bar_events


@dataclass
class Result:
    """Everything one run produced, as pandas objects."""

    config: RunConfig
    sessions: pd.DataFrame
    bars: pd.DataFrame
    backtest: BacktestResult
    benchmark: pd.Series
    metrics: pd.DataFrame
    fingerprints: dict[str, str]

    @property
    def returns(self) -> pd.Series:
        """Strategy returns per calendar day, indexed by bar open date."""
        return self.backtest.returns

    @property
    def equity(self) -> pd.Series:
        """Strategy equity at each bar's close."""
        return self.backtest.equity

    @property
    def trades(self) -> pd.DataFrame:
        """Trades, dated by their fill bars; open trades marked."""
        return self.backtest.trades

    @property
    def benchmark_returns(self) -> pd.Series:
        """Buy-and-hold returns of the same asset over the same dates."""
        prev = self.benchmark.shift(1)
        prev.iloc[0] = self.backtest.initial_cash
        return (self.benchmark / prev - 1.0).rename("buy_and_hold")


def strategy_params(config: RunConfig) -> StrategyParams:
    """The strategy's parameters from a config (bps converted to fractions)."""
    ex, costs, pf, st = config.exits, config.costs, config.portfolio, config.strategy
    return StrategyParams(
        signal_delay=st["signal_delay"],
        cooldown_days=st["cooldown_days"],
        trail=ex["trailing_stop"],
        max_hold_days=ex["max_hold_days"],
        index_exit_dd=ex["index_drawdown"],
        index_exit_below_break=ex["index_below_break"],
        fraction=pf["fraction"],
        fee=costs["fee_bps"] / 1e4,
        slippage=costs["slippage_bps"] / 1e4,
        cash=pf["cash"],
    )


def prepare(
    config: RunConfig, cache: Cache | None = None, announce: Callable[[str], None] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Load and align the data of a config: (sessions with rule output, bars with events, fingerprints)."""
    d = config.data
    index = load(d["index"], "1d", cache=cache, announce=announce)
    asset = load(d["asset"], d["timeframe"], cache=cache, announce=announce)
    fingerprints = {d["index"]: index.attrs["fingerprint"], d["asset"]: asset.attrs["fingerprint"]}
    sessions = session_frame(index, price=d["index_price"])
    rule_out = rules.make(config.strategy["rule"], **config.rule_params).compute(sessions)
    sessions = sessions.join(rule_out)
    asset = _cut(asset, d["start"], d["end"], d["asset"])
    bars = align(asset, sessions.drop(columns=["signal", "level"]), lag=d["publication_lag_hours"])
    bars = bars.join(bar_events(bars, rule_out))
    return sessions, bars, fingerprints


def _cut(frame: pd.DataFrame, start: str | None, end: str | None, symbol: str) -> pd.DataFrame:
    attrs = dict(frame.attrs)
    if start:
        frame = frame[frame.index >= pd.Timestamp(start, tz="UTC")]
    if end:
        frame = frame[frame.index < pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)]
    if len(frame) < 2:
        from feeds.errors import DataError

        raise DataError(f"{symbol} has fewer than two bars between {start or 'the start'} and {end or 'the end'}")
    frame.attrs = attrs
    return frame


def buy_and_hold(bars: pd.DataFrame, params: StrategyParams) -> pd.Series:
    """Equity of buying the asset at the first bar's open (same fee and slippage) and holding it."""
    price = float(bars["open"].iloc[0]) * (1.0 + params.slippage)
    size = params.cash / (price * (1.0 + params.fee)) * (1.0 - 1e-9)
    cash = params.cash - size * price * (1.0 + params.fee)
    return (cash + size * bars["close"]).rename("buy_and_hold")


def exposure(bars: pd.DataFrame, trades: pd.DataFrame) -> float:
    """Share of bars that end holding a position (entry fill bar in, exit fill bar out)."""
    held = np.zeros(len(bars), dtype=bool)
    idx = bars.index
    for t in trades.itertuples():
        a = idx.get_loc(t.entry_time)
        b = idx.get_loc(t.exit_time) + (1 if t.open else 0)
        held[a:b] = True
    return float(held.mean()) if len(held) else float("nan")


def run(
    config: RunConfig, cache: Cache | None = None, announce: Callable[[str], None] | None = None, runonce: bool = True
) -> Result:
    """Run one config end to end and return its ``Result``; accounting invariants are enforced."""
    sessions, bars, fingerprints = prepare(config, cache, announce)
    params = strategy_params(config)
    result = backtest(bars, params, runonce=runonce)
    problems = check_accounting(result)
    if problems:
        raise RuntimeError(f"{config.name}: accounting check failed: {'; '.join(problems)}")
    bh = buy_and_hold(bars, params)
    bh_ret = bh / bh.shift(1).fillna(params.cash) - 1.0
    table = pd.DataFrame(
        {
            "strategy": metrics(result.returns, result.trades, exposure(bars, result.trades), result.fees),
            "buy_and_hold": metrics(bh_ret, None, 1.0, params.fee * (params.cash * (1 - 1e-9)) / (1 + params.fee)),
        }
    )
    table.loc[["trades", "win_rate", "profit_factor", "avg_hold_days"], "buy_and_hold"] = np.nan
    return Result(config, sessions, bars, result, bh, table, fingerprints)


def write_outputs(result: Result, out_dir: str | Path) -> dict[str, Path]:
    """Write trades.csv, equity.csv, metrics.csv and (per config) the tear sheet and chart."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    trades = result.trades.copy()
    trades.insert(0, "asset", result.config.data["asset"])
    paths["trades"] = out / "trades.csv"
    trades.to_csv(paths["trades"], index=False, date_format="%Y-%m-%d %H:%M:%S%z")
    eq = pd.DataFrame(
        {
            "equity": result.equity,
            "returns": result.returns,
            "cash": result.backtest.cash,
            "buy_and_hold": result.benchmark,
        }
    )
    eq.index = eq.index.tz_convert("UTC").tz_localize(None).rename("date")
    paths["equity"] = out / "equity.csv"
    eq.to_csv(paths["equity"])
    paths["metrics"] = out / "metrics.csv"
    result.metrics.to_csv(paths["metrics"], index_label="metric")
    if result.config.report["tearsheet"]:
        from riskon.tearsheet import write_tearsheet

        paths["tearsheet"] = write_tearsheet(result, out / "tearsheet.html")
    if result.config.report["chart"]:
        from riskon.chart import signal_chart

        paths["chart"] = signal_chart(result, out / "signals.png")
    return paths
