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
    import time

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
    full = {k: r for k, _, r in browser.driver.execute_script(Y_RANGES, "compare-chart")}
    browser.driver.execute_async_script(RELAYOUT, "compare-chart", "xaxis", "2018-01-01", "2018-12-31")
    assert [r for _, r in figure(browser.driver, "compare-chart")["ranges"]] == [["2018-01-01", "2018-12-31"]] * 2
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the page fits both value axes to 2018 right after
        got = {k: r for k, _, r in browser.driver.execute_script(Y_RANGES, "compare-chart")}
        if all(got[k] != full[k] for k in full):
            break
        time.sleep(0.1)
    (lo, hi), (flo, fhi) = got["yaxis"], full["yaxis"]
    assert flo < lo < hi < fhi - 0.5  # growth of 1 (log): 2018's peak is far below the history's
    assert got["yaxis2"] != full["yaxis2"]


Y_RANGES = """
const gd = document.getElementById(arguments[0]);
return Object.keys(gd.layout).filter(k => /^yaxis\\d*$/.test(k)).sort()
  .map(k => [k, gd.layout[k].type, (gd.layout[k].range || []).slice()]);
"""


def test_zooming_fits_every_value_axis_to_the_visible_range(run_page, seed, browser):
    """After a zoom, each panel's value axis spans exactly the points in view plus 5 %, not the whole history."""
    import math
    import time

    from riskon.analysis.run_marks import position_levels

    path, _, driver = run_page
    browser.open_page(path)  # afresh: another test may have zoomed it or opened another page
    full = {k: r for k, _, r in driver.execute_script(Y_RANGES, "run-chart")}
    driver.execute_async_script(RELAYOUT, "run-chart", "xaxis", "2017-07-10", "2017-09-25")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the page's own relayout of the y axes follows the x relayout
        got = {k: (t, r) for k, t, r in driver.execute_script(Y_RANGES, "run-chart")}
        if all(got[k][1] != full[k] for k in full):
            break
        time.sleep(0.1)
    kind, (lo, hi) = got["yaxis"]
    assert kind == "log"
    # the asset panel's points in view: closes, the trailing-stop level and the fills of 2017-07-10 .. 09-25
    start, end = pd.Timestamp("2017-07-10", tz="UTC"), pd.Timestamp("2017-09-25", tz="UTC")
    closes = seed.assets["BTC-USD"]["close"]
    levels = position_levels(seed)["trail_price"]
    t = seed.trades
    fills = [*t.loc[t["entry_time"].between(start, end), "entry_price"],
             *t.loc[t["exit_time"].between(start, end) & ~t["open"], "exit_price"]]  # fmt: skip
    values = [*closes[start:end], *levels[start:end].dropna(), *fills]
    a, b = math.log10(min(values)), math.log10(max(values))
    pad = (b - a) * 0.05
    assert lo == pytest.approx(a - pad, abs=1e-9) and hi == pytest.approx(b + pad, abs=1e-9)
    assert (full["yaxis"][1] - full["yaxis"][0]) > 5 * (hi - lo)  # the whole history spanned far more
    for name in ("yaxis2", "yaxis3", "yaxis4"):
        assert got[name][1] != full[name], name  # every other panel was fitted too
