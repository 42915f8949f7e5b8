"""``riskon store migrate``: convert a layout-2 store (daily returns per run) to layout 3 (``row_fields``).

Layout 2 kept every run's daily returns as a ``DOUBLE[]``; layout 3 keeps their digest, moments and per-block
sums instead and rebuilds the returns on demand. The conversion reads the old file a batch of runs at a time,
computes each run's fields from its stored returns (in excess of its risk-free rate, as the statistics used
them), writes a new file beside it and then swaps the two: the old file is kept as ``<name>.v2.bak`` and the
store is never half converted (a crash leaves the old file in place and a ``.migrating`` file to delete).
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from riskon.sweeps.row_fields import row_fields
from riskon.sweeps.store import FIELD_COLS, SCHEMA_VERSION, Store
from riskon.sweeps.store_errors import StoreError

#: Runs converted per batch (their returns are in memory together).
BATCH = 256


@dataclass(frozen=True)
class Migrated:
    """What ``migrate`` did: the layout found, runs converted, file sizes before and after, the backup kept."""

    found: str
    runs: int
    bytes_before: int
    bytes_after: int
    backup: Path | None


def _rf(config_text: str, params: str, start, n: int, memo: dict) -> np.ndarray | None:
    """A run's risk-free returns per day (None for a rate of 0), as the layout-2 statistics subtracted them."""
    # the config and rates stack loads only when a store is migrated
    from riskon.config import parse
    from riskon.metrics import rf_per_bar
    from riskon.runner import config_rate
    from riskon.sweeps.spec import apply

    base = {k: v for k, v in tomllib.loads(config_text).items() if k != "sweep"} if (config_text or "").strip() else {}
    raw = apply(base, json.loads(params) if params else {})
    rate = (raw.get("portfolio") or {}).get("risk_free", 0.0)
    if not isinstance(rate, str) and float(rate) == 0.0:
        return None
    lag = float((raw.get("data") or {}).get("publication_lag_hours", 0.0))
    key = (rate, lag, str(start), n)
    if key not in memo:
        days = pd.date_range(pd.Timestamp(start).normalize(), periods=n, freq="D", tz="UTC")
        memo[key] = rf_per_bar(days, config_rate(parse(raw, "the run's config"), "risk_free"))
    return memo[key]


def migrate(path: str | Path) -> Migrated:
    """Convert the store at ``path`` to layout ``SCHEMA_VERSION`` (nothing to do when it already is)."""
    path = Path(path)
    old = Store(path)
    with old.connect(read_only=True, as_is=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        found = (
            con.execute("SELECT value FROM store_meta WHERE key = 'schema'").fetchone()
            if "store_meta" in tables
            else None
        )
    size = path.stat().st_size
    if found is None:
        raise StoreError(f"{path} is not a riskon results store this riskon can migrate (no layout recorded)")
    if found[0] == SCHEMA_VERSION:
        return Migrated(found[0], 0, size, size, None)
    if found[0] != "2":
        raise StoreError(old.version_message(found[0]))
    work = path.with_name(path.name + ".migrating")
    work.unlink(missing_ok=True)
    new = Store(work)
    runs = 0
    with old.connect(read_only=True, as_is=True) as src, new.connect() as dst:
        for table in ("sweeps", "sweep_runs", "benchmarks"):
            df = src.execute(f"SELECT * FROM {table}").df()
            dst.register("t", df)
            dst.execute(f"INSERT INTO {table} BY NAME SELECT * FROM t")
            dst.unregister("t")
        configs = dict(src.execute("SELECT sweep_id, config_text FROM sweeps").fetchall())
        src.execute("SELECT * FROM runs ORDER BY run_id")
        memo: dict = {}
        while batch := src.fetchmany(BATCH):
            cols = [d[0] for d in src.description]
            df = pd.DataFrame(batch, columns=cols)
            fields = []
            for r in df.itertuples():
                if r.returns is None or r.status != "ok":
                    fields.append(dict.fromkeys(FIELD_COLS))
                    continue
                returns = np.asarray(r.returns, dtype="float64")
                rf = _rf(configs.get(r.sweep_id, ""), r.params, r.returns_start, len(returns), memo)
                fields.append(row_fields(returns, rf))
            out = pd.concat([df.drop(columns=["returns"]), pd.DataFrame(fields, index=df.index)], axis=1)
            for col in ("n_days", "digest"):
                out[col] = out[col].astype("Int64")
            dst.register("b", out)
            dst.execute("INSERT INTO runs BY NAME SELECT * FROM b")
            dst.unregister("b")
            runs += len(df)
    backup = path.with_name(path.name + ".v2.bak")
    os.replace(path, backup)
    os.replace(work, path)
    return Migrated(found[0], runs, size, path.stat().st_size, backup)


__all__ = ["BATCH", "Migrated", "migrate"]
