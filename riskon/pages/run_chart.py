"""The interactive run page ``run.html`` (Plotly): linked panels of one run, drawn from its computed data.

Panels share one time axis (Plotly ``matches``), so a zoom or pan in any panel moves them all:

* the asset close (log) with one marker per entry fill and one per exit fill of every leg, and the
  trailing-stop level that is the exit trigger while a position is open (``riskon.analysis.run_marks``);
* a basket's position value with its trailing level (a basket trails its value, not a coin's price);
* the index close, its all-time high, each break level and the confirmation windows (shaded from the break
  session to the close of the bar that saw the signal);
* equity beside the benchmark, and both drawdowns.

Offline: the page loads Plotly from ``plotly.min.js`` written beside it (one file per folder, copied from
the installed ``plotly`` package, rewritten only when it differs); nothing is fetched. Times are bar open
times in UTC, as in ``trades.csv``. Every name from a config or the data is escaped. The helpers here are
shared with ``riskon.pages.compare_chart``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from riskon.analysis.comparison import drawdown
from riskon.analysis.run_marks import bar_length, confirmation_windows, position_levels
from riskon.metrics import price_text
from riskon.pages.files import write_atomic
from riskon.pages.html import esc, page, table, write_page
from riskon.runner import Result

#: The script file beside every page that holds a Plotly chart.
PLOTLY_JS = "plotly.min.js"
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
ENTRY, EXIT = "#2ca02c", "#d62728"
#: Plotly's toolbar without the select tools and autoscale (the time axis keeps an explicit range, see
#: ``style``); the mouse wheel scrolls the page, a drag zooms, a double click resets.
CONFIG = {
    "displaylogo": False,
    "scrollZoom": False,
    "responsive": True,
    "doubleClick": "reset",
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
}
#: The page's only script besides Plotly: a trade's button zooms the chart to it, and whenever the time
#: range changes (a drag, a button, the range selector) every panel's value axis is fitted to the points
#: inside the new range (Plotly keeps a y axis on the whole history otherwise, so a zoomed trade is flat).
ZOOM_JS = """
function riskonFitY(gd) {
  var fl = gd._fullLayout, xr = fl.xaxis.range, lo = fl.xaxis.r2l(xr[0]), hi = fl.xaxis.r2l(xr[1]);
  var ext = {};
  (gd.calcdata || []).forEach(function (cd, k) {
    var t = gd._fullData[k];
    if (!t || t.visible !== true || t.type !== 'scatter') return;
    var name = 'yaxis' + (t.yaxis === 'y' ? '' : t.yaxis.slice(1)), e = ext[name] || [Infinity, -Infinity];
    cd.forEach(function (pt) {
      if (pt.x >= lo && pt.x <= hi && isFinite(pt.y) && (fl[name].type !== 'log' || pt.y > 0)) {
        e[0] = Math.min(e[0], pt.y); e[1] = Math.max(e[1], pt.y);
      }
    });
    if (t.fill === 'tozeroy' && e[0] <= e[1]) { e[0] = Math.min(e[0], 0); e[1] = Math.max(e[1], 0); }
    ext[name] = e;
  });
  var update = {};
  Object.keys(ext).forEach(function (name) {
    var e = ext[name], log = fl[name].type === 'log';
    if (!(e[0] <= e[1])) return;
    var a = log ? Math.log10(e[0]) : e[0], b = log ? Math.log10(e[1]) : e[1];
    var pad = (b - a) * 0.05 || (log ? 0.02 : Math.abs(a) * 0.05 || 1);
    update[name + '.range'] = [a - pad, b + pad];
  });
  if (Object.keys(update).length) Plotly.relayout(gd, update);
}
document.querySelectorAll('.plotly-graph-div').forEach(function (gd) {
  gd.on('plotly_relayout', function (ev) {
    if (Object.keys(ev).some(function (key) { return key.indexOf('xaxis') === 0; })) riskonFitY(gd);
  });
});
document.querySelectorAll('button[data-x0]').forEach(function (b) {
  b.addEventListener('click', function () {
    var gd = document.getElementById(b.dataset.chart);
    Plotly.relayout(gd, {'xaxis.range': [b.dataset.x0, b.dataset.x1]});
    gd.scrollIntoView({behavior: 'smooth'});
  });
});
"""


def epoch_ms(times: pd.Index | pd.Series) -> np.ndarray:
    """Times as float milliseconds since the epoch (UTC): Plotly's date axes read them, and they pack small."""
    t = pd.DatetimeIndex(times)
    if t.tz is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    out = t.as_unit("ms").asi8.astype("float64")
    out[t.isna()] = np.nan
    return out


