"""One run's files and views: trades/equity/metrics CSVs, the tear sheet, the signal chart and its HTML fragment.

The run itself is ``riskon.runner``'s; this module only turns its ``Result`` into
what a user reads, so a page can change without touching a number.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from riskon.analysis.signal_state import Status
from riskon.analysis.trade_stats import TRADE_STATS, csv_trades, trade_analytics, trade_stats, trade_stats_frame
from riskon.metrics import LABELS, METRICS, price_text
from riskon.pages.files import ensure_folder, write_csv
from riskon.pages.html import esc, figure, refresh_index, table
from riskon.pages.run_chart import write_run_page
from riskon.pages.sheet_pool import begin_pages
from riskon.pages.tearsheet import tearsheet_skip_reason
from riskon.runner import Result


def write_outputs(result: Result, out_dir: str | Path) -> dict[str, Path]:
    """Write trades.csv, equity.csv, metrics.csv and (per config) the tear sheet and chart.

    A run whose daily returns never vary gets no tear sheet (``tearsheet_skip_reason`` says why).
    """
    out = Path(out_dir)
    ensure_folder(out)
    paths = {}
    # the trade table plus days, return, bars held, MAE/MFE (riskon.analysis.trade_stats)
    trades = csv_trades(result.trades, result.assets)
    paths["trades"] = out / "trades.csv"
    write_csv(trades, paths["trades"], index=False, date_format="%Y-%m-%d %H:%M:%S%z")
    eq = pd.DataFrame(
        {
            "equity": result.equity,
            "returns": result.returns,
            "cash": result.backtest.cash,
            "buy_and_hold": result.benchmark,
        }
    )
    eq.index = eq.index.tz_convert("UTC").tz_localize(None).rename("date")
    paths["equity"] = out / "equity.csv"
    write_csv(eq, paths["equity"])
    paths["metrics"] = out / "metrics.csv"
    stats = trade_stats_frame(result.trades, result.metrics.columns)  # expectancy, SQN, streak, holding days
    write_csv(pd.concat([result.metrics, stats]), paths["metrics"], index_label="metric")
    report = result.config.report
    if report["tearsheet"] and tearsheet_skip_reason(result.returns) is None:
        paths["tearsheet"] = out / "tearsheet.html"
    if report["chart"]:
        paths["chart"] = out / "signals.png"
    # drawn by the tear-sheet workers while run.html is made here, when a command started them
    pages = begin_pages(result, paths.get("tearsheet"), paths.get("chart"))
    if report["chart"]:
        links = {p.name: p.name for p in paths.values()}  # the run's other files, beside it
        paths["run_page"] = write_run_page(result, out / "run.html", links)  # interactive (Plotly, offline)
    paths.update(pages())
    refresh_index(out)  # reports/index.html lists this run's pages when they lie under the reports folder
    return paths


def result_html(result: Result, trades: int = 10) -> str:
    """A run as an HTML fragment: metrics beside its benchmark (named), the first trades and the signal chart."""
    cfg = result.config
    m = result.metrics.rename(index=LABELS, columns={"buy_and_hold": result.benchmark_label})
    m.columns = [c.replace("_", " ") for c in m.columns]
    fmts = {LABELS.get(k, k): v for k, v in METRICS.items()}
    bars = result.bars
    head = (
        f"<h3>{esc(cfg.name)}: {esc(cfg.data['index'])} {esc(result.rule_text)} &rarr; "
        f"{esc(', '.join(cfg.target['assets']))}</h3>"
        f"<p>{esc(cfg.description)}</p>"
        f"<p>{bars.index[0]:%Y-%m-%d} .. {bars.index[-1]:%Y-%m-%d}, {len(bars)} bars; "
        "daily returns, 365 days a year</p>"
        f"<p>benchmark: {esc(result.benchmark_text)}</p>"
        f'<p class="rates">rates: {esc(result.rates_text)}</p>'  # cash rate and risk-free rate (Sharpe in excess of it)
    )
    warning = result.fill_bar_warning
    if warning:
        head += f'<p class="note">warning: {esc(warning)}</p>'

    tr = trade_analytics(result.trades, result.assets)
    cols = ["asset", "signal_session", "entry_time", "entry_price", "exit_time", "exit_price", "exit_reason", "pnl",
            "return", "days", "mae", "mfe"]  # fmt: skip
    shown = tr[cols].head(trades).copy()
    for c in ("signal_session", "entry_time", "exit_time"):
        shown[c] = [("" if pd.isna(v) else f"{v:%Y-%m-%d}") for v in shown[c]]
    for c in ("entry_price", "exit_price"):
        shown[c] = [price_text(v) for v in shown[c]]
    shown.loc[tr["open"].head(trades).to_numpy(), "exit_reason"] = "open"
    more = f"<p>first {len(shown)} of {len(tr)} trades</p>" if len(tr) > trades else f"<p>{len(tr)} trades</p>"
    trades_html = table(shown, {"pnl": "{:,.2f}", "return": "{:+.2%}", "mae": "{:+.1%}", "mfe": "{:+.1%}"}, index=False)
    stats = pd.Series(trade_stats(result.trades)).rename(index=LABELS).to_frame("per position")
    stats_html = "<p>trade statistics (net of fees)</p>" + table(stats, {LABELS[k]: v for k, v in TRADE_STATS.items()})
    # matplotlib loads only when a chart is drawn
    from riskon.pages.charts import signal_figure

    fig = signal_figure(result)
    fig.set_size_inches(11, 6)
    chart = figure(fig, f"{cfg.name} signal chart")
    return f"<div>{head}{table(m, fmts)}{stats_html}{more}{trades_html}{chart}</div>"


def status_html(status: Status) -> str:
    """The signal's state (``riskon status``) as a small HTML table, for notebooks."""
    body = "".join(f"<tr><th>{esc(k)}</th><td style='text-align:left'>{esc(v)}</td></tr>" for k, v in status.rows())
    return f"<div><b>{esc(status.config.name)}</b>: status<table>{body}</table></div>"
