"""Walk-forward analysis: pick the best grid combination on each train window, trade it on the next test window.

```toml
[walkforward]             # beside a [sweep] grid; the objective is the sweep's
mode = "anchored"         # anchored (train from `start`, growing) | rolling (fixed length)
train_days = 1460         # calendar days (= daily bars) per train window
test_days = 365           # calendar days per test window
step_days = 365           # how far each next window moves; default test_days, never shorter
start = "2014-09-17"      # first train day; default the first bar of the data
```

In-sample choice: the sweep's full-history runs are read from the store (the
sweep runs first if any combination is missing; given a stored ``sweep_id``,
nothing runs and a missing combination is an error) and each combination's stored
daily returns are sliced to the train window; the objective is computed on
that slice with ``riskon.metrics`` and the best finite value wins (ties: the
first in grid order). These are the full-history run's returns over the
window, so a position carried in from before the window counts (anchored
windows carry nothing in only when ``start`` is the data's first bar) and one still open at the
window's end is marked at its close, not sold. Only objectives computable from
daily returns can be used this way.

Out-of-sample: the chosen combination's aligned bars are built on the full
history (rule warm-up, index all-time high and events see only past data, as
in every run), then cut to the test window plus one synthetic bar with no
prices. The test window thus starts flat, and its last bar is a data end: a
position still open there is sold at that last close with the fee (the
engines' data-end sale; like every data-end sale it is not slipped). The
synthetic bar carries the window's last values, no event and no prices, and is
dropped from the results. The windows' daily returns are compounded into one
out-of-sample equity curve. When the data ends inside the last test window, that
window is traded to the last bar and marked ``partial``: the most recent stretch
is never dropped.

In- against out-of-sample: train windows differ in length from test windows (and,
anchored, from each other), so totals are not averaged over them: the summary's
mean columns leave total return out and compare returns per year (CAGR) and the
annualised Sharpe and Sortino ratios.
"""

from __future__ import annotations

import math
import re
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from feeds.cache import Cache
from feeds.loader import load
from riskon.analysis.windows import RETURN_METRICS, WalkForwardSpec, make_windows, parse_walkforward
from riskon.config import ConfigError, RunConfig, parse
from riskon.metrics import METRICS, metrics, returns_metrics, rf_per_bar
from riskon.runner import _cut, build_bars, buy_and_hold, config_rate, exposure, strategy_params
from riskon.sweeps.keys import bars_key, series_needed
from riskon.sweeps.spec import apply, combinations, parse_sweep
from riskon.sweeps.store import Store, short_name
from strategies.backtest import BacktestResult, backtest, check_accounting, equity_returns

_DAY = pd.Timedelta(days=1)


@dataclass
class WalkForwardResult:
    """A walk-forward's windows, its stitched out-of-sample curve and in- against out-of-sample metrics.

    ``windows``: one row per window with its dates, the chosen run and parameters,
    ``is_<metric>`` (chosen run's stored returns over the train window) and
    ``oos_<metric>`` (the test-window run); ``partial`` marks a last test window cut short by the
    end of the data. A position sold at a test window's last close has
    ``exit_reason = "window_end"`` in ``trades``. ``summary``: metrics (rows) for the
    in-sample mean over windows, the out-of-sample mean over windows (per-year and
    per-window figures only: no totals over windows of different length), the stitched
    out-of-sample curve and the stitched buy-and-hold of the target over the same
    test windows. ``trades`` and ``fills`` carry a ``window`` column.
    """

    name: str
    description: str
    sweep_id: str
    spec: WalkForwardSpec
    engine: str
    param_paths: list[str]
    param_grid: dict[str, list[Any]]
    windows: pd.DataFrame
    returns: pd.Series
    equity: pd.Series
    benchmark_returns: pd.Series
    benchmark: pd.Series
    trades: pd.DataFrame
    fills: pd.DataFrame
    summary: pd.DataFrame
    fee: float
    initial_cash: float
    config: RunConfig = field(repr=False)


class MissingRuns(ConfigError):
    """A walk-forward from a stored sweep found grid combinations the store lacks (nothing is run to fill them)."""


