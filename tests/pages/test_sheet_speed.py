"""What makes a run's pages faster without changing them (``riskon.pages.tearsheet``, ``sheet_pool``).

- quantstats' figures are saved without pyplot's redraw after the save (an Agg render thrown away when
  quantstats closes the figure): the same SVG, one render fewer;
- quantstats is imported with yfinance lazy (it is only for downloads riskon never asks for);
- the signal chart is drawn by the tear-sheet worker, byte for byte the chart drawn here, so the command's
  own process never loads matplotlib or quantstats (nor DuckDB: a run does not touch the store).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskon.config import load
from riskon.runner import run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def seed(data_dir):
    return run(load(ROOT / "runs" / "seed.toml"), engine="fast")


def _series(seed_value: int) -> tuple[pd.Series, pd.Series]:
    days = pd.date_range("2019-01-01", periods=900, freq="D")
    rng = np.random.default_rng(seed_value)
    return (pd.Series(rng.normal(0.001, 0.02, len(days)), index=days),
            pd.Series(rng.normal(0.0005, 0.015, len(days)), index=days))  # fmt: skip


def _normalised(svg: str) -> str:
    svg = re.sub(r"<dc:date>[^<]*</dc:date>", "", svg)
    names: dict[str, str] = {}
    return re.sub(r"\b[pm][0-9a-f]{10}\b", lambda m: names.setdefault(m.group(0), f"id{len(names)}"), svg)


def test_a_saved_quantstats_figure_is_not_redrawn_and_is_the_same():
    import quantstats as qs
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from riskon.pages.tearsheet import drawing_fixes

    r, bench = _series(1)
    renders = []
    draw = FigureCanvasAgg.draw

    def counting(self, *a, **k):
        renders.append(1)
        return draw(self, *a, **k)

    svgs = []
    FigureCanvasAgg.draw = counting
    try:
        for fixed in (False, True):
            renders.clear()
            out = io.BytesIO()
            if fixed:
                with drawing_fixes():
                    qs.plots.rolling_volatility(r, bench, show=False, savefig={"fname": out, "format": "svg"})
            else:
                qs.plots.rolling_volatility(r, bench, show=False, savefig={"fname": out, "format": "svg"})
            svgs.append((len(renders), out.getvalue().decode()))
    finally:
        FigureCanvasAgg.draw = draw
    (plain_renders, plain), (fixed_renders, fixed) = svgs
    assert plain_renders == 1  # pyplot.savefig's draw_idle: a full Agg render after the SVG is written
    assert fixed_renders == 0
    assert _normalised(fixed) == _normalised(plain) and "<svg" in fixed


def test_quantstats_loads_with_yfinance_lazy():
    code = (
        "import sys\n"
        "from riskon.pages.tearsheet import import_quantstats\n"
        "qs = import_quantstats()\n"
        "y = sys.modules['yfinance']\n"
        "print(type(y).__name__, 'yfinance.base' in sys.modules, 'requests' in sys.modules)\n"
        "print(qs.stats.sharpe.__name__, callable(y.download), 'yfinance.base' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, MPLBACKEND="Agg"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[:2] == ["_LoadedOnUse False False", "sharpe True True"]


def test_the_worker_draws_the_signal_chart_the_serial_chart(seed, tmp_path):
    from riskon.pages.charts import signal_chart
    from riskon.pages.sheet_pool import SheetWorkers, begin_pages

    here = signal_chart(seed, tmp_path / "here.png")
    with SheetWorkers(2):
        paths = begin_pages(seed, None, tmp_path / "worker.png")()
    assert paths == {"chart": tmp_path / "worker.png"}
    assert paths["chart"].read_bytes() == here.read_bytes()
    assert here.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_with_its_pages_leaves_plotting_to_the_worker(data_dir, tmp_path):
    """``riskon run`` with the tear sheet: every page is written, and the command's own process (this
    snippet's) never imported matplotlib, quantstats or DuckDB (the worker process did the drawing)."""
    code = (
        "import sys\n"
        "from riskon.cli import main\n"
        f"sys.argv = ['riskon', 'run', {str(ROOT / 'runs' / 'seed.toml')!r}, '--out', {str(tmp_path / 'out')!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "print('exit', code, *[m for m in ('matplotlib', 'quantstats', 'duckdb', 'seaborn') if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, MPLBACKEND="Agg", RISKON_PAGE_WORKERS="2"), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "exit 0"
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["equity.csv", "metrics.csv", "plotly.min.js", "run.html", "signals.png", "tearsheet.html",
                     "trades.csv"]  # fmt: skip
    page = (tmp_path / "out" / "tearsheet.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 14 and "riskon:figure" not in page
