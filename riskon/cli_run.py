"""``riskon run CONFIG.toml``: one backtest, printed and written under ``reports/<name>/``."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from riskon import config as config_mod
from riskon.metrics import format_metric
from riskon.run import run, write_outputs

LABELS = {
    "total_return": "Total return",
    "cagr": "CAGR",
    "sharpe": "Sharpe (365)",
    "sortino": "Sortino (365)",
    "max_drawdown": "Max drawdown",
    "calmar": "Calmar",
    "exposure": "Exposure",
    "trades": "Trades",
    "win_rate": "Win rate (per trade)",
    "profit_factor": "Profit factor",
    "avg_hold_days": "Avg holding days",
    "fees": "Fees paid",
}


def _console(stderr: bool = False) -> Console:
    probe = Console(stderr=stderr)
    return Console(stderr=stderr, width=None if probe.is_terminal else 160)


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


def _px(price: float) -> str:
    """A price with enough digits to see a move: cents for large prices, 6 significant digits below 100."""
    return f"{price:,.2f}" if abs(price) >= 100 else f"{price:.6g}"


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
            _px(t.entry_price),
            t.exit_time.strftime("%Y-%m-%d") + (" (open)" if t.open else ""),
            _px(t.exit_price),
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
    cfg = config_mod.load(config)
    if no_report:
        cfg = config_mod.RunConfig(**{**cfg.__dict__, "report": {"tearsheet": False, "chart": False}})
    out_c, err_c = _console(), _console(stderr=True)
    t0 = time.perf_counter()
    result = run(cfg, announce=lambda m: err_c.print(m, highlight=False))
    elapsed = time.perf_counter() - t0
    bars = result.bars
    d = cfg.data
    from riskon.config import entry_spec
    from strategies import compose

    rule = compose.describe(compose.build(entry_spec(cfg.strategy, cfg.rule_params)))
    out_c.print(
        f"[bold]{cfg.name}[/]: {d['index']} {rule}"
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
    folder = out or Path("reports") / cfg.name
    paths = write_outputs(result, folder)
    for kind, p in paths.items():
        out_c.print(f"{kind:>9}: {p}", highlight=False)
