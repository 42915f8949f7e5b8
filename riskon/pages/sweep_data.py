"""The data of the sweep report: a stored sweep's finished runs, ranked, and the tables computed from them.

``load_sweep`` reads a sweep in one pass (``riskon.sweeps.param_columns.coded_runs``): run ids and metrics,
best first, and each swept parameter as codes into its few values, so that the heatmaps, slices and the
neighbours of the best run group small integers instead of hashing a Python object per run and parameter
(a 10⁶-run sweep: ~1 s for every table instead of minutes). The numbers are those of grouping the values
themselves: the same pandas ``first`` and ``median`` over the same rows in the same order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from riskon.analysis.comparison import find_sweep_objective
from riskon.config import ConfigError
from riskon.metrics import METRICS
from riskon.sweeps.param_columns import coded_runs
from riskon.sweeps.store import Store, short_name
from riskon.sweeps.sweep_reads import runs_from


@dataclass
class SweepData:
    """A stored sweep as the report needs it: its finished runs, objective and swept parameters."""

    store: Store
    info: dict
    spec: dict
    runs: pd.DataFrame
    objective: str
    direction: str
    params: list[str]  # swept parameter columns of ``runs`` (short names), in the config's order
    values: dict[str, list]  # each swept parameter's values, in grid order
    best: pd.Series = field(repr=False, default=None)
    #: each run's position in ``values[p]`` per parameter (-1: none); made from ``runs`` when not given
    codes: dict[str, np.ndarray] = field(repr=False, default_factory=dict)

    @property
    def name(self) -> str:
        """The sweep's name."""
        return str(self.info["name"])


def load_sweep(store: Store, sweep: str | None) -> SweepData:
    """Read a sweep's finished runs and its spec from the store; the best run by its objective first.

    One pass over the runs (``riskon.sweeps.param_columns.coded_runs``): their ids and metrics, ranked, and each
    swept parameter as codes into its few values; the parameter columns of ``runs`` are built from those codes.
    """
    info, spec, objective, direction = find_sweep_objective(store, sweep)
    paths = list(spec.get("values", {}))
    with store.connect(read_only=True) as con:
        got = coded_runs(con, runs_from(con, info["sweep_id"]), [info["sweep_id"]], list(METRICS), paths, objective,
                         direction)  # fmt: skip
    ok = got.frame
    if ok.empty:
        raise ConfigError(f"sweep {info['name']} has no finished runs to report")
    names = [short_name(p, paths) for p in paths]
    params, values, codes, cols = [], {}, {}, {}
    for path, col in zip(paths, names, strict=True):
        found = [_listed(json.loads(t)) for t in got.texts[path]]  # a swept list is one value: its JSON text
        if not found:
            continue
        params.append(col)
        given = [_listed(v) for v in spec["values"][path]]
        present = {v for v in found if v is not None}  # a JSON null is a missing value, as NaN is
        listed = [v for v in given if v in present]
        extra = sorted(present - set(listed), key=_order)
        values[col] = _sorted_values(listed + extra)
        at = [-1 if v is None else values[col].index(v) for v in found]
        codes[col] = np.array([*at, -1], dtype=np.int32)[got.codes[path]]  # a run without the key: -1 (last)
        cols[col] = _column(found, got.codes[path], ok.index)
    ok = pd.concat([ok[["run_id"]], pd.DataFrame(cols, index=ok.index), ok.drop(columns=["run_id"])], axis=1)
    return SweepData(store, info, spec, ok, objective, direction, params, values, ok.iloc[0], codes)


def _column(found: list, codes: np.ndarray, index: pd.Index) -> pd.Series:
    """A parameter's column from its runs' codes into ``found`` (-1: no value), with the dtype that inferring it
    from every run's value would give (ints: int64, or float64 with a missing value; floats; bools; else
    objects), inferred from the few distinct values instead."""
    missing = bool((codes < 0).any())
    held = np.empty(len(found) + missing, dtype=object)  # the values the column holds, NaN if a run has none
    held[: len(found)] = [np.nan if v is None else v for v in found]
    if missing:
        held[-1] = np.nan
    dtype = pd.Series(held, dtype=object).infer_objects().dtype
    typed = held if dtype.kind == "O" else held.astype(dtype)
    typed = typed if missing else np.append(typed, typed[:1])  # code -1 never occurs: any last value
    return pd.Series(typed[codes], index=index)


def _listed(v):
    return json.dumps(v) if isinstance(v, list | dict) else v


def _order(v):
    return (0, float(v), "") if isinstance(v, int | float) and not isinstance(v, bool) else (1, 0.0, str(v))


def _sorted_values(vals: list) -> list:
    """Numbers ascending (so neighbours are one step apart); other values in the config's order."""
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
        return sorted(vals)
    return vals


def varied(data: SweepData) -> list[str]:
    """The swept parameters that actually take more than one value among the finished runs."""
    return [p for p in data.params if len(data.values[p]) > 1]


