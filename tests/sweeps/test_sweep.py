"""Sweeps end to end: [sweep] validation, executors, the DuckDB store, kill -9 and resume, the CLI, Optuna.

Every sweep here runs the seed strategy cut to 2019-01-01..2021-12-31 on the snapshot, over small grids
committed in batches of 3, so each store holds several batches. The reference is one sweep on two local
worker processes (a module fixture, default engine); serial, Dask, seeded random, Optuna, resumed crashes
and reruns must reproduce its rows bit for bit, keyed by run id, and sampled runs must equal
``riskon.runner.run`` in this process (same engine: bit for bit; backtrader: to 1e-9). The crash tests kill
``riskon sweep`` subprocesses with SIGKILL at fixed points (the RISKON_FAULT hook in riskon/sweep.py) and
at a seeded random moment. Run ids hash the source of feeds/, strategies/ and riskon/: editing those while
this file runs changes the ids of the subprocess sweeps and fails the comparisons.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import random
import re
import signal
import subprocess
import time
import tomllib
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from riskon.config import ConfigError, parse
from riskon.metrics import METRICS, format_metric
from riskon.runner import run
from riskon.sweeps.driver import FAULT_ENV, run_sweep
from riskon.sweeps.keys import run_id
from riskon.sweeps.row_fields import row_fields
from riskon.sweeps.spec import apply, combinations, parse_sweep
from riskon.sweeps.store import Store
from support import sweep_store
from support.clitools import riskon_cmd

CONFIRM = [1, 2, 3, 5]
TRAIL = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
N_GRID = len(CONFIRM) * len(TRAIL)  # 24 combinations, 8 batches of 3
BATCH = 3
GRID = '"strategy.params.confirm_days" = [1, 2, 3, 5]\n"exits.trailing_stop" = { start = 0.1, stop = 0.6, step = 0.1 }'

TEMPLATE = """\
name = "{name}"

[data]
index = "^RUT"
asset = "BTC-USD"
start = "{start}"
end = "2021-12-31"

[strategy]
rule = "ath_confirmed"

[strategy.params]
confirm_days = 3

[exits]
trailing_stop = 0.25
index_drawdown = 0.10

[costs]
fee_bps = 10
slippage_bps = 5

[sweep]
{sweep}

[sweep.params]
{params}
"""


def write_config(
    folder: Path,
    params: str = GRID,
    sweep: str = f'method = "grid"\nbatch_size = {BATCH}',
    name: str = "tsweep",
    start: str = "2019-01-01",
    file: str | None = None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (file or f"{name}.toml")
    path.write_text(TEMPLATE.format(name=name, start=start, sweep=sweep, params=params), encoding="utf-8")
    return path


def raw_of(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


# -- reading the store directly -----------------------------------------------------------------------
def sql(db: Path, query: str, args: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(query, args or []).fetchall()
    finally:
        con.close()


def counts(db: Path) -> tuple[int, int]:
    """(rows, distinct run ids) in the runs table."""
    return sql(db, "SELECT count(*), count(DISTINCT run_id) FROM runs")[0]


#: each run's buy-and-hold returns (stored once per distinct series in ``benchmarks``)
BENCH = "(SELECT b.returns FROM benchmarks b WHERE b.bench_id = runs.bench_id) AS bench"


def signature(db: Path) -> dict[str, tuple]:
    """run_id -> everything stored about its result, as bytes (so equality is bit-identity): metrics, the
    returns' digest, moments and block sums (the compact store keeps no daily returns), the benchmark's returns."""
    cols = ", ".join(METRICS)
    out = {}
    query = (
        f"SELECT run_id, status, error, params, {cols}, returns_start, n_days, digest, sr_day, skew, kurt, blocks, "
        f"{BENCH} FROM runs"
    )
    for row in sql(db, query):
        rid, status, error, params, *rest = row
        values = np.array(rest[: len(METRICS)], dtype="float64")
        start, n_days, digest, sr_day, skew, kurt, blocks, bench = rest[len(METRICS) :]
        out[rid] = (
            status,
            error,
            params,
            values.tobytes(),
            str(start),
            (n_days, digest),
            np.array([sr_day, skew, kurt], dtype="float64").tobytes(),
            bytes(blocks or b""),
            np.array(bench or [], dtype="float64").tobytes(),
        )
    return out


def assert_same_runs(got: dict[str, tuple], want: dict[str, tuple]) -> None:
    assert sorted(got) == sorted(want), f"run ids differ: {set(got) ^ set(want)}"
    differ = [rid for rid in want if got[rid] != want[rid]]
    assert not differ, f"{len(differ)} runs differ, e.g. {differ[:3]}"


# -- the riskon command line in subprocesses ---------------------------------------------------------


def cli_env(**extra: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    env.update(NO_COLOR="1", COLUMNS="200")
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def riskon(*args: str, cwd: Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*riskon_cmd(), *args], cwd=cwd, env=env or cli_env(), capture_output=True, text=True, timeout=timeout
    )


def start_sweep(
    cfg: Path, db: Path, cwd: Path, workers: int = 2, extra: tuple[str, ...] = (), **env: str | None
) -> subprocess.Popen:
    """``riskon sweep`` in its own session (process group), so it and its workers can be killed together."""
    log = (cwd / f"sweep-{time.monotonic_ns()}.log").open("w")
    proc = subprocess.Popen(
        [*riskon_cmd(), "sweep", str(cfg), "--db", str(db), "--workers", str(workers), *extra],
        cwd=cwd,
        env=cli_env(**env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    proc.log_path = Path(log.name)  # type: ignore[attr-defined]
    log.close()
    return proc


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def reap(proc: subprocess.Popen) -> None:
    """Kill whatever is left of a sweep's process group (workers orphaned by a kill -9 of the driver)."""
    if group_alive(proc.pid):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(timeout=30)


