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
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from riskon.api import LABELS
from riskon.config import ConfigError, RunConfig
from riskon.html import esc, figure, new_figure, page, reports_dir, table, write_page
from riskon.metrics import METRICS
from riskon.store import DEFAULT_DB, Store, rank_runs

#: The metrics the random-entry null reports (``riskon.null``).
NULL_METRICS = ("total_return", "cagr", "sharpe", "max_drawdown")
#: How the null's percentile (a share of draws, 0..1) is shown.
PERCENTILE_FORMAT = "{:.0%}"
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
NULL_HOW = (
    "Random-entry null: the run's trades (same count, same holding periods) placed at seeded random entry "
    "dates, {n} draws; 'percentile' is the share of draws the run beat (higher is better, for drawdown too: "
    "a shallower drawdown beats a deeper one)."
)


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
    result: object | None = None  # riskon.run.Result, when the trades are at hand (for the null)
    notes: list[str] = field(default_factory=list)
    null: pd.DataFrame | None = None
    null_summary: pd.DataFrame | None = None


@dataclass
class Comparison:
    """Everything the comparison page shows; ``metrics`` is what ``compare`` returns."""

    entries: list[Entry]
    metrics: pd.DataFrame
    benchmarks: dict[str, pd.Series]
    null_n: int
    title: str


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


def target_text(cfg: RunConfig) -> str:
    """The traded target in a few words: the asset, or the basket/top-k and its size."""
    tg = cfg.target
    if tg["mode"] == "single":
        return tg["assets"][0]
    return f"{tg['mode']} of {len(tg['assets'])} coins"


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
        bench_label=f"{target_text(cfg)} {period}",
        params=cfg.description,
        result=result,
    )


def run_config(path: str | Path, cache=None) -> Entry:
    """Run a config file (fast engine when it supports the config, else backtrader) and wrap the result."""
    from riskon import config as config_mod
    from riskon.run import run
    from riskon.sweep import choose_engine

    cfg = config_mod.load(path)
    engine = choose_engine("auto", [cfg], None)
    return from_result(run(cfg, cache=cache, engine=engine), source=f"config {path} ({engine} engine)")


def stored_config(store: Store, run_row: dict) -> RunConfig:
    """Rebuild a stored run's config: its sweep's config text with the run's parameters applied."""
    from riskon.config import parse
    from riskon.sweep_spec import apply

    with store.connect(read_only=True) as con:
        hit = con.execute("SELECT config_text FROM sweeps WHERE sweep_id = ?", [run_row["sweep_id"]]).fetchone()
    if hit is None:
        raise ConfigError(f"run {run_row['run_id']}: its sweep {run_row['sweep_id']} is not in {store.path}")
    raw = tomllib.loads(hit[0])
    base = {k: v for k, v in raw.items() if k != "sweep"}
    return parse(apply(base, json.loads(run_row["params"])), f"sweep {run_row['sweep_name']} run {run_row['run_id']}")


def rerun_stored(store: Store, run_row: dict, cache=None):
    """Re-run a stored run from its rebuilt config with the engine that produced it (for its trades)."""
    from riskon.run import run

    cfg = stored_config(store, run_row)
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
    try:
        target = target_text(stored_config(store, row))
    except (ConfigError, ValueError, tomllib.TOMLDecodeError):
        target = "buy-and-hold"
    entry = Entry(
        label=f"{row['sweep_name']} {row['run_id'][:8]}",
        source=f"store run {row['run_id']} (sweep {row['sweep_name']}, {row.get('engine') or '?'} engine)",
        returns=_naive(rets),
        benchmark=_naive(row["bench"]),
        metrics={k: float(row[k]) for k in METRICS},
        bench_label=f"{target} {period}",
        params=params_text(row["params"]),
    )
    entry.result = row  # resolved into a Result only if the null is wanted
    return entry


