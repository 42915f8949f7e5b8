"""Rebuild stored runs' daily returns on demand, only when the data and the code are still those of the run.

The store keeps no run's daily returns (``riskon.sweeps.store``): a page that needs them (a run's tear
sheet, the sweep report's best run, ``riskon compare``) reruns the run from its sweep's config and its
parameters. A rebuild is allowed only when

* the cache still holds every series the run read, with the fingerprint its sweep recorded: the current
  version, or an older one the cache kept (``feeds.cache.Cache.read_version``), else a ``DataError`` names
  the series;
* the run's code is this riskon's: the run id recomputed from the config, the fingerprints and the code the
  run uses (``riskon.sweeps.keys.run_id``) equals the stored one, else a ``StoreError`` says the code changed;
* the rebuilt returns have the stored start, length and digest, else a ``StoreError`` names the run.

Fast-engine runs are rebuilt with the sweep's own chunk kernel (``riskon.sweeps.chunks``), backtrader runs
with ``riskon.runner.run``: each the engine that stored it, so the doubles are the stored ones.
"""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pandas as pd

from feeds.cache import Cache
from feeds.errors import DataError
from feeds.loader import load
from riskon.config import RunConfig, parse
from riskon.sweeps.keys import code_version, rules_used, run_id, series_needed
from riskon.sweeps.row_fields import digest
from riskon.sweeps.rulecheck import check_stored_rules
from riskon.sweeps.spec import apply
from riskon.sweeps.store_errors import StoreError
from strategies.codehash import rule_hash
from strategies.errors import RuleError


def _config(sweep: dict, row: dict) -> RunConfig:
    raw = tomllib.loads(sweep["config_text"])
    base = {k: v for k, v in raw.items() if k not in ("sweep",)}
    return parse(apply(base, json.loads(row["params"])), f"sweep {sweep['name']} run {row['run_id']}")


def series_as_stored(symbol: str, timeframe: str, fingerprint: str, cache: Cache, who: str) -> pd.DataFrame:
    """The cached series ``symbol`` as a run saw it (by fingerprint): the current version or a kept older one."""
    frame = load(symbol, timeframe, cache=cache)
    if frame.attrs.get("fingerprint") == fingerprint:
        return frame
    older = cache.read_version(symbol, timeframe, fingerprint)
    if older is None:
        raise DataError(
            f"{who} read {symbol} ({timeframe}) with fingerprint {fingerprint}; the cache {cache.root} now holds "
            f"{frame.attrs.get('fingerprint')} and no longer keeps that version, so its returns cannot be "
            "rebuilt; re-run its sweep on the current data"
        )
    return older