def finish(proc: subprocess.Popen, timeout: float = 120) -> int:
    try:
        return proc.wait(timeout=timeout)
    finally:
        reap(proc)


def log_of(proc: subprocess.Popen) -> str:
    return proc.log_path.read_text(errors="replace")  # type: ignore[attr-defined]


# -- the reference sweep ------------------------------------------------------------------------------
class Reference:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.cfg = write_config(folder)
        self.db = folder / "reference.duckdb"
        self.result = run_sweep(self.cfg, db=self.db, workers=2)
        self.signature = signature(self.db)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_dir) -> Reference:
    """The 24-combination grid, swept once on two local worker processes."""
    return Reference(tmp_path_factory.mktemp("reference"))


# ===================================================================================================
# 1. [sweep] validation, expansion, sampling and rule constraints (no backtest runs)
# ===================================================================================================
BAD_SWEEPS = {
    "unknown path": (GRID.replace("exits.trailing_stop", "exits.trail"), None, r"\[exits\] has no parameter 'trail'"),
    "unknown section": ('"exit.trailing_stop" = [0.1]', None, r"unknown key 'exit'.*did you mean 'exits'"),
    "unknown rule param": ('"strategy.params.confirm" = ["days"]\n"strategy.params.nope" = [1]', None, r"nope"),
    "empty list": ('"strategy.params.confirm_days" = []', None, r"'strategy.params.confirm_days' is an empty list"),
    "empty range": (
        '"exits.trailing_stop" = { start = 0.4, stop = 0.1, step = 0.1 }',
        None,
        r"'exits.trailing_stop' is an empty range",
    ),
    "step 0": (
        '"exits.trailing_stop" = { start = 0.1, stop = 0.4, step = 0 }',
        None,
        r"'exits.trailing_stop' step must be > 0",
    ),
    "negative step": (
        '"exits.trailing_stop" = { start = 0.1, stop = 0.4, step = -0.1 }',
        None,
        r"step must be > 0",
    ),
    "non-number in range": (
        '"exits.trailing_stop" = { start = 0.1, stop = "0.4", step = 0.1 }',
        None,
        r"'exits.trailing_stop' stop must be a number, got '0.4'",
    ),
    "range missing step": (
        '"exits.trailing_stop" = { start = 0.1, stop = 0.4 }',
        None,
        r"range needs start, stop and step",
    ),
    "scalar instead of list": ('"exits.trailing_stop" = 0.2', None, r"must be a list or \{start, stop, step\}"),
    "wrong type first": (
        '"strategy.params.confirm_days" = ["x", 2]',
        None,
        r"confirm_days must be int, got str 'x'",
    ),
    "wrong type later": (
        '"strategy.params.confirm_days" = [1, "x"]',
        None,
        r"confirm_days must be int, got str 'x'.*combination",
    ),
    "out of range value": ('"exits.trailing_stop" = [0.2, 1.5]', None, r"trailing_stop must be <= 0.99, got 1.5"),
    "unknown method": (GRID, 'method = "grd"', r"\[sweep\]\.method must be one of 'grid', 'random', 'optuna'"),
    "unknown objective": (GRID, 'objective = "sharp"', r"\[sweep\]\.objective must be one of .*did you mean 'sharpe'"),
    "unknown sweep key": (GRID, "sed = 3", r"\[sweep\] has no parameter 'sed'"),
    "n = 0": (GRID, 'method = "random"\nn = 0', r"\[sweep\]\.n must be >= 1"),
    "no params": ("", None, r"\[sweep.params\] must list at least one parameter"),
}


