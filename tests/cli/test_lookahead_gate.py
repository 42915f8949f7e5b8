"""Every ``riskon run`` and ``riskon sweep`` puts its rules through the lookahead gate first.

A planted rule that creates signals from the next session is refused with one line naming it and the
first date that changed (exit 1); ``--allow-lookahead`` runs it and marks the result (run summary,
rule text, and the sweep in the store). The verdict is cached, so a setting is checked once.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from feeds.align import session_frame
from feeds.loader import load
from riskon import cli
from riskon.lookahead_gate import ALLOWED, LookaheadError, LookaheadGate, cache_folder
from riskon.runner import prepare
from strategies import codehash, rules

NAME = "planted_gate_peek"
CONFIG = """\
name = "gate"
[data]
index = "^RUT"
asset = "BTC-USD"
start = "2019-01-01"
[strategy]
rule = "{rule}"
[exits]
trailing_stop = 0.2
"""
SWEEP = """
[sweep]
method = "grid"
[sweep.params]
"exits.trailing_stop" = [0.1, 0.2]
"""


@pytest.fixture
def peeking_rule():
    """A rule that signals before every 2 % up day (it reads the next session), dropped in for one test."""
    path = Path(rules.__file__).with_name(f"{NAME}.py")
    path.write_text(
        textwrap.dedent(
            f'''\
            """A planted peek for the gate tests: True when the NEXT session closes 2 % higher."""

            import pandas as pd

            from strategies.rules import Rule


            class PlantedGatePeek(Rule):
                """Signals before up days: it reads the future."""

                name = "{NAME}"
                params = {{}}

                def compute(self, sessions: pd.DataFrame) -> pd.DataFrame:
                    close = sessions["idx_close"]
                    return pd.DataFrame({{"signal": (close.shift(-1) > close * 1.02).to_numpy(dtype=bool)}},
                                        index=sessions.index)
            '''
        ),
        encoding="utf-8",
    )
    rules.refresh()
    codehash.clear_cache()
    try:
        yield NAME
    finally:
        path.unlink()
        rules.refresh()
        codehash.clear_cache()
        sys.modules.pop(f"strategies.rules.{NAME}", None)


def call(capsys, *args: str) -> tuple[int, str, str]:
    """``riskon ARGS`` through its entry function: exit status, stdout, stderr."""
    argv = sys.argv
    sys.argv = ["riskon", *args]
    try:
        cli.main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = argv
    out, err = capsys.readouterr()
    return code, out, err


def first_signal(data_dir) -> str:
    """The planted rule's first signal, by hand: the first session before a 2 % up day (the cut cannot see it)."""
    close = session_frame(load("^RUT", "1d"))["idx_close"]
    up = close.shift(-1) > close * 1.02
    return f"{up[up].index[0]:%Y-%m-%d}"


def expected_line(data_dir) -> str:
    return (
        f"rule {NAME}() reads the future: its signal on {first_signal(data_dir)} changes when the data after that "
        "date is removed; fix the rule, check it with `riskon check lookahead`, or pass --allow-lookahead"
    )


def test_a_peeking_rule_is_refused_with_one_line(capsys, tmp_path, data_dir, peeking_rule):
    cfg = tmp_path / "gate.toml"
    cfg.write_text(CONFIG.format(rule=peeking_rule), encoding="utf-8")
    code, out, err = call(capsys, "run", str(cfg), "--no-report")
    assert code == 1
    assert err.strip().splitlines()[-1] == f"error: {expected_line(data_dir)}"
    assert "metrics" not in out


def test_allow_lookahead_runs_it_and_says_so(capsys, tmp_path, data_dir, peeking_rule):
    cfg = tmp_path / "gate.toml"
    cfg.write_text(CONFIG.format(rule=peeking_rule), encoding="utf-8")
    code, out, _ = call(capsys, "run", str(cfg), "--no-report", "--allow-lookahead")
    assert code == 0, out
    line = expected_line(data_dir).split("; fix the rule")[0]
    assert f"[{ALLOWED}: {line}]" in " ".join(out.split())  # the rule text of the summary line
    assert f"warning: {ALLOWED}: {line}" in " ".join(out.split())


