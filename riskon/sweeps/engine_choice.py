"""Which engine a sweep uses: the fast simulator whenever it supports every combination, else backtrader."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from riskon.config import ConfigError, RunConfig


def unsupported(cfg: RunConfig, rates: Mapping | None = None) -> str | None:
    """Why the fast engine cannot run ``cfg``, or None (``rates``: yield series by symbol, else read from the cache)."""
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs
    from riskon.runner import strategy_params
    from strategies.fastsim import is_supported

    ok, why = is_supported(strategy_params(cfg, rates))
    return None if ok else why


def resolve_engine(engine: str, unsupported: str | None, announce: Callable[[str], None] | None) -> str:
    """The engine to use, given why the fast engine cannot run some combination (None: it can run all)."""
    if engine not in ("auto", "fast", "backtrader"):
        raise ConfigError(f"unknown engine {engine!r}; valid: auto, fast, backtrader")
    if engine == "backtrader" or unsupported is None:
        return "backtrader" if engine == "backtrader" else "fast"
    if engine == "fast":
        raise ConfigError(f"--engine fast cannot run this sweep: {unsupported}; use --engine backtrader")
    if announce:
        announce(f"engine: backtrader ({unsupported})")
    return "backtrader"


def choose_engine(engine: str, configs: Iterable[RunConfig], announce: Callable[[str], None] | None) -> str:
    """Resolve ``auto``; refuse ``fast`` for a feature only backtrader simulates."""
    if engine not in ("auto", "fast", "backtrader"):
        raise ConfigError(f"unknown engine {engine!r}; valid: auto, fast, backtrader")
    if engine == "backtrader":
        return engine
    why = next((w for w in map(unsupported, configs) if w is not None), None)
    return resolve_engine(engine, why, announce)
