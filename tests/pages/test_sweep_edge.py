"""The sweep report warns when the best run sits on the edge of the searched range of a numeric parameter.

``runs/seed_sweep.toml`` (grid) is swept into a private store: its best run by Sharpe has threshold 0.01
and trailing stop 0.4, both the highest values tried. Random and Optuna sweeps of the same parameters are
checked against the edges found by hand from the store's rows (read with duckdb, not through the page).
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from riskon.pages.html import esc
from riskon.pages.sweep_page import edge_params, edge_warning, load_sweep, sweep_report
from riskon.sweeps.driver import run_sweep
from riskon.sweeps.store import Store

ROOT = Path(__file__).resolve().parents[2]
SEED_SWEEP = ROOT / "runs" / "seed_sweep.toml"
GRID = """[sweep]
method = "grid"
objective = "sharpe"
batch_size = 8
"""
PARAMS = {"strategy.params.confirm_days": "confirm_days", "strategy.params.threshold": "threshold",
          "exits.trailing_stop": "trailing_stop"}  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory, data_dir) -> Path:
    folder = tmp_path_factory.mktemp("edge")
    db = folder / "edge.duckdb"
    run_sweep(SEED_SWEEP, db=db, workers=1, engine="fast")
    text = SEED_SWEEP.read_text(encoding="utf-8")
    assert GRID in text
    for method in ("random", "optuna"):
        path = folder / f"edge_{method}.toml"
        sweep = GRID.replace('"grid"', f'"{method}"') + "n = 12\nseed = 3\n"
        path.write_text(text.replace(GRID, sweep).replace('name = "seed_sweep"', f'name = "edge_{method}"'))
        run_sweep(path, db=db, workers=1, engine="fast")
    return db


def hand_edges(db: Path, name: str) -> list[tuple[str, float, str]]:
    """(parameter, best value, lowest|highest) from the store's ok runs of one sweep, best by Sharpe."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT r.params, r.sharpe, r.run_id FROM runs r JOIN sweep_runs s ON s.run_id = r.run_id "
            "JOIN sweeps w ON w.sweep_id = s.sweep_id WHERE w.name = ? AND r.status = 'ok'",
            [name],
        ).fetchall()
    runs = [(json.loads(p), s, rid) for p, s, rid in rows]
    best = min(runs, key=lambda r: (-r[1], r[2]))[0]  # the highest Sharpe; ties: the smallest run id
    out = []
    for path, short in PARAMS.items():
        tried = sorted({r[0][path] for r in runs})
        if len(tried) > 1 and best[path] in (tried[0], tried[-1]):
            out.append((short, best[path], "lowest" if best[path] == tried[0] else "highest"))
    return out


def test_seed_sweep_best_run_is_on_two_upper_edges(store):
    data = load_sweep(Store(store), "seed_sweep")
    got = [(p, v, side) for p, v, side, _ in edge_params(data)]
    assert got == [("threshold", 0.01, "highest"), ("trailing_stop", 0.4, "highest")]
    assert got == hand_edges(store, "seed_sweep")
    assert edge_warning(data) == (
        "warning: the best run by sharpe sits on the edge of the searched range: threshold = 0.01 (the highest of "
        "3 values tried, 0 .. 0.01); trailing_stop = 0.4 (the highest of 4 values tried, 0.1 .. 0.4). The best "
        "value may lie outside the range: widen it past that edge and sweep again before trusting it."
    )


@pytest.mark.parametrize("method", ["random", "optuna"])
def test_random_and_optuna_sweeps_are_checked_alike(store, method):
    data = load_sweep(Store(store), f"edge_{method}")
    assert data.spec["method"] == method
    got = [(p, v, side) for p, v, side, _ in edge_params(data)]
    assert got == hand_edges(store, f"edge_{method}")
    assert (edge_warning(data) is None) == (got == [])


def test_the_report_page_shows_the_warning(store, tmp_path):
    data = load_sweep(Store(store), "seed_sweep")
    page = sweep_report("seed_sweep", db=store, out=tmp_path / "sweep.html", null_n=0).read_text(encoding="utf-8")
    assert f'<p class="note" id="edge">{esc(edge_warning(data))}</p>' in page
    assert page.index('id="edge"') > page.index('id="best"')  # right under the best runs
