"""The README's promises: a short front door, the real set-up commands, links that lead somewhere,
and an example rule that runs as written (the same one the rule guide shows)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from support.clitools import riskon_cmd

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
GUIDE = (ROOT / "docs" / "guides" / "write-a-rule.md").read_text(encoding="utf-8")
MAIN_CMD = "pip install -c constraints.txt -e . && riskon run runs/seed.toml"
TEST_CMD = 'pip install -c constraints.txt -e ".[dev]" && pytest -q'


def example_rule(text: str = README) -> str:
    block = text.split("<!-- example-rule:start -->")[1].split("<!-- example-rule:end -->")[0]
    return re.search(r"```python\n(.*?)```", block, re.S).group(1)


def test_readme_is_a_front_door():
    assert len(README.encode("utf-8")) <= 15_000


def test_readme_commands_are_the_main_job_and_the_ci_command():
    """First bash block: the package alone and the seed run; second: exactly what .ci/run ends with."""
    blocks = [b.strip() for b in re.findall(r"```bash\n(.*?)```", README, re.S)]
    assert blocks[0] == MAIN_CMD
    assert "[dev]" not in blocks[0]
    assert blocks[1] == TEST_CMD
    ci = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln.strip()]
    assert ci[-1].strip() == TEST_CMD
    assert (ROOT / "runs" / "seed.toml").exists()


def test_readme_settings_name_every_environment_variable():
    """Every RISKON_* variable the code reads is in the settings table."""
    code = "\n".join(p.read_text(encoding="utf-8") for pkg in ("feeds", "strategies", "riskon") for p in
                     (ROOT / pkg).rglob("*.py"))  # fmt: skip
    for name in set(re.findall(r"\bRISKON_[A-Z_]+\b", code)):
        assert f"| `{name}` |" in README, name


def test_readme_links_lead_somewhere():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    local = [link for link in links if not re.match(r"^[a-z]+:", link)]
    assert local, "the README links into docs/"
    assert [link for link in local if not (ROOT / link).exists()] == []


def test_the_rule_guide_shows_the_readme_example():
    assert example_rule(GUIDE) == example_rule(README)


def test_example_rule_is_short():
    code = [ln for ln in example_rule().splitlines() if ln.strip()]
    assert len(code) <= 30


@pytest.fixture
def up_streak_file(tmp_path, monkeypatch):
    """The example saved where the README says: ``rules/up_streak.py`` in the folder riskon runs from."""
    from strategies import rules

    assert not (ROOT / "strategies" / "rules" / "up_streak.py").exists()
    path = tmp_path / "rules" / "up_streak.py"
    path.parent.mkdir()
    path.write_text(example_rule(), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    rules.refresh()
    try:
        yield path
    finally:
        monkeypatch.chdir(ROOT)
        rules.refresh()


def test_readme_says_where_the_example_rule_goes():
    assert "Save this as `rules/up_streak.py` in the folder you run riskon from" in README
    assert "strategies/rules/up_streak.py" not in README


def test_example_rule_runs_checks_and_matches_a_hand_count(up_streak_file, data_dir, tmp_path):
    from feeds.align import session_frame
    from feeds.loader import load
    from riskon.config import parse
    from riskon.runner import run
    from strategies import rules
    from strategies.lookahead import check

    assert "up_streak" in rules.available()
    sessions = session_frame(load("^RUT"))
    out = rules.make("up_streak", days=4).compute(sessions)
    closes = sessions["idx_close"].to_numpy()
    expected, streak = [], 0
    for i in range(len(closes)):
        streak = streak + 1 if i > 0 and closes[i] > closes[i - 1] else 0
        expected.append(streak == 4)
    assert out["signal"].tolist() == expected
    btc = load("BTC-USD")
    assert check(rules.make("up_streak"), load("^RUT"), btc, n_signal=5, n_random=3, n_backtest=1) == []
    cfg = parse(
        {
            "name": "streak",
            "data": {"start": "2020-01-01", "end": "2021-06-30"},
            "strategy": {"rule": "up_streak", "params": {"days": 4}},
            "exits": {"max_hold_days": 10},
            "report": {"tearsheet": False, "chart": False},
        }
    )
    res = run(cfg)
    assert len(res.trades) > 5
    # each entry was decided on a bar that first saw the 4th higher close in a row
    for t in res.trades.itertuples():
        s = res.bars.loc[t.decision_time, "event_session"]
        i = sessions.index.get_loc(s)
        assert np.all(np.diff(closes[i - 4 : i + 1]) > 0) and not closes[i - 4] > closes[i - 5]
    listing = subprocess.run(
        [*riskon_cmd(), "rules"], capture_output=True, text=True, check=True, cwd=up_streak_file.parent.parent
    ).stdout
    assert "up_streak" in listing and "days" in listing
