"""``riskon run CONFIG.toml``: one backtest, printed and written under ``reports/<name>/``."""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console

from riskon import api
from riskon.cli.console import console, styled
from riskon.cli.tables import SURVIVORSHIP, metrics_table, trades_table
from riskon.config import RunConfig, target_text
from riskon.lookahead_gate import ALLOWED
from riskon.pages.html import reports_dir
from riskon.pages.sheet_pool import SheetWorkers, page_workers
from riskon.pages.tearsheet import tearsheet_skip_reason


def run_cmd(
    config: Path = typer.Argument(..., help="A run config (TOML), e.g. runs/seed.toml."),
    out: Path = typer.Option(None, help="Output folder; default reports/<name>/."),
    engine: str = typer.Option(
        "backtrader", help="backtrader (the reference) or fast (the vectorised twin, equal to 1e-9)."
    ),
    no_report: bool = typer.Option(
        False, "--no-report", help="Print only: no tear sheet or chart, and no files unless --out is given."
    ),
    allow_lookahead: bool = typer.Option(
        False, "--allow-lookahead", help="Run even if a rule fails the lookahead check (the result is marked)."
    ),
) -> None:
    """Run one backtest: print metrics beside buy-and-hold and the trades; write tear sheet, chart, CSVs."""
    cfg = api.read_config(config)
    if no_report:
        cfg = replace(cfg, report={**cfg.report, "tearsheet": False, "chart": False})
    if engine not in ("backtrader", "fast"):
        raise typer.BadParameter(f"{engine!r}: choose backtrader or fast", param_hint="--engine")
    workers = page_workers() if cfg.report["tearsheet"] else 0
    # the tear-sheet workers start now: their quantstats import runs beside the backtest
    with SheetWorkers(workers) if workers else contextlib.nullcontext():
        _run(cfg, out, engine, no_report, allow_lookahead)


def _step(err_c: Console, text: str) -> contextlib.AbstractContextManager:
    """A spinner naming a step that can take seconds, on a terminal only (nothing when stderr is piped)."""
    return err_c.status(text, spinner="dots") if err_c.is_terminal else contextlib.nullcontext()


def _run(cfg: RunConfig, out: Path | None, engine: str, no_report: bool, allow_lookahead: bool) -> None:
    out_c, err_c = console(width=160), console(stderr=True, width=160)
    t0 = time.perf_counter()
    with _step(err_c, f"{cfg.name}: loading data, checking rules, running the backtest"):
        result = api.run(
            cfg, engine=engine, announce=lambda m: err_c.print(m, highlight=False), allow_lookahead=allow_lookahead
        )
    elapsed = time.perf_counter() - t0
    bars, d = result.bars, cfg.data
    out_c.print(
        styled(
            (cfg.name, "bold"),
            f": {d['index']} {result.rule_text} -> {target_text(cfg)}, {bars.index[0]:%Y-%m-%d} .. "
            f"{bars.index[-1]:%Y-%m-%d} ({len(bars)} bars, {elapsed:.2f} s)",
        ),
        highlight=False,
    )
    shown = result.metrics.rename(columns={"buy_and_hold": result.benchmark_label})
    out_c.print(metrics_table(shown, "metrics (daily returns, 365 days a year)"))
    out_c.print(f"rates: {result.rates_text}", highlight=False, markup=False, soft_wrap=True)
    out_c.print(f"benchmark: {result.benchmark_text}", highlight=False, markup=False, soft_wrap=True)
    out_c.print(trades_table(result.trades))
    for line in result.backtest.log:
        err_c.print(f"note: {line}", highlight=False, markup=False)
    if result.lookahead_failed:
        out_c.print(f"warning: {ALLOWED}: {result.lookahead_failed}", highlight=False, markup=False, soft_wrap=True)
    warning = result.fill_bar_warning
    if warning:
        out_c.print(f"warning: {warning}", highlight=False, markup=False, soft_wrap=True)
    if cfg.target["mode"] != "single":
        out_c.print(f"note: {SURVIVORSHIP}", highlight=False)
    if no_report and out is None:
        where = reports_dir() / cfg.name
        out_c.print(f"--no-report: nothing written (without it, files would go to {where}/; --out DIR writes the CSVs)",
                    highlight=False, markup=False)  # fmt: skip
        return
    folder = out or reports_dir() / cfg.name
    with _step(err_c, f"{cfg.name}: writing the CSVs and pages to {folder}"):
        paths = result.write(folder)
    skipped = cfg.report["tearsheet"] and tearsheet_skip_reason(result.returns)
    if skipped:
        err_c.print(f"note: {skipped}", highlight=False, markup=False, soft_wrap=True)
    for kind, p in paths.items():
        out_c.print(f"{kind:>9}: {p}", highlight=False)
