"""Performance metrics on a calendar-day equity curve (365 periods a year).

Definitions (docs/reference/metrics.md repeats them): with daily returns r_1..r_N,
CAGR = prod(1 + r)^(365 / N) - 1; Sharpe = mean(r - rf_d) / std(r - rf_d, ddof=1) * sqrt(365);
Sortino = mean(r - rf_d) / sqrt(sum(min(r - rf_d, 0)^2) / N) * sqrt(365);
max drawdown = min(equity / running max - 1) with the starting cash as the first peak;
Calmar = CAGR / |max drawdown|. Trade statistics are per trade, net of fees.
These are quantstats' own formulas at ``periods=365``; a test holds them equal.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

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
}


def daily_rf(rate: float) -> float:
    """The per-calendar-day rate equivalent to an annual rate: (1 + r)^(1/365) - 1."""
    return (1.0 + rate) ** (1.0 / PERIODS) - 1.0


def returns_metrics(returns: pd.Series, rf: float = 0.0) -> dict[str, float]:
    """CAGR, Sharpe, Sortino, max drawdown, Calmar and total return from per-day returns."""
    r = returns.to_numpy(dtype="float64")
    n = len(r)
    if n == 0:
        return dict.fromkeys(("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "calmar"), math.nan)
    growth = float(np.prod(1.0 + r))
    cagr = growth ** (PERIODS / n) - 1.0 if growth > 0 else -1.0
    excess = r - daily_rf(rf)
    sd = excess.std(ddof=1) if n > 1 else math.nan
    sharpe = excess.mean() / sd * math.sqrt(PERIODS) if sd and sd > 0 else math.nan
    downside = math.sqrt(float((np.minimum(excess, 0.0) ** 2).sum()) / n)
    sortino = excess.mean() / downside * math.sqrt(PERIODS) if downside > 0 else math.nan
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
    rf: float = 0.0,
) -> dict[str, float]:
    """All metrics of one run, in ``METRICS`` order."""
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
