"""Where a scaled-out sweep's tasks run: a Dask cluster or riskon's local process pool, behind one interface.

``riskon.sweeps.scaleout`` runs a grid in two phases of tasks over positions of the grid; each task
needs a large object every worker receives once (the grid's setup, then each rule setting's market
arrays). On Dask that object is scattered to every worker; on the local pool it is written once to a
file in a private temporary folder (the workers are on the same machine), and each worker process loads
it on its first task and keeps it. Tasks are then submitted a bounded number at a time, so memory does
not grow with the grid, and results come back in the order they finish.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from riskon.sweeps.pools import ExecutorError, pool_results
from riskon.sweeps.streaming import windowed

#: Name prefix of a sweep's shared folder in the temporary directory (followed by the driver's pid).
PREFIX = "riskon-share-"


def _mine() -> str:
    """This machine's folder prefix: a folder named after a pid is judged only on the host that pid lives on."""
    host = "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:40]
    return f"{PREFIX}{host}-"


def _remove_orphans() -> None:
    """Remove shared folders left by drivers that no longer run (killed with SIGKILL: nothing else is left)."""
    root, mine = tempfile.gettempdir(), _mine()
    for name in os.listdir(root):
        if not name.startswith(mine):
            continue
        pid = name[len(mine) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@dataclass(frozen=True)
class SharedFile:
    """A handle to an object written once for the local pool's workers: each loads it once and keeps it."""

    token: str
    path: str


_LOADED: dict[str, Any] = {}


def resolve(obj: Any) -> Any:
    """The object behind a task's shared argument: itself (Dask hands it over), or loaded from its file once."""
    if not isinstance(obj, SharedFile):
        return obj
    found = _LOADED.get(obj.token)
    if found is None:
        if len(_LOADED) >= 4:  # a worker keeps the objects of the phase it is in, not every sweep's
            _LOADED.clear()
        with open(obj.path, "rb") as f:
            found = _LOADED[obj.token] = pickle.load(f)
    return found


class DaskFanout:
    """Tasks on a Dask cluster: the shared object scattered to every worker, a window of tasks in flight."""

    def __init__(self, client, scheduler: str) -> None:
        self.client, self.scheduler = client, scheduler

    def threads(self) -> int:
        """Worker threads in the cluster (at least 1)."""
        return max(1, sum(self.client.nthreads().values()))

    def share(self, obj: Any) -> Any:
        """``obj`` sent to every worker once; tasks take the returned handle as their first argument."""
        try:
            return self.client.scatter(obj, broadcast=True, hash=False)
        except TimeoutError:  # no worker to receive the data
            raise ExecutorError(
                f"no Dask worker is connected to the scheduler at {self.scheduler}; start workers, then run the "
                "same command again (finished runs are kept)"
            ) from None

    def map(self, fn: Callable, tasks: Iterable[tuple], flatten: bool = False) -> Iterator:
        """Results of ``fn(*task)`` as they finish."""
        return windowed(self.client, fn, tasks, flatten=flatten)


class PoolFanout:
    """Tasks on riskon's local process pool (``riskon.sweeps.chunks.start_pool``): shared objects through files."""

    def __init__(self, pool, workers: int) -> None:
        self.pool, self.workers = pool, workers
        _remove_orphans()
        self.folder = tempfile.mkdtemp(prefix=f"{_mine()}{os.getpid()}-")

    def threads(self) -> int:
        """The pool's worker processes."""
        return max(1, self.workers)

    def share(self, obj: Any) -> SharedFile:
        """``obj`` written once to this sweep's private folder; each worker loads it on its first task."""
        handle = SharedFile(uuid.uuid4().hex, os.path.join(self.folder, f"{uuid.uuid4().hex}.pickle"))
        try:
            with open(handle.path, "wb") as f:
                pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError as e:  # a full or read-only temporary disk
            raise ExecutorError(
                f"cannot write the sweep's shared data to {self.folder}: {e.strerror or e}; free space there or set "
                "TMPDIR to a folder with room (nothing was run or stored yet in this phase)"
            ) from None
        return handle

    def map(self, fn: Callable, tasks: Iterable[tuple], flatten: bool = False) -> Iterator:
        """Results of ``fn(*task)`` as they finish, at most four tasks per worker in flight; the pool stays up."""
        return pool_results(self.pool, fn, tasks, self.workers, flatten=flatten, stop=False)

    def close(self) -> None:
        """Remove the shared files (the pool itself is stopped by its owner)."""
        with contextlib.suppress(OSError):
            shutil.rmtree(self.folder)


__all__ = ["DaskFanout", "PoolFanout", "SharedFile", "resolve"]
