"""The README's promises: its example rule runs as written, and its commands are the real ones."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def example_rule() -> str:
    block = README.split("<!-- example-rule:start -->")[1].split("<!-- example-rule:end -->")[0]
    return re.search(r"```python\n(.*?)```", block, re.S).group(1)


@pytest.fixture
def up_streak_file():
    path = ROOT / "strategies" / "rules" / "up_streak.py"
    assert not path.exists()
    path.write_text(example_rule(), encoding="utf-8")
    try:
        yield path
    finally:
        path.unlink()
        sys.modules.pop("strategies.rules.up_streak", None)


def test_example_rule_is_short():
    code = [ln for ln in example_rule().splitlines() if ln.strip()]
    assert len(code) <= 30


def test_example_rule_runs_checks_and_matches_a_hand_count(up_streak_file, data_dir, tmp_path):
    from feeds.align import session_frame
    from feeds.loader import load
    from riskon.config import parse
    from riskon.lookahead import check
    from riskon.run import run
    from strategies import rules

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
    listing = subprocess.run(["riskon", "rules"], capture_output=True, text=True, check=True).stdout
    assert "up_streak" in listing and "days" in listing


def test_readme_commands_are_the_ci_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = 'pip install -c constraints.txt -e ".[dev]" && pytest -q'
    assert test_cmd in README and test_cmd in ci
    assert "riskon run runs/seed.toml" in README
    assert (ROOT / "runs" / "seed.toml").exists()


def test_every_metric_is_explained():
    from riskon.cli_run import LABELS
    from riskon.metrics import METRICS

    for key in METRICS:
        assert f"| {LABELS[key]} |" in README, key


@pytest.mark.parametrize("path", sorted((ROOT / "runs").glob("*.toml")), ids=lambda p: p.name)
def test_example_configs_load(path):
    import tomllib

    from riskon.config import load
    from riskon.sweep_spec import parse_sweep

    cfg = load(path)
    assert cfg.name == path.stem
    raw = tomllib.loads(path.read_text())
    if "sweep" in raw:
        assert parse_sweep(raw, str(path)).values


def test_basket_run_states_survivorship_bias(data_dir, tmp_path):
    text = (
        (ROOT / "runs" / "alt_basket.toml")
        .read_text()
        .replace('index = "^RUT"', 'index = "^RUT"\nstart = "2020-06-01"\nend = "2021-12-31"')
    )
    cfg = tmp_path / "alt.toml"
    cfg.write_text(text)
    proc = subprocess.run(
        ["riskon", "run", str(cfg), "--no-report", "--out", str(tmp_path / "out")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "survivorship bias" in proc.stdout
    assert "binance:SOL/USDT" in proc.stdout  # one row per coin leg
    import pandas as pd

    trades = pd.read_csv(tmp_path / "out" / "trades.csv")
    assert trades.groupby("position")["asset"].nunique().max() > 5
