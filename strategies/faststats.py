"""A fast-engine run's daily returns, return statistics and trade statistics in one compiled pass.

``riskon.sweeps.chunks`` calls ``run_stats`` once per combination, right after the simulator
(``strategies.fastsim``), on the equity curve and the trade records the simulator wrote. It replaces a
dozen NumPy calls (each a few microseconds of dispatch on arrays of 4,000 bars) with one loop, and it
gives **the same doubles**: every reduction is NumPy's own order of operations, written out —

* a sum is NumPy's pairwise summation (``add.reduce`` on a contiguous float64 array: blocks of at most
  128 values summed with eight accumulators, halves split at a multiple of 8, the result added to the
  identity 0.0);
* a product or a running product is sequential (``multiply.reduce`` / ``cumprod``), a running maximum
  and a minimum propagate NaN as ``np.maximum`` / ``np.minimum`` do;
* a mean is that sum divided by the count, a standard deviation (ddof = 1) the square root of the summed
  squared deviations from that mean divided by ``n - 1`` (``np.std``'s two passes).

``riskon.metrics.returns_metrics`` (NumPy) stays the definition; tests hold the two equal bit for bit
over random series of every length class, with flat stretches, NaN and infinities, and with a per-bar
risk-free rate. No ``fastmath`` (it would reorder the sums). Like ``strategies.fastsim`` this file's
compiled functions call no other module's compiled code: numba's on-disk cache is keyed on this file alone.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from strategies import fastsim

# trade record columns (strategies.fastsim's layout, checked at import: the compiled code below has them as numbers)
assert (fastsim._POS, fastsim._ENTRY, fastsim._EPX, fastsim._SIZE, fastsim._EFEE, fastsim._EXIT, fastsim._XPX,
        fastsim._XFEE, fastsim._REASON, fastsim._R_OPEN) == (0, 4, 5, 6, 7, 9, 10, 11, 12, 8), \
    "update strategies/faststats.py to strategies.fastsim's record layout"  # fmt: skip

#: Slots of ``run_stats``' output vector.
STATS = ("growth", "mean", "sd", "down_sq", "max_drawdown", "nan_at", "basket", "fees", "expected", "held",
         "positions", "won", "wins", "losses", "hold_days")  # fmt: skip
_NSTATS = 15


@njit(cache=True, error_model="numpy")
def _block_sum(a, row, lo, n):
    # NumPy's pairwise_sum for n <= 128: plain below 8 values, else eight accumulators and the rest
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[row, i]
        return res
    r0, r1, r2, r3 = a[row, lo], a[row, lo + 1], a[row, lo + 2], a[row, lo + 3]
    r4, r5, r6, r7 = a[row, lo + 4], a[row, lo + 5], a[row, lo + 6], a[row, lo + 7]
    i = 8
    stop = n - n % 8
    while i < stop:
        j = lo + i
        r0 += a[row, j]
        r1 += a[row, j + 1]
        r2 += a[row, j + 2]
        r3 += a[row, j + 3]
        r4 += a[row, j + 4]
        r5 += a[row, j + 5]
        r6 += a[row, j + 6]
        r7 += a[row, j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[row, lo + i]
        i += 1
    return res


@njit(cache=True, error_model="numpy")
def pairwise_sum(a, row, lo, n):
    """NumPy's pairwise sum of ``a[row, lo:lo + n]`` (``a`` C-contiguous, 2-D), before ``add.reduce`` adds it to 0.0.

    Above 128 values NumPy sums the two halves (the first a multiple of 8 long) recursively and adds them;
    the same tree is walked here with an explicit stack (numba's on-disk cache mishandles recursion).
    """
    if n <= 128:
        return _block_sum(a, row, lo, n)
    los = np.empty(64, np.int64)
    lens = np.empty(64, np.int64)
    state = np.empty(64, np.int64)  # 0: not split yet, 1: left half pending, 2: right half pending
    left = np.empty(64)
    top = 0
    los[0], lens[0], state[0] = lo, n, 0
    while True:
        m = lens[top]
        if m > 128 and state[top] == 0:
            half = m // 2
            half -= half % 8
            state[top] = 1
            top += 1
            los[top], lens[top], state[top] = los[top - 1], half, 0
            continue
        result = _block_sum(a, row, los[top], m)
        top -= 1
        while top >= 0:  # hand the result up: a left half waits for its right half, a right half completes a sum
            if state[top] == 1:
                left[top] = result
                state[top] = 2
                half = lens[top] // 2
                half -= half % 8
                los[top + 1], lens[top + 1], state[top + 1] = los[top] + half, lens[top] - half, 0
                top += 1
                break
            result = left[top] + result
            top -= 1
        if top < 0:
            return result


@njit(cache=True, error_model="numpy")
def _returns_stats(equity, cash, rf, out, scratch, st):
    # returns (strategies.backtest.equity_returns), then riskon.metrics.returns_metrics' reductions
    n = equity.shape[0]
    has_rf = rf.shape[0] > 0
    prev = cash
    growth = 1.0  # np.prod from its identity, and cumprod (its first value is the first factor: 1.0 * g == g)
    peak = 1.0  # the wealth curve starts at 1 (the starting cash)
    dd = 0.0  # 1 / 1 - 1
    nan_at = -1
    for i in range(n):
        e = equity[i]
        if nan_at < 0 and e != e:
            nan_at = i
        r = e / prev - 1.0
        out[i] = r
        prev = e
        if r != 0.0:  # a flat bar (x 1.0) leaves the wealth, its running maximum and the drawdown as they were
            growth = growth * (1.0 + r)
            if not (peak >= growth or peak != peak):  # np.maximum: the first argument on ties, NaN propagates
                peak = growth
            v = growth / peak - 1.0
            if not (dd <= v or dd != dd):  # np.minimum
                dd = v
        x = r - rf[i] if has_rf else r
        scratch[0, i] = x
        down = x if (x <= 0.0 or x != x) else 0.0
        scratch[1, i] = down * down
    mean = (0.0 + pairwise_sum(scratch, 0, 0, n)) / n
    for i in range(n):
        d = scratch[0, i] - mean
        scratch[0, i] = d * d
    sd = np.sqrt((0.0 + pairwise_sum(scratch, 0, 0, n)) / (n - 1)) if n > 1 else np.nan
    st[0] = growth
    st[1] = mean
    st[2] = sd
    st[3] = 0.0 + pairwise_sum(scratch, 1, 0, n)
    st[4] = dd
    st[5] = nan_at


@njit(cache=True, error_model="numpy")
def _trade_stats(rec, nrec, last_close, times_us, fee, n, scratch, mask, st):
    # riskon.sweeps.chunks._trade_metrics for runs whose positions have one leg each (a basket: st[6] = 1)
    for k in range(6, _NSTATS):
        st[k] = 0.0
    if nrec == 0:
        return
    for k in range(1, nrec):
        if rec[k, 0] == rec[k - 1, 0]:
            st[6] = 1.0
            return
    m = 0  # fills in the trades' order: each leg's fee (and turnover) at entry, then at its exit unless open
    for k in range(nrec):
        is_open = rec[k, 12] == 8.0
        scratch[0, m] = rec[k, 7]
        scratch[1, m] = rec[k, 5] * rec[k, 6]
        m += 1
        if not is_open:
            scratch[0, m] = rec[k, 11]
            scratch[1, m] = rec[k, 10] * rec[k, 6]
            m += 1
    st[7] = 0.0 + pairwise_sum(scratch, 0, 0, m)
    st[8] = fee * (0.0 + pairwise_sum(scratch, 1, 0, m))
    won = 0
    nw = 0
    nl = 0
    overlap = False
    prev_stop = -1
    held = 0
    for k in range(nrec):
        is_open = rec[k, 12] == 8.0
        size = rec[k, 6]
        xpx = last_close[int(rec[k, 1])] if is_open else rec[k, 10]
        xfee = 0.0 if is_open else rec[k, 11]
        pnl = 0.0 + (size * xpx - xfee - size * rec[k, 5] - rec[k, 7])  # a one-leg group sum
        if pnl > 0:
            scratch[0, nw] = pnl
            nw += 1
            won += 1
        elif pnl < 0:
            scratch[1, nl] = pnl
            nl += 1
        entry = int(rec[k, 4])
        exit_bar = n - 1 if is_open else int(rec[k, 9])
        stop = exit_bar + 1 if is_open else exit_bar  # held from the entry fill bar up to the exit fill bar
        if entry < prev_stop:
            overlap = True
        prev_stop = stop
        held += stop - entry
        dt = times_us[exit_bar] - times_us[entry]
        scratch[2, k] = (dt // 1_000_000 + (dt % 1_000_000) / 1_000_000) / 86400.0
    if overlap:  # positions overlap: count the bars any of them held
        for i in range(n):
            mask[i] = False
        for k in range(nrec):
            is_open = rec[k, 12] == 8.0
            exit_bar = n - 1 if is_open else int(rec[k, 9])
            for i in range(int(rec[k, 4]), exit_bar + 1 if is_open else exit_bar):
                mask[i] = True
        held = 0
        for i in range(n):
            if mask[i]:
                held += 1
    st[9] = held
    st[10] = nrec
    st[11] = won
    st[12] = 0.0 + pairwise_sum(scratch, 0, 0, nw)
    st[13] = -(0.0 + pairwise_sum(scratch, 1, 0, nl))
    st[14] = (0.0 + pairwise_sum(scratch, 2, 0, nrec)) / nrec


@njit(cache=True, error_model="numpy")
def run_stats(equity, cash, rf, rec, nrec, last_close, times_us, fee, out, scratch, mask, st):
    """One run's daily returns into ``out`` and its statistics into ``st`` (slots named by ``STATS``).

    ``rf``: the risk-free return of each bar, or an empty array (a rate of 0); ``rec[:nrec]``: the trade
    records; ``last_close``: each coin's last close (an open leg is valued there); ``scratch``: at least
    ``(3, max(n, 2 * nrec))`` doubles; ``mask``: ``n`` booleans. ``nan_at`` is the first bar whose equity is
    NaN (-1: none); ``basket`` is 1 when a position has several legs, and the trade slots are then left
    for the caller to fill.
    """
    _returns_stats(equity, cash, rf, out, scratch, st)
    _trade_stats(rec, nrec, last_close, times_us, fee, equity.shape[0], scratch, mask, st)


def warm_up() -> None:
    """Compile ``run_stats`` (or load it from numba's cache) on a three-bar run with one trade."""
    rec = np.full((2, 13), np.nan)
    rec[0, :] = (0, 0, 0, 0, 1, 1.0, 1.0, 0.0, 1, 2, 1.0, 0.0, 0)
    st = np.empty(_NSTATS)
    run_stats(np.ones(3), 1.0, np.empty(0), rec, 1, np.ones(1), np.arange(3, dtype=np.int64), 0.0, np.empty(3),
              np.empty((3, 4)), np.empty(3, np.bool_), st)  # fmt: skip


__all__ = ["STATS", "pairwise_sum", "run_stats", "warm_up"]
