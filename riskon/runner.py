"""A single run: config → cached data → aligned bars → rule events → backtest → metrics.

Each room hands the next a plain object; ``run`` returns a ``Result`` holding
the returns, equity, trades and metrics as pandas objects. Turning it into files
and pages is ``riskon.pages.run_page``'s job; the API's ``Result`` adds those methods.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from feeds.align import align, session_frame
from feeds.cache import Cache
from feeds.errors import DataError
from feeds.frame import timeframe_delta
from feeds.loader import load
from feeds.symbols import split_exchange_symbol
from feeds.yields import load_yield
from riskon.config import RATE_KEYS, RunConfig, benchmark_label, benchmark_text, entry_spec
from riskon.given import SIGNAL_SUPPLIED, supplied_events
from riskon.lookahead_gate import ALLOWED, LookaheadGate
from riskon.metrics import metrics, rates_text, rf_per_bar
from strategies import compose
from strategies.backtest import BacktestResult, StrategyParams, backtest, check_accounting, equity_returns
from strategies.cash import run_growth
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
    benchmark_symbol: str | None = None  # the ``[report] benchmark`` series used; None: buy-and-hold of the targets
    signal_supplied: bool = False  # the entry signal was handed in (``run(signal=...)``): not lookahead-checked
    lookahead_failed: str | None = None  # the lookahead check's failure line when the run was allowed anyway
    risk_free_returns: np.ndarray | None = None  # rf per bar the metrics used ([portfolio] risk_free); see ``rf``

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
        """Daily returns of the benchmark (``benchmark_text``) over the same dates."""
        return equity_returns(self.benchmark, self.backtest.initial_cash).rename("buy_and_hold")

    @property
    def rf(self) -> np.ndarray:
        """The risk-free asset's return over each bar (``[portfolio] risk_free``): what Sharpe is in excess of."""
        if self.risk_free_returns is not None:
            return self.risk_free_returns
        step = timeframe_delta(self.config.data["timeframe"])
        return rf_per_bar(self.returns.index, config_rate(self.config, "risk_free"), step)

    @property
    def rates_text(self) -> str:
        """The rates the run used, in words (every page states them): cash rate and risk-free rate."""
        return rates_text(self.config.portfolio)

    @property
    def benchmark_text(self) -> str:
        """What the benchmark is, in words (named on every page that shows it)."""
        return benchmark_text(self.config, self.benchmark_symbol)

    @property
    def benchmark_label(self) -> str:
        """The benchmark's short name for legends and columns, e.g. ``buy & hold BTC-USD``."""
        return benchmark_label(self.config, self.benchmark_symbol)

    @property
    def fill_bar_exits(self) -> int:
        """Positions that met an exit condition on their entry's fill bar (see ``fill_bar_exits``)."""
        return fill_bar_exits(self.trades)

    @property
    def fill_bar_warning(self) -> str | None:
        """One line when some entries met an exit condition on their fill bar, else None (run summary, pages)."""
        n = self.fill_bar_exits
        if not n:
            return None
        return (
            f"{n} of {int(self.trades['position'].nunique())} entries already met an exit condition (index "
            "drawdown, index below break or exit rule) at the close of their fill bar and were sold at the next "
            "open: one-day round trips that pay fees and slippage twice; make the entry require what the exit "
            "checks, or loosen that exit"
        )

    @property
    def rule_text(self) -> str:
        """The entry rule (or composed expression) with its parameters, in one line; a supplied signal says so."""
        mark = f" [{ALLOWED}: {self.lookahead_failed}]" if self.lookahead_failed else ""
        if self.signal_supplied:
            return SIGNAL_SUPPLIED + mark
        return compose.describe(compose.build(entry_spec(self.config.strategy, self.config.rule_params))) + mark


def load_rates(config: RunConfig, cache: Cache | None = None) -> dict[str, pd.Series]:
    """The yield series a config's ``[portfolio] cash_rate`` and ``risk_free`` name (none for constants), by symbol.

    Each is indexed by its known-at stamps with the run's publication lag (``feeds.yields.load_yield``).
    """
    symbols = [config.portfolio[k] for k in RATE_KEYS if isinstance(config.portfolio.get(k), str)]
    return {sym: load_yield(sym, config.data["publication_lag_hours"], cache) for sym in dict.fromkeys(symbols)}


