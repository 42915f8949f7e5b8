"""Rules outside the package: a ``rules/`` folder in the current directory and the folders of ``RISKON_RULES``.

They are scanned like ``strategies/rules/``: the same registry, parameters, lookahead check and error
messages, nothing written into the installed package. A name defined twice is refused with a line naming
both files. A user's rule has its own code hash (``rule_hash``), and git does not hide the folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import riskon
from strategies import codehash, lookahead, rules
from strategies.errors import RuleError
from support.clitools import riskon_cmd

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = Path(rules.__file__).parent

#: The built-in ath_confirmed file under another name: a user's rule that must give the seed's numbers.
MY_ATH = (BUILTIN / "ath_confirmed.py").read_text(encoding="utf-8").replace('name = "ath_confirmed"', 'name = "my_ath"')

PEEK = '''\
"""``peek``: a planted bug, fires when the NEXT close is higher."""

import pandas as pd

from strategies.rules import Rule


class Peek(Rule):
    """Next session's close above this one's (looks ahead)."""

    name = "peek"

    def compute(self, sessions: pd.DataFrame) -> pd.DataFrame:
        close = sessions["idx_close"]
        return pd.DataFrame({"signal": (close.shift(-1) > close).to_numpy()}, index=sessions.index)
'''


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A working directory with a ``rules/`` folder, and a clean registry before and after."""
    (tmp_path / "rules").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RISKON_RULES", raising=False)
    rules.refresh()
    yield tmp_path
    monkeypatch.chdir(ROOT)
    rules.refresh()
    codehash.clear_cache()


def test_a_rule_in_the_working_folder_registers_and_gives_the_builtins_numbers(home, data_dir):
    (home / "rules" / "my_ath.py").write_text(MY_ATH, encoding="utf-8")
    assert "my_ath" in rules.available()
    assert rules.location("my_ath") == home / "rules" / "my_ath.py"
    seed = riskon.run(ROOT / "runs" / "seed.toml")
    mine = riskon.run({**_seed(), "strategy": {"rule": "my_ath", "params": {"confirm_days": 3}}})
    assert mine.equity.tolist() == seed.equity.tolist()
    assert mine.rule_text == "my_ath(threshold=0.0, confirm_days=3, confirm='days')"


def test_riskon_rules_lists_folders_separated_like_path(home, tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "my_ath.py").write_text(MY_ATH, encoding="utf-8")
    (b / "peek.py").write_text(PEEK, encoding="utf-8")
    monkeypatch.setenv("RISKON_RULES", f"{a}{os.pathsep}{b}")
    assert {"my_ath", "peek"} <= set(rules.available())
    assert rules.location("peek") == b / "peek.py"
    monkeypatch.setenv("RISKON_RULES", str(tmp_path / "missing"))
    with pytest.raises(RuleError) as err:
        rules.available()
    assert str(err.value) == (
        f"RISKON_RULES: {tmp_path / 'missing'} is not a folder; list folders of rule files separated by {os.pathsep!r}"
    )


def test_a_name_defined_twice_is_refused_naming_both_files(home, tmp_path, monkeypatch):
    (home / "rules" / "ath_confirmed.py").write_text(MY_ATH, encoding="utf-8")
    with pytest.raises(RuleError) as err:
        rules.get("n_day_high")
    assert str(err.value) == (
        f"rule 'ath_confirmed' is defined twice: {BUILTIN / 'ath_confirmed.py'} and "
        f"{home / 'rules' / 'ath_confirmed.py'}; rename one of the files"
    )
    (home / "rules" / "ath_confirmed.py").unlink()
    other = tmp_path / "other"
    other.mkdir()
    (home / "rules" / "peek.py").write_text(PEEK, encoding="utf-8")
    (other / "peek.py").write_text(PEEK, encoding="utf-8")
    monkeypatch.setenv("RISKON_RULES", str(other))
    with pytest.raises(RuleError) as err:
        rules.available()
    assert str(err.value) == (
        f"rule 'peek' is defined twice: {home / 'rules' / 'peek.py'} and {other / 'peek.py'}; rename one of the files"
    )


