"""``riskon walkforward CONFIG``: the walk-forward of a sweep grid, printed and written as an HTML page.

The terminal shows the windows (dates, chosen parameters, in- and out-of-sample
numbers) and the in-sample against out-of-sample summary; the page
(``riskon.pages.walkforward_page``) adds the charts. Under ``reports/<name>/`` (or
``--out``): ``walkforward.html``, ``walkforward_windows.csv`` and
``walkforward_equity.csv``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import typer
from rich.table import Table

from riskon.cli.console import console, styled
from riskon.cli.tables import metrics_table
from riskon.metrics import format_metric
from riskon.pages.html import reports_dir
from riskon.sweeps.store_path import DEFAULT_DB

if TYPE_CHECKING:
    from riskon.analysis.walk_forward import WalkForwardResult


def _d(ts: pd.Timestamp) -> str:
    return f"{ts:%Y-%m-%d}"


def windows_table(res: WalkForwardResult) -> Table:
    """One row per window: dates, chosen parameters, in-sample and out-of-sample numbers."""
    from riskon.analysis.walk_forward import is_missing, param_columns  # loaded with the command (see below)

    obj = res.spec.objective
    names = [c for c in res.windows.columns if c in param_columns(res)]
    table = Table(title=f"windows ({res.spec.mode}; chosen by in-sample {obj})")
    cols = ["#", "train", "test", *names, f"IS {obj}", "IS CAGR", f"OOS {obj}", "OOS return", "OOS max DD", "trades"]
    for c in cols:
        table.add_column(c, justify="left" if c in ("train", "test") else "right")
    for r in res.windows.to_dict("records"):
        table.add_row(
            str(r["window"]),
            f"{_d(r['train_start'])} .. {_d(r['train_end'])}",
            f"{_d(r['test_start'])} .. {_d(r['test_end'])}" + (" (partial)" if r.get("partial") else ""),
            *("-" if is_missing(r[n]) else str(r[n]) for n in names),
            format_metric(obj, r[f"is_{obj}"]),
            format_metric("cagr", r["is_cagr"]),
            format_metric(obj, r[f"oos_{obj}"]),
            format_metric("total_return", r["oos_total_return"]),
            format_metric("max_drawdown", r["oos_max_drawdown"]),
            format_metric("trades", r["oos_trades"]),
        )
    return table


def walkforward_cmd(
    config: Path = typer.Argument(..., help="A config with a [sweep] grid and a [walkforward] table."),
    db: Path = typer.Option(DEFAULT_DB, help="DuckDB results store (the sweep runs first if it is not there)."),
    engine: str = typer.Option("auto", help="fast (vectorised), backtrader, or auto (fast when it can)."),
    out: Path = typer.Option(None, help="Output folder; default reports/<name>/."),
) -> None:
    """Walk a sweep grid forward: best combination per train window, traded on the next test window."""
    # imported on use: the command tree loads every command module at start, and these pull in matplotlib
    from riskon.analysis.walk_forward import SEMANTICS, walk_forward
    from riskon.pages.walkforward_page import write_report

    out_c, err_c = console(width=200), console(stderr=True, width=200)
    t0 = time.perf_counter()
    res = walk_forward(config, db=db, engine=engine, announce=lambda m: err_c.print(m, highlight=False, markup=False))
    elapsed = time.perf_counter() - t0
    first, last = res.windows["test_start"].iloc[0], res.windows["test_end"].iloc[-1]
    out_c.print(
        styled(
            (res.name, "bold"),
            f": walk-forward of sweep {res.sweep_id}, {len(res.windows)} {res.spec.mode} windows, out of sample "
            f"{first:%Y-%m-%d} .. {last:%Y-%m-%d} ({len(res.returns)} days, {res.engine} engine, {elapsed:.1f} s)",
        ),
        highlight=False,
    )
    out_c.print(windows_table(res))
    summary = res.summary.rename(columns=lambda c: c.replace("_", " "))
    out_c.print(metrics_table(summary, "in-sample against out-of-sample (daily returns, 365 days a year)"))
    out_c.print(f"note: {SEMANTICS.format(objective=res.spec.objective)}", highlight=False, markup=False)
    folder = out or reports_dir() / res.name
    for kind, p in write_report(res, folder).items():
        out_c.print(f"{kind:>9}: {p}", highlight=False)
