"""Sweeps that scale out: each worker validates, identifies, plans and runs its own share of a grid.

A driver that validates every combination, gives it its run id and plans it into chunks spends
~500 µs per combination on its own core: on a cluster that capped the gain of a second worker near
1.2×, and on one machine it left the pool's workers idle. A fast-engine grid on Dask or on the local
pool (``riskon.sweeps.fanout``) runs in two phases over positions of the grid
(``riskon.sweeps.spec.GridSpace``):

* **Phase A** (``survey_range``): a task is a range of positions. The worker validates each
  combination, computes its run id with the data and yield fingerprints and the code hashes the driver
  sent (a worker never hashes its own files, and needs no data cache), and returns its counts, the first
  error, why the fast engine cannot run a combination, the first position of each rule setting and the
  run ids as raw bytes (10 bytes each).
* The driver merges them (the first error is raised as a local sweep raises it, before anything runs),
  runs the lookahead gate on one combination per rule setting, builds each setting's bars itself (rule
  code never leaves the driver), and finds the runs already stored and the repeated ones exactly as a
  local sweep does.
* **Phase B** (``run_positions``): a task is a list of (position, run id). Each worker has received once
  the raw config, the spec, every setting's market arrays and target prices, and the yield series; it
  validates and plans its positions, runs them, reduces each run's daily returns to the stored fields
  (``riskon.sweeps.row_fields``) and returns the rows (~1 KB each, no returns) as one batch per task.

Sweeps that vary ``data.*`` or ``target.*`` (fingerprints and bars per combination), use a rule that is
not built in (its code lives on the driver only), or are random or Optuna sweeps, keep the driver's path.
"""

from __future__ import annotations

import contextlib
import math
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from riskon.config import RATE_KEYS, ConfigError, RunConfig
from riskon.sweeps.dask_security import connect_client
from riskon.sweeps.engine_choice import unsupported
from riskon.sweeps.fanout import resolve
from riskon.sweeps.keys import bars_key, engine_hash, rules_used, run_id_of, stable_hash
from riskon.sweeps.pools import no_script_reimport
from riskon.sweeps.spec import GridParser, GridSpace, SweepSpec, validate
from riskon.sweeps.streaming import IdSet, RunIds

#: Bytes of a run id (20 hex digits).
ID_BYTES = 10
#: Most grid positions per phase-A task (validation and run ids: ~0.3 ms each).
RANGE = 4096
#: Most combinations per phase-B task (plan, simulation and stored fields: ~0.4 ms each).
BATCH = 1024
#: Most buy-and-hold series a worker keeps between phase-B tasks (each one a float per bar: ~35 KB).
MEMO_BENCHES = 512
#: Swept paths under these tables change fingerprints and bars per combination: the driver's path.
DRIVER_TABLES = ("data", "target")


@dataclass(frozen=True)
class Setup:
    """What the driver sends every worker in phase A: the grid, the fingerprints and the code hashes."""

    raw: dict
    spec: SweepSpec
    where: str
    engine: str  # the engine of the run ids ("fast")
    check_fast: bool  # ask why the fast engine cannot run a combination (engine "auto" or "fast")
    data_fps: dict[str, str]  # "symbol@timeframe" -> fingerprint of the series every combination reads
    yield_fps: dict[str, str]  # yield symbol -> fingerprint, for every symbol a [portfolio] rate may name
    rates: dict  # yield symbol -> the series (publication lag applied), for the fast engine's support check
    engine_hash: str
    rule_hashes: dict[str, str]  # every built-in rule's code hash
    token: str = ""  # a new one per sweep: a worker never reuses another sweep's cached grid


@dataclass(frozen=True)
class Runs:
    """What the driver sends every worker in phase B: the setup plus each setting's market and the sweep id."""

    setup: Setup
    sweep_id: str
    markets: dict  # bars_key -> (bars without columns, target prices, kernel market arrays) or an error line


@dataclass
class GridSurvey:
    """Phase A merged: counts, positions and run ids of the valid combinations, one position per rule setting."""

    valid: int
    skipped: int
    positions: np.ndarray  # int64, in grid order
    ids: np.ndarray  # S10, the run id of each position
    samples: list[int]  # first position of each rule setting, in grid order
    unsupported: str | None

    def run_ids(self) -> RunIds:
        """The ids as ``RunIds`` (distinct count, repeats), as a local sweep collects them."""
        out = RunIds()
        out.add_raw(self.ids.tobytes(), ID_BYTES)
        out.finish()
        return out


