"""Dask beyond one machine: TLS or the loopback only, and one clear line when the scheduler can't be reached.

The TLS case is real: a self-made CA signs a scheduler and a client certificate (openssl), a scheduler and a
worker start as separate processes on 127.0.0.1 with TLS required, and ``riskon sweep --scheduler tls://...``
runs a sweep on them with the client's certificate.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from riskon import cli
from support.clitools import riskon_cmd

CONFIG = """\
    name = "dasktls"
    [data]
    start = "2020-01-01"
    end = "2021-12-31"
    [strategy]
    rule = "ath_confirmed"
    [exits]
    trailing_stop = 0.2
    [sweep]
    [sweep.params]
    "exits.trailing_stop" = [0.1, 0.15, 0.2, 0.25]
    """


def call(capsys, *args: str) -> tuple[int, str]:
    argv, sys.argv = sys.argv, ["riskon", *args]
    try:
        cli.main()
        code = 0
    except SystemExit as e:
        code = e.code
    finally:
        sys.argv = argv
    return code, capsys.readouterr().err


@pytest.fixture
def cfg(tmp_path) -> Path:
    path = tmp_path / "dasktls.toml"
    path.write_text(textwrap.dedent(CONFIG), encoding="utf-8")
    return path


def test_plain_tcp_beyond_the_loopback_is_refused(capsys, cfg, tmp_path):
    code, err = call(
        capsys, "sweep", str(cfg), "--db", str(tmp_path / "x.duckdb"), "--scheduler", "tcp://10.1.2.3:8786"
    )
    assert code == 2
    assert err.strip().splitlines() == [
        "error: --scheduler tcp://10.1.2.3:8786: plain tcp:// beyond the loopback lets anyone who reaches the port "
        "run code on the workers; use tls:// with --tls-ca/--tls-cert/--tls-key, or an SSH tunnel to a scheduler "
        "bound to 127.0.0.1"
    ]


def test_tls_without_certificates_is_refused(capsys, cfg, tmp_path):
    code, err = call(capsys, "sweep", str(cfg), "--db", str(tmp_path / "x.duckdb"), "--scheduler", "tls://127.0.0.1:1")
    assert code == 2 and "a tls:// scheduler needs --tls-ca, --tls-cert, --tls-key" in err, err


def test_an_unreachable_scheduler_is_one_line_and_status_3(capsys, cfg, tmp_path, data_dir):
    port = free_port()  # nothing listens there
    code, err = call(capsys, "sweep", str(cfg), "--db", str(tmp_path / "x.duckdb"), "--scheduler",
                     f"tcp://127.0.0.1:{port}")  # fmt: skip
    assert code == 3, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in lines[0]
    assert "Traceback" not in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certificates(folder: Path) -> dict[str, Path]:
    """A CA, and a scheduler/worker and a client certificate it signs (for 127.0.0.1)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificates can be made")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=riskon-test-ca")  # fmt: skip
    ext = folder / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("node", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN=riskon-{name}")  # fmt: skip
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", str(ext))  # fmt: skip
    return {n: folder / n for n in ("ca.pem", "node.pem", "node.key", "client.pem", "client.key")}


def test_a_sweep_on_a_tls_scheduler_with_a_self_made_ca(cfg, tmp_path, data_dir):
    certs = make_certificates(tmp_path)
    port = free_port()
    address = f"tls://127.0.0.1:{port}"
    tls = ["--tls-ca-file", str(certs["ca.pem"]), "--tls-cert", str(certs["node.pem"]), "--tls-key",
           str(certs["node.key"])]  # fmt: skip
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    where = ["--host", "127.0.0.1", "--port", str(port), "--protocol", "tls", "--no-dashboard"]
    scheduler = subprocess.Popen([*dask, *where, *tls], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    worker = None
    try:
        time.sleep(3)
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                   "--nworkers", "1", "--no-dashboard", *tls],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        time.sleep(4)
        db = tmp_path / "tls.duckdb"
        proc = subprocess.run(
            [*riskon_cmd(), "sweep", str(cfg), "--db", str(db), "--scheduler", address, "--tls-ca",
             str(certs["ca.pem"]), "--tls-cert", str(certs["client.pem"]), "--tls-key", str(certs["client.key"])],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        for p in (worker, scheduler):
            if p is not None:
                p.terminate()
                p.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert f"dask ({address})" in " ".join(proc.stdout.split())
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM runs WHERE status = 'ok'").fetchone()[0] == 4
    finally:
        con.close()


def test_losing_every_dask_worker_ends_the_sweep_with_one_line(capsys, tmp_path, data_dir, monkeypatch):
    """The only worker is killed mid-sweep: after the grace period the sweep ends (status 1), runs kept."""
    from riskon.sweeps import streaming

    monkeypatch.setattr(streaming, "WORKERLESS_GRACE", 3.0)
    cfg = tmp_path / "lost.toml"
    trail = ", ".join(str(round(0.05 + 0.01 * i, 2)) for i in range(30))
    body = (
        textwrap.dedent(CONFIG)
        .replace("[0.1, 0.15, 0.2, 0.25]", f"[{trail}]")
        .replace("[sweep]\n", "[sweep]\nbatch_size = 2\n")
    )
    cfg.write_text(body, encoding="utf-8")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", str(port), "--no-dashboard"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)  # fmt: skip
    worker = None
    try:
        time.sleep(3)
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                   "--nworkers", "1", "--no-dashboard", "--no-nanny"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(4)
        db = tmp_path / "lost.duckdb"

        # the worker dies right after the first batch is committed; watched inside the sweep's own process,
        # because DuckDB lets one process attach a database file only once
        from riskon.sweeps import driver

        class KillingWriter(driver.BatchWriter):
            def __init__(self, commit, depth=2):
                def commit_then_kill(batch):
                    commit(batch)
                    if worker.poll() is None:
                        worker.kill()

                super().__init__(commit_then_kill, depth)

        monkeypatch.setattr(driver, "BatchWriter", KillingWriter)
        code, err = call(capsys, "sweep", str(cfg), "--db", str(db), "--scheduler", address, "--engine", "backtrader")
    finally:
        for p in (worker, scheduler):
            if p is not None:
                p.kill()
                p.wait(timeout=30)
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Dask worker" in lines[0] and "the runs finished so far are stored" in lines[0], lines
    assert "Traceback" not in err
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM runs WHERE status = 'ok'").fetchone()[0] >= 2  # kept
    finally:
        con.close()
