"""How likely a sweep's best run is a fluke: probabilistic and deflated Sharpe ratios, and PBO by CSCV.

* **PSR** (Bailey & López de Prado, 2012, "The Sharpe Ratio Efficient Frontier"): the probability that
  the true Sharpe ratio exceeds a benchmark, given the observed Sharpe ratio, the track length and the
  skewness and kurtosis of the returns.
* **DSR** (Bailey & López de Prado, 2014, "The Deflated Sharpe Ratio"): the PSR against the Sharpe ratio
  the best of ``N`` skill-less trials would show by luck alone (the False Strategy theorem).
* **PBO** (Bailey, Borwein, López de Prado & Zhu, 2015, "The Probability of Backtest Overfitting"):
  combinatorially symmetric cross-validation over a time × strategies matrix of returns; the share of
  train/test splits in which the in-sample winner ranks in the bottom half out of sample.

Every Sharpe ratio here is **per period** (per calendar day for riskon's returns, 365 a year), never
annualised: the formulas count observations, so an annualised ratio with a daily count would be wrong.
Annualised = per day × sqrt(365), as in ``riskon.metrics``. The stored ``sharpe`` metric is
``mean / std(ddof=1) * sqrt(365)`` of the stored daily returns (risk-free rate 0), so the per-day
ratio used here is that metric divided by sqrt(365).

The standard normal comes from ``statistics.NormalDist`` (no SciPy dependency).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import pandas as pd

from riskon.metrics import PERIODS
from riskon.store import rank_runs, short_name

#: CSCV refuses more train/test combinations than this (C(20, 10) = 184,756 is the largest S allowed).
MAX_COMBINATIONS = 200_000
#: The Euler–Mascheroni constant of the False Strategy theorem.
EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


class RobustnessError(ValueError):
    """The statistics cannot be computed for this input (too few runs, too short a history, ...)."""


# -- moments and the probabilistic / deflated Sharpe ratio --------------------------------------------
def _clean(returns) -> np.ndarray:
    r = np.asarray(returns, dtype="float64").ravel()
    if r.size < 2:
        raise RobustnessError(f"need at least 2 returns, got {r.size}")
    if not np.isfinite(r).all():
        raise RobustnessError("returns contain NaN or infinite values")
    return r


def moments(returns) -> tuple[float, float, float, int]:
    """Per-period Sharpe ratio, skewness, non-excess kurtosis and count of a return series.

    Sharpe = mean / std with ``ddof=1`` — the same estimator as riskon's reported Sharpe (divided by
    sqrt(365)), so PSR speaks about the number the tables print. Skewness ``m3 / m2^1.5`` and kurtosis
    ``m4 / m2^2`` use the population (plug-in) central moments ``m_k = mean((r - mean)^k)``, as in the
    papers' own code; with hundreds or thousands of daily returns the small-sample corrections change
    them by O(1/n). A series without variation (all zeros, or constant) has an undefined Sharpe ratio:
    all three are NaN.
    """
    r = _clean(returns)
    n = r.size
    dev = r - r.mean()
    m2 = float(np.mean(dev**2))
    if m2 <= 1e-12 * float(np.mean(r * r)):  # constant within rounding (as ``sharpe`` below)
        return math.nan, math.nan, math.nan, n
    sd = math.sqrt(m2 * n / (n - 1))
    sr = float(r.mean()) / sd
    skew = float(np.mean(dev**3)) / m2**1.5
    kurt = float(np.mean(dev**4)) / m2**2
    return sr, skew, kurt, n


def psr_from_moments(sr: float, n: int, skew: float, kurtosis: float, sr_benchmark: float = 0.0) -> float:
    """PSR(SR*) = Φ((SR − SR*) · sqrt(n − 1) / sqrt(1 − γ3·SR + (γ4 − 1)/4 · SR²)), all per period.

    ``kurtosis`` is non-excess (3 for the normal distribution). NaN when the Sharpe ratio is undefined.
    """
    if any(isinstance(v, float) and math.isnan(v) for v in (sr, skew, kurtosis, sr_benchmark)):
        return math.nan
    if n < 2:
        raise RobustnessError(f"need at least 2 returns, got {n}")
    var = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if var <= 0.0:  # only for degenerate two-point distributions (γ4 >= γ3² + 1 makes it >= 0)
        return math.nan
    return _NORMAL.cdf((sr - sr_benchmark) * math.sqrt(n - 1) / math.sqrt(var))


def probabilistic_sharpe(returns, sr_benchmark: float = 0.0) -> float:
    """The probability that the true per-period Sharpe ratio of ``returns`` exceeds ``sr_benchmark``.

    Bailey & López de Prado (2012). ``returns`` are per-period (riskon: per calendar day) simple returns
    in excess of the risk-free rate (riskon reports against 0); ``sr_benchmark`` is **per period** too
    (an annual 1.0 is 1 / sqrt(365) per day). The Sharpe ratio is ``mean / std(ddof=1)`` (riskon's own,
    not annualised) and skewness and non-excess kurtosis are population moments — see ``moments``.
    """
    sr, skew, kurt, n = moments(returns)
    return psr_from_moments(sr, n, skew, kurt, sr_benchmark)


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """E[max SR] of ``n_trials`` skill-less trials whose Sharpe ratios have variance ``sr_variance``.

    The False Strategy theorem (Bailey & López de Prado, 2014):
    sqrt(V) · ((1 − γ) Φ⁻¹(1 − 1/N) + γ Φ⁻¹(1 − 1/(N·e))), γ the Euler–Mascheroni constant. Units follow
    ``sr_variance`` (per-period Sharpe ratios give a per-period answer). One trial involves no selection:
    0 (the formula itself diverges at N = 1).
    """
    if n_trials < 1:
        raise RobustnessError(f"n_trials must be >= 1, got {n_trials}")
    if not sr_variance >= 0.0:  # also refuses NaN
        raise RobustnessError(f"sr_variance must be a number >= 0, got {sr_variance}")
    if n_trials == 1:
        return 0.0
    z1 = _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    z2 = _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(sr_variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def deflated_sharpe(returns, n_trials: int, sr_variance: float) -> float:
    """DSR = PSR(SR*) with SR* = ``expected_max_sharpe(n_trials, sr_variance)``.

    Bailey & López de Prado (2014): the probability that the selected run's true Sharpe ratio beats the
    best that ``n_trials`` skill-less trials would show. ``sr_variance`` is the variance of the trials'
    **per-period** Sharpe ratios.
    """
    return probabilistic_sharpe(returns, expected_max_sharpe(n_trials, sr_variance))


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
    sample; ``pbo`` is the share of logits <= 0 (the in-sample winner at or below the out-of-sample median).
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

    @property
    def prob_oos_loss(self) -> float:
        """Share of combinations in which the in-sample winner scores below 0 out of sample."""
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


def pbo(matrix, n_splits: int = 16, objective: Callable[[np.ndarray], np.ndarray] = sharpe) -> PBOResult:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation.

    ``matrix``: T × N per-period returns (rows time in order, columns strategies), an array or a
    DataFrame. Rows with a NaN in any column are dropped first, so every strategy is scored on the same
    dates (for runs whose returns start later, that is the common date range). The remaining T rows are
    cut into ``n_splits`` (S, even) contiguous blocks of ⌊T/S⌋ rows; the oldest T mod S rows are dropped
    so that every block, and so every train and test half, has the same length. For each of the
    C(S, S/2) ways to pick S/2 blocks as the training set (the rest is the test set, both in time order):
    the strategy with the best ``objective`` in sample (ties: the lowest column) gets its out-of-sample
    rank among all N (1 = worst; ties share their average rank; NaN scores rank lowest), ω = rank/(N+1),
    logit = ln(ω / (1 − ω)). PBO is the share of logits <= 0.

    ``objective`` maps a rows × N array to N scores, higher is better. ``sharpe`` (default), ``sortino``
    and ``log_growth`` are computed from per-block sums (fast); any other callable is called per split.
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
    # tie every score and count as overfit (logit 0) in every combination
    _, first = np.unique(m, axis=1, return_index=True)
    duplicates = m.shape[1] - len(first)
    m = m[:, np.sort(first)]
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
    half = n_splits // 2
    combos = np.array(list(itertools.combinations(range(n_splits), half)), dtype=np.int64)
    n_comb = len(combos)
    member = np.zeros((n_comb, n_splits), dtype="float64")
    member[np.repeat(np.arange(n_comb), half), combos.ravel()] = 1.0
    rows = half * block
    is_best = np.empty(n_comb)
    oos_best = np.empty(n_comb)
    ranks = np.empty(n_comb)
    fast = _ADDITIVE.get(objective)
    if fast is not None:
        stats_fn, finish = fast
        blocks = [s.reshape(n_splits, block, n).sum(axis=1) for s in stats_fn(m)]  # each S × N
        chunk = max(1, 4_000_000 // max(n, 1))
        for lo in range(0, n_comb, chunk):
            sel = member[lo : lo + chunk]
            train = [sel @ b for b in blocks]
            test = [(1.0 - sel) @ b for b in blocks]  # not totals - train: a flat test half must sum to 0 exactly
            r_is, r_oos = finish(train, rows), finish(test, rows)
            r_is = np.where(np.isnan(r_is), -np.inf, r_is)
            best = np.argmax(r_is, axis=1)
            idx = np.arange(len(best))
            is_best[lo : lo + chunk] = r_is[idx, best]
            oos_best[lo : lo + chunk] = r_oos[idx, best]
            ranks[lo : lo + chunk] = _ranks_of_chosen(r_oos, best)
    else:
        cube = m.reshape(n_splits, block, n)
        for c, train_blocks in enumerate(combos):
            test_blocks = np.setdiff1d(np.arange(n_splits), train_blocks)
            r_is = np.asarray(objective(cube[train_blocks].reshape(rows, n)), dtype="float64")
            r_oos = np.asarray(objective(cube[test_blocks].reshape(rows, n)), dtype="float64")
            if r_is.shape != (n,) or r_oos.shape != (n,):
                raise RobustnessError(f"the objective must return one score per strategy ({n}), got {r_is.shape}")
            r_is = np.where(np.isnan(r_is), -np.inf, r_is)
            best = int(np.argmax(r_is))
            is_best[c], oos_best[c] = r_is[best], r_oos[best]
            ranks[c] = _ranks_of_chosen(r_oos[None, :], np.array([best]))[0]
    omega = ranks / (n + 1)
    logits = np.log(omega / (1.0 - omega))
    return PBOResult(
        pbo=float(np.mean(logits <= 0)),
        logits=logits,
        n_combinations=n_comb,
        n_splits=n_splits,
        n_periods=block * n_splits,
        n_strategies=n,
        dropped_rows=dropped + skip,
        is_best=is_best,
        oos_best=oos_best,
        duplicates=duplicates,
    )


# -- one stored sweep ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepRobustness:
    """PSR, DSR and PBO for one stored sweep; Sharpe ratios per calendar day unless named ``_annual``."""

    sweep_id: str
    name: str
    objective: str
    direction: str
    n_ok: int
    best_run_id: str
    best_params: dict
    n_obs: int
    sharpe_day: float
    skew: float
    kurtosis: float
    n_trials: int
    sr_variance: float
    sr_star: float
    psr: float
    dsr: float
    cscv: PBOResult | None
    pbo_objective: str
    pbo_note: str
    start: pd.Timestamp  # first and last day CSCV used (the common date range of the sweep's runs)
    end: pd.Timestamp
    per_run: pd.DataFrame = field(repr=False)

    @property
    def sharpe_annual(self) -> float:
        """The best run's Sharpe ratio annualised (× sqrt(365)), as the tables print it."""
        return self.sharpe_day * math.sqrt(PERIODS)

    @property
    def pbo(self) -> float:
        """The probability of backtest overfitting (NaN when CSCV could not run; see ``pbo_note``)."""
        return self.cscv.pbo if self.cscv is not None else math.nan

    def as_dict(self) -> dict:
        """The headline numbers as a plain dict (for JSON and reports)."""
        return {
            "sweep_id": self.sweep_id, "name": self.name, "objective": self.objective,
            "best_run_id": self.best_run_id, "n_ok": self.n_ok, "n_obs": self.n_obs,
            "sharpe_day": self.sharpe_day, "sharpe_annual": self.sharpe_annual, "skew": self.skew,
            "kurtosis": self.kurtosis, "n_trials": self.n_trials, "sr_variance": self.sr_variance,
            "sr_star": self.sr_star, "psr": self.psr, "dsr": self.dsr, "pbo": self.pbo,
            "pbo_objective": self.pbo_objective,
            "n_combinations": self.cscv.n_combinations if self.cscv else 0,
            "pbo_periods": self.cscv.n_periods if self.cscv else 0,
        }  # fmt: skip


