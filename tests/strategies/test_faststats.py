"""The compiled statistics pass (strategies.faststats) gives riskon.metrics' doubles, bit for bit.

``run_stats`` writes NumPy's order of operations out (pairwise sums, sequential products); these tests hold
it to NumPy itself and to ``riskon.metrics.returns_metrics`` over random runs of every length class of the
pairwise sum (below 8, one block of 128, split halves), flat stretches, a per-bar risk-free rate, NaN,
infinities and a zero equity; and its trade statistics to the NumPy reference on random trade records.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from riskon.metrics import returns_metrics
from riskon.sweeps.lean_metrics import metrics_from_stats, trade_metrics_of_records
from strategies.backtest import equity_returns
from strategies.faststats import STATS, pairwise_sum, run_stats

LENGTHS = (1, 2, 3, 7, 8, 9, 15, 16, 17, 127, 128, 129, 130, 255, 256, 257, 300, 1031, 4357, 20_011)


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def stats_of(equity: np.ndarray, cash: float, rf: np.ndarray | None, rec=None, nrec=0, last=None, fee=0.0):
    n = len(equity)
    rec = np.full((max(nrec, 1), 13), np.nan) if rec is None else rec
    out, st = np.empty(n), np.empty(len(STATS))
    times = np.arange(n, dtype=np.int64) * 86_400_000_000
    scratch = np.empty((3, max(n, 2 * len(rec))))
    last = np.ones(1) if last is None else last
    run_stats(np.ascontiguousarray(equity), cash, np.empty(0) if rf is None else rf, rec, nrec, last, times, fee,
              out, scratch, np.empty(n, np.bool_), st)  # fmt: skip
    return out, dict(zip(STATS, st.tolist(), strict=True)), times


def test_pairwise_sum_is_numpys_sum():
    rng = np.random.default_rng(1)
    for n in (0, *LENGTHS, 100_003):
        a = (rng.normal(0, 1, n) * 10.0 ** rng.integers(-6, 6, n))[None, :]
        assert np.sum(a[0]) == 0.0 + pairwise_sum(a, 0, 0, n), n


@pytest.mark.parametrize("with_rf", [False, True])
def test_returns_and_metrics_equal_riskon_metrics(with_rf):
    rng = np.random.default_rng(7 + with_rf)
    for n in LENGTHS:
        for trial in range(3):
            moves = rng.normal(0.0005, 0.03, n) * (rng.random(n) < 0.5)  # half the days flat: exact zero returns
            cash = float(rng.choice([1e5, 12345.0]))
            equity = cash * np.cumprod(1.0 + moves)
            if trial == 1:
                equity[: n // 3] = cash  # a flat start
            rf = (1.0 + rng.normal(0.03, 0.01, n)) ** (1 / 365) - 1.0 if with_rf else None
            out, st, _ = stats_of(equity, cash, rf)
            want_r = equity_returns(pd.Series(equity), cash)
            assert np.array_equal(out, want_r.to_numpy()), n
            want = returns_metrics(want_r, 0.0 if rf is None else rf)
            got = metrics_from_stats((st["growth"], st["mean"], st["sd"], st["down_sq"], st["max_drawdown"]), n)
            assert all(same(got[k], want[k]) for k in want), (n, trial, got, want)
            assert st["nan_at"] == -1


def test_nan_infinity_and_zero_equity_propagate_as_numpy_does():
    rng = np.random.default_rng(5)
    for n, where, value in ((50, 20, np.nan), (300, 150, np.inf), (300, 10, 0.0), (9, 8, np.nan), (200, 0, -np.inf)):
        equity = 1e5 * np.cumprod(1.0 + rng.normal(0, 0.02, n))
        equity[where] = value
        out, st, _ = stats_of(equity, 1e5, None)
        want_r = equity_returns(pd.Series(equity), 1e5)
        assert np.array_equal(out, want_r.to_numpy(), equal_nan=True)
        want = returns_metrics(want_r)
        got = metrics_from_stats((st["growth"], st["mean"], st["sd"], st["down_sq"], st["max_drawdown"]), n)
        assert all(same(got[k], want[k]) for k in want), (n, where, value, got, want)
        assert st["nan_at"] == (where if value != value else -1)


def random_records(rng: np.random.Generator, n: int, k: int, open_last: bool) -> np.ndarray:
    """``k`` one-leg trades in sequence over ``n`` bars (strategies.fastsim's record layout)."""
    cuts = np.sort(rng.choice(np.arange(1, n - 1), 2 * k, replace=False))
    rec = np.full((k, 13), np.nan)
    for i in range(k):
        entry, exit_bar = int(cuts[2 * i]), int(cuts[2 * i + 1])
        epx, xpx = rng.uniform(10, 100), rng.uniform(10, 100)
        size = rng.uniform(0.1, 50.0)
        fee = 0.001
        rec[i, :] = (i, 0, entry - 1, entry - 1, entry, epx, size, size * fee * epx, exit_bar - 1, exit_bar, xpx,
                     size * fee * xpx, int(rng.integers(0, 7)))  # fmt: skip
    if open_last:
        rec[-1, 8:12] = (-1, np.nan, np.nan, np.nan)
        rec[-1, 12] = 8
    return rec


def test_trade_statistics_equal_the_numpy_reference():
    rng = np.random.default_rng(11)
    n = 900
    closes = rng.uniform(10, 100, (1, n))
    for k in (1, 2, 5, 8, 9, 40, 130, 200):
        for open_last in (False, True):
            rec = random_records(rng, n, k, open_last)
            _, st, times = stats_of(np.full(n, 1e5), 1e5, None, rec, k, np.ascontiguousarray(closes[:, -1]), 0.001)
            want = trade_metrics_of_records(rec, -1, closes, times, 0.001, "t")
            assert st["basket"] == 0.0 and st["fees"] == want["fees"]
            got = {
                "exposure": int(st["held"]) / n, "trades": st["positions"], "win_rate": int(st["won"]) / k,
                "profit_factor": st["wins"] / st["losses"] if st["losses"] > 0 else math.inf,
                "avg_hold_days": st["hold_days"],
            }  # fmt: skip
            assert all(same(got[m], want[m]) for m in got), (k, open_last, got, want)


def test_a_position_of_several_legs_is_left_to_the_caller():
    rng = np.random.default_rng(2)
    rec = random_records(rng, 100, 3, False)
    rec[1, 0] = rec[0, 0]  # two legs of one position
    _, st, _ = stats_of(np.full(100, 1e5), 1e5, None, rec, 3, np.ones(1), 0.001)
    assert st["basket"] == 1.0
