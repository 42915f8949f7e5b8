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
``mean / std(ddof=1) * sqrt(365)`` of the stored daily returns in excess of the run's risk-free rate
(``[portfolio] risk_free``, 0 unless set; ``excess_returns``), so the per-day ratio used here is that
metric divided by sqrt(365), and PSR, DSR and a Sharpe- or Sortino-scored PBO use the same excess returns.

The standard normal comes from ``statistics.NormalDist`` (no SciPy dependency).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import pandas as pd

from riskon.analysis import robustness_cache
from riskon.analysis.overfitting import (
    RETURN_OBJECTIVES,
    PBOResult,
    RobustnessError,
    log_growth,
    pbo,
    pbo_from_blocks,
    sharpe,
    sortino,
)
from riskon.config import parse
from riskon.metrics import PERIODS, rf_per_bar
from riskon.runner import config_rate
from riskon.sweeps.keys import entry_rules
from riskon.sweeps.row_fields import BLOCK_STATS, N_BLOCKS, moments_of, unpack_blocks
from riskon.sweeps.spec import apply
from riskon.sweeps.store import short_name
from riskon.sweeps.sweep_reads import runs_from

#: The Euler–Mascheroni constant of the False Strategy theorem.
EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


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
    return moments_of(_clean(returns))


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
    n_trials: int  # distinct trials: runs with identical daily returns count once
    sr_variance: float
    sr_star: float
    psr: float
    dsr: float
    cscv: PBOResult | None
    pbo_objective: str
    pbo_note: str
    start: pd.Timestamp  # first and last day CSCV used (the common date range of the sweep's runs)
    end: pd.Timestamp
    per_run: pd.DataFrame = field(repr=False, default_factory=lambda: pd.DataFrame(columns=["run_id", "psr", "dsr"]))
    strategy: str = ""  # the rule(s), index and targets the trials share (``strategy_text``)
    n_trial_runs: int = 0  # ok runs behind the distinct trials
    trials_key: str = ""  # ``trials_key`` of the distinct trials the DSR was computed over

    @property
    def trials_text(self) -> str:
        """The trial count and what it counts, as every report prints it."""
        return (
            f"{self.n_trials} distinct runs of {self.strategy} in the store (ok runs with identical daily "
            f"returns count once; {self.n_trial_runs} ok runs in all)"
        )

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
            "kurtosis": self.kurtosis, "n_trials": self.n_trials, "n_trial_runs": self.n_trial_runs,
            "strategy": self.strategy, "trials_key": self.trials_key, "sr_variance": self.sr_variance,
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


def excess_returns(runs: pd.DataFrame, config_text: str) -> list[np.ndarray]:
    """Each stored run's daily returns minus the risk-free asset's return over each day (``riskon.metrics``).

    A run's risk-free rate is its sweep's ``[portfolio] risk_free`` with the run's own parameters applied
    (a yield symbol is read from the default cache, with the run's publication lag). Runs without one
    keep their returns exactly as stored.
    """
    base = {k: v for k, v in tomllib.loads(config_text).items() if k != "sweep"} if (config_text or "").strip() else {}
    out, memo = [], {}
    for r in runs.itertuples():
        returns = np.asarray(r.returns, dtype="float64")
        raw = apply(base, json.loads(r.params) if r.params else {})
        rate = (raw.get("portfolio") or {}).get("risk_free", 0.0)
        if not isinstance(rate, str) and float(rate) == 0.0:
            out.append(returns)
            continue
        lag = float((raw.get("data") or {}).get("publication_lag_hours", 0.0))
        key = (rate, lag, str(r.returns_start), len(returns))
        if key not in memo:
            days = pd.date_range(pd.Timestamp(r.returns_start).normalize(), periods=len(returns), freq="D", tz="UTC")
            cfg = parse(raw, "the run's config")
            memo[key] = rf_per_bar(days, config_rate(cfg, "risk_free"))
        out.append(returns - memo[key])
    return out


