"""The tear sheet and signal chart drawn by worker processes while the run goes on: quantstats' own page.

A tear sheet is ~1.8 s of quantstats import, ~1 s of metrics table and ~3-4 s of figures (fourteen
matplotlib SVGs), all serial in ``quantstats.reports.html``. ``SheetWorkers`` forks one worker before
the backtest (it inherits pandas and riskon; it imports quantstats and matplotlib beside the backtest,
on the other core). When the returns are known, ``begin_pages`` hands it the page and the signal chart
(``figure_worker.sheet``):

1. ``reports.html`` run with its plotting module recorded (and its metrics table stubbed) gives every
   plotting call with its arguments, as ``reports.html`` makes it;
2. the worker forks helpers (quantstats loaded: nothing to import) that draw the signal chart and the
   figures, the longest first, with quantstats' own plotting functions; the worker makes the metrics
   table, the EOY and drawdown tables and quantstats' template (``reports.html`` again, a placeholder per
   figure), then draws figures too;
3. the figures go into their placeholders; back in the command's process riskon's fixes
   (``tearsheet.finish_page``) apply as on the serial page, and the page is written.

The page is quantstats' own, equal in content to ``write_tearsheet``'s serial page (matplotlib's random
SVG ids and the drawing's date aside; ``tests/pages/test_parallel_sheet.py``), and the chart is the one
``charts.signal_chart`` draws here (``tests/pages/test_sheet_speed.py``). The command's process meanwhile
writes the CSVs and run.html; it never loads matplotlib or quantstats. Without workers (the Python API,
``RISKON_PAGE_WORKERS=0``, one core) both are written serially, as before. No process outlives the command.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from types import SimpleNamespace

from riskon.pages.html import write_page
from riskon.pages.tearsheet import finish_page, run_sheet_arguments, write_tearsheet

#: The environment variable that sets the number of tear-sheet processes (0: serial, in the main process).
WORKERS_ENV = "RISKON_PAGE_WORKERS"

_active: SheetWorkers | None = None


def page_workers() -> int:
    """How many processes draw a tear sheet: ``RISKON_PAGE_WORKERS`` if set, else 2 (0, serial, on one core)."""
    given = os.environ.get(WORKERS_ENV, "").strip()
    if given.isdigit():
        return int(given)
    return 2 if (os.cpu_count() or 1) >= 2 else 0


def _call(name: str, *args):
    # the worker module loads quantstats and matplotlib: only in the worker, never in the command's process
    from riskon.pages import figure_worker

    return getattr(figure_worker, name)(*args)


class SheetWorkers:
    """The tear-sheet worker, forked now so that its quantstats import overlaps the backtest.

    Use as a context manager around the run and its ``write``: inside it, ``begin_tearsheet`` hands the
    page to the worker, which forks ``workers - 1`` helpers for the figures once quantstats is loaded.
    On leaving, the worker is shut down (no process outlives the command).
    """

    def __init__(self, workers: int = 2) -> None:
        self.helpers = max(workers - 1, 0)
        # forked (not spawned): pandas, numpy and riskon are inherited; the worker adds quantstats and matplotlib
        # (this process never loads matplotlib: the worker draws the signal chart too)
        self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"), initializer=_call,
                                         initargs=("warm",))  # fmt: skip
        self._pool.submit(int)  # forks the worker now; its initializer imports quantstats while the run goes on

    def submit(self, name: str, *args) -> Future:
        """Run ``figure_worker.<name>(*args)`` in the worker."""
        return self._pool.submit(_call, name, *args)

    def __enter__(self) -> SheetWorkers:
        global _active
        _active = self
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        global _active
        _active = None
        if exc_type is not None:  # the command failed: its error is shown now, not after the worker's imports
            self._terminate()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _terminate(self) -> None:
        stop = getattr(self._pool, "terminate_workers", None)  # Python 3.14
        if stop is not None:
            stop()
            return
        for proc in list(getattr(self._pool, "_processes", {}).values()):  # before 3.14: the pool's own processes
            proc.terminate()


def chart_source(result) -> SimpleNamespace:
    """What the signal chart (``riskon.pages.charts.signal_figure``) reads of a run, to hand a worker process."""
    return SimpleNamespace(bars=result.bars, sessions=result.sessions, config=result.config, trades=result.trades)


def begin_pages(result, sheet: str | Path | None, chart: str | Path | None) -> Callable[[], dict[str, Path]]:
    """Start writing a run's tear sheet to ``sheet`` and its signal chart to ``chart`` (None: not that one);
    call what it returns to wait for them (their paths, under "tearsheet" and "chart").

    With ``SheetWorkers`` running, the worker draws both (the chart by a helper, beside the tear sheet's
    tables) while the caller goes on; otherwise they are written here, serially, before this returns.
    """
    workers = _active
    if workers is None:
        done = _serial(result, sheet, chart)
        return lambda: done
    signals = None if chart is None else (chart_source(result), str(chart))
    if sheet is None:
        job = workers.submit("chart", *signals) if signals is not None else None
        title = ""
    else:
        arguments, title = run_sheet_arguments(result, sheet)
        job = workers.submit("sheet", arguments, result.returns, workers.helpers, signals)

    def finish() -> dict[str, Path]:
        if job is None:
            return {}
        try:
            done = job.result()
        except BrokenProcessPool:  # the worker died (e.g. out of memory): the serial pages, as without workers
            return _serial(result, sheet, chart)
        paths = {} if chart is None else {"chart": Path(chart)}
        if sheet is not None:
            text, drawdowns = done
            paths = {"tearsheet": write_page(Path(sheet), finish_page(text, drawdowns, title)), **paths}
        return paths

    return finish


def _serial(result, sheet: str | Path | None, chart: str | Path | None) -> dict[str, Path]:
    paths = {}
    if sheet is not None:
        paths["tearsheet"] = write_tearsheet(result, sheet)
    if chart is not None:
        # matplotlib loads only when a chart is drawn
        from riskon.pages.charts import signal_chart

        paths["chart"] = signal_chart(result, chart)
    return paths


def begin_tearsheet(result, path: str | Path) -> Callable[[], Path]:
    """Start writing a run's tear sheet to ``path``; call what it returns to wait for the page (its path).

    ``begin_pages`` without the chart.
    """
    pages = begin_pages(result, path, None)
    return lambda: pages()["tearsheet"]
