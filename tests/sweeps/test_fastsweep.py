"""The fast engine's lean sweep path (riskon.sweeps.chunks) against the full per-run path, bit for bit.

Random parameter sets on the snapshot (BTC, a Binance basket, top-k) go through ``fastsweep.plan`` +
``evaluate_chunk`` and through ``riskon.runner.run_prepared(engine="fast")``: every metric, the daily
returns and the buy-and-hold returns must be the same doubles; a sample is also held to backtrader
(1e-9 relative, DESIGN.md §9). A sweep through the lean path stores exactly the rows the former
per-combination path (``riskon.sweeps.driver.evaluate``) produces, and chunking or the worker count changes nothing.
"""

from __future__ import annotations

import json
import math

import duckdb
import numpy as np
import pytest

from feeds.loader import load
from riskon.config import parse
from riskon.metrics import METRICS
from riskon.runner import prepare, run_prepared
from riskon.sweeps import chunks as fastsweep
from riskon.sweeps.driver import _init_worker, evaluate, run_sweep
from riskon.sweeps.row_fields import row_fields
from riskon.sweeps.spec import apply
from riskon.sweeps.store import FIELD_COLS

BASKET = ["binance:BTC/USDT", "binance:ETH/USDT", "binance:SOL/USDT", "binance:MATIC/USDT", "binance:DOGE/USDT"]
TOPK = ["binance:ETH/USDT", "binance:SOL/USDT", "binance:XRP/USDT", "binance:ADA/USDT", "binance:MATIC/USDT"]


def random_config(rng: np.random.Generator, mode: str) -> dict:
    """A raw config with random exits, timing, sizing, costs and rule parameters."""

    def maybe(values, p_off=0.4):
        return False if rng.random() < p_off else float(rng.choice(values))

    raw = {
        "name": "lean",
        "data": {"index": "^RUT"},
        "strategy": {
            "signal_delay": int(rng.integers(0, 3)),
            "cooldown_days": float(rng.choice([0, 0, 3, 14, 60])),
            "params": {"confirm_days": int(rng.choice([1, 2, 3, 5])), "threshold": float(rng.choice([0.0, 0.005]))},
        },
        "exits": {
            "trailing_stop": maybe([0.05, 0.1, 0.2, 0.35]),
            "stop": maybe([0.05, 0.1, 0.2], 0.6),
            "take_profit": maybe([0.1, 0.3, 1.0], 0.6),
            "max_hold_days": maybe([5, 30, 90, 365]),
            "index_drawdown": maybe([0.03, 0.08, 0.15], 0.5),
            "index_below_break": bool(rng.random() < 0.3),
        },
        "costs": {"fee_bps": float(rng.choice([0, 5, 10, 30])), "slippage_bps": float(rng.choice([0, 5, 20]))},
        "portfolio": {"fraction": float(rng.choice([1.0, 1.0, 0.5])), "cash": float(rng.choice([1e5, 12345.0]))},
    }
    if mode == "single":
        raw["data"]["asset"] = "BTC-USD"
    else:
        raw["data"].update(start="2019-06-01", end="2025-06-30")
        raw["target"] = {"mode": mode, "assets": BASKET if mode == "basket" else TOPK}
        if mode == "top_k":
            raw["target"].update(k=int(rng.integers(1, 4)), momentum_days=int(rng.choice([7, 30])))
        if rng.random() < 0.3:
            raw["target"]["liquidity_cap"] = 0.001
    return raw


@pytest.fixture(scope="module")
def frames(data_dir) -> dict:
    symbols = {("^RUT", "1d"), ("BTC-USD", "1d"), *((a, "1d") for a in BASKET + TOPK)}
    return {key: load(*key) for key in symbols}


