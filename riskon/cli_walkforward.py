"""``riskon walkforward CONFIG``: the walk-forward of a sweep grid, printed and written as an HTML page.

The terminal shows the windows (dates, chosen parameters, in- and out-of-sample
numbers) and the in-sample against out-of-sample summary; the page adds the
stitched out-of-sample equity against buy-and-hold (log scale, test windows
shaded) and the chosen parameters per window. Under ``reports/<name>/`` (or
``--out``): ``walkforward.html``, ``walkforward_windows.csv`` and
``walkforward_equity.csv``.
"""

from __future__ import annotations

import json
import math
import time
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import typer
from rich.table import Table

from riskon.cli_run import LABELS, metrics_table
from riskon.console import console
from riskon.metrics import METRICS, format_metric
from riskon.store import DEFAULT_DB

if TYPE_CHECKING:
    from riskon.walkforward import WalkForwardResult

SEMANTICS = (
    "In-sample: each combination's stored full-history daily returns over the train window (a position carried "
    "in from before the window counts; one open at its end is marked, not sold); the best {objective} wins "
    "(ties: the first in grid order). Out-of-sample: the chosen combination trades the test window starting "
    "flat, on signals computed from past data only; a position open at the window's last bar is sold at that "
    "close with the fee (no slippage, as every data-end sale). Buy-and-hold buys the target at each test "
    "window's first open and sells at its last close, with the same costs; both are compounded across windows."
)