def _sweep_info(store, sweep_id: str) -> tuple[str, dict, str, str]:
    """The sweep's name, spec, strategy key and config text."""
    with store.connect(read_only=True) as con:
        row = con.execute(
            "SELECT name, spec, strategy_key, config_text FROM sweeps WHERE sweep_id = ?", [sweep_id]
        ).fetchone()
    if row is None:
        raise RobustnessError(f"no sweep {sweep_id!r} in {store.path}")
    return row[0], json.loads(row[1]), row[2], row[3]


def strategy_text(config_text: str) -> str:
    """What a strategy key stands for, from a sweep's config: its entry rule(s), index and traded assets.

    ``"ath_confirmed on ^RUT -> BTC-USD"``; ``"(config not readable)"`` when the text no longer parses
    (a rule it names was removed since, or a test wrote no config).
    """
    if not (config_text or "").strip():
        return "(config not readable)"
    try:
        cfg = parse(tomllib.loads(config_text), "the sweep's config")
    except ValueError:  # ConfigError or TOMLDecodeError: an unknown rule, an old layout
        return "(config not readable)"
    return f"{' + '.join(entry_rules(cfg))} on {cfg.data['index']} -> {', '.join(cfg.target['assets'])}"


def trials_key(fingerprints) -> str:
    """A key for a set of distinct trials: the SHA-256 of their sorted return fingerprints (``Store.trials``).

    The store keeps a sweep's robustness under this key (``riskon.analysis.robustness_cache``), so that
    another sweep adding trials makes it stale.
    """
    return hashlib.sha256(",".join(sorted(str(int(f)) for f in fingerprints)).encode()).hexdigest()[:16]


def _ok(con, sweep_id: str) -> str:
    """``FROM ... WHERE ...`` of a sweep's ok runs with at least two daily returns (the runs its statistics are
    over), one ``?`` for the sweep id: by the runs' own column when that is the same set (``runs_from``)."""
    return f"{runs_from(con, sweep_id)} AND r.status = 'ok' AND r.n_days > 1"


#: The stored block statistics each CSCV objective adds up (``riskon.sweeps.row_fields.BLOCK_STATS``).
_STATS_OF = {sharpe: ("excess", "excess_sq"), sortino: ("excess", "excess_down_sq"), log_growth: ("log_growth",)}


def sweep_robustness(store, sweep_id: str, n_splits: int = 16, per_run: bool = False) -> SweepRobustness:
    """PSR(0) and DSR of a stored sweep's best run, and PBO over the sweep's runs, from their stored fields.

    * Best run: the best ok run by the sweep's own objective and direction (ties: the smallest run id).
    * Trials: the distinct trials of the same strategy (``strategy_key``: index, targets, entry rules)
      in the store, across sweeps (``Store.trials_summary``): every ok run linked to a sweep of that key,
      runs with identical daily returns (same digest) counted once, however many sweeps or run ids share them.
    * Sharpe variance: sample variance (ddof=1) of those trials' per-day Sharpe ratios (stored annualised
      Sharpe / sqrt(365)), computed in the database; trials whose Sharpe is undefined count but do not
      enter the variance.
    * PSR(0) and DSR from the best run's stored moments of its excess returns (``row_fields``).
    * PBO by CSCV scored by the sweep's objective when it is a function of daily returns (sharpe, sortino,
      cagr, total_return), else by Sharpe (``pbo_objective``). When every run has the same dates and
      ``n_splits`` is the stored ``N_BLOCKS``, from the stored per-block sums (``pbo_from_blocks``, streamed
      from the database, one S × N array per statistic): the same doubles as ``pbo`` on the returns matrix.
      Otherwise (other split counts, runs over different date ranges) the runs' returns are rebuilt and
      ``pbo`` runs on their common dates, as before the store kept sums.

    The result is stored in the store, keyed by the trials and the sweep's ok runs (``robustness_cache``),
    and read back until they change. ``per_run`` adds each ok run's PSR(0) and DSR (``per_run``).
    """
    name, spec, key, config_text = _sweep_info(store, sweep_id)
    objective, direction = spec.get("objective", "sharpe"), spec.get("direction", "maximize")
    n_trials, n_trial_runs, var, tkey = store.trials_summary(key)
    with store.connect(read_only=True) as con:
        ok = _ok(con, sweep_id)
        n_ok, n_dates = con.execute(f"SELECT count(*), count(DISTINCT (r.returns_start, r.n_days)) {ok}",
                                    [sweep_id]).fetchone()  # fmt: skip
    if n_ok < 2:
        raise RobustnessError(f"sweep {name!r} has {n_ok} ok run(s) with stored returns; need at least 2")
    sr_star = expected_max_sharpe(n_trials, var) if not math.isnan(var) else math.nan
    cache_key = f"{tkey}:{n_ok}"
    hit = robustness_cache.load(store, sweep_id, n_splits, cache_key)
    if hit is None:
        fields, cscv = _compute(store, sweep_id, name, objective, direction, n_splits, config_text, n_dates, sr_star)
        robustness_cache.save(store, sweep_id, n_splits, cache_key, fields, cscv)
    else:
        fields, cscv = hit
    res = SweepRobustness(
        sweep_id=sweep_id, name=name, objective=objective, direction=direction, n_ok=n_ok, n_trials=n_trials,
        sr_variance=var, sr_star=sr_star, cscv=cscv, strategy=strategy_text(config_text), n_trial_runs=n_trial_runs,
        trials_key=tkey, **fields,
    )  # fmt: skip
    if not per_run:
        return res
    with store.connect(read_only=True) as con:
        ok = _ok(con, sweep_id)
        rows = con.execute(f"SELECT r.run_id, r.sr_day, r.skew, r.kurt, r.n_days {ok} ORDER BY r.run_id",
                           [sweep_id]).fetchall()  # fmt: skip
    table = pd.DataFrame(
        [{"run_id": rid, "psr": psr_from_moments(*_m(s, k, g3, g4), 0.0), "dsr": psr_from_moments(*_m(s, k, g3, g4),
          sr_star)} for rid, s, g3, g4, k in rows],
        columns=["run_id", "psr", "dsr"],
    )  # fmt: skip
    return dataclasses.replace(res, per_run=table)


