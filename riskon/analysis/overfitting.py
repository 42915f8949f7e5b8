"""The probability of backtest overfitting (PBO) by combinatorially symmetric cross-validation (CSCV).

Bailey, Borwein, López de Prado & Zhu (2015), "The Probability of Backtest Overfitting": the dates of a
time × strategies matrix of returns are cut into ``S`` blocks; for every choice of half the blocks as the
training set, the in-sample winner's out-of-sample rank is turned into a logit, and PBO is the share of
splits where that logit is at most zero (the winner ranks in the bottom half out of sample). Objectives
are per-period (per calendar day) statistics, as in ``riskon.analysis.robustness``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


class RobustnessError(ValueError):
    """The statistics cannot be computed for this input (too few runs, too short a history, ...)."""


#: CSCV refuses more train/test combinations than this (C(20, 10) = 184,756 is the largest S allowed).
MAX_COMBINATIONS = 200_000


# -- objectives for CSCV -------------------------------------------------------------------------------
def sharpe(matrix: np.ndarray) -> np.ndarray:
    """Per-period Sharpe ratio of each column: mean / std(ddof=1).

    A column without variation (variance below 1e-12 of its mean square: all zeros, i.e. flat in cash,
    or constant) scores 0 when its mean is 0, else ±inf.
    """
    m = np.asarray(matrix, dtype="float64")
    n = m.shape[0]
    return _sharpe_finish([m.sum(axis=0), (m * m).sum(axis=0)], n, var=m.var(axis=0, ddof=1))


def sortino(matrix: np.ndarray) -> np.ndarray:
    """Per-period Sortino ratio of each column: mean / sqrt(mean(min(r, 0)²)) (riskon's definition)."""
    m = np.asarray(matrix, dtype="float64")
    down = np.sqrt((np.minimum(m, 0.0) ** 2).mean(axis=0))
    mean = m.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(down > 0, mean / np.where(down > 0, down, 1.0), np.where(mean == 0, 0.0, np.inf))


def log_growth(matrix: np.ndarray) -> np.ndarray:
    """Mean log growth per period, mean(log(1 + r)): ranks like CAGR and total return on equal lengths.

    A total loss (r <= -1) counts as log(1e-15), so sums stay finite.
    """
    return _growth_stats(np.asarray(matrix, dtype="float64"))[0].mean(axis=0)


def _sharpe_stats(x: np.ndarray) -> list[np.ndarray]:
    return [x, x * x]


def _sharpe_finish(sums: list[np.ndarray], n: int, var: np.ndarray | None = None) -> np.ndarray:
    mean = sums[0] / n
    if var is None:
        var = (sums[1] - sums[0] * mean) / (n - 1)
    flat = var <= 1e-12 * (sums[1] / n)  # also catches a rounding-negative variance
    with np.errstate(divide="ignore", invalid="ignore"):
        out = mean / np.sqrt(var)
    if flat.any():
        out[flat] = np.where(mean[flat] == 0, 0.0, np.copysign(np.inf, mean[flat]))
    return out


def _sortino_stats(x: np.ndarray) -> list[np.ndarray]:
    return [x, np.minimum(x, 0.0) ** 2]


def _sortino_finish(sums: list[np.ndarray], n: int) -> np.ndarray:
    mean, down = sums[0] / n, np.sqrt(sums[1] / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(down > 0, mean / np.where(down > 0, down, 1.0), np.where(mean == 0, 0.0, np.inf))


def _growth_stats(x: np.ndarray) -> list[np.ndarray]:
    return [np.log1p(np.maximum(x, -1.0 + 1e-15))]


def _growth_finish(sums: list[np.ndarray], n: int) -> np.ndarray:
    return sums[0] / n


#: Objectives that are functions of per-column sums: CSCV adds per-block sums instead of re-reading rows.
#: Same numbers as calling the objective, to rounding (a test holds them within 1e-9): daily returns'
#: squared mean is ~1e-3 of their mean square, so the sum-of-squares variance keeps ~13 digits.
_ADDITIVE: dict[Callable, tuple[Callable, Callable]] = {
    sharpe: (_sharpe_stats, _sharpe_finish),
    sortino: (_sortino_stats, _sortino_finish),
    log_growth: (_growth_stats, _growth_finish),
}

#: The fused kernel's number for each additive objective (``cscv_kernel.KINDS``).
_KIND: dict[Callable, int] = {sharpe: 0, sortino: 1, log_growth: 2}

#: The sweep objectives CSCV can score from daily returns alone, with the function that does it.
RETURN_OBJECTIVES: dict[str, Callable] = {
    "sharpe": sharpe,
    "sortino": sortino,
    "cagr": log_growth,
    "total_return": log_growth,
}


# -- probability of backtest overfitting (CSCV) --------------------------------------------------------
@dataclass(frozen=True)
class PBOResult:
    """The outcome of CSCV.

    ``logits[c]`` is log(ω / (1 − ω)) for combination ``c``, where ω = (out-of-sample rank of the
    in-sample best) / (N + 1); ``is_best`` and ``oos_best`` are that strategy's objective in and out of
    sample; ``pbo`` is the share of combinations where the in-sample winner is at or below the
    out-of-sample median (logit <= 0). When several strategies tie exactly for the best in-sample score,
    each counts for an equal share of its combination (``overfit[c]``, ``oos_loss[c]``: the shares of
    the tied winners with logit <= 0 and with an out-of-sample score below 0), and ``logits``,
    ``oos_best`` hold their means; ``tied`` counts the combinations with such a tie.
    """

    pbo: float
    logits: np.ndarray = field(repr=False)
    n_combinations: int
    n_splits: int
    n_periods: int
    n_strategies: int
    dropped_rows: int
    is_best: np.ndarray = field(repr=False)
    oos_best: np.ndarray = field(repr=False)
    duplicates: int = 0
    overfit: np.ndarray | None = field(default=None, repr=False)
    oos_loss: np.ndarray | None = field(default=None, repr=False)
    tied: int = 0

    @property
    def prob_oos_loss(self) -> float:
        """Share of combinations in which the in-sample winner scores below 0 out of sample (ties shared)."""
        if self.oos_loss is not None:
            return float(np.mean(self.oos_loss))
        return float(np.mean(self.oos_best < 0))


def _as_matrix(matrix) -> tuple[np.ndarray, int]:
    m = matrix.to_numpy(dtype="float64") if isinstance(matrix, pd.DataFrame) else np.asarray(matrix, "float64")
    if m.ndim != 2:
        raise RobustnessError(f"PBO needs a 2-D matrix (rows time, columns strategies), got {m.ndim}-D")
    if np.isinf(m).any():
        raise RobustnessError("the returns matrix contains infinite values")
    keep = ~np.isnan(m).any(axis=1)
    return m[keep], int((~keep).sum())


def _ranks_of_chosen(test: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """1-based rank (ascending, ties averaged) of column ``chosen[i]`` within row ``test[i]``."""
    t = np.where(np.isnan(test), -np.inf, test)
    v = t[np.arange(len(t)), chosen][:, None]
    below = (t < v).sum(axis=1)
    equal = (t == v).sum(axis=1)
    return below + (equal + 1) / 2.0


def _score_splits(r_is: np.ndarray, r_oos: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per split (row): in-sample best score, mean logit, mean out-of-sample score, overfit and loss shares,
    and the number of tied in-sample winners.

    The in-sample winner is every column with the row's best score (NaN scores count as -inf): tied
    winners each count for an equal share, so the result does not depend on the order of the columns.
    """
    n = r_is.shape[1]
    r_is = np.where(np.isnan(r_is), -np.inf, r_is)
    best = np.argmax(r_is, axis=1)
    top = r_is[np.arange(len(best)), best]
    ties = (r_is == top[:, None]).sum(axis=1)
    logit = _logit(_ranks_of_chosen(r_oos, best), n)
    oos = r_oos[np.arange(len(best)), best]
    overfit = (logit <= 0).astype("float64")
    loss = (oos < 0).astype("float64")
    for i in np.nonzero(ties > 1)[0]:  # rare: exact ties for the best in-sample score
        cols = np.nonzero(r_is[i] == top[i])[0]
        t = np.where(np.isnan(r_oos[i]), -np.inf, r_oos[i])
        ordered = np.sort(t)
        lo = np.searchsorted(ordered, t[cols], "left")
        hi = np.searchsorted(ordered, t[cols], "right")
        each = _logit(lo + (hi - lo + 1) / 2.0, n)
        logit[i], oos[i] = each.mean(), r_oos[i, cols].mean()
        overfit[i], loss[i] = np.mean(each <= 0), np.mean(r_oos[i, cols] < 0)
    return top, logit, oos, overfit, loss, ties


def _logit(rank: np.ndarray, n: int) -> np.ndarray:
    omega = rank / (n + 1)
    return np.log(omega / (1.0 - omega))


def pbo(matrix, n_splits: int = 16, objective: Callable[[np.ndarray], np.ndarray] = sharpe) -> PBOResult:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation.

    ``matrix``: T × N per-period returns (rows time in order, columns strategies), an array or a
    DataFrame. Rows with a NaN in any column are dropped first, so every strategy is scored on the same
    dates (for runs whose returns start later, that is the common date range). The remaining T rows are
    cut into ``n_splits`` (S, even) contiguous blocks of ⌊T/S⌋ rows; the oldest T mod S rows are dropped
    so that every block, and so every train and test half, has the same length. For each of the
    C(S, S/2) ways to pick S/2 blocks as the training set (the rest is the test set, both in time order):
    the strategy with the best ``objective`` in sample gets its out-of-sample rank among all N (1 = worst;
    ties share their average rank; NaN scores rank lowest), ω = rank/(N+1), logit = ln(ω / (1 − ω)). PBO
    is the share of logits <= 0. Strategies tied exactly for the best in-sample score share their
    combination equally (each counts 1/k of it; see ``PBOResult``), so no column order decides a tie.
    Identical columns count once, and the remaining columns are put in one canonical order (by their
    values) before any arithmetic: the same columns in any order give exactly the same result.

    ``objective`` maps a rows × N array to N scores, higher is better. ``sharpe`` (default), ``sortino``
    and ``log_growth`` are computed from per-block sums by a compiled kernel (``cscv_kernel``; each
    half's sums are its blocks' sums added in block order, as ``pbo_from_blocks`` adds them, so the two
    give the same doubles); any other callable is called per split.
    """
    if isinstance(n_splits, bool) or not isinstance(n_splits, int) or n_splits < 2 or n_splits % 2:
        raise RobustnessError(f"n_splits must be an even integer >= 2, got {n_splits!r}")
    if math.comb(n_splits, n_splits // 2) > MAX_COMBINATIONS:
        raise RobustnessError(
            f"n_splits={n_splits} gives {math.comb(n_splits, n_splits // 2):,} combinations; use at most 20 splits"
        )
    m, dropped = _as_matrix(matrix)
    if m.shape[1] < 2:
        raise RobustnessError(f"PBO needs at least 2 strategies (columns), got {m.shape[1]}")
    # identical columns are one trial, not several: a swept parameter that never binds would otherwise
    # tie every score and count as overfit (logit 0) in every combination. np.unique also sorts the
    # columns by their values: one canonical order, so the arithmetic is the same for any input order
    # (+ 0.0 turns -0.0 into 0.0, which compares equal but would keep the input order between them)
    distinct = np.unique(m + 0.0, axis=1)
    duplicates = m.shape[1] - distinct.shape[1]
    m = distinct
    t_all, n = m.shape
    if n < 2:
        raise RobustnessError(
            f"PBO needs at least 2 distinct strategies; all {n + duplicates} columns have identical returns"
        )
    block = t_all // n_splits
    if block < 2:
        raise RobustnessError(
            f"PBO with {n_splits} splits needs at least {2 * n_splits} periods (2 per block) with every "
            f"strategy present, got {t_all}; use fewer splits"
        )
    skip = t_all - block * n_splits
    m = m[skip:]
    combos = np.array(list(itertools.combinations(range(n_splits), n_splits // 2)), dtype=np.int64)
    rows = n_splits // 2 * block
    fast = _ADDITIVE.get(objective)
    if fast is not None:
        blocks = [s.reshape(n_splits, block, n).sum(axis=1) for s in fast[0](m)]  # each S × N
        parts = _additive_parts(blocks, _KIND[objective], rows)
    else:
        parts = []  # per combination: _score_splits' arrays
        cube = m.reshape(n_splits, block, n)
        for train_blocks in combos:
            test_blocks = np.setdiff1d(np.arange(n_splits), train_blocks)
            r_is = np.asarray(objective(cube[train_blocks].reshape(rows, n)), dtype="float64")
            r_oos = np.asarray(objective(cube[test_blocks].reshape(rows, n)), dtype="float64")
            if r_is.shape != (n,) or r_oos.shape != (n,):
                raise RobustnessError(f"the objective must return one score per strategy ({n}), got {r_is.shape}")
            parts.append(_score_splits(r_is[None, :], r_oos[None, :]))
    return _result(parts, n_splits, block, n, dropped + skip, duplicates)


def _additive_parts(blocks: list[np.ndarray], kind: int, rows: int) -> list[tuple]:
    """CSCV scores from per-block sums (each S × N) by the fused kernel (``cscv_kernel``): ``_score_splits``'
    arrays for every split, in one part, without a splits × N array.

    Each half's sums are its blocks added in ascending order, left to right from 0.0: what the former
    membership-matrix product (``member @ blocks``) gave on one BLAS thread, except in the rows OpenBLAS
    computes with its edge kernel (the last half of an odd-sized chunk, and one per thread's share when
    it runs on several), whose last bit could differ and depended on the thread count. Every sum must be
    finite: the product multiplied left-out blocks by 0, so a NaN or infinite block made every half of
    that strategy NaN; such input is refused instead.
    """
    # numba (and its compile cache) loads only when CSCV runs, not with every riskon command
    from riskon.analysis import cscv_kernel as ck

    b0 = np.ascontiguousarray(blocks[0], dtype="float64")
    b1 = np.ascontiguousarray(blocks[1], dtype="float64") if len(blocks) > 1 else b0
    bad = ~(np.isfinite(b0).all(axis=0) & np.isfinite(b1).all(axis=0))
    if bad.any():
        raise RobustnessError(
            f"PBO needs finite per-block sums; {int(bad.sum())} strategy column(s) have a NaN or infinite one "
            f"(the first: column {int(np.argmax(bad))}); leave them out"
        )
    n_splits, n = b0.shape
    complement, opp = ck.plan(n_splits)
    k = len(opp)
    nf, nm1 = float(rows), float(rows - 1)

    def sweep(mode, select, best, counts, out, t_start, t_values):
        ck.sweep(mode, b0, b1, kind, nf, nm1, ck.TILE, select, opp, complement, best, *counts, out, t_start, t_values)

    top, n_tied, first = np.full(k, -np.inf), np.zeros(k, np.int64), np.full(k, -1, np.int64)
    no_split, none_i, none_f = np.zeros(k, dtype=bool), np.zeros(k + 1, np.int64), np.empty(0)
    sweep(ck.BEST, no_split, top, (n_tied, first), none_f, none_i, none_f)
    oos = ck.winners_oos(b0, b1, kind, nf, nm1, first, complement)
    target = np.where(np.isnan(oos), -np.inf, oos)
    below, equal = np.zeros(k, np.int64), np.zeros(k, np.int64)
    shares = {}  # split -> (each tied winner's logit, its raw out-of-sample score), in strategy order
    for g, group in enumerate(_tie_groups(n_tied)):
        t_start, t_values, raw = np.zeros(k + 1, np.int64), np.empty(0), {}
        if group.any():
            offset = np.concatenate([[0], np.cumsum(np.where(group, n_tied, 0))]).astype(np.int64)
            values = np.empty(int(offset[-1]))
            sweep(ck.COLLECT, group, top, (n_tied, first), values, offset[:-1].copy(), none_f)
            raw = {int(c): values[offset[c] : offset[c + 1]] for c in np.nonzero(group)[0]}
            distinct = [np.unique(np.where(np.isnan(raw[c]), -np.inf, raw[c])) if c in raw else [] for c in range(k)]
            t_start = np.concatenate([[0], np.cumsum([len(d) for d in distinct])]).astype(np.int64)
            t_values = np.concatenate(distinct).astype("float64")
        nt = len(t_values)
        counted = np.zeros(2 * nt)  # float64 like the other modes' ``out`` (one compiled kernel); exact counts
        # the untied splits are counted in the first group's pass (later groups count them again, unused)
        sweep(ck.COUNT, group, target, (below, equal) if g == 0 else (np.zeros(k, np.int64),) * 2, counted,
              t_start, t_values)  # fmt: skip
        for c, vals in raw.items():
            seg = slice(t_start[c], t_start[c + 1])
            at = np.searchsorted(t_values[seg], np.where(np.isnan(vals), -np.inf, vals))
            lo = np.cumsum(counted[:nt][seg].astype(np.int64))[at]  # below each tied winner, as _score_splits ranks
            hi = lo + counted[nt:][seg][at].astype(np.int64)
            shares[c] = (_logit(lo + (hi - lo + 1) / 2.0, n), vals)
    logit = _logit(below + (equal + 1) / 2.0, n)
    overfit = (logit <= 0).astype("float64")
    loss = (oos < 0).astype("float64")
    for c, (each, vals) in shares.items():  # exact in-sample ties: each winner an equal share
        logit[c], oos[c] = each.mean(), vals.mean()
        overfit[c], loss[c] = np.mean(each <= 0), np.mean(vals < 0)
    return [(top, logit, oos, overfit, loss, n_tied)]


#: Tied winners' out-of-sample scores held at once: splits with ties are done in groups within this.
_TIE_VALUES = 4_000_000


def _tie_groups(n_tied: np.ndarray) -> list[np.ndarray]:
    """The splits with exact in-sample ties, in groups of at most ``_TIE_VALUES`` tied winners (or one split);
    one empty group when there is no tie."""
    groups, current, held = [], np.zeros(len(n_tied), dtype=bool), 0
    for c in np.nonzero(n_tied > 1)[0]:
        if held and held + n_tied[c] > _TIE_VALUES:
            groups.append(current)
            current, held = np.zeros(len(n_tied), dtype=bool), 0
        current[c], held = True, held + int(n_tied[c])
    return [*groups, current]


def _result(parts: list[tuple], n_splits: int, block: int, n: int, dropped: int, duplicates: int) -> PBOResult:
    is_best, logits, oos_best, overfit, loss, ties = (np.concatenate(p) for p in zip(*parts, strict=True))
    return PBOResult(
        pbo=float(np.mean(overfit)),
        logits=logits,
        n_combinations=len(logits),
        n_splits=n_splits,
        n_periods=block * n_splits,
        n_strategies=n,
        dropped_rows=dropped,
        is_best=is_best,
        oos_best=oos_best,
        duplicates=duplicates,
        overfit=overfit,
        oos_loss=loss,
        tied=int((ties > 1).sum()),
    )


def pbo_from_blocks(
    blocks: list[np.ndarray], block_len: int, objective: Callable = sharpe, duplicates: int = 0, dropped_rows: int = 0
) -> PBOResult:
    """PBO by CSCV from per-block sums, without the time × strategies matrix: what ``pbo`` computes from it.

    ``blocks``: the objective's per-day statistics (``_ADDITIVE``: Sharpe sums r and r², Sortino r and
    min(r, 0)², ``log_growth`` log(1 + r)) summed over each of S equal blocks of ``block_len`` days, one
    S × N array per statistic, one column per distinct strategy (``riskon.sweeps.row_fields`` stores them
    per run). On the same blocks as ``pbo`` cuts a matrix (a single-calendar sweep: every strategy on the
    same dates) the sums, and so the result, are the same doubles. ``duplicates`` and ``dropped_rows`` are
    reported as given (identical strategies left out, days before the first block). Time ~2 passes over
    12,870 halves × N strategies for 16 blocks, memory a few arrays per split (``cscv_kernel``): 10⁶
    strategies in ~40 s of one core (``bench/cscv.py``).
    """
    if objective not in _ADDITIVE:
        raise RobustnessError("PBO from block sums needs an objective made of sums: sharpe, sortino or log_growth")
    stats = [np.asarray(b, dtype="float64") for b in blocks]
    n_splits, n = stats[0].shape
    if n_splits < 2 or n_splits % 2:
        raise RobustnessError(f"n_splits must be an even integer >= 2, got {n_splits}")
    if n < 2:
        raise RobustnessError(
            f"PBO needs at least 2 distinct strategies; all {n + duplicates} runs have identical returns"
        )
    if block_len < 2:
        raise RobustnessError(f"PBO with {n_splits} splits needs at least {2 * n_splits} periods (2 per block)")
    parts = _additive_parts(stats, _KIND[objective], n_splits // 2 * block_len)
    return _result(parts, n_splits, block_len, n, dropped_rows, duplicates)