def sweep_top(store: Store, sweep: str, top: int) -> list[str]:
    """The ids of a sweep's ``top`` best runs by its objective."""
    try:
        info = store.find_sweep(sweep)
    except (KeyError, FileNotFoundError) as e:
        raise ConfigError(str(e).strip("'\"")) from None
    spec = sweep_spec(store, info["sweep_id"])
    objective, direction = spec.get("objective", "sharpe"), spec.get("direction", "maximize")
    runs = store.runs(info["sweep_id"])
    ok = rank_runs(runs[runs["status"] == "ok"], objective, direction)
    if ok.empty:
        raise ConfigError(f"sweep {info['name']} has no finished runs")
    return list(ok["run_id"].head(top))


def sweep_spec(store: Store, sweep_id: str) -> dict:
    """A stored sweep's ``[sweep]`` spec (objective, direction, method, values) as a dict."""
    with store.connect(read_only=True) as con:
        hit = con.execute("SELECT spec FROM sweeps WHERE sweep_id = ?", [sweep_id]).fetchone()
    return json.loads(hit[0]) if hit and hit[0] else {}


# -- the null -------------------------------------------------------------------------------------------
def add_null(entry: Entry, store: Store | None, n: int, seed: int, cache=None) -> None:
    """Attach the random-entry null of a run (re-running a stored run for its trades); notes why if it cannot."""
    from feeds.errors import DataError

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
    from riskon.null import null_summary, random_entry_null

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
    keys: dict[str, str] = {}
    for entry in entries:
        key = hashlib.sha256(entry.benchmark.to_numpy().tobytes() + str(entry.benchmark.index[0]).encode()).hexdigest()
        if key not in keys:
            keys[key] = entry.bench_label
            benches[entry.bench_label] = entry.benchmark
        entry.bench_label = keys[key]
    if len(benches) == 1:
        benches = {"buy & hold": next(iter(benches.values()))}
        for entry in entries:
            entry.bench_label = "buy & hold"
    else:
        benches = {f"buy & hold {k}": v for k, v in benches.items()}
        for entry in entries:
            entry.bench_label = f"buy & hold {entry.bench_label}"
    frame = metrics_frame(entries, benches)
    name = title or "compare: " + ", ".join(e.label for e in entries)
    return Comparison(entries, frame, benches, null_n, name)


def metrics_frame(entries: list[Entry], benches: dict[str, pd.Series]) -> pd.DataFrame:
    """Metrics per run and per buy-and-hold, plus each run's null median and percentile (rows ``null_*``)."""
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
        col = pd.Series(returns_metrics(rets), dtype="float64").reindex(rows)
        col["exposure"] = 1.0
        frame[label] = col
    return frame


def compare(
    items,
    db: str | Path | None = None,
    null_n: int = 500,
    seed: int = 0,
    out: str | Path | None = None,
    cache=None,
    title: str | None = None,
) -> pd.DataFrame:
    """Compare runs (stored run ids, ``.toml`` configs or ``Result`` objects) and return the metrics table.

    Rows are the metrics plus ``null_median_<m>`` and ``null_percentile_<m>`` (the random-entry null
    of each run, ``null_n`` seeded draws; 0 leaves it out); columns are the runs then buy-and-hold.
    With ``out`` the self-contained HTML page is written there too.
    """
    comp = build(items, db=db, null_n=null_n, seed=seed, cache=cache, title=title)
    if out is not None:
        write_comparison(comp, out)
    return comp.metrics


# -- pictures -------------------------------------------------------------------------------------------
def wealth(returns: pd.Series) -> pd.Series:
    """Growth of 1 from daily returns (the first day's return included)."""
    return (1.0 + returns).cumprod()


def drawdown(returns: pd.Series) -> pd.Series:
    """Drawdown from the running peak of growth of 1 (the start counts as a peak)."""
    w = wealth(returns)
    return w / np.maximum(w.cummax(), 1.0) - 1.0


