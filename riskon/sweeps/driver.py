"""Parameter sweeps: every combination run once, results committed in batches, resumable.

A fast-engine grid on several workers (the local pool or Dask) is expanded, validated and run by the
workers themselves (``riskon.sweeps.scaleout``); otherwise the main process validates every
combination (streamed), loads each series once and builds each rule setting's signals, and the
backtrader engine ships them as arrays (``riskon.sweeps.prepared``), the fast engine in chunks of
hundreds of combinations (``riskon.sweeps.chunks``). A run id hashes the
canonical parameters, the data fingerprints, the code the run uses and the engine: rerunning a sweep
skips every run already in the store.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
import tomllib
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

from feeds.cache import Cache
from feeds.loader import load
from riskon.config import ConfigError, RunConfig
from riskon.lookahead_gate import LookaheadGate, frame_fingerprints
from riskon.metrics import METRICS
from riskon.sweeps import scaleout
from riskon.sweeps.batch_writer import BatchWriter
from riskon.sweeps.dask_security import check_address
from riskon.sweeps.engine_choice import choose_engine, resolve_engine
from riskon.sweeps.engine_choice import unsupported as _unsupported
from riskon.sweeps.fanout import DaskFanout, PoolFanout
from riskon.sweeps.keys import RunIdMaker, bars_key, code_version, run_id, series_needed, stable_hash, strategy_key
from riskon.sweeps.pools import pool_results, stop_pool
from riskon.sweeps.prepared import build_setting, prepared_tasks
from riskon.sweeps.rulecheck import sweep_rule_hashes
from riskon.sweeps.spec import (
    MAX_COMBINATIONS,
    Combinations,
    GridSpace,
    SweepSpec,
    apply,
    parse_sweep,
    planned_size,
    validate,
)
from riskon.sweeps.store import Store, StoreError
from riskon.sweeps.streaming import BLOCK, RunIds, in_blocks, pending, stored_runs, survey, windowed, with_ids
from riskon.sweeps.sweep_result import SweepResult

#: A grid of at least this many combinations announces its checks (they take seconds before any run starts).
LARGE = 100_000
#: Environment variable for crash tests: ``after_batch:K`` or ``in_batch:K`` kills the sweep with SIGKILL.
FAULT_ENV = "RISKON_FAULT"


# -- the worker side ----------------------------------------------------------------------
_WORKER: dict = {}


def _init_worker(base: dict, frames: dict, engine: str = "backtrader") -> None:
    """Receive the base config, the data and the engine once per worker process."""
    os.environ["NUMBA_NUM_THREADS"] = "1"
    import feeds.btcompat  # noqa: F401  (patch backtrader before any use)

    _WORKER.clear()
    _WORKER.update(base=base, frames=frames, bars=OrderedDict(), engine=engine)


def _init_pool_worker(base: dict, frames: dict, engine: str, parent: int) -> None:
    """A local pool worker: ``_init_worker``, then exit if the sweep process dies (kill -9 leaves no orphans)."""
    # the sweep machinery (DuckDB, pools) loads only for a sweep
    from riskon.sweeps.pools import watch_parent

    _init_worker(base, frames, engine)
    watch_parent(parent)


def _bars_for(cfg: RunConfig):
    key = bars_key(cfg)
    cache = _WORKER["bars"]
    if key not in cache:
        cache[key] = build_setting(cfg, _WORKER["frames"])
        if len(cache) > 16:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return cache[key]


def evaluate(overrides: dict, rid: str, sweep_id: str, cfg: RunConfig | None = None, prepared=None) -> dict:
    """Run one combination in this worker; failures become a row with status 'error'.

    ``cfg`` and ``prepared`` (its sessions, bars and prices, or the error line building them hit) come from the
    driver (``riskon.sweeps.prepared.prepared_tasks``); without them (Optuna, in this process) they are built here.
    """
    # the API loads on first use (keeps `import riskon` light)
    from riskon.config import parse
    from riskon.runner import run_prepared

    t0 = time.perf_counter()
    engine = _WORKER.get("engine", "backtrader")
    row = {
        "run_id": rid,
        "sweep_id": sweep_id,
        "params": json.dumps(overrides, sort_keys=True),
        "worker": f"{os.getpid()}",
        "engine": engine,
    }
    try:
        if cfg is None:
            cfg = parse(apply(_WORKER["base"], overrides))
            prepared = _bars_for(cfg)
        if isinstance(prepared, str):  # the driver could not build this setting's bars
            raise _SettingFailed(prepared)
        sessions, bars, assets = prepared
        res = run_prepared(cfg, sessions, bars, assets, {}, engine=engine)
        m = res.metrics["strategy"]
        row.update({k: float(m[k]) for k in METRICS})
        row.update(
            status="ok",
            error=None,
            returns_start=res.returns.index[0].tz_convert(None),
            returns=res.returns.to_numpy(dtype="float64"),
            bench=res.benchmark_returns.to_numpy(dtype="float64"),
            rf=res.rf if res.rf.any() else None,  # the store's row_fields (riskon.sweeps.row_fields)
        )
    except Exception as e:  # a failing combination is recorded, the sweep goes on
        error = str(e) if isinstance(e, _SettingFailed) else f"{type(e).__name__}: {e}".splitlines()[0][:500]
        row.update(status="error", error=error, returns=None, bench=None)
        row["traceback"] = traceback.format_exc(limit=3)
    row["seconds"] = time.perf_counter() - t0
    row["finished"] = pd.Timestamp.now(tz="UTC").tz_localize(None)
    return row


class _SettingFailed(Exception):
    """The driver's error line for a setting whose bars could not be built (recorded as it is)."""