def naive(t: object) -> pd.Timestamp:
    """A time as a naive UTC ``Timestamp`` (Plotly's date axes have no time zone)."""
    t = pd.Timestamp(t)
    return t.tz_convert("UTC").tz_localize(None) if t.tzinfo is not None else t


def when(t: object, date_only: bool = False) -> str:
    if t is None or pd.isna(t):
        return "-"
    t = pd.Timestamp(t)
    if t.tzinfo is not None:
        t = t.tz_convert("UTC")
    return f"{t:%Y-%m-%d}" if date_only or (t.hour, t.minute) == (0, 0) else f"{t:%Y-%m-%d %H:%M}"


def trade_text(leg: pd.Series) -> str:
    """A trade's hover text: signal session, decision, both fills, PnL and exit reason (names escaped)."""
    lines = [
        f"<b>{esc(leg['asset'])}</b> position {int(leg['position'])}",
        f"signal session {when(leg['signal_session'], True)}; decided at the close of bar {when(leg['decision_time'])}",
        f"entry fill {when(leg['entry_time'])} open @ {price_text(leg['entry_price'])}, size {leg['size']:.6g}",
    ]
    if bool(leg["open"]):
        lines.append(f"still open: marked at the last close {price_text(leg['exit_price'])} ({when(leg['exit_time'])})")
    else:
        at = "close" if leg["exit_reason"] == "data_end" else "open"
        lines.append(f"exit fill {when(leg['exit_time'])} {at} @ {price_text(leg['exit_price'])}")
        lines.append(
            f"exit reason {esc(leg['exit_reason'])}, decided at the close of bar {when(leg['exit_decision_time'])}"
        )
    lines.append(f"PnL {leg['pnl']:,.2f} (fees included)")
    return "<br>".join(lines)


def fill_markers(
    trades: pd.DataFrame, y_entry: np.ndarray, y_exit: np.ndarray, names: tuple[str, str], label: str = "", **kw: object
) -> list[go.Scatter]:
    """Two marker traces: one entry marker per leg and one exit marker per closed leg, with the trade's hover.

    Times and prices go in as plain lists (a few hundred numbers at most), so the live page's ``gd.data`` holds
    them as arrays anyone can read back. ``label`` heads each hover text; ``kw`` goes to both traces.
    """
    head = f"<b>{esc(label)}</b><br>" if label else ""
    text = [head + trade_text(leg) for _, leg in trades.iterrows()]
    closed = ~trades["open"].to_numpy(dtype=bool)
    color = kw.pop("color", None)
    out = []
    for name, times, y, mask, symbol, edge in (
        (names[0], trades["entry_time"], y_entry, np.ones(len(trades), bool), "triangle-up", ENTRY),
        (names[1], trades["exit_time"], y_exit, closed, "triangle-down", EXIT),
    ):
        marker = {"symbol": symbol, "size": 11 if color is None else 9, "color": color or edge,
                  "line": {"width": 1, "color": "#333333" if color is None else edge}}  # fmt: skip
        hover = [t for t, m in zip(text, mask, strict=True) if m]
        x = epoch_ms(times[mask]).tolist()
        out.append(go.Scatter(x=x, y=np.asarray(y, "float64")[mask].tolist(), mode="markers", name=esc(name),
                              hovertext=hover, hoverinfo="text", marker=marker, **kw))  # fmt: skip
    return out


def time_axis(times: pd.Index | pd.Series) -> dict[str, object]:
    """A line's x: ``x0``/``dx`` (ms) when the times are evenly spaced (no x array to ship), else the array."""
    x = epoch_ms(times)
    steps = np.diff(x)
    if len(x) > 2 and np.isfinite(x).all() and (steps == steps[0]).all():
        return {"x0": float(x[0]), "dx": float(steps[0])}
    return {"x": x}


