"""The walk-forward page: stitched out-of-sample equity, windows, in- against out-of-sample, chosen parameters.

Takes a computed ``WalkForwardResult`` (``riskon.analysis.walk_forward``) and returns HTML; the
charts and tables here are shared by the walk-forward page and the sweep report.
"""

from __future__ import annotations

import json
from numbers import Real
from pathlib import Path

import pandas as pd

from riskon.analysis.walk_forward import NOT_AVERAGED, SEMANTICS, WalkForwardResult, is_missing, param_columns
from riskon.analysis.windows import RETURN_METRICS
from riskon.metrics import LABELS, METRICS
from riskon.pages import html
from riskon.pages.files import ensure_folder, write_csv


def equity_chart(res: WalkForwardResult) -> str:
    """The stitched out-of-sample equity against buy-and-hold (log scale, test windows shaded) as an ``<img>``.

    Shared by the walk-forward page and the sweep report.
    """
    return html.figure(equity_figure(res), "stitched out-of-sample equity against buy-and-hold, test windows shaded")


#: Font sizes of the window numbers and of the chosen parameters written in each shaded window.
WINDOW_FONT, PARAMS_FONT = 10, 8.5


def equity_figure(res: WalkForwardResult):
    """The figure of ``equity_chart``: each test window shaded and numbered, its chosen parameters below the number.

    The parameters are written only when every window's text fits inside its own shaded span; otherwise
    (many short windows) the numbers alone stay, and the parameters are in the windows table and the chart of
    chosen parameters. Window numbers that would overlap are thinned the same way.
    """
    # matplotlib loads only when a chart is drawn (the CLI imports this module)
    import matplotlib.dates as mdates

    fig = html.new_figure(12, 5.5)
    ax = fig.add_subplot(1, 1, 1)
    names = param_columns(res)
    spans, numbers, params = [], [], []
    for r in res.windows.to_dict("records"):
        a, b = r["test_start"].tz_localize(None), (r["test_end"] + pd.Timedelta(days=1)).tz_localize(None)
        ax.axvspan(a, b, color="#1f4e79" if r["window"] % 2 else "#7f7f7f", alpha=0.07, lw=0)
        label = "cash" if is_missing(r["run_id"]) else "\n".join(f"{n}={_value_text(r[n])}" for n in names)
        label += "\n(partial)" if r.get("partial") else ""
        spans.append((a, b))
        numbers.append(ax.text(a, 0.99, f" {r['window']}", transform=ax.get_xaxis_transform(), va="top", ha="left",
                               fontsize=WINDOW_FONT, fontweight="bold", color="#333"))  # fmt: skip
        params.append(ax.annotate(label, (mdates.date2num(a), 0.99), xycoords=ax.get_xaxis_transform(),
                                  xytext=(3, -WINDOW_FONT - 5), textcoords="offset points", va="top", ha="left",
                                  fontsize=PARAMS_FONT, color="#333"))  # fmt: skip
    ax.plot(res.equity.index.tz_localize(None), res.equity.to_numpy(), lw=1.3, color="#1f4e79",
            label="walk-forward, out of sample")  # fmt: skip
    ax.plot(res.benchmark.index.tz_localize(None), res.benchmark.to_numpy(), lw=1.0, color="#999",
            label="buy-and-hold over the same test windows")  # fmt: skip
    ax.set_yscale("log")
    ax.set_ylim(top=ax.get_ylim()[1] * 2.2)  # headroom above the curves for the window labels
    ax.set_ylabel("equity (log scale)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    _fit_window_labels(fig, ax, spans, numbers, params)
    return fig


def _value_text(v: object) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _fit_window_labels(fig, ax, spans: list, numbers: list, params: list) -> None:
    """Drop the parameter texts unless each fits in its window; thin the numbers until they are apart."""
    # matplotlib loads only when a chart is drawn (the CLI imports this module)
    import matplotlib.dates as mdates

    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    to_px = ax.transData.transform

    def right_edge(k: int) -> float:
        return to_px((mdates.date2num(spans[k][1]), 1.0))[0]

    if any(t.get_window_extent(renderer).x1 > right_edge(k) for k, t in enumerate(params)):
        for t in params:
            t.remove()
    shown = None
    for t in numbers:
        box = t.get_window_extent(renderer)
        if shown is not None and box.x0 < shown.x1 + 2:
            t.remove()
        else:
            shown = box


def _chart_params(res: WalkForwardResult) -> str:
    names = param_columns(res)
    obj = res.spec.objective
    fig = html.new_figure(12, 1.9 * (len(names) + 1) + 0.6)
    w = res.windows
    x = list(w["window"])
    for k, name in enumerate(names):
        ax = fig.add_subplot(len(names) + 1, 1, k + 1)
        values = list(w[name])
        if all(isinstance(v, Real) and not isinstance(v, bool) for v in values if not is_missing(v)):
            ax.plot(x, [float("nan") if is_missing(v) else v for v in values], marker="o", drawstyle="steps-mid")
            grid = sorted(v for v in res.param_grid[res.param_paths[k]] if isinstance(v, Real))
            if 0 < len(grid) <= 12:
                ax.set_yticks(grid)
            if grid:
                pad = (grid[-1] - grid[0]) * 0.08 or abs(grid[0]) * 0.1 or 1.0
                ax.set_ylim(grid[0] - pad, grid[-1] + pad)
        else:
            cats = sorted({str(v) for v in values if not is_missing(v)})
            ax.plot(x, [float("nan") if is_missing(v) else cats.index(str(v)) for v in values], marker="o", ls="")
            ax.set_yticks(range(len(cats)), cats)
        ax.set_ylabel(name, fontsize=10)
        ax.set_xticks(x)
        ax.grid(alpha=0.3)
    ax = fig.add_subplot(len(names) + 1, 1, len(names) + 1)
    ax.bar([i - 0.2 for i in x], w[f"is_{obj}"], width=0.4, label=f"in-sample {obj}", color="#999")
    ax.bar([i + 0.2 for i in x], w[f"oos_{obj}"], width=0.4, label=f"out-of-sample {obj}", color="#1f4e79")
    ax.axhline(0, color="#333", lw=0.6)
    ax.set_xticks(x)
    ax.set_xlabel("window")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return html.figure(fig, "chosen parameters and in- against out-of-sample objective per window")


def windows_frame(res: WalkForwardResult) -> pd.DataFrame:
    """The windows table for CSV and HTML: dates as text, ``partial`` (the last window cut short), the chosen
    parameters, IS and OOS metrics."""
    w = res.windows.drop(columns=["params"]).copy()
    for c in ("train_start", "train_end", "test_start", "test_end"):
        w[c] = w[c].dt.strftime("%Y-%m-%d")
    return w


def windows_html(res: WalkForwardResult) -> str:
    """The windows as three HTML tables that fit the page: the windows, their in-sample and out-of-sample metrics.

    The first: window, train and test dates, ``partial`` (the last window cut short), the number of
    candidates, the chosen run (its id's first 12 characters; the CSV has it whole) and parameters, and the
    objective in (IS) and out of sample (OOS). Then every in-sample return metric per window, and every
    out-of-sample metric. The in-sample total return (over train windows of different length) is left out
    unless it is the objective: its CAGR is the same return per year. Shared by the walk-forward page and the
    sweep report.
    """
    w = windows_frame(res)
    w["partial"] = ["partial" if p else "" for p in res.windows["partial"]]
    w["run_id"] = [r if is_missing(r) else str(r)[:12] for r in w["run_id"]]
    obj = res.spec.objective
    hidden = {f"is_{m}" for m in NOT_AVERAGED if m != obj}
    ins = [c for c in w.columns if c.startswith("is_") and c not in hidden and c[3:] in RETURN_METRICS]
    oos = [c for c in w.columns if c.startswith("oos_")]
    first = w[[c for c in w.columns if not c.startswith(("is_", "oos_"))] + [f"is_{obj}", f"oos_{obj}"]]
    first = first.rename(columns={c: c.replace("_", " ") for c in ("train_start", "train_end", "test_start",
                                                                     "test_end", "run_id")})  # fmt: skip
    heads = {c: _head(*c.split("_", 1)) for c in w.columns if c.startswith(("is_", "oos_"))}
    formats = {_head(p, m): METRICS[m] for p in ("is", "oos") for m in METRICS}
    return "".join(
        [
            html.table(first.rename(columns=heads), formats, index=False),
            '<p class="note">IS: in sample, the chosen run over its train window; OOS: out of sample, the test '
            "window traded with it. In sample, per window:</p>",
            html.table(w[["window", *ins]].rename(columns=heads), formats, index=False),
            '<p class="note">Out of sample, per window:</p>',
            html.table(w[["window", *oos]].rename(columns=heads), formats, index=False),
        ]
    )


def _head(part: str, metric: str) -> str:
    """A metrics column's heading: ``IS Sharpe (365)``, ``OOS Max drawdown`` (it wraps at its spaces)."""
    return f"{part.upper()} {LABELS.get(metric, metric)}"


def summary_html(res: WalkForwardResult) -> str:
    """In-sample mean, out-of-sample mean, stitched out-of-sample and buy-and-hold per metric, as an HTML table.

    Shared by the walk-forward page and the sweep report.
    """
    return html.table(res.summary.rename(index=LABELS), {LABELS[m]: METRICS[m] for m in METRICS})


#: What the in-sample against out-of-sample table's columns mean (below the table on both pages).
SUMMARY_NOTE = (
    "in sample mean: the chosen run over its train window, averaged over windows; out of sample mean: each test "
    "window, averaged (undefined values such as the Sharpe ratio of a window without trades are left out); out of "
    "sample: the stitched test windows, trade statistics pooled over all their trades. Train windows are longer "
    "than test windows (anchored ones grow, and the last test window may be partial), so total returns are not "
    "averaged: compare CAGR, the same return per year. Max drawdown (and Calmar) deepen with a window's length."
)


def setup_html(res: WalkForwardResult) -> str:
    """One paragraph: index and target, the sweep and its parameters, the windows, the objective and the engine."""
    cfg, spec = res.config, res.spec
    target = ", ".join(cfg.target["assets"])
    return (
        f"<p>{html.esc(cfg.data['index'])} &rarr; {html.esc(target)}; sweep {html.esc(res.sweep_id)} "
        f"({len(res.param_paths)} parameters swept: {html.esc(', '.join(res.param_paths))}); "
        f"{html.esc(spec.mode)} windows, train {spec.train_days} days, test {spec.test_days} days, step "
        f"{spec.step_days} days; {len(res.windows)} windows{_partial_text(res)}; objective {html.esc(spec.direction)} "
        f"{html.esc(spec.objective)}; {html.esc(res.engine)} engine.</p>"
    )


def _partial_text(res: WalkForwardResult) -> str:
    """`` (the last one partial: 2025-09-14 .. 2026-08-21, 342 of 365 test days)`` or nothing."""
    w = res.windows
    if not len(w) or not bool(w["partial"].iloc[-1]):
        return ""
    a, b = w["test_start"].iloc[-1], w["test_end"].iloc[-1]
    return (
        f" (the last one partial: {a:%Y-%m-%d} .. {b:%Y-%m-%d}, {(b - a).days + 1} of {res.spec.test_days} test "
        "days, cut by the end of the data)"
    )


def write_report(res: WalkForwardResult, folder: Path) -> dict[str, Path]:
    """Write the HTML page and the windows and equity CSVs; returns their paths."""
    ensure_folder(folder)
    paths = {}
    w = windows_frame(res)
    paths["windows"] = folder / "walkforward_windows.csv"
    params = [json.dumps(p, sort_keys=True) for p in res.windows["params"]]
    write_csv(w.assign(params=params), paths["windows"], index=False)
    eq = pd.DataFrame({"returns": res.returns, "equity": res.equity, "buy_and_hold": res.benchmark})
    eq.index = eq.index.tz_convert(None).rename("date")
    paths["equity"] = folder / "walkforward_equity.csv"
    write_csv(eq, paths["equity"])
    spec = res.spec
    trades = res.trades
    sections = [
        setup_html(res),
        f'<p class="note">{html.esc(SEMANTICS.format(objective=spec.objective))}</p>',
        "<h2>In-sample against out-of-sample</h2>",
        summary_html(res),
        f'<p class="note">{html.esc(SUMMARY_NOTE)}</p>',
        "<h2>Out-of-sample equity</h2>",
        equity_chart(res),
        "<h2>Windows</h2>",
        windows_html(res),
        "<h2>Chosen parameters per window</h2>",
        _chart_params(res),
    ]
    if len(trades):
        t = trades[["window", "asset", "entry_time", "entry_price", "exit_time", "exit_price", "exit_reason", "pnl"]]
        t = t.assign(**{c: t[c].dt.strftime("%Y-%m-%d") for c in ("entry_time", "exit_time")})
        prices = {"entry_price": "{:,.2f}", "exit_price": "{:,.2f}", "pnl": "{:,.2f}"}
        sections += ["<h2>Out-of-sample trades</h2>", html.table(t, prices, index=False)]
    text = html.page(f"walk-forward: {res.name}", sections, res.description)
    paths["page"] = html.write_page(folder / "walkforward.html", text)
    return paths
