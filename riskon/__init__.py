"""riskon drives the feeds and strategies: configs, runs, sweeps, results, reports and the CLI.

The Python API mirrors the command line (which is a thin layer over it)::

    import riskon

    btc = riskon.load("BTC-USD")                 # a cached series (filled from RISKON_DATA on first use)
    result = riskon.run("runs/seed.toml")         # a Result: returns, equity, trades, metrics; a notebook shows it
    sw = riskon.sweep("runs/seed_sweep.toml")     # a Sweep: runs, best(), stored returns
    riskon.status("runs/seed.toml")               # the signal's state on the latest data

``import riskon`` stays light: the API (and backtrader, numba, DuckDB behind it)
is imported on first use. No module or sub-package is named like an API function,
so ``riskon.run`` is always the function. The code lives in wings (see
``docs/architecture.md``): ``cli/`` over ``api`` over ``pages/`` over ``analysis/``
over ``sweeps/`` over the base (``runner``, ``config``, ``metrics``).
"""

from __future__ import annotations

from typing import Any

from riskon.version import __version__ as __version__

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
        # the API loads on first use (keeps `import riskon` light)
        from riskon import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'riskon' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _API)