def fmt_value(v) -> str:
    """A parameter value as the page shows it: floats in their shortest form (``0.15``, not ``0.15000000000000002``)."""
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def edge_params(data: SweepData) -> list[tuple[str, object, str, list]]:
    """Numeric swept parameters whose best-run value is the lowest or highest value tried.

    ``(parameter, best value, "lowest" | "highest", values tried ascending)`` per such parameter,
    for grid, random and Optuna sweeps alike (the values tried are those of the finished runs).
    A best run on the edge of the searched range says the optimum may lie outside it.
    """
    out = []
    for p in data.params:
        tried = sorted({v for v in data.values[p] if _is_number(v)})  # the values of the finished runs
        if len(tried) < 2 or not _is_number(data.best[p]):
            continue
        if data.best[p] == tried[0]:
            out.append((p, data.best[p], "lowest", tried))
        elif data.best[p] == tried[-1]:
            out.append((p, data.best[p], "highest", tried))
    return out


def edge_warning(data: SweepData) -> str | None:
    """One sentence naming every parameter whose best value sits on the edge of the range tried, or None."""
    edges = edge_params(data)
    if not edges:
        return None
    parts = [
        f"{p} = {fmt_value(v)} (the {side} of {len(tried)} values tried, {fmt_value(tried[0])} .. "
        f"{fmt_value(tried[-1])})"
        for p, v, side, tried in edges
    ]
    return (
        f"warning: the best run by {data.objective} sits on the edge of the searched range: {'; '.join(parts)}. "
        "The best value may lie outside the range: widen it past that edge and sweep again before trusting it."
    )


def _is_number(v) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)


def param_codes(data: SweepData, p: str) -> np.ndarray:
    """Each run's position in ``data.values[p]`` (-1: none of them), from ``load_sweep`` or made here once."""
    if p not in data.codes:
        pos: dict = {}
        for i, v in enumerate(data.values[p]):
            pos.setdefault(v, i)
        data.codes[p] = np.array([pos.get(v, -1) if v == v else -1 for v in data.runs[p]], dtype=np.int32)
    return data.codes[p]


def _at_best(data: SweepData, others: list[str]) -> np.ndarray:
    """Which runs have every parameter in ``others`` at the best run's value."""
    keep = np.ones(len(data.runs), dtype=bool)
    for p in others:
        best = data.best[p]
        code = data.values[p].index(best) if best == best and best in data.values[p] else -2
        keep &= param_codes(data, p) == code
    return keep


def heat_grids(data: SweepData, x: str, y: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The objective over (y rows, x columns): other parameters fixed at the best run's values, and their median.

    Grouped on the parameters' codes (``param_codes``): for 10⁶ runs a pair costs ~0.1 s, not seconds of
    hashing Python objects; the same pandas ``first`` and ``median`` as grouping the values themselves.
    """
    others = [p for p in data.params if p not in (x, y)]
    xs, ys = data.values[x], data.values[y]
    cx, cy = param_codes(data, x), param_codes(data, y)
    cell = np.where((cx >= 0) & (cy >= 0), cy * len(xs) + cx, -1)
    obj = pd.Series(data.runs[data.objective].to_numpy(dtype="float64"))
    fixed = _at_best(data, others) & (cell >= 0)
    return (_grid(obj[fixed].groupby(cell[fixed]).first(), xs, ys, x, y),
            _grid(obj[cell >= 0].groupby(cell[cell >= 0]).median(), xs, ys, x, y))  # fmt: skip


def _grid(by_cell: pd.Series, xs: list, ys: list, x: str, y: str) -> pd.DataFrame:
    """Values per cell number (row * len(xs) + column) as the (ys rows, xs columns) table, NaN where none."""
    grid = np.full(len(xs) * len(ys), np.nan)
    grid[by_cell.index.to_numpy(dtype=np.int64)] = by_cell.to_numpy(dtype="float64")
    return pd.DataFrame(grid.reshape(len(ys), len(xs)), index=pd.Index(ys, name=y), columns=pd.Index(xs, name=x))


def slice_of(data: SweepData, param: str) -> pd.Series:
    """The objective at each value of ``param`` with every other swept parameter at the best run's value."""
    keep = _at_best(data, [p for p in data.params if p != param])
    codes = param_codes(data, param)
    keep &= codes >= 0
    obj = pd.Series(data.runs[data.objective].to_numpy(dtype="float64"))
    got = obj[keep].groupby(codes[keep]).first()
    line = np.full(len(data.values[param]), np.nan)
    line[got.index.to_numpy(dtype=np.int64)] = got.to_numpy(dtype="float64")
    return pd.Series(line, index=pd.Index(data.values[param], name=param), name=data.objective)


def stability_table(data: SweepData) -> pd.DataFrame:
    """The best run's neighbours: each swept parameter one grid step down and up, the rest fixed."""
    out = []
    best_obj = float(data.best[data.objective])
    for p in varied(data):
        line = slice_of(data, p)
        vals = list(line.index)
        k = vals.index(data.best[p])
        for side, j in (("one step down", k - 1), ("one step up", k + 1)):
            if 0 <= j < len(vals):
                v = line.iloc[j]
                out.append(
                    {
                        "parameter": p,
                        "best value": fmt_value(vals[k]),
                        "neighbour": side,
                        "value": fmt_value(vals[j]),
                        data.objective: v,
                        "change": v - best_obj if v == v else np.nan,
                    }
                )
    return pd.DataFrame(out, columns=["parameter", "best value", "neighbour", "value", data.objective, "change"])
