"""The random-entry null of a run (DESIGN.md §6): its trades at random dates, as a distribution.

Each draw keeps the run's positions — the same count and the same holding
period of each in bars — and places them at random, non-overlapping entry
bars within the run's dates (seeded, so a draw is reproducible). A position
occupies its entry fill bar through its exit fill bar; the next one may fill
at the earliest on the bar after (as the strategy can re-enter the bar after an
exit fill). Placements are uniform over all such arrangements: the holding
periods are shuffled and the free bars split into gaps by a uniform draw
("stars and bars").

Every draw is filled exactly like the strategy (the parity contract): decision
at the close of the bar before the entry fill, buy at ``open·(1+slippage)`` with
``size = budget / n / (price · (1 + fee)) · (1 − SIZE_HAIRCUT)`` where the budget is the
run's own sizing rule at the decision (``strategies.sizing``: a fraction of equity, a
volatility-targeted share, or a notional capped at the equity; the liquidity cap too),
idle cash earns the run's cash rate at each close (``strategies.cash``); sell at the
exit bar's ``open·(1−slippage)`` with the fee;
a coin whose data ends inside a holding period is sold at its last close with
the fee, and a position still held on the last bar is marked at that close
without a fee. The metrics are a run's (``riskon.metrics``) on the draw's equity
and positions.

Holding period of a position: from its entry fill bar to its exit fill bar; a
leg sold at a coin's last close (``data_end``) counts through that close (one
bar more), an open position through the last bar. Exits are by time only: the
null asks whether the run's *timing* beats chance, not its exit rules.

Baskets and top-k: a draw applies the run's own target rule at the random
decision bar — an equal-weight basket of the configured coins that have a
price on the decision and fill bars, or the top k of them by trailing momentum
— rather than replaying the coins of the original position (which may not
trade at the random date). Random entries are drawn only from the stretch at
the end of the data where every decision bar has at least one eligible coin
(with vol_target sizing: where every eligible coin has the lookback's history),
so no draw loses or skips a position.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numba import njit

from riskon.metrics import METRICS, metrics, returns_metrics
from strategies.cash import run_growth
from strategies.fastsim import _vol_fraction, market_arrays
from strategies.sizing import SIZE_HAIRCUT, SIZING

#: Metrics ``null_summary`` compares; for every one of them a higher value is better
#: (max_drawdown is negative: closer to zero is better).
SUMMARY_METRICS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "calmar", "win_rate")


def holding_periods(result) -> tuple[np.ndarray, np.ndarray]:
    """Per position of a run: its entry fill bar and its holding period in bars (see the module docstring)."""
    trades = result.trades
    n = len(result.bars)
    if trades.empty:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    index = result.bars.index
    entry = index.get_indexer(trades["entry_time"])
    exit_ = index.get_indexer(trades["exit_time"])
    if (entry < 0).any() or (exit_ < 0).any():
        raise ValueError("the run's trades are not on its bars' calendar")
    reason = trades["exit_reason"].to_numpy()
    end = np.where(reason == "open", n, np.where(reason == "data_end", exit_ + 1, exit_))
    legs = pd.DataFrame({"position": trades["position"].to_numpy(), "entry": entry, "end": end})
    g = legs.groupby("position", sort=True)
    first, last = g["entry"].min().to_numpy(), g["end"].max().to_numpy()
    return first.astype(np.int64), (last - first).astype(np.int64)


def _eligible_start(
    arrays: dict[str, np.ndarray], mode: str, momentum_days: int, vol_lookback: int | None = None
) -> int:
    """The first entry fill bar from which every later decision bar has at least one eligible coin.

    With ``vol_lookback`` (vol_target sizing) every eligible coin must also have a close that many bars
    before the decision, so no random entry is skipped for an unknown volatility.
    """
    first, last = arrays["first"], arrays["last"]
    n = arrays["closes"].shape[1]
    dec = np.arange(n - 1)  # decision bars that have a fill bar after them
    ok = (first[:, None] <= dec[None, :]) & (dec[None, :] + 1 <= last[:, None])
    if mode == "top_k":
        ok &= first[:, None] <= dec[None, :] - momentum_days
    bad_dec = ~ok.any(axis=0)
    if vol_lookback is not None:
        bad_dec |= (ok & (first[:, None] > dec[None, :] - vol_lookback)).any(axis=0)
    bad = np.flatnonzero(bad_dec)
    return int(bad[-1]) + 2 if len(bad) else 1


def placements(result, n: int = 500, seed: int = 0) -> pd.DataFrame:
    """The random positions of ``n`` draws: one row per (draw, position), in time order within a draw.

    Columns: ``draw``, ``position``, ``entry_bar`` (fill), ``exit_bar`` (fill; ``len(bars)`` means held to
    the end and marked open), ``hold_bars``, ``entry_time``, ``exit_time`` (the exit fill bar, or the
    last bar for a position held to the end). Seeded with ``numpy.random.default_rng(seed)``.
    """
    starts, lengths = holding_periods(result)
    bars = result.bars
    n_bars = len(bars)
    k = len(lengths)
    cols = ["draw", "position", "entry_bar", "exit_bar", "hold_bars", "entry_time", "exit_time"]
    if k == 0 or n <= 0:
        return pd.DataFrame(columns=cols)
    p = result.backtest.params
    lookback = int(p.vol_lookback) if p.sizing == "vol_target" else None
    w0 = _eligible_start(market_arrays(bars, result.assets), p.mode, p.momentum_days, lookback)
    slots = n_bars + 1 - w0  # bars w0 .. n_bars (the last one virtual: held to the end)
    gap = slots - int((lengths + 1).sum())
    if gap < 0:
        raise ValueError(
            f"the run's {k} positions ({int(lengths.sum())} bars held) do not fit between bar {w0} and the end "
            f"without overlapping; no random placement exists"
        )
    rng = np.random.default_rng(seed)
    entries = np.empty((n, k), dtype=np.int64)
    held = np.empty((n, k), dtype=np.int64)
    for d in range(n):
        order = rng.permutation(k)
        chosen = np.sort(rng.choice(gap + k, size=k, replace=False))
        blocks = lengths[order] + 1
        entries[d] = w0 + (chosen - np.arange(k)) + np.concatenate([[0], np.cumsum(blocks)[:-1]])
        held[d] = lengths[order]
    exits = entries + held
    index = bars.index
    return pd.DataFrame(
        {
            "draw": np.repeat(np.arange(n), k),
            "position": np.tile(np.arange(k), n),
            "entry_bar": entries.ravel(),
            "exit_bar": exits.ravel(),
            "hold_bars": held.ravel(),
            "entry_time": index[entries.ravel()],
            "exit_time": index[np.minimum(exits.ravel(), n_bars - 1)],
        }
    )


@njit(cache=True)
def _choose(closes, first, last, dec, top_k, k, m, chosen):
    """The run's target rule at decision bar ``dec``: fills ``chosen``, returns how many coins it picked."""
    n_coins = closes.shape[0]
    n_chosen = 0
    for j in range(n_coins):
        chosen[j] = False
    if top_k:
        moms = np.full(n_coins, np.inf)
        for j in range(n_coins):
            if first[j] <= dec and dec + 1 <= last[j] and first[j] <= dec - m:
                moms[j] = -(closes[j, dec] / closes[j, dec - m] - 1.0)
        order = np.argsort(moms, kind="mergesort")
        for q in range(n_coins):
            j = order[q]
            if moms[j] == np.inf or n_chosen >= k:
                break
            chosen[j] = True
            n_chosen += 1
    else:
        for j in range(n_coins):
            if first[j] <= dec and dec + 1 <= last[j]:
                chosen[j] = True
                n_chosen += 1
    return n_chosen


