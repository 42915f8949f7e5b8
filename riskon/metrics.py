"""Performance metrics on a calendar-day equity curve (365 periods a year).

Definitions (docs/reference/metrics.md repeats them): with daily returns r_1..r_N and the risk-free
asset's return rf_i over the same bars (``[portfolio] risk_free``; ``rf_per_bar``, i.e.
``strategies.cash.growth_per_bar``: 0 unless set), CAGR = prod(1 + r)^(365 / N) - 1;
Sharpe = mean(r - rf) / std(r - rf, ddof=1) * sqrt(365);
Sortino = mean(r - rf) / sqrt(sum(min(r - rf, 0)^2) / N) * sqrt(365);
max drawdown = min(equity / running max - 1) with the starting cash as the first peak;
Calmar = CAGR / |max drawdown|. Trade statistics are per trade, net of fees.
These are quantstats' own formulas at ``periods=365``; a test holds them equal.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from strategies.cash import growth_per_bar

PERIODS = 365

#: Display order and format of the metrics table.
METRICS = {
    "total_return": "{:.2%}",
    "cagr": "{:.2%}",
    "sharpe": "{:.2f}",
    "sortino": "{:.2f}",
    "max_drawdown": "{:.2%}",
    "calmar": "{:.2f}",
    "exposure": "{:.1%}",
    "trades": "{:.0f}",
    "win_rate": "{:.1%}",
    "profit_factor": "{:.2f}",
    "avg_hold_days": "{:.1f}",
    "fees": "{:,.2f}",
}

#: The printed name of each metric (tables in the terminal, notebooks and the docs).
LABELS = {
    "total_return": "Total return",
    "cagr": "CAGR",
    "sharpe": "Sharpe (365)",
    "sortino": "Sortino (365)",
    "max_drawdown": "Max drawdown",
    "calmar": "Calmar",
    "exposure": "Exposure",
    "trades": "Trades",
    "win_rate": "Win rate (per trade)",
    "profit_factor": "Profit factor",
    "avg_hold_days": "Avg holding days",
    "fees": "Fees paid",
    # per-run trade statistics (riskon.analysis.trade_stats.TRADE_STATS; not stored by sweeps)
    "expectancy": "Expectancy (net PnL per trade)",
    "expectancy_return": "Expectancy (return per trade)",
    "sqn": "SQN (N capped at 100)",
    "max_losing_streak": "Longest losing streak (trades)",
    "hold_days_min": "Holding days: min",
    "hold_days_p25": "Holding days: 25%",
    "hold_days_median": "Holding days: median",
    "hold_days_p75": "Holding days: 75%",
    "hold_days_max": "Holding days: max",
}


def daily_rf(rate: float) -> float:
    """The per-calendar-day rate equivalent to an annual rate: (1 + r)^(1/365) - 1."""
    return (1.0 + rate) ** (1.0 / PERIODS) - 1.0


#: What the risk-free rate may be: an annual constant, or per-bar returns of the risk-free asset.
RiskFree = float | np.ndarray | pd.Series


def rf_per_bar(index: pd.DatetimeIndex, rate: float | pd.Series, bar_length: pd.Timedelta | None = None) -> np.ndarray:
    """The risk-free asset's return over each bar of ``index`` (bar ``i`` covers ``[t_i, t_{i+1})``).

    ``rate`` is an annual constant or a yield series (annual fractions on known-at stamps,
    ``feeds.yields.load_yield``); ``strategies.cash.growth_per_bar`` applies the one convention
    (365-day calendar, the rate known at each bar's open). ``bar_length`` (the last bar's length)
    defaults to one day, riskon's calendar-day returns.
    """
    step = pd.Timedelta(days=1) if bar_length is None else bar_length
    return growth_per_bar(pd.DatetimeIndex(index), step, rate, name="risk_free")


def excess(returns: pd.Series | np.ndarray, rf: RiskFree = 0.0) -> np.ndarray:
    """``r_i - rf_i``: returns in excess of the risk-free asset's return over the same bar.

    ``rf`` is an annual constant (each day earns ``daily_rf(rf)``) or one per-bar return for each
    return (``rf_per_bar``); a constant 0 leaves the returns exactly as they are.
    """
    r = np.asarray(returns, dtype="float64")
    if isinstance(rf, pd.Series | np.ndarray):
        per_bar = np.asarray(rf, dtype="float64")
        if per_bar.shape != r.shape:
            raise ValueError(f"the risk-free returns have {per_bar.size} values for {r.size} returns")
        return r - per_bar
    return r - daily_rf(float(rf))


def rate_text(rate: float | str | None) -> str:
    """One rate in words: ``4.00% a year``, ``0%``, or ``the US3M yield`` for a yield series' symbol."""
    if isinstance(rate, str):
        return f"the {rate} yield"
    r = float(rate or 0.0)
    return "0%" if r == 0.0 else f"{r:.2%} a year"


