"""``--verify``: re-run stored sweep runs in backtrader and compare them with what the sweep stored.

The fast engine is trusted because the parity tests hold it equal to backtrader; ``--verify``
checks that trust on the very sweep a quant is about to believe: K random runs plus the
top 3 by the objective are re-run in backtrader from their parameters, and their daily
returns and every metric must agree to 1e-9 relative.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from riskon.config import parse
from riskon.metrics import METRICS
from riskon.runner import run
from riskon.sweeps.rulecheck import check_stored_rules, sweep_row
from riskon.sweeps.spec import apply

RTOL = 1e-9


def verify_runs(
    config: str | Path, runs: pd.DataFrame, objective: str, direction: str, k: int, seed: int = 0, store=None
):
    """Re-run ``k`` random runs plus the best 3 of ``runs`` (stored, status ok) in backtrader; list differences.

    With ``store`` (the sweep's ``Store``), a run whose rule code changed since the sweep is refused first.
    """
    raw = tomllib.loads(Path(config).read_text())
    base = {k_: v for k_, v in raw.items() if k_ != "sweep"}
    # DuckDB loads only when the store is used
    from riskon.sweeps.store import rank_runs

    best = rank_runs(runs, objective, direction).head(3)
    rest = runs.drop(best.index)
    rng = np.random.default_rng(seed)
    sample = rest.iloc[rng.choice(len(rest), min(k, len(rest)), replace=False)] if len(rest) else rest
    out = []
    for row in pd.concat([best, sample]).to_dict("records"):
        cfg = parse(apply(base, json.loads(row["params"])), str(config))
        if store is not None:
            check_stored_rules(sweep_row(store, row["sweep_id"]), cfg, f"run {row['run_id']}")
        res = run(cfg, engine="backtrader")
        diffs = []
        for m in METRICS:
            a, b = row[m], res.metrics.at[m, "strategy"]
            if not (np.isclose(a, b, rtol=RTOL, atol=1e-12) or (pd.isna(a) and pd.isna(b))):
                diffs.append(f"{m} {a!r} vs {b!r}")
        out.append({"run_id": row["run_id"], "engine": row.get("engine") or "?", "differences": diffs})
    return out
