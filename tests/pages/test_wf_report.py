"""The walk-forward in the sweep report and in ``riskon results``, computed from the stored runs only.

One module fixture sweeps ``runs/seed_walkforward.toml`` (9 combinations, fast engine) into a private store,
then runs ``walk_forward`` on the same config and store; the sweep report and ``riskon results`` must show
that result's numbers (formatted as the tables format them) without running anything. The stitched Sharpe
ratio and CAGR are also recomputed by hand from the stitched daily returns. A second sweep of the same grid
without the ``[walkforward]`` table shows the one-sentence hint and no block; a store missing one
combination says so instead of running it.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from riskon.analysis.walk_forward import walk_forward
from riskon.cli import app
from riskon.metrics import LABELS, format_metric
from riskon.pages.sweep_page import WALKFORWARD_HINT, sweep_report
from riskon.sweeps.driver import run_sweep
from riskon.sweeps.store import Store

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "runs" / "seed_walkforward.toml"
ENV = {"COLUMNS": "250", "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def stored(tmp_path_factory, data_dir):
    """The seed walk-forward's sweep and a copy without ``[walkforward]``, in one store; the walk-forward result."""
    folder = tmp_path_factory.mktemp("wf_report")
    db = folder / "wf.duckdb"
    run_sweep(CONFIG, db=db, workers=1, engine="fast")
    res = walk_forward(CONFIG, db=db, engine="fast")  # every combination is stored: nothing more runs
    text = CONFIG.read_text(encoding="utf-8")
    plain = folder / "seed_nowf.toml"
    plain.write_text(text.partition("[walkforward]")[0].replace('"seed_walkforward"', '"seed_nowf"'))
    run_sweep(plain, db=db, workers=1, engine="fast")
    return {"folder": folder, "db": db, "res": res}


def _rows(html: str) -> dict[str, list[str]]:
    """An HTML table's rows by their first cell: the other cells' text."""
    out = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, flags=re.S):
        cells = [c.strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, flags=re.S)]
        if cells:
            out[cells[0]] = cells[1:]
    return out


def _count_runs(db: Path) -> tuple[int, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT count(*) FROM runs").fetchone()[0], con.execute(
            "SELECT count(*) FROM sweep_runs"
        ).fetchone()[0]


def test_sweep_report_shows_the_walkforward_numbers(stored, monkeypatch):
    res, db = stored["res"], stored["db"]
    monkeypatch.setenv("RISKON_REPORTS", str(stored["folder"] / "reports"))
    before = _count_runs(db)
    path = sweep_report("seed_walkforward", db=db, null_n=0)
    assert path == stored["folder"] / "reports" / "seed_walkforward" / "sweep.html"
    assert _count_runs(db) == before  # nothing was swept again
    page = path.read_text(encoding="utf-8")
    section = page.split('<div id="walkforward">', 1)[1]  # the last section of the page
    assert section.count("data:image/png;base64,") == 1  # the stitched equity against buy-and-hold
    assert f"sweep {res.sweep_id}" in section and "anchored windows, train 1095 days, test 365 days" in section
    summary = _rows(page.split('<div id="walkforward-summary">', 1)[1].split("</div>", 1)[0])
    cols = ["in_sample_mean", "out_of_sample_mean", "out_of_sample", "buy_and_hold"]
    for m in ("sharpe", "cagr", "total_return", "max_drawdown", "trades"):
        expected = [format_metric(m, res.summary.at[m, c]) for c in cols]
        assert [v or "-" for v in summary[LABELS[m]]] == expected, m
    windows = _rows(page.split('<div id="walkforward-windows">', 1)[1].split("</div>", 1)[0])
    assert len(windows) == len(res.windows) + 1  # the header row and one row per window
    for w in res.windows.to_dict("records"):
        cells = [c or "-" for c in windows[str(w["window"])]]  # an empty cell: no value (a window without trades)
        assert f"{w['test_start']:%Y-%m-%d}" in cells and f"{w['train_end']:%Y-%m-%d}" in cells
        assert str(w["confirm_days"]) in cells and str(w["trailing_stop"]) in cells
        assert format_metric("sharpe", w["is_sharpe"]) in cells and format_metric("sharpe", w["oos_sharpe"]) in cells
    hint = sweep_report("seed_nowf", db=db, null_n=0).read_text(encoding="utf-8")
    assert f'<p class="note" id="walkforward">{WALKFORWARD_HINT}</p>' in hint
    assert 'id="walkforward-summary"' not in hint


