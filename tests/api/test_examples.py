"""The backtrader examples run as a user runs them, and print the numbers ``riskon run`` gives (issue 17).

Each script runs in a fresh interpreter from an empty folder with ``RISKON_DATA`` set, writing its tear
sheet where it is told. ``cerebro_seed.py`` must print the seed run's final equity, entries, Sharpe and
drawdown; ``cerebro_own_strategy.py`` must see exactly the seed run's signal bars, and make the trades a
hand walk over the run's bars gives for its own rules.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import riskon

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def seed_run(data_dir):
    return riskon.run(ROOT / "runs" / "seed.toml")


def run_example(name: str, tmp_path: Path) -> dict[str, str]:
    out = tmp_path / f"{name}.html"
    env = {**os.environ, "RISKON_DATA": os.environ["RISKON_DATA"]}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / f"{name}.py"), str(out)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.is_file() and "<title>" in out.read_text(encoding="utf-8")
    printed = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition("  ")
        printed[key.strip()] = value.strip()
    assert printed["tear sheet"] == str(out)
    return printed


def test_cerebro_seed_prints_the_seed_runs_numbers(seed_run, tmp_path):
    printed = run_example("cerebro_seed", tmp_path)
    m = seed_run.metrics["strategy"]
    assert printed["final equity"] == f"{seed_run.equity.iloc[-1]:.6f}"
    assert printed["entries"] == str(len(seed_run.trades)) == "19"
    assert printed["sharpe"] == f"{m['sharpe']:.6f}"
    assert printed["max drawdown"] == f"{m['max_drawdown']:.6f}"


def test_cerebro_own_strategy_sees_the_seed_runs_signals(seed_run, tmp_path):
    printed = run_example("cerebro_own_strategy", tmp_path)
    bars = seed_run.bars
    days = bars.index[bars["event"].to_numpy(dtype=bool)]
    assert printed["signals"] == f"{len(days)} ({days[0]:%Y-%m-%d} .. {days[-1]:%Y-%m-%d})"
    # its own rules walked by hand over the run's bars: buy at the open after a signal when flat, sell at the
    # open after a close with the index 10% below its record
    held = buy = sell = False
    closed = 0
    for event, close, ath in zip(bars["event"], bars["idx_close"], bars["idx_ath"], strict=True):
        if buy:
            held, buy = True, False
        if sell:
            held, sell = False, False
            closed += 1
        if event:
            buy = not held
        elif held and close < ath * 0.9:
            sell = True
    assert printed["trades"] == f"{closed} closed, {int(held or buy)} open"
    assert printed["refused"] == "0"