# -- one test window ------------------------------------------------------------------------
def cut_window(
    bars: pd.DataFrame, assets: dict[str, pd.DataFrame], a: int, b: int
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Bars and target prices of bars ``a..b`` plus one synthetic bar without prices, so bar ``b`` is a data end.

    Nothing is recomputed on the cut: every column was computed on the full history.
    The synthetic bar repeats bar ``b``'s index values, has no event and no exit
    signal, and is dropped from the results by ``trade_window``.
    """
    if not 0 <= a < b < len(bars):
        raise ValueError(f"window bars {a}..{b} are not inside 0..{len(bars) - 1}")
    part = bars.iloc[a : b + 1]
    extra = part.iloc[[-1]].copy()
    extra.index = extra.index + (bars.index[b] - bars.index[b - 1])
    extra["event"] = False
    if "exit_signal" in extra:
        extra["exit_signal"] = False
    out_bars = pd.concat([part, extra])
    out_bars.attrs = dict(bars.attrs)
    out_assets = {}
    for sym, frame in assets.items():
        blank = pd.DataFrame(np.nan, index=extra.index, columns=frame.columns)
        out_assets[sym] = pd.concat([frame.iloc[a : b + 1], blank])
    return out_bars, out_assets


def trade_window(
    bars: pd.DataFrame, assets: dict[str, pd.DataFrame], a: int, b: int, params, engine: str
) -> BacktestResult:
    """Trade bars ``a..b`` starting flat; a position open at bar ``b`` is sold at its close (with the fee)."""
    wbars, wassets = cut_window(bars, assets, a, b)
    if engine == "fast":
        # numba loads only for the fast engine
        from strategies.fastsim import fast_backtest

        res = fast_backtest(wbars, params, wassets)
    else:
        res = backtest(wbars, params, assets=wassets)
    problems = check_accounting(res)
    if problems:
        raise RuntimeError(f"window {bars.index[a]:%Y-%m-%d}..: accounting check failed: {'; '.join(problems)}")
    if len(res.trades) and res.trades["open"].any():
        raise RuntimeError(f"window {bars.index[a]:%Y-%m-%d}..: a position was left open at the window's end")
    return BacktestResult(
        res.equity.iloc[:-1], res.cash.iloc[:-1], res.trades, res.fills, res.params, res.initial_cash, res.log
    )


# -- the walk-forward -----------------------------------------------------------------------
class _Bars:
    """Full-history aligned bars per data/rule setting, built from series loaded once."""

    def __init__(self, cache: Cache | None, announce: Callable[[str], None] | None) -> None:
        self.cache, self.announce = cache, announce
        self.frames: dict[tuple[str, str], pd.DataFrame] = {}
        self.built: dict[str, tuple] = {}

    def get(self, cfg: RunConfig) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
        """The config's aligned bars and target prices, built once per data/rule setting (as a sweep keys them)."""
        key = bars_key(cfg)
        if key not in self.built:
            d, tf = cfg.data, cfg.data["timeframe"]
            index = self._load(d["index"], "1d")
            raw = {a: _cut(self._load(a, tf), d["start"], d["end"], a) for a in cfg.target["assets"]}
            _, bars, assets = build_bars(cfg, index, raw)
            self.built[key] = (bars, assets)
        return self.built[key]

    def fingerprints(self, cfg: RunConfig) -> dict[str, str]:
        """The data fingerprints a sweep hashes into a config's run id (``symbol@timeframe``)."""
        return {f"{s}@{t}": self._load(s, t).attrs["fingerprint"] for s, t in series_needed([cfg])}

    def _load(self, symbol: str, tf: str) -> pd.DataFrame:
        if (symbol, tf) not in self.frames:
            self.frames[(symbol, tf)] = load(symbol, tf, cache=self.cache, announce=self.announce)
        return self.frames[(symbol, tf)]


def _stored_returns(store: Store, sweep_id: str, calendar: pd.DatetimeIndex) -> dict[str, np.ndarray | None]:
    """The sweep's stored runs: run id -> daily returns on ``calendar`` (None for a failed run)."""
    runs = store.runs(sweep_id, with_returns=True)
    out: dict[str, np.ndarray | None] = {}
    first = calendar[0].tz_convert(None)
    for r in runs.to_dict("records"):
        if r["status"] != "ok" or r["returns"] is None:
            out[r["run_id"]] = None
            continue
        rets = np.asarray(r["returns"], dtype="float64")
        if pd.Timestamp(r["returns_start"]) != first or len(rets) != len(calendar):
            raise ConfigError(
                f"run {r['run_id']} of sweep {sweep_id} covers other dates than the sweep's data "
                f"({pd.Timestamp(r['returns_start']):%Y-%m-%d}, {len(rets)} days); a walk-forward needs every "
                "combination on one calendar (do not sweep [data] dates)"
            )
        out[r["run_id"]] = rets
    return out


def _choose(values: np.ndarray, direction: str) -> int | None:
    """Index of the best finite value (the first on ties), or None when none is finite."""
    finite = np.isfinite(values)
    if not finite.any():
        return None
    masked = np.where(finite, values, -np.inf if direction == "maximize" else np.inf)
    return int(np.argmax(masked) if direction == "maximize" else np.argmin(masked))


def walk_forward(
    path_or_config: str | Path | RunConfig,
    db: str | Path | None = None,
    cache: Cache | None = None,
    engine: str = "auto",
    announce: Callable[[str], None] | None = None,
    workers: int = 1,
    sweep_id: str | None = None,
) -> WalkForwardResult:
    """Walk a config's ``[sweep]`` grid forward through time as its ``[walkforward]`` table says.

    Runs the sweep first when the store lacks any of its combinations (announced);
    ``engine`` is used for the sweep and the test windows (``auto``: fast when it can).
    With ``sweep_id`` (a sweep of this config already in ``db``) nothing is swept: its stored
    runs are used as they are, and ``MissingRuns`` is raised when any combination is not among
    them (the sweep report and ``riskon results`` read a stored sweep this way).
    """
    # the API loads on first use (keeps `import riskon` light)
    import riskon.config as config_mod
    from riskon.sweeps.driver import choose_engine, run_sweep
    from riskon.sweeps.keys import run_id

    if isinstance(path_or_config, RunConfig):
        if not path_or_config.source or not Path(path_or_config.source).is_file():
            raise ConfigError("walk_forward needs a config file (the sweep stores its text); load one with a path")
        path_or_config = path_or_config.source
    path = Path(path_or_config)
    where = str(path)
    cfg0 = config_mod.load(path)
    raw = tomllib.loads(cfg0.text)
    spec = parse_walkforward(raw, where)
    sweep = parse_sweep(raw, where)
    combos, _ = combinations(raw, sweep, where)
    engine = choose_engine(engine, [c for _, c in combos], announce)
    base = {k: v for k, v in raw.items() if k not in ("sweep", "walkforward")}
    bars_of = _Bars(cache, announce)
    bars0, assets0 = bars_of.get(combos[0][1])
    calendar = bars0.index
    # Sharpe and Sortino in excess of the base config's risk-free rate, in and out of sample (riskon.metrics)
    rf_all = pd.Series(rf_per_bar(calendar, config_rate(cfg0, "risk_free")), index=calendar)
    rf_arr = rf_all.to_numpy()
    windows = make_windows(spec, calendar[0], calendar[-1], where)
    if announce:
        tail = windows[-1]
        cut = f" (the last one partial: {(tail.test_end - tail.test_start).days + 1} test days)" if tail.partial else ""
        announce(
            f"walk-forward {cfg0.name}: {len(windows)} {spec.mode} windows{cut}; in-sample choice by {sweep.objective} "
            "from the sweep's stored full-history returns"
            + (" (any missing combination runs now)" if sweep_id is None else f" of sweep {sweep_id}")
        )
    swept = sweep_id is None
    if swept:
        sweep_id = run_sweep(path, db=db, workers=workers, cache=cache, announce=announce, engine=engine).sweep_id
    stored = _stored_returns(Store(db), sweep_id, calendar)
    cands = []  # (overrides, run id, returns) in grid order; a run another sweep computed has its own params text
    missing = []
    for overrides, cfg in combos:
        rid = run_id(cfg, bars_of.fingerprints(cfg), engine)
        if rid not in stored:
            missing.append(overrides)
        elif stored[rid] is not None:
            cands.append((overrides, rid, stored[rid]))
    if missing and swept:  # the sweep just stored every combination: a miss is a run id mismatch
        raise RuntimeError(f"sweep {sweep_id} has no run for {missing[0]}; run ids did not match")
    if missing:
        raise MissingRuns(
            f"sweep {sweep_id} lacks {len(missing)} of the grid's {len(combos)} combinations as this code and data "
            f"compute them ({engine} engine; first: {missing[0]}); run `riskon sweep` or `riskon walkforward` on "
            "its config to complete them"
        )
    if not cands:
        raise ConfigError(f"{where}: no combination of sweep {sweep_id} finished without an error")
    matrix = np.column_stack([c[2] for c in cands])
    paths = list(sweep.values)
    names = {p: short_name(p, paths) for p in paths}
    rows, parts, trades, fills, bench = [], [], [], [], []
    bh_params, cash = strategy_params(cfg0), cfg0.portfolio["cash"]
    for w_no, w in enumerate(windows, start=1):
        ta, tb = calendar.get_loc(w.train_start), calendar.get_loc(w.train_end)
        xa, xb = calendar.get_loc(w.test_start), calendar.get_loc(w.test_end)
        scores = np.array(
            [
                returns_metrics(pd.Series(matrix[ta : tb + 1, j]), rf_arr[ta : tb + 1])[spec.objective]
                for j in range(len(cands))
            ]
        )
        pick = _choose(scores, spec.direction)
        row: dict[str, Any] = {"window": w_no, **w.__dict__, "candidates": int(np.isfinite(scores).sum())}
        if pick is None:  # nothing to choose: stay in cash for the test window
            row.update(run_id=None, params=None, **dict.fromkeys(names.values()))
            row.update({f"is_{m}": math.nan for m in RETURN_METRICS})
            idx = calendar[xa : xb + 1]
            wret = pd.Series(0.0, index=idx, name="returns")
            row.update({f"oos_{m}": v for m, v in metrics(wret, None, 0.0, 0.0, rf=rf_arr[xa : xb + 1]).items()})
            row["oos_trades"] = 0
            parts.append(wret)
        else:
            overrides, rid, _ = cands[pick]
            cfg = parse(apply(base, overrides), where)
            params = strategy_params(cfg)
            bars, assets = bars_of.get(cfg)
            result = trade_window(bars, assets, xa, xb, params, engine)
            wret = equity_returns(result.equity, result.initial_cash).rename("returns")
            positions = result.positions
            wbars = bars.iloc[xa : xb + 1]
            m_oos = metrics(wret, positions, exposure(wbars, positions), result.fees, rf=_rf_on(rf_all, wret))
            is_metrics = returns_metrics(pd.Series(matrix[ta : tb + 1, pick]), rf_arr[ta : tb + 1])
            row.update(run_id=rid, params=dict(overrides), **{names[p]: overrides[p] for p in paths})
            row.update({f"is_{m}": is_metrics[m] for m in RETURN_METRICS})
            row.update({f"oos_{m}": v for m, v in m_oos.items()})
            parts.append(wret)
            if len(result.trades):
                t = result.trades.assign(window=w_no)
                at_end = (t["exit_reason"] == "data_end") & (t["exit_time"] == w.test_end)
                t.loc[at_end, "exit_reason"] = "window_end"  # the data-end sale the window cut made
                trades.append(t)
            if len(result.fills):
                fills.append(result.fills.assign(window=w_no))
        bench.append(equity_returns(buy_and_hold(cut_window(bars0, assets0, xa, xb)[1], bh_params), cash).iloc[:-1])
        rows.append(row)
    returns = pd.concat(parts).rename("returns")
    bench_ret = pd.concat(bench).rename("buy_and_hold")
    table = pd.DataFrame(rows)
    trades_df = pd.concat(trades, ignore_index=True) if trades else pd.DataFrame()
    fills_df = pd.concat(fills, ignore_index=True) if fills else pd.DataFrame()
    summary = _summary(table, returns, bench_ret, trades_df, rf_all)
    return WalkForwardResult(
        name=cfg0.name,
        description=cfg0.description,
        sweep_id=sweep_id,
        spec=spec,
        engine=engine,
        param_paths=paths,
        param_grid=dict(sweep.values),
        windows=table,
        returns=returns,
        equity=(cash * (1.0 + returns).cumprod()).rename("equity"),
        benchmark_returns=bench_ret,
        benchmark=(cash * (1.0 + bench_ret).cumprod()).rename("buy_and_hold"),
        trades=trades_df,
        fills=fills_df,
        summary=summary,
        fee=cfg0.costs["fee_bps"] / 1e4,
        initial_cash=cash,
        config=cfg0,
    )


#: Metrics left out of the means over windows: totals over windows of different length are not comparable.
NOT_AVERAGED = ("total_return",)


def _rf_on(rf_all: pd.Series, returns: pd.Series) -> np.ndarray:
    """The risk-free returns on ``returns``' own bars (a window, or the stitched out-of-sample days)."""
    return rf_all.reindex(returns.index).fillna(0.0).to_numpy()


def _summary(
    table: pd.DataFrame, returns: pd.Series, bench: pd.Series, trades: pd.DataFrame, rf_all: pd.Series | None = None
) -> pd.DataFrame:
    """In-sample mean, out-of-sample mean, stitched out-of-sample and stitched buy-and-hold, per metric.

    Means are over windows, leaving out undefined values (the Sharpe ratio of a window without trades).
    Total return is not averaged: train and test windows (and a partial last window) differ in length,
    so their totals are not comparable; the CAGR row compares the same returns per year. Trade
    statistics and fees are pooled over every out-of-sample trade in the stitched column.
    """
    per_window = tuple(m for m in RETURN_METRICS if m not in NOT_AVERAGED)
    is_mean = {m: table[f"is_{m}"].mean() if m in per_window else math.nan for m in METRICS}
    oos_per_window = (*per_window, "exposure")  # per-trade statistics are pooled in the stitched column instead
    oos_mean = {m: table[f"oos_{m}"].mean() if m in oos_per_window else math.nan for m in METRICS}
    days = (table["test_end"] - table["test_start"]).dt.days + 1
    held = float((table["oos_exposure"].fillna(0.0) * days).sum() / days.sum())
    positions = (
        trades.groupby(["window", "position"]).agg(
            entry_time=("entry_time", "min"), exit_time=("exit_time", "max"), pnl=("pnl", "sum")
        )
        if len(trades)
        else pd.DataFrame(columns=["entry_time", "exit_time", "pnl"])
    )
    fees = float(trades[["entry_fee", "exit_fee"]].to_numpy().sum()) if len(trades) else 0.0
    rf_all = pd.Series(dtype="float64") if rf_all is None else rf_all
    oos = metrics(returns, positions, held, fees, rf=_rf_on(rf_all, returns))
    bh = metrics(bench, None, 1.0, math.nan, rf=_rf_on(rf_all, bench))
    for m in ("trades", "win_rate", "profit_factor", "avg_hold_days", "fees"):
        bh[m] = math.nan
    return pd.DataFrame(
        {"in_sample_mean": is_mean, "out_of_sample_mean": oos_mean, "out_of_sample": oos, "buy_and_hold": bh}
    )


#: What the walk-forward's in- and out-of-sample numbers mean (printed by the CLI, shown on the pages).
SEMANTICS = (
    "In-sample: each combination's stored full-history daily returns over the train window (a position carried "
    "in from before the window counts; one open at its end is marked, not sold); the best {objective} wins "
    "(ties: the first in grid order). Out-of-sample: the chosen combination trades the test window starting "
    "flat, on signals computed from past data only; a position open at the window's last bar is sold at that "
    "close with the fee (no slippage, as every data-end sale). A last test window cut short by the end of the "
    "data is traded to the last bar and marked partial. Buy-and-hold buys the targets at each test window's "
    "first open (a basket: equal cash into each coin at its own first bar in the window) and sells at its last "
    "close, with the same costs; both are compounded across windows."
)


def is_missing(value: object) -> bool:
    """No value: None, or NaN where pandas filled a window that chose nothing."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def param_columns(res: WalkForwardResult) -> list[str]:
    """The swept parameters' short column names, in the order of ``res.param_paths``."""
    return [short_name(p, res.param_paths) for p in res.param_paths]


def config_text(store: Store, sweep_id: str) -> str:
    """The config text a sweep was run from (``sweeps.config_text``)."""
    with store.connect(read_only=True) as con:
        row = con.execute("SELECT config_text FROM sweeps WHERE sweep_id = ?", [sweep_id]).fetchone()
    if row is None:
        raise ConfigError(f"no sweep {sweep_id} in {store.path}")
    return str(row[0])


def stored_walkforward(
    store: Store, sweep_id: str, cache=None, announce: Callable[[str], None] | None = None
) -> WalkForwardResult | None:
    """The walk-forward of a stored sweep from its stored runs, or None when its config has no ``[walkforward]``.

    ``riskon.analysis.walk_forward.walk_forward`` on the stored config text, with the engine the runs were
    made with and ``sweep_id`` given, so nothing is swept: a combination the store lacks (other
    data, other code) raises ``MissingRuns``. The test windows are traded (about 2 s for the seed).
    """
    text = config_text(store, sweep_id)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None  # not a config riskon could have swept; nothing to walk forward
    if "walkforward" not in raw:
        return None
    engines = set(store.runs(sweep_id)["engine"].dropna())
    engine = engines.pop() if len(engines) == 1 else "auto"
    name = re.sub(r"[^\w.-]", "_", str(raw.get("name", "sweep")))[:80] or "sweep"
    with tempfile.TemporaryDirectory(prefix="riskon-walkforward-") as folder:
        path = Path(folder) / f"{name}.toml"
        path.write_text(text, encoding="utf-8")
        try:
            return walk_forward(path, db=store.path, cache=cache, engine=engine, announce=announce, sweep_id=sweep_id)
        except ConfigError as e:  # name the sweep's config, not the temporary file
            raise type(e)(str(e).replace(str(path), f"the config of sweep {sweep_id}")) from None