def _vol_shares(arrays: dict[str, np.ndarray], p, decisions: np.ndarray) -> np.ndarray:
    """The vol-targeted share of equity at each decision bar used (NaN elsewhere), by the engine's own formula.

    Computed here, outside ``_draws``, with ``strategies.fastsim``'s compiled function: numba's on-disk cache
    of ``_draws`` is keyed on this file alone, so it must call no other module's compiled code.
    """
    closes, first, last = arrays["closes"], arrays["first"], arrays["last"]
    share = np.full(closes.shape[1], np.nan)
    chosen = np.empty(closes.shape[0], dtype=np.bool_)
    for dec in np.unique(decisions):
        n_chosen = _choose(closes, first, last, int(dec), p.mode == "top_k", int(p.k), int(p.momentum_days), chosen)
        if n_chosen:
            share[dec] = _vol_fraction(closes, chosen, int(dec), int(p.vol_lookback), n_chosen, float(p.vol_target),
                                       float(p.vol_cap))  # fmt: skip
    return share


@njit(cache=True)
def _draws(
    opens, closes, volumes, first, last, entries, exits, fraction, fee, slip, cash0, top_k, k, m, liq_cap,
    sizing, share, notional, growth, equity, pnl, pos_end, fees,
):  # fmt: skip
    """Fill every draw's positions like the strategy; write equity, per-position pnl and end bars, fees.

    ``sizing``: 0 fraction, 1 vol_target (``share``: the share of equity each decision bar buys), 2 notional
    (``strategies.sizing.SIZING``); ``growth``: what cash held through each bar earns by its close
    (``strategies.cash.run_growth``), credited as the strategy does.
    """
    n_coins, n = closes.shape
    n_draws, n_pos = entries.shape
    sizes = np.zeros(n_coins)
    costs = np.zeros(n_coins)  # entry notional + entry fee per held leg
    chosen = np.zeros(n_coins, dtype=np.bool_)
    for d in range(n_draws):
        cash = cash0
        total_fees = 0.0
        nxt = 0  # next position to enter
        cur = -1  # position held (or whose exit is pending)
        for j in range(n_coins):
            sizes[j] = 0.0
        for i in range(n):
            # -- the open: exit fill, then entry fill
            if cur >= 0 and exits[d, cur] == i:
                for j in range(n_coins):
                    if sizes[j] > 0.0:
                        pos_end[d, cur] = i
                        price = opens[j, i] * (1.0 - slip)
                        fee_amt = sizes[j] * fee * price
                        cash += sizes[j] * price - fee_amt
                        total_fees += fee_amt
                        pnl[d, cur] += sizes[j] * price - fee_amt - costs[j]
                        sizes[j] = 0.0
                cur = -1
            if nxt < n_pos and entries[d, nxt] == i:
                dec = i - 1
                n_chosen = _choose(closes, first, last, dec, top_k, k, m, chosen)
                cur = nxt
                nxt += 1
                pos_end[d, cur] = i
                if n_chosen > 0:
                    total = fraction * cash  # flat at the decision close: equity = cash
                    if sizing == 2:
                        total = cash if notional > cash else notional
                    elif sizing == 1:  # the decision bar's vol-targeted share (see simulate)
                        total = share[dec] * cash
                    budget = total / n_chosen
                    for j in range(n_coins):
                        if not chosen[j]:
                            continue
                        price = opens[j, i] * (1.0 + slip)
                        size = budget / (price * (1.0 + fee)) * (1.0 - SIZE_HAIRCUT)
                        if liq_cap == liq_cap:
                            cap = liq_cap * volumes[j, i]
                            if size > cap:
                                size = cap
                        if size <= 0.0:
                            continue
                        fee_amt = size * fee * price
                        cash -= size * price + fee_amt
                        total_fees += fee_amt
                        sizes[j] = size
                        costs[j] = size * price + fee_amt
            # -- the close: interest on the cash held through the bar, then a coin whose data ends is sold
            # at its last close (not on the last bar)
            if growth[i] != 0.0:
                cash += cash * growth[i]
            if cur >= 0 and i < n - 1:
                for j in range(n_coins):
                    if sizes[j] > 0.0 and last[j] == i:
                        price = closes[j, i]
                        fee_amt = sizes[j] * fee * price
                        cash += sizes[j] * price - fee_amt
                        total_fees += fee_amt
                        pnl[d, cur] += sizes[j] * price - fee_amt - costs[j]
                        sizes[j] = 0.0
                        pos_end[d, cur] = max(pos_end[d, cur], i)
            eq = cash
            for j in range(n_coins):
                if sizes[j] > 0.0:
                    eq += sizes[j] * closes[j, i]
            equity[d, i] = eq
        if cur >= 0:  # held to the end: marked at the last close, no fee
            for j in range(n_coins):
                if sizes[j] > 0.0:
                    pnl[d, cur] += sizes[j] * closes[j, n - 1] - costs[j]
                    pos_end[d, cur] = n  # one past the last bar, as run.exposure counts an open position
                    sizes[j] = 0.0
        fees[d] = total_fees
    return 0


