"""Trade analytics: per-leg excursions, bars held, days and return; per-run expectancy, SQN, streaks, holding times.

Computed after the backtest, from its trade table (one row per leg, ``strategies.backtest.TRADE_COLUMNS``)
and the target prices on the master calendar (``Result.assets``): both engines produce the same
table, so both get the same analytics, and nothing here changes a fill or a number of the run.

Per leg (``trade_analytics``; docs/reference/metrics.md, "Trade analytics"):

- ``days``: whole calendar days from the entry fill bar to the exit fill bar, ``(exit_time -
  entry_time).days`` (what ``riskon run`` prints);
- ``return``: net return including both fees, ``pnl / (size * entry_price + entry_fee)``;
- ``mae`` / ``mfe``: the lowest and highest price the leg saw, as fractions of the entry fill price
  (``mae <= 0 <= mfe``), with the levels in ``mae_price`` / ``mfe_price``. The prices are the two fills
  plus the close, high and low (where the bar has them; else its close alone) of every bar from the
  entry fill bar to the bar before the exit fill bar: an exit fills at the exit bar's open (or inside
  it, for an intrabar stop), so that bar's high and low come after it. A leg sold at a bar's *close*
  (``data_end``) or marked at the last close (an open trade) was held through that whole bar, so its
  high and low count; a same-bar ``data_end`` exit therefore uses its one bar's high, low and close;
- ``bars_held``: the bars those excursions use (an exit at the next open holds 1 bar).

Per run (``trade_stats``), per *position* (a basket's legs summed, as ``Trades`` and ``Win rate``
count them; an open position counts, marked at the last close): expectancy in money and in return,
SQN = sqrt(min(N, 100)) * mean / std(ddof=1) of the position returns, the longest run of consecutive
losing positions (net PnL < 0) and the quartiles of the holding days (fractional, as ``Avg holding days``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

#: Per-run statistics and their display formats, in display order (labels: ``riskon.metrics.LABELS``).
TRADE_STATS = {
    "expectancy": "{:,.2f}",
    "expectancy_return": "{:+.2%}",
    "sqn": "{:.2f}",
    "max_losing_streak": "{:.0f}",
    "hold_days_min": "{:.1f}",
    "hold_days_p25": "{:.1f}",
    "hold_days_median": "{:.1f}",
    "hold_days_p75": "{:.1f}",
    "hold_days_max": "{:.1f}",
}

#: Per-leg columns ``trade_analytics`` appends to the trade table, in order.
TRADE_ANALYTICS = ["days", "return", "bars_held", "mae", "mfe", "mae_price", "mfe_price"]

#: N at which SQN stops growing with the number of trades (Van Tharp's cap).
SQN_CAP = 100

#: Exit reasons filled at the exit bar's close rather than its open (the whole bar was held).
CLOSE_EXITS = ("data_end",)


def trade_days(trades: pd.DataFrame) -> pd.Series:
    """Whole calendar days from each leg's entry fill bar to its exit fill bar (the terminal's ``days``)."""
    if trades.empty:  # a run without trades: its empty table's columns carry no dtype
        return pd.Series([], index=trades.index, dtype="int64", name="days")
    return (trades["exit_time"] - trades["entry_time"]).dt.days.astype("int64").rename("days")


def trade_returns(trades: pd.DataFrame) -> pd.Series:
    """Each leg's net return including both fees: pnl over what the entry cost (size x price + fee)."""
    cost = trades["size"] * trades["entry_price"] + trades["entry_fee"]
    return (trades["pnl"] / cost).astype("float64").rename("return")


