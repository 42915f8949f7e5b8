"""``riskon compare RUN_ID... | CONFIG.toml... | --sweep S --top N``: runs side by side on one HTML page."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from riskon.cli.console import console
from riskon.config import ConfigError
from riskon.sweeps.store_path import DEFAULT_DB


def compare_cmd(
    items: list[str] = typer.Argument(None, help="Stored run ids (or unique prefixes) and/or config files (*.toml)."),
    sweep: str = typer.Option(None, "--sweep", "-s", help="Add the best runs of this sweep (name or id)."),
    top: int = typer.Option(5, "--top", "-n", help="With --sweep: how many of its best runs (by its objective)."),
    db: Path = typer.Option(DEFAULT_DB, help="DuckDB results store."),
    null: int = typer.Option(500, "--null", help="Random-entry null draws per run (0: leave the null out)."),
    seed: int = typer.Option(0, help="Seed of the random-entry null."),
    out: Path = typer.Option(None, help="HTML file (default reports/compare/<runs>.html or reports/<sweep>/...)."),
) -> None:
    """Compare runs: metrics beside buy-and-hold and the random-entry null, equity, drawdowns, monthly returns."""
    # imported on use: the command tree loads every command module at start, and these pull in matplotlib
    from riskon.analysis.comparison import build, sweep_top
    from riskon.pages.comparison_page import default_path, format_value, shown_metrics, shown_name, write_comparison
    from riskon.sweeps.store import Store

    wanted = list(items or [])
    if top < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--top")
    if null < 0:
        raise typer.BadParameter("must be 0 or more", param_hint="--null")
    if sweep:
        wanted += [r for r in sweep_top(Store(db), sweep, top) if r not in wanted]
    if not wanted:
        raise ConfigError("give run ids, config files (*.toml) or --sweep NAME")
    comp = build(wanted, db=db, null_n=null, seed=seed)
    path = write_comparison(comp, out or default_path(comp, sweep if not items else None))
    shown, _ = shown_metrics(comp.metrics)
    tbl = Table(title=comp.title)
    tbl.add_column("metric")
    for col in shown.columns:
        tbl.add_column(str(col), justify="right")
    for key, name in zip([k for k in comp.metrics.index if shown_name(k) in shown.index], shown.index, strict=True):
        tbl.add_row(name, *(format_value(key, comp.metrics.at[key, col]) for col in comp.metrics.columns))
    con = console()
    con.print(tbl)
    if comp.rates_warning:  # runs with different cash or risk-free rates: one line, as the page flags it
        con.print(f"warning: {comp.rates_warning}", highlight=False, markup=False, soft_wrap=True)
    for e in comp.entries:
        for note in e.notes:
            con.print(f"note: {e.label}: {note}", highlight=False, markup=False)
    con.print(f"compare: {path}", highlight=False, markup=False)