def line_trace(x: dict[str, object], y: object, name: str, color: str, **kw: object) -> go.Scatter:
    """A line trace on ``_axis`` times with a one-line hover (``fmt``: its d3 number format)."""
    fmt = kw.pop("fmt", ",.6g")
    return go.Scatter(
        **x,
        y=np.asarray(y, dtype="float64"),
        mode="lines",
        name=esc(name),
        line={"color": color, "width": 1.2, **kw.pop("line", {})},
        hovertemplate=f"{esc(name)} %{{y:{fmt}}}<extra></extra>",
        **kw,
    )


def _gapped(levels: pd.DataFrame, column: str, times: pd.DatetimeIndex) -> np.ndarray:
    """A level on the full bar axis, NaN where no position is open (a gap between positions)."""
    s = levels[column].reindex(times) if len(levels) else pd.Series(np.nan, index=times)
    return s.to_numpy(dtype="float64")


def run_figure(result: Result) -> go.Figure:
    """The run's linked panels (asset, basket value, index, equity, drawdown) as one Plotly figure."""
    cfg, bars, trades = result.config, result.bars, result.trades
    single = len(result.assets) == 1
    x = time_axis(bars.index)
    titles = ["asset close (log), fills and trailing stop" if single else "asset closes (log) and fills"]
    titles += [] if single else ["position value and its trailing stop"]
    titles += [f"index {cfg.data['index']}: close, all-time high, breaks", "equity (log)", "drawdown"]
    heights = [0.34, 0.26, 0.24, 0.16] if single else [0.26, 0.16, 0.22, 0.2, 0.16]
    fig = make_subplots(rows=len(titles), cols=1, shared_xaxes=True, vertical_spacing=0.035, row_heights=heights,
                        subplot_titles=[esc(t) for t in titles])  # fmt: skip
    levels, p = position_levels(result), result.backtest.params
    dotted, dashed = {"dash": "dot"}, {"dash": "dash"}

    def add(row: int, *traces: go.Scatter) -> None:
        for trace in traces:
            fig.add_trace(trace, row=row, col=1)

    for k, (name, frame) in enumerate(result.assets.items()):
        add(1, line_trace(x, frame["close"], f"{name} close", COLORS[k % len(COLORS)]))
    if len(trades):
        add(1, *fill_markers(trades, trades["entry_price"], trades["exit_price"], ("entry fills", "exit fills")))
    if single and p.trail is not None:
        name = f"trailing stop ({p.trail:.0%} below the peak close since entry)"
        add(1, line_trace(x, _gapped(levels, "trail_price", bars.index), name, "#ff7f0e", line=dotted))
    if single and p.stop is not None:
        add(1, line_trace(x, _gapped(levels, "stop_price", bars.index), "fixed stop", "#8c564b", line=dashed))
    if not single:
        add(2, line_trace(x, _gapped(levels, "value", bars.index), "position value", "#1f77b4", fmt=",.2f"))
        if p.trail is not None:
            name = f"trailing stop ({p.trail:.0%} below the peak value)"
            add(2, line_trace(x, _gapped(levels, "trail_level", bars.index), name, "#ff7f0e", fmt=",.2f", line=dotted))
    row = 2 if single else 3
    _index_panel(fig, result, row, x)
    label = result.benchmark_label
    add(row + 1, line_trace(x, result.equity, "equity", "#1f77b4", fmt=",.2f"),
        line_trace(x, result.benchmark, label, "#777777", fmt=",.2f", line=dashed))  # fmt: skip
    add(row + 2, line_trace(x, drawdown(result.returns), "drawdown", "#d62728", fmt=".2%", fill="tozeroy"))
    add(
        row + 2,
        line_trace(x, drawdown(result.benchmark_returns), f"{label} drawdown", "#777777", fmt=".2%", line=dashed),
    )
    for r in range(1, row + 2):  # prices, values, the index and equity: log; drawdown: linear
        fig.update_yaxes(type="log", row=r, col=1)
    fig.update_yaxes(tickformat=".0%", row=row + 2, col=1)
    step = bar_length(bars.index)
    style(fig, 240 * len(titles) + 120, naive(bars.index[0]) - step, naive(bars.index[-1]) + 2 * step)
    return fig