@pytest.mark.parametrize("case", list(BAD_SWEEPS))
def test_bad_sweep_is_a_config_error_before_anything_runs(case, tmp_path):
    params, sweep, pattern = BAD_SWEEPS[case]
    cfg = write_config(tmp_path, params=params, sweep=sweep or f"batch_size = {BATCH}")
    db = tmp_path / "r.duckdb"
    with pytest.raises(ConfigError, match=pattern) as info:
        run_sweep(cfg, db=db, workers=2)
    assert str(cfg) in str(info.value)  # the message names the file
    assert "\n" not in str(info.value)
    assert not db.exists()  # refused before the store (or any worker) was touched


def test_ranges_expand_inclusive_and_rounded(tmp_path):
    params = "\n".join(
        [
            '"exits.trailing_stop" = { start = 0.1, stop = 0.4, step = 0.1 }',
            '"exits.index_drawdown" = { start = 0.05, stop = 0.3, step = 0.1 }',  # stop not on the step: dropped
            '"strategy.params.confirm_days" = { start = 1, stop = 10, step = 3 }',
            '"strategy.params.threshold" = [0.0, 0.005]',
        ]
    )
    raw = raw_of(write_config(tmp_path, params=params))
    spec = parse_sweep(raw, "cfg")
    assert spec.values["exits.trailing_stop"] == [0.1, 0.2, 0.3, 0.4]  # not 0.30000000000000004
    assert spec.values["exits.index_drawdown"] == [0.05, 0.15, 0.25]
    assert spec.values["strategy.params.confirm_days"] == [1, 4, 7, 10]
    assert all(type(v) is int for v in spec.values["strategy.params.confirm_days"])
    assert spec.ranges["exits.trailing_stop"] == (0.1, 0.4, 0.1)
    assert spec.ranges["strategy.params.threshold"] is None
    assert (spec.method, spec.objective, spec.direction, spec.batch_size) == ("grid", "sharpe", "maximize", BATCH)
    combos, skipped = combinations(raw, spec, "cfg")
    assert skipped == 0 and len(combos) == 4 * 3 * 4 * 2
    assert len({json.dumps(o, sort_keys=True) for o, _ in combos}) == len(combos)
    overrides, cfg = combos[-1]  # itertools.product order: the last values of each path
    assert overrides == {
        "exits.trailing_stop": 0.4,
        "exits.index_drawdown": 0.25,
        "strategy.params.confirm_days": 10,
        "strategy.params.threshold": 0.005,
    }
    assert cfg.exits["trailing_stop"] == 0.4 and cfg.exits["index_drawdown"] == 0.25
    assert cfg.rule_params == {"threshold": 0.005, "confirm_days": 10, "confirm": "days"}
    assert cfg.costs == {"fee_bps": 10.0, "slippage_bps": 5.0}  # the rest comes from the base config


def test_random_sampling_is_seeded_and_respects_n(tmp_path):
    params = (
        '"strategy.params.confirm_days" = { start = 1, stop = 20, step = 1 }\n'
        '"exits.trailing_stop" = { start = 0.05, stop = 0.9, step = 0.05 }'
    )

    def sample(seed: int, n: int) -> list[dict]:
        raw = raw_of(write_config(tmp_path, params=params, sweep=f'method = "random"\nn = {n}\nseed = {seed}'))
        spec = parse_sweep(raw, "cfg")
        combos, skipped = combinations(raw, spec, "cfg")
        assert skipped == 0
        return [o for o, _ in combos]

    a, b = sample(7, 8), sample(7, 8)
    assert a == b  # same seed, same samples in the same order
    assert 6 <= len(a) <= 8  # at most n; a duplicate draw is run once
    assert len({json.dumps(o, sort_keys=True) for o in a}) == len(a)
    assert all(o["strategy.params.confirm_days"] in range(1, 21) for o in a)
    grid = {round(0.05 * i, 10) for i in range(1, 19)}
    assert all(o["exits.trailing_stop"] in grid for o in a)
    assert sample(8, 8) != a
    assert len(sample(7, 1)) == 1
    assert len(sample(7, 50)) > 40


