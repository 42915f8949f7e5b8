"""The fast engine's sweep path: chunks of combinations per task, the kernel called directly, lean metrics.

``riskon.sweep`` validates every combination and gives each its run id; for the fast engine it
then hands the combinations here. The driver groups them by data/rule setting and costs, and builds
each setting's bars, market arrays and buy-and-hold returns once (``plan``). A task is a chunk of up to
a few hundred parameter rows plus those arrays; a worker (``evaluate_chunk``) calls the numba kernel
once per row and computes the returns and every metric with the same NumPy and pandas reductions that
``riskon.runner.run_prepared`` + ``riskon.metrics`` apply to the trades, fills and returns tables (the
returns metrics for blocks of runs at once, each row reduced exactly as a lone series would be), so the
stored values are bit for bit those of ``riskon run --engine fast``; the tests hold them equal. No
config is parsed and no pandas table is built per run (pandas loads in a worker only for baskets), and
a worker never imports backtrader.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from strategies import fastsim

#: Most combinations per task (a task carries its market arrays; results come back as one block).
CHUNK = 256
# _trade_metrics reads trade records by column number: the layout of strategies.fastsim, checked here
_LAYOUT = (fastsim._POS, fastsim._COIN, fastsim._ENTRY, fastsim._EPX, fastsim._SIZE, fastsim._EFEE, fastsim._EXIT,
           fastsim._XPX, fastsim._XFEE, fastsim._REASON)  # fmt: skip
assert _LAYOUT == (0, 1, 4, 5, 6, 7, 9, 10, 11, 12), "update _trade_metrics to strategies.fastsim's record layout"
#: Runs whose returns metrics are computed together (their temporaries stay in the CPU cache: ~1.6x faster)
_BLOCK = 32
#: Metric formulas' constant (riskon.metrics.PERIODS; repeated so a worker needs no pandas import).
PERIODS = 365


@dataclass(frozen=True)
class Market:
    """One data/rule setting with its costs: what every combination of a chunk shares."""

    args: tuple  # the kernel's market arrays (strategies.fastsim.market_args)
    times_us: np.ndarray  # bar open times, microseconds since the epoch
    returns_start: np.datetime64  # first bar's open (naive UTC, microseconds), stored with each run's returns
    bench: np.ndarray  # buy-and-hold returns over the same bars, same costs
    name: str  # config name (for the accounting error message)
    rf: np.ndarray | None = None  # the risk-free asset's return over each bar ([portfolio] risk_free); None: 0


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
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs
    from feeds.errors import DataError
    from feeds.frame import timeframe_delta
    from riskon.metrics import rf_per_bar
    from riskon.runner import _cut, build_bars, buy_and_hold, config_rate, load_rates, strategy_params
    from riskon.sweeps.keys import bars_key
    from strategies.backtest import equity_returns
    from strategies.cash import rate_key, run_growth
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
        by_cost: dict[tuple, tuple] = {}  # buy-and-hold depends on the cash, the costs and the cash rate
        growths: dict[tuple, np.ndarray] = {}  # g_i per cash rate, shared by the rows that use it
        rates: dict = {}  # yield series by symbol (the members share the data settings, so the lag)
        rfs: dict[tuple, np.ndarray | None] = {}  # the risk-free returns per bar, per risk-free rate
        try:
            for overrides, c, rid in members:
                if isinstance(c.portfolio["cash_rate"], str) and c.portfolio["cash_rate"] not in rates:
                    rates.update(load_rates(c))
                if isinstance(c.portfolio["risk_free"], str) and c.portfolio["risk_free"] not in rates:
                    rates.update(load_rates(c))
                p = strategy_params(c, rates)
                key = rate_key(p.cash_rate)
                if key not in growths:
                    growths[key] = run_growth(bars.index, p.cash_rate)
                risk_free = config_rate(c, "risk_free", rates)
                rfk = rate_key(risk_free)
                if rfk not in rfs:  # a zero rate subtracts nothing: the metrics stay bit for bit those of rf 0
                    zero = isinstance(risk_free, float) and risk_free == 0.0
                    step = timeframe_delta(c.data["timeframe"])
                    rfs[rfk] = None if zero else rf_per_bar(bars.index, risk_free, step)
                _, items = by_cost.setdefault((p.cash, p.fee, p.slippage, key, rfk), (p, []))
                items.append((rid, json.dumps(overrides, sort_keys=True), param_args(p, growths[key])))
        except DataError as e:  # a yield series missing or not covering the bars: every row of the setting fails
            error = f"DataError: {e}".splitlines()[0][:500]
            for start in range(0, len(members), size):
                items = [(rid, json.dumps(ov, sort_keys=True), ()) for ov, _, rid in members[start : start + size]]
                yield Chunk(sweep_id, None, items, error)
            continue
        times = bars.index.as_unit("us").asi8.copy()
        start_day = np.datetime64(int(times[0]), "us")  # naive UTC: a worker unpickles it without pandas
        for group, (p, items) in by_cost.items():
            bench = equity_returns(buy_and_hold(assets, p), p.cash).to_numpy(dtype="float64")
            market = Market(args, times, start_day, bench, cfg.name, rfs[group[-1]])
            for start in range(0, len(items), size):
                yield Chunk(sweep_id, market, items[start : start + size])


# -- the worker side ----------------------------------------------------------------------
def evaluate_chunk(chunk: Chunk) -> list[dict]:
    """Run every combination of a chunk; each becomes a store row (status 'error' for a failed one)."""
    # numba loads only for the fast engine
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
    rows = []
    ok = []
    for i, (rid, params, pargs) in enumerate(chunk.items):
        eq = equity[i]
        nrec = _simulate(*mk.args, *pargs, eq, rec)[0]
        row = {**base, "run_id": rid, "params": params}
        nan_at = -1
        if np.isnan(eq.sum()):  # cheap test first; +inf and -inf together sum to NaN too
            where = np.flatnonzero(np.isnan(eq))
            nan_at = int(where[0]) if where.size else -1
        t = _trade_metrics(rec[:nrec], nan_at, closes, mk.times_us, pargs[10], mk.name)
        if isinstance(t, str):
            row.update(status="error", error=t, returns=None, bench=None)
        else:
            row.update(t, status="ok", error=None, returns_start=mk.returns_start, bench=mk.bench)
            ok.append(i)
        rows.append(row)
    block = np.empty((len(ok), n))  # every ok run's returns, one row each: sent and stored as one buffer
    for start in range(0, len(ok), _BLOCK):  # returns and their metrics, a cache-sized block of runs at a time
        part = ok[start : start + _BLOCK]
        cash = np.array([chunk.items[i][2][12] for i in part])
        returns = returns_block(equity[part], cash, out=block[start : start + len(part)])
        for i, r, stats in zip(part, returns, returns_metrics_block(returns, mk.rf), strict=True):
            rows[i].update(stats, returns=r)
    return ChunkRows(_stamp(rows, t0), block, ok)


class ChunkRows(list):
    """A chunk's store rows whose returns are the rows of one block: pickled as that one buffer.

    A worker sends a few hundred runs' daily returns back at once; as one array they cost one
    allocation to receive instead of hundreds, and the store can hand that memory to DuckDB as it is.
    Unpickled, it is a plain list of rows (each ``returns`` a row of the block).
    """

    def __init__(self, rows: list[dict], block: np.ndarray, with_returns: list[int]) -> None:
        super().__init__(rows)
        self.block = block
        self.with_returns = with_returns

    def __reduce__(self):
        rows = [{k: v for k, v in r.items() if k != "returns"} for r in self]
        return _unpack_rows, (rows, self.block, self.with_returns)


def _unpack_rows(rows: list[dict], block: np.ndarray, with_returns: list[int]) -> list[dict]:
    for r in rows:
        r["returns"] = None
    for k, i in enumerate(with_returns):
        rows[i]["returns"] = block[k]
    return rows


def _stamp(rows: list[dict], t0: float) -> list[dict]:
    each = (time.perf_counter() - t0) / max(len(rows), 1)
    now = datetime.now(UTC).replace(tzinfo=None)  # naive UTC, as the store keeps it (no pandas in a worker)
    for row in rows:
        row["seconds"] = each
        row["finished"] = now
    return rows


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
    return [_metrics_from_stats(st, n) for st in zip(growth.tolist(), mean.tolist(), sd.tolist(),
                                                      down_sq.tolist(), dd.tolist(), strict=True)]  # fmt: skip


_RETURN_METRICS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "calmar")


def _metrics_from_stats(st: tuple[float, ...], n: int) -> dict[str, float]:
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


def _trade_metrics(rec, nan_at: int, closes, times_us, fee: float, name: str) -> dict | str:
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
    problems = []
    if not abs(fees - expected) <= 1e-9 + 1e-9 * abs(expected):  # np.isclose(rtol=1e-9, atol=1e-9)
        problems.append(f"fees {fees} != fee rate x turnover {expected}")
    if nan_at >= 0:
        problems.append(f"equity is NaN on {str(np.datetime64(int(times_us[nan_at]), 'us'))[:10]}")
    if problems:
        return f"RuntimeError: {name}: accounting check failed: {'; '.join(problems)}"
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


def warm_up() -> None:
    """Compile the kernel (or load it from numba's cache)."""
    # numba loads only for the fast engine
    from strategies.fastsim import warm_up as warm_kernel

    warm_kernel()


# -- the driver side ----------------------------------------------------------------------
def init_worker(parent: int | None = None, lock=None, barrier=None) -> None:
    """A fast-engine pool worker: one numba thread, the kernel compiled, then wait for the other workers.

    From a cold numba cache the kernel takes a second or two to compile. With ``lock`` the first
    worker to take it compiles the kernel into numba's on-disk cache while the others wait, then they
    load it from there: one compilation, and the waiting workers leave their cores to the driver,
    which is validating the combinations and building the first market meanwhile. The ``barrier``
    keeps the first worker ready from taking every chunk of a small sweep before the others start.
    """
    os.environ["NUMBA_NUM_THREADS"] = "1"
    # the sweep machinery (DuckDB, pools) loads only for a sweep
    from riskon.sweeps.pools import watch_parent

    if parent is not None:
        watch_parent(parent)
    if lock is None:
        warm_up()
    else:
        with lock:
            warm_up()
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
    # the sweep machinery (DuckDB, pools) loads only for a sweep
    from riskon.sweeps.pools import pool_results

    ex = pool if pool is not None else start_pool(workers)
    yield from pool_results(ex, evaluate_chunk, ((c,) for c in chunks), workers, flatten=True)


def start_pool(workers: int):
    """A spawn process pool of fast-engine workers, started now: they import and compile while the driver works."""
    # a worker re-imports this module: the pool machinery loads only in the driver that starts one
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from riskon.sweeps.pools import submit

    ctx = get_context("spawn")
    init = (os.getpid(), ctx.Lock(), ctx.Barrier(workers))
    ex = ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker, initargs=init)
    ex._riskon_sync = init  # the lock and barrier must outlive the workers' start-up, even if unused
    for _ in range(workers):  # a spawn pool starts a process per submitted task: start all, the barrier needs them
        submit(ex, os.getpid)
    return ex


def evaluate_dask(chunks: Iterator[Chunk], client) -> Iterator[dict]:
    """Rows of every chunk, computed on a Dask cluster (one task per chunk)."""
    # Dask loads only for a Dask sweep
    from dask.distributed import as_completed

    futures = [client.submit(evaluate_chunk, c, pure=False, retries=3) for c in chunks]
    for fut in as_completed(futures):
        yield from fut.result()


__all__ = [
    "Chunk",
    "ChunkRows",
    "Market",
    "chunk_size",
    "evaluate_chunk",
    "evaluate_local",
    "returns_block",
    "returns_metrics_block",
    "plan",
    "returns_metrics",
    "start_pool",
    "warm_up",
]