def config_rate(config: RunConfig, key: str, rates: Mapping[str, pd.Series] | None = None) -> float | pd.Series:
    """A ``[portfolio]`` rate (``RATE_KEYS``) as ``strategies.cash`` takes it: the constant, or the yield
    series it names (from ``rates`` when there, else ``load_rates`` from the default cache)."""
    rate = config.portfolio[key]
    if not isinstance(rate, str):
        return float(rate)
    return rates[rate] if rates and rate in rates else load_rates(config)[rate]


def strategy_params(config: RunConfig, rates: Mapping[str, pd.Series] | None = None) -> StrategyParams:
    """The strategy's parameters from a config (bps converted to fractions).

    A ``cash_rate`` that names a yield series is taken from ``rates`` (``load_rates``), else loaded
    from the default cache.
    """
    ex, costs, pf, st, tg = config.exits, config.costs, config.portfolio, config.strategy, config.target
    cash_rate = pf["cash_rate"]
    if isinstance(cash_rate, str):
        cash_rate = rates[cash_rate] if rates and cash_rate in rates else load_rates(config)[cash_rate]
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
        sizing=pf["sizing"],
        vol_target=pf["vol_target"],
        vol_lookback=pf["vol_lookback"],
        vol_cap=pf["vol_cap"],
        notional=pf["notional"],
        cash_rate=cash_rate,
    )


def prepare(
    config: RunConfig,
    cache: Cache | None = None,
    announce: Callable[[str], None] | None = None,
    given: Mapping[str, pd.DataFrame] | None = None,
    signal: pd.Series | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame], dict[str, str]]:
    """Load and align a config's data.

    Returns the index sessions (with the entry rule's per-session output where
    it has one), the master bars (the first target's prices, the index lines,
    ``event``/``event_level``/``event_session`` and ``exit_signal``), every
    target's prices on the master calendar, and the data fingerprints.
    ``given``: validated frames by symbol (``riskon.given.given_frames``) used instead of the cache;
    ``signal``: a supplied entry signal used instead of the config's rule (see ``build_bars``).
    """
    d, tf = config.data, config.data["timeframe"]
    given = given or {}

    def series(symbol: str, timeframe: str) -> pd.DataFrame:
        found = given.get(symbol)
        return found if found is not None else load(symbol, timeframe, cache=cache, announce=announce)

    index = series(d["index"], "1d")
    fingerprints = {d["index"]: index.attrs["fingerprint"]}
    for key in RATE_KEYS:  # a rate named by a yield symbol: its data is part of the run's identity
        if isinstance(config.portfolio.get(key), str):
            sym = config.portfolio[key]
            fingerprints[f"yield:{sym}"] = load_yield(sym, cache=cache).attrs["fingerprint"]  # as sweeps.keys names it
    raw = {}
    for sym in config.target["assets"]:
        frame = series(sym, tf)
        fingerprints[sym] = frame.attrs["fingerprint"]
        raw[sym] = _cut(frame, d["start"], d["end"], sym)
    return (*build_bars(config, index, raw, signal=signal), fingerprints)


