"""The terminal consoles every ``riskon`` command prints through."""

from __future__ import annotations

from rich.console import Console


def console(stderr: bool = False, width: int = 180) -> Console:
    """A rich console that wraps to the terminal, or to ``width`` columns when output is piped (tables stay whole)."""
    probe = Console(stderr=stderr)
    return Console(stderr=stderr, width=None if probe.is_terminal else width)