def _missing(value: object) -> bool:
    """No value: None, or NaN where pandas filled a window that chose nothing."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _d(ts: pd.Timestamp) -> str:
    return f"{ts:%Y-%m-%d}"


def windows_table(res: WalkForwardResult) -> Table:
    """One row per window: dates, chosen parameters, in-sample and out-of-sample numbers."""
    obj = res.spec.objective
    names = [c for c in res.windows.columns if c in _param_columns(res)]
    table = Table(title=f"windows ({res.spec.mode}; chosen by in-sample {obj})")
    cols = ["#", "train", "test", *names, f"IS {obj}", "IS CAGR", f"OOS {obj}", "OOS return", "OOS max DD", "trades"]
    for c in cols:
        table.add_column(c, justify="left" if c in ("train", "test") else "right")
    for r in res.windows.to_dict("records"):
        table.add_row(
            str(r["window"]),
            f"{_d(r['train_start'])} .. {_d(r['train_end'])}",
            f"{_d(r['test_start'])} .. {_d(r['test_end'])}",
            *("-" if _missing(r[n]) else str(r[n]) for n in names),
            format_metric(obj, r[f"is_{obj}"]),
            format_metric("cagr", r["is_cagr"]),
            format_metric(obj, r[f"oos_{obj}"]),
            format_metric("total_return", r["oos_total_return"]),
            format_metric("max_drawdown", r["oos_max_drawdown"]),
            format_metric("trades", r["oos_trades"]),
        )
    return table


def _param_columns(res: WalkForwardResult) -> list[str]:
    from riskon.store import short_name

    return [short_name(p, res.param_paths) for p in res.param_paths]


def equity_chart(res: WalkForwardResult) -> str:
    """The stitched out-of-sample equity against buy-and-hold (log scale, test windows shaded) as an ``<img>``.

    Shared by the walk-forward page and the sweep report.
    """
    from riskon import html

    fig = html.new_figure(12, 5.5)
    ax = fig.add_subplot(1, 1, 1)
    names = _param_columns(res)
    for r in res.windows.to_dict("records"):
        a, b = r["test_start"].tz_localize(None), (r["test_end"] + pd.Timedelta(days=1)).tz_localize(None)
        ax.axvspan(a, b, color="#1f4e79" if r["window"] % 2 else "#7f7f7f", alpha=0.07, lw=0)
        label = "cash" if _missing(r["run_id"]) else "\n".join(f"{n}={r[n]}" for n in names)
        ax.text(a, 1.0, f" {r['window']}: {label}", transform=ax.get_xaxis_transform(), va="top", ha="left",
                fontsize=7, color="#333")  # fmt: skip
    ax.plot(res.equity.index.tz_localize(None), res.equity.to_numpy(), lw=1.3, color="#1f4e79",
            label="walk-forward, out of sample")  # fmt: skip
    ax.plot(res.benchmark.index.tz_localize(None), res.benchmark.to_numpy(), lw=1.0, color="#999",
            label="buy-and-hold over the same test windows")  # fmt: skip
    ax.set_yscale("log")
    ax.set_ylabel("equity (log scale)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return html.figure(fig, "stitched out-of-sample equity against buy-and-hold, test windows shaded")


def _chart_params(res: WalkForwardResult) -> str:
    from riskon import html

    names = _param_columns(res)
    obj = res.spec.objective
    fig = html.new_figure(12, 1.9 * (len(names) + 1) + 0.6)
    w = res.windows
    x = list(w["window"])
    for k, name in enumerate(names):
        ax = fig.add_subplot(len(names) + 1, 1, k + 1)
        values = list(w[name])
        if all(isinstance(v, Real) and not isinstance(v, bool) for v in values if not _missing(v)):
            ax.plot(x, [float("nan") if _missing(v) else v for v in values], marker="o", drawstyle="steps-mid")
            grid = sorted(v for v in res.param_grid[res.param_paths[k]] if isinstance(v, Real))
            if 0 < len(grid) <= 12:
                ax.set_yticks(grid)
            if grid:
                pad = (grid[-1] - grid[0]) * 0.08 or abs(grid[0]) * 0.1 or 1.0
                ax.set_ylim(grid[0] - pad, grid[-1] + pad)
        else:
            cats = sorted({str(v) for v in values if not _missing(v)})
            ax.plot(x, [float("nan") if _missing(v) else cats.index(str(v)) for v in values], marker="o", ls="")
            ax.set_yticks(range(len(cats)), cats)
        ax.set_ylabel(name, fontsize=8)
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
    """The windows table for CSV and HTML: dates as text, the chosen parameters, IS and OOS metrics."""
    w = res.windows.drop(columns=["params"]).copy()
    for c in ("train_start", "train_end", "test_start", "test_end"):
        w[c] = w[c].dt.strftime("%Y-%m-%d")
    return w


def windows_html(res: WalkForwardResult) -> str:
    """The windows as an HTML table: dates, chosen parameters, in-sample return metrics, out-of-sample metrics.

    Shared by the walk-forward page and the sweep report.
    """
    from riskon import html
    from riskon.walkforward import RETURN_METRICS

    w = windows_frame(res)
    formats = {f"{p}_{m}": METRICS[m] for p in ("is", "oos") for m in METRICS}
    shown = w[[c for c in w.columns if not c.startswith("is_") or c[3:] in RETURN_METRICS]]
    return html.table(shown, formats, index=False)


def summary_html(res: WalkForwardResult) -> str:
    """In-sample mean, out-of-sample mean, stitched out-of-sample and buy-and-hold per metric, as an HTML table.

    Shared by the walk-forward page and the sweep report.
    """
    from riskon import html

    return html.table(res.summary.rename(index=LABELS), {LABELS[m]: METRICS[m] for m in METRICS})


#: What the in-sample against out-of-sample table's columns mean (below the table on both pages).
SUMMARY_NOTE = (
    "in sample mean: the chosen run over its train window, averaged over windows; out of sample mean: each test "
    "window, averaged (undefined values such as the Sharpe ratio of a window without trades are left out); out of "
    "sample: the stitched test windows, trade statistics pooled over all their trades."
)


def setup_html(res: WalkForwardResult) -> str:
    """One paragraph: index and target, the sweep and its parameters, the windows, the objective and the engine."""
    from riskon import html

    cfg, spec = res.config, res.spec
    target = ", ".join(cfg.target["assets"])
    return (
        f"<p>{html.esc(cfg.data['index'])} &rarr; {html.esc(target)}; sweep {html.esc(res.sweep_id)} "
        f"({len(res.param_paths)} parameters swept: {html.esc(', '.join(res.param_paths))}); "
        f"{html.esc(spec.mode)} windows, train {spec.train_days} days, test {spec.test_days} days, step "
        f"{spec.step_days} days; {len(res.windows)} windows; objective {html.esc(spec.direction)} "
        f"{html.esc(spec.objective)}; {html.esc(res.engine)} engine.</p>"
    )


def write_report(res: WalkForwardResult, folder: Path) -> dict[str, Path]:
    """Write the HTML page and the windows and equity CSVs; returns their paths."""
    from riskon import html

    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    w = windows_frame(res)
    paths["windows"] = folder / "walkforward_windows.csv"
    params = [json.dumps(p, sort_keys=True) for p in res.windows["params"]]
    w.assign(params=params).to_csv(paths["windows"], index=False)
    eq = pd.DataFrame({"returns": res.returns, "equity": res.equity, "buy_and_hold": res.benchmark})
    eq.index = eq.index.tz_convert(None).rename("date")
    paths["equity"] = folder / "walkforward_equity.csv"
    eq.to_csv(paths["equity"])
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


def walkforward_cmd(
    config: Path = typer.Argument(..., help="A config with a \\[sweep] grid and a \\[walkforward] table."),
    db: Path = typer.Option(DEFAULT_DB, help="DuckDB results store (the sweep runs first if it is not there)."),
    engine: str = typer.Option("auto", help="fast (vectorised), backtrader, or auto (fast when it can)."),
    out: Path = typer.Option(None, help="Output folder; default reports/<name>/."),
) -> None:
    """Walk a sweep grid forward: best combination per train window, traded on the next test window."""
    from riskon.html import reports_dir
    from riskon.walkforward import walk_forward

    out_c, err_c = console(width=200), console(stderr=True, width=200)
    t0 = time.perf_counter()
    res = walk_forward(config, db=db, engine=engine, announce=lambda m: err_c.print(m, highlight=False, markup=False))
    elapsed = time.perf_counter() - t0
    first, last = res.windows["test_start"].iloc[0], res.windows["test_end"].iloc[-1]
    out_c.print(
        f"[bold]{res.name}[/]: walk-forward of sweep {res.sweep_id}, {len(res.windows)} {res.spec.mode} windows, "
        f"out of sample {first:%Y-%m-%d} .. {last:%Y-%m-%d} ({len(res.returns)} days, {res.engine} engine, "
        f"{elapsed:.1f} s)",
        highlight=False,
    )
    out_c.print(windows_table(res))
    summary = res.summary.rename(columns=lambda c: c.replace("_", " "))
    out_c.print(metrics_table(summary, "in-sample against out-of-sample (daily returns, 365 days a year)"))
    out_c.print(f"note: {SEMANTICS.format(objective=res.spec.objective)}", highlight=False, markup=False)
    folder = out or reports_dir() / res.name
    for kind, p in write_report(res, folder).items():
        out_c.print(f"{kind:>9}: {p}", highlight=False)