def test_rule_constraint_skips_and_counts(tmp_path, monkeypatch, data_dir):
    from strategies import rules

    cfg_path = write_config(tmp_path, params=GRID)
    raw = raw_of(cfg_path)
    spec = parse_sweep(raw, "cfg")
    combos, skipped = combinations(raw, spec, "cfg")
    assert (len(combos), skipped) == (N_GRID, 0)  # no built-in constraint rejects any of these

    cls = rules.get("ath_confirmed")
    monkeypatch.setattr(
        cls, "constraint", lambda v: "confirm_days must be odd" if v["confirm_days"] % 2 == 0 else None, raising=False
    )
    combos, skipped = combinations(raw, spec, "cfg")
    assert skipped == len(TRAIL)  # confirm_days = 2 with every trailing stop
    assert len(combos) == N_GRID - len(TRAIL)
    assert all(o["strategy.params.confirm_days"] != 2 for o, _ in combos)

    # through run_sweep (serial, so the patched class is the one that runs): skipped, counted, never stored
    small = write_config(
        tmp_path,
        params='"strategy.params.confirm_days" = [1, 2, 3, 4]\n"exits.trailing_stop" = [0.2]',
        file="small.toml",
    )
    res = run_sweep(small, db=tmp_path / "c.duckdb", workers=1)
    assert (res.total, res.skipped, res.ran, res.failed) == (2, 2, 2, 0)
    stored = sorted(
        json.loads(p)["strategy.params.confirm_days"] for (p,) in sql(tmp_path / "c.duckdb", "SELECT params FROM runs")
    )
    assert stored == [1, 3]


# ===================================================================================================
# 2. two local worker processes: each combination once, metrics equal to an in-process run
# ===================================================================================================
def test_local_pool_stores_every_combination_once_with_in_process_metrics(reference):
    res = reference.result
    assert (res.total, res.already_done, res.ran, res.failed, res.skipped) == (N_GRID, 0, N_GRID, 0, 0)
    assert res.executor == "2 local processes, fast engine"  # engine "auto": the fast twin covers this config
    assert counts(reference.db) == (N_GRID, N_GRID)
    assert sql(reference.db, "SELECT count(*) FROM sweeps")[0][0] == 1
    assert sql(reference.db, "SELECT status, n_total FROM sweeps")[0] == ("done", N_GRID)
    assert set(res.runs["status"]) == {"ok"} and len(res.runs) == N_GRID
    assert len(set(res.runs["worker"])) == 2  # both workers ran some
    params = {p for (p,) in sql(reference.db, "SELECT params FROM runs")}
    assert params == {
        json.dumps({"exits.trailing_stop": t, "strategy.params.confirm_days": c}, sort_keys=True)
        for c in CONFIRM
        for t in TRAIL
    }

    base = {k: v for k, v in raw_of(reference.cfg).items() if k != "sweep"}
    cols = ", ".join(METRICS)
    query = f"SELECT run_id, params, engine, {cols}, returns_start, digest, {BENCH} FROM runs ORDER BY run_id"
    rows = sql(reference.db, query)
    assert {r[2] for r in rows} == {"fast"}
    for row in random.Random(3).sample(rows, 3):
        rid, params_json, engine, *rest = row
        stored = dict(zip(METRICS, rest[: len(METRICS)], strict=True))
        start, stored_digest, bench = rest[len(METRICS) :]
        returns = Store(reference.db).run(rid)["returns"].tolist()  # rebuilt from the cache: checked, bit for bit
        cfg = parse(apply(base, json.loads(params_json)))
        result = run(cfg, engine=engine)  # the same engine in this process: bit for bit
        m = result.metrics["strategy"]
        for k in ("sharpe", "cagr", "max_drawdown", "trades"):
            assert stored[k] == float(m[k]), (rid, k)
        for k in METRICS:  # every other metric too (NaN where undefined)
            assert stored[k] == float(m[k]) or (math.isnan(stored[k]) and math.isnan(float(m[k]))), (rid, k)
        assert returns == result.returns.tolist()
        assert stored_digest == row_fields(result.returns.to_numpy())["digest"]
        assert bench == result.benchmark_returns.tolist()
        assert pd.Timestamp(start) == result.returns.index[0].tz_convert(None)
        # ...and backtrader itself (riskon run's default) agrees to 1e-9 relative, with the same trades
        bt = run(cfg)
        mb = bt.metrics["strategy"]
        assert stored["trades"] == float(mb["trades"]) > 0
        for k in METRICS:
            assert math.isclose(stored[k], float(mb[k]), rel_tol=1e-9, abs_tol=1e-12) or (
                math.isnan(stored[k]) and math.isnan(float(mb[k]))
            ), (rid, k, stored[k], float(mb[k]))
        np.testing.assert_allclose(returns, bt.returns.to_numpy(), rtol=1e-9, atol=1e-12)
        # the run id is reproducible from the config, the data fingerprints and the engine alone
        fps = {f"{sym}@1d": fp for sym, fp in result.fingerprints.items()}
        assert run_id(cfg, fps, engine) == rid
        assert run_id(cfg, fps, "backtrader") != rid

    again = run_sweep(reference.cfg, db=reference.db, workers=2)
    assert (again.total, again.already_done, again.ran) == (N_GRID, N_GRID, 0)
    assert again.sweep_id == res.sweep_id
    assert counts(reference.db) == (N_GRID, N_GRID)
    assert sql(reference.db, "SELECT count(*) FROM sweeps")[0][0] == 1
    assert_same_runs(signature(reference.db), reference.signature)


