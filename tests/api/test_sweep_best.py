"""``Sweep.best`` reads only the top rows of a stored sweep, and gives what ranking every run in pandas gives.

A sweep of 10^6 runs must not be read whole to print its best runs (``riskon sweep``, ``riskon.results``):
``best`` ranks in the store until ``runs`` has been read. The two ways must agree even where the store
holds missing values: a failed run has no metrics, and an ok run can have a NaN metric (one that never
trades has no Sharpe), which the store keeps as NULL. Both rank those last, by run id, and failed runs
are never listed.
"""

from __future__ import annotations

import duckdb
import pandas as pd

import riskon
from riskon.sweeps.store import Store, rank_runs
from support.sweep_store import make_sweep


def test_best_from_the_store_equals_ranking_every_run_with_failures_and_missing_metrics(tmp_path):
    db, sweep_id = make_sweep(tmp_path)
    con = duckdb.connect(str(db))
    ids = [r for (r,) in con.execute("SELECT run_id FROM runs ORDER BY run_id").fetchall()]
    assert len(ids) == 24
    # the two lowest run ids failed (no metrics); the next two are ok with a missing Sharpe
    con.execute("UPDATE runs SET status = 'error', error = 'boom', sharpe = NULL WHERE run_id IN (?, ?)", ids[:2])
    con.execute("UPDATE runs SET sharpe = NULL WHERE run_id IN (?, ?)", ids[2:4])
    con.close()
    every = Store(db).runs(sweep_id)
    ok = every[every["status"] == "ok"]
    assert len(ok) == 22
    for n in (1, 5, 20, 22, 30):
        lazy = riskon.results(sweep_id, db=db)
        got = lazy.best(n)
        assert lazy._runs is None  # nothing read but the top rows and the counts
        want = rank_runs(ok, "sharpe", "maximize").head(n)
        assert list(got["run_id"]) == list(want["run_id"]), n
        assert len(got) == min(n, 22)
        pd.testing.assert_series_equal(
            got["sharpe"].reset_index(drop=True), want["sharpe"].reset_index(drop=True), check_names=False
        )
        loaded = riskon.results(sweep_id, db=db)
        assert len(loaded.runs) == 24  # read: best now ranks the frame, and lists the same runs
        assert list(loaded.best(n)["run_id"]) == list(got["run_id"])
    tail = riskon.results(sweep_id, db=db).best(22)
    assert set(tail["run_id"].iloc[-2:]) == set(ids[2:4])  # the ok runs without a Sharpe come last, by run id
    assert riskon.results(sweep_id, db=db).counts() == (24, 2)
    assert riskon.results(sweep_id, db=db).failures(5) == [(ids[0], "boom"), (ids[1], "boom")]
