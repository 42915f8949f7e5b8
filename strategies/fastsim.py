"""A vectorised twin of the ``RiskOn`` strategy: the parity contract as one numba loop over arrays.

Same decisions, fills, sizes, fees, exits, cooldown, data ends, baskets and top-k as the
backtrader strategy (tests hold the two and the independent reference equal to 1e-9), at a
fraction of the cost, so sweeps can run thousands of combinations. No ``fastmath``: it would
drop the NaN checks that mark bars where a coin has no price. Intrabar stop orders are not
simulated here; configs that use them run on backtrader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numba import njit

if TYPE_CHECKING:  # backtrader and pandas load only where a backtest result is built (sweep workers skip them)
    import pandas as pd  # fast sweep workers import this module without pandas: only this wrapper needs it

    from strategies.backtest import BacktestResult, StrategyParams

REASONS = ("trail", "stop", "take_profit", "max_hold", "index_dd", "index_break", "rule", "data_end", "open")
_R_DATA_END, _R_OPEN = 7, 8
# trade record columns
(_POS, _COIN, _SEEN, _DEC, _ENTRY, _EPX, _SIZE, _EFEE, _XDEC, _EXIT, _XPX, _XFEE, _REASON) = range(13)
_NCOL = 13


@njit(cache=True)
def _simulate(
    opens, closes, volumes, first, last, event, event_level, idx_close, idx_ath, exit_signal, t_days,
    delay, cooldown, trail, stop, take_profit, max_hold, idx_dd, idx_break, use_rule,
    fraction, fee, slip, cash0, top_k, k, m, liq_cap, haircut, sizing, vol_target, vol_lookback, vol_cap, notional,
    growth, equity, rec,
):  # fmt: skip
    # Every constant comes in as an argument and no other module's jitted code is called: numba's
    # on-disk cache is keyed on this file alone, so nothing outside it may change the compiled code.
    # Arrays are filled by loops rather than np.full/np.zeros/np.argsort, which triple the compile time.
    # sizing: 0 fraction, 1 vol_target, 2 notional (strategies.sizing.SIZING); growth: g_i per bar
    # (strategies.cash), credited on the cash held after the bar's opening fills, at its close.
    # Returns (trade records written, entries skipped for lack of volatility history, entries capped at equity).
    n_coins, n = closes.shape
    sizes = np.empty(n_coins)
    legrow = np.empty(n_coins, dtype=np.int64)  # trade record row of each held leg
    chosen = np.empty(n_coins, dtype=np.bool_)
    moms = np.empty(n_coins)
    order = np.empty(n_coins, dtype=np.int64)
    for j in range(n_coins):
        sizes[j] = 0.0
        legrow[j] = -1
        chosen[j] = False
    nrec = 0
    cash = cash0
    cost = 0.0
    ended_proceeds = 0.0
    peak = -np.inf
    entry_level = np.nan
    entry_day = np.nan
    last_exit_day = np.nan
    decide_at = -1
    pend_seen = -1
    pend_level = np.nan
    entry_pending = False
    entry_budget = 0.0
    n_skipped = 0
    n_capped = 0
    exit_pending = False
    exit_reason = -1
    exit_bar = -1
    position = -1
    for i in range(n):
        # -- the open: fill what the previous close decided ------------------------------
        if exit_pending:
            for j in range(n_coins):
                if sizes[j] > 0.0:
                    price = opens[j, i] * (1.0 - slip)
                    size = sizes[j]
                    fee_amt = size * fee * price
                    cash += size * price - fee_amt
                    r = legrow[j]
                    rec[r, _XDEC] = exit_bar
                    rec[r, _EXIT] = i
                    rec[r, _XPX] = price
                    rec[r, _XFEE] = fee_amt
                    rec[r, _REASON] = exit_reason
                    sizes[j] = 0.0
                    legrow[j] = -1
            last_exit_day = t_days[i]
            exit_pending = False
        if entry_pending:
            n_chosen = 0
            for j in range(n_coins):
                if chosen[j]:
                    n_chosen += 1
            budget = entry_budget / n_chosen
            first_leg = True
            for j in range(n_coins):
                if not chosen[j]:
                    continue
                price = opens[j, i] * (1.0 + slip)
                size = budget / (price * (1.0 + fee)) * (1.0 - haircut)
                if liq_cap == liq_cap:  # not NaN: cap at a share of the fill bar's volume
                    cap = liq_cap * volumes[j, i]
                    if size > cap:
                        size = cap
                if size <= 0.0:
                    continue
                fee_amt = size * fee * price
                cash -= size * price + fee_amt
                if first_leg:
                    peak = -np.inf
                    entry_day = t_days[i]
                    first_leg = False
                sizes[j] = size
                cost += size * price
                r = nrec
                nrec += 1
                legrow[j] = r
                rec[r, _POS] = position
                rec[r, _COIN] = j
                rec[r, _SEEN] = pend_seen
                rec[r, _DEC] = i - 1
                rec[r, _ENTRY] = i
                rec[r, _EPX] = price
                rec[r, _SIZE] = size
                rec[r, _EFEE] = fee_amt
                rec[r, _XDEC] = -1
                rec[r, _REASON] = _R_OPEN
            entry_pending = False
        # -- the close: interest on the cash held through the bar, data ends, exits, events, entries --
        gi = growth[i]
        if gi != 0.0:
            cash += cash * gi
        is_last = i == n - 1
        held_before = False
        for j in range(n_coins):
            if sizes[j] > 0.0:
                held_before = True
        if held_before and not is_last:
            ended = 0.0
            any_left = False
            for j in range(n_coins):
                if sizes[j] > 0.0 and last[j] == i:
                    price = closes[j, i]
                    size = sizes[j]
                    fee_amt = size * fee * price
                    proceeds = size * price - fee_amt
                    cash += proceeds
                    ended += size * price * (1.0 - fee)
                    r = legrow[j]
                    rec[r, _XDEC] = i
                    rec[r, _EXIT] = i
                    rec[r, _XPX] = price
                    rec[r, _XFEE] = fee_amt
                    rec[r, _REASON] = _R_DATA_END
                    sizes[j] = 0.0
                    legrow[j] = -1
            for j in range(n_coins):
                if sizes[j] > 0.0:
                    any_left = True
            if ended > 0.0 and not any_left:
                last_exit_day = t_days[i]
            ended_proceeds += ended
        holding = False
        for j in range(n_coins):
            if sizes[j] > 0.0:
                holding = True
        if holding:
            value = 0.0
            for j in range(n_coins):
                if sizes[j] > 0.0:
                    value += sizes[j] * closes[j, i]
            value += ended_proceeds
            if value > peak:
                peak = value
            reason = -1
            if trail == trail and value < peak * (1.0 - trail):
                reason = 0
            elif stop == stop and value < cost * (1.0 - stop):
                reason = 1
            elif take_profit == take_profit and value > cost * (1.0 + take_profit):
                reason = 2
            elif max_hold == max_hold and t_days[i] - entry_day >= max_hold:
                reason = 3
            elif idx_dd == idx_dd and idx_close[i] < idx_ath[i] * (1.0 - idx_dd):
                reason = 4
            elif idx_break and idx_close[i] <= entry_level:
                reason = 5
            elif use_rule and exit_signal[i]:
                reason = 6
            if reason >= 0 and not is_last:
                exit_pending = True
                exit_reason = reason
                exit_bar = i
        elif not held_before and event[i] and decide_at < 0:
            cooling = last_exit_day == last_exit_day and t_days[i] - last_exit_day < cooldown
            if not cooling:
                decide_at = i + delay
                pend_seen = i
                pend_level = event_level[i]
        if decide_at == i:
            decide_at = -1
            n_chosen = 0
            for j in range(n_coins):
                chosen[j] = False
            if not is_last:
                if top_k:
                    for j in range(n_coins):
                        moms[j] = np.inf
                        if first[j] <= i and i + 1 <= last[j] and first[j] <= i - m:
                            moms[j] = -(closes[j, i] / closes[j, i - m] - 1.0)
                    for q in range(n_coins):  # a stable insertion sort: ties keep the assets' order
                        v = q
                        p = q - 1
                        while p >= 0 and moms[order[p]] > moms[v]:
                            order[p + 1] = order[p]
                            p -= 1
                        order[p + 1] = v
                    for q in range(n_coins):
                        j = order[q]
                        if moms[j] == np.inf or n_chosen >= k:
                            break
                        chosen[j] = True
                        n_chosen += 1
                else:
                    for j in range(n_coins):
                        if first[j] <= i and i + 1 <= last[j]:
                            chosen[j] = True
                            n_chosen += 1
            budget = 0.0
            if n_chosen > 0:
                eq = cash
                for j in range(n_coins):
                    if sizes[j] > 0.0:
                        eq += sizes[j] * closes[j, i]
                budget = fraction * eq
                if sizing == 2:
                    if notional > eq:
                        budget = eq
                        n_capped += 1
                    else:
                        budget = notional
                elif sizing == 1:
                    for j in range(n_coins):
                        if chosen[j] and first[j] > i - vol_lookback:
                            n_chosen = 0  # a chosen coin has no close vol_lookback bars back: skip
                    if n_chosen == 0:
                        n_skipped += 1
                    else:
                        budget = _vol_fraction(closes, chosen, i, vol_lookback, n_chosen, vol_target, vol_cap) * eq
            if n_chosen > 0:
                entry_budget = budget
                entry_pending = True
                position += 1
                entry_level = pend_level
                cost = 0.0
                ended_proceeds = 0.0
        eq = cash
        for j in range(n_coins):
            if sizes[j] > 0.0:
                eq += sizes[j] * closes[j, i]
        equity[i] = eq
    return nrec, n_skipped, n_capped


@njit(cache=True)
def _vol_fraction(closes, chosen, i, lookback, n_chosen, target, cap):
    # strategies.sizing.basket_volatility + vol_fraction, operation for operation (kept in this file: the
    # on-disk cache is keyed on it alone): equal-weight basket returns over the lookback, ddof = 1, x sqrt(365)
    n_coins = closes.shape[0]
    mean = 0.0
    for t in range(i - lookback + 1, i + 1):
        s = 0.0
        for j in range(n_coins):
            if chosen[j]:
                s += closes[j, t] / closes[j, t - 1] - 1.0
        mean += s / n_chosen
    mean /= lookback
    var = 0.0
    for t in range(i - lookback + 1, i + 1):
        s = 0.0
        for j in range(n_coins):
            if chosen[j]:
                s += closes[j, t] / closes[j, t - 1] - 1.0
        b = s / n_chosen
        var += (b - mean) * (b - mean)
    var /= lookback - 1
    vol = np.sqrt(var) * np.sqrt(365.0)
    if vol > 0.0:
        f = target / vol
        return cap if f > cap else f
    return cap


def _nan(x) -> float:
    return np.nan if x is None else float(x)


_MARKET = ("opens", "closes", "volumes", "first", "last", "event", "event_level", "idx_close", "idx_ath", "exit_signal",
           "t_days")  # fmt: skip


def market_arrays(bars: pd.DataFrame, assets: dict[str, pd.DataFrame]) -> dict[str, np.ndarray]:
    """The arrays the simulator reads, built once per data/rule setting and reused across combinations."""
    opens = np.vstack([f["open"].to_numpy(dtype="float64") for f in assets.values()])
    closes = np.vstack([f["close"].to_numpy(dtype="float64") for f in assets.values()])
    volumes = np.vstack([f["volume"].to_numpy(dtype="float64") for f in assets.values()])
    spans = [np.flatnonzero(~np.isnan(c)) for c in closes]
    first = np.array([s[0] if len(s) else 1 << 30 for s in spans], dtype=np.int64)
    last = np.array([s[-1] if len(s) else -1 for s in spans], dtype=np.int64)
    exit_signal = bars["exit_signal"].to_numpy(dtype=bool) if "exit_signal" in bars else np.zeros(len(bars), bool)
    out = {
        "opens": opens, "closes": closes, "volumes": np.nan_to_num(volumes), "first": first, "last": last,
        "event": bars["event"].to_numpy(dtype=bool), "event_level": bars["event_level"].to_numpy(dtype="float64"),
        "idx_close": bars["idx_close"].to_numpy(dtype="float64"), "idx_ath": bars["idx_ath"].to_numpy(dtype="float64"),
        "exit_signal": exit_signal, "t_days": bars.index.as_unit("us").asi8 / 86_400_000_000,
    }  # fmt: skip
    # contiguous, writable arrays only (pandas hands out read-only views): one compiled signature for every caller
    return {k: np.require(v, requirements="CW") for k, v in out.items()}


def market_args(arrays: dict[str, np.ndarray]) -> tuple:
    """The market arrays in the kernel's argument order (built once, reused for every parameter set)."""
    return tuple(arrays[k] for k in _MARKET)


