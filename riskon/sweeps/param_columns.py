"""Stored runs with their JSON parameters as columns, parsed by DuckDB: a million runs in seconds.

``Store.runs`` returned every run with its ``params`` JSON expanded by ``json.loads`` per run and a
DataFrame built from a million dicts: ~1 minute and ~2 GB for a 10⁶-run sweep (the sweep report reads one).
A swept parameter takes a handful of values, so here DuckDB extracts each parameter's value text per run
(``json_extract``, in C++), numbers each run's value among that parameter's few distinct texts, and only
those few texts are parsed in Python; each column is then one array lookup. The columns, their order
(keys in the order of the first run that has them), dtypes and missing values are those of
``riskon.sweeps.store.expand_params``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd


def _path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def expanded_runs(con, sql: str, args: list, order: str, short_name, keep_params: bool = True) -> pd.DataFrame:
    """The rows of ``sql`` (with ``run_id`` and ``params``), ordered by ``order``, each parameter a column
    named by ``short_name(key, keys)`` after ``run_id`` and ``sweep_id``; ``keep_params=False`` drops the
    JSON text itself."""
    keys: list[str] = []
    for (found,) in con.execute(
        f"SELECT json_keys(params) AS k FROM ({sql}) GROUP BY k ORDER BY min({order})", args
    ).fetchall():
        keys += [k for k in found or [] if k not in keys]
    texts = []
    for key in keys:
        rows = con.execute(f"SELECT DISTINCT json_extract(params, ?)::VARCHAR AS v FROM ({sql}) WHERE v IS NOT NULL",
                           [_path(key), *args]).fetchall()  # fmt: skip
        texts.append([v for (v,) in rows])
    code = "coalesce(list_position(?, json_extract(params, ?)::VARCHAR), 0) AS __p{}"
    codes = ", ".join(code.format(i) for i in range(len(keys)))
    bind = [x for key, t in zip(keys, texts, strict=True) for x in (t, _path(key))]
    star = "*" if keep_params else "* EXCLUDE (params)"
    df = con.execute(f"SELECT {star}{', ' + codes if keys else ''} FROM ({sql}) ORDER BY {order}", [*bind, *args]).df()
    if "sweep_id" not in df:
        df["sweep_id"] = None
    cols = {}
    for i, (key, t) in enumerate(zip(keys, texts, strict=True)):
        values = np.empty(len(t) + 1, dtype=object)  # element by element: a list value stays one value
        values[0] = np.nan
        for k, v in enumerate(t, start=1):
            values[k] = json.loads(v)
        cols[short_name(key, keys)] = pd.Series(values[df.pop(f"__p{i}").to_numpy()], index=df.index).infer_objects()
    params = pd.DataFrame(cols, index=df.index)
    return pd.concat([df[["run_id", "sweep_id"]], params, df.drop(columns=["run_id", "sweep_id"])], axis=1)


__all__ = ["expanded_runs"]
