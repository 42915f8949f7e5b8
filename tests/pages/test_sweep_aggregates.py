"""The sweep report's tables read the store in one pass and group codes: the same numbers as plain pandas.

A grid sweep is written into a store (``support.stored_grid``: tied objectives, a NaN objective, a failed
run, a parameter that is sometimes ``false`` and a list-valued one). Every table the report shows (the
ranking, each pair's heatmaps, the slices and the best run's neighbours) is compared exactly with the
computation the report made before (pandas grouping the parameter values of every run, each run's JSON
parsed by ``json.loads``), on the sweep's own runs and on a sweep that reuses another sweep's runs.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from riskon.metrics import METRICS
from riskon.pages.sweep_data import heat_grids, load_sweep, slice_of, stability_table
from riskon.sweeps.store import Store
from support.stored_grid import COMBOS, plain, put


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("agg") / "agg.duckdb")
    put(store, "s1", COMBOS, seed=1)
    put(store, "s2", COMBOS[:6], seed=2)
    ranked = list(plain(store, "s1")["run_id"])
    reused = [*ranked[:20], ranked[-1]]  # s2 reuses s1's twenty best runs and its NaN one
    assert store.link_existing("s2", reused) == set(reused)
    return store


def plain_grids(ok: pd.DataFrame, best: pd.Series, params: list[str], values: dict, x: str, y: str):
    """The report's heatmaps as it computed them before: the other parameters at the best run's values."""
    fixed = ok
    for p in params:
        if p not in (x, y):
            fixed = fixed[fixed[p] == best[p]]
    xs, ys = values[x], values[y]
    first = fixed.groupby([y, x])["sharpe"].first().unstack(x).reindex(index=ys, columns=xs).astype("float64")
    median = ok.groupby([y, x])["sharpe"].median().unstack(x).reindex(index=ys, columns=xs).astype("float64")
    return first, median


def plain_slice(ok: pd.DataFrame, best: pd.Series, params: list[str], values: dict, p: str) -> pd.Series:
    rows = ok
    for q in params:
        if q != p:
            rows = rows[rows[q] == best[q]]
    return rows.groupby(p)["sharpe"].first().reindex(values[p]).astype("float64")


@pytest.mark.parametrize("sweep_id", ["s1", "s2"])
def test_ranking_and_columns_match_plain_pandas(store, sweep_id):
    data = load_sweep(store, sweep_id)
    ok = plain(store, sweep_id)
    assert list(data.runs["run_id"]) == list(ok["run_id"])  # ties by run id, the NaN objective last
    assert math.isnan(data.runs["sharpe"].iloc[-1])
    assert len(data.runs) == {"s1": 53, "s2": 27}[sweep_id]  # s1: 54 combinations, one failed; s2: 6 + 21 reused
    for col in data.params:
        assert data.runs[col].dtype == ok[col].dtype, col
        assert list(data.runs[col]) == list(ok[col]), col
    for m in METRICS:
        np.testing.assert_array_equal(data.runs[m].to_numpy(), ok[m].to_numpy())
    assert data.params == ["a", "stop", "assets", "trailing_stop"]
    if sweep_id == "s1":
        assert data.values["assets"] == ['["X"]', '["X", "Y"]'] and data.values["stop"] == [False, 0.1, 0.2]
        assert data.values["trailing_stop"] == [0.05, 0.15000000000000002, 0.25]
    assert data.best["run_id"] == ok["run_id"].iloc[0]


@pytest.mark.parametrize("sweep_id", ["s1", "s2"])
def test_every_heatmap_slice_and_neighbour_matches_plain_pandas(store, sweep_id):
    data = load_sweep(store, sweep_id)
    ok = plain(store, sweep_id)
    best = ok.iloc[0]
    for x, y in itertools.combinations(data.params, 2):
        first, median = heat_grids(data, x, y)
        want_first, want_median = plain_grids(ok, best, data.params, data.values, x, y)
        pd.testing.assert_frame_equal(first, want_first, check_exact=True, check_names=False)
        pd.testing.assert_frame_equal(median, want_median, check_exact=True, check_names=False)
        assert first.notna().sum().sum() >= 1  # the best run's own cell at least
    want_rows = []
    for p in data.params:
        want = plain_slice(ok, best, data.params, data.values, p)
        pd.testing.assert_series_equal(slice_of(data, p), want, check_exact=True, check_names=False)
        vals = list(want.index)
        k = vals.index(best[p])
        for side, j in (("one step down", k - 1), ("one step up", k + 1)):
            if len(vals) > 1 and 0 <= j < len(vals):
                want_rows.append((p, side, want.iloc[j], want.iloc[j] - best["sharpe"]))
    stab = stability_table(data)
    got_rows = list(zip(stab["parameter"], stab["neighbour"], stab["sharpe"], stab["change"], strict=True))
    assert len(got_rows) == len(want_rows) > 0
    for got, want in zip(got_rows, want_rows, strict=True):
        assert got[:2] == want[:2]
        np.testing.assert_array_equal(np.array(got[2:], dtype=float), np.array(want[2:], dtype=float))
