"""A sweep's runs selected by their own ``sweep_id`` column only when that is the set its links name.

Every writer keeps the invariant ``riskon.sweeps.sweep_reads`` relies on (each run row is linked to the
sweep its ``sweep_id`` names, and no link is stored twice): a batch of new runs, a sweep that reuses
another's finished runs (``link_existing``, and a batch holding a run id already stored), a failed run
retried by another sweep, and ``riskon store gc`` dropping the sweep that stored runs a kept sweep shares.
After each, every sweep's runs, counts, top rows and trials are those read through the links (the plain
join, each run's JSON parsed by ``json.loads``). A session opens the file once, lets its own writes
through, and lets another process's writer in at its next read.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskon.metrics import PERIODS
from riskon.sweeps import locks, sweep_reads
from riskon.sweeps.housekeeping import drop_code_versions
from riskon.sweeps.store import Store
from support.stored_grid import COMBOS, FAILED, linked, plain, put, put_sweep, row, run_id

ROOT = Path(__file__).resolve().parents[2]


def broken_links(store: Store) -> tuple[int, int]:
    """Run rows not linked to the sweep they name, and links stored more than once."""
    with store.connect(read_only=True) as con:
        return con.execute(
            "SELECT (SELECT count(*) FROM runs r WHERE NOT EXISTS (SELECT 1 FROM sweep_runs l WHERE "
            "l.sweep_id = r.sweep_id AND l.run_id = r.run_id)), (SELECT count(*) - count(DISTINCT (sweep_id, run_id)) "
            "FROM sweep_runs)"
        ).fetchone()


def own(store: Store, sweep_id: str) -> bool:
    with store.connect(read_only=True) as con:
        return sweep_reads.own_runs(con, sweep_id)


def assert_read_as_linked(store: Store, sweep_id: str) -> None:
    """Every read of a sweep's runs gives the runs its links name, as the plain join reads them."""
    want = linked(store, sweep_id)
    info = store.find_sweep(sweep_id)
    assert (info["runs"], info["ok"]) == (len(want), int((want["status"] == "ok").sum()))
    got = store.runs(sweep_id).sort_values("run_id").reset_index(drop=True)
    assert list(got["run_id"]) == list(want["run_id"])
    for col in ("a", "stop", "trailing_stop", "status"):
        assert list(got[col]) == list(want[col]), col
    for col in ("sharpe", "cagr", "trades"):
        np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy())
    top = store.top(sweep_id, "sharpe", n=5)
    assert list(top["run_id"]) == list(plain(store, sweep_id)["run_id"][:5])


def plain_trials(store: Store, key: str = "k") -> pd.DataFrame:
    """The trials of a strategy through the links: its sweeps' ok runs, one row per distinct returns."""
    with store.connect(read_only=True) as con:
        runs = con.execute(
            "SELECT DISTINCT r.run_id, r.sharpe, r.returns_start, r.n_days, r.digest FROM runs r JOIN sweep_runs l "
            "ON l.run_id = r.run_id JOIN sweeps s ON s.sweep_id = l.sweep_id WHERE s.strategy_key = ? "
            "AND r.status = 'ok' ORDER BY r.run_id",
            [key],
        ).df()
    return runs.groupby(["returns_start", "n_days", "digest"], sort=False).agg(
        run_id=("run_id", "min"), sharpe=("sharpe", "first"), runs=("run_id", "size")
    )


def assert_trials_as_linked(store: Store) -> None:
    want = plain_trials(store)
    with store.connect(read_only=True) as con:
        n, runs, var, _ = sweep_reads.trials_summary(con, "k")
        table = sweep_reads.trials_table(con, "k")
    assert (n, runs) == (len(want), int(want["runs"].sum()))
    assert list(table["run_id"]) == sorted(want["run_id"])
    assert list(table["runs"]) == list(want.set_index("run_id").loc[table["run_id"], "runs"])
    per_day = want["sharpe"] / np.sqrt(float(PERIODS))
    assert var == pytest.approx(float(per_day[np.isfinite(per_day)].var(ddof=1)), rel=1e-12)