def excursions(trades: pd.DataFrame, assets: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per leg: ``bars_held``, ``mae``, ``mfe`` (fractions of the entry fill price) and their price levels.

    ``assets`` are the target prices on the master calendar (``Result.assets``), keyed by the
    trades' ``asset``; the window rule is in the module docstring.
    """
    cols = ["bars_held", "mae", "mfe", "mae_price", "mfe_price"]
    if trades.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "bars_held" else "float64") for c in cols})
    arrays = {
        name: tuple(
            f[c].to_numpy(dtype="float64") if c in f else np.full(len(f), np.nan) for c in ("high", "low", "close")
        )
        for name, f in assets.items()
    }
    rows = []
    for t in trades.itertuples(index=False):
        frame = assets[t.asset]
        a, b = frame.index.get_loc(t.entry_time), frame.index.get_loc(t.exit_time)
        end = b + 1 if (t.open or t.exit_reason in CLOSE_EXITS) else b
        high, low, close = (x[a:end] for x in arrays[t.asset])
        seen = np.concatenate([[t.entry_price, t.exit_price], close, high, low])
        lo, hi = float(np.nanmin(seen)), float(np.nanmax(seen))
        rows.append((end - a, lo / t.entry_price - 1.0, hi / t.entry_price - 1.0, lo, hi))
    out = pd.DataFrame(rows, columns=cols, index=trades.index)
    out["bars_held"] = out["bars_held"].astype("int64")
    return out


def trade_analytics(trades: pd.DataFrame, assets: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The trade table with ``TRADE_ANALYTICS`` appended: days, return, bars held, MAE/MFE and their levels."""
    return pd.concat([trades, trade_days(trades), trade_returns(trades), excursions(trades, assets)], axis=1)


def csv_trades(trades: pd.DataFrame, assets: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """What ``trades.csv`` holds: ``trade_analytics``, with ``signal_session`` as its date (a day, not a moment).

    Every other timestamp is a UTC moment; the writer gives it its offset (``+0000``).
    """
    out = trade_analytics(trades, assets)
    out["signal_session"] = [("" if pd.isna(s) else f"{s:%Y-%m-%d}") for s in out["signal_session"]]
    return out


def positions(trades: pd.DataFrame) -> pd.DataFrame:
    """One row per position (legs summed), in position order: net ``pnl``, ``return`` and ``hold_days``.

    ``return`` is the summed pnl over the summed entry cost of the legs; ``hold_days`` runs from the
    first entry fill to the last exit fill in fractional days (the measure of ``Avg holding days``).
    """
    cost = trades["size"] * trades["entry_price"] + trades["entry_fee"]
    g = trades.assign(cost=cost).groupby("position", sort=True)
    hold = (g["exit_time"].max() - g["entry_time"].min()).dt.total_seconds() / 86400.0
    pnl = g["pnl"].sum()
    return pd.DataFrame({"pnl": pnl, "return": pnl / g["cost"].sum(), "hold_days": hold}).astype("float64")


def longest_losing_streak(pnl: np.ndarray) -> int:
    """The most consecutive entries of ``pnl`` below zero (0 when none is)."""
    best = run = 0
    for loss in np.asarray(pnl) < 0:
        run = run + 1 if loss else 0
        best = max(best, run)
    return best


def sqn(returns: np.ndarray) -> float:
    """System quality number: sqrt(min(N, 100)) x mean / std (ddof=1) of per-trade returns; NaN below 2 trades."""
    r = np.asarray(returns, dtype="float64")
    if len(r) < 2:
        return math.nan
    sd = float(r.std(ddof=1))
    return math.sqrt(min(len(r), SQN_CAP)) * float(r.mean()) / sd if sd > 0 else math.nan


def trade_stats(trades: pd.DataFrame) -> dict[str, float]:
    """The per-run statistics of ``TRADE_STATS``, per position and net of fees (NaN without trades)."""
    if trades.empty:
        return {k: (0.0 if k == "max_losing_streak" else math.nan) for k in TRADE_STATS}
    pos = positions(trades)
    hold = pos["hold_days"].to_numpy()
    q = np.percentile(hold, [0, 25, 50, 75, 100])
    return {
        "expectancy": float(pos["pnl"].mean()),
        "expectancy_return": float(pos["return"].mean()),
        "sqn": sqn(pos["return"].to_numpy()),
        "max_losing_streak": float(longest_losing_streak(pos["pnl"].to_numpy())),
        **{f"hold_days_{k}": float(v) for k, v in zip(("min", "p25", "median", "p75", "max"), q, strict=True)},
    }


def trade_stats_frame(trades: pd.DataFrame, columns: list[str] | pd.Index) -> pd.DataFrame:
    """``trade_stats`` as rows under ``metrics.csv``'s columns: the first column holds them, the others NaN."""
    frame = pd.DataFrame(np.nan, index=pd.Index(list(TRADE_STATS), name="metric"), columns=list(columns))
    frame.iloc[:, 0] = list(trade_stats(trades).values())
    return frame


def format_trade_stat(name: str, value: float) -> str:
    """A per-run trade statistic as the tables print it (``-`` when undefined)."""
    if value is None or math.isnan(value):
        return "-"
    return TRADE_STATS[name].format(value)
