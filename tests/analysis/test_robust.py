"""Robustness statistics with known answers: PSR, DSR, the False Strategy theorem, PBO by CSCV, a stored sweep.

PSR and DSR are checked against the published formulas written out step by step here (moments by hand
loops, the normal CDF from ``math.erf``, its inverse by bisection) and against the numerical example of
Bailey & López de Prado (2014). PBO is checked on constructed matrices whose answer is known (pure noise
≈ 0.5, one dominant strategy ≈ 0, in-sample winners that must lose out of sample ≈ 1) and against a
second, plain implementation of CSCV. The end-to-end test sweeps a tiny grid twice (fast engine) into a
temporary DuckDB and reads everything back from the store, as ``riskon results`` does.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import subprocess

import duckdb
import numpy as np
import pandas as pd
import pytest
import typer

from riskon.analysis.overfitting import RobustnessError, log_growth, pbo, sharpe, sortino
from riskon.analysis.robustness import (
    deflated_sharpe,
    expected_max_sharpe,
    probabilistic_sharpe,
    psr_from_moments,
    returns_matrix,
    sweep_robustness,
)
from riskon.cli.sweep_cmd import results_cmd
from riskon.pages.robustness_page import logit_figure
from riskon.sweeps.driver import run_sweep
from riskon.sweeps.store import Store
from support.clitools import riskon_cmd

# Twelve daily returns with visible skew and fat tails (one big up day).
R = [0.012, -0.004, 0.003, 0.021, -0.011, 0.002, 0.0, 0.007, -0.006, 0.048, -0.002, 0.005]
GAMMA = 0.5772156649015329  # Euler–Mascheroni


def phi(z: float) -> float:
    """Standard normal CDF."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def phi_inv(p: float) -> float:
    """Inverse standard normal CDF by bisection on ``phi`` (independent of statistics.NormalDist)."""
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if phi(mid) < p else (lo, mid)
    return (lo + hi) / 2


def hand_psr(r: list[float], sr_star: float) -> float:
    """PSR of Bailey & López de Prado (2012), every step by hand."""
    n = len(r)
    mean = 0.0
    for x in r:
        mean += x
    mean /= n
    ss = m2 = m3 = m4 = 0.0
    for x in r:
        d = x - mean
        ss += d * d
        m2 += d * d / n
        m3 += d * d * d / n
        m4 += d * d * d * d / n
    sd = math.sqrt(ss / (n - 1))  # sample standard deviation, as riskon's Sharpe
    sr = mean / sd  # per period, not annualised
    skew = m3 / m2**1.5  # population moments
    kurt = m4 / m2**2  # non-excess: 3 for a normal distribution
    z = (sr - sr_star) * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    return phi(z)


def hand_expected_max(n: int, v: float) -> float:
    """E[max SR] = sqrt(V) ((1 - γ) Z^-1(1 - 1/N) + γ Z^-1(1 - 1/(N e)))."""
    return math.sqrt(v) * ((1 - GAMMA) * phi_inv(1 - 1 / n) + GAMMA * phi_inv(1 - 1 / (n * math.e)))


# -- PSR, DSR, expected maximum ------------------------------------------------------------------------
def test_psr_matches_the_published_formula_by_hand():
    for sr_star in (0.0, 0.05, 0.2, -0.1):
        assert probabilistic_sharpe(R, sr_star) == pytest.approx(hand_psr(R, sr_star), abs=1e-12)
    assert 0.5 < probabilistic_sharpe(R) < 1.0  # positive mean: more likely than not above 0
    # mirrored around the mean: same mean and standard deviation (same Sharpe), skewness negated, so
    # the positive-Sharpe series with negative skew is less certain to beat 0
    mean = sum(R) / len(R)
    mirrored = [2 * mean - x for x in R]
    assert probabilistic_sharpe(mirrored) < probabilistic_sharpe(R)
    assert probabilistic_sharpe(mirrored) == pytest.approx(hand_psr(mirrored, 0.0), abs=1e-12)
    assert math.isnan(probabilistic_sharpe([0.001] * 20))  # no variation: the Sharpe ratio is undefined
    assert math.isnan(probabilistic_sharpe([0.0] * 20))


