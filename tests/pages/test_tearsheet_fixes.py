"""The tear sheet is drawn right, read off the page in headless Chromium (quantstats 0.0.86, pandas 3).

The seed run's tear sheet is opened in the browser and its embedded SVG charts and tables are read
from the DOM: the EOY chart's year labels sit under distinct bars whose heights are each year's
return (computed here from the daily returns), the log chart has no tick below -100 %, the CAGR key
has no U+FE6A glyph, and the drawdown table marks the drawdown still open at 2026-08-21 as not
recovered, with every other recovery on the first day back at the peak (computed here by hand).
Figure-level tests draw the same quantstats figures inside ``drawing_fixes`` for a short history
(10 years or fewer, where pandas 3 shifted every label by one year without a visible sign).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskon.config import load
from riskon.runner import run
from support.browser import chromium as _chromium  # noqa: F401  (the session's headless Chromium: fixture ``browser``)

ROOT = Path(__file__).resolve().parents[2]

#: Reads the EOY and log-returns charts and the two tables out of the rendered page.
READ_PAGE = """
const comment = g => g ? [...g.childNodes].filter(n => n.nodeType === 8).map(n => n.textContent.trim())[0] : "";
const ticks = (chart, axis) => [...document.querySelectorAll(`#${chart} g[id^="${axis}tick_"]`)].map(t => ({
    label: comment(t.querySelector('g[id^="text_"]')),
    line: (t.querySelector('g[id^="line2d_"] path') || {getAttribute: () => null}).getAttribute('d'),
}));
const axes = document.querySelector('#eoy_returns g[id^="axes_"]');
const bars = [...axes.children].filter(g => g.id.startsWith('patch_')).slice(1)  // the first: the background
    .map(g => g.querySelector('path').getAttribute('d'));
const rows = sel => [...document.querySelectorAll(sel)].map(r => [...r.cells].map(c => c.innerText.trim()));
return {eoy: ticks('eoy_returns', 'x'), bars: bars, log: ticks('log_returns', 'y'),
        metrics: rows('#right > table tr'), drawdowns: rows('#ddinfo table tbody tr'),
        heading: document.querySelector('h1').innerText, sub: document.querySelector('h4').innerText,
        text: document.body.innerText};
"""


def points(d: str) -> list[tuple[float, float]]:
    """The (x, y) vertices of an SVG path as matplotlib writes it (``M x y L x y ... z``)."""
    nums = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", d)]
    return list(zip(nums[0::2], nums[1::2], strict=True))


def yearly(returns: pd.Series) -> pd.Series:
    """Each calendar year's compounded return, by hand."""
    return returns.groupby(returns.index.year).apply(lambda r: float(np.prod(1.0 + r.to_numpy()) - 1.0))


def hand_drawdowns(returns: pd.Series, n: int = 10) -> list[list[str]]:
    """The n deepest drawdowns: start (first day under the previous peak), first day back at the peak (or
    "not recovered"), depth in % to 2 decimals and days underwater; the peak starts at the initial capital."""
    r = returns.to_numpy()
    days = [f"{d:%Y-%m-%d}" for d in returns.index]
    wealth, peak, under, found = 1.0, 1.0, None, []
    for i, x in enumerate(r):
        wealth *= 1.0 + x
        peak = max(peak, wealth)
        dd = wealth / peak - 1.0
        if dd < 0 and under is None:
            under, depth = i, dd
        elif dd < 0:
            depth = min(depth, dd)
        elif under is not None:
            found.append((depth, days[under], days[i], i - under))
            under = None
    if under is not None:
        found.append((depth, days[under], "not recovered", len(r) - under))
    found.sort(key=lambda f: f[0])
    return [[start, back, f"{depth * 100:.2f}", str(n_days)] for depth, start, back, n_days in found[:n]]


@pytest.fixture(scope="module")
def seed(data_dir):
    return run(load(ROOT / "runs" / "seed.toml"), engine="fast")


@pytest.fixture(scope="module")
def page(seed, tmp_path_factory, browser):
    from riskon.pages.tearsheet import write_tearsheet

    path = write_tearsheet(seed, tmp_path_factory.mktemp("sheet") / "tearsheet.html")
    browser.open_page(path)
    return browser.driver.execute_script(READ_PAGE)


def test_eoy_year_labels_sit_under_their_own_bars(page, seed):
    strat, bench = yearly(seed.returns), yearly(seed.benchmark_returns)
    years = [str(y) for y in strat.index]
    assert [t["label"] for t in page["eoy"]] == years  # 2014 .. 2026: 13 years
    xs = [points(t["line"])[0][0] for t in page["eoy"]]
    assert all(b - a > 20 for a, b in zip(xs, xs[1:], strict=False)), xs  # spread out, not piled at the left
    bars = [points(d) for d in page["bars"]]
    assert len(bars) == 2 * len(years)  # the benchmark's bars, then the strategy's
    heights = {}
    for series, offset in (("bench", 0), ("strat", len(years))):
        for k, x in enumerate(xs):
            left, right = min(p[0] for p in bars[offset + k]), max(p[0] for p in bars[offset + k])
            assert left - 1e-6 <= x <= right + 1e-6, (series, k, left, x, right)
            base, top = bars[offset + k][0][1], bars[offset + k][2][1]
            heights[(series, k)] = base - top  # SVG y grows downwards
    # each bar's height is its own year's return (one scale for the whole chart): no label is a year off
    want = {("bench", k): v for k, v in enumerate(bench)} | {("strat", k): v for k, v in enumerate(strat)}
    key = max(want, key=lambda k: abs(want[k]))
    scale = heights[key] / want[key]
    for k, v in want.items():
        assert heights[k] == pytest.approx(v * scale, abs=0.02), k


