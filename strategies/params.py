"""Typed, self-validating rule parameters: type, unit, default, bounds and sweep range.

A rule declares its parameters as class attributes; each knows how to check a
value and what a sensible sweep over it is, so configs and ``riskon rules``
read them from the rule instead of from a second list.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

from strategies.errors import RuleError


def did_you_mean(name: str, valid: list[str]) -> str:
    """A ``did you mean 'x'?`` hint for a misspelt name, or an empty string."""
    close = difflib.get_close_matches(name, valid, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


@dataclass(frozen=True)
class Param:
    """One rule parameter: its type, default, unit, bounds, choices and default sweep range."""

    default: Any
    kind: type = float
    unit: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    sweep: tuple | None = None
    help: str = ""
    nullable: bool = False

    def check(self, name: str, value: Any) -> Any:
        """Return ``value`` converted to the parameter's type, or raise ``ValueError`` naming it."""
        if value is None:
            if self.nullable:
                return None
            raise RuleError(f"{name} must be set ({self.describe()})")
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.kind) or (self.kind is not bool and isinstance(value, bool)):
            raise RuleError(f"{name} must be {self.kind.__name__}, got {type(value).__name__} {value!r}")
        if isinstance(value, float) and math.isnan(value):
            raise RuleError(f"{name} must be a number, got nan")
        if self.choices is not None and value not in self.choices:
            raise RuleError(
                f"{name} must be one of {', '.join(map(repr, self.choices))}, got {value!r}"
                + did_you_mean(str(value), [str(c) for c in self.choices])
            )
        if self.low is not None and value < self.low:
            raise RuleError(f"{name} must be >= {self.low}, got {value!r}")
        if self.high is not None and value > self.high:
            raise RuleError(f"{name} must be <= {self.high}, got {value!r}")
        return value

    def describe(self) -> str:
        """One phrase: type, unit, range and default."""
        parts = [self.kind.__name__]
        if self.unit:
            parts.append(self.unit)
        if self.choices:
            parts.append("one of " + "/".join(map(str, self.choices)))
        elif self.low is not None or self.high is not None:
            parts.append(f"[{'' if self.low is None else self.low}, {'' if self.high is None else self.high}]")
        parts.append(f"default {self.default!r}")
        return ", ".join(parts)


def check_params(owner: str, declared: dict[str, Param], given: dict[str, Any]) -> dict[str, Any]:
    """Validate ``given`` against ``declared``: unknown names fail with the valid ones and a hint."""
    for key in given:
        if key not in declared:
            raise RuleError(
                f"{owner} has no parameter {key!r}; valid: {', '.join(declared) or '(none)'}"
                + did_you_mean(key, list(declared))
            )
    return {k: p.check(f"{owner}.{k}", given.get(k, p.default)) for k, p in declared.items()}