def _evaluate_dask(state, overrides: dict, rid: str, sweep_id: str, cfg=None, prepared=None) -> dict:
    token, base, frames, engine = state
    if _WORKER.get("token") != token:  # a new sweep's data: never reuse another sweep's config or bars
        _init_worker(base, frames, engine)
        _WORKER["token"] = token
    return evaluate(overrides, rid, sweep_id, cfg, prepared)


# -- the driver side ----------------------------------------------------------------------
def _fault() -> tuple[str, int] | None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return None
    kind, _, k = spec.partition(":")
    if kind not in ("after_batch", "in_batch") or not k.isdigit():
        raise ConfigError(f"{FAULT_ENV}={spec!r}: use after_batch:K or in_batch:K")
    return kind, int(k)


def _evaluate_local(tasks, base, frames, workers: int, engine: str) -> Iterator[dict]:
    if workers <= 1:
        _init_worker(base, frames, engine)
        for task in tasks:
            yield evaluate(*task)
        return
    init = (base, frames, engine, os.getpid())
    ex = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_pool_worker, initargs=init)
    yield from pool_results(ex, evaluate, tasks, workers)


def _evaluate_dask_cluster(
    tasks, base, frames, workers: int, scheduler: str, engine: str, chunks=None
) -> Iterator[dict]:
    with scaleout.open_client(scheduler, workers) as client:
        if chunks is not None:  # the fast engine: self-contained chunks, no shared state
            # numba loads only for the fast engine
            from riskon.sweeps.chunks import evaluate_chunk

            yield from windowed(client, evaluate_chunk, ((c,) for c in chunks), flatten=True)
            return
        state = DaskFanout(client, scheduler).share((uuid.uuid4().hex, base, frames, engine))
        yield from windowed(client, _evaluate_dask, ((state, *t) for t in tasks))


def run_sweep(
    path: str | Path,
    db: str | Path | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    cache: Cache | None = None,
    progress: Callable[[int, int], None] | None = None,
    announce: Callable[[str], None] | None = None,
    engine: str = "auto",
    max_combinations: int | None = MAX_COMBINATIONS,
    allow_lookahead: bool = False,
) -> SweepResult:
    """Run (or resume) the sweep of a config file; every finished batch is committed to the store.

    ``engine``: ``"fast"`` (the vectorised simulator), ``"backtrader"``, or ``"auto"`` — fast
    whenever every combination uses only features it supports, else backtrader (announced).
    ``max_combinations``: a larger sweep is refused before anything is expanded (None: no limit).
    ``allow_lookahead``: run rule settings that fail the lookahead gate (``riskon.lookahead_gate``) anyway.
    """
    # the API loads on first use (keeps `import riskon` light)
    import riskon.config as config_mod

    path = Path(path)
    cfg0 = config_mod.load(path)
    text = cfg0.text
    raw = tomllib.loads(text)
    spec = parse_sweep(raw, str(path), max_combinations)
    if scheduler is not None and scheduler != "local":
        check_address(scheduler)  # before any data is loaded: a plain address beyond the loopback is refused
    base = {k: v for k, v in raw.items() if k != "sweep"}
    t0 = time.perf_counter()
    gate = LookaheadGate(allow=allow_lookahead, announce=announce)  # each rule setting checked once, before its runs
    # one process per config and store: a second waits here, then resumes and finds the first one's runs stored
    with Store(db).alone(stable_hash({"config": base, "spec": spec.__dict__})[:16], announce):
        if spec.method == "optuna":
            return _run_optuna(path, cfg0, raw, base, spec, db, workers, cache, progress, announce, t0, engine, gate)
        pool = None
        if engine != "backtrader" and scheduler is None and workers > 1:
            # numba loads only for the fast engine
            from riskon.sweeps.chunks import start_pool

            pool = start_pool(workers)  # the fast engine's workers compile while the combinations are validated
        try:
            return _run_grid(path, cfg0, text, raw, base, spec, db, workers, scheduler, cache, progress, announce,
                             t0, engine, pool, gate)  # fmt: skip
        finally:
            if pool is not None:
                stop_pool(pool)


