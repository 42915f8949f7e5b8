"""The ``riskon`` command line: a thin layer over the Python API."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from feeds.errors import DataError, NetworkError
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


def _known_errors() -> tuple[type[BaseException], ...]:
    from riskon.store import StoreError
    from strategies.strategy import OrderFailed

    errors: list[type[BaseException]] = [DataError, NetworkError, OrderFailed, StoreError]
    try:
        from riskon.config import ConfigError as _ConfigError

        errors.append(_ConfigError)
    except ImportError:  # pragma: no cover - config arrives with `riskon run`
        pass
    return tuple(errors)


def main() -> None:
    """Entry point: run the app, turning known failures into one clear line and a non-zero exit."""
    try:
        app(standalone_mode=False)
    except _known_errors() as e:
        from rich.text import Text

        line = Text("error: ", style="bold red") + Text(str(e).splitlines()[0] if str(e) else type(e).__name__)
        Console(stderr=True).print(line, highlight=False, soft_wrap=True)
        sys.exit(2 if not isinstance(e, NetworkError) else 3)
    except (typer.Exit, SystemExit) as e:
        code = getattr(e, "exit_code", getattr(e, "code", 0))
        sys.exit(code)
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted")
        sys.exit(130)
    except Exception as e:  # click/typer usage errors arrive here in non-standalone mode
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):
            from rich.text import Text

            line = Text("error: ", style="bold red") + Text(e.format_message().replace("\n", " "))
            Console(stderr=True).print(line, soft_wrap=True)
            sys.exit(e.exit_code)
        raise
