"""The sweep report: which parameters hold up, read from the store (one re-run, for the null).

One self-contained page per sweep (``reports/<sweep>/sweep.html``): the best runs; the
distribution of every metric with the best run marked; for each pair of swept parameters a
heatmap (an HTML table) of the objective with the other parameters fixed at the best run's values, and one with
them aggregated (median over the rest); the objective of the best run's grid neighbours (one step
each way along each parameter, the rest fixed) and a slice through each parameter; where the
best run falls in its random-entry null; the robustness block (probabilistic and deflated
Sharpe ratio, probability of backtest overfitting) from ``riskon.analysis.robustness``; and, when the sweep's
config has a ``[walkforward]`` table, the walk-forward (``riskon.walkforward``) computed from the
stored runs: its windows, in- against out-of-sample summary and stitched out-of-sample equity.
Metrics come from the stored runs; only the null re-runs the best run, for its trades, and the
walk-forward trades its test windows (nothing is swept: a missing combination is reported).
"""

from __future__ import annotations

import functools
import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd

from feeds.errors import DataError
from riskon.analysis.comparison import one_line, rerun_stored, sweep_rates_text
from riskon.analysis.walk_forward import SEMANTICS, stored_walkforward
from riskon.config import ConfigError
from riskon.metrics import LABELS, METRICS
from riskon.pages.charts import thin_ticks
from riskon.pages.comparison_page import PERCENTILE_FORMAT
from riskon.pages.figure_pool import FigurePool
from riskon.pages.heat_table import heat_pair
from riskon.pages.html import esc, figure, new_figure, page, report_path, table, write_page
from riskon.pages.robustness_page import robustness_section
from riskon.pages.sweep_data import (
    SweepData,
    edge_params,
    edge_warning,
    fmt_value,
    heat_grids,
    load_sweep,
    slice_of,
    stability_table,
    varied,
)
from riskon.pages.walkforward_page import SUMMARY_NOTE, equity_chart, setup_html, summary_html, windows_html
from riskon.sweeps.store import DEFAULT_DB, Store, short_name

#: The mark of a sweep run on purpose although its rules failed the lookahead check.
ALLOWED_SWEEP = "lookahead check FAILED, sweep allowed by --allow-lookahead"

#: Metrics drawn as histograms (fees are a by-product, not a score).
DISTRIBUTED = [m for m in METRICS if m != "fees"]

#: The walk-forward section of a sweep whose config has no ``[walkforward]`` table (one sentence).
WALKFORWARD_HINT = (
    "No walk-forward: add a [walkforward] table (mode, train_days, test_days) beside the [sweep] grid of the "
    "config and run `riskon sweep CONFIG` again (stored runs are reused) to see it here."
)


# -- best runs and distributions ------------------------------------------------------------------------
def best_table(data: SweepData, top: int = 10) -> pd.DataFrame:
    """The ``top`` runs by the objective: id, swept parameters and the main metrics."""
    shown = [
        data.objective,
        *[m for m in ("cagr", "sharpe", "max_drawdown", "trades", "exposure") if m != data.objective],
    ]
    best = data.runs.head(top)
    frame = pd.DataFrame({"rank": range(1, len(best) + 1), "run": [r[:12] for r in best["run_id"]]})
    for p in data.params:
        frame[p] = [fmt_value(v) for v in best[p]]
    for m in shown:
        frame[LABELS[m]] = best[m].to_numpy()
    return frame


