"""PBO by CSCV from stored per-block sums equals the in-memory CSCV on the returns matrix, on 10,000 runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from riskon.analysis.overfitting import RobustnessError, log_growth, pbo, pbo_from_blocks, sharpe, sortino
from riskon.analysis.robustness import expected_max_sharpe, moments, psr_from_moments, sweep_robustness
from riskon.metrics import METRICS, PERIODS
from riskon.sweeps.row_fields import BLOCK_STATS, row_fields, unpack_blocks
from riskon.sweeps.store import Store

T = 1000  # 1000 mod 16 = 8 days left out before the first block, as the in-memory CSCV leaves them


def synthetic(n: int, seed: int = 7) -> np.ndarray:
    """T x n daily returns: mostly noise with a little skill, some flat (cash) runs and some duplicated columns."""
    rng = np.random.default_rng(seed)
    m = rng.normal(0.0, 0.02, (T, n)) + rng.normal(0.0, 0.0005, n)
    m[rng.random((T, n)) < 0.3] = 0.0  # days out of the market
    m[:, 5:40] = 0.0  # flat runs tie in every split
    m[:, 100:150] = m[:, 50:100]  # 50 duplicates of other runs
    m[:, 200] += 0.01  # the best run in sample ...
    m[:, 201] = m[:, 200]
    m[-50:, 201] = rng.normal(0.0, 0.02, 50)  # ... and a twin unlike it in the last block: tied when it is out
    return m


def blocks_of(m: np.ndarray, objective) -> list[np.ndarray]:
    """Per-run stored block sums (``row_fields``), the distinct runs in shuffled order, one S x N per statistic."""
    want = {sharpe: ("excess", "excess_sq"), sortino: ("excess", "excess_down_sq"), log_growth: ("log_growth",)}
    blobs = {}
    for j in np.random.default_rng(1).permutation(m.shape[1]):
        f = row_fields(m[:, j])
        blobs.setdefault((f["digest"], f["blocks"]), f["blocks"])
    stacked = unpack_blocks(list(blobs.values()))
    return [np.ascontiguousarray(stacked[:, BLOCK_STATS.index(k), :].T) for k in want[objective]]


@pytest.mark.parametrize(("objective", "n"), [(sharpe, 10_000), (sortino, 2_000), (log_growth, 2_000)])
def test_block_sums_give_the_in_memory_pbo_bit_for_bit(objective, n):
    m = synthetic(n)
    want = pbo(m, n_splits=16, objective=objective)
    blocks = blocks_of(m, objective)
    got = pbo_from_blocks(blocks, T // 16, objective, duplicates=n - blocks[0].shape[1], dropped_rows=T % 16)
    assert got.pbo == want.pbo and got.tied == want.tied and want.tied > 0
    assert (got.n_strategies, got.duplicates, got.n_periods, got.dropped_rows) == (n - 84, 84, 992, 8)
    assert np.array_equal(got.logits, want.logits) and np.array_equal(got.is_best, want.is_best)
    assert np.array_equal(got.oos_best, want.oos_best) and np.array_equal(got.overfit, want.overfit)
    assert got.prob_oos_loss == want.prob_oos_loss


def test_block_sums_refuse_an_objective_that_is_not_a_sum():
    with pytest.raises(RobustnessError, match="needs an objective made of sums"):
        pbo_from_blocks([np.ones((16, 3))], 10, objective=lambda x: x.max(axis=0))


def _store(tmp_path, m: np.ndarray, objective: str = "sharpe") -> tuple[Store, str]:
    """A store holding one sweep whose runs have the columns of ``m`` as their daily returns."""
    store = Store(tmp_path / "s.duckdb")
    spec = {"objective": objective, "direction": "maximize", "values": {"x": list(range(m.shape[1]))}}
    store.put_sweep({"sweep_id": "sw1", "name": "synthetic", "config_text": "", "spec": json.dumps(spec),
                     "fingerprints": {}, "code_version": "t", "status": "done", "n_total": m.shape[1],
                     "strategy_key": "k1"})  # fmt: skip
    rows = []
    for j in range(m.shape[1]):
        r = m[:, j].copy()
        sd = r.std(ddof=1)
        rows.append({"run_id": f"r{j:05d}", "sweep_id": "sw1", "params": json.dumps({"x": j}), "status": "ok",
                     "error": None, **dict.fromkeys(METRICS, 0.0), "sharpe": r.mean() / sd * math.sqrt(PERIODS)
                     if sd > 0 else math.nan, "returns_start": pd.Timestamp("2020-01-01"), "returns": r,
                     "bench": np.zeros(T), "engine": "fast"})  # fmt: skip
    for lo in range(0, len(rows), 2048):
        store.write_batch(rows[lo : lo + 2048])
    return store, "sw1"


def test_a_stored_sweep_gives_the_in_memory_pbo_and_dsr(tmp_path):
    m = synthetic(2_000, seed=11)
    store, sid = _store(tmp_path, m)
    res = sweep_robustness(store, sid, per_run=True)
    want = pbo(m, n_splits=16, objective=sharpe)
    assert res.pbo == want.pbo and np.array_equal(res.cscv.logits, want.logits)
    assert res.cscv.duplicates == 50 + 34  # the copies and 35 flat runs (one kept)
    assert res.cscv.tied == want.tied > 0
    assert res.start == pd.Timestamp("2020-01-09") and res.end == pd.Timestamp("2020-01-01") + pd.Timedelta(days=T - 1)
    # the trials: identical returns once; their Sharpe variance as NumPy's, to rounding (DuckDB's var_samp)
    distinct = np.unique(m + 0.0, axis=1)
    assert res.n_trials == distinct.shape[1] and res.n_trial_runs == 2_000
    sd = distinct.std(axis=0, ddof=1)
    sr = np.array([distinct[:, j].mean() / sd[j] * math.sqrt(PERIODS) / math.sqrt(PERIODS)
                   for j in range(distinct.shape[1]) if sd[j] > 0])  # fmt: skip
    assert res.sr_variance == pytest.approx(float(np.var(sr, ddof=1)), rel=1e-12)
    # PSR and DSR of the best run from its stored moments: the same doubles as from its returns
    best = m[:, int(res.best_run_id[1:])]
    s, g3, g4, n = moments(best)
    assert (res.sharpe_day, res.skew, res.kurtosis, res.n_obs) == (s, g3, g4, n)
    star = expected_max_sharpe(res.n_trials, res.sr_variance)
    assert res.dsr == psr_from_moments(s, n, g3, g4, star) and res.psr == psr_from_moments(s, n, g3, g4, 0.0)
    assert len(res.per_run) == 2_000
    # computed once: stored under the trials' key and read back until they change
    with store.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM robustness").fetchone()[0] == 1
    again = sweep_robustness(store, sid)
    assert again.pbo == res.pbo and np.array_equal(again.cscv.logits, res.cscv.logits) and again.dsr == res.dsr
    extra = np.random.default_rng(5).normal(0, 0.02, (T, 1))
    store.write_batch([{"run_id": "zz", "sweep_id": "sw1", "params": json.dumps({"x": -1}), "status": "ok",
                         "error": None, **dict.fromkeys(METRICS, 0.0), "returns_start": pd.Timestamp("2020-01-01"),
                         "returns": extra[:, 0], "bench": np.zeros(T)}])  # fmt: skip
    third = sweep_robustness(store, sid)
    assert third.n_trials == res.n_trials + 1 and third.trials_key != res.trials_key
    assert third.cscv.n_strategies == res.cscv.n_strategies + 1