def fps_of(cfg: RunConfig, fps: dict[str, str]) -> list[str]:
    """The keys of ``fps`` (``symbol@timeframe``) that ``cfg`` reads: its index and its targets."""
    keys = [f"{cfg.data['index']}@1d"] + [f"{a}@{cfg.data['timeframe']}" for a in cfg.target["assets"]]
    return [k for k in keys if k in fps]


def eligible(raw: dict, spec: SweepSpec, cfg0: RunConfig, where: str, engine: str) -> set[str] | None:
    """The yield symbols a [portfolio] rate may name, when workers can expand this sweep; else None.

    None (the driver's path) for a random sweep, the backtrader engine, a swept ``data.*`` or
    ``target.*`` path, a rule that is not built in (named by the base config or any swept value), or a
    yield series a rate may name that is not in the cache (the driver's path reports it as it always has).
    """
    # the run's stack (rules, yield cache) loads only for a sweep
    from feeds.yields import YieldCache
    from strategies import rules

    if spec.method != "grid" or engine not in ("auto", "fast"):
        return None
    if any(p.split(".")[0] in DRIVER_TABLES or p == "portfolio" for p in spec.values):
        return None
    swept = set(_strings(list(spec.values.values())))
    if not set(rules_used(cfg0)) <= _builtin() or swept & (set(rules.available()) - _builtin()):
        return None
    symbols = {cfg0.portfolio[k] for k in RATE_KEYS if isinstance(cfg0.portfolio.get(k), str)}
    for path in (f"portfolio.{k}" for k in RATE_KEYS):
        for value in spec.values.get(path, []):
            try:
                cfg = validate(raw, {path: value}, where)
            except ConfigError:
                return None
            if cfg is None:
                return None
            symbols |= {cfg.portfolio[k] for k in RATE_KEYS if isinstance(cfg.portfolio.get(k), str)}
    cache = YieldCache()
    if not all(cache.has(s, "1d") for s in symbols):
        return None
    if engine == "auto" and unsupported(cfg0) is not None:  # backtrader runs its base: phase A would be wasted
        return None
    return symbols


def setup(
    raw: dict, spec: SweepSpec, cfg0: RunConfig, where: str, engine: str, fps: dict[str, str], symbols: set[str]
) -> Setup:
    """The phase-A setup of an ``eligible`` sweep, given the fingerprints of the series it reads."""
    # the run's stack (pandas, yield cache) loads only for a sweep
    from feeds.yields import YieldCache, load_yield

    cache = YieldCache()
    lag = cfg0.data["publication_lag_hours"]
    eng = "fast"
    return Setup(
        raw=raw, spec=spec, where=where, engine=eng, check_fast=engine in ("auto", "fast"),
        data_fps={k: fps[k] for k in fps_of(cfg0, fps)},
        yield_fps={s: str(cache.meta(s, "1d")["fingerprint"]) for s in sorted(symbols)},
        rates={s: load_yield(s, lag) for s in sorted(symbols)},
        engine_hash=engine_hash(eng), rule_hashes={n: _rule_hash(n) for n in sorted(_builtin())},
        token=uuid.uuid4().hex,
    )  # fmt: skip


def _builtin() -> set[str]:
    """Names of the rules defined in riskon's own rule package (not a user's folder or a plugin)."""
    # the rule registry loads only for a sweep
    from strategies import rules

    package = Path(rules.__file__).parent
    return {n for n in rules.available() if rules.location(n).parent == package}


def _rule_hash(name: str) -> str:
    # the rules' code hashes load only for a sweep
    from strategies.codehash import rule_hash

    return rule_hash(name)


