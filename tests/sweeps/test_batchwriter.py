"""The background batch writer: batches commit in order, a failure stops later ones and is raised once."""

from __future__ import annotations

import threading
import time

import pytest

from riskon.sweeps.batch_writer import BatchWriter


def test_batches_commit_in_the_order_given_and_close_waits_for_all():
    done: list[int] = []

    def commit(batch):
        time.sleep(0.01)  # slower than the feeder: batches queue up
        done.append(batch[0]["k"])

    w = BatchWriter(commit, depth=2)
    for k in range(8):
        w.put([{"k": k}])
    w.put([])  # an empty batch is not committed
    w.close()
    assert done == list(range(8))
    assert w.error is None


def test_a_failed_commit_stops_every_later_batch_and_is_raised_once():
    done: list[int] = []
    failed = threading.Event()

    def commit(batch):
        if batch[0]["k"] == 2:
            failed.set()
            raise OSError("disk full")
        done.append(batch[0]["k"])

    w = BatchWriter(commit, depth=1)
    for k in range(3):
        w.put([{"k": k}])
    failed.wait(5)
    with pytest.raises(OSError, match="disk full"):  # raised at the next hand-over
        for k in range(3, 6):
            w.put([{"k": k}])
    w.close()  # already reported: not raised again
    assert done == [0, 1] and isinstance(w.error, OSError)


def test_close_without_interrupts_waits_out_ctrl_c():
    release = threading.Event()

    def commit(batch):
        release.wait(5)

    w = BatchWriter(commit)
    w.put([{"k": 0}])
    calls = {"n": 0}
    real_join = w._thread.join

    def join():  # the first wait is interrupted, as by a second Ctrl-C
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        release.set()
        real_join()

    w._thread.join = join
    w.close(interruptible=False)
    assert not w._thread.is_alive() and calls["n"] == 2
