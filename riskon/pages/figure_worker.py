"""The work a tear-sheet worker process does: quantstats' own page, its figures drawn one call at a time.

Imported only in the worker process of ``riskon.pages.sheet_pool`` (which forks its helpers after this
import, so quantstats and matplotlib load once) and by tests: it loads both at import.

``quantstats.reports.html`` builds the page; riskon does not rebuild it. It is run with its plotting
module swapped for ``_Recorder``, which writes a numbered placeholder where each figure goes and keeps the
call (plotting function, arguments). ``plan`` runs it with the metrics table left out, to learn the calls
fast; ``page`` runs it with the real metrics table, for the page with placeholders; ``draw`` makes one
recorded call with quantstats' own plotting function and returns the figure as ``reports.html`` embeds it;
``sheet`` does all three, with the figures shared between this process and helpers forked from it;
``chart`` draws the run's signal chart (``riskon.pages.charts``), which ``sheet`` can share out too.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context

import matplotlib

matplotlib.use("Agg", force=False)  # a worker only writes files

import pandas as pd  # noqa: E402  (after the backend is chosen)

from riskon.pages.charts import signal_chart  # noqa: E402
from riskon.pages.tearsheet import (  # noqa: E402
    FIGURE_PLACEHOLDER,
    drawdown_rows,
    drawing_fixes,
    import_quantstats,
    quiet_quantstats,
)

qs = import_quantstats()  # yfinance stays unloaded: riskon never asks quantstats to download

_PLACEHOLDER = re.compile(re.escape(FIGURE_PLACEHOLDER).replace(r"\{\}", r"(\d+)"))

#: One plotting call of ``reports.html``: function name in ``quantstats.plots``, args, kwargs (no ``savefig``),
#: figure format.
Call = tuple[str, tuple, dict, str]


class _Recorder:
    """``quantstats.plots`` as ``reports.html`` sees it while recording: each call leaves a placeholder."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def __getattr__(self, name: str):
        def record(*args, **kwargs) -> None:
            savefig = kwargs.pop("savefig")
            savefig["fname"].write(FIGURE_PLACEHOLDER.format(len(self.calls)).encode())
            self.calls.append((name, args, kwargs, savefig["format"]))

        return record


def _no_metrics(*args, **kwargs) -> pd.DataFrame:
    """A stand-in for quantstats' metrics table when only the figure calls are wanted."""
    return pd.DataFrame({"Strategy": [0.0, 0.0, 0.0]}, index=["a", "b", "c"])


@contextlib.contextmanager
def _recording(with_metrics: bool):
    """``reports.html`` with its figures recorded (and, unless ``with_metrics``, its metrics table stubbed)."""
    recorder, plots, metrics = _Recorder(), qs.reports._plots, qs.reports.metrics
    qs.reports._plots = recorder
    if not with_metrics:
        qs.reports.metrics = _no_metrics
    try:
        with quiet_quantstats():
            yield recorder
    finally:
        qs.reports._plots, qs.reports.metrics = plots, metrics


def plan(arguments: dict) -> list[Call]:
    """The plotting calls ``reports.html`` makes for these arguments (``tearsheet.html_arguments``), in page order."""
    with _recording(with_metrics=False) as recorder:
        qs.reports.html(**arguments, output=os.devnull)
    return recorder.calls


def page(arguments: dict, returns: pd.Series) -> tuple[str, str, list[str]]:
    """quantstats' page for these arguments with a placeholder for each figure, riskon's drawdown rows
    (``tearsheet.drawdown_rows`` of ``returns``) and the names of the plotting calls, in page order."""
    fd, raw = tempfile.mkstemp(prefix="riskon-tearsheet-", suffix=".html")  # outside the reports folder
    os.close(fd)
    try:
        with _recording(with_metrics=True) as recorder:
            qs.reports.html(**arguments, output=raw)
        with open(raw, encoding="utf-8") as f:
            text = f.read()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(raw)
    return text, drawdown_rows(returns), [c[0] for c in recorder.calls]


def draw(call: Call) -> str:
    """One recorded figure drawn by quantstats' own plotting function, embedded as ``reports.html`` embeds it."""
    name, args, kwargs, fmt = call
    figfile = qs.utils._file_stream()
    with quiet_quantstats(), drawing_fixes():
        getattr(qs.plots, name)(*args, savefig={"fname": figfile, "format": fmt}, **kwargs)
    return qs.reports._embed_figure(figfile, fmt)


#: Relative cost of each of quantstats' figures (seconds on the seed run), to draw the longest first.
_COST = {"distribution": 1.3, "monthly_heatmap": 1.3, "histogram": 1.0, "yearly_returns": 0.7, "rolling_beta": 0.45}
_DEFAULT_COST = 0.35
#: The signal chart's cost on the same scale: drawn first, by a helper, while this process makes the tables.
_CHART_COST = 1.5

#: What ``sheet`` is asked to draw besides the page: the signal chart's source (``chart_source``) and its path.
Chart = tuple[object, str]


def chart(source, path: str) -> str:
    """The signal chart (``riskon.pages.charts.signal_chart``) of ``source`` written to ``path``; its path."""
    return str(signal_chart(source, path))


def sheet(arguments: dict, returns: pd.Series, helpers: int = 1, signals: Chart | None = None) -> tuple[str, str]:
    """quantstats' page for these arguments with every figure in place, and riskon's drawdown rows.

    The figures (and the signal chart, when ``signals`` names its source and path) are shared between this
    process and ``helpers`` processes forked from it now (quantstats already loaded), the longest first;
    this process makes the metrics table first, then draws what is left.
    """
    calls = plan(arguments)
    jobs = [(draw, (c,), _COST.get(c[0], _DEFAULT_COST)) for c in calls]
    if signals is not None:
        jobs.append((chart, signals, _CHART_COST))
    queued = deque(sorted(range(len(jobs)), key=lambda i: -jobs[i][2]))
    done: dict[int, str] = {}
    with ProcessPoolExecutor(helpers, mp_context=get_context("fork")) if helpers else _no_pool() as pool:
        running: dict[int, Future] = {}

        def top_up() -> None:  # two jobs in hand per helper, so none waits for this process
            while pool is not None and queued and len(running) < 2 * helpers:
                i = queued.popleft()
                running[i] = pool.submit(jobs[i][0], *jobs[i][1])

        top_up()
        text, drawdowns, names = page(arguments, returns)
        while queued or running:
            for i in [i for i, f in running.items() if f.done()]:
                done[i] = running.pop(i).result()
            top_up()
            if queued:
                i = queued.popleft()
                done[i] = jobs[i][0](*jobs[i][1])
            elif running:
                wait(list(running.values()), return_when=FIRST_COMPLETED)
    if names != [c[0] for c in calls]:
        raise RuntimeError(f"quantstats drew {names} on its page but {[c[0] for c in calls]} when planned")
    filled, found = _PLACEHOLDER.subn(lambda m: done[int(m.group(1))], text)
    if found != len(calls):
        raise RuntimeError(f"quantstats' page has {found} figure placeholders for {len(calls)} figures")
    return filled, drawdowns


@contextlib.contextmanager
def _no_pool():
    yield None


def warm() -> None:
    """The worker's initializer: this module's imports, then one small SVG drawn, so that the helpers it forks
    inherit matplotlib's loaded fonts instead of each loading them for its first figure."""
    # matplotlib is already loaded (quantstats draws with it): this only names the class
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    fig.text(0.5, 0.5, "0%")
    fig.savefig(io.BytesIO(), format="svg")
