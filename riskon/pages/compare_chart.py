"""The interactive chart of ``riskon compare`` (Plotly): equity and drawdown of up to 8 runs, linked, with fills.

The same panels and helpers as the run page (``riskon.pages.run_chart``): one time axis for both panels, so
a zoom or pan in either moves both; each run whose trades are at hand gets one marker per entry fill and
one per exit fill on its own equity line, with the trade's hover text. Plotly comes from ``plotly.min.js``
beside the page (``write_plotly_js``); nothing is fetched.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from riskon.analysis.comparison import Comparison, drawdown, wealth
from riskon.pages.html import esc
from riskon.pages.run_chart import (
    COLORS,
    ZOOM_JS,
    figure_div,
    fill_markers,
    line_trace,
    plotly_script,
    style,
    time_axis,
)
from riskon.runner import Result

#: ``riskon compare`` draws at most this many runs in its interactive chart (the rest: the tables and PNGs).
MAX_RUNS = 8


def comparison_figure(comp: Comparison) -> go.Figure:
    """Growth of 1 (log) and drawdown of up to ``MAX_RUNS`` runs and their benchmarks, linked, with fills.

    A run whose trades are at hand (a config or a ``Result``; a stored run when its null was computed) gets
    its entry and exit fills marked on its equity line (at that bar's close), each with the trade's hover text.
    """
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.05, row_heights=[0.65, 0.35],
                        subplot_titles=["growth of 1 (log), entry and exit fills", "drawdown"])  # fmt: skip
    for i, e in enumerate(comp.entries[:MAX_RUNS]):
        c, group, x = COLORS[i % len(COLORS)], f"run{i}", time_axis(e.returns.index)
        w = wealth(e.returns)
        fig.add_trace(line_trace(x, w, e.label, c, fmt=",.4f", legendgroup=group), row=1, col=1)
        dd = line_trace(
            x, drawdown(e.returns), f"{e.label} drawdown", c, fmt=".2%", legendgroup=group, showlegend=False
        )
        fig.add_trace(dd, row=2, col=1)
        res = e.result if isinstance(e.result, Result) else None
        if res is None or res.trades.empty:
            continue
        tr = res.trades
        on_curve = [
            w.reindex(pd.DatetimeIndex(t).tz_convert("UTC").tz_localize(None).as_unit("us"), method="ffill").to_numpy()
            for t in (tr["entry_time"], tr["exit_time"])
        ]
        names = (f"{e.label} entries", f"{e.label} exits")
        for trace in fill_markers(tr, *on_curve, names, e.label, color=c, legendgroup=group, showlegend=False):
            fig.add_trace(trace, row=1, col=1)
    for j, (label, b) in enumerate(comp.benchmarks.items()):
        color, line = ("#555555", {"dash": "dash"}) if j == 0 else ("#999999", {"dash": "dot"})
        x = time_axis(b.index)
        fig.add_trace(line_trace(x, wealth(b), label, color, fmt=",.4f", line=line), row=1, col=1)
        dd = line_trace(x, drawdown(b), f"{label} drawdown", color, fmt=".2%", line=line, showlegend=False)
        fig.add_trace(dd, row=2, col=1)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_yaxes(tickformat=".0%", row=2, col=1)
    days = [e.returns.index for e in comp.entries[:MAX_RUNS]] + [b.index for b in comp.benchmarks.values()]
    start, end = min(d[0] for d in days), max(d[-1] for d in days)
    style(fig, 760, start - pd.Timedelta(days=1), end + pd.Timedelta(days=2))
    return fig


def comparison_section(comp: Comparison) -> list[str]:
    """The compare page's interactive section: the script tag, a heading, a note and the linked chart."""
    more = len(comp.entries) - MAX_RUNS
    note = f" The first {MAX_RUNS} runs are drawn; {more} more are in the tables and static charts." if more > 0 else ""
    return [
        plotly_script(),
        "<h2>Interactive: equity, drawdowns and fills</h2>",
        '<p class="note">Drag to zoom, double-click to reset: both panels follow. Hover a triangle for its trade '
        f"(entries and exits sit on the run's equity at that bar's close); click a legend entry to hide a run."
        f"{esc(note)}</p>",
        figure_div(comparison_figure(comp), "compare-chart"),
        f"<script>{ZOOM_JS}</script>",  # a zoom fits each panel's value axis to the runs in view
    ]
