"""Dask workers that expand their own share of a grid (``riskon.sweeps.scaleout``) give the driver's results.

In-process: a worker's phase A (validation, skips, run ids from the hashes the driver sent) equals the
driver's own pass, and the positions left to run drop repeats and stored runs. On a scheduler and two
workers started as separate processes whose data and cache folders are empty (nothing is shared but the
network): a sweep equals the serial one bit for bit, links runs another sweep stored, never plans on the
driver, and reports an invalid combination with the serial sweep's very line.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from riskon.config import ConfigError
from riskon.config import load as load_config
from riskon.sweeps import chunks, scaleout
from riskon.sweeps.driver import run_sweep
from riskon.sweeps.keys import run_id, series_needed
from riskon.sweeps.spec import Combinations, parse_sweep
from riskon.sweeps.streaming import IdSet

CONFIG = """\
name = "{name}"
description = "scale-out"

[data]
index = "^RUT"
asset = "BTC-USD"
start = "2019-01-01"
end = "2021-12-31"

[strategy]
rule = "ath_confirmed"

[strategy.params]
confirm_days = 3

[exits]
trailing_stop = 0.25

[sweep]
batch_size = 5

[sweep.params]
{params}
"""
# 4 x 2 x 2 = 16 combinations; the description does not change a run: 8 distinct runs
PARAMS = """\
"strategy.params.confirm_days" = [1, 2, 3, 5]
"portfolio.cash_rate" = [0.0, "KBILLX"]
"description" = ["a", "b"]
"""


@pytest.fixture
def kbill(tmp_path, data_dir) -> str:
    """A yield series in this session's cache (the driver's only)."""
    from feeds.yields import import_yield

    days = pd.bdate_range("2014-01-01", "2026-06-30")
    csv = tmp_path / "KBILL.csv"
    pd.DataFrame(
        {"date": days.strftime("%Y-%m-%d"), "value": 1.5 + np.round(np.sin(np.arange(len(days)) / 90), 2)}
    ).to_csv(csv, index=False)
    import_yield(csv, "KBILLX", "percent")  # not test_cash_and_sizing's KBILL: one session cache
    return "KBILLX"


def write(folder: Path, name: str, params: str = PARAMS) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(CONFIG.format(name=name, params=params), encoding="utf-8")
    return path


def test_phase_a_on_a_worker_equals_the_drivers_pass(tmp_path, kbill, monkeypatch):
    from feeds.loader import load
    from strategies.rules import get

    # an odd confirmation only: the rule's constraint skips confirm_days 2 (4 of the 16 combinations)
    monkeypatch.setattr(get("ath_confirmed"), "constraint",
                        lambda v: "even" if v["confirm_days"] == 2 else None, raising=False)  # fmt: skip
    path = write(tmp_path, "phase_a")
    raw = tomllib.loads(path.read_text())
    spec = parse_sweep(raw, str(path))
    cfg0 = load_config(path)
    frames = {key: load(*key) for key in series_needed([cfg0])}
    fps = {f"{s}@{tf}": f.attrs["fingerprint"] for (s, tf), f in frames.items()}
    combos = Combinations(raw, spec, str(path))
    want = [run_id(cfg, {k: fps[k] for k in scaleout.fps_of(cfg, fps)}, "fast") for _, cfg in combos]
    assert (combos.valid, combos.skipped, len(set(want))) == (12, 4, 6)

    assert scaleout.eligible(raw, spec, cfg0, str(path), "auto") == {"KBILLX"}
    st = scaleout.setup(raw, spec, cfg0, str(path), "auto", fps, {"KBILLX"})
    parts = [scaleout.survey_range(st, lo, hi) for lo, hi in ((0, 5), (5, 11), (11, 16))]
    assert [p["error"] for p in parts] == [None] * 3 and sum(p["skipped"] for p in parts) == 4
    got = [bytes(r).hex() for p in parts for r in (p["ids"][i : i + 10] for i in range(0, len(p["ids"]), 10))]
    assert got == want
    positions = np.concatenate([p["positions"] for p in parts])
    assert positions.tolist() == [i for i in range(16) if (i // 4) != 1]  # the grid's order, confirm 2 skipped

    survey = scaleout.GridSurvey(12, 4, positions, np.frombuffer(b"".join(p["ids"] for p in parts), "S10"), [], None)
    first = {}
    for pos, rid in zip(positions.tolist(), want, strict=True):
        first.setdefault(rid, pos)
    todo_pos, todo_ids = scaleout.to_run(survey, IdSet({want[0]}))
    assert todo_pos.tolist() == sorted(p for r, p in first.items() if r != want[0])
    assert [bytes(r).hex() for r in todo_ids.view("V10")] == [want[positions.tolist().index(p)] for p in todo_pos]

    # what the workers cannot expand on their own keeps the driver's path
    for other in ('"data.start" = ["2019-01-01", "2019-06-03"]', '"target.assets" = [["BTC-USD"]]'):
        raw2 = tomllib.loads(write(tmp_path, "other", other).read_text())
        assert scaleout.eligible(raw2, parse_sweep(raw2), cfg0, "x", "auto") is None
    assert scaleout.eligible(raw, spec, cfg0, str(path), "backtrader") is None
    text = write(tmp_path, "random").read_text().replace("[sweep]", '[sweep]\nmethod = "random"')
    random = tomllib.loads(text)
    assert scaleout.eligible(random, parse_sweep(random), cfg0, "x", "auto") is None


# -- a scheduler and workers as separate processes, sharing no folder with the driver ----------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``tcp://127.0.0.1:PORT``: a scheduler and 2 single-threaded workers with empty data and cache folders."""
    home = tmp_path_factory.mktemp("workers")
    env = {**os.environ, "RISKON_DATA": str(home / "no-data"), "RISKON_CACHE": str(home / "no-cache")}
    env.pop("RISKON_RULES", None)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", str(port), "--no-dashboard"], env=env, cwd=home, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)  # fmt: skip
    worker = None
    try:
        time.sleep(3)
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                   "--nworkers", "2", "--no-dashboard"], env=env, cwd=home,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(5)
        yield address
    finally:
        for p in (worker, scheduler):
            if p is not None:
                p.terminate()
                p.wait(timeout=30)


