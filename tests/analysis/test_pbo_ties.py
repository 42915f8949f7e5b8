"""PBO does not depend on the order of the runs: exact in-sample ties share their combination.

A three-run example is worked out by hand (two runs tie in sample; under the old "first column wins"
rule its PBO was 0.5 or 0 depending on the order, shared it is 0.25). Shuffled columns give exactly
the same result, on a matrix with planted ties and on a stored sweep.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from riskon.analysis.overfitting import log_growth, pbo, sharpe, sortino
from riskon.analysis.robustness import sweep_robustness
from riskon.sweeps.store import Store

# two blocks of two days. In block 0, A and B are the same (a tie for the best Sharpe ratio, sqrt(2));
# in block 1 the per-day Sharpe ratios are A 1/sqrt(2), B sqrt(2), C 5/(3 sqrt(2)).
HAND = {
    "A": [0.01, 0.03, 0.02, 0.00],
    "B": [0.01, 0.03, 0.01, 0.03],
    "C": [0.00, 0.01, 0.01, 0.04],
}


def test_a_tie_shares_its_combination_worked_by_hand():
    # train block 0: A and B tie. Out of sample (block 1) the ranks are A 1, C 2, B 3 of 3:
    #   A: w = 1/4, logit ln(1/3) <= 0 (overfit); B: w = 3/4, logit ln 3 > 0. The combination counts 1/2.
    # train block 1: B wins alone; out of sample (block 0) B ties A for the top: rank 2.5, w = 0.625 > 0.5.
    # PBO = (1/2 + 0) / 2.
    for order in (["A", "B", "C"], ["B", "A", "C"], ["C", "B", "A"]):
        res = pbo(pd.DataFrame(HAND)[order], n_splits=2)
        assert res.pbo == 0.25
        assert res.tied == 1 and res.n_combinations == 2
        assert sorted(res.logits.tolist()) == pytest.approx(sorted([0.0, math.log(0.625 / 0.375)]), abs=1e-12)
        assert list(res.overfit) in ([0.5, 0.0], [0.0, 0.5])


def planted_ties(seed: int) -> np.ndarray:
    """40 runs: 10 base series, each with 3 variants that differ from it in one block only (partial ties)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0004, 0.01, (800, 10))
    cols = [base]
    for _ in range(3):
        v = base.copy()
        block = rng.integers(0, 8, 10)
        for j, b in enumerate(block):
            v[b * 100 : (b + 1) * 100, j] = rng.normal(0.0004, 0.01, 100)
        cols.append(v)
    return np.concatenate(cols, axis=1)


@pytest.mark.parametrize("objective", [sharpe, sortino, log_growth, lambda m: sharpe(m)])
def test_shuffled_columns_give_exactly_the_same_pbo(objective):
    m = planted_ties(3)
    m[:, 7] = m[:, 3]  # and an identical pair, counted once
    first = pbo(m, 8, objective)
    assert first.tied > 0 and first.duplicates == 1 and first.n_strategies == 39
    rng = np.random.default_rng(11)
    for _ in range(8):
        order = rng.permutation(m.shape[1])
        again = pbo(m[:, order], 8, objective)
        assert again.pbo == first.pbo
        np.testing.assert_array_equal(again.logits, first.logits)
        np.testing.assert_array_equal(again.oos_best, first.oos_best)
        assert again.prob_oos_loss == first.prob_oos_loss


def shared_ties_reference(m: np.ndarray, s: int) -> float:
    """CSCV written plainly with each tied in-sample winner counting an equal share."""
    t, n = m.shape
    block = t // s
    m = m[t - block * s :]
    shares = []
    for train in itertools.combinations(range(s), s // 2):
        test = [b for b in range(s) if b not in train]
        tr = np.concatenate([m[b * block : (b + 1) * block] for b in train])
        te = np.concatenate([m[b * block : (b + 1) * block] for b in test])
        r_is = tr.mean(axis=0) / tr.std(axis=0, ddof=1)
        r_oos = pd.Series(te.mean(axis=0) / te.std(axis=0, ddof=1)).rank(method="average").to_numpy()
        winners = np.flatnonzero(r_is == r_is.max())
        shares.append(np.mean([r_oos[w] / (n + 1) <= 0.5 for w in winners]))
    return float(np.mean(shares))


def test_pbo_equals_a_plain_implementation_that_shares_ties():
    rng = np.random.default_rng(8)
    m = rng.normal(0.0005, 0.01, (48, 5))
    m[:, 1] += 0.01  # the best run in every half
    m[:, 3] = m[:, 1]
    m[:12, 3] = rng.normal(-0.02, 0.01, 12)  # its twin but for a bad block 0: tied whenever block 0 is tested
    res = pbo(m, 4, lambda x: x.mean(axis=0) / x.std(axis=0, ddof=1))
    assert res.tied == 3  # the 3 of 6 halves that leave block 0 out of training
    want = shared_ties_reference(m, 4)
    assert res.pbo == pytest.approx(want, abs=1e-15)
    assert want == pytest.approx(0.25)  # the 3 tied halves count 1/2 each (the twin ranks last), the others 0


def test_a_stored_sweeps_pbo_does_not_depend_on_the_run_ids(tmp_path):
    m = planted_ties(5)[:, :16]
    store = Store(tmp_path / "p.duckdb")
    res = {}
    for name, ids in {"x": [f"r{j:02d}" for j in range(16)], "y": [f"q{15 - j:02d}" for j in range(16)]}.items():
        store.put_sweep({"sweep_id": name, "name": name, "config_text": "", "spec": '{"objective": "sharpe"}',
                         "fingerprints": {}, "code_version": "t", "status": "done", "n_total": 16,
                         "strategy_key": name})  # fmt: skip
        store.write_batch([
            {"run_id": rid, "sweep_id": name, "params": "{}", "status": "ok", "sharpe": 0.0,
             "returns_start": pd.Timestamp("2020-01-01"), "returns": m[:, j], "bench": None}
            for j, rid in enumerate(ids)
        ])  # fmt: skip
        res[name] = sweep_robustness(store, name, n_splits=16)  # the stored block sums: no rebuild
        assert list(store.runs(name)["run_id"]) == sorted(ids)  # the store orders runs by id: x and y oppositely
    assert res["x"].cscv.tied > 0
    assert res["x"].pbo == res["y"].pbo  # the run ids order the columns oppositely