def build_bars(
    config: RunConfig, index: pd.DataFrame, raw: dict[str, pd.DataFrame], signal: pd.Series | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame]]:
    """Sessions, master bars and target prices from already-loaded frames (see ``prepare``).

    ``signal``: a boolean Series on index sessions that replaces the config's entry rule
    (``riskon.given.session_signal``); it becomes bar events exactly as a rule's output does.
    """
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
    if signal is not None:
        events, sessions_out = supplied_events(config, sessions, bars, signal)
        bars = bars.join(events)
    else:
        entry = compose.build(entry_spec(config.strategy, config.rule_params), "[strategy.entry]")
        bars = bars.join(entry.evaluate(sessions, bars).frame(bars.index))
    exit_rule = config.exits["rule"]
    bars["exit_signal"] = compose.build(exit_rule).evaluate(sessions, bars).on if exit_rule else False
    if signal is not None:
        return sessions_out, bars, assets
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
    """Equity of buying every target at its own first bar's open (equal cash each, same costs) and holding it.

    The cash is split equally over all targets up front; a coin listed later keeps
    its share as cash until its first bar, and is bought at that bar's open. A coin
    whose data ends is sold at its last close (with the fee, as the strategy does)
    and the proceeds stay cash. This is a portfolio bought once, not a daily mean
    of returns (which would rebalance every day). Its cash (the sizing haircut, a later
    coin's share before its first bar, a sold coin's proceeds) earns ``params.cash_rate``
    as the strategy's does (``strategies.cash``).
    """
    index = next(iter(assets.values())).index
    n_bars = len(index)
    cash = np.full(n_bars, params.cash)
    value = np.zeros(n_bars)
    buys = np.zeros(n_bars)  # cash paid at each bar's open
    sales = np.zeros(n_bars)  # cash received at each bar's close
    budget = params.cash / len(assets)
    for frame in assets.values():
        opens = frame["open"].to_numpy(dtype="float64")
        close = frame["close"].to_numpy(dtype="float64")
        have = np.flatnonzero(~np.isnan(opens))
        if not len(have):
            continue  # no bar in the window: its share stays cash
        start = int(have[0])
        price = opens[start] * (1.0 + params.slippage)
        size = budget / (price * (1.0 + params.fee)) * (1.0 - SIZE_HAIRCUT)
        cash[start:] -= size * price * (1.0 + params.fee)
        buys[start] += size * price * (1.0 + params.fee)
        last = int(np.flatnonzero(~np.isnan(close))[-1])
        value[start : last + 1] += size * close[start : last + 1]
        if last < n_bars - 1:
            cash[last:] += size * close[last] * (1.0 - params.fee)
            sales[last] += size * close[last] * (1.0 - params.fee)
            value[last] -= size * close[last]
    growth = run_growth(index, params.cash_rate)
    if growth.any():  # interest on the cash held through each bar (after its opening buys, before its sales)
        c = params.cash
        for i in range(n_bars):
            c -= buys[i]
            c += c * growth[i]
            c += sales[i]
            cash[i] = c
    return pd.Series(cash + value, index=index, name="buy_and_hold")


