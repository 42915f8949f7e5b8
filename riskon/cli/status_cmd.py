"""``riskon status CONFIG``: is the signal on today? The state on the latest cached data (or ``--asof``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from feeds.deadline import DEFAULT_DEADLINE
from riskon.cli.console import console
from riskon.config import target_text


def status_cmd(
    config: Path = typer.Argument(..., help="A run config (TOML), e.g. runs/seed.toml."),
    asof: str = typer.Option(None, "--asof", help="Report as of this date's bar (YYYY-MM-DD); default: the latest."),
    refresh: bool = typer.Option(False, "--refresh", help="Fetch the missing tail of every series first (network)."),
    deadline: float = typer.Option(DEFAULT_DEADLINE, help="Seconds before a --refresh fetch is cut off."),
    stale_days: float = typer.Option(
        None,
        "--stale-days",
        help="Warn when the latest bar closed more days ago than this; default: the config's [report] stale_days (3).",
    ),
) -> None:
    """The signal's state: index close and its ATH, confirmation progress, last signal, position held."""
    # the API loads on first use (keeps `import riskon` light)
    from riskon.api import read_config
    from riskon.api import status as signal_status

    out, err = console(width=200), console(stderr=True, width=200)
    cfg = read_config(config)
    if stale_days is not None:
        if not stale_days >= 0:
            raise typer.BadParameter(f"{stale_days} must be 0 or more days", param_hint="--stale-days")
        cfg = replace(cfg, report={**cfg.report, "stale_days": float(stale_days)})
    st = signal_status(cfg, asof=asof, refresh=refresh, deadline=deadline,
                       announce=lambda m: err.print(m, highlight=False, markup=False))  # fmt: skip
    table = Table(title=f"{cfg.name}: {cfg.data['index']} -> {target_text(cfg)}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("state")
    for label, text in st.rows():
        style = "yellow" if label == "note" else None
        table.add_row(Text(label), Text(text), style=style)
    out.print(table, highlight=False)
    for note in st.notes:
        if note.startswith("stale data"):
            err.print(f"warning: {note}", highlight=False, markup=False)
