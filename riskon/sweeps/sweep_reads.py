"""Which rows of the store belong to a sweep, selected without joining every run when that is safe.

A run belongs to a sweep through a link in ``sweep_runs`` (one run may be linked to several sweeps that
share it); each run row also names the sweep that stored it (``runs.sweep_id``), and every writer links
that sweep too: ``Store.write_batch`` links every run of a batch in the transaction that stores it (a
failed run retried by another sweep is stored again under that sweep, and linked to it), and ``riskon
store gc`` (``housekeeping.drop_code_versions``) renames a kept run's sweep to a kept sweep that links it.
So the runs a sweep stored are always among its linked runs, and when there are as many of them as links,
they are the same runs. For a sweep that computed all its runs itself (every new sweep) its rows are then
selected by their own ``sweep_id`` column: DuckDB skips whole row groups and joins nothing. Joining
``runs`` to ``sweep_runs`` on the run ids of a 10⁶-run sweep costs ~1 s a query; the check costs ~10 ms.
"""

from __future__ import annotations

import math

import pandas as pd

from riskon.metrics import PERIODS

#: A sweep's runs through their links (always right; the slow path for a sweep that reuses other sweeps' runs).
_LINKED = "FROM runs r JOIN sweep_runs l ON l.run_id = r.run_id WHERE l.sweep_id = ?"
#: A sweep's runs by their own column (right when ``own_runs`` says so).
_OWN = "FROM runs r WHERE r.sweep_id = ?"


def own_runs(con, sweep_id: str) -> bool:
    """True when a sweep's linked runs are exactly the runs it stored itself (see the module docstring)."""
    links, own = con.execute(
        "SELECT (SELECT count(*) FROM sweep_runs WHERE sweep_id = ?), (SELECT count(*) FROM runs WHERE sweep_id = ?)",
        [sweep_id, sweep_id],
    ).fetchone()
    return links == own


def runs_from(con, sweep_id: str) -> str:
    """``FROM ... WHERE ...`` selecting a sweep's runs as ``r`` (one ``?`` for the sweep id): by their own column
    when that is the same set of runs, else through the links. Extend it with ``AND ...``."""
    return _OWN if own_runs(con, sweep_id) else _LINKED


def trial_runs(con, strategy_key: str) -> str:
    """``SELECT`` of the ok runs linked to any sweep of a strategy (``run_id, sharpe, returns_start, n_days,
    digest``; one ``?`` for the strategy key): by the runs' own column when every such sweep holds only runs it
    stored itself (runs stored by different sweeps are different rows), else through the links."""
    rows = con.execute(
        "SELECT s.sweep_id, (SELECT count(*) FROM sweep_runs l WHERE l.sweep_id = s.sweep_id), "
        "(SELECT count(*) FROM runs r WHERE r.sweep_id = s.sweep_id) FROM sweeps s WHERE s.strategy_key = ?",
        [strategy_key],
    ).fetchall()
    cols = "SELECT r.run_id, r.sharpe, r.returns_start, r.n_days, r.digest FROM runs r WHERE r.status = 'ok' AND "
    if all(links == own for _, links, own in rows):
        return cols + "r.sweep_id IN (SELECT sweep_id FROM sweeps WHERE strategy_key = ?)"
    return cols + (
        "r.run_id IN (SELECT l.run_id FROM sweep_runs l JOIN sweeps s USING (sweep_id) WHERE s.strategy_key = ?)"
    )


#: A strategy's trials: its ok runs grouped by identical daily returns (start, length, digest).
_TRIALS = ("SELECT {pick} FROM ({runs}) t GROUP BY returns_start, n_days, digest, "
           "CASE WHEN digest IS NULL THEN run_id END")  # fmt: skip
_FINGERPRINT = "hash(returns_start, n_days, digest, min(run_id) FILTER (WHERE digest IS NULL))"


def trials_table(con, strategy_key: str) -> pd.DataFrame:
    """``Store.trials``: one row per distinct trial of a strategy, by run id (``run_id, sharpe, runs,
    fingerprint``)."""
    pick = f"min(run_id) AS run_id, arg_min(sharpe, run_id) AS sharpe, count(*) AS runs, {_FINGERPRINT} AS fingerprint"
    sql = _TRIALS.format(pick=pick, runs=trial_runs(con, strategy_key)) + " ORDER BY run_id"
    return con.execute(sql, [strategy_key]).df()


def trials_summary(con, strategy_key: str) -> tuple[int, int, float, str]:
    """``Store.trials_summary``: trials, their runs, the variance of their per-day Sharpe and their key."""
    pick = f"arg_min(sharpe, run_id) AS sharpe, count(*) AS runs, {_FINGERPRINT} AS fp"
    n, runs, var, keys = con.execute(
        f"WITH g AS ({_TRIALS.format(pick=pick, runs=trial_runs(con, strategy_key))}) "
        "SELECT count(*), coalesce(sum(runs), 0), "
        f"var_samp(sharpe / sqrt({PERIODS}.0)) FILTER (WHERE isfinite(sharpe)), "
        "sha256(coalesce(string_agg(fp::VARCHAR, ',' ORDER BY fp::VARCHAR), '')) FROM g",
        [strategy_key],
    ).fetchone()
    return int(n), int(runs), math.nan if var is None else float(var), keys[:16]


__all__ = ["own_runs", "runs_from", "trial_runs", "trials_summary", "trials_table"]