def rebuild_returns(store, rows: list[dict], cache: Cache | None = None) -> list[np.ndarray | None]:
    """Each row's daily returns, rebuilt and checked against its stored digest (None for a failed run).

    ``rows``: stored run rows (``run_id``, ``sweep_id``, ``params``, ``engine``, ``status``,
    ``returns_start``, ``n_days``, ``digest``). One line (``DataError``/``StoreError``) for the first run
    that cannot be rebuilt as stored.
    """
    cache = cache or Cache()
    sweeps: dict[str, dict] = {}
    out: list[np.ndarray | None] = [None] * len(rows)
    fast: list[tuple[int, dict, RunConfig, dict]] = []
    for i, row in enumerate(rows):
        if row.get("status") != "ok":
            continue
        sid = row["sweep_id"]
        if sid not in sweeps:
            sweeps[sid] = store.sweep_row(sid)
        sweep = sweeps[sid]
        cfg = _config(sweep, row)
        who = f"run {row['run_id']}"
        stored_fps = json.loads(sweep["fingerprints"] or "{}")
        frames: dict[tuple[str, str], pd.DataFrame] = {}
        for symbol, tf in series_needed([cfg]):
            key = f"{symbol}@{tf}"
            if key not in stored_fps:
                raise StoreError(f"{who}: its sweep recorded no fingerprint for {key}; re-run its sweep")
            frames[(symbol, tf)] = series_as_stored(symbol, tf, stored_fps[key], cache, who)
        engine = row.get("engine") or "backtrader"
        fps = {f"{s}@{tf}": f.attrs["fingerprint"] for (s, tf), f in frames.items()}
        if run_id(cfg, fps, engine) != row["run_id"]:
            check_stored_rules(sweep, cfg, who)  # a rule edited since: the line names the rule and its folder
            if not _code_changed(sweep, cfg):  # same code and data: the id itself does not belong to this run
                raise StoreError(
                    f"{who}: its id is not the one its parameters, data and code give ({run_id(cfg, fps, engine)}); "
                    "the store was edited by hand or is damaged, so its returns cannot be rebuilt as stored; "
                    "re-run its sweep"
                )
            raise StoreError(
                f"{who} was computed by other code (its sweep: riskon {sweep['code_version']}; now "
                f"{code_version()}): the {engine} engine, a rule it uses or a yield series it names "
                "changed since, so its returns cannot be rebuilt as stored; re-run its sweep"
            )
        if engine == "fast":
            fast.append((i, row, cfg, frames))
        else:
            # the backtest stack loads only when a run is rebuilt
            from riskon.runner import run

            given = {s: f for (s, _), f in frames.items()}
            out[i] = run(cfg, cache=cache, engine="backtrader", given=given).returns.to_numpy(dtype="float64")
    if fast:
        _rebuild_fast(fast, out)
    for i, row in enumerate(rows):
        if out[i] is not None:
            _check(row, out[i])
    return out


def _code_changed(sweep: dict, cfg: RunConfig) -> bool:
    """Whether the engines' code (the sweep's ``code_version``) or a rule ``cfg`` uses changed since its sweep."""
    if code_version() != sweep["code_version"]:
        return True
    hashes = json.loads(sweep.get("rule_hashes") or "{}")
    for name in rules_used(cfg):
        try:
            if name in hashes and rule_hash(name) != hashes[name]:
                return True
        except RuleError:  # the rule is gone
            return True
    return False


def _rebuild_fast(fast: list, out: list) -> None:
    """Fast-engine runs through the sweep's own kernel: ``chunks.plan`` + ``evaluate_chunk``, per data setting."""
    # numba loads only for the fast engine
    from riskon.sweeps.chunks import evaluate_chunk, plan

    by_frames: dict[int, tuple[dict, list]] = {}
    for i, row, cfg, frames in fast:
        key = hash(tuple(sorted((k, f.attrs["fingerprint"]) for k, f in frames.items())))
        by_frames.setdefault(key, (frames, []))[1].append((json.loads(row["params"]), cfg, row["run_id"], i))
    for frames, members in by_frames.values():
        where = {rid: i for _, _, rid, i in members}
        tasks = [(ov, cfg, rid) for ov, cfg, rid, _ in members]
        for chunk in plan(tasks, frames, "rebuild", 256):
            for r in evaluate_chunk(chunk):
                if r["status"] != "ok":
                    raise StoreError(f"run {r['run_id']} failed when rebuilt: {r['error']}")
                out[where[r["run_id"]]] = np.array(r["returns"], dtype=np.float64)


def _check(row: dict, returns: np.ndarray) -> None:
    start_ok = row.get("returns_start") is None or pd.isna(row["n_days"]) or len(returns) == int(row["n_days"])
    if not start_ok or (row.get("digest") is not None and not pd.isna(row["digest"])
                        and digest(returns) != int(row["digest"])):  # fmt: skip
        raise StoreError(
            f"run {row['run_id']}: its rebuilt returns differ from the stored ones ({len(returns)} days against "
            f"{row['n_days']}, or another digest), although data and code match; report this as a bug"
        )


__all__ = ["rebuild_returns", "series_as_stored"]