def test_the_api_marks_an_allowed_run(data_dir, peeking_rule):
    # the API loads on first use (keeps `import riskon` light)
    import riskon

    raw = {"data": {"index": "^RUT", "asset": "BTC-USD", "start": "2019-01-01"}, "strategy": {"rule": peeking_rule}}
    with pytest.raises(LookaheadError, match=f"^rule {NAME}\\(\\) reads the future"):
        riskon.run(raw)
    res = riskon.run(raw, allow_lookahead=True)
    assert res.lookahead_failed == expected_line(data_dir).split("; fix the rule")[0]
    assert res.rule_text.endswith(f"[{ALLOWED}: {res.lookahead_failed}]")


def test_the_verdict_is_cached_by_setting(data_dir, tmp_path):
    """Checked once: a second gate (a new process) reads the verdict file; another parameter is a new setting."""
    # the API loads on first use (keeps `import riskon` light)
    from riskon.api import read_config

    cfg = read_config({"data": {"index": "^RUT", "asset": "BTC-USD", "start": "2019-01-01"}})
    sessions, bars, _, fps = prepare(cfg)
    folder = tmp_path / "verdicts"
    first = LookaheadGate(folder=folder)
    assert first.check(cfg, fps, lambda: (sessions, bars)) == [] and first.checked == 1
    files = sorted(folder.glob("*.json"))
    assert len(files) == 1 and not list(folder.glob(".tmp-*"))
    again = LookaheadGate(folder=folder)
    assert again.check(cfg, fps, lambda: pytest.fail("a cached setting must not be recomputed")) == []
    assert again.checked == 0
    other = read_config({"data": {"index": "^RUT", "asset": "BTC-USD", "start": "2019-01-01"},
                         "strategy": {"params": {"confirm_days": 2}}})  # fmt: skip
    again.check(other, fps, lambda: (sessions, bars))
    assert again.checked == 1 and len(list(folder.glob("*.json"))) == 2
    assert cache_folder().parent == Path(__import__("os").environ["RISKON_CACHE"])


def test_a_sweep_is_refused_before_any_run_and_allowed_on_request(capsys, tmp_path, data_dir, peeking_rule):
    cfg = tmp_path / "gate_sweep.toml"
    cfg.write_text(CONFIG.format(rule=peeking_rule) + SWEEP, encoding="utf-8")
    db = tmp_path / "x.duckdb"
    code, _, err = call(capsys, "sweep", str(cfg), "--db", str(db), "--workers", "1")
    assert code == 1
    assert err.strip().splitlines()[-1] == f"error: {expected_line(data_dir)}"
    assert not db.exists()  # refused before the store was written
    code, out, _ = call(capsys, "sweep", str(cfg), "--db", str(db), "--workers", "1", "--allow-lookahead")
    assert code == 0, out
    line = expected_line(data_dir).split("; fix the rule")[0]
    assert f"warning: {ALLOWED}: {line}" in " ".join(out.split())
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT lookahead FROM sweeps").fetchall()
        runs = con.execute("SELECT count(*) FROM runs WHERE status = 'ok'").fetchone()[0]
    assert rows == [(line,)] and runs == 2


def test_a_clean_sweep_is_not_marked(capsys, tmp_path, data_dir):
    cfg = tmp_path / "clean_sweep.toml"
    cfg.write_text(CONFIG.format(rule="ath_confirmed") + SWEEP, encoding="utf-8")
    db = tmp_path / "x.duckdb"
    code, out, _ = call(capsys, "sweep", str(cfg), "--db", str(db), "--workers", "1")
    assert code == 0, out
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT lookahead FROM sweeps").fetchall() == [(None,)]
