"""``riskon rules``: every entry rule and filter with its parameters, units, defaults and ranges."""

from __future__ import annotations

from rich.table import Table

from riskon.cli.console import console
from strategies import rules


def rules_table() -> Table:
    """One row per parameter of every registered rule."""
    table = Table(title="rules (strategies/rules/, plus entry points in group riskon.rules)")
    for col in ("rule", "kind", "reads", "parameter", "type", "unit", "default", "valid range", "sweep"):
        table.add_column(col)
    for name in rules.available():
        cls = rules.get(name)
        first = True
        items = list(cls.params.items()) or [("-", None)]
        for pname, p in items:
            if p is None:
                table.add_row(name, cls.kind, cls.on, "-", "", "", "", "", "")
                continue
            rng = "/".join(map(str, p.choices)) if p.choices else f"[{_n(p.low)}, {_n(p.high)}]"
            sweep = "" if p.sweep is None else f"{p.sweep[0]}..{p.sweep[1]} step {p.sweep[2]}"
            table.add_row(
                name if first else "", cls.kind if first else "", cls.on if first else "", pname,
                p.kind.__name__, p.unit, repr(p.default), rng, sweep,
            )  # fmt: skip
            first = False
        table.add_section()
    return table


def _n(x) -> str:
    return "" if x is None else f"{x:g}"


def rules_cmd() -> None:
    """List every entry rule and filter with its parameters, units, defaults and ranges."""
    console(width=200).print(rules_table())
