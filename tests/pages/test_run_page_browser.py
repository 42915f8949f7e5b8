"""``run.html`` and the compare page's interactive chart, live in headless Chromium, offline.

One seed run per module: the page is written by ``write_outputs`` (as ``riskon run`` does) and opened from
file://. Nothing but the page and its ``plotly.min.js`` is requested; the figure read back from the page
(``gd.data``) has one entry marker per leg and one exit marker per closed leg at the fills of the trades
table; ``Plotly.relayout`` on one panel's x-range moves every panel (read back from ``gd.layout``), and a
trade's zoom button zooms every panel to that trade.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from riskon.config import load
from riskon.runner import run
from support.browser import chromium as _chromium  # noqa: F401  (the session's headless Chromium: fixture ``browser``)
from support.browser import remote

ROOT = Path(__file__).resolve().parents[2]

#: Every trace's name, mode, marker count and marker times (ms) and prices, and every x-axis range, read
#: from the live page; typed arrays (Plotly's decoded base64) are turned into plain lists.
READ_FIGURE = """
const gd = document.getElementById(arguments[0]);
const list = a => a == null ? null : Array.from(a, v => (v instanceof Date ? v.getTime() : v));
return {
  traces: gd.data.map(t => ({name: t.name, mode: t.mode, x: t.mode === 'markers' ? list(t.x) : null,
                             y: t.mode === 'markers' ? list(t.y) : null})),
  ranges: Object.keys(gd.layout).filter(k => /^xaxis\\d*$/.test(k)).sort()
            .map(k => [k, gd.layout[k].range.map(String)]),
};
"""
RELAYOUT = """
const gd = document.getElementById(arguments[0]);
const done = arguments[arguments.length - 1];
Plotly.relayout(gd, {[arguments[1] + '.range']: [arguments[2], arguments[3]]}).then(() => done(null));
"""


def ms(times) -> list[float]:
    return [pd.Timestamp(t).timestamp() * 1000.0 for t in times]


@pytest.fixture(scope="module")
def seed(data_dir):
    return run(load(ROOT / "runs" / "seed.toml"), engine="fast")


@pytest.fixture(scope="module")
def run_page(seed, tmp_path_factory, browser):
    from riskon.pages.run_page import write_outputs

    cfg = dataclasses.replace(seed.config, report={**seed.config.report, "tearsheet": False})
    paths = write_outputs(dataclasses.replace(seed, config=cfg), tmp_path_factory.mktemp("run") / "seed")
    opened = browser.open_page(paths["run_page"])
    return paths["run_page"], opened, browser.driver


def figure(driver, chart: str) -> dict:
    return driver.execute_script(READ_FIGURE, chart)


def test_run_page_loads_offline(run_page):
    path, opened, driver = run_page
    assert remote(opened.requests) == []
    assert opened.requests == [path.resolve().as_uri(), (path.parent / "plotly.min.js").resolve().as_uri()]
    assert driver.execute_script("return typeof Plotly") == "object"
    assert driver.execute_script("return document.querySelectorAll('.plotly-graph-div .main-svg').length") >= 2


def test_one_marker_per_entry_and_per_exit(run_page, seed):
    _, _, driver = run_page
    tr = seed.trades
    closed = tr[~tr["open"]]
    got = {t["name"]: t for t in figure(driver, "run-chart")["traces"]}
    markers = [t["name"] for t in got.values() if t["mode"] == "markers"]
    assert markers == ["entry fills", "exit fills", "signals"]
    assert len(got["entry fills"]["x"]) == len(tr) == 19 and len(got["exit fills"]["x"]) == len(closed) == 18
    assert got["entry fills"]["x"] == ms(tr["entry_time"]) and got["entry fills"]["y"] == list(tr["entry_price"])
    assert got["exit fills"]["x"] == ms(closed["exit_time"]) and got["exit fills"]["y"] == list(closed["exit_price"])


def test_zoom_on_one_panel_moves_every_panel(run_page, seed):
    _, _, driver = run_page
    before = figure(driver, "run-chart")["ranges"]
    assert [k for k, _ in before] == ["xaxis", "xaxis2", "xaxis3", "xaxis4"]
    driver.execute_async_script(RELAYOUT, "run-chart", "xaxis2", "2020-11-01", "2021-02-15")
    after = figure(driver, "run-chart")["ranges"]
    assert [r for _, r in after] == [["2020-11-01", "2021-02-15"]] * 4
    # a trade's zoom button: every panel shows that trade, five bars either side
    button = driver.find_elements("css selector", "button[data-x0]")[12]
    button.click()
    leg = seed.trades.iloc[12]
    want = [f"{leg.entry_time - pd.Timedelta(days=5):%Y-%m-%d}", f"{leg.exit_time + pd.Timedelta(days=5):%Y-%m-%d}"]
    assert want == ["2020-11-13", "2021-02-02"]
    assert [r for _, r in figure(driver, "run-chart")["ranges"]] == [want] * 4


def test_compare_chart_is_linked_and_marks_each_runs_fills(seed, tmp_path, browser):
    from riskon.analysis.comparison import build
    from riskon.pages.comparison_page import write_comparison

    cfg = dataclasses.replace(seed.config, name="seed-trail15", exits={**seed.config.exits, "trailing_stop": 0.15})
    other = run(cfg, engine="fast")
    comp = build([seed, other], null_n=0)
    path = write_comparison(comp, tmp_path / "cmp" / "compare.html")
    opened = browser.open_page(path)
    assert remote(opened.requests) == []
    assert (path.parent / "plotly.min.js").resolve().as_uri() in opened.requests
    got = figure(browser.driver, "compare-chart")
    markers = {t["name"]: t for t in got["traces"] if t["mode"] == "markers"}
    for res, label in ((seed, "seed"), (other, "seed-trail15")):
        tr = res.trades
        day = [pd.Timestamp(t).tz_convert("UTC").tz_localize(None) for t in tr["entry_time"]]
        assert markers[f"{label} entries"]["x"] == ms(day)
        assert len(markers[f"{label} exits"]["x"]) == int((~tr["open"]).sum())
    assert len(other.trades) != len(seed.trades)  # two different runs, each with its own fills
    browser.driver.execute_async_script(RELAYOUT, "compare-chart", "xaxis", "2018-01-01", "2018-12-31")
    assert [r for _, r in figure(browser.driver, "compare-chart")["ranges"]] == [["2018-01-01", "2018-12-31"]] * 2
