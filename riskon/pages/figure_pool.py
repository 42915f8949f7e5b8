"""A page's matplotlib figures drawn by forked processes while the page's other work goes on.

A sweep report draws a dozen figures (heatmaps, distributions, slices): ~0.5-1 s of CPU each, serial in
one process before. ``FigurePool`` forks its workers after the figures' data is computed, so each worker
inherits the data (nothing is pickled to it) and receives only a figure's number; it builds the figure,
saves it as the page embeds it (``riskon.pages.html.figure``) and sends back that ``<img>`` text. The
caller meanwhile computes the rest of the page (a re-run, the null, the robustness block) and collects
the figures in their order. ``RISKON_PAGE_WORKERS`` sets the number of processes, as for the tear sheet
(0: serial, in the calling process; default 2 on two cores or more). No process outlives the pool.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from riskon.pages.html import figure

#: The environment variable that sets the number of drawing processes (0: serial, in the calling process).
WORKERS_ENV = "RISKON_PAGE_WORKERS"

#: The figures of the pool being drawn, inherited by its forked workers: ``(make, alt)`` per figure.
_JOBS: list[tuple[Callable, str]] = []


def page_workers() -> int:
    """How many processes draw a page's figures: ``RISKON_PAGE_WORKERS`` if set, else 2 (0 on one core)."""
    given = os.environ.get(WORKERS_ENV, "").strip()
    if given.isdigit():
        return int(given)
    return 2 if (os.cpu_count() or 1) >= 2 else 0


def _draw(k: int) -> str:
    make, alt = _JOBS[k]
    return figure(make(), alt)


class FigurePool:
    """Draw ``(make, alt)`` figures (``make()`` returns a matplotlib Figure) as the page's ``<img>`` texts.

    ``start`` forks the workers and hands them every figure, the longest first if the order given says so;
    ``results`` waits for them, in the order given. Without workers (``workers=0``, or fork unavailable)
    ``results`` draws them here. A worker that dies (out of memory) leaves its figures to this process.
    """

    def __init__(self, jobs: list[tuple[Callable, str]], workers: int | None = None) -> None:
        self.jobs = list(jobs)
        self.workers = page_workers() if workers is None else workers
        self._pool: ProcessPoolExecutor | None = None
        self._futures: list[Future] = []

    def start(self) -> FigurePool:
        """Fork the workers (they inherit the figures' data) and submit every figure."""
        if self.workers <= 0 or not self.jobs or "fork" not in multiprocessing.get_all_start_methods():
            return self
        # matplotlib is imported before the fork: the workers inherit it instead of importing it each
        import matplotlib.backends.backend_agg  # noqa: F401

        _JOBS[:] = self.jobs
        n = min(self.workers, len(self.jobs))
        self._pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork"))
        self._futures = [self._pool.submit(_draw, k) for k in range(len(self.jobs))]
        return self

    def results(self) -> list[str]:
        """Every figure's ``<img>`` text, in the order given."""
        if self._pool is None:
            return [figure(make(), alt) for make, alt in self.jobs]
        out = []
        try:
            for fut, (make, alt) in zip(self._futures, self.jobs, strict=True):
                try:
                    out.append(fut.result())
                except BrokenProcessPool:  # a worker died: this figure is drawn here
                    out.append(figure(make(), alt))
        finally:
            self.close()
        return out

    def close(self) -> None:
        """Stop the workers (figures not collected yet are dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            _JOBS.clear()

    def __enter__(self) -> FigurePool:
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()


__all__ = ["FigurePool", "WORKERS_ENV", "page_workers"]