def test_log_chart_has_no_tick_below_minus_100_percent(page, seed):
    labels = [t["label"] for t in page["log"]]
    assert labels and "-1000%" not in labels and "\u22121000%" not in labels
    lowest = min(((1 + seed.returns).cumprod() - 1).min(), ((1 + seed.benchmark_returns).cumprod() - 1).min())
    assert lowest > -1.0
    for text in labels:
        value = float(text.replace("\u2212", "-").replace("K%", "e3").replace("M%", "e6").rstrip("%"))
        assert value >= -100.0, labels


def test_cagr_key_is_plain_text(page, seed):
    assert "\ufe6a" not in page["text"]
    row = next(r for r in page["metrics"] if r and r[0].startswith("CAGR"))
    assert row[0] == "CAGR%"  # columns: benchmark, strategy
    assert float(row[1].rstrip("%")) == round(seed.metrics.at["cagr", "buy_and_hold"] * 100, 2)
    assert float(row[2].rstrip("%")) == round(seed.metrics.at["cagr", "strategy"] * 100, 2)


def test_drawdown_table_marks_the_open_drawdown_and_real_recoveries(page, seed):
    rows = page["drawdowns"]
    assert rows == hand_drawdowns(seed.returns)
    assert rows[0] == ["2017-12-17", "not recovered", "-81.18", "3170"]  # still open on 2026-08-21
    assert not any(r[1] == "2026-08-21" for r in rows)


def test_page_names_its_benchmark(page):
    assert page["heading"].startswith("riskon: seed vs buy & hold BTC-USD")
    assert "Benchmark is: BTC-USD bought at its first open and held" in page["sub"]
    header = next(r for r in page["metrics"] if r and r[0] == "Metric")
    assert header[1:] == ["buy & hold BTC-USD", "Strategy"]


# ------------------------------------------------------------------------------------------ figures
def five_years() -> tuple[pd.Series, pd.Series, pd.Series]:
    """Daily returns over 2019..2023 whose years end at known returns: +10 %, -20 %, +30 %, -5 %, +50 %."""
    idx = pd.date_range("2019-01-01", "2023-12-31", freq="D")
    targets = [0.10, -0.20, 0.30, -0.05, 0.50]
    r = pd.Series(0.0, index=idx, name="Strategy")
    for year, total in zip(range(2019, 2024), targets, strict=True):
        in_year = idx.year == year
        r[in_year] = (1 + total) ** (1 / in_year.sum()) - 1
    bench = (r * 0.5).rename("bench")
    return r, bench, pd.Series(targets, index=range(2019, 2024))


def test_short_history_eoy_bars_are_not_a_year_late():
    """With 10 years or fewer pandas 3 put every bar one year late, silently; inside ``drawing_fixes`` bar k
    is at position k with year k's return."""
    import quantstats as qs

    from riskon.pages.tearsheet import drawing_fixes

    r, bench, targets = five_years()
    with drawing_fixes():
        fig = qs.plots.yearly_returns(r, bench, show=False, subtitle=False, ylabel="")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [str(y) for y in targets.index]
    assert list(ax.get_xticks()) == list(range(5))
    bars = ax.patches
    assert len(bars) == 10
    for k, total in enumerate(targets):
        strat = bars[5 + k]
        assert strat.get_x() <= k <= strat.get_x() + strat.get_width() + 1e-9
        assert strat.get_height() == pytest.approx(total, rel=1e-9)
        assert bars[k].get_height() == pytest.approx(yearly(bench).iloc[k], rel=1e-9)


def test_log_returns_view_is_rescaled_after_the_symlog_switch():
    import quantstats as qs

    from riskon.pages.tearsheet import drawing_fixes

    r, bench, _ = five_years()
    r = r * 8  # a run to several hundred percent
    with drawing_fixes():
        fig = qs.plots.log_returns(r, bench, show=False, subtitle=False, ylabel="")
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    lowest = min(((1 + r).cumprod() - 1).min(), ((1 + bench).cumprod() - 1).min())
    assert -1.0 < low <= lowest and high >= ((1 + r).cumprod() - 1).max()
    assert ax.get_yscale() == "symlog"


def test_drawdown_table_by_hand_on_a_small_series():
    from riskon.pages.tearsheet import NOT_RECOVERED, drawdown_table

    idx = pd.date_range("2021-01-01", periods=8, freq="D")
    r = pd.Series([-0.1, 0.05, 0.2, 0.0, -0.2, 0.1, 0.0, -0.05], index=idx)
    got = drawdown_table(r)
    # 0.9, 0.945, 1.134 (back above 1 on 01-03), 1.134, 0.9072 (under from 01-05), ... never back
    assert got.values.tolist() == [
        ["2021-01-05", NOT_RECOVERED, pytest.approx(-20.0), 4],
        ["2021-01-01", "2021-01-03", pytest.approx(-10.0), 2],
    ]
    assert [r[:2] + [r[3]] for r in hand_drawdowns(r)] == [["2021-01-05", "not recovered", "4"],
                                                         ["2021-01-01", "2021-01-03", "2"]]  # fmt: skip