def simulate(result, draws: pd.DataFrame) -> dict[str, np.ndarray]:
    """Fill the positions of ``placements(...)``: equity per draw and bar, pnl and end bar per position, fees."""
    bars = result.bars
    p = result.backtest.params
    arrays = market_arrays(bars, result.assets)
    n_draws = int(draws["draw"].max()) + 1 if len(draws) else 0
    k = len(draws) // n_draws if n_draws else 0
    entries = np.ascontiguousarray(draws["entry_bar"].to_numpy(dtype=np.int64).reshape(n_draws, k))
    exits = np.ascontiguousarray(draws["exit_bar"].to_numpy(dtype=np.int64).reshape(n_draws, k))
    n = len(bars)
    equity = np.empty((n_draws, n))
    pnl = np.zeros((n_draws, k))
    pos_end = np.zeros((n_draws, k), dtype=np.int64)
    fees = np.zeros(n_draws)
    liq = math.nan if p.liquidity_cap is None else float(p.liquidity_cap)
    share = _vol_shares(arrays, p, entries.ravel() - 1) if p.sizing == "vol_target" else np.full(n, np.nan)
    _draws(
        arrays["opens"], arrays["closes"], arrays["volumes"], arrays["first"], arrays["last"], entries, exits,
        float(p.fraction), float(p.fee), float(p.slippage), float(p.cash), p.mode == "top_k", int(p.k),
        int(p.momentum_days), liq, SIZING.index(p.sizing), share, math.nan if p.notional is None else float(p.notional),
        np.require(run_growth(bars.index, p.cash_rate), np.float64, "CW"), equity, pnl, pos_end, fees,
    )  # fmt: skip
    return {"equity": equity, "pnl": pnl, "pos_end": pos_end, "fees": fees, "entries": entries}


