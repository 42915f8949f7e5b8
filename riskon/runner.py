"""A single run: config → cached data → aligned bars → rule events → backtest → metrics.

Each room hands the next a plain object; ``run`` returns a ``Result`` holding
the returns, equity, trades and metrics as pandas objects. Turning it into files
and pages is ``riskon.pages.run_page``'s job; the API's ``Result`` adds those methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from feeds.align import align, session_frame
from feeds.cache import Cache
from feeds.errors import DataError
from feeds.frame import timeframe_delta
from feeds.loader import load
from feeds.symbols import split_exchange_symbol
from riskon.config import RunConfig, entry_spec
from riskon.metrics import metrics
from strategies import compose
from strategies.backtest import BacktestResult, StrategyParams, backtest, check_accounting, equity_returns
from strategies.sizing import SIZE_HAIRCUT


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
    assets: dict[str, pd.DataFrame]

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
        return equity_returns(self.benchmark, self.backtest.initial_cash).rename("buy_and_hold")

    @property
    def rule_text(self) -> str:
        """The entry rule (or composed expression) with its parameters, in one line."""
        return compose.describe(compose.build(entry_spec(self.config.strategy, self.config.rule_params)))


def strategy_params(config: RunConfig) -> StrategyParams:
    """The strategy's parameters from a config (bps converted to fractions)."""
    ex, costs, pf, st, tg = config.exits, config.costs, config.portfolio, config.strategy, config.target
    return StrategyParams(
        signal_delay=st["signal_delay"],
        cooldown_days=st["cooldown_days"],
        trail=ex["trailing_stop"],
        stop=ex["stop"],
        take_profit=ex["take_profit"],
        max_hold_days=ex["max_hold_days"],
        index_exit_dd=ex["index_drawdown"],
        index_exit_below_break=ex["index_below_break"],
        exit_rule=ex["rule"] is not None,
        mode=tg["mode"],
        k=tg["k"],
        momentum_days=tg["momentum_days"],
        liquidity_cap=tg["liquidity_cap"],
        intrabar=ex["intrabar"],
        fraction=pf["fraction"],
        fee=costs["fee_bps"] / 1e4,
        slippage=costs["slippage_bps"] / 1e4,
        cash=pf["cash"],
    )


def prepare(
    config: RunConfig, cache: Cache | None = None, announce: Callable[[str], None] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame], dict[str, str]]:
    """Load and align a config's data.

    Returns the index sessions (with the entry rule's per-session output where
    it has one), the master bars (the first target's prices, the index lines,
    ``event``/``event_level``/``event_session`` and ``exit_signal``), every
    target's prices on the master calendar, and the data fingerprints.
    """
    d, tf = config.data, config.data["timeframe"]
    index = load(d["index"], "1d", cache=cache, announce=announce)
    fingerprints = {d["index"]: index.attrs["fingerprint"]}
    raw = {}
    for sym in config.target["assets"]:
        frame = load(sym, tf, cache=cache, announce=announce)
        fingerprints[sym] = frame.attrs["fingerprint"]
        raw[sym] = _cut(frame, d["start"], d["end"], sym)
    return (*build_bars(config, index, raw), fingerprints)


def build_bars(
    config: RunConfig, index: pd.DataFrame, raw: dict[str, pd.DataFrame]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame]]:
    """Sessions, master bars and target prices from already-loaded frames (see ``prepare``)."""
    d, tf = config.data, config.data["timeframe"]
    sessions = session_frame(index, price=d["index_price"])
    step = timeframe_delta(tf)
    first = min(f.index[0] for f in raw.values())
    last = max(f.index[-1] for f in raw.values())
    calendar = pd.date_range(first, last, freq=step).as_unit("us").rename("time")
    master = pd.DataFrame(index=calendar)
    master.attrs.update(timeframe=tf)
    for sym, f in raw.items():
        expected = pd.date_range(f.index[0], f.index[-1], freq=step)
        missing = expected.difference(f.index)
        if len(missing):
            shown = ", ".join(missing[:5].strftime("%Y-%m-%d %H:%M"))
            raise DataError(
                f"{sym} has {len(missing)} missing bar(s) inside its history ({shown}); a fill there would be "
                "undefined: import a complete series or trade another one"
            )
    assets = {sym: f[["open", "high", "low", "close", "volume"]].reindex(calendar) for sym, f in raw.items()}
    for sym, f in assets.items():
        f["volume"] = base_volume(sym, f)
    lead = next(iter(assets))
    bars = align(assets[lead], sessions, lag=d["publication_lag_hours"])
    bars.attrs.update(symbol=lead, timeframe=tf)
    entry = compose.build(entry_spec(config.strategy, config.rule_params), "[strategy.entry]")
    bars = bars.join(entry.evaluate(sessions, bars).frame(bars.index))
    exit_rule = config.exits["rule"]
    bars["exit_signal"] = compose.build(exit_rule).evaluate(sessions, bars).on if exit_rule else False
    leaves = [leaf for leaf in entry.leaves() if leaf.rule.on == "index" and leaf.rule.kind == "event"]
    if leaves:
        sessions = sessions.join(leaves[0].session_output(sessions)[["signal"]].rename(columns={"signal": "signal"}))
    return sessions, bars, assets


