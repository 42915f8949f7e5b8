"""``[portfolio] risk_free``: Sharpe, Sortino, PSR and DSR in excess of it, checked against a second implementation
and against quantstats (the tear sheet's own call), for a constant rate and for a yield series."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from feeds.yields import import_yield
from riskon.analysis.robustness import excess_returns, moments, psr_from_moments
from riskon.config import ConfigError, parse
from riskon.metrics import rates_text, returns_metrics
from riskon.runner import run
from riskon.sweeps.chunks import returns_metrics_block

WINDOW = {"start": "2020-01-01", "end": "2021-06-30"}


def hand_ratios(returns: list[float], rf_day: list[float]) -> tuple[float, float]:
    """Sharpe and Sortino (365 a year) by plain loops: excess_i = r_i - rf_i."""
    ex = [r - f for r, f in zip(returns, rf_day, strict=True)]
    n = len(ex)
    mean = sum(ex) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in ex) / (n - 1))
    down = math.sqrt(sum(min(x, 0.0) ** 2 for x in ex) / n)
    return mean / sd * math.sqrt(365), mean / down * math.sqrt(365)


def hand_psr(returns: list[float], rf_day: list[float], sr_star: float = 0.0) -> float:
    """PSR by the paper's formula on excess returns, population skew and kurtosis, by loops."""
    ex = [r - f for r, f in zip(returns, rf_day, strict=True)]
    n = len(ex)
    mean = sum(ex) / n
    m2 = sum((x - mean) ** 2 for x in ex) / n
    m3 = sum((x - mean) ** 3 for x in ex) / n
    m4 = sum((x - mean) ** 4 for x in ex) / n
    sr = mean / math.sqrt(m2 * n / (n - 1))
    g3, g4 = m3 / m2**1.5, m4 / m2**2
    return NormalDist().cdf((sr - sr_star) * math.sqrt(n - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr * sr))


@pytest.fixture(scope="module")
def returns() -> pd.Series:
    rng = np.random.default_rng(7)
    return pd.Series(rng.normal(0.0008, 0.02, 400), index=pd.date_range("2021-01-01", periods=400, freq="D", tz="UTC"))


@pytest.fixture(scope="module")
def yield_series(tmp_path_factory) -> str:
    """A made-up 3-month yield, positive then negative, imported into the session's cache as ``TESTYLD``."""
    folder = tmp_path_factory.mktemp("yield")
    days = pd.bdate_range("2019-06-03", "2022-12-30")
    values = np.round(2.0 * np.cos(np.arange(len(days)) / 90.0) + 0.5, 3)  # percent, between -1.5 and 2.5
    path = folder / "TESTYLD.csv"
    pd.DataFrame({"DATE": days.strftime("%Y-%m-%d"), "TESTYLD": values}).to_csv(path, index=False)
    import_yield(path, unit="percent")
    return "TESTYLD"


# ------------------------------------------------------------------------------------------ the metrics
def test_constant_rate_sharpe_and_sortino_equal_a_loop_implementation(returns):
    r = returns.tolist()
    rf_day = [(1.04) ** (1 / 365) - 1] * len(r)
    got = returns_metrics(returns, 0.04)
    sharpe, sortino = hand_ratios(r, rf_day)
    assert got["sharpe"] == pytest.approx(sharpe, rel=1e-12) and got["sortino"] == pytest.approx(sortino, rel=1e-12)
    plain = returns_metrics(returns)
    assert got["cagr"] == plain["cagr"] and got["max_drawdown"] == plain["max_drawdown"]  # not excess
    assert got["sharpe"] < plain["sharpe"]


def test_per_bar_rf_sharpe_and_sortino_equal_a_loop_implementation(returns):
    rf_day = [((1 + 0.01 * math.sin(i / 30.0)) ** (1 / 365) - 1) for i in range(len(returns))]
    got = returns_metrics(returns, np.array(rf_day))
    sharpe, sortino = hand_ratios(returns.tolist(), rf_day)
    assert got["sharpe"] == pytest.approx(sharpe, rel=1e-12) and got["sortino"] == pytest.approx(sortino, rel=1e-12)


def test_the_fast_sweep_block_gives_the_same_doubles_as_riskon_metrics(returns):
    rng = np.random.default_rng(3)
    block = np.ascontiguousarray(rng.normal(0.0005, 0.03, (5, 300)))
    rf = (1.0 + np.linspace(-0.01, 0.05, 300)) ** (1 / 365) - 1.0
    for row, stats in zip(block, returns_metrics_block(block, rf), strict=True):
        assert stats == returns_metrics(pd.Series(row), rf)  # bit for bit, as stored sweeps and `riskon run` agree
    assert returns_metrics_block(block, None)[0] == returns_metrics(pd.Series(block[0]))