def _run_grid(
    path, cfg0, text, raw, base, spec, db, workers, scheduler, cache, progress, announce, t0, engine, pool, gate=None
) -> SweepResult:
    with contextlib.ExitStack() as stack:
        found = None
        if announce and planned_size(spec) >= LARGE:  # the checks of a large grid take a while before any run
            announce(f"checking {planned_size(spec):,} combinations (validation, run ids) before the first run")
        if engine != "backtrader" and (scheduler is not None or pool is not None):  # workers expand the grid
            found = _scaled(stack, path, cfg0, raw, spec, scheduler, workers, cache, announce, engine, gate, pool)
        if found is None:
            found = _driven(path, cfg0, raw, base, spec, workers, scheduler, cache, announce, engine, pool, gate)
        engine, fps, ids, seen, stream_of = found
        ident = {"name": cfg0.name, "config": base, "spec": spec.__dict__, "data": fps, "engine": engine}
        sweep_id = stable_hash({**ident, "code": code_version()})[:12]
        store = Store(db)
        store.put_sweep(
            {"sweep_id": sweep_id, "name": cfg0.name, "config_text": text,
             "spec": json.dumps(spec.__dict__, default=str), "fingerprints": fps, "code_version": code_version(),
             "status": "running", "n_total": ids.distinct,
             "strategy_key": strategy_key(cfg0), "rule_hashes": sweep_rule_hashes(cfg0, spec.values)}
        )  # fmt: skip
        if gate is not None and gate.failures:
            store.set_lookahead(sweep_id, "; ".join(gate.failures))
        already, done = stored_runs(store, sweep_id, ids)
        n_todo = ids.distinct - already
        if announce:
            announce(
                f"sweep {cfg0.name} ({sweep_id}): {ids.distinct} combinations"
                + (f", {seen.skipped} skipped by rule constraints" if seen.skipped else "")
                + (f", {already} already stored; running {n_todo}" if already else "")
            )
        executor = f"dask ({scheduler})" if scheduler else ("serial" if workers <= 1 else f"{workers} local processes")
        executor += f", {engine} engine"
        ran, failed = _drain(store, sweep_id, stream_of(sweep_id, done, n_todo), spec.batch_size, progress, already,
                             seen.valid)  # fmt: skip
    return SweepResult(sweep_id, cfg0.name, ids.distinct, already, ran, failed, seen.skipped,
                       time.perf_counter() - t0, executor, store)  # fmt: skip


def _scaled(stack, path, cfg0, raw, spec, scheduler, workers, cache, announce, engine, gate, pool=None):
    """Phases A and B on the workers (``riskon.sweeps.scaleout``); None when the sweep needs the driver's path.

    On a Dask cluster (``scheduler``) or on the local pool of fast-engine workers (``pool``).
    """
    symbols = scaleout.eligible(raw, spec, cfg0, str(path), engine)
    if symbols is None:
        return None
    frames = {(s, tf): load(s, tf, cache=cache, announce=announce) for s, tf in series_needed([cfg0])}
    fps = {f"{s}@{tf}": f.attrs["fingerprint"] for (s, tf), f in frames.items()}
    st = scaleout.setup(raw, spec, cfg0, str(path), engine, fps, symbols)
    with contextlib.ExitStack() as mine:
        if scheduler is not None:
            fan = DaskFanout(mine.enter_context(scaleout.open_client(scheduler, workers)), scheduler)
        else:
            fan = PoolFanout(pool, workers)
            mine.callback(fan.close)
        seen = scaleout.survey_grid(fan, st)
        if seen is None or (seen.unsupported is not None and engine == "auto"):
            return None  # the driver's path (its own client): it announces the backtrader engine
        stack.enter_context(mine.pop_all())  # the client stays open for phase B
    resolve_engine(engine, seen.unsupported, announce)  # --engine fast: one line naming what it cannot run
    space = GridSpace(spec)
    samples = [validate(raw, space.at(pos), str(path)) for pos in seen.samples]
    for cfg in samples:  # the lookahead gate: once per rule setting (riskon.lookahead_gate), before any run
        if gate is not None:
            gate.check(cfg, frame_fingerprints(cfg, frames), lambda cfg=cfg: build_setting(cfg, frames)[:2])
    markets = scaleout.markets(frames, samples)

    def stream_of(sweep_id: str, done, n_todo: int) -> Iterator[dict]:
        positions, ids = scaleout.to_run(seen, done)
        return scaleout.run_grid(fan, scaleout.Runs(st, sweep_id, markets), positions, ids)

    return "fast", fps, seen.run_ids(), seen, stream_of