def equity_figure(comp: Comparison):
    """Overlaid growth of 1 (log scale) and drawdowns of every run and buy-and-hold."""
    fig = new_figure(12, 7.5)
    ax1, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    for i, e in enumerate(comp.entries):
        c = COLORS[i % len(COLORS)]
        ax1.plot(e.returns.index, wealth(e.returns), lw=1.1, color=c, label=e.label)
        ax2.plot(e.returns.index, drawdown(e.returns), lw=0.9, color=c)
    for j, (label, b) in enumerate(comp.benchmarks.items()):
        style = dict(lw=0.9, color="#555555" if j == 0 else "#999999", ls="--" if j == 0 else ":")
        ax1.plot(b.index, wealth(b), label=label, **style)
        ax2.plot(b.index, drawdown(b), **style)
    ax1.set_yscale("log")
    ax1.set_ylabel("growth of 1 (log)")
    ax1.grid(True, which="major", alpha=0.3)
    ax1.legend(loc="upper left", fontsize=8)
    ax1.set_title("Equity, log scale (each run from its first day)", fontsize=11)
    ax2.set_ylabel("drawdown")
    ax2.yaxis.set_major_formatter(_pct_formatter())
    ax2.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


def _pct_formatter():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:.0%}")


def monthly_returns(returns: pd.Series) -> pd.DataFrame:
    """Compounded return per calendar month (rows years, columns Jan..Dec) plus the year's total."""
    r = _naive(returns)
    by_month = (1.0 + r).groupby([r.index.year, r.index.month]).prod() - 1.0
    grid = by_month.unstack(level=1).reindex(columns=range(1, 13))
    grid.index.name = "year"
    grid.columns = MONTHS
    grid["Year"] = (1.0 + r).groupby(r.index.year).prod() - 1.0
    return grid


