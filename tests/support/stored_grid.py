"""A grid sweep written straight into a store, and its runs read back the plain way (a reference for the fast reads).

``put`` writes a sweep's runs through ``Store.write_batch`` with tied objectives (ties go to the smaller run
id), a NaN objective, a failed run, a parameter that is sometimes ``false`` and a list-valued one.
``linked`` reads a sweep's runs through the ``sweep_runs`` links with every run's JSON parsed by ``json.loads``
(nothing of ``riskon.sweeps.sweep_reads`` or ``param_columns``); ``plain`` ranks its ok runs with pandas.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math

import numpy as np
import pandas as pd

from riskon.metrics import METRICS
from riskon.sweeps.store import Store, rank_runs

GRID = {"strategy.params.a": [1, 2, 3], "exits.stop": [False, 0.1, 0.2], "target.assets": [["X"], ["X", "Y"]],
        "exits.trailing_stop": [0.05, 0.15000000000000002, 0.25]}  # fmt: skip
CONFIG = 'name = "{name}"\n[data]\nindex = "^RUT"\nasset = "BTC-USD"\n[strategy]\nrule = "ath_confirmed"\n'
#: Every combination of ``GRID``, in grid order.
COMBOS = [dict(zip(GRID, c, strict=True)) for c in itertools.product(*GRID.values())]
#: The run a sweep written by ``put`` leaves failed, and the one with a NaN objective (positions in its combos).
FAILED, NAN = 11, 7


def run_id(sweep_id: str, i: int) -> str:
    """The run id ``put`` gives the ``i``-th combination of ``sweep_id`` (not in the order written)."""
    return hashlib.sha256(f"{sweep_id}:{i}".encode()).hexdigest()[:20]


def put_sweep(store: Store, sweep_id: str, n_total: int, code_version: str = "t", key: str = "k") -> None:
    """The sweep's row: grid ``GRID``, objective Sharpe, strategy key ``key``."""
    spec = {"objective": "sharpe", "direction": "maximize", "method": "grid", "values": GRID}
    store.put_sweep({"sweep_id": sweep_id, "name": sweep_id, "config_text": CONFIG.format(name=sweep_id),
                     "spec": json.dumps(spec), "fingerprints": {}, "code_version": code_version, "status": "done",
                     "n_total": n_total, "strategy_key": key})  # fmt: skip


def row(sweep_id: str, rid: str, combo: dict, rng: np.random.Generator, sharpe: float, ok: bool = True) -> dict:
    """A run row as a sweep hands it to ``Store.write_batch``: random returns and metrics, the given Sharpe."""
    metrics = {m: float(rng.normal()) for m in METRICS}
    metrics["sharpe"] = sharpe
    return {"run_id": rid, "sweep_id": sweep_id, "params": json.dumps(combo, sort_keys=True),
            "status": "ok" if ok else "failed", "error": None if ok else "boom",
            "returns_start": pd.Timestamp("2020-01-01"), "returns": rng.normal(0.001, 0.01, 60) if ok else None,
            "bench": [0.0] * 60, **metrics}  # fmt: skip


def put(store: Store, sweep_id: str, combos: list[dict], seed: int, code_version: str = "t") -> list[str]:
    """A sweep of ``combos`` written into the store; objectives on a coarse grid (ties), one NaN, one failure."""
    put_sweep(store, sweep_id, len(combos), code_version)
    rng = np.random.default_rng(seed)
    rows = []
    for i, combo in enumerate(combos):
        sharpe = round(float(rng.normal()), 1) if i != NAN else math.nan
        rows.append(row(sweep_id, run_id(sweep_id, i), combo, rng, sharpe, ok=i != FAILED))
    store.write_batch(rows)
    return [r["run_id"] for r in rows]


def linked(store: Store, sweep_id: str) -> pd.DataFrame:
    """Every run linked to ``sweep_id``, through the links, each run's parameters parsed by ``json.loads``
    (short names: the last part of each path in ``GRID``, which are unique), lists as their JSON text."""
    with store.connect(read_only=True) as con:
        df = con.execute(
            "SELECT r.* EXCLUDE (blocks) FROM runs r JOIN sweep_runs l ON l.run_id = r.run_id WHERE l.sweep_id = ? "
            "ORDER BY r.run_id",
            [sweep_id],
        ).df()
    params = pd.DataFrame([json.loads(p) for p in df["params"]], index=df.index)
    params.columns = [c.split(".")[-1] for c in params.columns]
    params["assets"] = params["assets"].map(json.dumps)
    return pd.concat([df.drop(columns=["params"]), params], axis=1)


def plain(store: Store, sweep_id: str) -> pd.DataFrame:
    """A sweep's ok runs ranked by Sharpe as ``rank_runs`` ranks them, read by ``linked``."""
    runs = linked(store, sweep_id)
    return rank_runs(runs[runs["status"] == "ok"], "sharpe", "maximize").reset_index(drop=True)