def _m(sr, n, skew, kurt) -> tuple[float, int, float, float]:
    """Stored moments (NULL as NaN) in ``psr_from_moments``' order."""

    def num(v) -> float:
        return math.nan if v is None else float(v)

    return num(sr), int(n), num(skew), num(kurt)


def _compute(store, sweep_id, name, objective, direction, n_splits, config_text, n_dates, sr_star) -> tuple:
    """The fields of ``SweepRobustness`` that depend on the sweep's runs, and its CSCV result."""
    order = "ASC" if direction == "minimize" else "DESC"
    with store.connect(read_only=True) as con:
        ok = _ok(con, sweep_id)
        best = con.execute(
            f"SELECT r.run_id, r.params, r.sr_day, r.skew, r.kurt, r.n_days {ok} AND r.{objective} IS NOT NULL "
            f"AND NOT isnan(r.{objective}) ORDER BY r.{objective} {order}, r.run_id LIMIT 1",
            [sweep_id],
        ).fetchone()
    if best is None:
        raise RobustnessError(f"no run of sweep {name!r} has a {objective} value")
    run_id, params_json, *mom = best
    sr, n_obs, skew, kurt = _m(*mom[:1], mom[3], *mom[1:3])
    if objective in RETURN_OBJECTIVES and direction == "maximize":
        pbo_objective, fn = objective, RETURN_OBJECTIVES[objective]
    else:
        pbo_objective, fn = "sharpe", sharpe
    try:
        if n_splits == N_BLOCKS and n_dates == 1:
            cscv, start, end = _streamed_cscv(store, sweep_id, fn, n_splits)
        else:
            try:
                cscv, start, end = _rebuilt_cscv(store, sweep_id, fn, n_splits, config_text, pbo_objective)
            except RobustnessError:
                raise
            except (ValueError, RuntimeError) as e:  # ConfigError, DataError, StoreError: not rebuildable
                reason = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise RobustnessError(
                    f"with {n_splits} splits or runs over different dates CSCV needs the runs' returns rebuilt, "
                    f"and they could not be: {reason}"
                ) from None
        note = ""
    except RobustnessError as e:
        cscv, note, start, end = None, str(e), pd.NaT, pd.NaT
    raw = json.loads(params_json)
    fields = {
        "best_run_id": str(run_id), "best_params": {short_name(k, list(raw)): v for k, v in raw.items()},
        "n_obs": n_obs, "sharpe_day": sr, "skew": skew, "kurtosis": kurt, "psr": psr_from_moments(sr, n_obs, skew,
        kurt, 0.0), "dsr": psr_from_moments(sr, n_obs, skew, kurt, sr_star), "pbo_objective": pbo_objective,
        "pbo_note": note, "start": start, "end": end,
    }  # fmt: skip
    return fields, cscv


