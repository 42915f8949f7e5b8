"""The ``riskon`` command line: a thin layer over the Python API.

The command tree lives in ``riskon.cli_app`` and loads on first use (``main()`` or ``riskon.cli.app``):
this module is what the ``riskon`` script imports, and spawned sweep workers re-import that script.
"""

from __future__ import annotations

import sys


def __getattr__(name: str):
    if name == "app":
        from riskon.cli_app import app

        return app
    raise AttributeError(f"module 'riskon.cli' has no attribute {name!r}")


def _known_errors() -> tuple[type[BaseException], ...]:
    from feeds.errors import DataError, NetworkError
    from riskon.store import StoreError
    from strategies.errors import OrderFailed

    errors: list[type[BaseException]] = [DataError, NetworkError, OrderFailed, StoreError]
    try:
        from riskon.config import ConfigError as _ConfigError

        errors.append(_ConfigError)
    except ImportError:  # pragma: no cover - config arrives with `riskon run`
        pass
    return tuple(errors)


def main() -> None:
    """Entry point: run the app, turning known failures into one clear line and a non-zero exit."""
    import typer
    from rich.console import Console

    from feeds.errors import NetworkError
    from riskon.cli_app import app

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
