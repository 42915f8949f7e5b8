"""Pool workers that end with their sweep: a killed driver (kill -9) must leave no orphan processes.

A light module on purpose: fast-engine workers import it at start-up, before they compile.
"""

from __future__ import annotations

import os
import threading
import time


def watch_parent(parent: int) -> None:
    """Exit this process as soon as ``parent`` is no longer its parent (the driver died)."""
    threading.Thread(target=_exit_with_parent, args=(parent,), name="riskon-parent-watch", daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    # A pool worker blocks forever on its task queue once the driver is killed (it holds both pipe ends)
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


__all__ = ["watch_parent"]
