"""The ``riskon`` command tree: every subcommand registered on one typer app.

Kept apart from ``riskon.cli`` so that importing the entry point stays cheap: process-pool
workers started by ``spawn`` re-import the ``riskon`` script, and must not pay for typer,
pandas and backtrader each time.
"""

from __future__ import annotations

import typer

from riskon import (
    cli_check,
    cli_compare,
    cli_data,
    cli_events,
    cli_rules,
    cli_run,
    cli_status,
    cli_sweep,
    cli_walkforward,
)

app = typer.Typer(
    help="Test 'Russell 2000 confirmed new high -> long Bitcoin/altcoins' on backtrader.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(cli_data.app, name="data")
app.command("run")(cli_run.run_cmd)
app.command("status")(cli_status.status_cmd)
app.command("rules")(cli_rules.rules_cmd)
app.add_typer(cli_check.app, name="check")
app.command("sweep")(cli_sweep.sweep_cmd)
app.command("results")(cli_sweep.results_cmd)
app.command("report")(cli_sweep.report_cmd)
app.command("compare")(cli_compare.compare_cmd)
app.command("walkforward")(cli_walkforward.walkforward_cmd)
app.command("events")(cli_events.events_cmd)
