"""Compare runs side by side: metrics, buy-and-hold, the random-entry null, equity, drawdowns, monthly returns.

A run is named three ways: a stored run id (or unique prefix) from the DuckDB store, a config file
(an existing path ending in ``.toml``, run here with the fast engine when it can), or a ``Result``
already in memory. Stored runs keep their stored daily returns and metrics (nothing is re-run to
draw them); only the random-entry null needs the trades, so a stored run's config is rebuilt from
its sweep's config text plus its parameters and re-run once. When that cannot be done (data
missing, a config the code no longer accepts) the null is left out with a note saying why.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from feeds.errors import DataError
from riskon.config import ConfigError, RunConfig, benchmark_name
from riskon.metrics import METRICS, rates_text, rf_per_bar
from riskon.runner import config_rate
from riskon.sweeps.rulecheck import check_stored_rules, sweep_row
from riskon.sweeps.store_path import DEFAULT_DB

if TYPE_CHECKING:  # DuckDB loads only when stored runs are read (a run's page draws equity without it)
    from riskon.sweeps.store import Store

#: The metrics the random-entry null reports (``riskon.null``).
NULL_METRICS = ("total_return", "cagr", "sharpe", "max_drawdown")
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


@dataclass
class Entry:
    """One run on the comparison page: its daily returns, buy-and-hold, metrics and (optionally) its null."""

    label: str
    source: str
    returns: pd.Series
    benchmark: pd.Series
    metrics: dict[str, float]
    bench_label: str
    params: str = ""
    result: object | None = None  # riskon.runner.Result, when the trades are at hand (for the null)
    notes: list[str] = field(default_factory=list)
    null: pd.DataFrame | None = None
    null_summary: pd.DataFrame | None = None
    rates: str = ""  # the cash and risk-free rates the run used, in words (``riskon.metrics.rates_text``)
    rf: np.ndarray | None = None  # the risk-free asset's return over each of its days (None: unknown, taken as 0)


@dataclass
class Comparison:
    """Everything the comparison page shows; ``metrics`` is what ``compare`` returns."""

    entries: list[Entry]
    metrics: pd.DataFrame
    benchmarks: dict[str, pd.Series]
    null_n: int
    title: str
    rates_warning: str | None = None  # one line when the runs used different cash or risk-free rates


# -- loading runs ---------------------------------------------------------------------------------------
def is_config_arg(item: object) -> bool:
    """True for a config file argument: a path ending in ``.toml`` (run ids never do)."""
    return isinstance(item, str | Path) and str(item).lower().endswith(".toml")


def _naive(series: pd.Series) -> pd.Series:
    s = series.astype("float64").copy()
    if isinstance(s.index, pd.DatetimeIndex) and s.index.tz is not None:
        s.index = s.index.tz_convert("UTC").tz_localize(None)
    s.index = pd.DatetimeIndex(s.index).as_unit("us").rename("date")
    return s


def from_result(result, label: str | None = None, source: str = "") -> Entry:
    """An ``Entry`` from a run ``Result`` in memory (its trades allow the null)."""
    cfg = result.config
    m = result.metrics["strategy"]
    period = f"{result.returns.index[0]:%Y-%m-%d}..{result.returns.index[-1]:%Y-%m-%d}"
    return Entry(
        label=label or cfg.name,
        source=source or f"config {cfg.source or cfg.name}",
        returns=_naive(result.returns),
        benchmark=_naive(result.benchmark_returns),
        metrics={k: float(m[k]) for k in METRICS},
        bench_label=f"{benchmark_name(cfg, result.benchmark_symbol)} {period}",
        params=cfg.description,
        result=result,
        rates=result.rates_text,
        rf=result.rf,
    )


def run_config(path: str | Path, cache=None) -> Entry:
    """Run a config file (fast engine when it supports the config, else backtrader) and wrap the result."""
    # the API loads on first use (keeps `import riskon` light)
    import riskon.config as config_mod
    from riskon.runner import run
    from riskon.sweeps.driver import choose_engine

    cfg = config_mod.load(path)
    engine = choose_engine("auto", [cfg], None)
    return from_result(run(cfg, cache=cache, engine=engine), source=f"config {path} ({engine} engine)")


def stored_config(store: Store, run_row: dict) -> RunConfig:
    """Rebuild a stored run's config: its sweep's config text with the run's parameters applied."""
    # the API loads on first use (keeps `import riskon` light)
    from riskon.config import parse
    from riskon.sweeps.spec import apply

    with store.connect(read_only=True) as con:
        hit = con.execute("SELECT config_text FROM sweeps WHERE sweep_id = ?", [run_row["sweep_id"]]).fetchone()
    if hit is None:
        raise ConfigError(f"run {run_row['run_id']}: its sweep {run_row['sweep_id']} is not in {store.path}")
    raw = tomllib.loads(hit[0])
    base = {k: v for k, v in raw.items() if k != "sweep"}
    return parse(apply(base, json.loads(run_row["params"])), f"sweep {run_row['sweep_name']} run {run_row['run_id']}")


