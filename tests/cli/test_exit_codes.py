"""Every command's failure ends with a non-zero status, as docs/reference/exit-codes.md lists them.

The cases run through the CLI's own entry function (``riskon.cli.main``) in this process, so dozens of
them cost one start; a few run the installed command in a subprocess to prove the status reaches the shell.
Each case asserts the status and the one line on stderr, and that nothing stored changed.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from riskon import cli
from support.clitools import riskon_cmd

SEED = Path(__file__).resolve().parents[2] / "runs" / "seed.toml"


def call(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``riskon ARGS`` through its entry function; its exit status, stdout and stderr."""
    argv = sys.argv
    sys.argv = ["riskon", *args]
    try:
        cli.main()
        code = 0  # main always exits; reaching here would be a bug the assert below shows
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = argv
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(*folders: Path) -> dict[str, str]:
    """Every file under ``folders`` with its content hash."""
    files = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")) if folder.exists() else []:
            if p.is_file():
                files[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return files


def config(tmp_path: Path, body: str, name: str = "cfg.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


SMALL = """\
    name = "exitcodes"
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


def test_version_and_help_exit_zero(capsys):
    code, out, _ = call(capsys, "--version")
    assert (code, out.strip()) == (0, "riskon 0.1.0")
    code, out, _ = call(capsys, "run", "--help")
    assert code == 0 and "--no-report" in out


@pytest.mark.parametrize(
    ("args", "line"),
    [
        ((), None),  # no command: the help, and usage status
        (("bogus",), "error: No such command 'bogus'."),
        (("run",), "error: Missing argument 'config'."),
        (("run", "no/such.toml"), "error: no/such.toml: no such config file"),
        (("run", str(SEED), "--bogus"), "error: No such option: --bogus"),
        (("status", "no/such.toml"), "error: no/such.toml: no such config file"),
        (("events", "no/such.toml"), "error: no/such.toml: no such config file"),
        (("walkforward", "no/such.toml"), "error: no/such.toml: no such config file"),
        (("sweep", "no/such.toml"), "error: no/such.toml: no such config file"),
        (("compare",), "error: give run ids, config files (*.toml) or --sweep NAME"),
        (("report",), "error: give a RUN_ID (tear sheet) or --sweep NAME (sweep report)"),
        (("check", "lookahead", "no_such_rule"), "error: unknown rule 'no_such_rule'"),
    ],
)
def test_usage_and_config_errors_exit_2(capsys, args, line):
    code, _, err = call(capsys, *args)
    assert code == 2, err
    if line is not None:
        first = err.splitlines()[0]
        assert first.startswith("error: ") and line.removeprefix("error: ") in first, err
        assert len(err.strip().splitlines()) == 1, err


def test_config_key_and_type_errors_exit_2_naming_the_key(capsys, tmp_path):
    bad_key = config(tmp_path, SMALL.replace("[exits]", "[exits]\n    trailing_stp = 0.2"), "key.toml")
    code, _, err = call(capsys, "run", str(bad_key), "--no-report")
    assert code == 2 and "trailing_stp" in err and "trailing_stop" in err, err
    bad_type = config(tmp_path, SMALL.replace("trailing_stop = 0.2", 'trailing_stop = "wide"'), "type.toml")
    code, _, err = call(capsys, "run", str(bad_type), "--no-report")
    assert code == 2 and "trailing_stop" in err, err
    assert len(err.strip().splitlines()) == 1


def test_data_errors_exit_3(capsys, tmp_path):
    bad = tmp_path / "BROKEN-USD.csv"
    bad.write_text("Date,Open,High,Low,Close\n2024-01-01,1,2,0.5,not-a-number\n", encoding="utf-8")
    before = snapshot(Path(cli_cache()))
    code, _, err = call(capsys, "data", "import", str(bad))
    assert code == 3, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert snapshot(Path(cli_cache())) == before


def cli_cache() -> str:
    import os

    return os.environ["RISKON_CACHE"]


def test_a_sweep_whose_runs_fail_exits_1_with_the_counts(capsys, tmp_path, data_dir):
    body = SMALL + textwrap.dedent(
        """\
        [sweep]
        [sweep.params]
        "data.start" = ["2020-01-01", "2021-12-31"]
        """
    )
    cfg = config(tmp_path, body)
    db = tmp_path / "s.duckdb"
    code, _, err = call(capsys, "sweep", str(cfg), "--db", str(db), "--workers", "1")
    assert code == 1, err
    assert "sweep: 1 of 2 runs failed, 1 ok" in err
    # a resume retries the failed run (it fails again) and keeps the finished one: still 1
    code, out, err = call(capsys, "sweep", str(cfg), "--db", str(db), "--workers", "1")
    assert code == 1 and "1 already stored, 1 run now (1 failed)" in " ".join(out.split()), out


def test_a_sweep_where_every_run_fails_exits_1(capsys, tmp_path, data_dir):
    body = SMALL + textwrap.dedent(
        """\
        [sweep]
        [sweep.params]
        "data.start" = ["2021-12-31"]
        "exits.trailing_stop" = [0.1, 0.2]
        """
    )
    cfg = config(tmp_path, body)
    code, _, err = call(capsys, "sweep", str(cfg), "--db", str(tmp_path / "all.duckdb"), "--workers", "1")
    assert code == 1 and "sweep: 2 of 2 runs failed, 0 ok" in err, err


def test_verify_differences_exit_1(capsys, tmp_path, data_dir, monkeypatch):
    from riskon.sweeps import verify

    body = SMALL + '[sweep]\n[sweep.params]\n"exits.trailing_stop" = [0.1, 0.2]\n'
    cfg = config(tmp_path, body)

    def differing(config, ok, objective, direction, k, **kw):
        return [{"run_id": ok["run_id"].iloc[0], "engine": "fast", "differences": ["sharpe: 1.0 vs 1.1"]}]

    monkeypatch.setattr(verify, "verify_runs", differing)
    code, out, err = call(capsys, "sweep", str(cfg), "--db", str(tmp_path / "v.duckdb"), "--verify", "1")
    assert code == 1, err
    assert "verify: 1 of 1 runs differ from backtrader" in err


def test_an_interrupted_sweep_exits_130(capsys, tmp_path, monkeypatch):
    from riskon import api

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "sweep", interrupted)
    cfg = config(tmp_path, SMALL + '[sweep]\n[sweep.params]\n"exits.trailing_stop" = [0.1]\n')
    code, _, err = call(capsys, "sweep", str(cfg), "--db", str(tmp_path / "i.duckdb"))
    assert code == 130 and "interrupted" in err, err


def test_a_corrupt_store_exits_4_and_is_left_as_it_was(capsys, tmp_path):
    db = tmp_path / "corrupt.duckdb"
    db.write_bytes(b"this is not a database" * 100)
    before = snapshot(tmp_path)
    code, _, err = call(capsys, "results", "--db", str(db))
    assert code == 4, err
    assert err.startswith("error: ") and str(db) in err and len(err.strip().splitlines()) == 1
    assert snapshot(tmp_path) == before


def test_a_peeking_rule_fails_the_lookahead_check_with_1(capsys, tmp_path, data_dir, peeking_rule):
    code, out, _ = call(capsys, "check", "lookahead", peeking_rule, "--signals", "5", "--random", "2")
    assert code == 1, out
    assert f"FAIL {peeking_rule}" in out


def test_the_status_reaches_the_shell(tmp_path):
    """The installed command, not only the entry function, exits with the documented status."""
    proc = subprocess.run([*riskon_cmd(), "run", str(tmp_path / "none.toml")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {tmp_path / 'none.toml'}: no such config file"


@pytest.fixture
def peeking_rule():
    """A rule that reads the next session's close (a planted peek), dropped into the rules folder for one test."""
    from strategies import rules

    name = "peek_next_close_exitcode"
    path = Path(rules.__file__).with_name(f"{name}.py")
    path.write_text(
        textwrap.dedent(
            f'''\
            """A planted peek for the exit-code tests: True when the NEXT session closes higher."""

            import pandas as pd

            from strategies.rules import Rule


            class PeekNextClose(Rule):
                """Signals on sessions before an up day: it reads the future."""

                name = "{name}"
                params = {{}}

                def compute(self, sessions: pd.DataFrame) -> pd.DataFrame:
                    close = sessions["idx_close"]
                    peek = (close.shift(-1) > close).fillna(False).to_numpy(dtype=bool)
                    return pd.DataFrame({{"signal": peek}}, index=sessions.index)
            '''
        ),
        encoding="utf-8",
    )
    rules.refresh()
    try:
        yield name
    finally:
        path.unlink()
        sys.modules.pop(f"strategies.rules.{name}", None)
        rules.refresh()
