"""The ``riskon`` command tree: every subcommand on one typer app, each one's module imported when it is used.

Kept apart from ``riskon.cli`` so that importing the entry point stays cheap: process-pool
workers started by ``spawn`` re-import the ``riskon`` script, and must not pay for typer,
pandas and backtrader each time.

The tree itself is lazy too (``LazyGroup``): ``riskon run`` imports ``riskon.cli.run_cmd`` and what it
needs (pandas, backtrader), never DuckDB or the sweep machinery; ``riskon --version`` and ``riskon --help``
import no command module at all. The root's help lists each command's one-line help from ``COMMANDS``
(``tests/cli/test_start_imports.py`` checks it against the commands' own help).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, MutableMapping

import typer
import typer.main
from typer._click import Command, Context, HelpFormatter
from typer.core import TyperCommand, TyperGroup

from riskon.version import __version__

#: Every command in the order the help lists them (typer's: single commands, then groups of subcommands):
#: name -> (module under ``riskon.cli``, its attribute (a typer app for a group of subcommands, else the
#: command's function), the one-line help the root lists).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": (
        "run_cmd",
        "run_cmd",
        "Run one backtest: print metrics beside buy-and-hold and the trades; write tear sheet, chart, CSVs.",
    ),
    "status": (
        "status_cmd",
        "status_cmd",
        "The signal's state: index close and its ATH, confirmation progress, last signal, position held.",
    ),
    "rules": (
        "rules_cmd",
        "rules_cmd",
        "List every entry rule and filter with its parameters, units, defaults and ranges.",
    ),
    "sweep": (
        "sweep_cmd",
        "sweep_cmd",
        "Run a parameter sweep (or resume it): every combination once, committed in batches.",
    ),
    "results": (
        "sweep_cmd",
        "results_cmd",
        "Query a sweep's stored runs: best by a metric, filtered, exported with run ids and parameters.",
    ),
    "report": (
        "sweep_cmd",
        "report_cmd",
        "A stored run's quantstats tear sheet (RUN_ID), or a sweep's report (--sweep), from the store.",
    ),
    "compare": (
        "compare_cmd",
        "compare_cmd",
        "Compare runs: metrics beside buy-and-hold and the random-entry null, equity, drawdowns, monthly returns.",
    ),
    "walkforward": (
        "walkforward_cmd",
        "walkforward_cmd",
        "Walk a sweep grid forward: best combination per train window, traded on the next test window.",
    ),
    "events": (
        "events_cmd",
        "events_cmd",
        "Event study: the index's record-close episodes, the entry rule's signals, forward returns vs all days.",
    ),
    "data": ("data_cmd", "app", "Fill, inspect and list the local price cache."),
    "check": ("check_cmd", "app", "Checks of rules and data."),
    "store": ("store_cmd", "app", "The results store: runs by code version, and dropping old code's runs."),
}


def load_command(name: str) -> Command:
    """The click command for ``riskon NAME``, built from its module (imported now) as ``app.command``/``add_typer``
    would build it on the root app, with the root's settings."""
    module, attribute, _ = COMMANDS[name]
    name_in_cli = f"riskon.cli.{module}"
    __import__(name_in_cli)  # as an import statement does: ``python -X importtime`` lists it (import_module's is not)
    target = getattr(sys.modules[name_in_cli], attribute)
    holder = typer.Typer(**_SETTINGS)
    short = holder.pretty_exceptions_short
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
        return typer.main.get_group_from_info(holder.registered_groups[0], pretty_exceptions_short=short,
                                              suggest_commands=holder.suggest_commands,
                                              rich_markup_mode=holder.rich_markup_mode)  # fmt: skip
    holder.command(name)(target)
    return typer.main.get_command_from_info(holder.registered_commands[0], pretty_exceptions_short=short,
                                            rich_markup_mode=holder.rich_markup_mode)  # fmt: skip


class LazyCommands(MutableMapping):
    """A group's commands by name: listing the names imports nothing; looking one up imports its module once."""

    def __init__(self) -> None:
        self._loaded: dict[str, Command] = {}

    def __getitem__(self, name: str) -> Command:
        if name not in self._loaded:
            if name not in COMMANDS:
                raise KeyError(name)
            self._loaded[name] = load_command(name)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (n for n in self._loaded if n not in COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS) + sum(n not in COMMANDS for n in self._loaded)

    def loaded(self, name: str) -> Command | None:
        """The command if its module was imported already, else None (nothing is imported)."""
        return self._loaded.get(name)


class LazyGroup(TyperGroup):
    """The root group: a command's module is imported only when that command is run (or its help shown)."""

    def __init__(self, **attrs) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands()

    def list_commands(self, ctx: Context) -> list[str]:
        """Every command's name, in ``COMMANDS`` order, without importing any of them."""
        return list(self.commands)

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        """The root's "Commands" section as typer writes it, from ``COMMANDS``' one-line helps (nothing imported)."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            command = self.commands.loaded(name) or TyperCommand(name, help=COMMANDS[name][2], rich_markup_mode=None)
            rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


#: The root app's settings, given to every command built from it.
_SETTINGS = dict(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help texts are plain: [sweep] and other brackets show as written
)

app = typer.Typer(help="Test 'Russell 2000 confirmed new high -> long Bitcoin/altcoins' on backtrader.", cls=LazyGroup,
                  **_SETTINGS)  # fmt: skip


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
