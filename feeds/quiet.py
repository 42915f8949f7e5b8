"""Quiet third-party libraries around a fetch: their warnings and log lines never reach the terminal.

Offline, yfinance 1.7 under pandas 3 prints six lines of ``Pandas4Warning`` before riskon can say the
one line that matters, and it reports its failures through the ``yfinance`` logger instead of raising.
Around a library call, :func:`quiet_libraries` drops every warning raised outside riskon's own
packages (``feeds``, ``strategies``, ``riskon``: those still show) and keeps the libraries' log
records, unprinted, for the caller to read why the call failed.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Folders whose warnings are riskon's own and are shown as usual.
OWN_FOLDERS = tuple(str(Path(__file__).resolve().parent.parent / p) + os.sep for p in ("feeds", "strategies", "riskon"))


def is_own(filename: str) -> bool:
    """True when a warning's ``filename`` lies in one of riskon's own packages."""
    try:
        path = str(Path(filename).resolve())
    except (OSError, ValueError):
        return False
    return path.startswith(OWN_FOLDERS)


class _Keep(logging.Handler):
    """A handler that keeps records in a list and prints nothing."""

    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.WARNING)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def quiet_libraries(*loggers: str) -> Iterator[list[logging.LogRecord]]:
    """Silence third-party warnings and log output for the block; yield the list the log records go to.

    Warnings are judged where they are shown, not by the filters (yfinance adds a ``default``
    filter for its own deprecation warnings when it is imported): one raised from a file outside
    riskon's packages is dropped, riskon's own are shown as before. The named ``loggers`` (and
    any logger with no handler at all, which Python would print to stderr) send their records of
    level WARNING and above to the yielded list instead of the terminal. Everything is restored
    on exit. Not thread-safe (it swaps process-wide settings): fetches run it in their own process.
    """
    records: list[logging.LogRecord] = []
    keep = _Keep(records)
    saved = [(lg, lg.level, lg.propagate, list(lg.handlers)) for lg in map(logging.getLogger, loggers)]
    last_resort = logging.lastResort
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show_own(message, category, filename, lineno, file=None, line=None) -> None:
            if is_own(filename):
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show_own
        for lg, *_ in saved:
            lg.handlers = [keep]
            lg.setLevel(logging.WARNING)
            lg.propagate = False
        logging.lastResort = keep
        try:
            yield records
        finally:
            logging.lastResort = last_resort
            for lg, level, propagate, handlers in saved:
                lg.handlers = handlers
                lg.setLevel(level)
                lg.propagate = propagate
