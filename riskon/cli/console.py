"""The terminal consoles every ``riskon`` command prints through."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text


def console(stderr: bool = False, width: int = 180) -> Console:
    """A rich console that wraps to the terminal, or to ``width`` columns when output is piped (tables stay whole).

    Markup is off: symbols, paths and names are printed as they are (``[`` in a folder name is not a style).
    Our own styles are ``rich.text.Text`` objects (see ``styled``).
    """
    probe = Console(stderr=stderr)
    return Console(stderr=stderr, width=None if probe.is_terminal else width, markup=False)


def styled(*parts: str | tuple[str, str]) -> Text:
    """A line from plain parts and ``(text, style)`` pairs; no part is ever parsed as markup."""
    return Text.assemble(*parts)