def base_volume(symbol: str, frame: pd.DataFrame) -> pd.Series:
    """Bar volume in units of the coin: Yahoo's ``-USD`` pairs quote volume in USD, exchanges in the coin."""
    if split_exchange_symbol(symbol) is None and symbol.endswith("-USD"):
        return frame["volume"] / frame["close"]
    return frame["volume"]


def _cut(frame: pd.DataFrame, start: str | None, end: str | None, symbol: str) -> pd.DataFrame:
    attrs = dict(frame.attrs)
    if start:
        frame = frame[frame.index >= pd.Timestamp(start, tz="UTC")]
    if end:
        frame = frame[frame.index < pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)]
    if len(frame) < 2:
        raise DataError(f"{symbol} has fewer than two bars between {start or 'the start'} and {end or 'the end'}")
    frame.attrs = attrs
    return frame


def buy_and_hold(assets: dict[str, pd.DataFrame], params: StrategyParams) -> pd.Series:
    """Equity of buying the targets at the first bar's open (equal weight, same costs) and holding them.

    Coins without a price on the first bar are left out; a coin whose data ends
    is turned into cash at its last close (with the fee), as the strategy does.
    """
    first = {s: f for s, f in assets.items() if not np.isnan(f["open"].iloc[0])}
    if not first:
        first = dict(list(assets.items())[:1])
    n_bars = len(next(iter(assets.values())))
    cash = np.full(n_bars, params.cash)
    value = np.zeros(n_bars)
    budget = params.cash / len(first)
    for frame in first.values():
        opens = frame["open"].to_numpy()
        start = int(np.flatnonzero(~np.isnan(opens))[0])
        price = opens[start] * (1.0 + params.slippage)
        size = budget / (price * (1.0 + params.fee)) * (1.0 - SIZE_HAIRCUT)
        cash -= size * price * (1.0 + params.fee)
        close = frame["close"].to_numpy()
        last = int(np.flatnonzero(~np.isnan(close))[-1])
        value[start : last + 1] += size * close[start : last + 1]
        if last < n_bars - 1:
            cash[last:] += size * close[last] * (1.0 - params.fee)
            value[last] -= size * close[last]
    index = next(iter(assets.values())).index
    return pd.Series(cash + value, index=index, name="buy_and_hold")


def exposure(bars: pd.DataFrame, positions: pd.DataFrame) -> float:
    """Share of bars that end holding a position (entry fill bar in, exit fill bar out)."""
    held = np.zeros(len(bars), dtype=bool)
    idx = bars.index
    for p in positions.itertuples():
        a = idx.get_loc(p.entry_time)
        b = idx.get_loc(p.exit_time) + (1 if p.open else 0)
        held[a:b] = True
    return float(held.mean()) if len(held) else float("nan")


def run(
    config: RunConfig,
    cache: Cache | None = None,
    announce: Callable[[str], None] | None = None,
    runonce: bool = True,
    engine: str = "backtrader",
) -> Result:
    """Run one config end to end and return its ``Result``; accounting invariants are enforced."""
    sessions, bars, assets, fingerprints = prepare(config, cache, announce)
    return run_prepared(config, sessions, bars, assets, fingerprints, runonce=runonce, engine=engine)


def run_prepared(
    config: RunConfig,
    sessions: pd.DataFrame,
    bars: pd.DataFrame,
    assets: dict[str, pd.DataFrame],
    fingerprints: dict[str, str],
    runonce: bool = True,
    engine: str = "backtrader",
) -> Result:
    """The backtest and metrics of a config whose data is already aligned (sweeps reuse the data).

    ``engine`` is ``"backtrader"`` or ``"fast"`` (the vectorised twin, held equal by the parity tests).
    """
    params = strategy_params(config)
    if engine == "fast":
        # numba loads only for the fast engine
        from strategies.fastsim import fast_backtest

        result = fast_backtest(bars, params, assets)
    elif engine == "backtrader":
        result = backtest(bars, params, assets=assets, runonce=runonce)
    else:
        raise ValueError(f"unknown engine {engine!r}; valid: backtrader, fast")
    problems = check_accounting(result)
    if problems:
        raise RuntimeError(f"{config.name}: accounting check failed: {'; '.join(problems)}")
    bh = buy_and_hold(assets, params)
    bh_ret = equity_returns(bh, params.cash)
    positions = result.positions
    table = pd.DataFrame(
        {
            "strategy": metrics(result.returns, positions, exposure(bars, positions), result.fees),
            "buy_and_hold": metrics(bh_ret, None, 1.0, np.nan),
        }
    )
    table.loc[["trades", "win_rate", "profit_factor", "avg_hold_days", "fees"], "buy_and_hold"] = np.nan
    return Result(config, sessions, bars, result, bh, table, fingerprints, assets)
