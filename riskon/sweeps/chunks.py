"""The fast engine's sweep path: chunks of combinations per task, the kernel called directly, lean metrics.

``riskon.sweep`` validates every combination and gives each its run id; for the fast engine it
then hands the combinations here. The driver groups them by data/rule setting and costs, and builds
each setting's bars, market arrays and buy-and-hold returns once (``plan``). A task is a chunk of up to
a few hundred parameter rows plus those arrays; a worker (``evaluate_chunk``) calls the numba kernel
once per row, then one compiled pass (``strategies.faststats.run_stats``) for the daily returns, the
six return metrics' reductions and the trade statistics: NumPy's own order of operations written out
(pairwise sums, sequential products), so the stored values are bit for bit those ``riskon.metrics``
and ``riskon.runner.run_prepared`` give ``riskon run --engine fast``; the tests hold them equal, and a
worker checks it once (``_compiled_exact``) before trusting the pass. A basket's trade statistics (a
position of several legs) come from the NumPy/pandas reference (``riskon.sweeps.lean_metrics``). No
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

from riskon.sweeps.lean_metrics import (
    accounting_error,
    metrics_from_stats,
    returns_block,
    returns_metrics,
    returns_metrics_block,
    trade_metrics_of_records,
)
from strategies import fastsim

#: Most combinations per task (a task carries its market arrays; results come back as one block).
CHUNK = 256


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
    # the sweep machinery (DuckDB, pools) loads only for a sweep
    from riskon.sweeps.keys import bars_key

    groups: dict[str, list] = {}
    for overrides, cfg, rid in tasks:
        groups.setdefault(bars_key(cfg), []).append((overrides, cfg, rid))
    for members in groups.values():
        yield from plan_setting(members, market_of(members[0][1], frames), {}, sweep_id, size)


def market_of(cfg, frames: dict) -> tuple | str:
    """``(bars, target prices, the kernel's market arrays)`` of ``cfg``'s data/rule setting, or its one-line error."""
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs
    from riskon.runner import _cut, build_bars
    from strategies.fastsim import market_args, market_arrays

    try:
        index = frames[(cfg.data["index"], "1d")]
        raw = {
            a: _cut(frames[(a, cfg.data["timeframe"])], cfg.data["start"], cfg.data["end"], a)
            for a in cfg.target["assets"]
        }
        _, bars, assets = build_bars(cfg, index, raw)
        return bars, assets, market_args(market_arrays(bars, assets))
    except Exception as e:  # the whole setting fails: every combination of it is an error row
        return f"{type(e).__name__}: {e}".splitlines()[0][:500]


def plan_setting(
    members: list, market: tuple | str, rates: dict, sweep_id: str, size: int, memo: dict | None = None
) -> Iterator[Chunk]:
    """Chunks of one setting's tasks ``(overrides, config, run id)``, given its ``market_of`` (built anywhere).

    ``rates``: yield series by symbol already loaded (a Dask worker gets them from the driver); a symbol
    missing from it is loaded from the cache into it. ``memo``: this setting's buy-and-hold returns, cash
    growth and risk-free returns per cost group, kept by a worker across the tasks of one sweep.
    """
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs
    from feeds.errors import DataError
    from feeds.frame import timeframe_delta
    from riskon.metrics import rf_per_bar
    from riskon.runner import buy_and_hold, config_rate, load_rates, strategy_params
    from strategies.backtest import equity_returns
    from strategies.cash import rate_key, run_growth
    from strategies.fastsim import param_args

    if isinstance(market, str):
        yield from _failed(members, market, sweep_id, size)
        return
    bars, assets, args = market
    cfg = members[0][1]
    memo = {} if memo is None else memo
    by_cost: dict[tuple, tuple] = {}  # buy-and-hold depends on the cash, the costs and the cash rate
    growths: dict[tuple, np.ndarray] = memo.setdefault("growths", {})  # g_i per cash rate, shared by its rows
    rfs: dict[tuple, np.ndarray | None] = memo.setdefault("rfs", {})  # the risk-free returns per bar, per rate
    benches: dict[tuple, np.ndarray] = memo.setdefault("benches", {})
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
        yield from _failed(members, f"DataError: {e}".splitlines()[0][:500], sweep_id, size)
        return
    times = bars.index.as_unit("us").asi8.copy()
    start_day = np.datetime64(int(times[0]), "us")  # naive UTC: a worker unpickles it without pandas
    for group, (p, items) in by_cost.items():
        bench = benches.get(group)
        if bench is None:
            bench = benches[group] = equity_returns(buy_and_hold(assets, p), p.cash).to_numpy(dtype="float64")
        market_ = Market(args, times, start_day, bench, cfg.name, rfs[group[-1]])
        for start in range(0, len(items), size):
            yield Chunk(sweep_id, market_, items[start : start + size])


def _failed(members: list, error: str, sweep_id: str, size: int) -> Iterator[Chunk]:
    for start in range(0, len(members), size):
        items = [(rid, json.dumps(ov, sort_keys=True), ()) for ov, _, rid in members[start : start + size]]
        yield Chunk(sweep_id, None, items, error)


# -- the worker side ----------------------------------------------------------------------
_NO_RF = np.empty(0)  # run_stats' "no risk-free rate"


def evaluate_chunk(chunk: Chunk) -> list[dict]:
    """Run every combination of a chunk; each becomes a store row (status 'error' for a failed one).

    Per combination: the simulator (``strategies.fastsim``), then ``strategies.faststats.run_stats``, one
    compiled pass for the daily returns, the return statistics and (one leg per position) the trade
    statistics, NumPy's reductions written out; a basket's trade statistics come from
    ``lean_metrics.trade_metrics_of_records``.
    """
    # numba loads only for the fast engine
    from strategies.fastsim import _NCOL, _simulate
    from strategies.faststats import run_stats

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
    n_rec = n * n_coins // 2 + n_coins + 1
    eq = np.empty(n)
    rec = np.full((n_rec, _NCOL), np.nan)
    block = np.empty((len(chunk.items), n))  # every ok run's returns, one row each: sent and stored as one buffer
    scratch = np.empty((3, max(n, 2 * n_rec)))
    mask = np.empty(n, dtype=np.bool_)
    st = np.empty(15)
    last_close = np.ascontiguousarray(closes[:, n - 1]) if n else np.empty(n_coins)
    rf = _NO_RF if mk.rf is None else np.require(mk.rf, np.float64, "CW")  # one compiled signature for all
    exact = _compiled_exact()
    rows = []
    ok = []
    for rid, params, pargs in chunk.items:
        nrec = _simulate(*mk.args, *pargs, eq, rec)[0]
        out = block[len(ok)]
        run_stats(eq, pargs[12], rf, rec, nrec, last_close, mk.times_us, pargs[10], out, scratch, mask, st)
        growth, mean, sd, down_sq, dd, nan_at, basket, fees, expected = st[:9].tolist()
        if basket:
            t = trade_metrics_of_records(rec[:nrec], int(nan_at), closes, mk.times_us, pargs[10], mk.name)
        else:
            error = accounting_error(fees, expected, int(nan_at), mk.times_us, mk.name)
            t = error if error is not None else _trades_from_stats(st, nrec, n, fees)
        if isinstance(t, str):
            rows.append({**base, "run_id": rid, "params": params, "status": "error", "error": t, "returns": None,
                         "bench": None})  # fmt: skip
            continue
        if exact and n:
            stats = metrics_from_stats((growth, mean, sd, down_sq, dd), n)
        else:  # this NumPy sums in another order than run_stats: its own reductions, as riskon.metrics
            stats = returns_metrics_block(out[None, :], mk.rf)[0]
        ok.append(len(rows))
        rows.append(ok_row(base, rid, params, t, stats, out, mk))
    return ChunkRows(_stamp(rows, t0), block[: len(ok)], ok)


def ok_row(base: dict, rid: str, params: str, trades: dict, stats: dict, returns: np.ndarray, mk: Market) -> dict:
    """The store row of a finished run: its twelve metrics, daily returns and the market's buy-and-hold returns."""
    # rf: for the store's row_fields (riskon.sweeps.row_fields)
    return {**base, "run_id": rid, "params": params, **trades, **stats, "status": "ok", "error": None,
            "returns_start": mk.returns_start, "bench": mk.bench, "returns": returns, "rf": mk.rf}  # fmt: skip


_EXACT: list[bool] = []


def _compiled_exact() -> bool:
    """Whether ``run_stats`` gives NumPy's doubles here (checked once per process on a fixed random run).

    The compiled pass writes out NumPy's order of operations; a NumPy that summed in another order would
    fail this check, and the chunks then take NumPy's own reductions (slower, still the same doubles).
    """
    if not _EXACT:
        # numba loads only for the fast engine
        from strategies.faststats import run_stats

        rng = np.random.default_rng(19)
        n = 1031
        equity = 1e5 * np.cumprod(1.0 + rng.normal(0.0, 0.02, n) * (rng.random(n) < 0.7))
        rf = rng.normal(1e-4, 1e-5, n)
        st = np.empty(15)
        out = np.empty(n)
        rec = np.empty((1, fastsim._NCOL))
        run_stats(equity, 1e5, rf, rec, 0, np.ones(1), np.zeros(n, np.int64), 0.0, out, np.empty((3, n)),
                  np.empty(n, np.bool_), st)  # fmt: skip
        returns = returns_block(equity[None, :], np.array([1e5]))
        want = returns_metrics_block(returns, rf)[0]
        got = metrics_from_stats(tuple(st[:5].tolist()), n)
        _EXACT.append(np.array_equal(out, returns[0]) and all(got[k] == want[k] for k in want))
    return _EXACT[0]


def _trades_from_stats(st: np.ndarray, nrec: int, n: int, fees: float) -> dict:
    """``trade_metrics_of_records``' values from ``run_stats``' slots (Python floats: the same scalar arithmetic)."""
    if nrec == 0:
        return {"exposure": 0.0, "trades": 0.0, "win_rate": math.nan, "profit_factor": math.nan,
                "avg_hold_days": math.nan, "fees": fees}  # fmt: skip
    held, n_pos, won, wins, losses, hold = st[9:15].tolist()
    return {
        "exposure": int(held) / n, "trades": n_pos, "win_rate": int(won) / int(n_pos),
        "profit_factor": float(wins / losses) if losses > 0 else math.inf, "avg_hold_days": hold, "fees": fees,
    }  # fmt: skip


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


def warm_up() -> None:
    """Compile the kernel (or load it from numba's cache)."""
    # numba loads only for the fast engine
    from strategies.fastsim import warm_up as warm_kernel
    from strategies.faststats import warm_up as warm_stats

    warm_kernel()
    warm_stats()
    _compiled_exact()


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
