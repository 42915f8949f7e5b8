"""Sweep results committed by a background thread, in order, while the workers keep running.

Committing a batch of a few thousand runs' daily returns takes DuckDB a good part of a second.
Done in the thread that feeds the workers, it left them idle for that long at every batch; here
the feeding thread hands each full batch over and goes on (DuckDB releases the GIL while it
writes). At most ``depth`` batches wait, so memory stays bounded, and a failed commit is raised
in the feeding thread at its next hand-over or at ``close``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable


class BatchWriter:
    """Runs ``commit(batch)`` for every batch handed to ``put``, one at a time, in the order given."""

    def __init__(self, commit: Callable[[list[dict]], None], depth: int = 2) -> None:
        self._commit = commit
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="riskon-batch-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            if self._error is None:  # after a failure, later batches are not written (order matters)
                try:
                    self._commit(batch)
                except BaseException as e:  # handed to the feeding thread
                    self._error = e

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def put(self, batch: list[dict]) -> None:
        """Queue a batch for committing (blocks while ``depth`` batches wait); raises an earlier commit's error."""
        self._raise()
        if batch:
            self._queue.put(batch)

    def close(self) -> None:
        """Wait until every queued batch is committed; raises the first commit error, if any."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise()


__all__ = ["BatchWriter"]