def rerun_stored(store: Store, run_row: dict, cache=None):
    """Re-run a stored run from its rebuilt config with the engine that produced it (for its trades)."""
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs
    from riskon.runner import run

    cfg = stored_config(store, run_row)
    check_stored_rules(sweep_row(store, run_row["sweep_id"]), cfg, f"run {run_row['run_id']}")
    engine = run_row.get("engine") or "backtrader"
    return run(cfg, cache=cache, engine=engine if engine in ("fast", "backtrader") else "backtrader")


def params_text(params_json: str) -> str:
    """``a=1, b=0.2`` from a stored run's JSON parameters (last part of each dotted path)."""
    params = json.loads(params_json) if params_json else {}
    return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in params.items())


def from_store(store: Store, run_id: str) -> Entry:
    """An ``Entry`` from a stored run: stored returns, benchmark and metrics (no backtest re-run)."""
    try:
        row = store.run(run_id)
    except (KeyError, FileNotFoundError) as e:
        raise ConfigError(str(e).strip("'\"")) from None
    if row["status"] != "ok" or row["returns"] is None:
        raise ConfigError(f"run {row['run_id']} failed in its sweep: {row['error']}")
    rets = row["returns"]
    period = f"{rets.index[0]:%Y-%m-%d}..{rets.index[-1]:%Y-%m-%d}"
    rates, rf = "unknown (the run's config cannot be rebuilt)", None
    try:
        cfg = stored_config(store, row)
        target = benchmark_name(cfg, None)  # stored runs hold their targets' buy-and-hold
        rates = rates_text(cfg.portfolio)
        days = pd.DatetimeIndex(rets.index).tz_localize("UTC") if rets.index.tz is None else rets.index
        rf = rf_per_bar(days, config_rate(cfg, "risk_free"))  # what the stored Sharpe is in excess of
    except (ConfigError, ValueError, tomllib.TOMLDecodeError):  # DataError (a yield not cached) is a ValueError
        target = "the run's targets"
    entry = Entry(
        label=f"{row['sweep_name']} {row['run_id'][:8]}",
        source=f"store run {row['run_id']} (sweep {row['sweep_name']}, {row.get('engine') or '?'} engine)",
        returns=_naive(rets),
        benchmark=_naive(row["bench"]),
        metrics={k: float(row[k]) for k in METRICS},
        bench_label=f"{target} {period}",
        params=params_text(row["params"]),
        rates=rates,
        rf=rf,
    )
    entry.result = row  # resolved into a Result only if the null is wanted
    return entry


def find_sweep_objective(store: Store, sweep: str | None) -> tuple[dict, dict, str, str]:
    """A stored sweep (``Store.find_sweep``; not found is a ``ConfigError``), its spec, objective and direction."""
    try:
        info = store.find_sweep(sweep)
    except (KeyError, FileNotFoundError) as e:
        raise ConfigError(str(e).strip("'\"")) from None
    spec = sweep_spec(store, info["sweep_id"])
    return info, spec, spec.get("objective", "sharpe"), spec.get("direction", "maximize")


def sweep_top(store: Store, sweep: str, top: int) -> list[str]:
    """The ids of a sweep's ``top`` best finished runs by its objective (ranked in the store)."""
    info, _, objective, direction = find_sweep_objective(store, sweep)
    ok = store.top(info["sweep_id"], objective, ascending=direction == "minimize", n=top, ok_only=True)
    if ok.empty:
        raise ConfigError(f"sweep {info['name']} has no finished runs")
    return list(ok["run_id"])


