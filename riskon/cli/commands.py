"""The ``riskon`` command tree: every subcommand registered on one typer app.

Kept apart from ``riskon.cli`` so that importing the entry point stays cheap: process-pool
workers started by ``spawn`` re-import the ``riskon`` script, and must not pay for typer,
pandas and backtrader each time.
"""

from __future__ import annotations

import typer

from riskon.cli import (
    check_cmd,
    compare_cmd,
    data_cmd,
    events_cmd,
    rules_cmd,
    run_cmd,
    status_cmd,
    store_cmd,
    sweep_cmd,
    walkforward_cmd,
)
from riskon.version import __version__

app = typer.Typer(
    help="Test 'Russell 2000 confirmed new high -> long Bitcoin/altcoins' on backtrader.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help texts are plain: [sweep] and other brackets show as written
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"riskon {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Print riskon's version and exit."
    ),
) -> None:
    """Test 'Russell 2000 confirmed new high -> long Bitcoin/altcoins' on backtrader."""


app.add_typer(data_cmd.app, name="data")
app.command("run")(run_cmd.run_cmd)
app.command("status")(status_cmd.status_cmd)
app.command("rules")(rules_cmd.rules_cmd)
app.add_typer(check_cmd.app, name="check")
app.command("sweep")(sweep_cmd.sweep_cmd)
app.command("results")(sweep_cmd.results_cmd)
app.command("report")(sweep_cmd.report_cmd)
app.command("compare")(compare_cmd.compare_cmd)
app.command("walkforward")(walkforward_cmd.walkforward_cmd)
app.command("events")(events_cmd.events_cmd)
app.add_typer(store_cmd.app, name="store")