def lean_rows(configs: list, frames: dict, size: int = 7) -> dict[str, dict]:
    tasks = [({"i": i}, cfg, f"r{i:04d}") for i, cfg in enumerate(configs)]
    fastsweep.warm_up()
    rows = [row for chunk in fastsweep.plan(tasks, frames, "s", size) for row in fastsweep.evaluate_chunk(chunk)]
    return {row["run_id"]: row for row in rows}


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize(("mode", "count"), [("single", 60), ("basket", 20), ("top_k", 20)])
def test_lean_metrics_equal_the_full_path_bit_for_bit(frames, mode, count):
    rng = np.random.default_rng({"single": 11, "basket": 12, "top_k": 13}[mode])
    configs = [parse(random_config(rng, mode)) for _ in range(count)]
    rows = lean_rows(configs, frames)
    prepared = {}
    trades = 0
    checked_bt = 0
    for i, cfg in enumerate(configs):
        row = rows[f"r{i:04d}"]
        assert row["status"] == "ok", row["error"]
        key = json.dumps([cfg.data, cfg.target["assets"], cfg.rule_params], sort_keys=True)
        if key not in prepared:
            prepared[key] = prepare(cfg)
        sessions, bars, assets, _ = prepared[key]
        full = run_prepared(cfg, sessions, bars, assets, {}, engine="fast")
        want = full.metrics["strategy"]
        for m in METRICS:
            assert same(row[m], float(want[m])), (mode, i, m, row[m], float(want[m]))
        assert np.array_equal(row["returns"], full.returns.to_numpy())
        assert np.array_equal(row["bench"], full.benchmark_returns.to_numpy())
        assert row["returns_start"] == full.returns.index[0].tz_convert(None)
        trades += row["trades"]
        if i % 10 == 0:  # and backtrader itself agrees to DESIGN.md's 1e-9
            bt = run_prepared(cfg, sessions, bars, assets, {}, engine="backtrader").metrics["strategy"]
            for m in METRICS:
                assert math.isclose(row[m], float(bt[m]), rel_tol=1e-9, abs_tol=1e-12) or same(row[m], float(bt[m]))
            checked_bt += 1
    assert trades > count * 2 and checked_bt >= 2  # the sample exercises real trading, not empty runs


