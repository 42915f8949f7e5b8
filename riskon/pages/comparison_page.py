"""The comparison page: runs side by side, overlaid equity and drawdowns, the null per run, monthly returns.

Takes a ``Comparison`` built by ``riskon.analysis.comparison`` and returns HTML or figures.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from riskon.analysis.comparison import MONTHS, Comparison, drawdown, monthly_returns, wealth
from riskon.metrics import LABELS, METRICS, format_metric
from riskon.pages.compare_chart import comparison_section
from riskon.pages.html import esc, figure, new_figure, page, report_path, table, write_page
from riskon.pages.paths import NAME_CAP
from riskon.pages.run_chart import write_plotly_js

#: How the null's percentile (a share of draws, 0..1) is shown.
PERCENTILE_FORMAT = "{:.0%}"
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
NULL_HOW = (
    "Random-entry null: the run's trades (same count, same holding periods) placed at seeded random entry "
    "dates, {n} draws; 'percentile' is the share of draws the run beat (higher is better, for drawdown too: "
    "a shallower drawdown beats a deeper one)."
)


def equity_figure(comp: Comparison) -> Figure:
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
    # matplotlib loads only when a chart is drawn
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:.0%}")


def monthly_figure(grid: pd.DataFrame, label: str) -> Figure:
    """A red/green heatmap of monthly returns (and each year's total) with the values written in the cells."""
    # matplotlib loads only when a chart is drawn
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


def null_figure(comp: Comparison, metric: str = "sharpe") -> Figure:
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


def format_value(row: str, value: float) -> str:
    """A cell of the metrics table as the terminal prints it (``row`` is a metric or a ``null_*`` row)."""
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
            "rates": [e.rates for e in comp.entries],
            "compared with": [e.bench_label for e in comp.entries],
        }
    )
    rates = comp.entries[0].rates if comp.rates_warning is None else "each run's own (see the runs table)"
    sections = [
        "<h2>Runs</h2>",
        f'<div class="text">{table(runs, index=False)}</div>',
        *([f'<p class="note" id="rates-differ">warning: {esc(comp.rates_warning)}</p>'] if comp.rates_warning else []),
        "<h2>Metrics side by side</h2>",
        f'<div id="metrics">{table(shown, formats)}</div>',
        f'<p class="note">Daily returns, 365 days a year; rates: {esc(rates)} (Sharpe and Sortino are in excess of '
        "the risk-free rate; a buy-and-hold column, of its first run's). Each run is compared with the "
        "benchmark its runs-table row names: buy-and-hold of its target (a basket: equal cash into each coin at its "
        "own first bar, a coin whose data ends sold at its last close) or a config's [report] benchmark series, "
        "bought at the first open with the same costs and held. "
        + esc(NULL_HOW.format(n=comp.null_n) if comp.null_n else "Random-entry null: not computed (--null 0).")
        + "</p>",
    ]
    notes = [f"{e.label}: {n}" for e in comp.entries for n in e.notes]
    if notes:
        sections.append('<p class="note">' + "<br>".join(esc(n) for n in notes) + "</p>")
    sections += ["<h2>Equity and drawdowns</h2>", figure(equity_figure(comp), "equity curves and drawdowns")]
    sections += comparison_section(comp)  # the same chart, interactive: zoom and pan linked, fills (Plotly)
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
    """``reports/<sweep>/compare-top<N>.html`` for a sweep's best runs, else ``reports/compare/<labels>.html``.

    Built from sanitised names and checked to stay inside the reports folder (``riskon.pages.paths``).
    """
    if sweep:
        return report_path(_slug(sweep), f"compare-top{len(comp.entries)}.html")
    return report_path("compare", _slug("-vs-".join(e.label for e in comp.entries))[: NAME_CAP - 5] + ".html")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._")[:NAME_CAP] or "runs"


def write_comparison(comp: Comparison, path: str | Path) -> Path:
    """Write the comparison page, with ``plotly.min.js`` beside it (and refresh reports/index.html)."""
    write_plotly_js(Path(path).parent)
    return write_page(path, comparison_html(comp))
