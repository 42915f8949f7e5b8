"""Independent, deterministic pieces of one test computed by forked worker processes.

pytest runs the suite in one process, so on CI's two cores one core idles while a test runs backtrader
a hundred times. ``forked_map`` hands such pieces to forked children (they inherit the test's data, no
re-import, no pickling of the inputs) and returns their results in order; the test then checks them in its
own process, exactly as it did when it computed them itself. With one core (or no ``fork``) it computes
them in this process, as it does when another thread runs in this one (a fork copies only the calling thread,
and a lock another thread held stays held in the child): the results, and so what the test proves, are the
same either way.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: The function and items of the map being computed, inherited by its forked workers.
_JOB: tuple[Callable[[Any], Any], Sequence[Any]] | None = None


def _one(i: int) -> Any:
    """In a forked worker: the function applied to the i-th item of the inherited job."""
    assert _JOB is not None, "forked_map's worker started without a job"
    fn, items = _JOB
    return fn(items[i])


def workers() -> int:
    """Worker processes to use: one per core, at most two (CI's cores); 0 when forking is unavailable or unsafe."""
    if "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(2, cores) if cores > 1 else 0


def forked_map(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[fn(x) for x in items]``, computed by forked processes when there are two cores.

    ``fn`` may be a closure (the workers inherit it); its results must pickle. An exception in a worker
    is raised here, as the loop would have raised it.
    """
    global _JOB
    n = workers()
    if n == 0 or len(items) < 2:
        return [fn(x) for x in items]
    _JOB = (fn, items)
    try:
        with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_one, range(len(items))))
    finally:
        _JOB = None
