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
from dataclasses import dataclass

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


@dataclass
class CodedRuns:
    """A sweep's ok runs best first, for the sweep report: run ids, metrics and each parameter as codes.

    ``frame``: ``run_id`` (Arrow strings: no Python object per run) and the metric columns, ranked as
    ``riskon.sweeps.store.rank_runs`` ranks (objective in ``direction``, NaN and missing last, ties by run id).
    ``codes[path]``: each run's position in ``texts[path]`` (-1: the run has no such key); ``texts[path]``:
    the distinct JSON texts of that parameter's values, a handful per parameter whatever the sweep's size.
    """

    frame: pd.DataFrame
    codes: dict[str, np.ndarray]
    texts: dict[str, list[str]]


def coded_runs(con, runs_sql: str, args: list, metrics: list[str], paths: list[str], objective: str,
               direction: str) -> CodedRuns:  # fmt: skip
    """Read the ok runs that ``runs_sql`` (``FROM ... WHERE ...`` over ``runs r``) selects, one pass over them.

    DuckDB extracts every parameter's value text in one parse of each run's JSON; Arrow ranks the rows and
    numbers each parameter's texts (``dictionary_encode``), so a 10⁶-run sweep never becomes 10⁶ dicts or
    Python strings: ~8 bytes per run and metric, 4 per parameter, ~25 for the run id.
    """
    # Arrow's compute kernels load only for a sweep report
    import pyarrow as pa
    import pyarrow.compute as pc

    picked = ", ".join(f"r.{m}" for m in metrics)
    texts = ", ".join(f"v[{i + 1}]::VARCHAR AS __p{i}" for i in range(len(paths)))
    sql = (f"WITH e AS (SELECT r.run_id, {picked}, json_extract(r.params, ?::VARCHAR[]) AS v {runs_sql} AND "
           f"r.status = 'ok') SELECT run_id, {', '.join(metrics)}{', ' + texts if paths else ''} FROM e")  # fmt: skip
    with con.cursor() as cur:  # a cursor of its own: the connection may hold another query's unfinished result
        table = cur.sql(sql, params=[[_path(p) for p in paths], *args]).to_arrow_table()
    order = rank_order(table, objective, direction)
    codes, found = {}, {}
    for i, path in enumerate(paths):  # numbered before ranking: only the small codes are reordered
        coded = pc.dictionary_encode(table.column(f"__p{i}").combine_chunks())
        codes[path] = pc.fill_null(coded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)[order]
        found[path] = coded.dictionary.to_pylist()
    ids = pd.arrays.ArrowExtensionArray(table.column("run_id").combine_chunks().take(pa.array(order)))
    cols = {
        "run_id": ids,
        **{m: table.column(m).to_numpy(zero_copy_only=False).astype("float64")[order] for m in metrics},
    }
    return CodedRuns(pd.DataFrame(cols), codes, found)


def rank_order(table, objective: str, direction: str) -> np.ndarray:
    """Row order of an Arrow table of runs as ``rank_runs`` ranks them: ``objective`` in ``direction``, NaN and
    missing last, ties by ``run_id``.

    Stable sorts from the last key to the first: the run ids (of one length, as every id riskon makes: compared
    as fixed-width bytes, their text order), then the objective, then NaN last. ~0.8 s for 10⁶ runs under
    load, where Arrow's sort by the three keys took ~3 s and ``numpy.lexsort`` ~1.6 s.
    """
    # Arrow's compute kernels load only for a sweep report
    import pyarrow.compute as pc

    obj = table.column(objective).to_numpy(zero_copy_only=False).astype("float64")
    ids = table.column("run_id").combine_chunks()
    n = len(ids)
    ends = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset : ids.offset + n + 1] if n else None
    width = int(ends[1] - ends[0]) if n else 0
    if n and ids.null_count == 0 and width > 0 and np.all(np.diff(ends) == width):
        raw = np.frombuffer(ids.buffers()[2], dtype=np.uint8)[ends[0] : ends[-1]]
        order = np.argsort(raw.view(f"S{width}"), kind="stable")
    else:  # ids of different lengths: by their ranks in text order
        order = np.argsort(pc.rank(ids, sort_keys="ascending", tiebreaker="first").to_numpy(), kind="stable")
    bad = np.isnan(obj)
    score = np.where(bad, 0.0, obj if direction == "minimize" else -obj)
    order = order[np.argsort(score[order], kind="stable")]
    return order[np.argsort(bad[order], kind="stable")]


def expand_params(df: pd.DataFrame) -> pd.DataFrame:
    """Stored runs with their JSON parameters expanded into columns (short names), after run_id and sweep_id."""
    params = pd.DataFrame([json.loads(p) for p in df["params"]], index=df.index) if len(df) else pd.DataFrame()
    params.columns = [short_name(c, list(params.columns)) for c in params.columns]
    return pd.concat([df[["run_id", "sweep_id"]], params, df.drop(columns=["run_id", "sweep_id"])], axis=1)


def short_name(path: str, all_paths: list[str]) -> str:
    """A parameter column name: the last part of its dotted path when unique, else the path with '_'."""
    leaf = path.split(".")[-1]
    if sum(p.split(".")[-1] == leaf for p in all_paths) == 1:
        return leaf
    return path.replace(".", "_")


__all__ = ["CodedRuns", "coded_runs", "expand_params", "expanded_runs", "rank_order", "short_name"]