def sweep_rates_text(store: Store, sweep_id: str) -> str:
    """The cash and risk-free rates of a stored sweep's runs, in words; a swept rate is named as swept."""
    with store.connect(read_only=True) as con:
        hit = con.execute("SELECT config_text FROM sweeps WHERE sweep_id = ?", [sweep_id]).fetchone()
    try:
        raw = tomllib.loads(hit[0]) if hit and hit[0] else {}
    except tomllib.TOMLDecodeError:
        raw = {}
    text = rates_text(raw.get("portfolio") or {})
    swept = [p for p in sweep_spec(store, sweep_id).get("values", {}) if p in ("portfolio.cash_rate",
                                                                               "portfolio.risk_free")]  # fmt: skip
    return text + (f" (swept: {', '.join(swept)}; each run's own in its parameters)" if swept else "")


def sweep_spec(store: Store, sweep_id: str) -> dict:
    """A stored sweep's ``[sweep]`` spec (objective, direction, method, values) as a dict."""
    with store.connect(read_only=True) as con:
        hit = con.execute("SELECT spec FROM sweeps WHERE sweep_id = ?", [sweep_id]).fetchone()
    return json.loads(hit[0]) if hit and hit[0] else {}


# -- the null -------------------------------------------------------------------------------------------
def add_null(entry: Entry, store: Store | None, n: int, seed: int, cache=None) -> None:
    """Attach the random-entry null of a run (re-running a stored run for its trades); notes why if it cannot."""

    result = entry.result
    if isinstance(result, dict):  # a stored run: rebuild its config and re-run it once for the trades
        try:
            result = rerun_stored(store, result, cache=cache)
        except (DataError, ConfigError, FileNotFoundError, KeyError, ValueError) as e:
            entry.notes.append(f"null left out: the run could not be re-run for its trades ({one_line(e)})")
            entry.result = None
            return
        again = float(result.metrics.at["total_return", "strategy"])
        if not math.isclose(again, entry.metrics["total_return"], rel_tol=1e-9, abs_tol=1e-12):
            entry.notes.append(
                f"re-run total return {again:.6g} differs from the stored {entry.metrics['total_return']:.6g} "
                "(code or data changed since the sweep); the null uses the re-run's trades"
            )
        entry.result = result
    if result is None:
        return
    if len(result.trades) == 0:
        entry.notes.append("null left out: the run made no trades")
        return
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs
    from riskon.analysis.random_null import null_summary, random_entry_null

    entry.null = random_entry_null(result, n=n, seed=seed)
    entry.null_summary = null_summary(result, entry.null)


def one_line(e: BaseException) -> str:
    """An exception's first line."""
    text = str(e).strip("'\"")
    return text.splitlines()[0] if text else type(e).__name__


# -- the comparison -------------------------------------------------------------------------------------
def _unique(labels: list[str]) -> list[str]:
    out, seen = [], {}
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        out.append(lab if seen[lab] == 1 else f"{lab} #{seen[lab]}")
    return out


def build(
    items, db: str | Path | None = None, null_n: int = 500, seed: int = 0, cache=None, title: str | None = None
) -> Comparison:
    """Load every item (run id, ``.toml`` config or ``Result``), attach its null, and tabulate the metrics."""
    items = list(items)
    if not items:
        raise ConfigError("compare needs at least one run id or config file")
    # DuckDB loads only when stored runs are read
    from riskon.sweeps.store import Store

    store = Store(db if db is not None else DEFAULT_DB)
    entries = []
    for item in items:
        if hasattr(item, "backtest") and hasattr(item, "config"):
            entries.append(from_result(item))
        elif is_config_arg(item):
            if not Path(item).exists():
                raise ConfigError(f"{item}: no such config file")
            entries.append(run_config(item, cache=cache))
        elif isinstance(item, str) and item:
            entries.append(from_store(store, item))
        else:
            raise ConfigError(f"cannot compare {item!r}: give a stored run id, a .toml config or a Result")
    for entry, label in zip(entries, _unique([e.label for e in entries]), strict=True):
        entry.label = label
    for entry in entries:
        if null_n > 0:
            add_null(entry, store, null_n, seed, cache=cache)
        if isinstance(entry.result, dict):
            entry.result = None
    benches: dict[str, pd.Series] = {}
    bench_rf: dict[str, np.ndarray | None] = {}  # a benchmark's Sharpe in excess of its first run's risk-free rate
    keys: dict[str, str] = {}
    for entry in entries:
        key = hashlib.sha256(entry.benchmark.to_numpy().tobytes() + str(entry.benchmark.index[0]).encode()).hexdigest()
        if key not in keys:
            keys[key] = entry.bench_label
            benches[entry.bench_label] = entry.benchmark
            bench_rf[entry.bench_label] = entry.rf
        entry.bench_label = keys[key]
    if len(benches) == 1:
        only = next(iter(benches))
        benches, bench_rf = {"buy & hold": benches[only]}, {"buy & hold": bench_rf[only]}
        for entry in entries:
            entry.bench_label = f"buy & hold {entry.bench_label}"  # the runs table names what is held
    else:
        benches = {f"buy & hold {k}": v for k, v in benches.items()}
        bench_rf = {f"buy & hold {k}": v for k, v in bench_rf.items()}
        for entry in entries:
            entry.bench_label = f"buy & hold {entry.bench_label}"
    frame = metrics_frame(entries, benches, bench_rf)
    name = title or "compare: " + ", ".join(e.label for e in entries)
    return Comparison(entries, frame, benches, null_n, name, rates_warning(entries))


