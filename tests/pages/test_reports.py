"""Reports end to end: compare, the sweep report, tear sheets and the index, opened in headless Chromium.

One module fixture builds every page from a small real sweep on the snapshot (the seed strategy cut to
2019-2021, a 3 x 3 grid of confirmation length and trailing stop, fast engine, a temporary DuckDB and a
temporary RISKON_REPORTS): ``riskon compare`` and ``riskon report --sweep`` run as subprocesses (side by
side) while this process writes a run's outputs and tear sheet and a Python ``compare`` page for a run
named ``<script>alert(1)</script>``. The sweep also sweeps ``description`` over that string, so the stored
parameters of every run carry it into the CLI pages. Numbers on the pages are checked against the store
(SQL) and hand computations; each page is then opened in one headless Chromium (tests/browser.py):
screenshot not blank, key elements present, no alert, the name shown as text, and no request leaving
the machine.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from pathlib import Path

import duckdb
import numpy as np
import pytest

from riskon.config import ConfigError, RunConfig
from riskon.metrics import format_metric
from support.browser import INSTALL, colours, remote
from support.browser import chromium as _chromium  # noqa: F401  (the session's headless Chromium: fixture ``browser``)
from support.clitools import riskon_cmd

ROOT = Path(__file__).resolve().parents[2]
XSS = "<script>alert(1)</script>"
CONFIRM = [1, 2, 3]
TRAIL = [0.1, 0.2, 0.3]
NULL_N = 60

CONFIG = """\
name = "{name}"
description = "report tests"

[data]
index = "^RUT"
asset = "BTC-USD"
start = "2019-01-01"
end = "2021-12-31"

[strategy]
rule = "ath_confirmed"

[strategy.params]
confirm_days = 3

[exits]
trailing_stop = 0.2
index_drawdown = 0.10

[costs]
fee_bps = 10
slippage_bps = 5
"""
SWEEP = """
[sweep]
method = "grid"
objective = "sharpe"
batch_size = 4

[sweep.params]
"strategy.params.confirm_days" = [1, 2, 3]
"exits.trailing_stop" = [0.1, 0.2, 0.3]
description = ["<script>alert(1)</script>"]
"""
WALKFORWARD = """
[sweep]
method = "grid"
objective = "sharpe"

[sweep.params]
"strategy.params.confirm_days" = [1, 3]
"exits.trailing_stop" = [0.1, 0.3]