def _streamed_cscv(store, sweep_id: str, fn, n_splits: int) -> tuple[PBOResult, pd.Timestamp, pd.Timestamp]:
    """CSCV from the stored block sums of the sweep's distinct runs (one calendar), read a batch at a time."""
    want = [BLOCK_STATS.index(k) for k in _STATS_OF[fn]]
    with store.connect(read_only=True) as con:
        ok = _ok(con, sweep_id)
        n_ok, start, n_days, missing = con.execute(
            f"SELECT count(*), min(r.returns_start), min(r.n_days), count(*) FILTER (WHERE r.blocks IS NULL) {ok}",
            [sweep_id],
        ).fetchone()
        if missing:
            raise RobustnessError(
                f"PBO with {n_splits} splits needs at least {2 * n_splits} periods (2 per block) with every "
                f"strategy present, got {n_days}; use fewer splits"
            )
        con.execute(f"SELECT any_value(r.blocks) AS blocks {ok} GROUP BY r.digest, r.blocks", [sweep_id])
        # a batch of distinct runs at a time, written straight into one S × N array per statistic
        blocks, n = [np.empty((n_splits, int(n_ok))) for _ in want], 0
        while batch := con.fetchmany(65_536):
            sums = unpack_blocks([b for (b,) in batch], n_splits)
            for out, k in zip(blocks, want, strict=True):
                out[:, n : n + len(batch)] = sums[:, k, :].T
            n += len(batch)
    blocks = [b if n == b.shape[1] else np.ascontiguousarray(b[:, :n]) for b in blocks]  # runs with identical sums
    block = int(n_days) // n_splits
    skip = int(n_days) - block * n_splits
    cscv = pbo_from_blocks(blocks, block, fn, duplicates=int(n_ok) - n, dropped_rows=skip)
    first = pd.Timestamp(start).normalize()
    return cscv, first + pd.Timedelta(days=skip), first + pd.Timedelta(days=int(n_days) - 1)


def _rebuilt_cscv(store, sweep_id, fn, n_splits, config_text, pbo_objective) -> tuple:
    """CSCV over the runs' rebuilt returns on their common dates (other split counts, several date ranges)."""
    runs = store.runs(sweep_id)
    ok = runs[(runs["status"] == "ok") & (runs["n_days"] > 1)].copy()
    ok["returns"] = store.rebuilt_returns(ok.to_dict("records"))
    excess = pd.Series(excess_returns(ok, config_text), index=ok.index, dtype=object)
    frame = returns_matrix(ok.assign(returns=excess) if pbo_objective in ("sharpe", "sortino") else ok)
    common = frame.dropna()
    cscv = pbo(common, n_splits=n_splits, objective=fn)
    return cscv, common.index[len(common) - cscv.n_periods], common.index[-1]


def summary_lines(res: SweepRobustness) -> list[str]:
    """The robustness block ``riskon results`` prints: trials, best Sharpe, PSR, DSR and PBO."""
    params = ", ".join(f"{k}={v}" for k, v in res.best_params.items())
    lines = [
        f"robustness of {res.name}: best by {res.objective} is {res.best_run_id[:12]} ({params})",
        f"  trials: {res.trials_text}; {res.n_ok} ok runs in this sweep; "
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
            + (f", exact in-sample ties shared in {c.tied}" if c.tied else "")
            + f", by {res.pbo_objective}); the in-sample best scores below 0 out of sample "
            f"in {_pct(c.prob_oos_loss)}"
        )
    else:
        lines.append(f"  PBO: not computed: {res.pbo_note}")
    return lines


def _pct(x: float) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.1%}"