def test_the_same_parameter_checks_and_messages(home):
    (home / "rules" / "my_ath.py").write_text(MY_ATH, encoding="utf-8")
    with pytest.raises(RuleError) as mine:
        rules.make("my_ath", confirm_dayz=3)
    with pytest.raises(RuleError) as builtin:
        rules.make("ath_confirmed", confirm_dayz=3)
    assert str(mine.value) == str(builtin.value).replace("ath_confirmed", "my_ath")
    assert str(mine.value) == (
        "rule my_ath has no parameter 'confirm_dayz'; valid: threshold, confirm_days, confirm; "
        "did you mean 'confirm_days'?"
    )
    with pytest.raises(RuleError) as err:
        rules.get("my_athh")
    assert str(err.value).startswith("unknown rule 'my_athh'; valid: ") and "did you mean 'my_ath'?" in str(err.value)


def test_broken_rule_files_are_one_line_errors(home):
    (home / "rules" / "broken.py").write_text("def oops(:\n    pass\n", encoding="utf-8")
    with pytest.raises(RuleError) as err:
        rules.get("broken")
    assert str(err.value) == f"{home / 'rules' / 'broken.py'}:1: invalid syntax; fix the rule file"
    (home / "rules" / "empty.py").write_text('"""Nothing here."""\n', encoding="utf-8")
    with pytest.raises(RuleError) as err:
        rules.get("empty")
    assert str(err.value) == f"{home / 'rules' / 'empty.py'} defines no Rule subclass with name = 'empty'"
    (home / "rules" / "needs.py").write_text("import not_a_module_anywhere\n", encoding="utf-8")
    with pytest.raises(RuleError) as err:
        rules.get("needs")
    assert str(err.value) == (
        f"{home / 'rules' / 'needs.py'}: No module named 'not_a_module_anywhere'; a rule file may import riskon's "
        "strategies, pandas and numpy"
    )


def test_the_lookahead_check_passes_a_clean_rule_and_catches_a_peeking_one(home, data_dir):
    (home / "rules" / "my_ath.py").write_text(MY_ATH, encoding="utf-8")
    (home / "rules" / "peek.py").write_text(PEEK, encoding="utf-8")
    index, btc = riskon.load("^RUT"), riskon.load("BTC-USD")
    asset = btc[btc.index >= pd.Timestamp("2019-01-01", tz="UTC")]
    asset.attrs = dict(btc.attrs)
    kw = {"n_signal": 6, "n_random": 3, "n_backtest": 1, "start": "2019-01-01"}
    assert lookahead.check(rules.make("my_ath", confirm_days=3), index, asset, **kw) == []
    assert lookahead.check(rules.make("peek"), index, asset, **kw) != []


def test_riskon_check_lookahead_finds_the_working_folders_rules(home, data_dir):
    (home / "rules" / "peek.py").write_text(PEEK, encoding="utf-8")
    (home / "rules" / "my_ath.py").write_text(MY_ATH, encoding="utf-8")
    args = ["check", "lookahead", "my_ath", "peek", "--start", "2019-01-01", "--signals", "4", "--random", "2",
            "--backtests", "1"]  # fmt: skip
    done = subprocess.run([*riskon_cmd(), *args], capture_output=True, text=True, cwd=home, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:2] == ["ok", "my_ath"]
    assert lines[1].startswith("FAIL peek: ")


def test_a_user_rule_has_its_own_code_hash(home):
    path = home / "rules" / "my_ath.py"
    path.write_text(MY_ATH, encoding="utf-8")
    first = codehash.rule_hash("my_ath")
    module = rules.get("my_ath").__module__
    assert "strategies.indicators" in codehash.module_closure([module])  # the helper it imports counts
    assert codehash.rule_hash("n_day_high") != first
    path.write_text(MY_ATH + "\n# edited\n", encoding="utf-8")
    os.utime(path.parent, None)  # a rescan
    codehash.clear_cache()
    assert codehash.rule_hash("my_ath") != first


def test_git_does_not_hide_a_user_rules_folder(tmp_path):
    for path in ("rules/my_rule.py", "runs/rules/my_rule.py"):
        done = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT, timeout=30)
        assert done.returncode == 1, f"{path} is ignored by .gitignore"  # 1: not ignored


def _seed() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "runs" / "seed.toml").read_text(encoding="utf-8"))


def test_a_fresh_process_finds_the_folder_too(home, data_dir):
    (home / "rules" / "my_ath.py").write_text(MY_ATH, encoding="utf-8")
    code = textwrap.dedent(
        """\
        from strategies import rules
        print(rules.get("my_ath").name, rules.location("my_ath"))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=home, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["my_ath", str(home / "rules" / "my_ath.py")]
