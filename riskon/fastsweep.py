"""The fast engine's sweep path: chunks of combinations per task, the kernel called directly, lean metrics.

``riskon.sweep`` validates every combination and gives each its run id; for the fast engine it
then hands the combinations here. The driver groups them by data/rule setting and costs, and builds
each setting's bars, market arrays and buy-and-hold returns once (``plan``). A task is a chunk of up to
a few hundred parameter rows plus those arrays; a worker (``evaluate_chunk``) calls the numba kernel
once per row and computes the returns and every metric with compiled twins of the NumPy and pandas
reductions that ``riskon.run.run_prepared`` + ``riskon.metrics`` apply to the trades, fills and returns
tables (the same arithmetic in the same order: NumPy's pairwise sums, sequential products), so the
stored values are bit for bit those of ``riskon run --engine fast``; the tests hold them equal. No
config is parsed and no pandas table is built per run, and a worker never imports backtrader.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numba import njit

from strategies import fastsim

#: Most combinations per task (a task carries its market arrays; results come back as one block).
CHUNK = 256
# _trade_stats reads trade records by column number: the layout of strategies.fastsim, checked here
# (a compiled function caches constants, and numba's cache is keyed on this file alone)
_LAYOUT = (fastsim._POS, fastsim._COIN, fastsim._ENTRY, fastsim._EPX, fastsim._SIZE, fastsim._EFEE, fastsim._EXIT,
           fastsim._XPX, fastsim._XFEE, fastsim._REASON, fastsim._R_OPEN)  # fmt: skip
assert _LAYOUT == (0, 1, 4, 5, 6, 7, 9, 10, 11, 12, 8), "update _trade_stats to strategies.fastsim's record layout"
#: Metric formulas' constant (riskon.metrics.PERIODS; repeated so a worker needs no pandas import).
PERIODS = 365


@dataclass(frozen=True)
class Market:
    """One data/rule setting with its costs: what every combination of a chunk shares."""

    args: tuple  # the kernel's market arrays (strategies.fastsim.market_args)
    times_us: np.ndarray  # bar open times, microseconds since the epoch
    returns_start: object  # first bar's date (naive UTC Timestamp), stored with each run's returns
    bench: np.ndarray  # buy-and-hold returns over the same bars, same costs
    name: str  # config name (for the accounting error message)


@dataclass(frozen=True)
class Chunk:
    """A task: combinations (run id, params JSON, kernel parameters) of one market, or the error that market hit."""

    sweep_id: str
    market: Market | None
    items: list[tuple[str, str, tuple]]
    error: str | None = None


def chunk_size(n_tasks: int, workers: int) -> int:
    """Combinations per chunk: about eight chunks per worker, at most ``CHUNK``."""
    return max(1, min(CHUNK, math.ceil(n_tasks / (max(workers, 1) * 8))))


def plan(tasks: list[tuple[dict, object, str]], frames: dict, sweep_id: str, size: int) -> Iterator[Chunk]:
    """Chunks of the tasks ``(overrides, config, run id)``, grouped by market; bars built once per setting.

    A generator: a pool starts on the first chunks while the next settings' bars are built.
    """
    from riskon.run import _cut, build_bars, buy_and_hold, strategy_params
    from riskon.sweep import bars_key
    from strategies.backtest import equity_returns
    from strategies.fastsim import market_args, market_arrays, param_args

    groups: dict[str, list] = {}
    for overrides, cfg, rid in tasks:
        groups.setdefault(bars_key(cfg), []).append((overrides, cfg, rid))
    for members in groups.values():
        cfg = members[0][1]
        try:
            index = frames[(cfg.data["index"], "1d")]
            raw = {
                a: _cut(frames[(a, cfg.data["timeframe"])], cfg.data["start"], cfg.data["end"], a)
                for a in cfg.target["assets"]
            }
            _, bars, assets = build_bars(cfg, index, raw)
            args = market_args(market_arrays(bars, assets))
        except Exception as e:  # the whole setting fails: every combination of it is an error row
            error = f"{type(e).__name__}: {e}".splitlines()[0][:500]
            for start in range(0, len(members), size):
                items = [(rid, json.dumps(ov, sort_keys=True), ()) for ov, _, rid in members[start : start + size]]
                yield Chunk(sweep_id, None, items, error)
            continue
        by_cost: dict[tuple, tuple] = {}  # buy-and-hold depends on the cash and the costs
        for overrides, c, rid in members:
            p = strategy_params(c)
            _, items = by_cost.setdefault((p.cash, p.fee, p.slippage), (p, []))
            items.append((rid, json.dumps(overrides, sort_keys=True), param_args(p)))
        times = bars.index.as_unit("us").asi8.copy()
        start_day = bars.index[0].tz_convert(None)
        for p, items in by_cost.values():
            bench = equity_returns(buy_and_hold(assets, p), p.cash).to_numpy(dtype="float64")
            market = Market(args, times, start_day, bench, cfg.name)
            for start in range(0, len(items), size):
                yield Chunk(sweep_id, market, items[start : start + size])


# -- the worker side ----------------------------------------------------------------------
def evaluate_chunk(chunk: Chunk) -> list[dict]:
    """Run every combination of a chunk; each becomes a store row (status 'error' for a failed one)."""
    from strategies.fastsim import _NCOL, _simulate

    t0 = time.perf_counter()
    worker = f"{os.getpid()}"
    base = {"sweep_id": chunk.sweep_id, "worker": worker, "engine": "fast"}
    if chunk.market is None:
        rows = [
            {**base, "run_id": rid, "params": params, "status": "error", "error": chunk.error, "returns": None,
             "bench": None}
            for rid, params, _ in chunk.items
        ]  # fmt: skip
        return _stamp(rows, t0)
    mk = chunk.market
    closes = mk.args[1]
    n_coins, n = closes.shape
    m = len(chunk.items)
    equity = np.empty((m, n))
    rec = np.full((n * n_coins // 2 + n_coins + 1, _NCOL), np.nan)
    returns = np.empty((m, n))
    out = np.empty(7)
    st = np.empty(5)
    rows = []
    for i, (rid, params, pargs) in enumerate(chunk.items):
        nrec = _simulate(*mk.args, *pargs, equity[i], rec)
        row = {**base, "run_id": rid, "params": params}
        t = _trade_metrics(rec, nrec, equity[i], closes, mk.times_us, pargs[10], mk.name, out)
        if isinstance(t, str):
            row.update(status="error", error=t, returns=None, bench=None)
        else:
            _returns_stats(equity[i], pargs[12], returns[i], st)
            row.update(
                _metrics_from_stats(st.tolist(), n), **t, status="ok", error=None,
                returns_start=mk.returns_start, returns=returns[i], bench=mk.bench,
            )  # fmt: skip
        rows.append(row)
    return _stamp(rows, t0)


def _stamp(rows: list[dict], t0: float) -> list[dict]:
    import pandas as pd

    each = (time.perf_counter() - t0) / max(len(rows), 1)
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    for row in rows:
        row["seconds"] = each
        row["finished"] = now
    return rows


@njit(cache=True)
def _returns_stats(equity, cash, returns, out):  # pragma: no cover - compiled
    # One run's daily returns (equity_returns: the first bar against the starting cash) and the reductions
    # riskon.metrics.returns_metrics takes of them, each the same arithmetic in the same order as NumPy's:
    # out: growth = prod(1 + r) (a sequential product), mean, sd (ddof 1, two-pass like np.std),
    # sum(min(r, 0)^2) and the max drawdown of [1, cumprod(1 + r)] against its running peak.
    n = equity.shape[0]
    prev = cash
    growth = 1.0
    for i in range(n):
        r = equity[i] / prev - 1.0
        returns[i] = r
        prev = equity[i]
        growth *= 1.0 + r
    mean = (0.0 + _pairwise_sum(returns, 0, n)) / n
    dev = np.empty(n)
    for i in range(n):
        d = returns[i] - mean
        dev[i] = d * d
    sd = np.sqrt((0.0 + _pairwise_sum(dev, 0, n)) / (n - 1)) if n > 1 else np.nan
    for i in range(n):
        d = min(returns[i], 0.0)
        dev[i] = d * d
    down_sq = 0.0 + _pairwise_sum(dev, 0, n)
    wealth = 1.0
    peak = 1.0
    dd = 0.0  # the first point: 1 / 1 - 1
    for i in range(n):
        wealth *= 1.0 + returns[i]
        if wealth > peak or wealth != wealth:
            peak = wealth
        x = wealth / peak - 1.0
        if x < dd or x != x:
            dd = x
    out[0], out[1], out[2], out[3], out[4] = growth, mean, sd, down_sq, dd


def _metrics_from_stats(st: list[float], n: int) -> dict[str, float]:
    """returns_metrics' scalar formulas, on the reductions of ``_returns_stats`` (Python floats, as there)."""
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


