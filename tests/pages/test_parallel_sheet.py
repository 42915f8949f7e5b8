"""The tear sheet drawn by worker processes (``riskon.pages.sheet_pool``) is quantstats' serial page.

On the seed run, the page the workers draw equals the page ``write_tearsheet`` draws serially through
``quantstats.reports.html``, byte for byte once matplotlib's random SVG ids and the drawing's date are
normalised: the same metrics, EOY and drawdown tables, the same figures with the same titles, in the same
places. The figure calls the workers make are the fourteen ``reports.html`` makes (read off its source).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from riskon.config import load
from riskon.runner import run

ROOT = Path(__file__).resolve().parents[2]

#: The plotting calls of quantstats 0.0.86's ``reports.html`` for one strategy and a benchmark, in page order.
QUANTSTATS_FIGURES = [
    "returns", "log_returns", "returns", "yearly_returns", "histogram", "daily_returns", "rolling_beta",
    "rolling_volatility", "rolling_sharpe", "rolling_sortino", "drawdowns_periods", "drawdown",
    "monthly_heatmap", "distribution",
]  # fmt: skip


def normalised(html: str) -> str:
    """The page with matplotlib's per-drawing ids (clip paths ``p…``, markers ``m…``: 10 hex digits from a
    random salt) renamed in order of appearance, and the SVG's creation date blanked."""
    html = re.sub(r"<dc:date>[^<]*</dc:date>", "<dc:date></dc:date>", html)
    names: dict[str, str] = {}
    return re.sub(r"\b[pm][0-9a-f]{10}\b", lambda m: names.setdefault(m.group(0), f"id{len(names)}"), html)


def metrics_rows(html: str) -> list[str]:
    """The metrics table's rows as text (quantstats' ``<div id="right">`` table, tags stripped)."""
    block = re.search(r'<div id="right">.*?<table>(.*?)</table>', html, re.S).group(1)
    return [re.sub(r"<[^>]+>", "|", row) for row in re.findall(r"<tr>(.*?)</tr>", block, re.S)]


@pytest.fixture(scope="module")
def seed(data_dir):
    return run(load(ROOT / "runs" / "seed.toml"), engine="fast")


@pytest.fixture(scope="module")
def pages(seed, tmp_path_factory):
    from riskon.pages.sheet_pool import SheetWorkers, begin_tearsheet
    from riskon.pages.tearsheet import write_tearsheet

    folder = tmp_path_factory.mktemp("sheets")
    serial = write_tearsheet(seed, folder / "serial" / "tearsheet.html").read_text(encoding="utf-8")
    with SheetWorkers(2):
        path = begin_tearsheet(seed, folder / "parallel" / "tearsheet.html")()
    return serial, path.read_text(encoding="utf-8")


def test_the_workers_make_quantstats_own_figure_calls(seed):
    from riskon.pages import figure_worker
    from riskon.pages.tearsheet import run_sheet_arguments

    arguments, _ = run_sheet_arguments(seed, "tearsheet.html")
    calls = figure_worker.plan(arguments)
    assert [c[0] for c in calls] == QUANTSTATS_FIGURES
    assert all(c[3] == "svg" for c in calls)
    # the volatility-matched returns chart is the second "returns" call, as in reports.html
    assert calls[2][2]["match_volatility"] is True and "match_volatility" not in calls[0][2]


def test_parallel_page_has_the_serial_metrics_and_figures(pages):
    serial, parallel = pages
    assert metrics_rows(parallel) == metrics_rows(serial)
    assert len(metrics_rows(serial)) > 40  # the full table, not an empty one on both sides
    assert parallel.count("<svg") == serial.count("<svg") == len(QUANTSTATS_FIGURES)
    titles = re.compile(r"<h3>(.*?)</h3>")
    assert titles.findall(parallel) == titles.findall(serial)
    assert "riskon:figure" not in parallel  # every placeholder was filled


def test_parallel_page_equals_the_serial_page(pages):
    serial, parallel = pages
    assert normalised(parallel) == normalised(serial)
    assert normalised(parallel) != parallel  # the normalisation had ids and a date to rename
