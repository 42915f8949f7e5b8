"""``riskon run CONFIG.toml``: one backtest, printed and written under ``reports/<name>/``."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import typer
from rich.table import Table

from riskon import api
from riskon.api import LABELS
from riskon.console import console
from riskon.html import reports_dir
from riskon.metrics import format_metric
from riskon.status import price_text

__all__ = ["LABELS", "SURVIVORSHIP", "metrics_table", "run_cmd", "target_text", "trades_table"]


def metrics_table(metrics: pd.DataFrame, title: str) -> Table:
    """The metrics side by side: strategy against buy-and-hold."""
    table = Table(title=title)
    table.add_column("metric")
    for col in metrics.columns:
        table.add_column(col.replace("_", " "), justify="right")
    for name in metrics.index:
        table.add_row(LABELS.get(name, name), *(format_metric(name, metrics.at[name, c]) for c in metrics.columns))
    return table


def target_text(cfg) -> str:
    """The traded target in words: one asset, or a basket/top-k over n coins."""
    tg = cfg.target
    if tg["mode"] == "single":
        return tg["assets"][0]
    what = "equal-weight basket" if tg["mode"] == "basket" else f"top-{tg['k']} by {tg['momentum_days']}-bar momentum"
    return f"{what} of {len(tg['assets'])} coins"


SURVIVORSHIP = (
    "survivorship bias: this coin list was chosen today, among coins that still trade; "
    "coins that died or were delisted earlier are missing, which flatters basket results"
)


def trades_table(trades: pd.DataFrame, title: str = "trades") -> Table:
    """The trade list (one row per coin leg), fill dates and prices; an open trade is marked."""
    table = Table(title=title)
    multi = trades["asset"].nunique() > 1 if len(trades) else False
    asset_col = (("asset", "left"),) if multi else ()
    for col, just in (("#", "right"), *asset_col, ("signal", "left"), ("entry", "left"), ("entry px", "right"),
                      ("exit", "left"), ("exit px", "right"), ("reason", "left"), ("days", "right"),
                      ("pnl", "right"), ("return", "right")):  # fmt: skip
        table.add_column(col, justify=just)
    for t in trades.itertuples():
        ret = t.pnl / (t.size * t.entry_price + t.entry_fee)
        table.add_row(
            str(t.position + 1),
            *((t.asset,) if multi else ()),
            "-" if pd.isna(t.signal_session) else t.signal_session.strftime("%Y-%m-%d"),
            t.entry_time.strftime("%Y-%m-%d"),
            price_text(t.entry_price),
            t.exit_time.strftime("%Y-%m-%d") + (" (open)" if t.open else ""),
            price_text(t.exit_price),
            t.exit_reason,
            f"{(t.exit_time - t.entry_time).days}",
            f"{t.pnl:,.2f}",
            f"{ret:+.2%}",
            style="italic yellow" if t.open else None,
        )
    return table


def run_cmd(
    config: Path = typer.Argument(..., help="A run config (TOML), e.g. runs/seed.toml."),
    out: Path = typer.Option(None, help="Output folder; default reports/<name>/."),
    no_report: bool = typer.Option(False, "--no-report", help="Skip the tear sheet and chart."),
) -> None:
    """Run one backtest: print metrics beside buy-and-hold and the trades; write tear sheet, chart, CSVs."""
    cfg = api.read_config(config)
    if no_report:
        cfg = replace(cfg, report={"tearsheet": False, "chart": False})
    out_c, err_c = console(width=160), console(stderr=True, width=160)
    t0 = time.perf_counter()
    result = api.run(cfg, announce=lambda m: err_c.print(m, highlight=False))
    elapsed = time.perf_counter() - t0
    bars, d = result.bars, cfg.data
    out_c.print(
        f"[bold]{cfg.name}[/]: {d['index']} {result.rule_text}"
        f" -> {target_text(cfg)}, {bars.index[0]:%Y-%m-%d} .. {bars.index[-1]:%Y-%m-%d}"
        f" ({len(bars)} bars, {elapsed:.2f} s)",
        highlight=False,
    )
    out_c.print(metrics_table(result.metrics, "metrics (daily returns, 365 days a year)"))
    out_c.print(trades_table(result.trades))
    for line in result.backtest.log:
        err_c.print(f"note: {line}", highlight=False, markup=False)
    if cfg.target["mode"] != "single":
        out_c.print(f"note: {SURVIVORSHIP}", highlight=False)
    folder = out or reports_dir() / cfg.name
    paths = result.write(folder)
    for kind, p in paths.items():
        out_c.print(f"{kind:>9}: {p}", highlight=False)
