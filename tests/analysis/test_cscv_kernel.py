"""The fused CSCV kernel (``riskon.analysis.cscv_kernel``) against CSCV written plainly, one split at a time.

The reference adds each half's block sums left to right in block order, scores every strategy with the
objective's formula in plain Python floats, and shares exact in-sample ties: it must give the very
same doubles (PBO, every logit, in- and out-of-sample scores, tie counts), including near-ties that differ
in the last digit (which the kernel's division-free comparisons must leave to the exact scores).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from riskon.analysis import cscv_kernel, overfitting
from riskon.analysis.overfitting import RobustnessError, log_growth, pbo, pbo_from_blocks, sharpe, sortino

STATS = {sharpe: 2, sortino: 2, log_growth: 1}


def score(objective, s0: float, s1: float, n: int) -> float:
    """The objective from a half's sums (``_sharpe_finish``, ``_sortino_finish``, ``_growth_finish``)."""
    mean = s0 / n
    if objective is log_growth:
        return mean
    if objective is sharpe:
        var = (s1 - s0 * mean) / (n - 1)
        if var <= 1e-12 * (s1 / n):
            return 0.0 if mean == 0 else math.copysign(math.inf, mean)
        return mean / math.sqrt(var)
    down = math.sqrt(s1 / n)
    return mean / down if down > 0 else (0.0 if mean == 0 else math.inf)