[walkforward]
mode = "anchored"
train_days = 730
test_days = 365
"""


def cli_env() -> dict[str, str]:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def sql(db: Path, query: str, args: list | None = None) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(query, args or []).fetchall()


class Site:
    """Every generated page and the store behind them."""

    def __init__(self, root: Path) -> None:
        from riskon import config as config_mod
        from riskon.analysis.comparison import build
        from riskon.analysis.episodes import event_study, settings_from
        from riskon.analysis.walk_forward import walk_forward
        from riskon.pages.comparison_page import write_comparison
        from riskon.pages.events_page import write_events_page
        from riskon.pages.run_page import write_outputs
        from riskon.pages.walkforward_page import write_report as write_walkforward
        from riskon.runner import run
        from riskon.sweeps.driver import run_sweep

        self.root = root
        self.reports = root / "reports"
        self.db = root / "t.duckdb"
        self.sweep_cfg = root / "tsweep.toml"
        self.sweep_cfg.write_text(CONFIG.format(name="tsweep") + SWEEP)
        self.run_cfg = root / "trun.toml"
        self.run_cfg.write_text(CONFIG.format(name="trun"))
        self.sweep = run_sweep(self.sweep_cfg, db=self.db, workers=1, engine="fast")
        self.best = sql(self.db, "SELECT run_id FROM runs ORDER BY sharpe DESC, run_id LIMIT 2")
        self.best_ids = [r[0] for r in self.best]
        self.compare_page = self.reports / "cmp" / "compare.html"
        cli = {
            "compare": [
                "compare", "--sweep", "tsweep", "--top", "2", str(self.run_cfg), "--db", str(self.db),
                "--null", str(NULL_N), "--out", str(self.compare_page),
            ],
            "report": ["report", "--sweep", "tsweep", "--db", str(self.db), "--null", str(NULL_N)],
        }  # fmt: skip
        procs = {
            k: subprocess.Popen([*riskon_cmd(), *a], cwd=root, env=cli_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
            for k, a in cli.items()
        }  # fmt: skip
        # meanwhile, in this process: one run under a hostile name, its outputs, a Python comparison
        cfg = config_mod.load(self.run_cfg)
        self.result = run(RunConfig(**{**cfg.__dict__, "name": XSS}), engine="fast")
        self.run_dir = self.reports / "xss-run"
        self.outputs = write_outputs(self.result, self.run_dir)
        self.comp = build([self.result, self.best_ids[0]], db=self.db, null_n=NULL_N, seed=0)
        self.py_page = write_comparison(self.comp, self.reports / "compare" / "python.html")
        self.events_page = write_events_page(
            event_study(self.result.config, settings_from(self.result.config, bootstrap=200)),
            self.reports / "xss-run" / "events.html",
            XSS,
        )
        self.wf_cfg = root / "twf.toml"
        self.wf_cfg.write_text(CONFIG.format(name="twf").replace("2019-01-01", "2018-01-01") + WALKFORWARD)
        wf = walk_forward(self.wf_cfg, db=root / "wf.duckdb", engine="fast")
        self.wf_page = write_walkforward(wf, self.reports / "twf")["page"]
        self.cli = {}
        for k, p in procs.items():
            out, err = p.communicate(timeout=300)
            self.cli[k] = (p.returncode, out, err)
        self.sweep_page = self.reports / "tsweep" / "sweep.html"


@pytest.fixture(scope="module")
def site(tmp_path_factory, data_dir) -> Site:
    """Every page, written under a temporary RISKON_REPORTS."""
    root = tmp_path_factory.mktemp("reports")
    old = os.environ.get("RISKON_REPORTS")
    os.environ["RISKON_REPORTS"] = str(root / "reports")
    try:
        yield Site(root)
    finally:
        if old is None:
            os.environ.pop("RISKON_REPORTS", None)
        else:
            os.environ["RISKON_REPORTS"] = old


# ===================================================================================================
# the CLI and the numbers on the pages
# ===================================================================================================
def test_cli_pages_written(site):
    for name, (code, out, err) in site.cli.items():
        assert code == 0, (name, out, err)
    assert f"compare: {site.compare_page}" in site.cli["compare"][1]
    assert f"sweep report: {site.sweep_page}" in site.cli["report"][1]
    assert site.compare_page.exists() and site.sweep_page.exists()


def test_compare_metrics_match_the_store_and_hand_computations(site):
    frame = site.comp.metrics
    rid = site.best_ids[0]
    label = f"tsweep {rid[:8]}"
    assert list(frame.columns) == [XSS, label, "buy & hold"]
    names = ["cagr", "sharpe", "max_drawdown", "trades"]
    row = sql(site.db, f"SELECT {', '.join(names)} FROM runs WHERE run_id = ?", [rid])[0]
    stored = dict(zip(names, row, strict=True))
    for m, v in stored.items():
        assert frame.at[m, label] == v
    # the config run: the metrics of the Result itself
    for m in ("total_return", "sharpe", "trades", "fees"):
        assert frame.at[m, XSS] == site.result.metrics.at[m, "strategy"]
    # buy-and-hold, by hand from the stored benchmark returns
    bench = np.array(sql(site.db, "SELECT b.returns FROM runs r JOIN benchmarks b USING (bench_id) WHERE run_id = ?",
                         [rid])[0][0])  # fmt: skip
    wealth, peak, worst = 1.0, 1.0, 0.0
    for r in bench:
        wealth *= 1.0 + r
        peak = max(peak, wealth)
        worst = min(worst, wealth / peak - 1.0)
    assert math.isclose(frame.at["total_return", "buy & hold"], wealth - 1.0, rel_tol=1e-12)
    assert math.isclose(frame.at["max_drawdown", "buy & hold"], worst, rel_tol=1e-12)
    sd = np.std(bench, ddof=1)
    assert math.isclose(frame.at["sharpe", "buy & hold"], bench.mean() / sd * math.sqrt(365), rel_tol=1e-9)
    # the null rows: median and share of draws below the run, from the draws themselves
    entry = site.comp.entries[1]
    draws = entry.null["sharpe"].to_numpy()
    assert len(draws) == NULL_N
    assert math.isclose(frame.at["null_median_sharpe", label], float(np.median(draws)), rel_tol=1e-12)
    below = sum(1 for d in draws if d < stored["sharpe"]) / NULL_N
    assert frame.at["null_percentile_sharpe", label] == below
    # the stored run was re-run for its trades: same total return as stored, so no note
    assert entry.notes == []
    assert np.isnan(frame.at["null_median_sharpe", "buy & hold"])


def test_monthly_returns_and_drawdown_by_hand(site):
    from riskon.analysis.comparison import drawdown, monthly_returns

    entry = site.comp.entries[1]
    rets = entry.returns
    grid = monthly_returns(rets)
    for year, month in ((2020, 11), (2021, 1), (2019, 6)):
        days = [r for t, r in rets.items() if t.year == year and t.month == month]
        want = math.prod(1.0 + r for r in days) - 1.0
        assert math.isclose(grid.loc[year].iloc[month - 1], want, rel_tol=1e-12, abs_tol=1e-15)
    want_2020 = math.prod(1.0 + r for t, r in rets.items() if t.year == 2020) - 1.0
    assert math.isclose(grid.at[2020, "Year"], want_2020, rel_tol=1e-12)
    assert list(grid.index) == [2019, 2020, 2021]
    assert math.isclose(drawdown(rets).min(), entry.metrics["max_drawdown"], rel_tol=1e-12)


def test_compare_page_shows_each_number(site):
    page = site.compare_page.read_text(encoding="utf-8")
    for rid in site.best_ids:
        sharpe, cagr = sql(site.db, "SELECT sharpe, cagr FROM runs WHERE run_id = ?", [rid])[0]
        assert f"tsweep {rid[:8]}" in page
        assert format_metric("sharpe", sharpe) in page and format_metric("cagr", cagr) in page
    assert "trun" in page and "percentile in null" in page and "buy &amp; hold" in page
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the swept description, escaped
    assert len(re.findall(r'<img alt="[^"]*" src="data:image/png;base64,', page)) == 2 + 3  # equity, null, 3 months


def test_sweep_report_numbers_match_the_store(site):
    from riskon.pages.sweep_page import heat_grids, load_sweep, stability_table
    from riskon.sweeps.store import Store

    rows = sql(site.db, "SELECT params, sharpe FROM runs")
    sharpe = {}
    for params, s in rows:
        p = json.loads(params)
        sharpe[(p["strategy.params.confirm_days"], p["exits.trailing_stop"])] = s
    assert len(sharpe) == len(CONFIRM) * len(TRAIL)
    data = load_sweep(Store(site.db), "tsweep")
    best = max(sharpe, key=sharpe.get)
    assert (data.best["confirm_days"], data.best["trailing_stop"]) == best
    fixed, median = heat_grids(data, "confirm_days", "trailing_stop")
    for (c, t), s in sharpe.items():
        assert fixed.at[t, c] == s and median.at[t, c] == s  # two parameters: nothing else to fix or aggregate
    stab = stability_table(data).set_index(["parameter", "value"])
    i = CONFIRM.index(best[0])
    for j in (i - 1, i + 1):
        if 0 <= j < len(CONFIRM):
            assert stab.at[("confirm_days", str(CONFIRM[j])), "sharpe"] == sharpe[(CONFIRM[j], best[1])]
    k = TRAIL.index(best[1])
    for j in (k - 1, k + 1):
        if 0 <= j < len(TRAIL):
            assert stab.at[("trailing_stop", f"{TRAIL[j]:g}"), "sharpe"] == sharpe[(best[0], TRAIL[j])]
    page = site.sweep_page.read_text(encoding="utf-8")
    top = sql(site.db, "SELECT run_id, sharpe FROM runs ORDER BY sharpe DESC, run_id LIMIT 3")
    at = [page.index(r[0][:12]) for r in top]
    assert at == sorted(at)  # best first
    assert format_metric("sharpe", top[0][1]) in page
    for heading in ("Best", "Distribution of each metric", "The objective over two parameters",
                    "Parameter stability", "random entry", "PSR, DSR, PBO"):  # fmt: skip
        assert heading in page
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_sweep_report_refuses_unknown_axes(site):
    from riskon.pages.sweep_page import sweep_report

    with pytest.raises(ConfigError, match=r"--x 'nosuch' is not a swept parameter of tsweep; valid: .*confirm_days"):
        sweep_report("tsweep", db=site.db, x="nosuch", y="confirm_days", null_n=0)
    with pytest.raises(ConfigError, match="give both --x and --y"):
        sweep_report("tsweep", db=site.db, x="confirm_days", null_n=0)


def test_tearsheet_is_offline_titled_and_escaped(site):
    page = (site.run_dir / "tearsheet.html").read_text(encoding="utf-8")
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", page, re.I)
    assert refs and not [r for r in refs if re.match(r"(?:https?:)?//", r)]
    assert "favicon" not in page and "onload=" not in page
    assert "<title>riskon: &lt;script&gt;alert(1)&lt;/script&gt;</title>" in page
    assert XSS not in page


def test_strip_remote_links_drops_every_remote_reference():
    from riskon.pages.tearsheet import strip_remote_links

    html = (
        '<head><link rel="shortcut icon" href="https://qtpylib.io/favicon.ico" type="image/x-icon">'
        '<link rel="stylesheet" href="//fonts.example.com/a.css"><script src="https://cdn.example.com/x.js"></script>'
        "<style>@import url('https://fonts.example.com/f.css'); b{background:url(http://x.example.com/i.png)}</style>"
        '</head><body onload="save()"><a href="http://quantstats.io" target="q">QuantStats</a>'
        '<img src="https://x.example.com/p.png"><svg xmlns="http://www.w3.org/2000/svg"><use xlink:href="#g1"/>'
        '</svg><img src="data:image/png;base64,AAAA"></body>'
    )
    out = strip_remote_links(html)
    assert "example.com" not in out and "qtpylib" not in out and "quantstats.io" not in out
    assert "onload" not in out and ">QuantStats<" in out
    assert 'xmlns="http://www.w3.org/2000/svg"' in out and 'xlink:href="#g1"' in out and "data:image/png" in out


def test_index_links_every_report_newest_first(site):
    from riskon.pages.html import write_index

    index = site.reports / "index.html"
    page = index.read_text(encoding="utf-8")
    links = re.findall(r'<a href="([^"]+)">', page)
    from urllib.parse import unquote

    files = [site.reports / unquote(h) for h in links]
    assert all(f.exists() for f in files), [f for f in files if not f.exists()]
    want = {site.compare_page, site.sweep_page, site.run_dir / "tearsheet.html", site.run_dir / "signals.png",
            site.py_page, site.events_page, site.wf_page}  # fmt: skip
    assert want <= set(files)
    mtimes = [f.stat().st_mtime for f in files]
    assert mtimes == sorted(mtimes, reverse=True)
    assert "riskon: &lt;script&gt;alert(1)&lt;/script&gt;" in page  # the tear sheet's title, escaped
    assert write_index(site.reports) == index


def test_missing_chromium_fails_with_the_install_command(monkeypatch):
    from support import browser as b

    monkeypatch.setattr(b, "CHROMIUM", Path("/nonexistent/chromium"))
    with pytest.raises(pytest.fail.Exception, match=re.escape(INSTALL)):
        b.require_chromium()


# ===================================================================================================
# every page in headless Chromium
# ===================================================================================================
def pages(site) -> dict[str, tuple[Path, list[str]]]:
    """Page -> (file, CSS selectors that must be present)."""
    return {
        "compare (CLI)": (site.compare_page, ["h1", "#metrics table", "img", "h2"]),
        "compare (Python, hostile name)": (site.py_page, ["h1", "#metrics table", "img"]),
        "sweep report": (site.sweep_page, ["h1", "#best table", "#stability table", "#robustness table", "img"]),
        "tear sheet": (site.run_dir / "tearsheet.html", ["h1", "table", "svg"]),
        "signal chart": (site.run_dir / "signals.png", ["img"]),
        "events": (site.events_page, ["h1", "table", "img"]),
        "walk-forward": (site.wf_page, ["h1", "table", "img"]),
        "index": (site.reports / "index.html", ["h1", "#reports a"]),
    }


PAGES = ["compare (CLI)", "compare (Python, hostile name)", "sweep report", "tear sheet", "signal chart", "events",
         "walk-forward", "index"]  # fmt: skip
HOSTILE = {"compare (CLI)", "compare (Python, hostile name)", "sweep report", "tear sheet", "events", "index"}


@pytest.mark.parametrize("name", PAGES)
def test_page_in_chromium(name, site, browser):
    from selenium.webdriver.common.by import By

    path, selectors = pages(site)[name]
    png, dom, requests = browser.open_page(path)
    assert requests and requests[0] == path.resolve().as_uri()
    assert remote(requests) == [], f"{name} asked the network for {remote(requests)}"
    distinct, ink = colours(png)
    assert distinct > 200 and ink > 0.01, f"{name} looks blank: {distinct} colours, {ink:.1%} non-white"
    for sel in selectors:
        assert browser.driver.find_elements(By.CSS_SELECTOR, sel), f"{name}: no {sel}"
    assert browser.alert_text() is None
    if path.suffix == ".html":
        srcs = [s.get_attribute("src") for s in browser.driver.find_elements(By.TAG_NAME, "script")]
        plotly = [(path.parent / "plotly.min.js").resolve().as_uri()] if name.startswith("compare") else []
        assert [s for s in srcs if s] == plotly  # the compare page's interactive chart: Plotly from beside it
        images = browser.driver.find_elements(By.TAG_NAME, "img")
        broken = [i.get_attribute("alt") for i in images if not browser.driver.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0", i)]  # fmt: skip
        assert broken == []
    body = browser.driver.find_element(By.TAG_NAME, "body").text
    if name in HOSTILE:
        assert XSS in body, f"{name} does not show the hostile name as text"


def test_chart_pages_show_pictures(site):
    """The pictures themselves are drawn (not empty canvases): every inline PNG has many colours."""
    import base64
    import io

    from PIL import Image

    for path in (site.compare_page, site.sweep_page):
        for data in re.findall(r'src="data:image/png;base64,([^"]+)"', path.read_text(encoding="utf-8")):
            img = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
            assert img.getcolors(100) is None  # more than 100 colours


def test_config_args_are_files_ending_in_toml():
    from riskon.analysis.comparison import build, is_config_arg

    assert is_config_arg("runs/seed.toml") and is_config_arg(Path("x.TOML"))
    assert not is_config_arg("0a1b2c3d")
    with pytest.raises(ConfigError, match="nosuch.toml: no such config file"):
        build(["nosuch.toml"], null_n=0)


def test_cli_refusals_are_one_clear_error(site, tmp_path):
    from typer.testing import CliRunner

    from riskon.cli import app

    runner = CliRunner()
    got = runner.invoke(app, ["report", "--db", str(site.db)], standalone_mode=False)
    assert "give a RUN_ID (tear sheet) or --sweep NAME (sweep report)" in got.exception.format_message()
    got = runner.invoke(app, ["report", "abc", "--sweep", "tsweep", "--db", str(site.db)], standalone_mode=False)
    assert got.exception.format_message().endswith("(sweep report), not both")
    got = runner.invoke(app, ["compare", "--db", str(site.db)])
    assert isinstance(got.exception, ConfigError) and "give run ids" in str(got.exception)
    got = runner.invoke(app, ["compare", "abc", "--db", str(tmp_path / "none.duckdb")])
    assert isinstance(got.exception, ConfigError) and "no results database" in str(got.exception)
    got = runner.invoke(app, ["compare", "zzzz", "--db", str(site.db), "--null", "0"])
    assert isinstance(got.exception, ConfigError) and "no run id 'zzzz'" in str(got.exception)