def returns_matrix(runs: pd.DataFrame) -> pd.DataFrame:
    """Stored runs' daily returns as one calendar-day DataFrame (columns = run ids), NaN where a run has none.

    ``runs`` has ``run_id``, ``returns_start`` and ``returns`` (``Store.runs(..., with_returns=True)``).
    Each run's returns are placed on its own dates (``returns_start`` + one calendar day per value), so
    runs that start or end at different dates line up by date, not by position.
    """
    starts = pd.to_datetime(runs["returns_start"]).dt.normalize()
    lengths = np.array([len(r) for r in runs["returns"]])
    first = starts.min()
    offsets = ((starts - first).dt.days).to_numpy()
    total = int((offsets + lengths).max())
    out = np.full((total, len(runs)), np.nan)
    for j, (off, vals) in enumerate(zip(offsets, runs["returns"], strict=True)):
        out[off : off + len(vals), j] = np.asarray(vals, dtype="float64")
    return pd.DataFrame(out, index=pd.date_range(first, periods=total, freq="D"), columns=list(runs["run_id"]))


def _sweep_and_trials(store, sweep_id: str) -> tuple[str, dict, str, dict[str, float]]:
    """The sweep's name, spec and strategy key, and run id -> per-day Sharpe of every ok run of that strategy
    across sweeps (the runs ``Store.count_trials`` counts), read in one connection."""
    with store.connect(read_only=True) as con:
        row = con.execute("SELECT name, spec, strategy_key FROM sweeps WHERE sweep_id = ?", [sweep_id]).fetchone()
        if row is None:
            raise RobustnessError(f"no sweep {sweep_id!r} in {store.path}")
        rows = con.execute(
            "SELECT r.run_id, r.sharpe FROM runs r JOIN sweeps s USING (sweep_id) "
            "WHERE s.strategy_key = ? AND r.status = 'ok'",
            [row[2]],
        ).fetchall()
    return row[0], json.loads(row[1]), row[2], {rid: _per_day(sr) for rid, sr in rows}