# ===================================================================================================
# 3. executors agree bit for bit; seeded random sweeps repeat exactly
# ===================================================================================================
def test_serial_and_dask_equal_local_pool(reference, tmp_path):
    serial = run_sweep(reference.cfg, db=tmp_path / "serial.duckdb", workers=1)
    assert (serial.ran, serial.failed, serial.executor) == (N_GRID, 0, "serial, fast engine")
    assert_same_runs(signature(tmp_path / "serial.duckdb"), reference.signature)

    dask = run_sweep(reference.cfg, db=tmp_path / "dask.duckdb", workers=2, scheduler="local")
    assert (dask.ran, dask.failed, dask.executor) == (N_GRID, 0, "dask (local), fast engine")
    assert counts(tmp_path / "dask.duckdb") == (N_GRID, N_GRID)
    assert_same_runs(signature(tmp_path / "dask.duckdb"), reference.signature)
    assert len(set(dask.runs["worker"])) == 2  # two Dask worker processes, neither of them this one
    assert str(os.getpid()) not in set(dask.runs["worker"])
    assert serial.sweep_id == dask.sweep_id == reference.result.sweep_id


def test_seeded_random_sweep_is_bit_identical_across_reruns(reference, tmp_path):
    cfg = write_config(tmp_path, sweep=f'method = "random"\nn = 6\nseed = 11\nbatch_size = {BATCH}', name="trandom")
    a = run_sweep(cfg, db=tmp_path / "a.duckdb", workers=1)
    b = run_sweep(cfg, db=tmp_path / "b.duckdb", workers=1)
    assert a.ran == b.ran == a.total and 4 <= a.total <= 6
    sig_a, sig_b = signature(tmp_path / "a.duckdb"), signature(tmp_path / "b.duckdb")
    assert_same_runs(sig_a, sig_b)
    # the samples come from the grid's values, so they are grid runs with the grid's exact results
    assert set(sig_a) <= set(reference.signature)
    assert_same_runs(sig_a, {rid: reference.signature[rid] for rid in sig_a})


# ===================================================================================================
# 4. a combination that raises inside a worker is stored as an error; the others run
# ===================================================================================================
def test_failing_combination_is_recorded_and_the_sweep_goes_on(tmp_path, data_dir):
    # data.start = end leaves one bar: the worker's data cut raises DataError; the driver only loads whole series
    params = '"data.start" = ["2019-01-01", "2021-12-31"]\n"strategy.params.confirm_days" = [1, 3]'
    cfg = write_config(tmp_path, params=params, name="tfail")
    db = tmp_path / "f.duckdb"
    res = run_sweep(cfg, db=db, workers=2)
    assert (res.total, res.ran, res.failed) == (4, 4, 2)
    rows = sql(db, "SELECT params, status, error, sharpe, cagr, n_days, worker FROM runs")
    assert len(rows) == 4
    for params_json, status, error, sharpe, cagr, n_days, worker in rows:
        start = json.loads(params_json)["data.start"]
        assert worker != str(os.getpid())
        if start == "2021-12-31":
            assert status == "error"
            assert error == "DataError: BTC-USD has fewer than two bars between 2021-12-31 and 2021-12-31"
            assert sharpe is None and cagr is None and n_days is None
        else:
            assert status == "ok" and error is None
            assert math.isfinite(sharpe) and math.isfinite(cagr) and n_days == 1096  # 2019-01-01..2021-12-31
    assert sql(db, "SELECT status FROM sweeps")[0][0] == "done"
    again = run_sweep(cfg, db=db, workers=1)
    # a failed run is retried on resume (and fails again here), the finished ones are kept; nothing is duplicated
    assert (again.ran, again.failed, again.already_done) == (2, 2, 2)
    assert counts(db) == (4, 4)
    errors = sql(db, "SELECT count(*) FROM runs WHERE status = 'error'")[0][0]
    assert errors == 2


