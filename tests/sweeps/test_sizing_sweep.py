"""Cash rate and sizing keys are run parameters: they sweep like exits keys and they change the run id.

A grid over ``[portfolio]`` sizing keys and the cash rate runs on the fast engine's lean path; every
stored metric is the one ``riskon run --engine fast`` gives, and ``--verify`` (backtrader) finds no
difference. A yield symbol's data fingerprint enters the run id: re-importing the series gives new ids.
"""

from __future__ import annotations

import json
import math

import pytest

from riskon.config import parse
from riskon.runner import run
from riskon.sweeps.driver import run_sweep
from riskon.sweeps.keys import run_id
from riskon.sweeps.spec import apply
from riskon.sweeps.verify import verify_runs

GRID = """
name = "sizing_grid"
[data]
index = "^RUT"
asset = "BTC-USD"
start = "2016-01-01"
end = "2021-12-31"
[strategy.params]
confirm_days = 3
[exits]
trailing_stop = 0.25
index_drawdown = 0.10
[portfolio]
sizing = "vol_target"
vol_target = 0.4
notional = 30000.0
[report]
tearsheet = false
chart = false
[sweep]
objective = "sharpe"
[sweep.params]
"portfolio.sizing" = ["vol_target", "notional"]
"portfolio.vol_lookback" = [20, 60]
"portfolio.cash_rate" = [0.0, 0.04]
"""


def test_a_sweep_of_sizing_keys_stores_what_a_run_gives_and_verifies(tmp_path, data_dir):
    path = tmp_path / "grid.toml"
    path.write_text(GRID, encoding="utf-8")
    res = run_sweep(path, db=tmp_path / "s.duckdb", workers=1, engine="fast")
    assert (res.total, res.ran, res.failed) == (8, 8, 0)
    base = {k: v for k, v in parse_toml(GRID).items() if k != "sweep"}
    sharpes = set()
    for row in res.runs.to_dict("records"):
        cfg = parse(apply(base, json.loads(row["params"])))
        want = run(cfg, engine="fast").metrics["strategy"]
        for m in ("total_return", "cagr", "sharpe", "max_drawdown", "trades", "exposure", "fees"):
            assert row[m] == float(want[m]) or (math.isnan(row[m]) and math.isnan(want[m])), (row["params"], m)
        sharpes.add(round(row["sharpe"], 12))
    assert len(sharpes) == 6  # vol_lookback does not change a notional run: 2 x 2 + 2 distinct results
    picked = verify_runs(path, res.runs, "sharpe", "maximize", k=2)
    assert len(picked) == 5 and all(v["differences"] == [] for v in picked)


def parse_toml(text: str) -> dict:
    import tomllib

    return tomllib.loads(text)


def test_cash_rate_and_sizing_keys_change_the_run_id():
    fps = {"^RUT@1d": "a", "BTC-USD@1d": "b"}
    base = run_id(parse({}), fps)
    ids = {
        base,
        run_id(parse({"portfolio": {"cash_rate": 0.04}}), fps),
        run_id(parse({"portfolio": {"sizing": "vol_target", "vol_target": 0.4}}), fps),
        run_id(parse({"portfolio": {"sizing": "vol_target", "vol_target": 0.4, "vol_lookback": 60}}), fps),
        run_id(parse({"portfolio": {"sizing": "vol_target", "vol_target": 0.4, "vol_cap": 0.5}}), fps),
        run_id(parse({"portfolio": {"sizing": "notional", "notional": 5000.0}}), fps),
    }
    assert len(ids) == 6
    assert run_id(parse({"portfolio": {"cash_rate": 0.0}}), fps) == base
    cfg = parse({"portfolio": {"cash_rate": 0.04}})
    assert cfg.canonical()["portfolio"]["cash_rate"] == 0.04  # stored with the run's params


def test_a_yield_symbol_enters_the_run_id_with_its_fingerprint(tmp_path):
    from feeds.errors import DataError
    from feeds.yields import import_yield

    fps = {"^RUT@1d": "a", "BTC-USD@1d": "b"}
    cfg = parse({"portfolio": {"cash_rate": "KTESTYLD"}})
    with pytest.raises(DataError, match=r"^\[portfolio\] cash_rate names the yield series KTESTYLD, which is not"):
        run_id(cfg, fps)
    csv = tmp_path / "y.csv"
    csv.write_text("date,value\n2014-01-02,1.0\n2014-01-03,1.1\n", encoding="utf-8")
    import_yield(csv, "KTESTYLD", "percent")
    first = run_id(cfg, fps)
    assert first == run_id(cfg, fps) != run_id(parse({"portfolio": {"cash_rate": 0.01}}), fps)
    csv.write_text("date,value\n2014-01-02,1.0\n2014-01-03,1.2\n", encoding="utf-8")
    import_yield(csv, "KTESTYLD", "percent", replace=True)
    assert run_id(cfg, fps) != first
    # a run that loaded the series itself hands its fingerprint in: no second lookup, the same id
    from feeds.yields import load_yield

    fp = load_yield("KTESTYLD").attrs["fingerprint"]
    assert run_id(cfg, {**fps, "yield:KTESTYLD": fp}) == run_id(cfg, fps)
