"""The fast sweep's NumPy reductions: what ``riskon run`` computes on its returns, trades and fills tables.

``riskon.sweeps.chunks`` gets every value from one compiled pass (``strategies.faststats.run_stats``) and
falls back on these functions where that pass does not apply: a basket's trade statistics (a position of
several legs: its pnl is pandas' group sum), and the return metrics if this NumPy ever summed in another
order than the compiled pass (``chunks._compiled_exact``). They are also the reference the tests hold the
compiled pass to: each gives, row by row, the doubles ``riskon.metrics`` gives one run alone.
"""

from __future__ import annotations

import math

import numpy as np

from strategies import fastsim

# trade_metrics_of_records reads trade records by column number: the layout of strategies.fastsim, checked here
_LAYOUT = (fastsim._POS, fastsim._COIN, fastsim._ENTRY, fastsim._EPX, fastsim._SIZE, fastsim._EFEE, fastsim._EXIT,
           fastsim._XPX, fastsim._XFEE, fastsim._REASON)  # fmt: skip
assert _LAYOUT == (0, 1, 4, 5, 6, 7, 9, 10, 11, 12), (
    "update trade_metrics_of_records to strategies.fastsim's record layout"
)
#: Metric formulas' constant (riskon.metrics.PERIODS; repeated so a worker needs no pandas import).
PERIODS = 365


