"""Walk-forward keeps the last, partial test window and compares in- with out-of-sample per year.

The seed walk-forward's windows (anchored from the first BTC bar, train 1095 days, test 365 days) on
the whole snapshot, over a 2-combination grid in a private store. The snapshot ends on 2026-08-21,
inside the ninth test window (2025-09-14 ..): that window is traded to the last bar and marked
partial. Window dates are computed here with ``datetime``; the per-year in-sample figures from the
full-history runs' daily returns by hand.
"""

from __future__ import annotations

import math
import tomllib
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from riskon.analysis.walk_forward import walk_forward
from riskon.cli import app
from riskon.config import parse
from riskon.runner import run
from riskon.sweeps.spec import apply

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "runs" / "seed_walkforward.toml").read_text(encoding="utf-8")
GRID = '"strategy.params.confirm_days" = [1, 3, 5]\n"exits.trailing_stop" = [0.15, 0.25, 0.35]'
SMALL = '"strategy.params.confirm_days" = [1, 3]\n"exits.trailing_stop" = [0.25]'


@pytest.fixture(scope="module")
def setup(tmp_path_factory, data_dir):
    folder = tmp_path_factory.mktemp("wf_partial")
    assert GRID in TEXT
    path = folder / "wfp.toml"
    path.write_text(TEXT.replace(GRID, SMALL).replace('name = "seed_walkforward"', 'name = "wfp"'))
    db = folder / "wfp.duckdb"
    return walk_forward(path, db=db, engine="fast"), path, db


def hand_windows() -> list[tuple[date, date, date, date, bool]]:
    first, last = date(2014, 9, 17), date(2026, 8, 21)
    out, k = [], 0
    while True:
        train_end = first + timedelta(days=1095 - 1 + 365 * k)
        a, b = train_end + timedelta(days=1), train_end + timedelta(days=365)
        if a > last:
            return out
        out.append((first, train_end, a, min(b, last), b > last))
        k += 1


def test_the_last_partial_window_is_traded_and_marked(setup):
    res, _, _ = setup
    w = res.windows
    got = [(r.train_start.date(), r.train_end.date(), r.test_start.date(), r.test_end.date(), r.partial)
           for r in w.itertuples()]  # fmt: skip
    assert got == hand_windows()
    assert got[-1] == (date(2014, 9, 17), date(2025, 9, 13), date(2025, 9, 14), date(2026, 8, 21), True)
    assert sum(p for *_, p in got) == 1
    assert res.returns.index[-1] == pd.Timestamp("2026-08-21", tz="UTC")
    tail = res.returns.loc["2025-09-14":]
    assert len(tail) == 342  # the partial window's days are in the stitched curve
    assert (res.benchmark_returns.loc["2025-09-14":].index == tail.index).all()
    assert res.windows["oos_trades"].iloc[-1] >= 1  # the seed strategy's recent trades are in it


def test_in_sample_is_compared_per_year(setup):
    res, path, _ = setup
    s, w = res.summary, res.windows
    assert math.isnan(s.at["total_return", "in_sample_mean"]) and math.isnan(s.at["total_return", "out_of_sample_mean"])
    # the CAGR row: each window's chosen run over its train window, per year, averaged (by hand)
    raw = {k: v for k, v in tomllib.loads(path.read_text()).items() if k not in ("sweep", "walkforward")}
    per_year = []
    for r in w.itertuples():
        rets = run(parse(apply(raw, r.params)), engine="fast").returns.loc[r.train_start : r.train_end].to_numpy()
        per_year.append(float(np.prod(1 + rets)) ** (365 / len(rets)) - 1)
    assert s.at["cagr", "in_sample_mean"] == pytest.approx(np.mean(per_year), rel=1e-9)


def test_pages_and_cli_say_partial(setup, tmp_path, monkeypatch):
    from riskon.pages.walkforward_page import write_report

    res, path, db = setup
    page = write_report(res, tmp_path / "wf")["page"].read_text(encoding="utf-8")
    assert "9 windows (the last one partial: 2025-09-14 .. 2026-08-21, 342 of 365 test days, cut by the end of " in page
    assert page.count("<td>partial</td>") == 1  # the last row of the windows table
    assert "total returns are not averaged: compare CAGR, the same return per year" in page
    monkeypatch.setenv("RISKON_REPORTS", str(tmp_path / "reports"))
    got = CliRunner().invoke(app, ["walkforward", str(path), "--db", str(db)], env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert got.exit_code == 0, got.output
    assert "2025-09-14 .. 2026-08-21 (partial)" in got.stdout
    assert "9 anchored windows (the last one partial: 342 test days)" in got.stderr