# ===================================================================================================
# 5. kill -9 and resume
# ===================================================================================================
@pytest.mark.parametrize(("fault", "batches", "resume_workers"), [("after_batch:2", 2, 2), ("in_batch:2", 1, 1)])
def test_kill_at_a_fixed_point_then_resume(fault, batches, resume_workers, reference, tmp_path):
    cfg = write_config(tmp_path)
    db = tmp_path / "crash.duckdb"
    proc = start_sweep(cfg, db, tmp_path, **{FAULT_ENV: fault})
    try:
        assert proc.wait(timeout=120) == -signal.SIGKILL, log_of(proc)
        # the orphaned pool workers notice the driver is gone and exit by themselves
        deadline = time.monotonic() + 10
        while group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not group_alive(proc.pid), "worker processes outlived the killed sweep"
    finally:
        reap(proc)
    # only whole committed batches: the transaction killed in the middle left nothing behind
    assert counts(db) == (batches * BATCH, batches * BATCH)
    assert sql(db, "SELECT status, n_total FROM sweeps")[0] == ("running", N_GRID)
    stored = signature(db)
    assert set(stored) <= set(reference.signature)
    assert_same_runs(stored, {rid: reference.signature[rid] for rid in stored})

    resume = start_sweep(cfg, db, tmp_path, workers=resume_workers)  # the same command, or a serial one
    assert finish(resume) == 0, log_of(resume)
    out = log_of(resume)
    assert f"{batches * BATCH} already stored; running {N_GRID - batches * BATCH}" in out
    assert f"{N_GRID} combinations, {batches * BATCH} already stored, {N_GRID - batches * BATCH} run now" in out
    assert counts(db) == (N_GRID, N_GRID)
    assert sql(db, "SELECT status FROM sweeps")[0][0] == "done"
    assert_same_runs(signature(db), reference.signature)


def committed(db: Path) -> int | None:
    """Runs committed so far, or None while the sweep holds the file (or before it exists)."""
    if not db.exists():
        return None
    try:
        return counts(db)[0]
    except duckdb.Error:
        return None


def test_kill_at_a_random_moment_then_resume(tmp_path, data_dir):
    # Worker start-up (spawn, imports, numba) takes most of a small sweep's wall time, so a moment drawn from
    # the launch would mostly hit start-up: the moment is drawn from the sweep's working window instead,
    # 0-0.8 s after its first committed batch (a 96-combination grid: 32 batches, the sweep ends ~1.6 s after
    # its first commit here).
    seed = int(os.environ.get("RISKON_TEST_KILL_SEED", "20240607"))
    delay = random.Random(seed).uniform(0.0, 0.8)
    params = ('"strategy.params.confirm_days" = [1, 2, 3, 4, 5, 6, 7, 8]\n' + GRID.splitlines()[1]
              + '\n"exits.take_profit" = [false, 0.5]')  # fmt: skip
    n = 8 * len(TRAIL) * 2
    cfg = write_config(tmp_path, params=params)
    want = run_sweep(cfg, db=tmp_path / "uninterrupted.duckdb", workers=1)  # in this process
    assert (want.ran, want.failed) == (n, 0)
    want = signature(tmp_path / "uninterrupted.duckdb")

    db = tmp_path / "crash.duckdb"
    proc = start_sweep(cfg, db, tmp_path)
    try:
        deadline = time.monotonic() + 90
        while proc.poll() is None and not committed(db) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(delay)
        assert proc.poll() is None, f"the sweep ended before the kill ({delay:.2f} s after its first batch)"
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, wherever they are
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        reap(proc)
    rows, distinct = counts(db)
    note = f"killed {delay:.2f} s after the first batch with {rows} runs stored"
    assert 0 < rows == distinct < n, note
    assert rows % BATCH == 0, note  # whole batches only
    stored = signature(db)
    assert_same_runs(stored, {rid: want[rid] for rid in stored})

    resume = start_sweep(cfg, db, tmp_path)
    assert finish(resume) == 0, log_of(resume)
    assert f"{rows} already stored; running {n - rows}" in log_of(resume), note
    assert counts(db) == (n, n), note
    assert_same_runs(signature(db), want)  # two local processes, resumed == one process, uninterrupted


