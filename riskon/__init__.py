"""riskon drives the feeds and strategies: configs, runs, sweeps, results, reports and the CLI.

The Python API mirrors the command line (which is a thin layer over it)::

    import riskon

    btc = riskon.load("BTC-USD")                 # a cached series (filled from RISKON_DATA on first use)
    result = riskon.run("runs/seed.toml")         # a Result: returns, equity, trades, metrics; a notebook shows it
    sw = riskon.sweep("runs/seed_sweep.toml")     # a Sweep: runs, best(), stored returns
    riskon.status("runs/seed.toml")               # the signal's state on the latest data

``import riskon`` stays light: the API (and backtrader, numba, DuckDB behind it)
is imported on first use. Submodules named like an API verb (``riskon.run``,
``riskon.sweep``, ``riskon.status``, ...) keep working with ``from riskon.run
import Result``; the attribute ``riskon.run`` itself is always the function
(so patch such a submodule through ``importlib.import_module("riskon.run")``,
not the dotted string ``"riskon.run.x"``).
"""

from __future__ import annotations

import sys
import types
from typing import Any

__version__ = "0.1.0"

#: The public API, resolved lazily from ``riskon.api``.
__all__ = [
    "Result",
    "RunConfig",
    "ConfigError",
    "Status",
    "Sweep",
    "compare",
    "events",
    "load",
    "null",
    "read_config",
    "results",
    "run",
    "status",
    "sweep",
    "walkforward",
]
_API = frozenset(__all__)


def __getattr__(name: str) -> Any:
    """Import ``riskon.api`` on first use of an API name (keeps ``import riskon`` free of heavy imports)."""
    if name in _API:
        from riskon import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'riskon' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _API)


class _Package(types.ModuleType):
    """The package's module type: importing a submodule never replaces an API function of the same name.

    Python sets ``riskon.run = <module riskon.run>`` when that submodule is
    first imported; here the API name wins, and the submodule stays reachable
    through ``from riskon.run import ...`` (``sys.modules``).
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