def param_args(p: StrategyParams, growth: np.ndarray) -> tuple:
    """A parameter set as the kernel's arguments (None becomes NaN: the feature is off).

    ``growth``: ``g_i`` of every bar for the set's cash rate (``strategies.cash.run_growth`` of the bars).
    """
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs
    from strategies.sizing import SIZE_HAIRCUT, SIZING

    if p.intrabar:
        raise ValueError("intrabar stop orders are simulated by backtrader only")
    return (
        int(p.signal_delay), float(p.cooldown_days), _nan(p.trail), _nan(p.stop), _nan(p.take_profit),
        _nan(p.max_hold_days), _nan(p.index_exit_dd), bool(p.index_exit_below_break), bool(p.exit_rule),
        float(p.fraction), float(p.fee), float(p.slippage), float(p.cash), p.mode == "top_k", int(p.k),
        int(p.momentum_days), _nan(p.liquidity_cap), SIZE_HAIRCUT, SIZING.index(p.sizing), _nan(p.vol_target),
        int(p.vol_lookback), float(p.vol_cap), _nan(p.notional), np.require(growth, np.float64, "CW"),
    )  # fmt: skip


def warm_up() -> None:
    """Compile the kernel (or load it from numba's cache) on a two-bar market, so a worker is ready to run."""
    n = 2
    arrays = {
        "opens": np.ones((1, n)), "closes": np.ones((1, n)), "volumes": np.ones((1, n)),
        "first": np.zeros(1, np.int64), "last": np.ones(1, np.int64), "event": np.zeros(n, np.bool_),
        "event_level": np.ones(n), "idx_close": np.ones(n), "idx_ath": np.ones(n), "exit_signal": np.zeros(n, np.bool_),
        "t_days": np.arange(n, dtype=np.float64),
    }  # fmt: skip
    _simulate(*market_args(arrays), 0, 0.0, 0.1, *(np.nan,) * 4, False, False, 1.0, 0.0, 0.0, 1.0, False, 1, 1,
              np.nan, 1e-9, 0, np.nan, 30, 1.0, np.nan, np.zeros(n), np.empty(n), record_buffer(1, n))  # fmt: skip