def test_block_returns_metrics_equal_riskon_metrics_row_by_row():
    """The chunk-wide NumPy reductions give each row the doubles riskon.metrics gives it alone."""
    import pandas as pd

    from riskon.metrics import returns_metrics
    from strategies.backtest import equity_returns

    rng = np.random.default_rng(9)
    for m, n in ((1, 1), (3, 2), (2, 3), (5, 50), (7, 129), (40, 4357)):
        moves = rng.normal(0, 0.03, (m, n)) * (rng.random((m, n)) < 0.6)
        cash = rng.choice([1e5, 12345.0], m)
        equity = cash[:, None] * np.cumprod(1.0 + moves, axis=1)
        equity[0, : n // 2] = cash[0]  # a flat start: exact zero returns
        returns = fastsweep.returns_block(equity, cash)
        got = fastsweep.returns_metrics_block(returns)
        for i in range(m):
            r = equity_returns(pd.Series(equity[i]), cash[i])
            assert np.array_equal(returns[i], r.to_numpy())
            want = returns_metrics(r)
            assert all(same(got[i][k], want[k]) for k in want), (m, n, i, got[i], want)
            one_r, one = fastsweep.returns_metrics(equity[i], cash[i])
            assert np.array_equal(one_r, returns[i]) and all(same(one[k], want[k]) for k in want)


GRID = """
name = "lean_sweep"
[data]
index = "^RUT"
asset = "BTC-USD"
start = "2018-01-01"
[strategy.params]
confirm_days = 3
[exits]
trailing_stop = 0.25
index_drawdown = 0.10
[costs]
fee_bps = 10
slippage_bps = 5
[sweep]
batch_size = 16
[sweep.params]
"strategy.params.confirm_days" = [1, 3]
"exits.trailing_stop" = [0.1, 0.2, 0.3]
"exits.take_profit" = [false, 0.5]
"strategy.cooldown_days" = [0, 30]
"costs.fee_bps" = [10, 25]
"""


def stored(db) -> dict[str, tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        query = (
            f"SELECT run_id, params, status, error, engine, {', '.join(METRICS)}, returns_start, n_days, digest, "
            "sr_day, skew, kurt, blocks, "
            "(SELECT b.returns FROM benchmarks b WHERE b.bench_id = runs.bench_id) FROM runs"
        )
        return {r[0]: r[1:] for r in con.execute(query).fetchall()}
    finally:
        con.close()


def test_lean_sweep_stores_the_per_combination_rows_and_chunking_changes_nothing(tmp_path, frames):
    cfg_path = tmp_path / "lean.toml"
    cfg_path.write_text(GRID, encoding="utf-8")
    serial = run_sweep(cfg_path, db=tmp_path / "serial.duckdb", workers=1)
    assert (serial.total, serial.ran, serial.failed, serial.executor) == (48, 48, 0, "serial, fast engine")
    rows = stored(tmp_path / "serial.duckdb")
    assert len(rows) == 48
    # the former path: one config parsed and one run_prepared per combination (riskon.sweeps.driver.evaluate)
    import tomllib

    base = {k: v for k, v in tomllib.loads(GRID).items() if k != "sweep"}
    _init_worker(base, frames, "fast")
    for rid, (params, status, error, engine, *rest) in rows.items():
        old = evaluate(json.loads(params), rid, "x")
        assert (status, error, engine) == (old["status"], old["error"], "fast") == ("ok", None, "fast")
        values, start, *fields, bench = rest[: len(METRICS)], *rest[len(METRICS) :]
        assert all(same(v, old[m]) for v, m in zip(values, METRICS, strict=True)), rid
        want = row_fields(old["returns"], old.get("rf"))  # what the store keeps of the returns: digest, moments, blocks
        assert all(same(a, want[k]) for a, k in zip(fields, FIELD_COLS, strict=True)), rid
        assert np.array_equal(bench, old["bench"])
        assert str(start) == str(old["returns_start"])
    assert len({tuple(r[-1]) for r in rows.values()}) == 2  # buy-and-hold differs by fee only: stored twice
    # two worker processes (chunks of 3) store the very same rows
    pooled = run_sweep(cfg_path, db=tmp_path / "pool.duckdb", workers=2)
    assert pooled.executor == "2 local processes, fast engine" and len(set(pooled.runs["worker"])) == 2
    assert stored(tmp_path / "pool.duckdb") == rows
    # and so does any chunk size, in this process
    cfgs = [(json.loads(p), rid) for rid, (p, *_) in rows.items()]
    configs = [parse(apply(base, ov)) for ov, _ in cfgs]
    one = lean_rows(configs, frames, size=1)
    many = lean_rows(configs, frames, size=256)
    for rid in one:
        a, b = one[rid], many[rid]
        assert all(same(a[m], b[m]) for m in METRICS) and np.array_equal(a["returns"], b["returns"])


def test_chunk_rows_travel_as_one_block_and_store_without_a_copy():
    """A chunk's returns are pickled as one buffer; the store hands runs of its rows to Arrow as they lie."""
    import pickle

    from riskon.sweeps.chunks import ChunkRows
    from riskon.sweeps.store import _list_array

    rng = np.random.default_rng(3)
    block = rng.normal(0, 0.01, (4, 6))
    rows = ChunkRows([{"run_id": f"r{i}", "returns": None} for i in range(5)], block, [0, 1, 3, 4])
    for k, i in enumerate(rows.with_returns):
        rows[i]["returns"] = block[k]
    back = pickle.loads(pickle.dumps(rows))
    assert type(back) is list and [r["run_id"] for r in back] == [f"r{i}" for i in range(5)]
    assert back[2]["returns"] is None
    assert all(np.array_equal(back[i]["returns"], block[k]) for k, i in enumerate(rows.with_returns))
    values = [r["returns"] for r in back] + [np.array([1.5, -2.5]), back[0]["returns"]]
    column = _list_array(values)
    assert column.to_pylist() == [None if v is None else v.tolist() for v in values]
    first = column.chunk(0)  # rows 0 and 1 of the received block: its memory, not a copy
    assert len(first) == 2 and first.values.buffers()[1].address == back[0]["returns"].ctypes.data
