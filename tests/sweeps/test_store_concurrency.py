"""The store under concurrency: readers never stop a sweep from storing; one sweep of a kind runs at a time.

Three pollers in other processes open the store read-only in a tight loop, holding it 0.2 s each time (as a
dashboard refreshing `riskon results` would); a sweep of 600 runs must still store every run. Two processes
started on the same sweep must not both compute it: the second waits for the first and then finds every
run stored.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb

from support.clitools import riskon_cmd

GRID = """\
    name = "{name}"
    [data]
    start = "2019-01-01"
    end = "2021-12-31"
    [strategy]
    rule = "ath_confirmed"
    [exits]
    trailing_stop = 0.2
    [report]
    tearsheet = false
    chart = false
    [sweep]
    batch_size = 25
    [sweep.params]
    "exits.trailing_stop" = {trail}
    "strategy.params.confirm_days" = [1, 2, 3, 4, 5]
    "costs.fee_bps" = {fees}
    """

POLLER = """\
import sys, time
from riskon.sweeps.store import Store

store, until = Store(sys.argv[1]), time.monotonic() + float(sys.argv[2])
opened = 0
while time.monotonic() < until:
    if not store.path.exists():
        time.sleep(0.05)
        continue
    try:
        with store.connect(read_only=True) as con:
            con.execute("SELECT count(*) FROM runs").fetchone()
            time.sleep(0.2)
            opened += 1
    except Exception as e:  # the store may not have its tables yet
        time.sleep(0.05)
print(opened)
"""


def write(tmp_path: Path, name: str, trail: list[float], fees: list[float]) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(textwrap.dedent(GRID.format(name=name, trail=trail, fees=fees)), encoding="utf-8")
    return path


def count(db: Path) -> tuple[int, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*), count(DISTINCT run_id) FROM runs").fetchone()
    finally:
        con.close()


def test_pollers_never_stop_the_writer(tmp_path, data_dir):
    trail = [round(0.05 + 0.01 * i, 2) for i in range(30)]
    cfg = write(tmp_path, "polled", trail, [0, 10, 20, 30])  # 30 x 5 x 4 = 600 runs
    db = tmp_path / "polled.duckdb"
    poller = tmp_path / "poller.py"
    poller.write_text(POLLER, encoding="utf-8")
    pollers = []
    for _ in range(3):  # staggered, so that at every instant one of them holds the file
        pollers.append(
            subprocess.Popen([sys.executable, str(poller), str(db), "150"], stdout=subprocess.PIPE, text=True)
        )
        time.sleep(0.07)
    try:
        time.sleep(0.5)
        sweep = subprocess.run([*riskon_cmd(), "sweep", str(cfg), "--db", str(db), "--workers", "1",
                                "--engine", "fast"], capture_output=True, text=True, timeout=300)  # fmt: skip
    finally:
        for p in pollers:
            p.kill()
    assert sweep.returncode == 0, sweep.stderr
    assert count(db) == (600, 600)
    assert "600 combinations, 0 already stored, 600 run now (0 failed)" in " ".join(sweep.stdout.split())


def test_two_processes_on_one_sweep_do_the_work_once(tmp_path, data_dir):
    cfg = write(tmp_path, "twice", [0.1, 0.15, 0.2, 0.25, 0.3, 0.35], [0, 10])  # 6 x 5 x 2 = 60 runs
    db = tmp_path / "twice.duckdb"
    args = [*riskon_cmd(), "sweep", str(cfg), "--db", str(db), "--workers", "1", "--engine", "backtrader"]
    env = dict(os.environ)
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(0.3)
    second = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    outs = [p.communicate(timeout=600) for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], [e for _, e in outs]
    assert count(db) == (60, 60)
    ran = [int(re.search(r"(\d+) run now", " ".join(o.split())).group(1)) for o, _ in outs]
    assert sum(ran) == 60  # every run computed once, by one of the two
    assert any("is running in another process; waiting for it" in e for _, e in outs)