def rates_warning(entries: list[Entry]) -> str | None:
    """One line when the runs used different cash or risk-free rates (their Sharpe ratios then answer different
    questions), naming each run's rates; None when they all agree."""
    if len({e.rates for e in entries}) < 2:
        return None
    each = "; ".join(f"{e.label}: {e.rates}" for e in entries)
    return (
        f"the runs use different rates ({each}): returns include different interest on cash and Sharpe, Sortino "
        "are in excess of different risk-free rates, so compare them with care"
    )


def metrics_frame(
    entries: list[Entry], benches: dict[str, pd.Series], bench_rf: dict[str, np.ndarray | None] | None = None
) -> pd.DataFrame:
    """Metrics per run and per buy-and-hold, plus each run's null median and percentile (rows ``null_*``).

    A buy-and-hold's Sharpe and Sortino are in excess of ``bench_rf[label]`` (the risk-free returns of the
    first run compared with it; 0 when not given), as that run's own benchmark column is.
    """
    # the API loads on first use (keeps `import riskon` light)
    from riskon.metrics import returns_metrics

    rows = list(METRICS) + [f"null_median_{m}" for m in NULL_METRICS] + [f"null_percentile_{m}" for m in NULL_METRICS]
    frame = pd.DataFrame(index=pd.Index(rows, name="metric"), dtype="float64")
    for e in entries:
        col = pd.Series(e.metrics, dtype="float64").reindex(rows)
        if e.null_summary is not None:
            for m in NULL_METRICS:
                if m in e.null_summary.index:
                    col[f"null_median_{m}"] = float(e.null_summary.at[m, "null_median"])
                    col[f"null_percentile_{m}"] = float(e.null_summary.at[m, "percentile"])
        frame[e.label] = col
    for label, rets in benches.items():
        rf = (bench_rf or {}).get(label)
        col = pd.Series(returns_metrics(rets, rf=0.0 if rf is None else rf), dtype="float64").reindex(rows)
        col["exposure"] = 1.0
        frame[label] = col
    return frame


# -- series the pages draw -------------------------------------------------------------------------------------------
def wealth(returns: pd.Series) -> pd.Series:
    """Growth of 1 from daily returns (the first day's return included)."""
    return (1.0 + returns).cumprod()


def drawdown(returns: pd.Series) -> pd.Series:
    """Drawdown from the running peak of growth of 1 (the start counts as a peak)."""
    w = wealth(returns)
    return w / np.maximum(w.cummax(), 1.0) - 1.0


def monthly_returns(returns: pd.Series) -> pd.DataFrame:
    """Compounded return per calendar month (rows years, columns Jan..Dec) plus the year's total."""
    r = _naive(returns)
    by_month = (1.0 + r).groupby([r.index.year, r.index.month]).prod() - 1.0
    grid = by_month.unstack(level=1).reindex(columns=range(1, 13))
    grid.index.name = "year"
    grid.columns = MONTHS
    grid["Year"] = (1.0 + r).groupby(r.index.year).prod() - 1.0
    return grid