def _driven(path, cfg0, raw, base, spec, workers, scheduler, cache, announce, engine, pool, gate):
    """The driver validates, identifies and plans every combination; workers (or this process) run them."""
    combos = Combinations(raw, spec, str(path))  # streamed in three passes (riskon.sweeps.streaming)
    seen = survey(combos, None if engine == "backtrader" else _unsupported)
    engine = resolve_engine(engine, seen.unsupported, announce)
    if pool is not None and engine != "fast":
        stop_pool(pool)
    frames = {(s, tf): load(s, tf, cache=cache, announce=announce) for s, tf in seen.series}
    fps = {f"{s}@{tf}": f.attrs["fingerprint"] for (s, tf), f in frames.items()}

    make_id = RunIdMaker(engine)

    def rid_of(cfg: RunConfig) -> str:
        return make_id(cfg, {k: fps[k] for k in scaleout.fps_of(cfg, fps)})

    ids = RunIds()  # the same run twice in one grid (e.g. a swept description) runs once
    memo_ids: list[str] | None = [] if seen.memo is not None else None
    for _, cfg, rid in with_ids(combos, seen.memo, rid_of):
        if gate is not None:  # the lookahead gate: once per rule setting (riskon.lookahead_gate), before any run
            gate.check(cfg, frame_fingerprints(cfg, frames), lambda cfg=cfg: build_setting(cfg, frames)[:2])
        ids.add(rid)
        if memo_ids is not None:
            memo_ids.append(rid)
    ids.finish()

    def stream_of(sweep_id: str, done, n_todo: int) -> Iterator[dict]:
        tasks = pending(combos, seen.memo, memo_ids, rid_of, ids.repeated, done)  # generated as workers take them
        if engine == "fast":  # chunks of combinations, data prepared once here (riskon.sweeps.chunks)
            # the sweep machinery (DuckDB, pools) loads only for a sweep
            from riskon.sweeps import chunks as fastsweep

            size = fastsweep.chunk_size(n_todo, workers)
            chunks = itertools.chain.from_iterable(
                fastsweep.plan(block, frames, sweep_id, size) for block in in_blocks(tasks, BLOCK)
            )
            if scheduler:
                return _evaluate_dask_cluster([], base, frames, workers, scheduler, engine, chunks=chunks)
            return fastsweep.evaluate_local(chunks, workers, pool)
        bt_tasks = prepared_tasks(tasks, frames, sweep_id)  # signals computed here: workers get arrays
        if scheduler:
            return _evaluate_dask_cluster(bt_tasks, base, frames, workers, scheduler, engine)
        return _evaluate_local(bt_tasks, base, frames, workers, engine)

    return engine, fps, ids, seen, stream_of


def _drain(store, sweep_id, stream, batch_size, progress, already, valid) -> tuple[int, int]:
    """Commit every row of ``stream`` in batches (a writer thread); on any failure keep what finished, mark it."""
    ran = failed = 0
    batch: list[dict] = []
    fault = _fault()
    committed = [0]  # batches committed so far (the fault injection counts them)

    def commit(rows: list[dict]) -> None:
        committed[0] = _commit(store, rows, committed[0], fault)

    writer = BatchWriter(commit)  # commits in a thread of its own: the workers keep getting chunks meanwhile
    try:
        for row in stream:
            row.pop("traceback", None)
            batch.append(row)
            ran += 1
            failed += row["status"] != "ok"
            if progress:
                progress(already + ran, valid)
            if len(batch) >= batch_size:
                writer.put(batch)
                batch = []
        writer.put(batch)
        batch = []
        writer.close()
        store.set_status(sweep_id, "done")
    except BaseException as e:  # Ctrl-C, a dead worker pool, a lost scheduler: keep what finished
        with contextlib.suppress(BaseException):  # the error in hand is the one to report
            writer.close(interruptible=False)  # the batches already handed over are committed first, in order
        try:
            if writer.error is None:  # after a failed commit nothing later is written: the order must hold
                _commit(store, batch, committed[0], None)
        finally:
            with contextlib.suppress(StoreError):
                store.set_status(sweep_id, "interrupted" if isinstance(e, KeyboardInterrupt) else "failed")
        raise
    return ran, failed


