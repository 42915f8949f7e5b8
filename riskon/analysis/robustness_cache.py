"""A sweep's robustness (PSR, DSR, PBO) stored once in the results store, keyed by its set of distinct trials.

``riskon results`` and the sweep report print the same robustness every time until the trials change: a
new distinct run of the strategy in any sweep, or a run newly linked to this sweep. The key is the
``trials_key`` of the strategy's distinct trials (``Store.trials_summary``) with the count of the sweep's
ok runs; the ``robustness`` table keeps one row per sweep and split count, replaced when the key differs.
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pandas as pd

from riskon.analysis.overfitting import PBOResult
from riskon.sweeps.store import Store, StoreError

_ARRAYS = ("logits", "is_best", "oos_best", "overfit", "oos_loss")
_CSCV_SCALARS = ("pbo", "n_combinations", "n_splits", "n_periods", "n_strategies", "dropped_rows", "duplicates",
                 "tied")  # fmt: skip


def load(store: Store, sweep_id: str, n_splits: int, key: str) -> tuple[dict, PBOResult | None] | None:
    """The stored fields and CSCV result for ``key``; None when nothing (or another key) is stored."""
    with store.connect(read_only=True) as con:
        row = con.execute(
            "SELECT payload, arrays FROM robustness WHERE sweep_id = ? AND n_splits = ? AND trials_key = ?",
            [sweep_id, n_splits, key],
        ).fetchone()
    if row is None:
        return None
    fields = json.loads(row[0])
    cscv = None
    if fields.pop("cscv", None) is not None:
        with np.load(io.BytesIO(row[1])) as npz:
            arrays = {k: npz[k] for k in _ARRAYS}
        cscv = PBOResult(**{k: fields.pop(f"cscv_{k}") for k in _CSCV_SCALARS}, **arrays)
    for k in ("start", "end"):
        fields[k] = pd.Timestamp(fields[k]) if fields[k] else pd.NaT
    return fields, cscv


def save(store: Store, sweep_id: str, n_splits: int, key: str, fields: dict, cscv: PBOResult | None) -> bool:
    """Store the robustness under ``key`` (replacing an older one); False when the store is busy or read-only."""
    payload = {k: (None if pd.isna(v) else str(v)) if k in ("start", "end") else v for k, v in fields.items()}
    blob = b""
    if cscv is not None:
        payload["cscv"] = True
        payload.update({f"cscv_{k}": getattr(cscv, k) for k in _CSCV_SCALARS})
        buf = io.BytesIO()
        np.savez(buf, **{k: np.asarray(getattr(cscv, k), dtype="float64") for k in _ARRAYS})
        blob = buf.getvalue()
    text = json.dumps(payload, default=_plain)
    with contextlib.suppress(StoreError):  # busy (a sweep is writing) or a read-only folder: computed again next time
        with Store(store.path, timeout=2.0).connect() as con:
            con.execute(
                "INSERT OR REPLACE INTO robustness VALUES (?, ?, ?, ?, ?)", [sweep_id, n_splits, key, text, blob]
            )
        return True
    return False


def _plain(v):
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return str(v)


__all__ = ["load", "save"]
