"""A local pool worker killed mid-sweep ends the sweep with one line and status 1; nothing finished is lost.

The sweep runs as the installed command on the backtrader engine (slow enough to be caught mid-way); the test
kills one of its spawned worker processes with SIGKILL, as the kernel's out-of-memory killer would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import duckdb

from support.clitools import riskon_cmd

CONFIG = """\
    name = "worker_loss"
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
    batch_size = 2
    [sweep.params]
    "exits.trailing_stop" = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4]
    "strategy.params.confirm_days" = [1, 2, 3]
    """


def workers_of(pid: int) -> list[int]:
    """The pool workers (spawned children running ``multiprocessing.spawn``) of process ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and "multiprocessing.spawn" in cmd and "resource_tracker" not in cmd:
            found.append(int(entry.name))
    return found


def stored(db: Path) -> tuple[int, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        ok = con.execute("SELECT count(*) FROM runs WHERE status = 'ok'").fetchone()[0]
        distinct = con.execute("SELECT count(DISTINCT run_id) FROM runs").fetchone()[0]
    finally:
        con.close()
    return ok, distinct


def test_a_killed_pool_worker_ends_the_sweep_with_one_line_and_keeps_finished_runs(tmp_path, data_dir):
    cfg = tmp_path / "loss.toml"
    cfg.write_text(textwrap.dedent(CONFIG), encoding="utf-8")
    db = tmp_path / "loss.duckdb"
    args = [*riskon_cmd(), "sweep", str(cfg), "--db", str(db), "--workers", "2", "--engine", "backtrader"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 120
        victim = None
        while time.monotonic() < deadline and proc.poll() is None:
            kids = workers_of(proc.pid)
            if len(kids) == 2 and db.exists():  # both workers up and the store created
                time.sleep(1.0)
                victim = kids[0]
                os.kill(victim, signal.SIGKILL)
                break
            time.sleep(0.05)
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert victim is not None, "the sweep ended before a worker could be killed"
    assert proc.returncode == 1, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "a local worker process died" in lines[0], err
    assert "Traceback" not in err
    ok_before, distinct_before = stored(db)
    # the next invocation resumes: every combination ends up stored exactly once
    again = subprocess.run([*riskon_cmd(), "sweep", str(cfg), "--db", str(db), "--workers", "1",
                            "--engine", "backtrader"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr
    ok_after, distinct_after = stored(db)
    assert (ok_after, distinct_after) == (24, 24)
    assert f"{ok_before} already stored" in " ".join(again.stdout.split())
