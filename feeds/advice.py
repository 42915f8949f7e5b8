"""The one line a failed fetch ends with: which failure it is, and what to do about it.

Yahoo and the exchanges fail in two ways a user must tell apart: the machine cannot reach them
(no network: use a CSV file instead) or they do not know the symbol (check how it is written).
Both sources word these the same way, through the functions here.
"""

from __future__ import annotations

from feeds.symbols import filename_for

#: How a fetch failure tells the user to import a file; ``feeds.loader.load`` adds its own hint only without it.
IMPORT_HINT = "`riskon data import FILE`"


def no_network(symbol: str, timeframe: str, source: str, detail: str, *, cause: str = "no network") -> str:
    """``symbol``: ``source`` did not answer (``detail``): ``cause``, and how to go on with a CSV file."""
    return (
        f"{symbol}: {source} did not answer ({detail}): {cause}; the cache is unchanged. "
        f"Check the connection, or use a CSV file: put {filename_for(symbol, timeframe)} in the folder "
        f"RISKON_DATA names, or run {IMPORT_HINT}"
    )


def unknown_symbol(symbol: str, source: str, detail: str, example: str) -> str:
    """``symbol``: unknown symbol: what ``source`` said (``detail``), and how symbols are written there."""
    return f"{symbol}: unknown symbol: {detail}; check the symbol as {source} writes it ({example})"