# ===================================================================================================
# 6. the store answers queries while a sweep writes to it
# ===================================================================================================
def test_results_are_queryable_while_a_sweep_runs(tmp_path, data_dir, capsys):
    params = (
        '"strategy.params.confirm_days" = { start = 1, stop = 9, step = 1 }\n'
        '"exits.trailing_stop" = { start = 0.1, stop = 0.4, step = 0.1 }'
    )
    cfg = write_config(tmp_path, params=params, name="tslow")
    db = tmp_path / "slow.duckdb"
    # one process on backtrader (~0.15 s a run): 36 runs, 12 whole batches, some seconds of commits to query against.
    # The queries run in this process (support.sweep_store.call), a process apart from the writer as a user's
    # CLI is: a fraction of a second each (no CLI start-up), so many land between the writer's commits.
    proc = start_sweep(cfg, db, tmp_path, workers=1, extra=("--engine", "backtrader"))
    seen: list[tuple[int, float]] = []
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if not db.exists():
                time.sleep(0.1)
                continue
            t0 = time.monotonic()
            code, stdout, stderr = sweep_store.call(capsys, "results", "--db", str(db))
            took = time.monotonic() - t0
            alive = proc.poll() is None
            assert code == 0, stderr
            assert "Traceback" not in stderr
            m = re.search(r"tslow \(\w+, (\w+), (\d+)/(\d+) ok\)", stdout)
            assert m, stdout
            assert "┃ run_id" in stdout and "sharpe" in stdout
            assert int(m.group(3)) == 36
            if alive and m.group(1) == "running":  # answered while the sweep ran: it did not wait for the end
                seen.append((int(m.group(2)), took))
            time.sleep(0.3)
        assert finish(proc, timeout=120) == 0, log_of(proc)
    finally:
        reap(proc)
    n = [c for c, _ in seen]
    assert len(seen) >= 2, f"too few queries while the sweep ran: {seen}"
    assert n == sorted(n) and n[-1] > n[0], f"no growth seen: {seen}"
    assert all(c % BATCH == 0 for c in n)  # a reader sees whole batches only
    final = riskon("results", "--db", str(db), cwd=tmp_path)  # the installed command, as a user types it
    assert final.returncode == 0, final.stderr
    assert "tslow" in final.stdout and "done, 36/36 ok" in final.stdout
    assert counts(db) == (36, 36)
    assert {e for (e,) in sql(db, "SELECT DISTINCT engine FROM runs")} == {"backtrader"}