def _per_day(annual_sharpe) -> float:
    return math.nan if annual_sharpe is None else float(annual_sharpe) / math.sqrt(PERIODS)


def sweep_robustness(store, sweep_id: str, n_splits: int = 16) -> SweepRobustness:
    """PSR(0) and DSR of a stored sweep's best run, and PBO over the sweep's stored daily returns.

    * Best run: the best ok run by the sweep's own objective and direction (ties: the smallest run id).
    * Trials: every ok run of the same strategy (``strategy_key``: index, targets, entry rules) in the
      store, across sweeps (``Store.count_trials``); each run once, however many sweeps share it. Should
      some of this sweep's own runs have been stored first under another strategy key, they are added.
    * Sharpe variance: sample variance (ddof=1) of those trials' per-day Sharpe ratios (stored annualised
      Sharpe / sqrt(365)); runs whose Sharpe is undefined (returns that never vary) count as trials but
      do not enter the variance.
    * PSR(0) and DSR on the best run's stored returns; PBO by ``pbo`` over the sweep's ok runs, aligned
      on dates (the common date range of all runs), scored by the sweep's objective when it is a
      function of daily returns (sharpe, sortino, cagr, total_return), else by Sharpe (``pbo_objective``).
    """
    name, spec, _key, trials = _sweep_and_trials(store, sweep_id)
    objective, direction = spec.get("objective", "sharpe"), spec.get("direction", "maximize")
    runs = store.runs(sweep_id, with_returns=True)
    ok = runs[runs["status"] == "ok"] if len(runs) else runs
    ok = ok[ok["returns"].map(lambda r: r is not None and len(r) > 1)] if len(ok) else ok
    if len(ok) < 2:
        raise RobustnessError(f"sweep {name!r} has {len(ok)} ok run(s) with stored returns; need at least 2")
    ranked = rank_runs(ok.dropna(subset=[objective]), objective, direction)
    if ranked.empty:
        raise RobustnessError(f"no run of sweep {name!r} has a {objective} value")
    best = ranked.iloc[0]
    sr, skew, kurt, n_obs = moments(best["returns"])
    # this sweep's runs may have been stored first by a sweep with another strategy key (e.g. when the rule
    # itself is swept): they are trials all the same
    trials.update({rid: _per_day(sr) for rid, sr in zip(ok["run_id"], ok["sharpe"], strict=True) if rid not in trials})
    n_trials = len(trials)  # = Store.count_trials(key) unless runs were added just above
    trial_sr = np.array(list(trials.values()), dtype="float64")
    trial_sr = trial_sr[np.isfinite(trial_sr)]
    var = float(np.var(trial_sr, ddof=1)) if trial_sr.size > 1 else math.nan
    sr_star = expected_max_sharpe(n_trials, var) if not math.isnan(var) else math.nan
    psr = psr_from_moments(sr, n_obs, skew, kurt, 0.0)
    dsr = psr_from_moments(sr, n_obs, skew, kurt, sr_star)

    per_run = []
    for r in ok.itertuples():
        s, g3, g4, k = moments(r.returns)
        per_run.append({"run_id": r.run_id, "psr": psr_from_moments(s, k, g3, g4, 0.0),
                        "dsr": psr_from_moments(s, k, g3, g4, sr_star)})  # fmt: skip

    frame = returns_matrix(ok)
    common = frame.dropna()
    if objective in RETURN_OBJECTIVES and direction == "maximize":
        pbo_objective, fn = objective, RETURN_OBJECTIVES[objective]
    else:
        pbo_objective, fn = "sharpe", sharpe
    try:
        cscv, note = pbo(common, n_splits=n_splits, objective=fn), ""
    except RobustnessError as e:
        cscv, note = None, str(e)
    raw = json.loads(best["params"])
    params = {short_name(k, list(raw)): v for k, v in raw.items()}  # the names the results table uses
    used = cscv.n_periods if cscv is not None else len(common)  # CSCV drops the oldest T mod S days
    start = common.index[len(common) - used] if used else pd.NaT
    return SweepRobustness(
        sweep_id=sweep_id, name=name, objective=objective, direction=direction, n_ok=len(ok),
        best_run_id=str(best["run_id"]), best_params=params, n_obs=n_obs, sharpe_day=sr, skew=skew,
        kurtosis=kurt, n_trials=n_trials, sr_variance=var, sr_star=sr_star, psr=psr, dsr=dsr, cscv=cscv,
        pbo_objective=pbo_objective, pbo_note=note,
        start=start, end=common.index[-1] if len(common) else pd.NaT,
        per_run=pd.DataFrame(per_run, columns=["run_id", "psr", "dsr"]),
    )  # fmt: skip