def returns_metrics(equity: np.ndarray, cash: float) -> tuple[np.ndarray, dict[str, float]]:
    """One equity curve's returns and ``riskon.metrics.returns_metrics`` of them (risk-free rate 0), bit for bit."""
    returns = np.empty(len(equity))
    out = np.empty(5)
    _returns_stats(np.ascontiguousarray(equity, dtype=np.float64), float(cash), returns, out)
    return returns, _metrics_from_stats(out.tolist(), len(equity))


@njit(cache=True)
def _block_sum(a, lo, n):  # pragma: no cover - compiled
    # NumPy's pairwise summation below its block size (128): a plain loop under 8 values, else eight
    # interleaved accumulators combined as ((0+1)+(2+3))+((4+5)+(6+7)), then the remainder.
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True)
def _pairwise_sum(a, lo, n):  # pragma: no cover - compiled
    # NumPy's summation of a contiguous float64 array, step for step (``a.sum()`` is ``0.0 + this``): blocks
    # of up to 128 values, larger spans split in two (the first half a multiple of 8) and added left + right.
    # Written with an explicit stack: numba's cache cannot hold a recursive function.
    if n <= 128:
        return _block_sum(a, lo, n)
    seg_lo = np.empty(64, np.int64)
    seg_n = np.empty(64, np.int64)
    state = np.empty(64, np.int64)
    vals = np.empty(64)
    top = 0
    nv = 0
    seg_lo[0], seg_n[0], state[0] = lo, n, 0
    while top >= 0:
        s_lo, s_n = seg_lo[top], seg_n[top]
        if s_n <= 128:
            vals[nv] = _block_sum(a, s_lo, s_n)
            nv += 1
            top -= 1
            continue
        n2 = s_n // 2
        n2 -= n2 % 8
        if state[top] == 0:
            state[top] = 1
            top += 1
            seg_lo[top], seg_n[top], state[top] = s_lo, n2, 0
        elif state[top] == 1:
            state[top] = 2
            top += 1
            seg_lo[top], seg_n[top], state[top] = s_lo + n2, s_n - n2, 0
        else:
            nv -= 1
            vals[nv - 1] = vals[nv - 1] + vals[nv]
            top -= 1
    return vals[0]


