"""Every page states the cash and risk-free rates; comparing runs with different rates is flagged (page and
terminal); a sweep's stored Sharpe is the one its run computes with the risk-free rate."""

from __future__ import annotations

import tomllib

import pytest

from riskon.analysis.comparison import build, sweep_rates_text
from riskon.config import parse
from riskon.pages.comparison_page import comparison_html
from riskon.pages.run_page import result_html
from riskon.runner import run
from riskon.sweeps.store import Store
from support.sweep_store import call

SEED = {"strategy": {"params": {"confirm_days": 3}}, "exits": {"trailing_stop": 0.25, "index_drawdown": 0.10}}
WINDOW = {"start": "2020-01-01", "end": "2021-06-30"}


def seed(name: str, risk_free: float) -> object:
    return run(parse({"name": name, "data": WINDOW, **SEED, "portfolio": {"risk_free": risk_free}}), engine="fast")


@pytest.fixture(scope="module")
def runs(data_dir):
    return seed("zero", 0.0), seed("four", 0.04), seed("four_again", 0.04)


def test_run_page_states_the_rates(runs):
    html = result_html(runs[1])
    assert '<p class="rates">rates: cash rate 0%, risk-free 4.00% a year</p>' in html
    assert '<p class="rates">rates: cash rate 0%, risk-free 0%</p>' in result_html(runs[0])


def test_comparison_of_runs_with_different_rates_is_flagged(runs):
    comp = build([runs[0], runs[1]], null_n=0)
    assert comp.rates_warning == (
        "the runs use different rates (zero: cash rate 0%, risk-free 0%; four: cash rate 0%, risk-free 4.00% a year): "
        "returns include different interest on cash and Sharpe, Sortino are in excess of different risk-free rates, "
        "so compare them with care"
    )
    html = comparison_html(comp)
    assert html.count('id="rates-differ"') == 1
    assert "rates: each run&#x27;s own (see the runs table)" in html
    # each buy-and-hold column is in excess of its first run's risk-free rate, as that run's own column
    assert comp.metrics.at["sharpe", "four"] == runs[1].metrics.at["sharpe", "strategy"]


def test_comparison_of_runs_with_the_same_rates_states_them_once(runs):
    comp = build([runs[1], runs[2]], null_n=0)
    assert comp.rates_warning is None
    html = comparison_html(comp)
    assert 'id="rates-differ"' not in html
    assert "rates: cash rate 0%, risk-free 4.00% a year (Sharpe and Sortino are in excess of" in html
    bench = [c for c in comp.metrics.columns if c.startswith("buy & hold")][0]
    assert comp.metrics.at["sharpe", bench] == pytest.approx(runs[1].metrics.at["sharpe", "buy_and_hold"], rel=1e-12)


def test_compare_prints_one_warning_line_for_different_rates(data_dir, tmp_path, capsys):
    paths = []
    for name, rf in (("a", 0.0), ("b", 0.02)):
        p = tmp_path / f"{name}.toml"
        p.write_text(
            f'name = "{name}"\n[data]\nstart = "2020-01-01"\nend = "2020-12-31"\n[portfolio]\nrisk_free = {rf}\n',
            encoding="utf-8",
        )
        paths.append(str(p))
    code, out, err = call(capsys, "compare", *paths, "--null", "0", "--out", str(tmp_path / "cmp.html"))
    assert code == 0, err
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: the runs use different rates (a: cash rate 0%, risk-free 0%; b: cash rate 0%, risk-free 2.00% a "
        "year): returns include different interest on cash and Sharpe, Sortino are in excess of different risk-free "
        "rates, so compare them with care"
    ]
    same, out, err = call(capsys, "compare", paths[0], paths[0], "--null", "0", "--out", str(tmp_path / "c2.html"))
    assert same == 0 and not [line for line in out.splitlines() if line.startswith("warning:")]


SWEEP = """\
name = "rfsweep"
[data]
start = "2020-01-01"
end = "2021-06-30"
[strategy.params]
confirm_days = 3
[exits]
trailing_stop = 0.25
[portfolio]
risk_free = 0.03
[sweep.params]
"strategy.params.confirm_days" = [2, 3]
"""


def test_a_sweeps_stored_sharpe_is_its_runs_sharpe_with_the_risk_free_rate(data_dir, tmp_path):
    from riskon.sweeps.driver import run_sweep
    from riskon.sweeps.spec import apply

    cfg_path = tmp_path / "rfsweep.toml"
    cfg_path.write_text(SWEEP, encoding="utf-8")
    res = run_sweep(cfg_path, db=tmp_path / "s.duckdb", workers=1, engine="fast")
    store = Store(tmp_path / "s.duckdb")
    assert sweep_rates_text(store, res.sweep_id) == "cash rate 0%, risk-free 3.00% a year"
    stored = store.runs(res.sweep_id)
    assert len(stored) == 2
    base = {k: v for k, v in tomllib.loads(SWEEP).items() if k != "sweep"}
    for row in stored.itertuples():
        again = run(parse(apply(base, {"strategy.params.confirm_days": int(row.confirm_days)})), engine="fast")
        assert row.sharpe == again.metrics.at["sharpe", "strategy"]  # the objective and the stored statistic agree
        assert row.sortino == again.metrics.at["sortino", "strategy"]


def test_riskon_run_prints_the_rates_under_its_metrics(data_dir, tmp_path, capsys):
    cfg = tmp_path / "rates.toml"
    cfg.write_text(
        'name = "rates"\n[data]\nstart = "2020-01-01"\nend = "2020-06-30"\n[portfolio]\ncash_rate = 0.04\n'
        "risk_free = 0.015\n",
        encoding="utf-8",
    )
    code, out, err = call(capsys, "run", str(cfg), "--no-report")
    assert code == 0, err
    lines = out.splitlines()
    at = lines.index("rates: cash rate 4.00% a year, risk-free 1.50% a year")
    assert "metrics" in "\n".join(lines[:at]) and lines[at + 1].startswith("benchmark: ")
