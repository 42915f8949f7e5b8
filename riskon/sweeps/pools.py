"""Local process pools for sweeps: workers that end with their sweep (a killed driver, kill -9, must leave
no orphan processes), a bounded number of tasks in flight, and a stop that never waits on a worker.

A light module on purpose (standard library only): fast-engine workers import it at start-up, before they compile.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool


class ExecutorError(RuntimeError):
    """The workers of a sweep were lost (a killed or crashed process): the runs finished so far are kept."""


@contextlib.contextmanager
def no_script_reimport() -> Iterator[None]:
    """While open, spawned workers start without re-running the ``__main__`` script of this process.

    A ``spawn`` worker normally re-imports the parent's main script, so a user's script that calls
    ``riskon.sweep(..., workers=2)`` without an ``if __name__ == "__main__":`` guard would start the sweep
    again in every worker. riskon's workers need only riskon's own functions, never the script's, so the
    script's path is hidden from ``multiprocessing`` while workers start (and the ``riskon`` command's
    workers skip re-reading its entry script too).
    """
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
    try:
        if "__file__" in saved:
            del main.__file__
        if "__spec__" in saved:
            main.__spec__ = None
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)


def watch_parent(parent: int) -> None:
    """Exit this process as soon as ``parent`` is no longer its parent (the driver died)."""
    threading.Thread(target=_exit_with_parent, args=(parent,), name="riskon-parent-watch", daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    # A pool worker blocks forever on its task queue once the driver is killed (it holds both pipe ends)
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def submit(ex: ProcessPoolExecutor, fn: Callable, *args: object):
    """``ex.submit(fn, *args)``; a spawn pool starts a worker inside ``submit``, so the script is hidden there."""
    with no_script_reimport():
        return ex.submit(fn, *args)


def pool_results(
    ex: ProcessPoolExecutor,
    fn: Callable,
    tasks: Iterable[tuple],
    workers: int,
    flatten: bool = False,
    stop: bool = True,
) -> Iterator[dict]:
    """Results of ``fn(*task)`` for every task on a pool, a bounded number in flight.

    The pool is shut down after (``stop``), or when a failure or an abandoned iteration ends it early.
    """
    finished = False
    try:
        pending: set = set()
        for task in tasks:  # keep a bounded number of tasks in flight so Ctrl-C stops quickly
            pending.add(submit(ex, fn, *task))
            if len(pending) >= workers * 4:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    yield from f.result() if flatten else (f.result(),)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                yield from f.result() if flatten else (f.result(),)
        finished = True
    except BrokenProcessPool:
        raise ExecutorError(
            f"a local worker process died (killed, or out of memory) with {workers} workers; the runs finished so "
            "far are stored: run the same command again to resume (fewer --workers if memory is short)"
        ) from None
    finally:
        if stop or not finished:
            stop_pool(ex)


def stop_pool(ex: ProcessPoolExecutor) -> None:
    """End a pool whose results are consumed (or abandoned): its workers are idle or still starting.

    Terminating first keeps a worker that is still starting from failing noisily on a lock the driver
    has already released, and keeps a sweep with nothing left to run from waiting for compilations.
    """
    for proc in list((getattr(ex, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            proc.terminate()
    ex.shutdown(wait=False, cancel_futures=True)
