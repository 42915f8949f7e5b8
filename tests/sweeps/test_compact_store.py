"""The compact store (layout 3): rebuilt returns bit for bit, refusals naming what changed, migration of layout 2."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from feeds.errors import DataError
from riskon.metrics import METRICS
from riskon.runner import run
from riskon.sweeps.driver import run_sweep
from riskon.sweeps.row_fields import row_fields
from riskon.sweeps.spec import apply
from riskon.sweeps.store import Store, StoreError, rank_runs
from support.sweep_store import CONFIG, call, make_sweep

#: The layout-2 tables exactly as the riskon before layout 3 created them (its store.py SCHEMA).
V2_SCHEMA = f"""
CREATE TABLE sweeps (sweep_id VARCHAR PRIMARY KEY, name VARCHAR, config_text VARCHAR, spec VARCHAR,
    fingerprints VARCHAR, code_version VARCHAR, created TIMESTAMP, status VARCHAR, n_total INTEGER,
    strategy_key VARCHAR, lookahead VARCHAR, rule_hashes VARCHAR);
CREATE TABLE runs (run_id VARCHAR PRIMARY KEY, sweep_id VARCHAR, params VARCHAR, status VARCHAR, error VARCHAR,
    {", ".join(f"{m} DOUBLE" for m in METRICS)}, seconds DOUBLE, finished TIMESTAMP, worker VARCHAR,
    engine VARCHAR, returns_start TIMESTAMP, returns DOUBLE[], bench_id VARCHAR);
CREATE TABLE benchmarks (bench_id VARCHAR PRIMARY KEY, returns DOUBLE[]);
CREATE TABLE sweep_runs (sweep_id VARCHAR, run_id VARCHAR, PRIMARY KEY (sweep_id, run_id));
CREATE TABLE store_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
INSERT INTO store_meta VALUES ('schema', '2');
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory, data_dir) -> tuple[Path, str]:
    return make_sweep(tmp_path_factory.mktemp("compact"))


def _config_of(store: Store, row: dict):
    import tomllib

    from riskon.config import parse

    text = store.sweep_row(row["sweep_id"])["config_text"]
    base = {k: v for k, v in tomllib.loads(text).items() if k != "sweep"}
    return parse(apply(base, json.loads(row["params"])), "test")


def test_stored_runs_rebuild_bit_for_bit_as_riskon_run_gives_them(swept):
    db, sid = swept
    store = Store(db)
    runs = store.runs(sid)
    assert "returns" not in runs.columns and (runs["n_days"] == 1096).all()
    for rid in runs["run_id"].iloc[[0, 7, 23]]:
        row = store.run(rid)
        want = run(_config_of(store, row), engine="fast").returns
        assert np.array_equal(row["returns"].to_numpy(), want.to_numpy())  # the very doubles
        assert row["returns"].index[0] == want.index[0].tz_convert(None) and len(row["returns"]) == len(want)


def test_backtrader_runs_rebuild_with_backtrader(tmp_path, data_dir):
    cfg = tmp_path / "bt.toml"
    cfg.write_text(CONFIG.format(name="btsweep").replace('{ start = 0.1, stop = 0.3, step = 0.1 }', "[0.2]")
                   .replace("[1, 2, 3, 5]", "[2]"), encoding="utf-8")  # fmt: skip
    res = run_sweep(cfg, db=tmp_path / "s.duckdb", workers=1, engine="backtrader")
    store = Store(tmp_path / "s.duckdb")
    rid = store.runs(res.sweep_id)["run_id"].iloc[0]
    row = store.run(rid)
    want = run(_config_of(store, row), engine="backtrader").returns
    assert row["engine"] == "backtrader" and np.array_equal(row["returns"].to_numpy(), want.to_numpy())


