"""Real file-system faults while writing reports: a full disk and a read-only folder.

Tests run as root, and root ignores ``chmod`` (a mode-555 folder is still writable), so the faults are
made for real: ``unshare -rm`` gives the command a mount namespace of its own, in which a small tmpfs
is mounted (full after a few kilobytes) or remounted read-only. Each case first proves the fault fires
(ENOSPC, EROFS) in that same namespace, then checks riskon: exit status 4, one line naming the file and
what to do, and no half-written file left behind. Where the machine can't make the fault, the test skips
with the reason.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from support.clitools import riskon_cmd

FAST = """\
    name = "faults"
    [data]
    start = "2020-01-01"
    end = "2021-12-31"
    [strategy]
    rule = "ath_confirmed"
    [exits]
    trailing_stop = 0.2
    [report]
    tearsheet = false
    chart = false
    """

PROBE = (
    'python3 -c "import errno,sys\n'
    "try:\n open(sys.argv[1],'wb').write(b'x'*200000)\n"
    "except OSError as e: print('FAULT', errno.errorcode[e.errno])\n"
    "else: print('FAULT none')\" {probe}; rm -f {probe}"
)


def in_namespace(mount: Path, options: str, *command: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``command`` in a new mount namespace where ``mount`` is a tmpfs with ``options`` (``ro``: read-only)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed: the fault cannot be made")
    mount.mkdir(parents=True, exist_ok=True)
    read_only = "ro" in options.split(",")
    size = ",".join(o for o in options.split(",") if o != "ro") or "size=1m"
    m = shlex.quote(str(mount))
    script = [
        "set -e",
        f"mount -t tmpfs -o {size} tmpfs {m}",
        f"mkdir -p {m}/reports",
        f"mount -o remount,ro {m}" if read_only else ":",
        "set +e",
        PROBE.format(probe=shlex.quote(str(mount / "reports" / "probe.bin"))),
        " ".join(shlex.quote(c) for c in command),
        "status=$?",
        f"find {m} -type f | sed 's/^/LEFT /'",  # what the command left in the tmpfs (gone after exit)
        "exit $status",
    ]
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "\n".join(script)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )
    if "FAULT" not in proc.stdout:
        pytest.skip(f"this machine cannot make a private tmpfs ({proc.stderr.strip()[:200]})")
    return proc


def fault_of(proc: subprocess.CompletedProcess) -> str:
    """The errno the probe write met in the namespace (the proof that the fault is real)."""
    return next(line.split()[1] for line in proc.stdout.splitlines() if line.startswith("FAULT"))


def left(proc: subprocess.CompletedProcess) -> list[str]:
    """The files in the tmpfs after the command ended."""
    return sorted(Path(line[5:]).name for line in proc.stdout.splitlines() if line.startswith("LEFT "))


def errors(proc: subprocess.CompletedProcess) -> list[str]:
    """The error lines on stderr (cache announcements are notes, not errors)."""
    return [line for line in proc.stderr.splitlines() if not line.startswith("cache: ")]


@pytest.fixture
def cfg(tmp_path: Path, data_dir) -> Path:
    path = tmp_path / "faults.toml"
    path.write_text(textwrap.dedent(FAST), encoding="utf-8")
    return path


def test_a_full_disk_gives_one_line_and_no_half_written_csv(tmp_path, cfg):
    mount = tmp_path / "small"
    out = mount / "reports" / "faults"
    proc = in_namespace(mount, "size=24k", *riskon_cmd(), "run", str(cfg), "--out", str(out))
    assert fault_of(proc) == "ENOSPC"  # the fault fired
    assert proc.returncode == 4, proc.stderr
    lines = errors(proc)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: cannot write {out}/")
    assert "No space left on device; free some space, or write elsewhere with --out" in lines[0]
    written = left(proc)
    assert all(not name.endswith(".tmp") for name in written), written  # no temporary file left
    failed = Path(lines[0].split("cannot write ")[1].split(":")[0]).name
    assert failed not in written  # the file that did not fit is absent, not half there


def test_a_read_only_reports_folder_gives_one_line(tmp_path, cfg):
    mount = tmp_path / "ro"
    proc = in_namespace(mount, "ro", *riskon_cmd(), "run", str(cfg), env={"RISKON_REPORTS": str(mount / "reports")})
    assert fault_of(proc) == "EROFS"
    assert proc.returncode == 4, proc.stderr
    lines = errors(proc)
    assert len(lines) == 1, proc.stderr
    assert "Read-only file system" in lines[0] and "write elsewhere with --out (or set RISKON_REPORTS)" in lines[0]


def test_no_report_needs_no_writable_reports_folder(tmp_path, cfg):
    mount = tmp_path / "ro2"
    proc = in_namespace(
        mount, "ro", *riskon_cmd(), "run", str(cfg), "--no-report", env={"RISKON_REPORTS": str(mount / "reports")}
    )
    assert fault_of(proc) == "EROFS"
    assert proc.returncode == 0, proc.stderr
    assert f"--no-report: nothing written (without it, files would go to {mount / 'reports' / 'faults'}/" in (
        " ".join(proc.stdout.split())
    )


def test_a_store_in_a_read_only_folder_gives_one_line(tmp_path, cfg):
    mount = tmp_path / "ro3"
    sweep = cfg.with_name("sweep.toml")
    sweep.write_text(cfg.read_text() + '[sweep]\n[sweep.params]\n"exits.trailing_stop" = [0.1, 0.2]\n')
    proc = in_namespace(mount, "ro", *riskon_cmd(), "sweep", str(sweep), "--db", str(mount / "reports" / "s.duckdb"))
    assert fault_of(proc) == "EROFS"
    assert proc.returncode == 4, proc.stderr
    assert len(errors(proc)) == 1, proc.stderr
    assert str(mount / "reports" / "s.duckdb") in errors(proc)[0]