def test_dsr_matches_the_published_formula_by_hand():
    for n_trials, var in ((25, 0.01), (2, 0.003), (1000, 0.0004)):
        sr_star = hand_expected_max(n_trials, var)
        assert expected_max_sharpe(n_trials, var) == pytest.approx(sr_star, abs=1e-10)
        assert deflated_sharpe(R, n_trials, var) == pytest.approx(hand_psr(R, sr_star), abs=1e-10)
    assert expected_max_sharpe(1, 0.5) == 0.0  # one trial, no selection
    assert deflated_sharpe(R, 1, 0.5) == pytest.approx(probabilistic_sharpe(R), abs=1e-15)
    with pytest.raises(RobustnessError, match="n_trials must be >= 1"):
        expected_max_sharpe(0, 0.1)


def test_dsr_reproduces_the_papers_numerical_example():
    # Bailey & López de Prado (2014), section 5: annualised SR 2.5 over 5 years of 250 days (T = 1250),
    # skewness -3, kurtosis 10, N = 100 trials with annualised V[SR] = 1/2 -> SR0 = 0.1132, DSR = 0.9004.
    sr, v = 2.5 / math.sqrt(250), 0.5 / 250
    sr0 = expected_max_sharpe(100, v)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    assert psr_from_moments(sr, 1250, -3.0, 10.0, sr0) == pytest.approx(0.9004, abs=5e-4)


def test_expected_max_sharpe_against_monte_carlo():
    rng = np.random.default_rng(11)
    v = 0.04
    for n in (10, 100, 1000):
        draws = rng.standard_normal((4000, n)) * math.sqrt(v)
        mc = draws.max(axis=1).mean()
        # the theorem is an approximation (about 2 % high at N = 10, under 1 % from N = 100 on)
        assert expected_max_sharpe(n, v) == pytest.approx(mc, rel=0.03), n


# -- PBO by CSCV: known answers ----------------------------------------------------------------------
def test_pbo_of_pure_noise_averages_a_half():
    values = [pbo(np.random.default_rng(seed).normal(0.0, 0.01, (1000, 50)), 16).pbo for seed in range(20)]
    assert 0.4 < np.mean(values) < 0.6, values


def test_pbo_is_low_when_one_strategy_truly_dominates():
    m = np.random.default_rng(3).normal(0.0, 0.01, (1000, 50))
    m[:, 17] += 0.003  # daily Sharpe ≈ 0.3 against 49 zero-mean strategies
    res = pbo(m, 16)
    assert res.pbo < 0.05
    assert res.n_combinations == math.comb(16, 8) == len(res.logits)
    assert res.prob_oos_loss < 0.05


