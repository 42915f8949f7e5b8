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
        #: the first commit failure; nothing handed over after it is written (batches commit in order)
        self.error: BaseException | None = None
        self._reported = False
        self._thread = threading.Thread(target=self._run, name="riskon-batch-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            if self.error is None:
                try:
                    self._commit(batch)
                except BaseException as e:  # handed to the feeding thread
                    self.error = e

    def _raise(self) -> None:
        if self.error is not None and not self._reported:
            self._reported = True
            raise self.error

    def put(self, batch: list[dict]) -> None:
        """Queue a batch for committing (blocks while ``depth`` batches wait); raises an earlier commit's error."""
        self._raise()
        if batch:
            self._queue.put(batch)

    def close(self, interruptible: bool = True) -> None:
        """Wait until every queued batch is committed; raises the first commit error, if not raised yet.

        ``interruptible=False`` waits through further Ctrl-C presses: a sweep being stopped must not
        touch the store while a commit is still under way.
        """
        if self._thread.is_alive():
            self._wait(lambda: self._queue.put(None), interruptible)
            while self._thread.is_alive():
                self._wait(self._thread.join, interruptible)
        self._raise()

    @staticmethod
    def _wait(step: Callable[[], None], interruptible: bool) -> None:
        while True:
            try:
                step()
                return
            except KeyboardInterrupt:
                if interruptible:
                    raise


__all__ = ["BatchWriter"]
