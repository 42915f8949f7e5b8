"""A pytest plugin for ``bench/suite_time.py``: each test's CPU seconds, in pytest's own process and in its children.

Loaded with ``-p suite_time_plugin`` (this folder on ``PYTHONPATH``); appends one JSON line per test (setup,
call and teardown together: a module fixture counts in the first test that uses it) to ``$SUITE_TIME_OUT``.
"Children" are the processes pytest waited for during the test (CLI subprocesses, pool and forked workers).
"""

from __future__ import annotations

import json
import os
import resource
from collections.abc import Iterator

import pytest


def _cpu() -> tuple[float, float]:
    """User + system CPU seconds of this process and of its waited-for children, so far."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Time one test's whole protocol and write its CPU split."""
    me0, kids0 = _cpu()
    yield
    me1, kids1 = _cpu()
    with open(os.environ["SUITE_TIME_OUT"], "a", encoding="utf-8") as f:
        f.write(json.dumps({"id": item.nodeid, "self": me1 - me0, "children": kids1 - kids0}) + "\n")