def _index_panel(fig: go.Figure, result: Result, row: int, x: dict[str, object]) -> None:
    """The index close and all-time high as the strategy saw them at each bar, break levels, windows, signals."""
    bars = result.bars
    fig.add_trace(line_trace(x, bars["idx_close"], "index close", "#333333"), row=row, col=1)
    fig.add_trace(line_trace(x, bars["idx_ath"], "all-time high", "#9467bd", line={"dash": "dot"}), row=row, col=1)
    win = confirmation_windows(result)
    if win.empty:
        return
    end = pd.DatetimeIndex(win["bar"]) + bar_length(bars.index)  # the close at which the signal was seen
    start = pd.DatetimeIndex(win["break_session"]).tz_localize("UTC")
    xs, ys = [], []
    for a, b, lv in zip(epoch_ms(start), epoch_ms(end), win["level"], strict=True):
        xs += [a, b, np.nan]
        ys += [lv, lv, np.nan]
    fig.add_trace(
        go.Scatter(
            x=np.array(xs),
            y=np.array(ys),
            mode="lines",
            name="break levels",
            hoverinfo="skip",
            line={"color": "#ff7f0e", "width": 2},
        ),
        row=row,
        col=1,
    )
    taken = {True: "taken: a position entered", False: "not taken (in a position, cooling down or a repeat)"}
    cols = ["break_session", "signal_session", "level", "bar", "entered"]
    text = [
        f"break session {when(s, True)}, signal session {when(g, True)}<br>break level {lv:,.2f}; seen at the "
        f"close of bar {when(t)}<br>{taken[bool(e)]}"
        for s, g, lv, t, e in win[cols].itertuples(index=False)
    ]
    fig.add_trace(
        go.Scatter(
            x=epoch_ms(end),
            y=win["level"].to_numpy(dtype="float64"),
            mode="markers",
            name="signals",
            hovertext=text,
            hoverinfo="text",
            marker={"symbol": "diamond", "size": 7, "color": np.where(win["entered"], ENTRY, "#bbbbbb")},
        ),
        row=row,
        col=1,
    )
    axis = "" if row == 1 else str(row)
    shapes = [
        {
            "type": "rect",
            "x0": a,
            "x1": b,
            "xref": f"x{axis}",
            "y0": 0,
            "y1": 1,
            "yref": f"y{axis} domain",
            "fillcolor": "#ff7f0e",
            "opacity": 0.15,
            "line": {"width": 0},
            "layer": "below",
        }
        for a, b in zip(epoch_ms(start).tolist(), epoch_ms(end).tolist(), strict=True)
    ]
    fig.update_layout(shapes=[*fig.layout.shapes, *shapes])  # one assignment: add_shape re-validates them all


def style(fig: go.Figure, height: int, start: pd.Timestamp, end: pd.Timestamp) -> None:
    """Layout shared by both charts. The time axis starts with an explicit range (``start`` .. ``end``), not
    autorange: Plotly autoranges a ``matches`` group from its reference axis, so while that axis autoranges,
    ``Plotly.relayout`` of another panel's range is undone; with a range set, any panel's relayout moves all.
    A double click resets to that range."""
    fig.update_layout(
        template="plotly_white",
        height=height,
        hovermode="closest",
        dragmode="zoom",
        margin={"l": 60, "r": 20, "t": 70, "b": 40},
        legend={"orientation": "h", "yanchor": "top", "y": -0.03, "x": 0, "font": {"size": 10}},
    )
    span = [f"{t:%Y-%m-%d %H:%M}" for t in (start, end)]
    fig.update_xaxes(type="date", range=span, autorange=False, showspikes=True, spikemode="across", spikethickness=1)
    fig.update_xaxes(
        rangeselector={
            "buttons": [
                {"count": 1, "label": "1m", "step": "month", "stepmode": "backward"},
                {"count": 6, "label": "6m", "step": "month", "stepmode": "backward"},
                {"count": 1, "label": "1y", "step": "year", "stepmode": "backward"},
                {"step": "all"},
            ]
        },
        row=1,
        col=1,
    )
    fig.update_annotations(font_size=12)


def figure_div(fig: go.Figure, div_id: str) -> str:
    """A figure as a ``<div>`` and its ``Plotly.newPlot`` call; Plotly itself comes from ``plotly.min.js``."""
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=CONFIG)