def summary_lines(res: SweepRobustness) -> list[str]:
    """The robustness block ``riskon results`` prints: trials, best Sharpe, PSR, DSR and PBO."""
    params = ", ".join(f"{k}={v}" for k, v in res.best_params.items())
    lines = [
        f"robustness of {res.name}: best by {res.objective} is {res.best_run_id[:12]} ({params})",
        f"  trials: {res.n_trials} runs of this strategy in the store ({res.n_ok} ok in this sweep); "
        f"variance of their daily Sharpe {res.sr_variance:.3g}",
        f"  best Sharpe: {res.sharpe_annual:.2f} annualised = {res.sharpe_day:.4f} per day over {res.n_obs} days "
        f"(skew {res.skew:.2f}, kurtosis {res.kurtosis:.1f})",
        f"  PSR(0) = {_pct(res.psr)}   DSR = {_pct(res.dsr)} "
        f"(expected best of {res.n_trials} luck-only trials: {res.sr_star * math.sqrt(PERIODS):.2f} annualised)",
    ]
    if res.cscv is not None:
        c = res.cscv
        lines.append(
            f"  PBO = {_pct(c.pbo)} over {c.n_combinations} CSCV combinations ({c.n_splits} blocks of "
            f"{c.n_periods // c.n_splits} days, {res.start:%Y-%m-%d}..{res.end:%Y-%m-%d}, "
            f"{c.n_strategies} distinct runs"
            + (f" after {c.duplicates} with identical returns" if c.duplicates else "")
            + f", by {res.pbo_objective}); the in-sample best scores below 0 out of sample "
            f"in {_pct(c.prob_oos_loss)}"
        )
    else:
        lines.append(f"  PBO: not computed: {res.pbo_note}")
    return lines