def rates_text(portfolio: dict) -> str:
    """The rates a run used, as every page states them: ``cash rate 4.00% a year, risk-free 0%``."""
    return f"cash rate {rate_text(portfolio.get('cash_rate'))}, risk-free {rate_text(portfolio.get('risk_free'))}"


def rates_key(portfolio: dict) -> tuple[str, str]:
    """What two runs must share for their Sharpe ratios and cash to compare: (cash rate, risk-free rate)."""
    return rate_text(portfolio.get("cash_rate")), rate_text(portfolio.get("risk_free"))


def returns_metrics(returns: pd.Series, rf: RiskFree = 0.0) -> dict[str, float]:
    """CAGR, Sharpe, Sortino, max drawdown, Calmar and total return from per-day returns.

    Sharpe and Sortino are in excess of ``rf`` (see ``excess``); the other metrics are not.
    """
    r = returns.to_numpy(dtype="float64")
    n = len(r)
    if n == 0:
        return dict.fromkeys(("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "calmar"), math.nan)
    growth = float(np.prod(1.0 + r))
    cagr = growth ** (PERIODS / n) - 1.0 if growth > 0 else -1.0
    excess_r = excess(r, rf)
    sd = excess_r.std(ddof=1) if n > 1 else math.nan
    sharpe = excess_r.mean() / sd * math.sqrt(PERIODS) if sd and sd > 0 else math.nan
    downside = math.sqrt(float((np.minimum(excess_r, 0.0) ** 2).sum()) / n)
    sortino = excess_r.mean() / downside * math.sqrt(PERIODS) if downside > 0 else math.nan
    wealth = np.concatenate([[1.0], np.cumprod(1.0 + r)])
    dd = float((wealth / np.maximum.accumulate(wealth) - 1.0).min())
    calmar = cagr / abs(dd) if dd < 0 else math.nan
    return {
        "total_return": growth - 1.0,
        "cagr": cagr,
        "sharpe": float(sharpe),
        "sortino": float(sortino),
        "max_drawdown": dd,
        "calmar": calmar,
    }


def trade_metrics(trades: pd.DataFrame) -> dict[str, float]:
    """Trade count, win rate, profit factor and average holding days, per trade and net of fees."""
    n = len(trades)
    if n == 0:
        return {"trades": 0, "win_rate": math.nan, "profit_factor": math.nan, "avg_hold_days": math.nan}
    pnl = trades["pnl"].to_numpy(dtype="float64")
    wins, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    hold = (trades["exit_time"] - trades["entry_time"]).dt.total_seconds() / 86400.0
    return {
        "trades": n,
        "win_rate": float((pnl > 0).mean()),
        "profit_factor": float(wins / losses) if losses > 0 else math.inf,
        "avg_hold_days": float(hold.mean()),
    }


def metrics(
    returns: pd.Series,
    trades: pd.DataFrame | None = None,
    exposure: float = math.nan,
    fees: float = 0.0,
    rf: RiskFree = 0.0,
) -> dict[str, float]:
    """All metrics of one run, in ``METRICS`` order; Sharpe and Sortino in excess of ``rf`` (``excess``)."""
    out = returns_metrics(returns, rf)
    out["exposure"] = exposure
    out.update(trade_metrics(trades) if trades is not None else {})
    out["fees"] = fees
    return {k: out.get(k, math.nan) for k in METRICS}


def format_metric(name: str, value: float) -> str:
    """A metric as the tables print it."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return METRICS.get(name, "{}").format(value)


def price_text(price: float) -> str:
    """A price with cents when large, 6 significant digits when small (altcoins)."""
    return f"{price:,.2f}" if abs(price) >= 100 else f"{price:.6g}"