def returns_block(equity: np.ndarray, cash: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Daily returns of many equity curves (one per row), each first bar against its starting cash.

    ``strategies.backtest.equity_returns`` row by row: the same division, so the same doubles. ``out``
    receives them when given.
    """
    prev = np.empty_like(equity)
    prev[:, 0] = cash
    prev[:, 1:] = equity[:, :-1]
    out = np.divide(equity, prev, out=out)
    out -= 1.0
    return out


def returns_metrics_block(returns: np.ndarray, rf: np.ndarray | None = None) -> list[dict[str, float]]:
    """``riskon.metrics.returns_metrics`` of every row of a block of daily returns, in excess of ``rf``.

    ``rf``: the risk-free asset's return over each bar (``riskon.metrics.rf_per_bar``), the same for
    every row; None is a rate of 0. Sharpe and Sortino use ``returns - rf``, as ``returns_metrics`` does.

    The same NumPy reductions taken along the rows: a reduction over the last axis of a C-contiguous
    array runs NumPy's 1-D loop on each row (pairwise sums, sequential products), so every value is the
    double ``returns_metrics`` gives for that row alone; the tests hold them equal.
    """
    m, n = returns.shape
    if n == 0:
        return [dict.fromkeys(_RETURN_METRICS, math.nan) for _ in range(m)]
    gross = 1.0 + returns
    growth = np.prod(gross, axis=1)
    excess = returns if rf is None else returns - rf
    mean = excess.mean(axis=1)
    sd = excess.std(axis=1, ddof=1) if n > 1 else np.full(m, np.nan)
    down_sq = (np.minimum(excess, 0.0) ** 2).sum(axis=1)
    wealth = np.empty((m, n + 1))
    wealth[:, 0] = 1.0
    np.cumprod(gross, axis=1, out=wealth[:, 1:])
    dd = (wealth / np.maximum.accumulate(wealth, axis=1) - 1.0).min(axis=1)
    return [metrics_from_stats(st, n) for st in zip(growth.tolist(), mean.tolist(), sd.tolist(),
                                                      down_sq.tolist(), dd.tolist(), strict=True)]  # fmt: skip


_RETURN_METRICS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "calmar")


def metrics_from_stats(st: tuple[float, ...], n: int) -> dict[str, float]:
    """returns_metrics' scalar formulas on a row's reductions (Python floats, as there)."""
    growth, mean, sd, down_sq, d = st
    cagr = growth ** (PERIODS / n) - 1.0 if growth > 0 else -1.0
    downside = math.sqrt(down_sq / n)
    root = math.sqrt(PERIODS)
    return {
        "total_return": growth - 1.0,
        "cagr": cagr,
        "sharpe": mean / sd * root if sd and sd > 0 else math.nan,
        "sortino": mean / downside * root if downside > 0 else math.nan,
        "max_drawdown": d,
        "calmar": cagr / abs(d) if d < 0 else math.nan,
    }


def returns_metrics(
    equity: np.ndarray, cash: float, rf: np.ndarray | None = None
) -> tuple[np.ndarray, dict[str, float]]:
    """One equity curve's returns and ``riskon.metrics.returns_metrics`` of them (in excess of ``rf``), bit for bit."""
    returns = returns_block(np.asarray(equity, dtype=np.float64)[None, :], np.array([float(cash)]))
    return returns[0], returns_metrics_block(returns, rf)[0]


def _us_to_days(dt: np.ndarray) -> np.ndarray:
    # pandas' Timedelta.total_seconds at microsecond resolution (whole seconds + the remainder), then days
    return (dt // 1_000_000 + (dt % 1_000_000) / 1_000_000) / 86400.0


def accounting_error(fees: float, expected: float, nan_at: int, times_us: np.ndarray, name: str) -> str | None:
    """The error line of a run whose fees are not fee rate x turnover or whose equity turns NaN, else None."""
    problems = []
    if not abs(fees - expected) <= 1e-9 + 1e-9 * abs(expected):  # np.isclose(rtol=1e-9, atol=1e-9)
        problems.append(f"fees {fees} != fee rate x turnover {expected}")
    if nan_at >= 0:
        problems.append(f"equity is NaN on {str(np.datetime64(int(times_us[nan_at]), 'us'))[:10]}")
    if problems:
        return f"RuntimeError: {name}: accounting check failed: {'; '.join(problems)}"
    return None


def trade_metrics_of_records(rec, nan_at: int, closes, times_us, fee: float, name: str) -> dict | str:
    """Exposure, trade statistics and fees of one run from its trade records, or the accounting error it fails.

    What ``run_prepared`` computes on the trades and fills tables, with the same NumPy/pandas reductions:
    a position is the legs of one entry (its pnl their pandas groupby sum), fees and turnover are summed
    over the fills in fill order (each leg's entry, then its exit). ``nan_at`` is the first bar whose
    equity is NaN, or -1.
    """
    n = closes.shape[1]
    nrec = len(rec)
    fees = expected = 0.0
    if nrec:
        is_open = rec[:, 12] == fastsim._R_OPEN
        size, epx, efee = rec[:, 6], rec[:, 5], rec[:, 7]
        any_open = bool(is_open.any())
        if any_open:
            xpx = np.where(is_open, closes[rec[:, 1].astype(np.int64), n - 1], rec[:, 10])
            xfee = np.where(is_open, 0.0, rec[:, 11])
        else:
            xpx, xfee = rec[:, 10], rec[:, 11]
        # fills in the trades' order: every leg's entry, then its exit unless it is still open
        fill = np.empty((2, nrec, 2))
        fill[0, :, 0] = efee
        fill[0, :, 1] = xfee
        fill[1, :, 0] = epx * size
        fill[1, :, 1] = xpx * size
        fill = fill.reshape(2, 2 * nrec)
        if any_open:
            keep = np.ones((nrec, 2), dtype=bool)
            keep[:, 1] = ~is_open
            fill = fill[:, keep.ravel()]
        fees = float(fill[0].sum())
        expected = fee * float(fill[1].sum())
    error = accounting_error(fees, expected, nan_at, times_us, name)
    if error is not None:
        return error
    if nrec == 0:
        return {"exposure": 0.0, "trades": 0.0, "win_rate": math.nan, "profit_factor": math.nan,
                "avg_hold_days": math.nan, "fees": fees}  # fmt: skip
    leg_pnl = size * xpx - xfee - size * epx - efee
    entry = rec[:, 4].astype(np.int64)
    exit_bar = rec[:, 9].astype(np.int64) if not any_open else np.where(is_open, n - 1, rec[:, 9]).astype(np.int64)
    pos = rec[:, 0]
    if nrec > 1 and (pos[1:] == pos[:-1]).any():  # a basket: positions of several legs
        import pandas as pd  # fast workers start without pandas: only baskets need it

        g = pd.DataFrame({"pos": pos, "pnl": leg_pnl, "entry": entry, "exit": exit_bar, "open": is_open})
        g = g.groupby("pos", sort=True).agg(pnl=("pnl", "sum"), entry=("entry", "min"), exit=("exit", "max"),
                                            open=("open", "any"))  # fmt: skip
        pnl, entry, exit_bar, is_open = (g[c].to_numpy() for c in ("pnl", "entry", "exit", "open"))
    else:
        pnl = 0.0 + leg_pnl  # a one-leg group sum
    stop = exit_bar + is_open  # held from the entry fill bar up to (not including) the exit fill bar
    if len(entry) == 1 or (entry[1:] >= stop[:-1]).all():  # positions follow one another: count their bars
        held = int((stop - entry).sum())
    else:
        mask = np.zeros(n, dtype=bool)
        for a_, b_ in zip(entry.tolist(), stop.tolist(), strict=True):
            mask[a_:b_] = True
        held = int(mask.sum())
    n_pos = len(pnl)
    won = pnl > 0
    wins, losses = pnl[won].sum(), -pnl[pnl < 0].sum()
    hold = _us_to_days(times_us[exit_bar] - times_us[entry])
    return {
        "exposure": held / n, "trades": float(n_pos), "win_rate": int(won.sum()) / n_pos,
        "profit_factor": float(wins / losses) if losses > 0 else math.inf, "avg_hold_days": float(hold.mean()),
        "fees": fees,
    }  # fmt: skip


__all__ = ["PERIODS", "returns_block", "returns_metrics", "returns_metrics_block", "trade_metrics_of_records"]