def record_buffer(n_coins: int, n: int) -> np.ndarray:
    """A trade-record buffer big enough for any run (a leg lasts at least two bars)."""
    return np.full((n * n_coins // 2 + n_coins + 1, _NCOL), np.nan)


def simulate(
    arrays: dict[str, np.ndarray], p: StrategyParams, growth: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Run the simulator: (equity per bar, trade records, (entries skipped, entries capped)).

    ``growth``: ``g_i`` per bar (``strategies.cash.run_growth``); None: idle cash earns nothing.
    """
    n_coins, n = arrays["closes"].shape
    equity = np.empty(n)
    rec = record_buffer(n_coins, n)
    g = np.zeros(n) if growth is None else growth
    nrec, skipped, capped = _simulate(*market_args(arrays), *param_args(p, g), equity, rec)
    return equity, rec[:nrec], (skipped, capped)


def fast_backtest(bars: pd.DataFrame, params: StrategyParams, assets: dict[str, pd.DataFrame]) -> BacktestResult:
    """The vectorised backtest as a ``BacktestResult`` (same trades table and equity as backtrader's)."""
    # sweep workers import this module without pandas or backtrader: only this wrapper needs them
    import pandas as pd

    from strategies.backtest import TRADE_COLUMNS, BacktestResult
    from strategies.cash import run_growth
    from strategies.sizing import sizing_notes

    arrays = market_arrays(bars, assets)
    equity, rec, (skipped, capped) = simulate(arrays, params, run_growth(bars.index, params.cash_rate))
    index = bars.index
    names = list(assets)
    closes = arrays["closes"]
    rows = []
    fills = []
    for r in rec:
        j, entry = int(r[_COIN]), int(r[_ENTRY])
        reason = REASONS[int(r[_REASON])]
        is_open = reason == "open"
        exit_bar = len(index) - 1 if is_open else int(r[_EXIT])
        exit_price = closes[j, -1] if is_open else r[_XPX]
        exit_fee = 0.0 if is_open else r[_XFEE]
        size = r[_SIZE]
        rows.append({
            "position": int(r[_POS]), "asset": names[j], "signal_session": bars["event_session"].iloc[int(r[_SEEN])],
            "decision_time": index[int(r[_DEC])], "entry_time": index[entry], "entry_price": r[_EPX], "size": size,
            "entry_fee": r[_EFEE], "exit_decision_time": pd.NaT if is_open else index[int(r[_XDEC])],
            "exit_time": index[exit_bar], "exit_price": exit_price, "exit_fee": exit_fee,
            "pnl": size * exit_price - exit_fee - size * r[_EPX] - r[_EFEE], "exit_reason": reason, "open": is_open,
        })  # fmt: skip
        fills.append({"time": index[entry], "asset": names[j], "side": "buy", "price": r[_EPX], "size": size,
                      "fee": r[_EFEE]})  # fmt: skip
        if not is_open:
            fills.append({"time": index[exit_bar], "asset": names[j], "side": "sell", "price": exit_price,
                          "size": size, "fee": exit_fee})  # fmt: skip
    trades = pd.DataFrame(rows, columns=TRADE_COLUMNS)
    if len(trades):
        trades["open"] = trades["open"].astype(bool)
        trades["position"] = trades["position"].astype("int64")
    eq = pd.Series(equity, index=index, name="equity")
    cash = pd.Series(np.nan, index=index, name="cash")
    entries = int(trades["position"].nunique()) if len(trades) else 0
    notes = sizing_notes(params.sizing, skipped, capped, entries, params.vol_lookback, params.notional)
    return BacktestResult(eq, cash, trades, pd.DataFrame(fills), params, params.cash, notes)


def is_supported(params: StrategyParams) -> tuple[bool, str]:
    """Whether the vectorised simulator covers a parameter set, and why not."""
    if params.intrabar:
        return False, "intrabar stop orders are simulated by backtrader only"
    return True, ""


__all__ = ["fast_backtest", "is_supported", "market_args", "market_arrays", "param_args", "simulate", "warm_up"]
