"""Every page riskon writes fits a 1280 px wide window, and a screenshot of each is kept for a person to look at.

One module fixture writes the pages from the real snapshot (fast engine): ``runs/seed_walkforward.toml``'s
walk-forward (9 yearly windows) and the sweep report of its stored sweep (robustness and walk-forward
sections included), the run page of ``runs/seed.toml`` (tear sheet and signal chart), its event study, a
comparison of that run with the walk-forward sweep's best run, and the reports index. Each is opened in the
session's headless Chromium at a 1280 px wide window: ``document.documentElement.scrollWidth`` must stay
within it, and on the walk-forward page and the sweep report no table scrolls inside its box either (the
windows tables fit). A full-page screenshot of each goes to ``reports/screenshots/<page>.png`` (gitignored).
The walk-forward's equity chart is checked for overlapping labels too (``overlapping_labels``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.browser import HEIGHT, WIDTH
from support.browser import chromium as _chromium  # noqa: F401  (the session's headless Chromium: fixture ``browser``)

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "reports" / "screenshots"
PAGE_WIDTH = 1280


class Pages:
    """The pages written for the test, by name."""

    def __init__(self, root: Path) -> None:
        from riskon import config as config_mod
        from riskon.analysis.comparison import build
        from riskon.analysis.episodes import event_study, settings_from
        from riskon.analysis.walk_forward import walk_forward
        from riskon.pages.comparison_page import write_comparison
        from riskon.pages.events_page import write_events_page
        from riskon.pages.html import write_index
        from riskon.pages.run_page import write_outputs
        from riskon.pages.sweep_page import sweep_report
        from riskon.pages.walkforward_page import write_report
        from riskon.runner import run

        reports, db = root / "reports", root / "wf.duckdb"
        self.wf = walk_forward(ROOT / "runs" / "seed_walkforward.toml", db=db, engine="fast")
        cfg = config_mod.load(ROOT / "runs" / "seed.toml")
        result = run(cfg, engine="fast")
        outputs = write_outputs(result, reports / "seed")
        best = self.wf.windows["run_id"].dropna().iloc[-1]
        self.paths = {
            "walk-forward": write_report(self.wf, reports / "wf")["page"],
            "sweep report": sweep_report("seed_walkforward", db=db, null_n=40, out=reports / "sw" / "sweep.html"),
            "tear sheet": outputs["tearsheet"],
            "events": write_events_page(event_study(cfg, settings_from(cfg, bootstrap=100)), reports / "ev.html"),
            "comparison": write_comparison(build([result, best], db=db, null_n=40, seed=0), reports / "cmp.html"),
            "index": write_index(reports),
        }


@pytest.fixture(scope="module")
def pages(tmp_path_factory, data_dir) -> Pages:
    root = tmp_path_factory.mktemp("widths")
    old = os.environ.get("RISKON_REPORTS")
    os.environ["RISKON_REPORTS"] = str(root / "reports")
    try:
        yield Pages(root)
    finally:
        if old is None:
            os.environ.pop("RISKON_REPORTS", None)
        else:
            os.environ["RISKON_REPORTS"] = old


#: Pages whose tables must fit without scrolling inside their box (the walk-forward windows tables).
TABLES_FIT = {"walk-forward", "sweep report"}


@pytest.mark.parametrize("name", ["walk-forward", "sweep report", "tear sheet", "events", "comparison", "index"])
def test_page_fits_1280_px(name, pages, browser):
    from selenium.webdriver.common.by import By

    driver = browser.driver
    driver.set_window_size(PAGE_WIDTH, HEIGHT)
    try:
        browser.open_page(pages.paths[name])
        assert driver.execute_script("return window.innerWidth") == PAGE_WIDTH
        width = driver.execute_script("return document.documentElement.scrollWidth")
        height = driver.execute_script("return document.documentElement.scrollHeight")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        driver.set_window_size(PAGE_WIDTH, min(height, 16000))
        driver.get_screenshot_as_file(str(SCREENSHOTS / f"{name.replace(' ', '-')}.png"))
        assert width <= PAGE_WIDTH, f"{name}: the page is {width} px wide at a {PAGE_WIDTH} px window"
        if name in TABLES_FIT:
            boxes = driver.find_elements(By.CSS_SELECTOR, "div.table")
            assert boxes
            wide = [b.get_attribute("scrollWidth") for b in boxes
                    if int(b.get_attribute("scrollWidth")) > int(b.get_attribute("clientWidth")) + 1]  # fmt: skip
            assert wide == [], f"{name}: tables wider than the page: {wide} px"
    finally:
        driver.set_window_size(WIDTH, HEIGHT)


def test_walkforward_chart_labels_readable_and_apart(pages):
    """Window numbers in 10 pt bold, nothing overlapping; a log axis keeps its 10^k tick labels as math."""
    from riskon.pages.charts import overlapping_labels
    from riskon.pages.walkforward_page import WINDOW_FONT, equity_figure

    fig = equity_figure(pages.wf)
    assert overlapping_labels(fig) == []
    ax = fig.axes[0]
    numbers = [t for t in ax.texts if t.get_text().strip().isdigit()]
    assert [int(t.get_text()) for t in numbers] == list(pages.wf.windows["window"])
    assert WINDOW_FONT >= 10 and all(t.get_fontsize() == WINDOW_FONT for t in numbers)
    ticks = [lb for lb in ax.get_yticklabels() if lb.get_text().startswith("$")]
    assert ticks and all(lb.get_parse_math() for lb in ticks)  # drawn as 10^5, not as "$\mathdefault{...}$"