def test_a_rebuild_is_refused_when_the_data_or_the_code_changed(tmp_path, swept):
    db, sid = swept
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(db.read_bytes())
    store = Store(copy)
    rid = store.runs(sid)["run_id"].iloc[0]
    fps = json.loads(store.sweep_row(sid)["fingerprints"])
    now = fps["BTC-USD@1d"]
    with duckdb.connect(str(copy)) as con:
        con.execute("UPDATE sweeps SET fingerprints = ?", [json.dumps({**fps, "BTC-USD@1d": "0123456789abcdef"})])
    with pytest.raises(DataError) as e:
        store.run(rid)
    from feeds.cache import Cache

    assert str(e.value) == (
        f"run {rid} read BTC-USD (1d) with fingerprint 0123456789abcdef; the cache {Cache().root} now holds {now} "
        "and no longer keeps that version, so its returns cannot be rebuilt; re-run its sweep on the current data"
    )
    with duckdb.connect(str(copy)) as con:  # the data as it was, but a run id this code does not give
        con.execute("UPDATE sweeps SET fingerprints = ?", [json.dumps(fps)])
        params = json.loads(con.execute("SELECT params FROM runs WHERE run_id = ?", [rid]).fetchone()[0])
        key = next(k for k, v in sorted(params.items()) if isinstance(v, float))
        edited = json.dumps({**params, key: params[key] + 0.05}, sort_keys=True)
        con.execute("UPDATE runs SET params = ? WHERE run_id = ?", [edited, rid])
    with pytest.raises(StoreError, match=rf"^run {rid}: its id is not the one its parameters, data and code give "):
        store.run(rid)  # same code: the row was edited
    with duckdb.connect(str(copy)) as con:  # ...and once the engines' code differs from the sweep's
        con.execute("UPDATE sweeps SET code_version = '0.0.1+000000000000'")
    with pytest.raises(StoreError, match=rf"^run {rid} was computed by other code \(its sweep: riskon 0\.0\.1\+0"):
        store.run(rid)


def _v2_copy(store: Store, sid: str, path: Path) -> None:
    """A layout-2 file holding the sweep of ``store`` with every run's daily returns, as the old riskon wrote it."""
    runs = store.runs(sid)
    rows = store.runs(sid).to_dict("records")
    returns = store.rebuilt_returns(rows)
    with duckdb.connect(str(path)) as con:
        con.execute(V2_SCHEMA)
        sweeps = pd.DataFrame([store.sweep_row(sid)])
        con.register("s", sweeps)
        con.execute("INSERT INTO sweeps BY NAME SELECT * FROM s")
        with store.connect(read_only=True) as src:
            bench = src.execute("SELECT * FROM benchmarks").df()
        con.register("b", bench)
        con.execute("INSERT INTO benchmarks SELECT * FROM b")
        cols = ["run_id", "sweep_id", "params", "status", "error", *METRICS, "seconds", "finished", "worker", "engine",
                "returns_start", "bench_id"]  # fmt: skip
        old = runs[cols].copy()
        old["returns"] = [list(r) for r in returns]
        con.register("r", old)
        con.execute("INSERT INTO runs BY NAME SELECT * FROM r")
        con.execute("INSERT INTO sweep_runs SELECT sweep_id, run_id FROM r")


def test_a_layout_2_store_is_refused_then_migrated_with_one_command(tmp_path, swept, capsys):
    db, sid = swept
    store = Store(db)
    old = tmp_path / "old.duckdb"
    _v2_copy(store, sid, old)
    code, _, err = call(capsys, "results", "wsweep", "--db", str(old))
    assert code == 4
    assert " ".join(err.split()) == (
        f"error: {old} has store layout 2 (daily returns kept per run); this riskon reads layout 3: convert it "
        f"once with `riskon store migrate --db {old}`"
    )
    code, out, _ = call(capsys, "store", "migrate", "--db", str(old))
    assert code == 0 and "converted 24 runs from store layout 2" in out
    assert (tmp_path / "old.duckdb.v2.bak").exists()
    fields = ["run_id", "n_days", "digest", "sr_day", "skew", "kurt", "blocks", *METRICS]
    with duckdb.connect(str(old), read_only=True) as a, store.connect(read_only=True) as b:
        got = a.execute(f"SELECT {', '.join(fields)} FROM runs ORDER BY run_id").fetchall()
        want = b.execute(f"SELECT {', '.join(fields)} FROM runs ORDER BY run_id").fetchall()
    assert got == want  # the same fields, bit for bit, as the sweep stored itself
    code, out, _ = call(capsys, "store", "migrate", "--db", str(old))
    assert code == 0 and "already store layout 3; nothing to do" in out
    code, out, _ = call(capsys, "results", "wsweep", "--db", str(old), "--top", "3")
    assert code == 0 and "PBO = 23.0%" in out


def test_results_top_n_is_ranked_in_the_database_as_rank_runs_ranks(swept, capsys):
    db, sid = swept
    store = Store(db)
    for metric, asc in (("sharpe", False), ("max_drawdown", True), ("win_rate", False)):
        top = store.top(sid, metric, ascending=asc, n=7)
        want = rank_runs(store.runs(sid), metric, "minimize" if asc else "maximize").head(7)
        assert top["run_id"].tolist() == want["run_id"].tolist()


def test_row_fields_of_a_flat_or_short_run():
    f = row_fields(np.zeros(40))
    assert f["n_days"] == 40 and np.isnan(f["sr_day"]) and len(f["blocks"]) == 4 * 16 * 8
    assert row_fields(np.zeros(20))["blocks"] is None  # under 2 days per block: no CSCV sums
