"""``riskon store list`` and ``riskon store gc``: runs by code version, dropped only on purpose, counted exactly.

The store holds three sweeps: "a" under code v1 and again under v2 (sharing run r3), and "b" under v1.
Every count below is read off that layout by hand.
"""

from __future__ import annotations

import json
import subprocess

import duckdb
import pandas as pd
import pytest

from riskon.sweeps.housekeeping import code_versions, drop_code_versions
from riskon.sweeps.store import Store
from support.clitools import riskon_cmd

LAYOUT = {  # sweep id: (name, code version, run ids)
    "s1": ("a", "v1", ["r1", "r2", "r3"]),
    "s2": ("b", "v1", ["r4"]),
    "s3": ("a", "v2", ["r3", "r5"]),
}


def put(store: Store, sweep_id: str, name: str, code: str, runs: list[str], created: str) -> None:
    store.put_sweep({"sweep_id": sweep_id, "name": name, "config_text": "", "spec": "{}", "fingerprints": {},
                     "code_version": code, "status": "done", "n_total": len(runs), "strategy_key": name})  # fmt: skip
    rows = [{"run_id": rid, "sweep_id": sweep_id, "params": json.dumps({"i": int(rid[1:])}), "status": "ok",
             "error": None, "sharpe": 1.0, "returns_start": pd.Timestamp("2020-01-01"),
             "returns": [0.01 * int(rid[1:]), 0.0], "bench": [0.001 * int(rid[1:]), 0.0]} for rid in runs]  # fmt: skip
    store.write_batch(rows)
    with store.connect() as con:  # creation times fixed, so "newest" is known
        con.execute("UPDATE sweeps SET created = ? WHERE sweep_id = ?", [pd.Timestamp(created), sweep_id])


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(tmp_path / "gc.duckdb")
    for k, (sid, (name, code, runs)) in enumerate(LAYOUT.items()):
        put(s, sid, name, code, runs, f"2026-01-0{k + 1}")
    return s


def counts(store: Store) -> dict[str, object]:
    with duckdb.connect(str(store.path), read_only=True) as con:
        one = lambda sql: con.execute(sql).fetchall()  # noqa: E731
        return {
            "sweeps": sorted(r[0] for r in one("SELECT sweep_id FROM sweeps")),
            "runs": sorted(one("SELECT run_id, sweep_id FROM runs")),
            "links": sorted(one("SELECT sweep_id, run_id FROM sweep_runs")),
            "benchmarks": one("SELECT count(*) FROM benchmarks")[0][0],
        }


def riskon(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*riskon_cmd(), "store", *args], capture_output=True, text=True, timeout=120)


def test_code_versions_lists_each_version_with_exact_counts(store):
    table = code_versions(store)
    assert list(table["code_version"]) == ["v2", "v1"]
    v2, v1 = table.to_dict("records")
    assert (v2["sweeps"], v2["names"], v2["runs"], v2["ok"], v2["newest_for"]) == (1, ["a"], 2, 2, ["a"])
    assert (v1["sweeps"], v1["names"], v1["runs"], v1["ok"], v1["newest_for"]) == (2, ["a", "b"], 4, 4, ["b"])
    assert v1["first"] == pd.Timestamp("2026-01-01") and v1["last"] == pd.Timestamp("2026-01-02")


def test_gc_prints_what_it_would_drop_and_drops_only_with_yes(store):
    before = counts(store)
    assert before["benchmarks"] == 5
    dry = riskon("gc", "--code-version", "v1", "--db", str(store.path))
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "would drop 1 code version (v1): 2 sweeps (a, b), 3 runs",
        "1 of their runs stays: a kept sweep holds it",
        "run again with --yes to drop them",
    ]
    assert counts(store) == before

    done = riskon("gc", "--code-version", "v1", "--yes", "--db", str(store.path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "dropped 1 code version (v1): 2 sweeps (a, b), 3 runs, 3 benchmark series no kept run uses",
        "1 of their runs stays: a kept sweep holds it",
    ]
    assert counts(store) == {
        "sweeps": ["s3"],
        "runs": [("r3", "s3"), ("r5", "s3")],  # r3 was first stored by s1: it now names the sweep that holds it
        "links": [("s3", "r3"), ("s3", "r5")],
        "benchmarks": 2,
    }
    assert list(store.runs("s3")["run_id"]) == ["r3", "r5"]
    assert store.run("r3", returns=False)["sweep_name"] == "a"


def test_superseded_drops_versions_newest_for_no_sweep(store):
    out = riskon("gc", "--superseded", "--db", str(store.path))
    assert (out.returncode, out.stdout.strip()) == (
        0,
        "nothing to drop: every code version is the newest of some sweep",
    )
    put(store, "s4", "b", "v2", ["r6"], "2026-01-09")  # b is now newest under v2 too: v1 is superseded
    assert code_versions(store)["newest_for"].tolist() == [["a", "b"], []]
    done = drop_code_versions(store, ["v1"], apply=False)
    assert (done.sweeps, done.names, done.runs, done.kept_runs, done.applied) == (2, ("a", "b"), 3, 1, False)
    out = riskon("gc", "--superseded", "--yes", "--db", str(store.path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].startswith("dropped 1 code version (v1): 2 sweeps (a, b), 3 runs")
    assert counts(store)["sweeps"] == ["s3", "s4"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "name what to drop: --code-version VERSION (see `riskon store list`) or --superseded"),
        (("--code-version", "v9"), "no sweeps of code version 'v9' in {db}; known: v1, v2"),
    ],
)
def test_gc_refuses_without_a_known_version(store, args, message):
    before = counts(store)
    out = riskon("gc", *args, "--yes", "--db", str(store.path))
    assert out.returncode == 2
    assert out.stderr.strip().endswith(message.format(db=store.path))
    assert counts(store) == before


def test_list_prints_the_table_and_a_missing_store_is_a_usage_error(store, tmp_path):
    out = riskon("list", "--db", str(store.path))
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("│")]
    assert [r.split("│")[1].strip() for r in rows] == ["v2", "v1"]
    assert [r.split("│")[8].strip() for r in rows] == ["a", "b"]
    missing = riskon("list", "--db", str(tmp_path / "none.duckdb"))
    assert missing.returncode == 2
    assert "no results database at" in missing.stderr