def test_reused_and_retried_runs_are_read_through_their_links(tmp_path):
    store = Store(tmp_path / "reuse.duckdb")
    put(store, "s1", COMBOS, seed=1)
    assert own(store, "s1") and broken_links(store) == (0, 0)
    assert_read_as_linked(store, "s1")
    assert_trials_as_linked(store)  # every sweep of "k" holds its own runs: read by their own column
    with store.connect(read_only=True) as con:
        assert "r.sweep_id IN" in sweep_reads.trial_runs(con, "k")

    # s2 computes six runs and reuses three of s1's finished ones
    put(store, "s2", COMBOS[:6], seed=2)
    reused = list(plain(store, "s1")["run_id"][:3])
    assert store.link_existing("s2", [*reused, run_id("s1", FAILED)]) == set(reused)  # a failed run is not reused
    # s3's batch: two new runs, a run s1 finished (kept as it is, linked), and s1's failed run, now finished
    put_sweep(store, "s3", 4)
    rng = np.random.default_rng(3)
    first = store.run(reused[0], returns=False)
    store.write_batch([
        row("s3", run_id("s3", 0), COMBOS[40], rng, 0.3), row("s3", run_id("s3", 1), COMBOS[41], rng, 9.0),
        row("s3", reused[0], COMBOS[0], rng, -5.0), row("s3", run_id("s1", FAILED), COMBOS[FAILED], rng, 0.5),
    ])  # fmt: skip
    assert store.run(reused[0], returns=False)["sharpe"] == first["sharpe"]  # a finished run is never touched
    assert broken_links(store) == (0, 0)
    assert [own(store, s) for s in ("s1", "s2", "s3")] == [False, False, False]
    for sweep_id, n, ok in (("s1", 54, 54), ("s2", 9, 9), ("s3", 4, 4)):  # s1's failed run is finished now
        assert (store.find_sweep(sweep_id)["runs"], store.find_sweep(sweep_id)["ok"]) == (n, ok)
        assert_read_as_linked(store, sweep_id)
    assert store.top("s3", "sharpe", n=1)["run_id"].iloc[0] == run_id("s3", 1)
    assert_trials_as_linked(store)
    with store.connect(read_only=True) as con:
        assert "r.run_id IN" in sweep_reads.trial_runs(con, "k")  # some sweep shares runs: through the links
    put(store, "s4", COMBOS[:3], seed=4)  # a new sweep of its own runs beside them
    assert own(store, "s4")
    assert_read_as_linked(store, "s4")


def test_gc_hands_shared_runs_to_a_kept_sweep_read_by_its_own_column(tmp_path):
    store = Store(tmp_path / "gc.duckdb")
    put(store, "old", COMBOS, seed=1, code_version="v1")
    put(store, "new", COMBOS[:6], seed=2, code_version="v2")
    shared = list(plain(store, "old")["run_id"][:5])
    assert store.link_existing("new", shared) == set(shared)
    assert not own(store, "new")
    assert_read_as_linked(store, "new")
    done = drop_code_versions(store, ["v1"], apply=True)
    assert (done.sweeps, done.runs, done.kept_runs) == (1, 49, 5)
    assert broken_links(store) == (0, 0)
    assert own(store, "new")  # the kept runs now name "new", which links them
    assert_read_as_linked(store, "new")
    assert len(linked(store, "new")) == 11
    assert_trials_as_linked(store)


# -- sessions -----------------------------------------------------------------------------------------------
@pytest.fixture
def copy(tmp_path):
    store = Store(tmp_path / "session.duckdb")
    put(store, "s1", COMBOS, seed=1)
    return store


def test_a_session_opens_the_file_once_and_lets_its_own_write_through(copy, monkeypatch):
    opened = []
    real = Store._open
    monkeypatch.setattr(Store, "_open", lambda self, read_only: opened.append(read_only) or real(self, read_only))
    with copy.session():
        copy.find_sweep("s1")
        copy.top("s1", "sharpe", n=3)
        copy.runs("s1")
        with copy.session():  # nested: the same connection
            copy.lookahead("s1")
        assert opened == [True]
        copy.set_status("s1", "checked")  # a write inside: the shared connection is let go first
        assert Store(copy.path).find_sweep("s1")["status"] == "checked"
        assert opened == [True, False, True]
    copy.find_sweep("s1")
    assert opened == [True, False, True, True]  # after the session: one open per read, as before


def test_a_session_lets_another_process_write_at_its_next_read(copy):
    code = "import sys; from riskon.sweeps.store import Store; Store(sys.argv[1]).set_status('s1', 'checked')"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    with copy.session():
        assert copy.find_sweep("s1")["status"] == "done"  # the session now holds the file
        writer = subprocess.Popen([sys.executable, "-c", code, str(copy.path)], env=env, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while not locks.writer_waiting(copy.path):  # the writer announced itself and waits for the file
                assert writer.poll() is None, writer.stderr.read().decode()
                assert time.monotonic() < deadline, "the writer never announced itself"
                time.sleep(0.01)
            assert copy.find_sweep("s1")["status"] == "checked"  # this read let it in, then read its write
        finally:
            _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err.decode()
