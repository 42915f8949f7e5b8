"""Entry rules as one-file plugins: a file ``strategies/rules/<name>.py`` defines rule ``<name>``.

A rule reads per-session index data (and nothing from the future) and returns
a boolean ``signal`` per session plus the ``level`` a later exit may test
against. No backtrader and no position state live in a rule.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import ClassVar

import pandas as pd

from strategies.params import Param, check_params, did_you_mean


class Rule:
    """Base class of entry rules: declare ``params`` and implement ``compute``."""

    name: ClassVar[str] = ""
    params: ClassVar[dict[str, Param]] = {}

    def __init__(self, **values) -> None:
        self.values = check_params(f"rule {self.name}", self.params, values)

    def compute(self, sessions: pd.DataFrame) -> pd.DataFrame:
        """Per-session ``signal`` (bool) and ``level`` (float) from the past only."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.values.items())
        return f"{self.name}({args})"


def available() -> list[str]:
    """Names of every rule file in this folder."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get(name: str) -> type[Rule]:
    """The rule class registered under ``name``; unknown names list the valid ones."""
    names = available()
    if name not in names:
        raise ValueError(f"unknown rule {name!r}; valid: {', '.join(names)}" + did_you_mean(name, names))
    module = importlib.import_module(f"{__name__}.{name}")
    for obj in vars(module).values():
        if isinstance(obj, type) and issubclass(obj, Rule) and obj is not Rule and obj.name == name:
            return obj
    raise ValueError(f"strategies/rules/{name}.py defines no Rule subclass with name = {name!r}")


def make(name: str, **values) -> Rule:
    """Instantiate rule ``name`` with validated parameter values."""
    return get(name)(**values)
