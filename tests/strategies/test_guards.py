"""Guards against silent mistakes: each bad setup fails with one clear line instead of wrong numbers."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from feeds.errors import DataError
from riskon.config import ConfigError, parse
from riskon.sweeps.store import Store, StoreError


def test_any_of_with_a_filter_branch_is_refused():
    with pytest.raises(ConfigError, match="at least one event rule"):
        parse({"strategy": {"entry": {"any_of": ["ath_confirmed", {"rule": "index_above_ma", "window": 200}]}}})


def test_index_below_break_needs_rules_that_report_a_level(monkeypatch):
    from strategies.rules import get

    parse({"exits": {"index_below_break": True}})  # ath_confirmed reports its broken level
    monkeypatch.setattr(get("ath_confirmed"), "level", False)
    with pytest.raises(ConfigError, match="index_below_break needs event rules .*ath_confirmed"):
        parse({"exits": {"index_below_break": True}})


def test_asset_and_targets_must_agree():
    with pytest.raises(ConfigError, match="drop \\[data\\] asset"):
        parse({"data": {"asset": "ETH-USD"}, "target": {"assets": ["BTC-USD"]}})
    assert parse({"target": {"assets": ["ETH-USD"]}}).data["asset"] == "ETH-USD"


def test_gap_inside_a_traded_coin_is_refused(data_dir):
    from feeds.loader import load
    from riskon.runner import build_bars

    cfg = parse({"data": {"start": "2020-01-01", "end": "2020-12-31"}})
    btc = load("BTC-USD")
    btc = btc[(btc.index >= "2020-01-01") & (btc.index <= "2020-12-31")]
    holed = btc.drop(btc.index[[100, 101]])
    holed.attrs = dict(btc.attrs)
    with pytest.raises(DataError, match="2 missing bar\\(s\\) inside its history \\(2020-04-10"):
        build_bars(cfg, load("^RUT"), {"BTC-USD": holed})


def test_nan_index_close_is_refused(data_dir):
    from feeds.align import session_frame
    from feeds.loader import load

    rut = load("^RUT").copy()
    rut.iloc[5, rut.columns.get_loc("adj_close")] = np.nan
    with pytest.raises(DataError, match="adj_close is missing or not positive on 1987-09-17"):
        session_frame(rut, price="adj_close")


def test_older_store_layout_gives_one_clear_line(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE runs (run_id VARCHAR PRIMARY KEY, returns DOUBLE[], bench DOUBLE[])")
    con.close()
    with pytest.raises(StoreError, match="older riskon"):
        Store(path).put_sweep({})
    not_db = tmp_path / "x.duckdb"
    not_db.write_text("not a database")
    with pytest.raises(StoreError, match="cannot be opened"):
        Store(not_db).done_ids("s")


def test_a_run_shared_by_two_sweeps_is_linked_to_both(tmp_path, data_dir):
    from riskon.sweeps.driver import run_sweep

    text = """name = "shared"
description = "first"
[data]
start = "2020-06-01"
end = "2021-06-30"
[strategy.params]
confirm_days = 1
[sweep]
batch_size = 2
[sweep.params]
"exits.trailing_stop" = [0.1, 0.2]
"""
    a = tmp_path / "a.toml"
    a.write_text(text)
    first = run_sweep(a, db=tmp_path / "r.duckdb", workers=1, engine="fast")
    assert (first.ran, first.total) == (2, 2)
    a.write_text(
        text.replace('description = "first"', 'description = "second"').replace("[0.1, 0.2]", "[0.1, 0.2, 0.3]")
    )
    second = run_sweep(a, db=tmp_path / "r.duckdb", workers=1, engine="fast")
    assert second.sweep_id != first.sweep_id
    assert (second.ran, second.already_done, second.total) == (1, 2, 3)
    assert len(second.runs) == 3 and set(first.runs["run_id"]) < set(second.runs["run_id"])
    pd.testing.assert_series_equal(
        first.runs.set_index("run_id")["sharpe"].sort_index(),
        second.runs.set_index("run_id").loc[first.runs["run_id"], "sharpe"].sort_index(),
    )