def random_entry_null(result, n: int = 500, seed: int = 0) -> pd.DataFrame:
    """The run's trades at ``n`` seeded random entry dates: one row per draw, the run's metrics as columns.

    Columns are ``riskon.metrics.METRICS`` (total_return, cagr, sharpe, sortino, max_drawdown, calmar,
    exposure, trades, win_rate, profit_factor, avg_hold_days, fees) with a run's definitions:
    ``riskon.metrics.returns_metrics`` on each draw's daily returns (in excess of the run's risk-free
    rate, ``Result.rf``), and ``trade_metrics``' per-position
    formulas evaluated for all draws at once (a test holds them equal to ``riskon.metrics.metrics``).
    A run without trades gives ``n`` flat draws: its own flat metrics (zero return and drawdown, no Sharpe).
    """
    bars = result.bars
    index = bars.index
    cash0 = float(result.backtest.initial_cash)
    starts, lengths = holding_periods(result)
    rf = result.rf  # Sharpe and Sortino in excess of the run's risk-free rate, as the run's own
    if len(lengths) == 0:
        row = metrics(result.returns, result.backtest.positions, 0.0, 0.0, rf=rf)  # no trades: every draw is the run
        return pd.DataFrame([row] * n, index=pd.RangeIndex(n, name="draw"))
    draws = placements(result, n, seed)
    sim = simulate(result, draws)
    n_bars = len(index)
    entry, end, pnl = sim["entries"], sim["pos_end"], sim["pnl"]
    # trade statistics with trade_metrics' formulas, for all draws at once (a test holds them equal)
    us = index.as_unit("us").asi8
    hold = ((us[np.minimum(end, n_bars - 1)] - us[entry]) / 1e6 / 86400.0).mean(axis=1)
    wins = np.where(pnl > 0, pnl, 0.0).sum(axis=1)
    losses = -np.where(pnl < 0, pnl, 0.0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(losses > 0, wins / losses, math.inf)
    exposure = (end - entry).sum(axis=1) / n_bars  # bars entry .. end - 1 held, as riskon.runner.exposure counts
    prev = np.concatenate([np.full((n, 1), cash0), sim["equity"][:, :-1]], axis=1)
    returns = sim["equity"] / prev - 1.0
    rows = []
    for d in range(n):
        row = returns_metrics(pd.Series(returns[d], index=index), rf=rf)
        row.update(
            exposure=float(exposure[d]),
            trades=len(lengths),
            win_rate=float((pnl[d] > 0).mean()),
            profit_factor=float(factor[d]),
            avg_hold_days=float(hold[d]),
            fees=float(sim["fees"][d]),
        )
        rows.append({key: row[key] for key in METRICS})
    return pd.DataFrame(rows, index=pd.RangeIndex(n, name="draw"), columns=list(METRICS))


def null_summary(result, null: pd.DataFrame) -> pd.DataFrame:
    """Where the run falls in its null: per metric the strategy's value, the null's 5/50/95 % and a percentile.

    ``percentile`` is the share of draws (with a finite value) strictly below the strategy's value. Every
    metric here is better when higher — max_drawdown too (it is negative: closer to zero is better) — so
    a percentile near 1 means the run beat almost every random placement of its own trades.
    """
    rows = {}
    for name in SUMMARY_METRICS:
        value = float(result.metrics.at[name, "strategy"]) if name in result.metrics.index else math.nan
        draws = null[name].to_numpy(dtype="float64") if name in null.columns else np.zeros(0)
        finite = draws[np.isfinite(draws)]
        if len(finite):
            p05, p50, p95 = np.percentile(finite, [5, 50, 95])
        else:
            p05 = p50 = p95 = math.nan
        pct = float((finite < value).mean()) if len(finite) and not math.isnan(value) else math.nan
        rows[name] = {
            "strategy": value,
            "null_p05": float(p05),
            "null_median": float(p50),
            "null_p95": float(p95),
            "percentile": pct,
            "draws": len(finite),
            "better": "higher (less negative)" if name == "max_drawdown" else "higher",
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("metric")


__all__ = ["SUMMARY_METRICS", "holding_periods", "null_summary", "placements", "random_entry_null", "simulate"]