# ===================================================================================================
# 7. riskon results / riskon report
# ===================================================================================================
def test_results_filter_sort_export(reference, tmp_path, capsys):
    db = str(reference.db)
    # in this process (support.sweep_store.call): the command's output is checked, not its start-up
    code, stdout, stderr = sweep_store.call(
        capsys, "results", "tsweep", "--top", "3", "--sort", "cagr", "--where", "trades > 2",
        "--export", "csv", "--out", str(tmp_path / "f.csv"), "--db", db,
    )  # fmt: skip
    assert code == 0, stderr
    want = sql(reference.db, "SELECT run_id, cagr FROM runs WHERE trades > 2 ORDER BY cagr DESC")
    assert 3 < len(want) < N_GRID  # the filter keeps some and drops some
    with (tmp_path / "f.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert {"run_id", "sweep_id", "confirm_days", "trailing_stop", "cagr", "sharpe", "trades"} <= set(rows[0])
    assert "params" not in rows[0] and "returns" not in rows[0]
    assert [row["run_id"] for row in rows] == [rid for rid, _ in want]  # every match, best CAGR first
    cagr = [float(row["cagr"]) for row in rows]
    assert cagr == sorted(cagr, reverse=True) and cagr == [c for _, c in want]
    assert all(float(row["trades"]) > 2 for row in rows)
    params = {rid: json.loads(p) for rid, p in sql(reference.db, "SELECT run_id, params FROM runs")}
    for row in rows:
        assert int(row["confirm_days"]) == params[row["run_id"]]["strategy.params.confirm_days"]
        assert float(row["trailing_stop"]) == params[row["run_id"]]["exits.trailing_stop"]
    assert f"wrote {len(want)} runs to" in stdout
    table = [line for line in stdout.splitlines() if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in table] == [rid[:12] for rid, _ in want[:3]]
    assert format_metric("cagr", want[0][1]) in table[0]
    assert "top 3 by cagr" in stdout

    code, stdout, stderr = sweep_store.call(
        capsys, "results", "tsweep", "--sort", "cagr", "--where", "trades > 2", "--export", "parquet",
        "--out", str(tmp_path / "f.parquet"), "--db", db,
    )  # fmt: skip
    assert code == 0, stderr
    frame = pd.read_parquet(tmp_path / "f.parquet")
    assert list(frame["run_id"]) == [rid for rid, _ in want]
    assert list(frame["cagr"]) == [c for _, c in want]  # parquet keeps the exact doubles
    assert {"confirm_days", "trailing_stop"} <= set(frame.columns)


def test_report_rebuilds_the_runs_returns_from_the_cache_and_refuses_without_its_data(reference, tmp_path):
    rid, cagr, sharpe = sql(reference.db, "SELECT run_id, cagr, sharpe FROM runs ORDER BY sharpe DESC LIMIT 1")[0]
    empty_cache = tmp_path / "empty-cache"
    empty_cache.mkdir()
    out = tmp_path / "sheet" / "t.html"
    env = cli_env(RISKON_DATA=None, RISKON_CACHE=str(empty_cache))
    r = riskon("report", rid[:8], "--db", str(reference.db), "--out", str(out), cwd=tmp_path, env=env)
    assert r.returncode == 3 and not out.exists(), r.stderr
    # the rebuild loads the run's series like riskon run: neither cached nor in RISKON_DATA, nor downloadable here
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and r.stderr.startswith("error: ^RUT: ")
    r = riskon("report", rid[:8], "--db", str(reference.db), "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"tearsheet: {out}" in r.stdout
    html = out.read_text(encoding="utf-8")
    assert out.stat().st_size > 100_000 and "Strategy" in html
    assert rid[:12] in html  # the title names the run
    row = re.search(r"CAGR%</td>(.*?)</tr>", html, re.S)  # the key's U+FE6A glyph is a plain % (tearsheet.py)
    assert row, "no CAGR row in the tear sheet"
    assert format_metric("cagr", cagr) in row.group(1)  # quantstats' CAGR on the rebuilt returns equals the stored
    row = re.search(r"Sharpe</td>(.*?)</tr>", html, re.S)
    assert row and f"{sharpe:.2f}" in row.group(1)


CLI_ERRORS = {
    "unknown sweep": (["results", "nosuch"], r"no sweep 'nosuch'.*known: tsweep"),
    "unknown run id": (["report", "zzzz"], r"no run id 'zzzz'"),
    "bad --where column": (
        ["results", "--where", "nosuch > 1"],
        r"--where: unknown name 'nosuch'; valid names: .*sharpe",
    ),
    "unsafe --where": (["results", "--where", "1=1; DROP TABLE runs"], r"--where"),
    "bad --sort": (["results", "--sort", "sharp"], r"--sort.*unknown metric 'sharp'"),
    "bad --export": (["results", "--export", "xlsx"], r"--export.*csv or parquet"),
    "no database": (["results", "--db", "missing.duckdb"], r"no results database"),
}


@pytest.fixture(scope="module")
def cli_errors(reference, tmp_path_factory) -> dict[str, tuple[int, str, str]]:
    """Every error case, run side by side (each is a fresh interpreter): case -> (exit code, stdout, stderr)."""
    cwd = tmp_path_factory.mktemp("cli-errors")
    procs = {}
    for case, (args, _) in CLI_ERRORS.items():
        if "--db" not in args:
            args = [*args, "--db", str(reference.db)]
        procs[case] = subprocess.Popen(
            [*riskon_cmd(), *args], cwd=cwd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    out = {}
    for case, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        out[case] = (proc.returncode, stdout, stderr)
    return out


@pytest.mark.parametrize("case", list(CLI_ERRORS))
def test_cli_errors_are_one_line(case, cli_errors, reference):
    code, stdout, stderr = cli_errors[case]
    assert code == 2, (stdout, stderr)
    assert "Traceback" not in stdout + stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert re.search(CLI_ERRORS[case][1], lines[0]), lines[0]
    assert counts(reference.db) == (N_GRID, N_GRID)  # nothing was written


# ===================================================================================================
# 8. Optuna: reproducible with a seed and one worker
# ===================================================================================================
def test_optuna_with_a_seed_repeats(reference, tmp_path):
    cfg = write_config(tmp_path, sweep='method = "optuna"\nn = 6\nseed = 3\nbatch_size = 2', name="toptuna")
    a = run_sweep(cfg, db=tmp_path / "a.duckdb", workers=1)
    b = run_sweep(cfg, db=tmp_path / "b.duckdb", workers=1)
    assert a.total == 6 and a.executor == "optuna (serial), fast engine"
    assert 1 < a.ran <= 6 and a.ran == b.ran and a.failed == 0
    sig_a, sig_b = signature(tmp_path / "a.duckdb"), signature(tmp_path / "b.duckdb")
    assert_same_runs(sig_a, sig_b)
    # Optuna picks points of the same grid: they are grid runs with the grid's exact results
    assert set(sig_a) <= set(reference.signature)
    assert_same_runs(sig_a, {rid: reference.signature[rid] for rid in sig_a})
    again = run_sweep(cfg, db=tmp_path / "a.duckdb", workers=1)
    assert again.ran == 0 and counts(tmp_path / "a.duckdb") == (a.ran, a.ran)


def test_apply_leaves_the_raw_config_untouched(tmp_path):
    """parse_sweep and apply leave the raw config as it was (the driver reuses it for every trial)."""
    raw = raw_of(write_config(tmp_path, sweep='method = "optuna"\nn = 6\nseed = 3'))
    before = copy.deepcopy(raw)
    spec = parse_sweep(raw, "cfg")
    apply(raw, {p: v[-1] for p, v in spec.values.items()})
    assert raw == before
