"""Who may open the results store when: the writer first, readers in between, one sweep of a kind at a time.

DuckDB lets one process hold a database file for writing, or any number hold it read-only, never both.
Left alone, readers that poll often keep the file busy and a sweep's writer never gets in (two pollers
holding it 0.2 s at a time stored 0 of 600 finished runs in 60 s). So the writer announces itself first:

* ``writing(db)`` takes an exclusive lock on ``<db>.intent`` for as long as it opens and commits;
* ``reading(db)`` waits while that lock is held, then opens; a reader that was already inside finishes
  its short query, and no new reader starts, so the writer waits at most for one reader.

The writer releases the intent after each commit, so readers get the file between batches. A sweep
also holds ``<db>.sweep-<key>`` (a hash of its config) while it runs: a second process on the same config waits for the
first to finish, then resumes (every run the first stored is skipped), instead of doing the work twice.
Locks are ``flock`` locks on small side files: the operating system drops them when a process dies.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

try:  # POSIX; elsewhere the store falls back to DuckDB's own retry on a locked file
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


class LockTimeout(TimeoutError):
    """A store lock stayed held by another process for longer than the wait allowed."""


def _side(db: Path, suffix: str) -> Path:
    return db.with_name(f"{db.name}.{suffix}")


@contextlib.contextmanager
def _flock(path: Path, mode: int, timeout: float, what: str, max_delay: float = 0.1) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockTimeout(f"{what} stayed locked by another process for {timeout:g} s") from None
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 1.5, max_delay)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextlib.contextmanager
def writing(db: Path, timeout: float) -> Iterator[None]:
    """Hold the writer's intent on ``db``: new readers wait until it is released."""
    with _flock(_side(db, "intent"), fcntl.LOCK_EX if fcntl else 0, timeout, f"{db} (writer)"):
        yield


def wait_for_writer(db: Path, timeout: float) -> None:
    """Return once no writer holds (or waits to take) ``db``; a reader calls this before it opens the file.

    A reader never creates the side file: without one, no writer has ever announced itself.
    """
    if not _side(db, "intent").exists():
        return
    # polled every few ms: a writer releases its intent between batches, and a reader must catch that gap
    with _flock(_side(db, "intent"), fcntl.LOCK_SH if fcntl else 0, timeout, f"{db} (a writer)", max_delay=0.005):
        pass


def writer_waiting(db: Path) -> bool:
    """True while a writer holds its intent on ``db`` (it is opening the file or committing): a reader that keeps
    the file open between queries (``Store.session``) closes it first, or the writer could not get in."""
    if fcntl is None or not _side(db, "intent").exists():  # no writer has ever announced itself
        return False
    try:
        fd = os.open(_side(db, "intent"), os.O_RDONLY)
    except OSError:  # gone or unreadable: the reader's own open reports a folder fault
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing the descriptor releases the lock
    return False


@contextlib.contextmanager
def one_sweep(db: Path, key: str, announce: Callable[[str], None] | None = None) -> Iterator[None]:
    """Run a sweep alone: a second process with the same sweep waits here for the first to end.

    A folder where the lock file can't be made (read-only, full) raises ``OSError`` before anything runs.
    """
    if fcntl is None:  # pragma: no cover
        yield
        return
    path = _side(db, f"sweep-{key}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if announce:
                announce("a sweep of this config is running in another process; waiting for it, then resuming")
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks until the other sweep ends (or dies)
        yield
    finally:
        os.close(fd)