def test_psr_on_stored_runs_is_in_excess_of_each_runs_risk_free_rate(returns):
    config_text = '[portfolio]\nrisk_free = 0.03\n[sweep]\nobjective = "sharpe"\n'
    runs = pd.DataFrame(
        {
            "params": [json.dumps({}), json.dumps({"portfolio.risk_free": 0.0})],
            "returns_start": [pd.Timestamp("2021-01-01")] * 2,
            "returns": [returns.to_numpy(), returns.to_numpy()],
        }
    )
    excess = excess_returns(runs, config_text)
    rf3 = [1.03 ** (1 / 365) - 1] * len(returns)
    assert excess[0] == pytest.approx(returns.to_numpy() - rf3, abs=1e-18)
    assert (excess[1] == returns.to_numpy()).all()  # a rate of 0: the returns exactly as stored
    sr, skew, kurt, n = moments(excess[0])
    assert psr_from_moments(sr, n, skew, kurt) == pytest.approx(hand_psr(returns.tolist(), rf3), rel=1e-9)
    star = 0.02  # a DSR is a PSR against the expected best of the trials
    assert psr_from_moments(sr, n, skew, kurt, star) == pytest.approx(hand_psr(returns.tolist(), rf3, star), rel=1e-9)


# ------------------------------------------------------------------------------------------ the config
def test_risk_free_is_a_rate_or_a_symbol():
    assert parse({}).portfolio["risk_free"] == 0.0
    assert parse({"portfolio": {"risk_free": 0.04}}).portfolio["risk_free"] == 0.04
    assert parse({"portfolio": {"risk_free": -0.005}}).portfolio["risk_free"] == -0.005
    assert parse({"portfolio": {"risk_free": "^irx"}}).portfolio["risk_free"] == "^IRX"
    with pytest.raises(ConfigError, match=r"\[portfolio\] risk_free = 'a b' is neither a rate nor a symbol"):
        parse({"portfolio": {"risk_free": "a b"}})
    with pytest.raises(ConfigError, match=r"risk_free must be >= -0.99"):
        parse({"portfolio": {"risk_free": -2.0}})
    assert rates_text({"cash_rate": 0.04, "risk_free": 0.0}) == "cash rate 4.00% a year, risk-free 0%"
    assert (
        rates_text({"cash_rate": "US3M", "risk_free": "US3M"}) == "cash rate the US3M yield, risk-free the US3M yield"
    )


# ------------------------------------------------------------------------------------------ a run and quantstats
def seed_run(data_dir, risk_free):
    cfg = parse(
        {"name": "rf", "data": WINDOW, "strategy": {"params": {"confirm_days": 3}},
         "exits": {"trailing_stop": 0.25, "index_drawdown": 0.10}, "portfolio": {"risk_free": risk_free}}
    )  # fmt: skip
    return run(cfg, engine="fast")


@pytest.mark.parametrize("rate", [0.04, "yield"])
def test_tear_sheet_sharpe_equals_riskons_own(data_dir, yield_series, monkeypatch, tmp_path, rate):
    import quantstats as qs

    from riskon.pages import tearsheet

    res = seed_run(data_dir, yield_series if rate == "yield" else rate)
    r = res.returns.to_numpy()
    seen = {}

    def capture(returns, benchmark=None, rf=0.0, periods_per_year=252, **kw):  # what the tear sheet hands quantstats
        seen.update(returns=returns, benchmark=benchmark, rf=rf, periods=periods_per_year, params=kw["parameters"])
        with open(kw["output"], "w", encoding="utf-8") as f:
            f.write("<html><title>x</title></html>")

    monkeypatch.setattr(qs.reports, "html", capture)
    monkeypatch.setattr(tearsheet, "_fix_drawdowns", lambda html, returns: html)
    tearsheet.write_tearsheet(res, tmp_path / "tearsheet.html")
    assert seen["periods"] == 365
    assert seen["params"]["Rates"] == res.rates_text
    want = res.metrics.at["sharpe", "strategy"]
    assert qs.stats.sharpe(seen["returns"], rf=seen["rf"], periods=365) == pytest.approx(want, abs=1e-9)
    assert qs.stats.sortino(seen["returns"], rf=seen["rf"], periods=365) == pytest.approx(
        res.metrics.at["sortino", "strategy"], abs=1e-9
    )
    bh = res.metrics.at["sharpe", "buy_and_hold"]
    assert qs.stats.sharpe(seen["benchmark"], rf=seen["rf"], periods=365) == pytest.approx(bh, abs=1e-9)
    # quantstats_rf, for returns outside a Result, hands quantstats a rate that gives the same Sharpe
    from feeds.yields import load_yield

    given = load_yield(yield_series) if rate == "yield" else rate
    qs_rf = tearsheet.quantstats_rf(res.returns, given)
    assert qs.stats.sharpe(seen["returns"], rf=qs_rf, periods=365) == pytest.approx(want, abs=1e-9)
    # and both equal a second implementation on the run's own returns
    rf_day = res.rf.tolist()
    assert want == pytest.approx(hand_ratios(r.tolist(), rf_day)[0], rel=1e-10)
    if rate == 0.04:
        assert rf_day == [1.04 ** (1 / 365) - 1] * len(r)
    else:
        assert min(rf_day) < 0 < max(rf_day)  # the made-up yield goes negative inside the window
        assert res.fingerprints["yield:TESTYLD"]  # the yield's data is part of the run's identity


def test_risk_free_leaves_returns_alone_and_lowers_sharpe(data_dir):
    zero, four = seed_run(data_dir, 0.0), seed_run(data_dir, 0.04)
    assert (zero.returns.to_numpy() == four.returns.to_numpy()).all()
    assert four.metrics.at["sharpe", "strategy"] < zero.metrics.at["sharpe", "strategy"]
    assert four.metrics.at["cagr", "strategy"] == zero.metrics.at["cagr", "strategy"]