def _commit(store: Store, batch: list[dict], batches: int, fault) -> int:
    if not batch:
        return batches
    kill_in = fault is not None and fault[0] == "in_batch" and fault[1] == batches + 1
    store.write_batch(batch, fault="in_batch" if kill_in else None)
    batches += 1
    if fault is not None and fault[0] == "after_batch" and fault[1] == batches:
        os.kill(os.getpid(), 9)
    return batches


def _run_optuna(
    path, cfg0, raw, base, spec: SweepSpec, db, workers, cache, progress, announce, t0, engine, gate=None
) -> SweepResult:
    """Optuna's TPE sampler, one trial at a time (reproducible with a seed and one worker)."""
    # Optuna loads only for an Optuna sweep
    import optuna

    # the API loads on first use (keeps `import riskon` light)
    from riskon.config import parse

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    first = parse(apply(base, {p: v[0] for p, v in spec.values.items()}), str(path))
    frames = {(s, tf): load(s, tf, cache=cache, announce=announce) for s, tf in series_needed([first])}
    fps = {f"{s}@{tf}": f.attrs["fingerprint"] for (s, tf), f in frames.items()}
    code = code_version(None, [first])  # every engine (not resolved yet) and the first trial's rules
    sweep_id = stable_hash({"name": cfg0.name, "config": base, "spec": spec.__dict__, "data": fps, "code": code})[:12]
    store = Store(db)
    store.put_sweep(
        {"sweep_id": sweep_id, "name": cfg0.name, "config_text": cfg0.text,
         "spec": json.dumps(spec.__dict__, default=str), "fingerprints": fps, "code_version": code,
         "status": "running", "n_total": spec.n, "strategy_key": strategy_key(cfg0),
         "rule_hashes": sweep_rule_hashes(cfg0, spec.values)}
    )  # fmt: skip
    stored = store.runs(sweep_id) if store.path.exists() else pd.DataFrame()
    known = {r["run_id"]: r for r in stored.to_dict("records")} if len(stored) else {}
    engine = choose_engine(engine, [first], announce)
    _init_worker(base, frames, engine)
    sampler = optuna.samplers.TPESampler(seed=spec.seed)
    study = optuna.create_study(direction=spec.direction, sampler=sampler)
    ran = failed = 0
    batch: list[dict] = []
    try:
        for trial_no in range(spec.n):
            trial = study.ask()
            overrides = {}
            for p, vals in spec.values.items():
                rng = spec.ranges[p]
                if rng is not None and all(isinstance(x, int) for x in rng):
                    overrides[p] = trial.suggest_int(p, rng[0], rng[1], step=rng[2])
                elif rng is not None:
                    overrides[p] = trial.suggest_float(p, rng[0], vals[-1], step=rng[2])
                    overrides[p] = round(overrides[p], 10)
                else:
                    overrides[p] = trial.suggest_categorical(p, vals)
            try:
                cfg = parse(apply(base, overrides), str(path))
            except ConfigError:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                continue
            rid = run_id(cfg, {k: fps[k] for k in scaleout.fps_of(cfg, fps)}, engine)
            if gate is not None:  # the lookahead gate: once per rule setting, before its first trial
                gate.check(cfg, frame_fingerprints(cfg, frames), lambda cfg=cfg: build_setting(cfg, frames)[:2])
                if gate.failures:
                    store.set_lookahead(sweep_id, "; ".join(gate.failures))
            if rid in known:
                value = known[rid].get(spec.objective)
            else:
                row = evaluate(overrides, rid, sweep_id)
                row.pop("traceback", None)
                batch.append(row)
                known[rid] = row
                ran += 1
                failed += row["status"] != "ok"
                value = row.get(spec.objective)
            if value is None or not np.isfinite(value):
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, float(value))
            if progress:
                progress(trial_no + 1, spec.n)
            if len(batch) >= spec.batch_size:
                store.write_batch(batch)
                batch = []
    except BaseException as e:  # keep what finished, mark the sweep
        store.write_batch(batch)
        store.set_status(sweep_id, "interrupted" if isinstance(e, KeyboardInterrupt) else "failed")
        raise
    store.write_batch(batch)
    store.set_status(sweep_id, "done")
    return SweepResult(sweep_id, cfg0.name, spec.n, spec.n - ran, ran, failed, 0, time.perf_counter() - t0,
                       f"optuna (serial), {engine} engine", store)  # fmt: skip