def np_sum(a: np.ndarray) -> float:
    """``a.sum()`` of a float64 array through the compiled twin (tests hold the two equal)."""
    return 0.0 + _pairwise_sum(np.ascontiguousarray(a, dtype=np.float64), 0, len(a))


@njit(cache=True)
def _trade_stats(rec, nrec, closes, times_us, given_pnl, out):  # pragma: no cover - compiled
    # Exposure, per-position trade statistics, fees and turnover of one run from its trade records, as
    # run_prepared computes them on the trades/fills tables: positions are the legs of one entry, and every
    # sum is NumPy's pairwise sum. A position's pnl is its one leg's, or given_pnl[position] when the caller
    # summed several legs with pandas' groupby (whose compensated sum this does not reproduce).
    # out: exposure, trades, win_rate, profit_factor, avg_hold_days, fees, turnover
    n = closes.shape[1]
    fill_fee = np.empty(2 * nrec)
    fill_value = np.empty(2 * nrec)
    n_fills = 0
    held = np.zeros(n, dtype=np.bool_)
    pnl = np.empty(nrec)
    hold = np.empty(nrec)
    n_pos = 0
    r = 0
    while r < nrec:
        pos = rec[r, 0]
        total = 0.0
        entry = int(rec[r, 4])
        exit_bar = -1
        any_open = False
        while r < nrec and rec[r, 0] == pos:
            j = int(rec[r, 1])
            size, epx, efee = rec[r, 6], rec[r, 5], rec[r, 7]
            is_open = rec[r, 12] == 8  # the "open" reason
            fill_fee[n_fills] = efee
            fill_value[n_fills] = epx * size
            n_fills += 1
            if is_open:
                xpx, xfee, xbar = closes[j, n - 1], 0.0, n - 1
                any_open = True
            else:
                xpx, xfee, xbar = rec[r, 10], rec[r, 11], int(rec[r, 9])
                fill_fee[n_fills] = xfee
                fill_value[n_fills] = xpx * size
                n_fills += 1
            total = 0.0 + (size * xpx - xfee - size * epx - efee)  # a one-leg group sum: 0.0 + pnl
            if xbar > exit_bar:
                exit_bar = xbar
            r += 1
        pnl[n_pos] = given_pnl[n_pos] if given_pnl.shape[0] else total
        dt = times_us[exit_bar] - times_us[entry]
        hold[n_pos] = (dt // 1000000 + (dt % 1000000) / 1000000) / 86400.0
        n_pos += 1
        for b in range(entry, exit_bar + (1 if any_open else 0)):
            held[b] = True
    count = 0
    for b in range(n):
        if held[b]:
            count += 1
    out[0] = count / n
    out[5] = 0.0 + _pairwise_sum(fill_fee, 0, n_fills) if n_fills else 0.0
    out[6] = 0.0 + _pairwise_sum(fill_value, 0, n_fills) if n_fills else 0.0
    out[1] = n_pos
    if n_pos == 0:
        out[2] = out[3] = out[4] = np.nan
        return
    gains = np.empty(n_pos)
    losses = np.empty(n_pos)
    n_gain = n_loss = 0
    for q in range(n_pos):
        if pnl[q] > 0:
            gains[n_gain] = pnl[q]
            n_gain += 1
        elif pnl[q] < 0:
            losses[n_loss] = pnl[q]
            n_loss += 1
    won = 0.0 + _pairwise_sum(gains, 0, n_gain)
    lost = -(0.0 + _pairwise_sum(losses, 0, n_loss))
    out[2] = n_gain / n_pos
    out[3] = won / lost if lost > 0 else np.inf
    out[4] = (0.0 + _pairwise_sum(hold, 0, n_pos)) / n_pos


def _trade_metrics(rec, nrec, equity, closes, times_us, fee: float, name: str, out: np.ndarray) -> dict | str:
    """Exposure, trade statistics and fees of one run, or the accounting-check error it fails."""
    pos = rec[:nrec, 0]
    given = _NO_PNL
    if nrec > 1 and (pos[1:] == pos[:-1]).any():  # a basket: positions of several legs
        import pandas as pd

        legs = rec[:nrec]
        is_open = legs[:, 12] == 8
        coin = legs[:, 1].astype(np.int64)
        size = legs[:, 6]
        xpx = np.where(is_open, closes[coin, -1], legs[:, 10])
        xfee = np.where(is_open, 0.0, legs[:, 11])
        leg_pnl = size * xpx - xfee - size * legs[:, 5] - legs[:, 7]
        given = pd.Series(leg_pnl).groupby(pos, sort=True).sum().to_numpy(dtype=np.float64)
    _trade_stats(rec, nrec, closes, times_us, given, out)
    fees, expected = float(out[5]), fee * float(out[6])
    problems = []
    if not abs(fees - expected) <= 1e-9 + 1e-9 * abs(expected):  # np.isclose(rtol=1e-9, atol=1e-9)
        problems.append(f"fees {fees} != fee rate x turnover {expected}")
    if np.isnan(equity).any():
        day = np.datetime64(int(times_us[np.flatnonzero(np.isnan(equity))[0]]), "us")
        problems.append(f"equity is NaN on {str(day)[:10]}")
    if problems:
        return f"RuntimeError: {name}: accounting check failed: {'; '.join(problems)}"
    return {
        "exposure": float(out[0]), "trades": float(out[1]), "win_rate": float(out[2]),
        "profit_factor": float(out[3]), "avg_hold_days": float(out[4]), "fees": fees,
    }  # fmt: skip


_NO_PNL = np.empty(0)


def warm_up(part: str = "all") -> None:
    """Compile (or load from numba's cache) the kernel (``"kernel"``), the statistics (``"stats"``) or both."""
    from strategies.fastsim import record_buffer
    from strategies.fastsim import warm_up as warm_kernel

    if part in ("all", "kernel"):
        warm_kernel()
    if part in ("all", "stats"):
        rec = record_buffer(1, 2)
        _trade_stats(rec, 0, np.ones((1, 2)), np.arange(2, dtype=np.int64), _NO_PNL, np.empty(7))
        _returns_stats(np.ones(2), 1.0, np.empty(2), np.empty(5))


# -- the driver side ----------------------------------------------------------------------
def init_worker(parent: int | None = None, locks=None, barrier=None) -> None:
    """A fast-engine pool worker: one numba thread, the compiled code ready, then wait for the other workers.

    The kernel and the statistics take a few seconds each to compile from a cold cache. With ``locks``
    (one per part) the first worker compiles the kernel while the second compiles the statistics, each
    into numba's on-disk cache, and then each loads the other's part from the cache, instead of every
    worker compiling everything. The ``barrier`` keeps the first worker ready from taking every chunk of
    a small sweep before the others start.
    """
    os.environ["NUMBA_NUM_THREADS"] = "1"
    from riskon.sweep import _watch_parent

    if parent is not None:
        _watch_parent(parent)
    if locks is None:
        warm_up()
    else:
        order = ("kernel", "stats") if locks["kernel"].acquire(block=False) else ("stats", "kernel")
        if order[0] == "kernel":
            warm_up("kernel")
            locks["kernel"].release()
        for part in order[order[0] == "kernel" :]:
            with locks[part]:
                warm_up(part)
    if barrier is not None:
        with contextlib.suppress(Exception):  # a worker that died starting up must not hold the others
            barrier.wait(timeout=120)


def evaluate_local(chunks: Iterator[Chunk], workers: int, pool=None) -> Iterator[dict]:
    """Rows of every chunk: in this process (``workers <= 1``) or on a local process pool (``pool``, or a new one)."""
    if workers <= 1:
        warm_up()
        for chunk in chunks:
            yield from evaluate_chunk(chunk)
        return
    from riskon.sweep import _pool_results

    ex = pool if pool is not None else start_pool(workers)
    yield from _pool_results(ex, evaluate_chunk, ((c,) for c in chunks), workers, flatten=True)


def start_pool(workers: int):
    """A spawn process pool of fast-engine workers, started now: they import and compile while the driver works."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    ctx = get_context("spawn")
    init = (os.getpid(), {"kernel": ctx.Lock(), "stats": ctx.Lock()}, ctx.Barrier(workers))
    ex = ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker, initargs=init)
    ex._riskon_sync = init  # the locks and barrier must outlive the workers' start-up, even if unused
    for _ in range(workers):  # a spawn pool starts a process per submitted task: start all, the barrier needs them
        ex.submit(os.getpid)
    return ex


def evaluate_dask(chunks: Iterator[Chunk], client) -> Iterator[dict]:
    """Rows of every chunk, computed on a Dask cluster (one task per chunk)."""
    from dask.distributed import as_completed

    futures = [client.submit(evaluate_chunk, c, pure=False, retries=3) for c in chunks]
    for fut in as_completed(futures):
        yield from fut.result()


__all__ = [
    "Chunk",
    "Market",
    "chunk_size",
    "evaluate_chunk",
    "evaluate_local",
    "np_sum",
    "plan",
    "returns_metrics",
    "start_pool",
    "warm_up",
]
