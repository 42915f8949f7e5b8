"""Rules composed from config: ``all_of`` / ``any_of`` / ``not`` over rules and filters.

A spec is a rule name, ``{"rule": name, <param>: value, ...}``, or
``{"all_of": [spec, ...]}``, ``{"any_of": [spec, ...]}``, ``{"not": spec}``.
Evaluated per bar of the traded asset: an index event rule fires on the bar
where its confirming session first becomes visible; an index filter is the
state of the session the bar sees; asset rules are read on the bar itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from strategies import rules
from strategies.errors import RuleError
from strategies.signals import bar_events


@dataclass(frozen=True)
class BarSignal:
    """Per bar: whether the expression is true, and the level and session of the event behind it."""

    on: np.ndarray
    level: np.ndarray
    session: np.ndarray

    def frame(self, index: pd.Index, prefix: str = "event") -> pd.DataFrame:
        """As columns ``<prefix>``, ``<prefix>_level``, ``<prefix>_session`` on ``index``."""
        return pd.DataFrame(
            {prefix: self.on, f"{prefix}_level": self.level, f"{prefix}_session": pd.DatetimeIndex(self.session)},
            index=index,
        )


class Node:
    """A node of a composed expression."""

    def evaluate(self, sessions: pd.DataFrame, bars: pd.DataFrame) -> BarSignal:
        """The expression per bar of ``bars`` (aligned to ``sessions``)."""
        raise NotImplementedError

    def leaves(self) -> list[Leaf]:
        """Every rule in the expression."""
        raise NotImplementedError


@dataclass
class Leaf(Node):
    """One rule with its parameters."""

    rule: rules.Rule

    def session_output(self, sessions: pd.DataFrame) -> pd.DataFrame:
        """The rule's own output on the index sessions (index rules only)."""
        return self.rule.compute(sessions)

    def evaluate(self, sessions: pd.DataFrame, bars: pd.DataFrame) -> BarSignal:
        n = len(bars)
        nat = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
        if self.rule.on == "asset":
            out = self.rule.compute(bars)
            level = out["level"].to_numpy(dtype="float64") if "level" in out else np.full(n, np.nan)
            return BarSignal(out["signal"].to_numpy(dtype=bool), level, nat)
        out = self.session_output(sessions)
        if "level" not in out:
            out = out.assign(level=np.nan)
        if self.rule.kind == "event":
            ev = bar_events(bars, out)
            return BarSignal(
                ev["event"].to_numpy(dtype=bool),
                ev["event_level"].to_numpy(dtype="float64"),
                ev["event_session"].to_numpy(dtype="datetime64[us]"),
            )
        pos = bars["idx_pos"].to_numpy()
        state = out["signal"].to_numpy(dtype=bool)
        return BarSignal(np.where(pos >= 0, state[np.maximum(pos, 0)], False), np.full(n, np.nan), nat)

    def leaves(self) -> list[Leaf]:
        return [self]


@dataclass
class Combine(Node):
    """``all_of`` (AND) or ``any_of`` (OR) of child expressions."""

    op: str
    children: list[Node]

    def evaluate(self, sessions: pd.DataFrame, bars: pd.DataFrame) -> BarSignal:
        parts = [c.evaluate(sessions, bars) for c in self.children]
        stack = np.vstack([p.on for p in parts])
        on = stack.all(axis=0) if self.op == "all_of" else stack.any(axis=0)
        level = np.full(len(on), np.nan)
        session = np.full(len(on), np.datetime64("NaT"), dtype="datetime64[us]")
        # the level and session come from the first child that fired and carries one
        for p in reversed(parts):
            level = np.where(p.on & ~np.isnan(p.level), p.level, level)
            session = np.where(p.on & ~np.isnat(p.session), p.session, session)
        return BarSignal(on, np.where(on, level, np.nan), np.where(on, session, np.datetime64("NaT")))

    def leaves(self) -> list[Leaf]:
        return [leaf for c in self.children for leaf in c.leaves()]


@dataclass
class Not(Node):
    """Negation of a filter expression."""

    child: Node

    def evaluate(self, sessions: pd.DataFrame, bars: pd.DataFrame) -> BarSignal:
        p = self.child.evaluate(sessions, bars)
        n = len(p.on)
        return BarSignal(~p.on, np.full(n, np.nan), np.full(n, np.datetime64("NaT"), dtype="datetime64[us]"))

    def leaves(self) -> list[Leaf]:
        return self.child.leaves()


#: Deepest nesting of ``all_of`` / ``any_of`` / ``not`` an expression may have.
MAX_DEPTH = 32


def check_depth(spec: Any, where: str = "rule") -> None:
    """Refuse an expression nested deeper than ``MAX_DEPTH`` operators (walked without recursion).

    Building, describing and evaluating an expression recurse once per level: a spec nested hundreds
    deep would end in a ``RecursionError`` instead of a message.
    """
    stack = [(spec, 0)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict):
            continue
        children = [node[k] for k in ("not",) if k in node] + [
            c for k in ("all_of", "any_of") if isinstance(node.get(k), list) for c in node[k]
        ]
        if not children:
            continue
        if depth + 1 > MAX_DEPTH:
            raise ValueError(
                f"{where}: the expression nests all_of/any_of/not more than {MAX_DEPTH} levels deep; flatten it"
            )
        stack.extend((c, depth + 1) for c in children)


def build(spec: Any, where: str = "rule") -> Node:
    """Parse a spec (see the module docstring) into an expression; errors name ``where``.

    The nesting depth is checked first (``check_depth``), before any recursion.
    """
    check_depth(spec, where)
    return _build(spec, where)


def _build(spec: Any, where: str) -> Node:
    if isinstance(spec, str):
        return Leaf(rules.make(spec))
    if not isinstance(spec, dict):
        raise RuleError(f"{where}: expected a rule name or a table, got {type(spec).__name__}")
    ops = [k for k in ("rule", "all_of", "any_of", "not") if k in spec]
    if len(ops) != 1:
        raise RuleError(f"{where}: a rule table needs exactly one of rule, all_of, any_of, not; got {sorted(spec)}")
    op = ops[0]
    if op == "rule":
        if not isinstance(spec["rule"], str):
            raise RuleError(f"{where}: rule must be a rule name (text), got {spec['rule']!r}")
        params = {k: v for k, v in spec.items() if k != "rule"}
        if isinstance(params.get("params"), dict) and len(params) == 1:
            params = params["params"]
        return Leaf(rules.make(spec["rule"], **params))
    if len(spec) != 1:
        raise RuleError(f"{where}: {op} takes no other keys, got {sorted(k for k in spec if k != op)}")
    if op == "not":
        return Not(_build(spec["not"], f"{where}.not"))
    items = spec[op]
    if not isinstance(items, list) or not items:
        raise RuleError(f"{where}: {op} needs a non-empty list of rules")
    return Combine(op, [_build(s, f"{where}.{op}[{i}]") for i, s in enumerate(items)])


def has_event(node: Node) -> bool:
    """True when an entry expression contains at least one event rule outside a ``not``."""
    if isinstance(node, Leaf):
        return node.rule.kind == "event"
    if isinstance(node, Not):
        return False
    if node.op == "any_of":  # every alternative must be an event, or a filter alone would open trades
        return all(has_event(c) for c in node.children)
    return any(has_event(c) for c in node.children)


def describe(node: Node) -> str:
    """A one-line text form of an expression (for tables and reports)."""
    if isinstance(node, Leaf):
        return repr(node.rule)
    if isinstance(node, Not):
        return f"not {describe(node.child)}"
    return f"{node.op}({', '.join(describe(c) for c in node.children)})"