def plain_cscv(blocks: list[np.ndarray], block_len: int, objective) -> dict:
    """CSCV from per-block sums, written plainly: per split, per strategy, in Python floats."""
    s, n = blocks[0].shape
    rows = s // 2 * block_len
    cols = [[[float(b[k, j]) for k in range(s)] for j in range(n)] for b in blocks]

    def scores(half):
        out = []
        for j in range(n):
            sums = []
            for stat in cols:
                acc = 0.0
                for k in half:
                    acc = acc + stat[j][k]
                sums.append(acc)
            x = score(objective, sums[0], sums[-1], rows)
            out.append(x)
        return out

    res = {"logits": [], "is_best": [], "oos_best": [], "overfit": [], "tied": 0}
    for train in itertools.combinations(range(s), s // 2):
        test = [k for k in range(s) if k not in train]
        r_is = [-math.inf if math.isnan(x) else x for x in scores(train)]
        raw = scores(test)
        r_oos = [-math.inf if math.isnan(x) else x for x in raw]
        top = max(r_is)
        winners = [j for j in range(n) if r_is[j] == top]
        logits = []
        for w in winners:
            rank = sum(x < r_oos[w] for x in r_oos) + (sum(x == r_oos[w] for x in r_oos) + 1) / 2.0
            omega = rank / (n + 1)
            logits.append(math.log(omega / (1.0 - omega)))
        res["logits"].append(sum(logits) / len(logits))
        res["oos_best"].append(sum(raw[w] for w in winners) / len(winners))
        res["overfit"].append(sum(x <= 0 for x in logits) / len(logits))
        res["is_best"].append(top)
        res["tied"] += len(winners) > 1
    res["pbo"] = sum(res["overfit"]) / len(res["overfit"])
    return res


def assert_same(got, want: dict) -> None:
    assert got.pbo == want["pbo"] and got.tied == want["tied"]
    for k in ("logits", "is_best", "oos_best", "overfit"):
        np.testing.assert_array_equal(getattr(got, k), np.array(want[k]), err_msg=k)


def test_a_tie_worked_by_hand():
    # 4 blocks of 10 days, growth (mean log growth): a half's score is its two blocks' sum / 20.
    # Strategies A and B have the same sums in blocks 0 and 1 and differ in 2 and 3.
    blocks = np.array([[1.0, 1.0, 0.0], [2.0, 2.0, 0.0], [0.0, 3.0, 1.0], [0.0, 1.0, 2.5]])  # S x N: A, B, C
    res = pbo_from_blocks([blocks], 10, log_growth)
    # split 0 trains on blocks {0, 1}: A and B tie (3/20); out of sample ({2, 3}) A 0, B 0.2, C 0.175:
    # A ranks 1 of 3 (w = 1/4, logit ln(1/3), overfit), B ranks 3 (w = 3/4, logit ln 3): the split counts 1/2
    assert res.is_best[0] == 3 / 20 and res.tied == 1
    assert res.overfit[0] == 0.5 and res.logits[0] == (math.log(1 / 3) + math.log(3)) / 2
    assert res.oos_best[0] == (0.0 + 4 / 20) / 2
    # split 5 trains on {2, 3}: B wins alone (4/20) and ranks 2.5 of 3 out of sample ({0, 1}: A = B = 3/20)
    assert res.is_best[5] == 4 / 20 and res.overfit[5] == 0.0 and res.logits[5] == math.log(0.625 / 0.375)
    assert_same(res, plain_cscv([blocks], 10, log_growth))


def planted(n: int, s: int, seed: int) -> np.ndarray:
    """T x n daily returns with flat runs, twins that differ in one block (ties) and last-digit near-twins."""
    rng = np.random.default_rng(seed)
    t = 24 * s
    m = rng.normal(0.0003, 0.01, (t, n)) + rng.normal(0.0, 0.0004, n)
    m[rng.random((t, n)) < 0.25] = 0.0
    m[:, 0] = 0.0  # flat in cash: scores 0
    m[:, 1] = -1e-4  # constant: Sharpe -inf
    m[:, 2] = 0.0
    m[[1, 5, 9], 2] = 1e-4  # three up days in block 0, no down day: Sortino +inf where block 0 is
    block = t // s
    m[:, 3] += 0.004  # the best in sample, with a twin (below)
    for j in range(3, n // 3):  # twins of the first third, each unlike its twin in one block: in-sample ties
        m[:, n // 3 + j] = m[:, j]
        k = rng.integers(0, s)
        m[k * block : (k + 1) * block, n // 3 + j] = rng.normal(0.0, 0.01, block)
    for j in range(2 * (n // 3), n):  # near-twins: a copy scaled in the last digit (not of the tied best)
        src = j - n // 3 if j - n // 3 not in (3, n // 3 + 3) else 5
        m[:, j] = m[:, src] * (1.0 + (j % 3 + 1) * 2.0**-52)
    return m


@pytest.mark.parametrize("objective", [sharpe, sortino, log_growth])
@pytest.mark.parametrize(("n", "s", "seed"), [(12, 4, 1), (30, 6, 2), (45, 8, 3)])
def test_the_kernel_equals_plain_cscv(objective, n, s, seed, monkeypatch):
    m = planted(n, s, seed)
    block = m.shape[0] // s
    fns = [f for f in overfitting._ADDITIVE[objective][0](m)]
    blocks = [f.reshape(s, block, n).sum(axis=1) for f in fns]
    want = plain_cscv(blocks, block, objective)
    assert want["tied"] > 0
    got = pbo_from_blocks(blocks, block, objective)
    assert_same(got, want)
    monkeypatch.setattr(cscv_kernel, "TILE", 5)  # winners and ties across tile boundaries
    assert_same(pbo_from_blocks(blocks, block, objective), want)
    monkeypatch.setattr(overfitting, "_TIE_VALUES", 3)  # tied winners held a few splits at a time
    assert_same(pbo_from_blocks(blocks, block, objective), want)


@pytest.mark.parametrize("objective", [sharpe, sortino, log_growth])
def test_pbo_on_a_matrix_equals_plain_cscv_on_its_blocks(objective):
    rng = np.random.default_rng(4)
    m = rng.normal(0.0002, 0.01, (1_000, 700))  # more strategies than a tile
    m[:, :5] *= rng.random(5) * 3
    res = pbo(m, n_splits=8, objective=objective)
    distinct = np.unique(m + 0.0, axis=1)  # pbo's canonical column order
    block = 1_000 // 8
    fns = overfitting._ADDITIVE[objective][0](distinct)
    blocks = [f.reshape(8, block, distinct.shape[1]).sum(axis=1) for f in fns]
    assert_same(res, plain_cscv(blocks, block, objective))
    assert res.n_combinations == 70 and res.n_periods == 1_000


@pytest.mark.parametrize("objective", [sharpe, sortino, log_growth])
def test_near_ties_in_the_last_digit_at_the_top(objective):
    # the best strategy and copies scaled by 1 + k·2⁻⁵², k = -3..3: scores equal or a few digits apart,
    # which only the exact scores can order (in sample and as the winner's out-of-sample target)
    rng = np.random.default_rng(12)
    m = rng.normal(0.0002, 0.01, (480, 40))
    m[:, 0] += 0.004
    for k in range(-3, 4):
        m[:, 20 + k] = m[:, 0] * (1.0 + k * 2.0**-52)
    m[:, 30:37] = m[:, 20:27] * (1.0 + 2.0**-51)
    block = 480 // 6
    blocks = [f.reshape(6, block, 40).sum(axis=1) for f in overfitting._ADDITIVE[objective][0](m)]
    assert_same(pbo_from_blocks(blocks, block, objective), plain_cscv(blocks, block, objective))


def test_extreme_sums_go_to_the_exact_scores():
    rng = np.random.default_rng(9)
    s0 = rng.normal(0.0, 0.1, (6, 9))
    s1 = s0**2 / 20 + rng.random((6, 9)) * 0.01
    s0[:, 2] *= 1e-60  # tiny sums (outside the division-free range)
    s1[:, 2] *= 1e-120
    s0[:, 3] *= 1e70  # huge ones
    s1[:, 3] *= 1e140
    s0[:, 4], s1[:, 4] = 0.0, 0.0  # flat: Sharpe and Sortino 0 on every half
    s0[:, 5], s1[:, 5] = s0[:, 6], s1[:, 6]  # a twin: tied on every half it wins
    for objective in (sharpe, sortino):
        assert_same(pbo_from_blocks([s0, s1], 20, objective), plain_cscv([s0, s1], 20, objective))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_block_sum_is_refused(bad):
    # the former matrix product multiplied left-out blocks by 0, so one such block made every half NaN
    s0 = np.random.default_rng(3).normal(0.0, 0.1, (4, 5))
    s1 = s0**2 + 0.01
    s1[2, 3] = bad
    with pytest.raises(RobustnessError) as err:
        pbo_from_blocks([s0, s1], 10, sharpe)
    assert str(err.value) == (
        "PBO needs finite per-block sums; 1 strategy column(s) have a NaN or infinite one (the first: column 3); "
        "leave them out"
    )


def test_the_plan_pairs_each_half_with_its_complement():
    complement, opp = cscv_kernel.plan(6)
    halves = list(itertools.combinations(range(6), 3))
    assert [tuple(c) for c in complement] == [tuple(k for k in range(6) if k not in h) for h in halves]
    assert all(halves[opp[b]] == tuple(complement[b]) for b in range(len(halves)))
    assert complement.shape == (20, 3)