def stored(db: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        runs = con.execute("SELECT * EXCLUDE (worker, seconds, finished, sweep_id) FROM runs ORDER BY run_id").df()
        bench = con.execute("SELECT * FROM benchmarks ORDER BY bench_id").df()
    finally:
        con.close()
    return runs, bench


def test_a_sweep_on_separate_workers_equals_the_serial_sweep(cluster, tmp_path, kbill, monkeypatch):
    path = write(tmp_path, "scaled")
    serial = run_sweep(path, db=tmp_path / "serial.duckdb", workers=1)
    assert (serial.total, serial.ran, serial.failed) == (8, 8, 0)

    db = tmp_path / "dask.duckdb"
    part = write(tmp_path, "part", PARAMS.replace("[1, 2, 3, 5]", "[2, 3]"))  # another sweep stores 4 of the runs
    assert run_sweep(part, db=db, workers=1).ran == 4

    def no_planning(*args, **kwargs):
        raise AssertionError("the driver planned combinations: the workers should")

    monkeypatch.setattr(chunks, "plan", no_planning)
    res = run_sweep(path, db=db, scheduler=cluster)
    assert (res.total, res.already_done, res.ran, res.failed, res.executor) == (
        8,
        4,
        4,
        0,
        f"dask ({cluster}), fast engine",
    )
    assert res.sweep_id == serial.sweep_id
    assert (res.runs["worker"] == str(os.getpid())).sum() == 4  # the linked runs only: the rest ran on the workers
    got, want = stored(db), stored(tmp_path / "serial.duckdb")
    pd.testing.assert_frame_equal(got[0], want[0])  # every stored field, bit for bit (NaN equal to NaN)
    pd.testing.assert_frame_equal(got[1], want[1])
    again = run_sweep(path, db=db, scheduler=cluster)  # resumed: nothing left to run
    assert (again.total, again.already_done, again.ran) == (8, 8, 0)


def test_an_invalid_combination_is_the_serial_sweeps_line(cluster, tmp_path, kbill):
    path = write(
        tmp_path, "invalid", PARAMS.replace('"description" = ["a", "b"]', '"exits.trailing_stop" = [0.2, 7.0]')
    )
    with pytest.raises(ConfigError) as serial:
        run_sweep(path, db=tmp_path / "s.duckdb", workers=1)
    with pytest.raises(ConfigError) as dask:
        run_sweep(path, db=tmp_path / "d.duckdb", scheduler=cluster)
    assert str(dask.value) == str(serial.value)
    assert (
        "(combination {'strategy.params.confirm_days': 1, 'portfolio.cash_rate': 0.0, 'exits.trailing_stop': 7.0})"
        in str(dask.value)
    )
