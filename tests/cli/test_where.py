"""``riskon results --where``: a grammar of its own, evaluated on the table of runs, never SQL.

Every filter's result is compared with the same filter written by hand in pandas on the same table.
Hostile filters (SQL functions, statements, quotes, file reads, very long or deep input) are refused
through the real CLI with exit 2 and one line that shows no file content, and the store is byte-identical
afterwards.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from riskon.config import ConfigError
from riskon.sweeps import query
from riskon.sweeps.store import Store
from support.clitools import riskon_cmd
from support.sweep_store import call, digest, files_under, make_sweep

HOW = "write e.g. \"sharpe > 0.8 and confirm_days >= 2\" (names, numbers, 'text', < <= > >= == !=, and, or, not, ())"


@pytest.fixture(scope="module")
def swept(tmp_path_factory, data_dir) -> tuple[Path, str, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("where")
    db, sweep_id = make_sweep(folder)
    return db, sweep_id, Store(db).runs(sweep_id)


# every filter with the same selection written by hand on the table (d)
CASES = [
    ("sharpe > 0.8", lambda d: d["sharpe"] > 0.8),
    ("sharpe > 0.5 and confirm_days >= 3", lambda d: (d["sharpe"] > 0.5) & (d["confirm_days"] >= 3)),
    ("strategy.params.confirm_days == 2", lambda d: d["confirm_days"] == 2),
    ("confirm_days = 2 or threshold != 0", lambda d: (d["confirm_days"] == 2) | (d["threshold"] != 0)),
    ("not (trailing_stop < 0.25)", lambda d: ~(d["trailing_stop"] < 0.25)),
    ("0.15 < exits.trailing_stop <= 0.3", lambda d: (d["trailing_stop"] > 0.15) & (d["trailing_stop"] <= 0.3)),
    (
        "trades >= 5 AND NOT confirm_days > 2 OR cagr < 0.06",
        lambda d: ((d["trades"] >= 5) & ~(d["confirm_days"] > 2)) | (d["cagr"] < 0.06),
    ),
    (
        "(sharpe > 0.8 or sortino > 1.4) and max_drawdown > -0.45",
        lambda d: ((d["sharpe"] > 0.8) | (d["sortino"] > 1.4)) & (d["max_drawdown"] > -0.45),
    ),
    ("cagr > 2.5e-1", lambda d: d["cagr"] > 0.25),
    ("threshold == 0.005 and confirm_days != 5", lambda d: (d["threshold"] == 0.005) & (d["confirm_days"] != 5)),
    ("sortino >= -0.5 and sharpe < 0.4", lambda d: (d["sortino"] >= -0.5) & (d["sharpe"] < 0.4)),
]


@pytest.mark.parametrize(("text", "hand"), CASES, ids=[c[0] for c in CASES])
def test_filters_keep_exactly_the_hand_filtered_runs(swept, text, hand):
    _, _, runs = swept
    expected = runs[hand(runs)]
    got = query.filter_runs(runs, text)
    assert 0 < len(expected) < len(runs), "a case that keeps nothing or everything would test nothing"
    assert list(got["run_id"]) == list(expected["run_id"])
    assert got.equals(expected)


def test_missing_and_non_numbers_never_satisfy_a_comparison():
    runs = pd.DataFrame({
        "run_id": ["a", "b", "c", "d", "e"],
        "stop": [False, 0.05, 0.1, None, 0.2],
        "rule": ["x", "y", "x", "y", 3],
        "sharpe": [0.5, 1.2, float("nan"), 0.9, 2.0],
        "params": ['{"exits.stop": false, "strategy.rule": "x"}'] * 5,
    })  # fmt: skip
    keep = lambda text: "".join(query.filter_runs(runs, text)["run_id"])  # noqa: E731
    assert keep("stop < 0.15") == "bc"  # false (disabled) and None are not numbers
    assert keep("not stop < 0.15") == "ade"
    assert keep("stop == false") == "a"
    assert keep("exits.stop != false") == "bcde"
    assert keep("rule == 'x'") == "ac"
    assert keep('strategy.rule == "y" or sharpe >= 2') == "bde"
    assert keep("sharpe != 1.2") == "acde"  # NaN is not 1.2
    assert keep("sharpe > -1") == "abde"  # NaN is not greater than anything
    assert keep("stop < sharpe") == "be"  # two columns: both must be numbers
    assert keep("rule == strategy.rule") == "abcde"  # a column equals itself, text and numbers alike
    with pytest.raises(ConfigError, match=r"^--where: > compares numbers; text and true/false take only == and !=$"):
        keep("rule > 'x'")


def test_the_filter_reaches_the_export_through_the_cli(swept, tmp_path, capsys):
    db, _, runs = swept
    out = tmp_path / "kept.csv"
    code, _, err = call(capsys, "results", "wsweep", "--db", str(db), "--where", "sharpe > 0.5 and confirm_days >= 3",
                        "--export", "csv", "--out", str(out))  # fmt: skip
    assert code == 0, err
    expected = runs[(runs["sharpe"] > 0.5) & (runs["confirm_days"] >= 3)]
    assert sorted(pd.read_csv(out)["run_id"]) == sorted(expected["run_id"])


HOSTILE = [
    (
        "read_text('/etc/hostname')",
        f"unexpected '(' at position 10: a comparison operator (< <= > >= == !=) was expected; {HOW}",
    ),
    ("sharpe > 0; DROP TABLE runs", f"unexpected character ';' at position 11; {HOW}"),
    ("sharpe > 0 -- comment", f"unexpected '-' at position 12: 'and', 'or' or the end was expected; {HOW}"),
    ("sharpe > (SELECT max(sharpe) FROM runs)", "unexpected '(' at position 10: a name, a number or 'text' was"),
    ("sharpe > 0 or 1=1 /*", f"unexpected character '/' at position 19; {HOW}"),
    ("regexp_matches(params, '.*')", f"unexpected character ',' at position 22; {HOW}"),
    (
        "sharpe > 0 union select sharpe from sweeps",
        f"unexpected 'union' at position 12: 'and', 'or' or the end was expected; {HOW}",
    ),
    ("__import__('os').system('id') > 0", "unexpected character '.' at position 17"),
    ("sharpe.__class__ > 0", "unknown name 'sharpe.__class__'; valid names: "),
    ('"sharpe" > 0', "> compares numbers; text and true/false take only == and !="),
    ("sharpe > 'it''s'", "unexpected \"'s'\" at position 14"),
    ("sharpe > `1`", f"unexpected character '`' at position 10; {HOW}"),
    ("sharpe > $1", f"unexpected character '$' at position 10; {HOW}"),
    ("sharpe ＞ 1", f"unexpected character '＞' at position 8; {HOW}"),
    ("x" * 5000, "the filter has 5,000 characters, at most 1,000; shorten it"),
    ("(" * 40 + "sharpe > 0" + ")" * 40, "nested more than 32 levels deep at position 33; simplify it"),
    ("not " * 40 + "sharpe > 0", "nested more than 32 levels deep at position 129; simplify it"),
    ("sharpe >", f"the filter ends too early; {HOW}"),
    ("", f"the filter is empty; {HOW}"),
    ("sharp > 1", "unknown name 'sharp' (did you mean 'sharpe'?); valid names: "),
    ("params > 0", "unknown name 'params'"),
    ("run_id == 'x'", "unknown name 'run_id'"),
]


@pytest.mark.parametrize(("text", "message"), HOSTILE, ids=[f"{i}:{t[:30]}" for i, (t, _) in enumerate(HOSTILE)])
def test_hostile_filters_are_refused_with_one_line_and_exit_2(swept, tmp_path, capsys, monkeypatch, text, message):
    db, _, _ = swept
    monkeypatch.chdir(tmp_path)
    before = digest(db)
    code, out, err = call(capsys, "results", "--db", str(db), "--where", text, "--export", "csv")
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --where: "), err
    assert lines[0].removeprefix("error: --where: ").startswith(message), lines[0]
    assert out == ""
    assert digest(db) == before  # the store is byte-identical
    assert files_under(tmp_path) == {}  # nothing exported


def test_a_file_read_never_leaks_through_the_installed_command(swept, tmp_path):
    db, _, _ = swept
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT\n", encoding="utf-8")
    before = digest(db)
    cases = [
        (f"read_text('{secret}') > 0", 2),
        (f"sharpe > 0 or read_text('{secret}') == 'x'", 2),
        (f"'{secret}' == 1", 0),  # a quoted path is only text: not equal to 1, no run kept, nothing read
    ]
    for text, status in cases:
        done = subprocess.run([*riskon_cmd(), "results", "--db", str(db), "--where", text], capture_output=True,
                              text=True, timeout=120, cwd=tmp_path)  # fmt: skip
        assert done.returncode == status, done.stderr
        assert "TOP-SECRET-CONTENT" not in done.stdout + done.stderr
        if status:
            assert done.stderr.startswith("error: --where: unexpected '('") and done.stderr.count("\n") == 1
    assert digest(db) == before