def _strings(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


# -- the worker side ----------------------------------------------------------------------
_CACHE: dict = {}


def _grid(st: Setup) -> tuple[GridSpace, GridParser, dict]:
    """This sweep's grid, its parser and its run-id code cache in this worker (built once per sweep)."""
    if _CACHE.get("token") != st.token:
        _CACHE.clear()
        parser = GridParser(st.raw, st.spec.values, st.where)
        _CACHE.update(
            token=st.token, space=GridSpace(st.spec), parser=parser, codes={}, markets={}, keys=SettingKeys(parser)
        )
    return _CACHE["space"], _CACHE["parser"], _CACHE["codes"]


class SettingKeys:
    """``bars_key`` of a grid's combinations, computed once per choice of the swept values it can depend on.

    A combination's bars key reads its ``[data]``, ``[target]`` and ``[strategy]`` tables and its exit rule
    only, so two combinations that agree on every swept path under those have the same key.
    """

    LIMIT = 50_000

    def __init__(self, parser: GridParser) -> None:
        self.js = [j for j, p in enumerate(parser.paths) if _reads_setting(p)]
        self._keys: dict[tuple, str] = {}

    def __call__(self, idx: tuple[int, ...], cfg: RunConfig) -> str:
        """The bars key of ``cfg``, the combination ``idx``."""
        sub = tuple(idx[j] for j in self.js)
        key = self._keys.get(sub)
        if key is None:
            if len(self._keys) >= self.LIMIT:
                self._keys.clear()
            key = self._keys[sub] = bars_key(cfg)
        return key


def _reads_setting(path: str) -> bool:
    """Whether a swept path can change a combination's bars key (its data, targets, entry or exit rule)."""
    parts = path.split(".")
    if parts[0] in ("data", "target", "strategy"):
        return True
    return parts[0] == "exits" and (len(parts) == 1 or parts[1] == "rule")


class _Fallback(Exception):
    """A combination needs what the workers were not given (a rule's or a yield series' hash)."""


def worker_run_id(cfg: RunConfig, st: Setup, codes: dict) -> str:
    """``riskon.sweeps.keys.run_id`` from the hashes the driver sent: the same id, no file read on the worker."""
    names = tuple(rules_used(cfg))
    code = codes.get(names)
    if code is None:
        missing = [r for r in names if r not in st.rule_hashes]
        if missing:
            raise _Fallback(f"rule {missing[0]} is not built in")
        rules = {r: st.rule_hashes[r] for r in names}
        code = codes[names] = stable_hash({"engines": {st.engine: st.engine_hash}, "rules": rules})
    data = dict(st.data_fps)
    for key in RATE_KEYS:
        symbol = cfg.portfolio.get(key)
        if isinstance(symbol, str):
            if symbol not in st.yield_fps:
                raise _Fallback(f"yield series {symbol} was not sent")
            data[f"yield:{symbol}"] = st.yield_fps[symbol]
    return run_id_of(cfg, data, code, st.engine)


def survey_range(st: Setup, lo: int, hi: int) -> dict:
    """Phase A on a worker: validate positions ``lo`` to ``hi - 1`` and give each valid one its run id."""
    st = resolve(st)
    space, parser, codes = _grid(st)
    setting = _CACHE["keys"]
    out = {"lo": lo, "skipped": 0, "error": None, "unsupported": None, "fallback": None, "samples": {}}
    positions: list[int] = []
    ids = bytearray()
    samples: dict[str, int] = out["samples"]
    try:
        for i in range(lo, hi):
            idx = space.indices(i)
            cfg = parser.config(idx)
            if cfg is None:
                out["skipped"] += 1
                continue
            if st.check_fast and out["unsupported"] is None:
                out["unsupported"] = unsupported(cfg, st.rates)
            samples.setdefault(setting(idx, cfg), i)
            ids += bytes.fromhex(worker_run_id(cfg, st, codes))
            positions.append(i)
    except ConfigError as e:
        out["error"] = str(e)
    except _Fallback as e:
        out["fallback"] = str(e)
    out["positions"] = np.array(positions, dtype=np.int64)
    out["ids"] = bytes(ids)
    return out


def run_positions(runs: Runs, positions: np.ndarray, ids: bytes) -> list[list[dict]]:
    """Phase B on a worker: validate, plan and run the combinations at ``positions``; their store rows, per market.

    Each ok row carries its stored fields (``row_fields``) instead of its daily returns.
    """
    # the fast engine's stack (numba, pandas) loads only on a worker that runs combinations
    from riskon.sweeps.chunks import ChunkRows, evaluate_chunk, plan_setting
    from riskon.sweeps.row_fields import fields_of_rows

    runs = resolve(runs)
    st = runs.setup
    space, parser, _ = _grid(st)
    setting = _CACHE["keys"]
    groups: dict[str, list] = {}
    for k, pos in enumerate(positions.tolist()):
        idx = space.indices(pos)
        cfg = parser.config(idx)
        overrides = {p: parser.values[j][i] for j, (p, i) in enumerate(zip(parser.paths, idx, strict=True))}
        groups.setdefault(setting(idx, cfg), []).append((overrides, cfg, ids[k * ID_BYTES : (k + 1) * ID_BYTES].hex()))
    memos = _CACHE["markets"]  # per setting: buy-and-hold, growth and risk-free returns per cost group, across tasks
    out = []
    for key, members in groups.items():
        memo = memos.setdefault(key, {})
        if sum(len(m.get("benches", ())) for m in memos.values()) > MEMO_BENCHES:
            memos.clear()  # bounded: a grid of many cost groups recomputes them rather than holding them all
            memo = memos.setdefault(key, {})
        chunks = plan_setting(members, runs.markets[key], dict(st.rates), runs.sweep_id, len(members), memo)
        for chunk in chunks:
            rows = evaluate_chunk(chunk)
            if isinstance(rows, ChunkRows) and rows.with_returns:  # the fields of the chunk's runs at once
                for i, fields in zip(rows.with_returns, fields_of_rows(rows.block, chunk.market.rf), strict=True):
                    rows[i].update(fields)
            rows = list(rows)
            for row in rows:
                row.pop("rf", None)
                row["returns"] = None
            out.append(rows)
    return out


# -- the driver side ----------------------------------------------------------------------
@contextlib.contextmanager
def open_client(scheduler: str, workers: int) -> Iterator:
    """A Dask client: on a new LocalCluster (``scheduler == "local"``) or on ``scheduler``; closed after."""
    # Dask loads only for a Dask sweep
    from dask.distributed import Client, LocalCluster

    os.environ["NUMBA_NUM_THREADS"] = "1"
    cluster = None
    if scheduler == "local":
        with no_script_reimport():  # its worker processes must not re-run the user's script
            cluster = LocalCluster(
                n_workers=max(workers, 1), threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None, silence_logs=40,
            )  # fmt: skip
        client = Client(cluster)
    else:
        client = connect_client(scheduler)  # TLS beyond the loopback; one line when unreachable
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def survey_grid(fan, st: Setup) -> GridSurvey | None:
    """Phase A on the cluster, merged in grid order; None when a combination needs the driver's path.

    The first invalid combination in grid order raises its ``ConfigError``, as a local sweep's survey does.
    """
    size = GridSpace(st.spec).size
    step = max(1, min(RANGE, math.ceil(size / (fan.threads() * 4))))
    shared = fan.share(st)
    tasks = ((shared, lo, min(lo + step, size)) for lo in range(0, size, step))
    parts = sorted(fan.map(survey_range, tasks), key=lambda p: p["lo"])
    if any(p["fallback"] for p in parts):
        return None
    for p in parts:
        if p["error"]:
            raise ConfigError(p["error"])
    samples: dict[str, int] = {}
    for p in parts:
        for key, pos in p["samples"].items():
            samples.setdefault(key, pos)
    ids = np.frombuffer(b"".join(p["ids"] for p in parts), dtype=f"S{ID_BYTES}")
    positions = np.concatenate([p["positions"] for p in parts]) if parts else np.empty(0, np.int64)
    unsupported = next((p["unsupported"] for p in parts if p["unsupported"]), None)
    skipped = sum(p["skipped"] for p in parts)
    return GridSurvey(len(positions), skipped, positions, ids, sorted(samples.values()), unsupported)


def to_run(survey: GridSurvey, done: IdSet) -> tuple[np.ndarray, np.ndarray]:
    """Positions and run ids still to run: the first of each run id in grid order, none already stored."""
    if not len(survey.ids):
        return survey.positions, survey.ids
    _, first = np.unique(survey.ids, return_index=True)
    keep = np.zeros(len(survey.ids), dtype=bool)
    keep[first] = True
    if len(done):
        keep &= ~np.isin(survey.ids, done.array(ID_BYTES))
    return survey.positions[keep], survey.ids[keep]


def run_grid(fan, runs: Runs, positions: np.ndarray, ids: np.ndarray) -> Iterator[dict]:
    """Phase B on the workers: the store rows of every position to run, as the workers' batches arrive."""
    step = max(1, min(BATCH, math.ceil(len(positions) / (fan.threads() * 8))))
    shared = fan.share(runs)
    tasks = (
        (shared, positions[lo : lo + step], ids[lo : lo + step].tobytes()) for lo in range(0, len(positions), step)
    )
    for rows in fan.map(run_positions, tasks, flatten=True):
        yield from rows


def markets(frames: dict, samples: list[RunConfig]) -> dict:
    """Each rule setting's market (``riskon.sweeps.chunks.market_of``), built here, lightened to what workers read."""
    # the fast engine's planning loads only for a fast sweep
    from riskon.sweeps.chunks import market_of

    out = {}
    for cfg in samples:
        built = market_of(cfg, frames)
        if not isinstance(built, str):
            bars, assets, args = built
            built = (bars.iloc[:, :0], assets, args)  # the workers read the bars' index only
        out[bars_key(cfg)] = built
    return out


__all__ = [
    "GridSurvey",
    "Runs",
    "Setup",
    "eligible",
    "fps_of",
    "markets",
    "open_client",
    "run_grid",
    "run_positions",
    "setup",
    "survey_grid",
    "survey_range",
    "to_run",
    "worker_run_id",
]
