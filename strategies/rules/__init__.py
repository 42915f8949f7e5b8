"""Entry rules and filters as one-file plugins: ``strategies/rules/<name>.py`` defines rule ``<name>``.

A rule reads either the index **sessions** (``on = "index"``: ``idx_close``,
``idx_ath``, ``idx_week_end`` per NYSE session, full history) or the traded
asset's **bars** (``on = "asset"``: OHLCV plus the ``idx_*`` lines each bar
sees) and returns a boolean ``signal`` (and optionally the break ``level``)
from the past only. ``kind = "event"`` rules trigger entries; ``kind =
"filter"`` rules are states that gate them. No backtrader and no position state
live in a rule. Rules shipped in other packages register through the entry-point
group ``riskon.rules``.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from strategies.params import Param, check_params, did_you_mean

ENTRY_POINT_GROUP = "riskon.rules"


class Rule:
    """Base class of rules: declare ``name``, ``kind``, ``on``, ``params``; implement ``compute``."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "event"  # "event" (fires entries) or "filter" (a state that gates them)
    on: ClassVar[str] = "index"  # "index": per index session; "asset": per bar of the traded asset
    level: ClassVar[bool] = False  # True when ``compute`` also returns the broken ``level`` of each signal
    params: ClassVar[dict[str, Param]] = {}
    #: optional check between parameters: returns an error message, or None when the values are fine
    constraint: ClassVar[Callable[[dict[str, Any]], str | None] | None] = None

    def __init__(self, **values: Any) -> None:
        self.values = check_params(f"rule {self.name}", self.params, values)
        if self.constraint is not None:
            problem = type(self).constraint(self.values)
            if problem:
                raise ValueError(f"rule {self.name}: constraint violated: {problem}")

    def compute(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``signal`` (bool) and optionally ``level`` (float) per row of ``frame``, from the past only."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.values.items())
        return f"{self.name}({args})"


@lru_cache(maxsize=1)
def _plugins() -> dict[str, Any]:
    """Rules registered by other packages (scanning entry points is slow: cached; see ``refresh``)."""
    try:
        return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    except Exception:  # a broken third-party distribution must not break the built-ins
        return {}


def refresh() -> None:
    """Forget the cached entry-point plugins (after installing a package that ships rules)."""
    _plugins.cache_clear()
    _LOCAL.clear()
    _CLASSES.clear()


_LOCAL: dict[tuple, frozenset[str]] = {}


def _local_modules() -> frozenset[str]:
    """Module names in this folder, rescanned whenever the folder changes (a dropped-in file registers at once).

    Scanning on every call made validating a 10,000-combination sweep take seconds.
    """
    key = tuple((p, os.stat(p).st_mtime_ns) for p in __path__)
    if key not in _LOCAL:
        _LOCAL.clear()
        _CLASSES.clear()  # a file deleted and dropped in again under the same name must load anew
        _LOCAL[key] = frozenset(m.name for m in pkgutil.iter_modules(__path__))
    return _LOCAL[key]


def available() -> list[str]:
    """Names of every rule: files in this folder plus entry-point plugins."""
    local = {name for name in _local_modules() if not name.startswith("_")}
    return sorted(local | set(_plugins()))


def get(name: str) -> type[Rule]:
    """The rule class registered under ``name``; unknown names list the valid ones."""
    if not name.startswith("_") and name in _local_modules():
        found = _CLASSES.get(name)
        if found is None:
            found = _CLASSES[name] = _local_class(name)
        return found
    names = available()
    if name not in names:
        raise ValueError(f"unknown rule {name!r}; valid: {', '.join(names)}" + did_you_mean(name, names))
    obj = _plugins()[name].load()
    if not (isinstance(obj, type) and issubclass(obj, Rule)):
        raise ValueError(f"entry point {name!r} in group {ENTRY_POINT_GROUP} is not a Rule subclass")
    return obj


#: Rule classes found in this folder since its last scan (a sweep validates thousands of configs)
_CLASSES: dict[str, type[Rule]] = {}


def _local_class(name: str) -> type[Rule]:
    module = importlib.import_module(f"{__name__}.{name}")
    for obj in vars(module).values():
        if isinstance(obj, type) and issubclass(obj, Rule) and obj is not Rule and obj.name == name:
            return obj
    raise ValueError(f"strategies/rules/{name}.py defines no Rule subclass with name = {name!r}")


def make(name: str, **values: Any) -> Rule:
    """Instantiate rule ``name`` with validated parameter values."""
    return get(name)(**values)


def sma(values: pd.Series, window: int) -> pd.Series:
    """Trailing simple moving average (NaN until ``window`` values exist): uses the past only."""
    return values.rolling(window, min_periods=window).mean()


def prior_high(close: np.ndarray) -> np.ndarray:
    """The highest close strictly before each row (NaN for the first): the level a new high must beat."""
    out = np.full(len(close), np.nan)
    if len(close) > 1:
        out[1:] = np.maximum.accumulate(close)[:-1]
    return out