def test_pbo_is_high_when_in_sample_winners_lose_out_of_sample():
    # Every strategy earns +a in half of the 16 blocks and -a in the other half (its own random choice), so
    # its total is 0: whatever it earns on the training blocks it gives back on the test blocks. The
    # in-sample winner is the one with the most +a blocks in training, hence the fewest in testing.
    s, t, n, a = 16, 1600, 20, 0.004
    rng = np.random.default_rng(5)
    signs = np.array([rng.permutation([1.0] * (s // 2) + [-1.0] * (s // 2)) for _ in range(n)]).T
    m = np.repeat(a * signs, t // s, axis=0) + rng.normal(0.0, 0.01, (t, n))
    res = pbo(m, s)
    assert res.pbo > 0.9
    assert np.median(res.logits) < -1.0


def plain_cscv(m: np.ndarray, s: int) -> list[float]:
    """CSCV written the simple way: loops, pandas ranks, numpy's std."""
    t, n = m.shape
    block = t // s
    m = m[t - block * s :]
    logits = []
    for train in itertools.combinations(range(s), s // 2):
        test = [b for b in range(s) if b not in train]
        tr = np.concatenate([m[b * block : (b + 1) * block] for b in train])
        te = np.concatenate([m[b * block : (b + 1) * block] for b in test])
        r_is = tr.mean(axis=0) / tr.std(axis=0, ddof=1)
        r_oos = te.mean(axis=0) / te.std(axis=0, ddof=1)
        best = int(np.argmax(r_is))  # first of equals
        rank = pd.Series(r_oos).rank(method="average").iloc[best]
        w = rank / (n + 1)
        logits.append(math.log(w / (1 - w)))
    return logits


def test_pbo_equals_a_plain_implementation_with_ties():
    rng = np.random.default_rng(8)
    m = rng.normal(0.0005, 0.01, (51, 5))  # 51 rows, 4 blocks of 12: the oldest 3 rows are dropped
    m[:, 3] = m[:, 1]
    m[:12, 3] = 0.0  # a near twin (flat in the first used block): ties on the halves that leave that block out
    res = pbo(m, 4)
    want = plain_cscv(m, 4)
    assert res.n_combinations == 6 and res.n_periods == 48 and res.dropped_rows == 3
    np.testing.assert_allclose(res.logits, want, rtol=0, atol=1e-12)
    assert res.pbo == np.mean(np.array(want) <= 0)


def test_identical_columns_count_once():
    """A swept parameter that never binds gives identical runs: one trial, not a tie that reads as overfit."""
    rng = np.random.default_rng(5)
    base = rng.normal(0.0005, 0.01, (400, 3))
    m = np.column_stack([base[:, 0], base[:, 0], base[:, 1], base[:, 0], base[:, 2], base[:, 1]])
    res = pbo(m, 8)
    want = pbo(base, 8)
    assert res.duplicates == 3 and res.n_strategies == 3
    np.testing.assert_array_equal(res.logits, want.logits)
    assert res.pbo == want.pbo
    with pytest.raises(RobustnessError, match="identical returns"):
        pbo(np.column_stack([base[:, 0]] * 4), 8)


@pytest.mark.parametrize("objective", [sharpe, sortino, log_growth])
def test_pbo_fast_path_equals_calling_the_objective(objective):
    rng = np.random.default_rng(2)
    m = rng.normal(0.0004, 0.012, (640, 7))
    m[:160, 2] = 0.0  # flat (in cash) for the first 2 of 8 blocks
    m[:, 5] = 0.0  # never trades
    fast = pbo(m, 8, objective)
    slow = pbo(m, 8, lambda x: objective(x))  # a new callable: the generic per-split path
    np.testing.assert_allclose(fast.logits, slow.logits, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.is_best, slow.is_best, rtol=1e-9)
    np.testing.assert_allclose(fast.oos_best, slow.oos_best, rtol=1e-9)


def test_runs_that_start_later_are_aligned_on_dates():
    rng = np.random.default_rng(4)
    full = rng.normal(0.0, 0.01, (3, 200))
    runs = pd.DataFrame({
        "run_id": ["a", "b", "c"],
        "returns_start": pd.to_datetime(["2020-01-01", "2020-01-11", "2020-01-01"]),
        "returns": [full[0], full[1][10:], full[2][:190]],  # b starts 10 days later, c ends 10 days earlier
    })  # fmt: skip
    frame = returns_matrix(runs)
    assert frame.index[0] == pd.Timestamp("2020-01-01") and len(frame) == 200
    assert frame["b"].isna().sum() == 10 and frame["b"].first_valid_index() == pd.Timestamp("2020-01-11")
    assert frame.loc["2020-01-11", "b"] == full[1][10] and frame.loc["2020-01-11", "a"] == full[0][10]
    res = pbo(frame, 4)
    common = frame.loc["2020-01-11":"2020-07-08"].to_numpy()  # the 180 dates every run has
    assert res.dropped_rows == 20
    np.testing.assert_array_equal(res.logits, pbo(common, 4).logits)


@pytest.mark.parametrize(
    ("matrix", "splits", "message"),
    [
        (np.zeros((100, 1)), 4, "at least 2 strategies"),
        (np.arange(90.0).reshape(30, 3), 16, r"needs at least 32 periods .* got 30; use fewer splits"),
        (np.zeros((100, 3)), 5, "even integer"),
        (np.zeros((1000, 3)), 22, "use at most 20 splits"),
        (np.zeros(100), 4, "2-D matrix"),
    ],
)
def test_pbo_refuses_what_it_cannot_compute(matrix, splits, message):
    with pytest.raises(RobustnessError, match=message):
        pbo(matrix, splits)


# -- a stored sweep, end to end --------------------------------------------------------------------------
CONFIG = """\
name = "{name}"

[data]
index = "^RUT"
asset = "BTC-USD"
start = "2017-01-01"
end = "2021-12-31"

[strategy]
rule = "ath_confirmed"

[strategy.params]
confirm_days = 3

[exits]
trailing_stop = 0.25
index_drawdown = 0.10

[costs]
fee_bps = 10
slippage_bps = 5

[sweep]
method = "grid"
objective = "sharpe"
batch_size = 4

[sweep.params]
{grid}
"""


@pytest.fixture(scope="module")
def stored(tmp_path_factory, data_dir):
    """Two sweeps of one strategy in one store: A (6 runs) and B (4 runs, 2 of them shared with A)."""
    folder = tmp_path_factory.mktemp("robust")
    db = folder / "r.duckdb"
    grids = {
        "rob_a": '"strategy.params.confirm_days" = [1, 3]\n"exits.trailing_stop" = [0.1, 0.2, 0.3]',
        "rob_b": '"strategy.params.confirm_days" = [1, 3]\n"exits.trailing_stop" = [0.3, 0.4]',
    }
    ids = {}
    for name, grid in grids.items():
        cfg = folder / f"{name}.toml"
        cfg.write_text(CONFIG.format(name=name, grid=grid), encoding="utf-8")
        ids[name] = run_sweep(cfg, db=db, workers=1, engine="fast").sweep_id
    return folder, db, ids


def test_sweep_robustness_reads_trials_and_returns_from_the_store(stored):
    folder, db, ids = stored
    store = Store(db)
    con = duckdb.connect(str(db), read_only=True)
    try:
        distinct = con.execute("SELECT count(DISTINCT run_id) FROM sweep_runs").fetchone()[0]
        shared = con.execute(
            "SELECT count(*) FROM sweep_runs a JOIN sweep_runs b USING (run_id) "
            "WHERE a.sweep_id = ? AND b.sweep_id = ?",
            [ids["rob_a"], ids["rob_b"]],
        ).fetchone()[0]
        all_sharpe = [r[0] for r in con.execute("SELECT sharpe FROM runs WHERE status = 'ok'").fetchall()]
        b_rows = con.execute(
            "SELECT r.run_id, r.sharpe FROM runs r JOIN sweep_runs l USING (run_id) WHERE l.sweep_id = ? "
            "AND r.status = 'ok' ORDER BY r.sharpe DESC, r.run_id",
            [ids["rob_b"]],
        ).fetchall()
    finally:
        con.close()
    assert shared == 2 and distinct == 6 + 4 - 2 == len(all_sharpe)  # every run of the strategy, shared runs once

    res = sweep_robustness(store, ids["rob_b"])
    assert res.n_trials == 8 == store.count_trials(store.find_sweep("rob_b")["strategy_key"])
    assert res.n_ok == 4
    best_id, best_sharpe = b_rows[0]
    assert res.best_run_id == best_id
    returns = store.run(best_id)["returns"]
    assert res.n_obs == len(returns) == 1826
    assert res.sharpe_annual == pytest.approx(best_sharpe, rel=1e-12)  # the table's Sharpe, annualised
    assert res.psr == pytest.approx(probabilistic_sharpe(returns.to_numpy()), abs=1e-12)
    var = float(np.var(np.array(all_sharpe) / math.sqrt(365), ddof=1))
    assert res.sr_variance == pytest.approx(var, rel=1e-12)
    assert res.dsr == pytest.approx(deflated_sharpe(returns.to_numpy(), 8, var), abs=1e-12)
    assert res.dsr < res.psr

    matrix = pd.DataFrame({rid: store.run(rid)["returns"] for rid, _ in b_rows})
    want = pbo(matrix[sorted(matrix.columns)], 16)  # the store lists a sweep's runs by run id
    assert res.cscv.n_combinations == 12870 and res.cscv.n_strategies == 4
    assert res.cscv.n_periods == 16 * 114 and res.cscv.dropped_rows == 2  # 1826 days: the oldest 2 dropped
    assert (res.start, res.end) == (pd.Timestamp("2017-01-03"), pd.Timestamp("2021-12-31"))
    np.testing.assert_array_equal(res.cscv.logits, want.logits)
    assert res.pbo == want.pbo

    fig = logit_figure(res)
    assert f"PBO = {res.pbo:.1%}" in fig.axes[0].get_title()
    assert sum(p.get_height() for p in fig.axes[0].patches) == 12870  # every combination is in the histogram


def test_results_prints_the_robustness_block_and_exports_it(stored):
    folder, db, ids = stored
    env = {**os.environ, "COLUMNS": "200"}
    cmd = [*riskon_cmd(), "results", "rob_a", "--db", str(db), "--export", "csv", "--out", str(folder / "a.csv")]
    r = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    res = sweep_robustness(Store(db), ids["rob_a"])
    text = r.stdout
    assert f"robustness of rob_a: best by sharpe is {res.best_run_id[:12]}" in text
    assert (
        "trials: 8 distinct runs of ath_confirmed on ^RUT -> BTC-USD in the store (ok runs with identical daily "
        "returns count once; 8 ok runs in all); 6 ok runs in this sweep"
    ) in " ".join(text.split())
    assert f"best Sharpe: {res.sharpe_annual:.2f} annualised = {res.sharpe_day:.4f} per day over 1826 days" in text
    assert f"PSR(0) = {res.psr:.1%}   DSR = {res.dsr:.1%}" in text
    cscv = "12870 CSCV combinations (16 blocks of 114 days, 2017-01-03..2021-12-31, 6 distinct runs, by sharpe)"
    assert f"PBO = {res.pbo:.1%} over {cscv}" in text
    with (folder / "a.csv").open(newline="") as f:
        rows = {row["run_id"]: row for row in csv.DictReader(f)}
    assert len(rows) == 6
    best = rows[res.best_run_id]
    assert float(best["psr"]) == pytest.approx(res.psr, abs=1e-12)
    assert float(best["dsr"]) == pytest.approx(res.dsr, abs=1e-12)
    assert all(float(row["pbo"]) == pytest.approx(res.pbo, abs=1e-12) for row in rows.values())
    store = Store(db)
    for rid, row in rows.items():  # every run's own PSR(0) from its stored returns
        assert float(row["psr"]) == pytest.approx(probabilistic_sharpe(store.run(rid)["returns"]), abs=1e-12)


def put_sweep(store: Store, sweep_id: str, key: str, runs: dict[str, list[float] | None]) -> None:
    """A sweep written straight into a store: run id -> daily returns (None: a failed run)."""
    store.put_sweep({"sweep_id": sweep_id, "name": sweep_id, "config_text": "", "spec": '{"objective": "sharpe"}',
                     "fingerprints": {}, "code_version": "t", "status": "done", "n_total": len(runs),
                     "strategy_key": key})  # fmt: skip
    rows = []
    for i, (rid, r) in enumerate(runs.items()):
        row = {"run_id": rid, "sweep_id": sweep_id, "params": json.dumps({"x": i}), "error": None}
        if r is None:
            row.update(status="error", returns=None, bench=None)
        else:
            sr = np.mean(r) / np.std(r, ddof=1) * math.sqrt(365)
            row.update(
                status="ok", sharpe=sr, returns_start=pd.Timestamp("2020-01-01"), returns=r, bench=[0.0] * len(r)
            )
        rows.append(row)
    store.write_batch(rows)


def test_runs_first_stored_under_another_strategy_key_still_count(tmp_path):
    rng = np.random.default_rng(9)
    r = {f"r{i}": list(rng.normal(0.001, 0.01, 120)) for i in range(4)}
    store = Store(tmp_path / "keys.duckdb")
    put_sweep(store, "s1", "k1", {k: r[k] for k in ("r0", "r1", "r2")})
    put_sweep(store, "s2", "k2", {k: r[k] for k in ("r1", "r2", "r3")})  # r1 and r2 stay stored under s1
    assert store.count_trials("k2") == 3
    res = sweep_robustness(store, "s2", n_splits=4)
    assert res.n_trials == 3 and res.n_ok == 3
    sharpes = [np.mean(r[k]) / np.std(r[k], ddof=1) for k in ("r1", "r2", "r3")]
    assert res.sr_variance == pytest.approx(np.var(sharpes, ddof=1), rel=1e-9)
    assert sweep_robustness(store, "s1", n_splits=4).n_trials == 3 == store.count_trials("k1")


def test_results_skips_the_block_for_a_sweep_with_one_ok_run(tmp_path, capsys):
    store = Store(tmp_path / "one.duckdb")
    put_sweep(store, "lonely", "k", {"r0": [0.01, -0.01, 0.02], "r1": None})
    # called in process (one CLI start in the test above is enough)
    results_cmd("lonely", top=20, sort="sharpe", ascending=False, where=None, export=None, out_path=None,
                db=store.path, splits=16)  # fmt: skip
    out = capsys.readouterr().out
    assert "robustness: skipped: the sweep has 1 ok run(s); PSR, DSR and PBO need at least 2" in out
    with pytest.raises(RobustnessError, match="'lonely' has 1 ok run"):
        sweep_robustness(store, "lonely")
    with pytest.raises(typer.BadParameter, match="an even number from 2 to 20, got 3"):
        results_cmd("lonely", top=20, sort="sharpe", ascending=False, where=None, export=None, out_path=None,
                    db=store.path, splits=3)  # fmt: skip


def test_duplicate_run_in_a_batch_keeps_the_batch_and_ties_rank_by_run_id(tmp_path):
    """A run id twice in one batch is stored once with the rest; exact ties rank the same everywhere."""
    from riskon.sweeps.store import rank_runs

    store = Store(tmp_path / "dup.duckdb")
    same = [0.01, -0.005, 0.002, 0.004]
    put_sweep(store, "s1", "k", {"b": same, "a": same, "c": [0.0, 0.01, -0.02, 0.03]})
    rows = store.runs("s1")
    assert sorted(rows["run_id"]) == ["a", "b", "c"]
    start = pd.Timestamp("2020-01-01")
    batch = [{"run_id": r, "sweep_id": "s2", "params": "{}", "status": "ok", "returns": same, "returns_start": start,
              "bench": None} for r in ("d", "d", "e")]  # fmt: skip
    store.write_batch(batch)
    assert sorted(store.runs("s2")["run_id"]) == ["d", "e"]
    ranked = rank_runs(rows, "sharpe", "maximize")
    assert list(ranked["run_id"][:2]) == ["a", "b"]  # a and b tie exactly: the lower run id first
    assert sweep_robustness(store, "s1").best_run_id == "a"