def plotly_script() -> str:
    """The ``<script>`` that loads the Plotly file beside the page (relative: it works from file://)."""
    return f'<script src="{PLOTLY_JS}" charset="utf-8"></script>'


def write_plotly_js(folder: str | Path) -> Path:
    """Write ``plotly.min.js`` into ``folder`` from the installed plotly package, unless the same file is there."""
    path = Path(folder) / PLOTLY_JS
    data = resources.files("plotly").joinpath("package_data", PLOTLY_JS).read_bytes()
    if not (path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data):
        write_atomic(path, lambda f: f.write(data))
    return path


def _zoom_table(trades: pd.DataFrame, chart: str, pad: pd.Timedelta) -> str:
    """The trades with a button each that zooms every panel to the trade (entry - pad .. exit + pad)."""
    if trades.empty:
        return "<p>No trades.</p>"
    shown = pd.DataFrame(
        {
            "#": trades["position"].astype(int),
            "asset": trades["asset"],
            "signal session": [when(t, True) for t in trades["signal_session"]],
            "entry": [
                f"{when(t)} @ {price_text(p)}" for t, p in zip(trades["entry_time"], trades["entry_price"], strict=True)
            ],
            "exit": [
                ("open" if o else f"{when(t)} @ {price_text(p)}")
                for t, p, o in zip(trades["exit_time"], trades["exit_price"], trades["open"], strict=True)
            ],
            "reason": trades["exit_reason"],
            "pnl": trades["pnl"],
        }
    )
    html = table(shown, {"pnl": "{:,.2f}"}, index=False)
    buttons = [
        f'<button data-chart="{chart}" data-x0="{when(a - pad)}" data-x1="{when(b + pad)}">zoom</button>'
        for a, b in zip(trades["entry_time"], trades["exit_time"], strict=True)
    ]
    rows = html.split("</tr>")
    out = [rows[0].replace("<th>#</th>", "<th></th><th>#</th>", 1)]
    out += [r.replace("<tr>", f"<tr><td>{b}</td>", 1) for r, b in zip(rows[1:], buttons, strict=False)]
    return "</tr>".join(out + rows[1 + len(buttons) :])


def run_page_html(result: Result, links: dict[str, str] | None = None) -> str:
    """The whole ``run.html``: links to the run's other files, the linked panels and the trades with zoom buttons."""
    cfg = result.config
    bars = result.bars
    links = links or {}
    nav = " · ".join(f'<a href="{esc(href)}">{esc(label)}</a>' for label, href in links.items())
    pf = cfg.portfolio
    rates = f"cash rate {pf.get('cash_rate') or 0}, risk-free rate {pf.get('risk_free') or 0}"
    sections = [
        plotly_script(),
        f"<p>{esc(cfg.description)}</p>",
        f'<p class="note">{esc(cfg.data["index"])} {esc(result.rule_text)} &rarr; {esc(", ".join(result.assets))}; '
        f"{bars.index[0]:%Y-%m-%d} .. {bars.index[-1]:%Y-%m-%d}, {len(bars)} bars; {esc(rates)}. Times are bar open "
        "times (UTC); a bar's close is drawn at its open time. Drag to zoom, double-click to reset; every panel "
        "follows. Hover a triangle for its trade.</p>",
        f"<p>{nav}</p>" if nav else "",
        figure_div(run_figure(result), "run-chart"),
        "<h2>Trades</h2>",
        _zoom_table(result.trades, "run-chart", 5 * bar_length(bars.index)),
        f"<script>{ZOOM_JS}</script>",
    ]
    return page(f"{cfg.name}: run", sections, subtitle="interactive run page (Plotly, offline)")


def write_run_page(result: Result, path: str | Path, links: dict[str, str] | None = None) -> Path:
    """Write ``run.html`` (and ``plotly.min.js`` beside it); returns the page's path."""
    path = Path(path)
    write_plotly_js(path.parent)
    return write_page(path, run_page_html(result, links))


def figure_json(fig: go.Figure) -> dict:
    """The figure as the JSON Plotly.js receives (for tests and notebooks)."""
    return json.loads(fig.to_json())