def load_benchmark(
    symbol: str,
    timeframe: str,
    calendar: pd.DatetimeIndex,
    cache: Cache | None = None,
    announce: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """A ``[report] benchmark`` series on a run's calendar: its bars inside the run's window, by UTC date.

    A bar is placed on the run's bar of its UTC date (an index session at 04:00 UTC on
    the bar of that day); a day without a bar (a weekend for an index) keeps the last
    close, so the holding is valued every day; before its first and after its last bar
    in the window there is no price.
    """
    frame = load(symbol, timeframe, cache=cache, announce=announce)
    first, last = calendar[0], calendar[-1]
    days = frame.index.floor("D")
    inside = frame[(days >= first.floor("D")) & (days <= last.floor("D"))]
    if len(inside) < 2:
        raise DataError(
            f"[report] benchmark {symbol} has fewer than two bars between {first:%Y-%m-%d} and {last:%Y-%m-%d} "
            "(the run's window); pick a series that covers it"
        )
    inside = inside[~inside.index.floor("D").duplicated(keep="last")]
    on = inside[["open", "high", "low", "close"]].set_axis(inside.index.floor("D").as_unit(calendar.unit))
    on = on.reindex(calendar.floor("D")).set_axis(calendar)
    on["close"] = on["close"].ffill(limit_area="inside")
    on.attrs.update(symbol=symbol, fingerprint=frame.attrs.get("fingerprint", ""))
    return on


#: Exit reasons that are states of the market rather than of the position's own path: one that holds at the
#: close of the entry's fill bar was (as a rule) already true when the entry was decided.
STATE_EXITS = ("index_dd", "index_break", "rule")


def fill_bar_exits(trades: pd.DataFrame) -> int:
    """Positions sold because an exit condition already held at the close of the bar they were bought on.

    The exit was decided at the close of the entry's fill bar for an index drawdown, an
    index close at or below the broken level, or the exit rule: a one-bar round trip
    that pays the fees and slippage twice for nothing (e.g. an entry rule that fires while
    the index is deep below its high, with an ``index_drawdown`` exit). Counted per
    position (a basket's legs are one position).
    """
    if not len(trades):
        return 0
    hit = trades[
        ~trades["open"].astype(bool)
        & (trades["exit_decision_time"] == trades["entry_time"])
        & trades["exit_reason"].isin(STATE_EXITS)
    ]
    return int(hit["position"].nunique())


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
    given: Mapping[str, pd.DataFrame] | None = None,
    signal: pd.Series | None = None,
    allow_lookahead: bool = False,
) -> Result:
    """Run one config end to end and return its ``Result``; accounting invariants are enforced.

    With ``[report] benchmark`` the benchmark is that series, bought at its first open in the run's window.
    ``given`` and ``signal`` as in ``prepare``; a run with a supplied signal is marked ``signal_supplied``.
    Every rule the run uses passes the lookahead gate first (``riskon.lookahead_gate``): a rule that peeks
    raises ``LookaheadError``, unless ``allow_lookahead`` (the result is then marked ``lookahead_failed``).
    """
    sessions, bars, assets, fingerprints = prepare(config, cache, announce, given=given, signal=signal)
    rates = load_rates(config, cache)
    fingerprints.update({f"yield:{s}": str(r.attrs.get("fingerprint", "")) for s, r in rates.items()})
    gate = LookaheadGate(allow=allow_lookahead, announce=announce)
    failed = gate.check(config, fingerprints, lambda: (sessions, bars), entry=signal is None)
    symbol = config.report.get("benchmark")
    bench = None
    if symbol is not None:
        bench = load_benchmark(symbol, config.data["timeframe"], bars.index, cache=cache, announce=announce)
    result = run_prepared(config, sessions, bars, assets, fingerprints, runonce=runonce, engine=engine,
                          benchmark=bench, rates=rates)  # fmt: skip
    result.signal_supplied = signal is not None
    result.lookahead_failed = "; ".join(failed) or None
    return result


def run_prepared(
    config: RunConfig,
    sessions: pd.DataFrame,
    bars: pd.DataFrame,
    assets: dict[str, pd.DataFrame],
    fingerprints: dict[str, str],
    runonce: bool = True,
    engine: str = "backtrader",
    benchmark: pd.DataFrame | None = None,
    rates: Mapping[str, pd.Series] | None = None,
) -> Result:
    """The backtest and metrics of a config whose data is already aligned (sweeps reuse the data).

    ``engine`` is ``"backtrader"`` or ``"fast"`` (the vectorised twin, held equal by the parity tests).
    ``benchmark``: prices of the ``[report] benchmark`` series on the bars' calendar (``load_benchmark``);
    without it the benchmark is the buy-and-hold of the targets, as sweeps store it.
    ``rates``: the yield series of a ``cash_rate`` symbol (``load_rates``; loaded here when not given).
    """
    params = strategy_params(config, rates)
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
    symbol = None if benchmark is None else str(benchmark.attrs["symbol"])
    bh = buy_and_hold(assets if benchmark is None else {symbol: benchmark}, params)
    bh_ret = equity_returns(bh, params.cash)
    positions = result.positions
    # Sharpe and Sortino of both in excess of the risk-free asset's return over each bar (riskon.metrics)
    step = timeframe_delta(config.data["timeframe"])
    rf = rf_per_bar(result.returns.index, config_rate(config, "risk_free", rates), step)
    table = pd.DataFrame(
        {
            "strategy": metrics(result.returns, positions, exposure(bars, positions), result.fees, rf=rf),
            "buy_and_hold": metrics(bh_ret, None, 1.0, np.nan, rf=rf),
        }
    )
    table.loc[["trades", "win_rate", "profit_factor", "avg_hold_days", "fees"], "buy_and_hold"] = np.nan
    return Result(config, sessions, bars, result, bh, table, fingerprints, assets, symbol, risk_free_returns=rf)