def _pct(x: float) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.1%}"


def logit_figure(result):
    """A histogram of the CSCV logits with the PBO region (logit <= 0) shaded and the PBO in the title.

    ``result``: a ``PBOResult`` or a ``SweepRobustness`` with CSCV. Returns a matplotlib Figure on an Agg
    canvas (``riskon.html.new_figure``), for the sweep report.
    """
    from riskon.html import new_figure

    cscv = result.cscv if isinstance(result, SweepRobustness) else result
    if cscv is None:
        raise RobustnessError(f"no CSCV result to draw: {getattr(result, 'pbo_note', '')}")
    fig = new_figure(8, 4)
    ax = fig.add_subplot(1, 1, 1)
    logits = cscv.logits
    lo, hi = float(logits.min()), float(logits.max())
    span = max(hi - lo, 1e-6)
    bins = np.linspace(lo - 0.05 * span, hi + 0.05 * span, min(40, max(10, len(np.unique(logits)))) + 1)
    ax.hist(logits[logits <= 0], bins=bins, color="#c0392b", alpha=0.8, label="logit <= 0 (overfit)")
    ax.hist(logits[logits > 0], bins=bins, color="#2e86c1", alpha=0.8, label="logit > 0")
    ax.axvline(0.0, color="black", lw=1)
    ax.set_xlabel("logit of the in-sample best's out-of-sample relative rank")
    ax.set_ylabel("CSCV combinations")
    ax.set_title(f"PBO = {cscv.pbo:.1%} ({cscv.n_combinations} combinations, {cscv.n_strategies} strategies)")
    ax.legend(loc="upper left", frameon=False)
    fig.tight_layout()
    return fig