def test_results_prints_the_walkforward_block(stored):
    res, db = stored["res"], stored["db"]
    s = res.summary
    r = res.returns.to_numpy()
    hand_sharpe = r.mean() / r.std(ddof=1) * math.sqrt(365)
    hand_cagr = np.prod(1 + r) ** (365 / len(r)) - 1
    assert s.at["sharpe", "out_of_sample"] == pytest.approx(hand_sharpe, rel=1e-9)
    assert s.at["cagr", "out_of_sample"] == pytest.approx(hand_cagr, rel=1e-9)
    shown = CliRunner().invoke(app, ["results", "seed_walkforward", "--db", str(db)], env=ENV)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("walk-forward of seed_walkforward:"))
    assert lines[at - 1].lstrip().startswith("PBO")  # right after the robustness block
    first, last = res.windows["test_start"].iloc[0], res.windows["test_end"].iloc[-1]
    assert f"{len(res.windows)} anchored windows" in lines[at] and f"{first:%Y-%m-%d}..{last:%Y-%m-%d}" in lines[at]
    for line, m, hand in ((lines[at + 1], "sharpe", f"{hand_sharpe:.2f}"), (lines[at + 2], "cagr", f"{hand_cagr:.2%}")):
        assert line == (
            f"  {LABELS[m]}: out of sample (stitched) {hand}, in-sample mean "
            f"{format_metric(m, s.at[m, 'in_sample_mean'])}, buy-and-hold {format_metric(m, s.at[m, 'buy_and_hold'])}"
        )
    assert len(lines) == at + 3
    plain = CliRunner().invoke(app, ["results", "seed_nowf", "--db", str(db)], env=ENV)
    assert plain.exit_code == 0, plain.output
    assert "walk-forward" not in plain.stdout and "robustness of seed_nowf" in plain.stdout


def test_a_missing_combination_is_reported_not_run(stored):
    db = stored["folder"] / "missing.duckdb"
    shutil.copy(stored["db"], db)
    sweep_id = stored["res"].sweep_id
    with duckdb.connect(str(db)) as con:
        gone = con.execute("SELECT min(run_id) FROM sweep_runs WHERE sweep_id = ?", [sweep_id]).fetchone()[0]
        con.execute("DELETE FROM sweep_runs WHERE sweep_id = ? AND run_id = ?", [sweep_id, gone])
    before = _count_runs(db)
    page = sweep_report(sweep_id, db=db, null_n=0, out=stored["folder"] / "missing.html").read_text()
    assert f"Walk-forward not computed: sweep {sweep_id} lacks 1 of the grid&#x27;s 9 combinations" in page
    shown = CliRunner().invoke(app, ["results", sweep_id, "--db", str(db)], env=ENV)
    assert shown.exit_code == 0, shown.output
    assert f"walk-forward: skipped: sweep {sweep_id} lacks 1 of the grid's 9 combinations" in shown.stdout
    assert _count_runs(db) == before and Store(db).find_sweep(sweep_id)["runs"] == 8


def test_api_sweep_walkforward_equals_the_direct_walkforward(stored):
    """``riskon.results(...).walkforward()`` reads the stored runs and gives the same out-of-sample curve."""
    import riskon

    before = _count_runs(stored["db"])
    wf = riskon.results("seed_walkforward", db=stored["db"]).walkforward()
    assert _count_runs(stored["db"]) == before  # nothing swept
    pd.testing.assert_frame_equal(wf.summary, stored["res"].summary)
    pd.testing.assert_series_equal(wf.equity, stored["res"].equity)
