"""What each command imports when it starts: only its own module and what that needs.

The installed ``riskon`` script is run under ``python -X importtime`` (every module it imports is listed on
stderr) with ``--help``, so the command's module and its imports load but nothing runs. The command tree
is lazy (``riskon.cli.commands.LazyGroup``): ``riskon run`` never loads DuckDB, the sweep machinery or
quantstats; ``riskon --version`` loads no pandas, rich or pydantic (typer's parameter coercion).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer.main

from riskon.cli.commands import COMMANDS, LazyGroup, app, load_command
from support.clitools import riskon_cmd

#: Commands that work on the results store: DuckDB is theirs to load when they start.
STORE_COMMANDS = {"sweep", "results", "report", "store"}


def imported(*args: str) -> set[str]:
    """Every module ``riskon ARGS`` imports, by full name (from ``python -X importtime``)."""
    cmd = riskon_cmd()
    if cmd[0] == sys.executable:  # the module fallback: python -c ...
        cmd = cmd[1:]
    proc = subprocess.run([sys.executable, "-X", "importtime", *cmd, *args], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"), timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "riskon.cli" in names  # the listing was read (a broken parse would find nothing at all)
    return names


def packages(names: set[str]) -> set[str]:
    """The top-level packages of these modules."""
    return {n.split(".")[0] for n in names}


def test_version_and_help_load_no_command():
    for args in (["--version"], ["--help"]):
        loaded = packages(imported(*args))
        assert not loaded & {"pandas", "numpy", "duckdb", "rich", "pydantic", "matplotlib", "backtrader"}, args


@pytest.mark.parametrize("name", [n for n in COMMANDS if n not in STORE_COMMANDS])
def test_commands_off_the_store_do_not_load_duckdb(name):
    loaded = packages(imported(name, "--help"))
    assert "duckdb" not in loaded
    assert not loaded & {"matplotlib", "quantstats", "plotly", "dask", "distributed"}


def test_run_loads_its_own_module_only():
    names = imported("run", "--help")
    assert "riskon.cli.run_cmd" in names and "pandas" in names  # what running a backtest needs
    others = {f"riskon.cli.{m}" for m, _, _ in COMMANDS.values()} - {"riskon.cli.run_cmd"}
    assert not names & others
    assert "riskon.sweeps.store" not in names


def test_root_help_lists_the_commands_own_help():
    """The lazy root lists each command with the short help its own module gives it (nothing drifts)."""
    root = typer.main.get_command(app)
    assert isinstance(root, LazyGroup)
    with root.make_context("riskon", ["--help"], resilient_parsing=True) as ctx:
        listed = root.get_help(ctx)
    assert not root.commands._loaded  # the listing imported no command
    for name in COMMANDS:
        root.commands[name] = load_command(name)  # every command built from its module
    with root.make_context("riskon", ["--help"], resilient_parsing=True) as ctx:
        loaded = root.get_help(ctx)
    assert listed == loaded
    assert "Run one backtest: print metrics beside buy-and-hold and..." in listed
    assert list(COMMANDS) == ["run", "status", "rules", "sweep", "results", "report", "compare", "walkforward",
                              "events", "data", "check", "store"]  # fmt: skip