def monthly_figure(grid: pd.DataFrame, label: str):
    """A red/green heatmap of monthly returns (and each year's total) with the values written in the cells."""
    from matplotlib.colors import TwoSlopeNorm

    cols = [*MONTHS, "Year"]
    values = grid[cols].to_numpy(dtype="float64")
    fig = new_figure(12, 0.42 * len(grid) + 1.3)
    ax = fig.add_subplot()
    lim = float(np.nanmax(np.abs(values[:, :12]))) if np.isfinite(values[:, :12]).any() else 1.0
    lim = max(min(lim, 0.5), 1e-4)
    ax.imshow(values, cmap="RdYlGn", norm=TwoSlopeNorm(0.0, -lim, lim), aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            text = "0" if v == 0 else f"{v:.0%}" if abs(v) >= 0.995 else f"{v:.1%}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, fontweight="bold" if j == 12 else "normal")
    ax.axvline(11.5, color="white", lw=3)
    ax.set_xticks(range(13), cols, fontsize=8)
    ax.set_yticks(range(len(grid)), [str(y) for y in grid.index], fontsize=8)
    ax.set_title(f"Monthly returns: {label}", fontsize=10)
    fig.tight_layout()
    return fig


def null_figure(comp: Comparison, metric: str = "sharpe"):
    """Each run's null distribution of ``metric`` (box: 5-95 %) with the run's own value marked."""
    have = [e for e in comp.entries if e.null is not None and metric in e.null]
    fig = new_figure(12, 1.0 + 0.55 * max(len(have), 1))
    ax = fig.add_subplot()
    data = [e.null[metric].dropna().to_numpy() for e in have]
    ax.boxplot(data, orientation="horizontal", whis=(5, 95), showfliers=False, widths=0.5)
    for i, e in enumerate(have, start=1):
        ax.scatter([e.metrics[metric]], [i], color="#d62728", zorder=3, s=40, label="the run" if i == 1 else None)
    ax.set_yticks(range(1, len(have) + 1), [e.label for e in have], fontsize=8)
    ax.set_xlabel(f"{metric} (box: random-entry null, quartiles; whiskers 5-95 %)")
    if have:
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


# -- the page -------------------------------------------------------------------------------------------


def format_value(row: str, value: float) -> str:
    """A cell of the metrics table as the terminal prints it (``row`` is a metric or a ``null_*`` row)."""
    from riskon.metrics import format_metric

    if row.startswith("null_percentile_"):
        return "-" if value is None or value != value else PERCENTILE_FORMAT.format(value)
    return format_metric(row.removeprefix("null_median_"), value)


def shown_name(row: str) -> str:
    """The readable name of a metrics-table row (``null_median_sharpe`` -> ``Sharpe (365): null median``)."""
    if row.startswith("null_median_"):
        return f"{LABELS[row.removeprefix('null_median_')]}: null median"
    if row.startswith("null_percentile_"):
        return f"{LABELS[row.removeprefix('null_percentile_')]}: percentile in null"
    return LABELS.get(row, row)


def shown_metrics(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The metrics table with readable row names and a format per row; null rows no run has are left out."""
    formats = {}
    for m in frame.index:
        base = m.removeprefix("null_median_").removeprefix("null_percentile_")
        formats[shown_name(m)] = PERCENTILE_FORMAT if m.startswith("null_percentile_") else METRICS.get(base, "{}")
    empty = [m for m in frame.index if m.startswith("null_") and frame.loc[m].isna().all()]
    shown = frame.drop(index=empty).rename(index=shown_name)
    shown.index.name = None
    return shown, formats


def comparison_html(comp: Comparison) -> str:
    """The whole comparison page (self-contained: inline CSS and PNGs, every name escaped)."""
    shown, formats = shown_metrics(comp.metrics)
    runs = pd.DataFrame(
        {
            "run": [e.label for e in comp.entries],
            "source": [e.source for e in comp.entries],
            "period": [f"{e.returns.index[0]:%Y-%m-%d} .. {e.returns.index[-1]:%Y-%m-%d}" for e in comp.entries],
            "parameters": [e.params for e in comp.entries],
            "compared with": [e.bench_label for e in comp.entries],
        }
    )
    sections = [
        "<h2>Runs</h2>",
        f'<div class="text">{table(runs, index=False)}</div>',
        "<h2>Metrics side by side</h2>",
        f'<div id="metrics">{table(shown, formats)}</div>',
        '<p class="note">Daily returns, 365 days a year, risk-free rate 0. Buy-and-hold buys the same target at '
        "the first bar's open with the same costs and holds it. "
        + esc(NULL_HOW.format(n=comp.null_n) if comp.null_n else "Random-entry null: not computed (--null 0).")
        + "</p>",
    ]
    notes = [f"{e.label}: {n}" for e in comp.entries for n in e.notes]
    if notes:
        sections.append('<p class="note">' + "<br>".join(esc(n) for n in notes) + "</p>")
    sections += ["<h2>Equity and drawdowns</h2>", figure(equity_figure(comp), "equity curves and drawdowns")]
    if any(e.null is not None for e in comp.entries):
        sections += [
            "<h2>Against a random entry</h2>",
            figure(null_figure(comp), "each run's Sharpe ratio against its random-entry null"),
        ]
    sections.append("<h2>Monthly returns</h2>")
    for e in comp.entries:
        sections.append(f"<h3>{esc(e.label)}</h3>")
        sections.append(figure(monthly_figure(monthly_returns(e.returns), e.label), f"monthly returns of {e.label}"))
    return page(comp.title, sections, subtitle=f"{len(comp.entries)} runs compared")


def default_path(comp: Comparison, sweep: str | None = None) -> Path:
    """``reports/<sweep>/compare-top<N>.html`` for a sweep's best runs, else ``reports/compare/<labels>.html``."""
    if sweep:
        return reports_dir() / _slug(sweep) / f"compare-top{len(comp.entries)}.html"
    return reports_dir() / "compare" / (_slug("-vs-".join(e.label for e in comp.entries))[:120] + ".html")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "runs"


def write_comparison(comp: Comparison, path: str | Path) -> Path:
    """Write the comparison page (and refresh reports/index.html)."""
    return write_page(path, comparison_html(comp))