def distribution_figure(data: SweepData):
    """A histogram of every metric over the sweep's runs, the best run marked."""
    n = len(DISTRIBUTED)
    cols = 4
    rows = math.ceil(n / cols)
    fig = new_figure(12, 2.4 * rows)
    axes = fig.subplots(rows, cols).ravel()
    for ax, m in zip(axes, DISTRIBUTED, strict=False):
        vals = data.runs[m].replace([np.inf, -np.inf], np.nan).dropna()
        if len(vals):
            ax.hist(vals, bins=min(30, max(5, len(vals) // 2)), color="#8fb3d9", edgecolor="white")
        b = data.best[m]
        if b == b and np.isfinite(b):
            ax.axvline(b, color="#d62728", lw=1.5)
        ax.set_title(LABELS[m] + (" (objective)" if m == data.objective else ""), fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(f"{len(data.runs)} runs; red line: the best run by {data.objective}", fontsize=10)
    return _laid_out(fig, rows, cols, left=0.55, right=0.15, bottom=0.35, top=0.6, wgap=0.6, hgap=0.6)


# -- heatmaps -------------------------------------------------------------------------------------------
def pairs(data: SweepData, x: str | None = None, y: str | None = None) -> list[tuple[str, str]]:
    """The parameter pairs to draw: ``x``/``y`` when given (short or dotted names), else every pair of varied ones."""
    names = varied(data)
    dotted = {p: short_name(p, list(data.spec.get("values", {}))) for p in data.spec.get("values", {})}

    def resolve(v: str, opt: str) -> str:
        col = dotted.get(v, v)
        if col not in data.params:
            raise ConfigError(f"{opt} {v!r} is not a swept parameter of {data.name}; valid: {', '.join(data.params)}")
        return col

    if x or y:
        if not (x and y):
            raise ConfigError("give both --x and --y (two swept parameters)")
        px, py = resolve(x, "--x"), resolve(y, "--y")
        if px == py:
            raise ConfigError("--x and --y must be two different parameters")
        return [(px, py)]
    return list(itertools.combinations(names, 2))


def heatmap_html(data: SweepData, x: str, y: str) -> str:
    """The objective over ``x`` and ``y`` as two heat tables (``riskon.pages.heat_table``): the rest at the best
    run's values, and the median over the rest; one colour scale, the best run's cell framed."""
    fixed, median = heat_grids(data, x, y)
    others = [p for p in data.params if p not in (x, y)]
    at_best = ", ".join(f"{p}={fmt_value(data.best[p])}" for p in others) or "no other parameters"
    titles = [f"rest at the best run ({at_best})", "median over the other parameters" if others else "all runs"]
    best = (data.best[y], data.best[x])
    return heat_pair(list(zip(titles, (fixed, median), strict=True)), x, y, best, LABELS[data.objective],
                     data.direction, fmt_value)  # fmt: skip


def _laid_out(fig, rows: int = 1, cols: int = 1, left: float = 0.8, right: float = 0.2, bottom: float = 0.7,
              top: float = 0.5, wgap: float = 0.8, hgap: float = 0.9):  # fmt: skip
    """Margins and gaps fixed in inches (room for the labels these figures draw), and no layout engine.

    ``tight_layout`` measured every label first: ~a quarter of a figure's CPU (an extra pass over the
    text), and saving re-ran it unless the engine was switched off.
    """
    width, height = fig.get_size_inches()
    axes_w = (width - left - right - (cols - 1) * wgap) / cols
    axes_h = (height - top - bottom - (rows - 1) * hgap) / rows
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                        wspace=wgap / axes_w, hspace=hgap / axes_h)  # fmt: skip
    fig.set_layout_engine("none")
    return fig


#: Slices per row of the slice figure (a sweep of many parameters gets more rows, not narrower plots).
SLICES_PER_ROW = 3


def slice_figure(data: SweepData):
    """The objective along each swept parameter, the others fixed at the best run's values.

    At most ``SLICES_PER_ROW`` slices a row; a parameter with many values (a 10,000-run sweep's trailing
    stop) keeps every point but labels only every k-th value, k the smallest that keeps the labels apart
    (``riskon.pages.charts.thin_ticks``); the best run's value is always labelled.
    """
    names = varied(data)
    cols = min(max(len(names), 1), SLICES_PER_ROW)
    rows = math.ceil(max(len(names), 1) / cols)
    fig = new_figure(12, 3.0 * rows + 0.4)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    best_at = {}
    for ax, p in zip(axes, names, strict=False):
        line = slice_of(data, p)
        xs = range(len(line))
        ax.plot(xs, line.to_numpy(), marker="o", color="#1f4e79")
        k = list(line.index).index(data.best[p])
        best_at[p] = k
        ax.scatter([k], [line.iloc[k]], color="#d62728", s=60, zorder=3)
        ax.set_xticks(list(xs), [fmt_value(v) for v in line.index], fontsize=8)
        ax.set_xlabel(p)
        ax.set_ylabel(data.objective, fontsize=8)
        ax.grid(True, alpha=0.3)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    fig.suptitle("Slices through the best run (red): one parameter moves, the rest stay", fontsize=10)
    _laid_out(fig, rows, cols, left=0.75, right=0.15, bottom=0.7, top=0.55, wgap=0.85, hgap=0.9)
    fig.draw_without_rendering()  # one layout pass for every slice's labels (the layout is final)
    for ax, p in zip(axes, names, strict=False):
        thin_ticks(ax, "x", keep=best_at[p], draw=False)
    return fig


# -- null and robustness --------------------------------------------------------------------------------
def null_section(data: SweepData, n: int, seed: int, cache=None) -> list[str]:
    """Where the best run falls in its random-entry null: a histogram of the draws, the run marked, and the table."""
    if n <= 0:
        return ['<p class="note">Random-entry null not computed (--null 0).</p>']

    row = data.store.run(data.best["run_id"], returns=False)  # re-run below for its trades
    try:
        result = rerun_stored(data.store, row, cache=cache)
    except (DataError, ConfigError, FileNotFoundError, KeyError, ValueError) as e:
        return [
            f'<p class="note">Null left out: the best run could not be re-run for its trades ({esc(one_line(e))}).</p>'
        ]
    if len(result.trades) == 0:
        return ['<p class="note">Null left out: the best run made no trades.</p>']
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs
    from riskon.analysis.random_null import null_summary, random_entry_null

    draws = random_entry_null(result, n=n, seed=seed)
    summary = null_summary(result, draws)
    metric = data.objective if data.objective in draws.columns else "sharpe"
    fig = new_figure(12, 3.6)
    ax = fig.add_subplot()
    vals = draws[metric].replace([np.inf, -np.inf], np.nan).dropna()
    ax.hist(vals, bins=40, color="#bbbbbb", edgecolor="white", label=f"random entry ({len(draws)} draws)")
    own = float(summary.at[metric, "strategy"]) if metric in summary.index else float(data.best[metric])
    ax.axvline(own, color="#d62728", lw=2, label=f"best run: {own:.2f}")
    ax.set_xlabel(LABELS.get(metric, metric))
    ax.legend(fontsize=8)
    ax.set_title(f"Best run {data.best['run_id'][:12]} against entries at random dates (same trades, same holds)")
    _laid_out(fig)
    cols = ["strategy", "null_p05", "null_median", "null_p95", "percentile"]
    cells = pd.DataFrame(index=[LABELS.get(m, m) for m in summary.index], columns=cols, dtype=object)
    for m, label in zip(summary.index, cells.index, strict=True):
        for c in cols:
            v = float(summary.at[m, c])
            fmt = PERCENTILE_FORMAT if c == "percentile" else METRICS.get(m, "{:.3g}")
            cells.at[label, c] = "" if v != v else fmt.format(v)
    cells.columns = ["best run", "null 5 %", "null median", "null 95 %", "percentile in null"]
    return [
        figure(fig, "the best run's objective against its random-entry null"),
        f'<div id="null">{table(cells)}</div>',
        '<p class="note">The best of many runs was picked, so its place in a one-run null flatters it; the '
        "deflated Sharpe ratio below accounts for the number of trials.</p>",
    ]


# -- walk-forward ---------------------------------------------------------------------------------------
def walkforward_section(data: SweepData, cache=None) -> list[str]:
    """The walk-forward of the sweep, computed from its stored runs; the hint when its config has none."""

    try:
        res = stored_walkforward(data.store, data.info["sweep_id"], cache=cache)
    except (ConfigError, DataError, OSError, ValueError, RuntimeError) as e:
        return [f'<p class="note" id="walkforward">Walk-forward not computed: {esc(one_line(e))}</p>']
    if res is None:
        return [f'<p class="note" id="walkforward">{esc(WALKFORWARD_HINT)}</p>']
    return [
        '<div id="walkforward">',
        setup_html(res),
        f'<p class="note">{esc(SEMANTICS.format(objective=res.spec.objective))}</p>',
        "<h3>In-sample against out-of-sample</h3>",
        f'<div id="walkforward-summary">{summary_html(res)}</div>',
        f'<p class="note">{esc(SUMMARY_NOTE)}</p>',
        "<h3>Out-of-sample equity</h3>",
        equity_chart(res),
        "<h3>Windows</h3>",
        f'<div id="walkforward-windows">{windows_html(res)}</div>',
        "</div>",
    ]


# -- the page -------------------------------------------------------------------------------------------
def sweep_report(
    sweep: str | None,
    db: str | Path | None = None,
    out: str | Path | None = None,
    x: str | None = None,
    y: str | None = None,
    top: int = 10,
    null_n: int = 500,
    seed: int = 0,
    cache=None,
) -> Path:
    """Write the sweep report page (default ``reports/<sweep>/sweep.html``) and return its path."""
    store = Store(db if db is not None else DEFAULT_DB)
    with store.session():  # the reads share one connection (each open of the file costs ~0.1 s)
        data = load_sweep(store, sweep)
    chosen = pairs(data, x, y)
    best = best_table(data, top)
    formats = {LABELS[m]: METRICS[m] for m in METRICS}
    # the figures are drawn by forked processes (riskon.pages.figure_pool) while this one re-runs the best run
    # for its null and reads the robustness and walk-forward
    jobs = [(functools.partial(distribution_figure, data), "histogram of each metric over the sweep")]
    if varied(data):
        jobs.append((functools.partial(slice_figure, data), "the objective along each parameter through the best run"))
    with FigurePool(jobs) as pool:
        null = null_section(data, null_n, seed, cache=cache)  # seconds of re-running: outside the session
        with store.session():  # the reads below share one connection (the workers forked before it opened)
            robust = robustness_section(data.store, data.info["sweep_id"])
            walk = walkforward_section(data, cache=cache)
            rates, bad = sweep_rates_text(store, data.info["sweep_id"]), data.store.lookahead(data.info["sweep_id"])
        images = iter(pool.results())
    sections = [
        f'<p class="note">{len(data.runs)} finished runs of {esc(data.info["n_total"])} '
        f"({esc(data.spec.get('method', '?'))} sweep, status {esc(data.info['status'])}); objective "
        f"{esc(data.objective)} ({esc(data.direction)}); swept: "
        + esc(
            "; ".join(f"{p} in [{', '.join(fmt_value(v) for v in data.values[p])}]" for p in data.params) or "nothing"
        )
        + "</p>",
        f'<p class="note" id="rates">rates: {esc(rates)} '
        "(Sharpe, Sortino, PSR and DSR in excess of the risk-free rate)</p>",
        f"<h2>Best {len(best)} runs by {esc(data.objective)}</h2>",
        f'<div id="best">{table(best, formats, index=False)}</div>',
        *([f'<p class="note" id="edge">{esc(edge)}</p>'] if (edge := edge_warning(data)) else []),
        *([f'<p class="note" id="lookahead">{esc(ALLOWED_SWEEP)}: {esc(bad)}</p>'] if bad else []),
        "<h2>Distribution of each metric</h2>",
        next(images),
        "<h2>The objective over two parameters</h2>",
    ]
    if chosen:
        sections += [heatmap_html(data, px, py) for px, py in chosen]
    else:
        sections.append('<p class="note">Fewer than two parameters vary: no heatmap.</p>')
    sections.append("<h2>Parameter stability around the best run</h2>")
    if varied(data):
        stab = stability_table(data)
        sections += [
            next(images),
            f'<div id="stability">{table(stab, {data.objective: "{:.3f}", "change": "{:+.3f}"}, index=False)}</div>',
            f'<p class="note">Neighbours: one grid step down and up along each parameter, the rest at the best '
            f"run's values; a blank objective means that neighbour was not run. Median neighbour "
            f"{esc(data.objective)}: {esc(_fmt_num(stab[data.objective].median()))} against the best run's "
            f"{esc(_fmt_num(data.best[data.objective]))}.</p>",
        ]
    else:
        sections.append('<p class="note">No parameter varies.</p>')
    sections += ["<h2>The best run against a random entry</h2>", *null, "<h2>Robustness: PSR, DSR, PBO</h2>", *robust,
                 "<h2>Walk-forward</h2>", *walk]  # fmt: skip
    path = Path(out) if out is not None else report_path(data.name, "sweep.html")  # a stored name: sanitised
    title = f"sweep {data.name}: best by {data.objective}"
    return write_page(path, page(title, sections, subtitle=f"sweep id {data.info['sweep_id']}"))


def _fmt_num(v, fmt: str = "{:.3f}") -> str:
    return "-" if v is None or v != v else fmt.format(v)


#: ``riskon.pages.sweep_data``'s functions stay importable from here, where the report always had them.
__all__ = ["SweepData", "edge_params", "edge_warning", "heat_grids", "load_sweep", "slice_of", "stability_table",
           "sweep_report", "varied"]  # fmt: skip
