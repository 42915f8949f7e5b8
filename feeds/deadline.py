"""Run a network call in a child process with a hard deadline that really ends it.

yfinance's cookie fetch ignores its own timeout and a thread cannot be killed,
so the call runs in a forked process that is terminated when time is up. The child prints
nothing of its own: third-party warnings and log lines are silenced there (``feeds.quiet``),
and whatever it has to say comes back to the parent as a value or one error line.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from collections.abc import Callable
from typing import Any

from feeds.errors import DataError, NetworkError
from feeds.quiet import quiet_libraries

#: Seconds a single fetch may take before it is cut off.
DEFAULT_DEADLINE = 20.0


def _child(conn, fn, args, kwargs) -> None:
    try:
        with quiet_libraries():  # the child shares the terminal: only the parent speaks
            value = fn(*args, **kwargs)
        conn.send(("ok", value))
    except (DataError, NetworkError) as e:
        conn.send((type(e).__name__, str(e)))
    except BaseException as e:  # report anything, the parent turns it into one line
        conn.send(("other", f"{type(e).__name__}: {e}".strip(), traceback.format_exc()))
    finally:
        conn.close()


def call_with_deadline(
    fn: Callable[..., Any], *args: Any, deadline: float = DEFAULT_DEADLINE, what: str = "fetch", **kwargs: Any
) -> Any:
    """Return ``fn(*args, **kwargs)`` computed in a child process, or raise within ``deadline`` s.

    ``DataError``/``NetworkError`` raised in the child are re-raised as such;
    any other failure becomes a ``NetworkError`` naming ``what``.
    """
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args, kwargs), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(deadline):
            raise NetworkError(f"{what}: no answer within {deadline:g} s (no network?)")
        try:
            status, *payload = parent.recv()
        except EOFError:
            raise NetworkError(f"{what}: the fetch process died without an answer") from None
    finally:
        if proc.is_alive():
            proc.terminate()
            proc.join(1)
            if proc.is_alive():
                proc.kill()
        proc.join(1)
        parent.close()
    if status == "ok":
        return payload[0]
    if status == "DataError":
        raise DataError(payload[0])
    if status == "NetworkError":
        raise NetworkError(payload[0])
    raise NetworkError(f"{what} failed: {payload[0].splitlines()[0] if payload[0] else 'unknown error'}")
