"""The ``riskon`` command line: a thin layer over the Python API and the wings.

The command tree lives in ``riskon.cli.commands`` and loads on first use (``main()`` or ``riskon.cli.app``):
this module is what the ``riskon`` script imports, and spawned sweep workers re-import that script.

Exit status (``docs/reference/exit-codes.md``): 0 ok; 1 a check failed, differences were found or some
runs failed; 2 usage or config error; 3 data or network error; 4 store or file-system error; 130 interrupted.
Each failure class is raised where it is detected, as its own exception type; ``main`` only maps a type
to its status and prints its first line.
"""

from __future__ import annotations

import sys

#: The exit statuses of every ``riskon`` command.
OK, FAILED, USAGE, DATA, STORE, INTERRUPTED = 0, 1, 2, 3, 4, 130


def __getattr__(name: str):
    if name == "app":
        # the command tree loads on first use: spawned workers re-import the script and must stay light
        from riskon.cli.commands import app

        return app
    raise AttributeError(f"module 'riskon.cli' has no attribute {name!r}")


#: The failures riskon knows, in the order ``exit_status`` tries them: (status, defining module, class name).
KNOWN_ERRORS = (
    (USAGE, "riskon.config", "ConfigError"),
    (USAGE, "strategies.errors", "RuleError"),
    (DATA, "feeds.errors", "DataError"),
    (DATA, "feeds.errors", "NetworkError"),
    (STORE, "riskon.sweeps.store_errors", "StoreError"),
    (FAILED, "strategies.errors", "OrderFailed"),
    (FAILED, "riskon.sweeps.pools", "ExecutorError"),
    (FAILED, "riskon.lookahead_gate", "LookaheadError"),
    (FAILED, "riskon.pages.tearsheet", "TearsheetError"),
    (STORE, "riskon.pages.files", "OutputError"),  # a full disk, a read-only folder: raised where the file is written
)


def exit_status(error: BaseException) -> int | None:
    """The exit status for a failure riskon knows, or None for an unexpected one (a bug: shown in full).

    An error class can only have been raised if its module was imported, so only classes of modules already
    loaded are tried: mapping an error never imports a wing (pandas, DuckDB) the command did not need.
    """
    for status, module, name in KNOWN_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None and isinstance(error, cls):
            return status
    return None


def _message(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:  # OutputError: the line is its strerror
        return error.strerror
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    return text.splitlines()[0] if text else type(error).__name__


def _say(text: str) -> None:
    # rich loads only when there is something to print
    from rich.console import Console
    from rich.text import Text

    Console(stderr=True).print(Text("error: ", style="bold red") + Text(text), highlight=False, soft_wrap=True)


def main() -> None:
    """Entry point: run the command and exit with its status (see the module docstring for the codes)."""
    # the command tree loads on first use: spawned workers re-import the script and must stay light
    from typer.exceptions import Abort, Exit, TyperException

    # the command tree loads on first use: spawned workers re-import the script
    from riskon.cli.commands import app

    try:
        code = app(standalone_mode=False)
    except (Abort, KeyboardInterrupt):  # Ctrl-C (typer turns most into Exit(130), a prompt into Abort)
        _say("interrupted")
        sys.exit(INTERRUPTED)
    except Exit as e:
        sys.exit(e.exit_code)
    except TyperException as e:  # usage errors: bad option, missing argument, bad value (click's exceptions)
        if e.format_message():  # empty when the help was shown instead (no arguments at all)
            _say(e.format_message().replace("\n", " "))
        sys.exit(USAGE)
    except Exception as e:
        status = exit_status(e)
        if status is None:
            raise
        _say(_message(e))
        sys.exit(status)
    sys.exit(code if isinstance(code, int) else OK)
