"""``RiskOn`` as an ordinary backtrader strategy in a plain ``bt.Cerebro()`` (issue 17).

The parity test builds the Cerebro exactly as docs/guides/backtrader.md tells users, never through a
riskon-made Cerebro, and holds its fills and equity to ``riskon run runs/seed.toml`` (to 1e-9; in fact
bit for bit). The first trade is also computed by hand from the raw BTC bar. ``optstrategy`` works on this
Python (3.11+) in one and two processes, and every setting of the user's that would change a fill is
refused with one exact line.
"""

from __future__ import annotations

import math
from pathlib import Path

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

import riskon
import riskon.bt as rbt
from strategies.btsetup import SetupError

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "runs" / "seed.toml"
SEED_KW = {"rule": "ath_confirmed", "confirm_days": 3, "trailing_stop": 0.25, "index_drawdown": 0.10,
           "fee_bps": 10, "slippage_bps": 5}  # fmt: skip


@pytest.fixture(scope="module")
def seed_run(data_dir):
    return riskon.run(SEED)


@pytest.fixture(scope="module")
def feed(data_dir):
    return rbt.IndexCryptoFeed(index="^RUT", asset="BTC-USD")


def guide_cerebro(feed, **kwargs) -> bt.Cerebro:
    """The guide's script: a plain Cerebro, riskon's feed and strategy, 100,000 cash."""
    cerebro = bt.Cerebro(**kwargs)
    cerebro.adddata(feed)
    cerebro.addstrategy(rbt.RiskOn, **SEED_KW)
    cerebro.broker.setcash(100_000)
    return cerebro


def assert_same_as_run(strategy, result) -> None:
    fills = pd.DataFrame(strategy.fills)
    ref = result.backtest.fills
    assert len(fills) == len(ref) == 37  # 19 entries, 18 exits (the last position is still open)
    for col in ("bar", "side", "position", "reason", "decision_bar"):
        assert fills[col].astype(object).fillna("-").tolist() == ref[col].astype(object).fillna("-").tolist(), col
    for col in ("price", "size", "fee"):
        np.testing.assert_allclose(fills[col].to_numpy(), ref[col].to_numpy(), rtol=1e-9, atol=0)
    equity = strategy.equity_curve()
    assert equity.index.equals(result.equity.index)
    np.testing.assert_allclose(equity.to_numpy(), result.equity.to_numpy(), rtol=1e-9, atol=0)
    turnover = float((fills["price"] * fills["size"]).sum())
    assert math.isclose(float(fills["fee"].sum()), 0.001 * turnover, rel_tol=1e-12)


@pytest.mark.parametrize("runonce", [True, False])
def test_plain_cerebro_gives_the_seed_runs_trades_and_equity(feed, seed_run, runonce):
    strategy = guide_cerebro(feed, runonce=runonce).run()[0]
    assert_same_as_run(strategy, seed_run)
    assert strategy.equity == seed_run.equity.tolist()  # not only to 1e-9: the same doubles


def test_first_trade_by_hand(feed, data_dir):
    strategy = guide_cerebro(feed).run()[0]
    raw = pd.read_csv(data_dir / "BTC-USD.csv", index_col="Date")
    open_ = float(raw.loc["2014-12-31", "Open"])  # the ^RUT record of 2014-12-26 confirmed on 12-30; fill 12-31
    price = open_ * 1.0005
    size = 100_000 / (price * 1.001) * (1 - 1e-9)
    buy = strategy.fills[0]
    assert buy["side"] == "buy" and feed.aligned.index[buy["bar"]] == pd.Timestamp("2014-12-31", tz="UTC")
    assert math.isclose(buy["price"], price, rel_tol=1e-12)
    assert math.isclose(buy["size"], size, rel_tol=1e-12)
    assert math.isclose(buy["fee"], size * price * 0.001, rel_tol=1e-12)


@pytest.mark.parametrize("maxcpus", [1, 2])
def test_optstrategy_sweeps_the_trailing_stop(feed, seed_run, maxcpus):
    cerebro = bt.Cerebro(maxcpus=maxcpus)
    cerebro.adddata(feed)
    cerebro.optstrategy(rbt.RiskOn, **{**SEED_KW, "trailing_stop": [0.2, 0.25]})
    cerebro.addanalyzer(rbt.QuantStatsAnalyzer)
    cerebro.broker.setcash(100_000)
    runs = {r[0].params.trailing_stop: r[0].analyzers[0].get_analysis() for r in cerebro.run()}
    assert sorted(runs) == [0.2, 0.25]
    np.testing.assert_allclose(runs[0.25]["returns"].to_numpy(), seed_run.returns.to_numpy(), rtol=0, atol=1e-12)
    other = riskon.run({**_seed_dict(), "exits": {"trailing_stop": 0.2, "index_drawdown": 0.10}})
    np.testing.assert_allclose(runs[0.2]["returns"].to_numpy(), other.returns.to_numpy(), rtol=0, atol=1e-12)


def _seed_dict() -> dict:
    import tomllib

    return tomllib.loads(SEED.read_text(encoding="utf-8"))


def test_optstrategy_runs_in_a_fresh_python_that_imported_backtrader_first(data_dir, tmp_path):
    """The shim is active as soon as the plugin is imported, whatever was imported before it."""
    import subprocess
    import sys

    script = (
        "import backtrader as bt\n"
        "import riskon.bt as rbt\n"
        "c = bt.Cerebro(maxcpus=1)\n"
        "c.adddata(rbt.IndexCryptoFeed(index='^RUT', asset='BTC-USD', start='2020-01-01', end='2021-12-31'))\n"
        "c.optstrategy(rbt.RiskOn, confirm_days=3, trailing_stop=[0.2, 0.3])\n"
        "print(len(c.run()))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"


# -- refusals: one line each -------------------------------------------------------------------
def _run_with(feed, setup=None, cerebro_kwargs=None, **strategy_kwargs):
    cerebro = bt.Cerebro(**(cerebro_kwargs or {}))
    cerebro.adddata(feed)
    cerebro.addstrategy(rbt.RiskOn, **strategy_kwargs)
    if setup:
        setup(cerebro)
    return cerebro.run()


REFUSALS = {
    "cheat on close": (
        lambda c: c.broker.set_coc(True), {}, {},
        "cerebro.broker.set_coc(True) fills orders at the close; RiskOn fills at the next open: remove it",
    ),
    "own commission": (
        lambda c: c.broker.setcommission(commission=0.002), {}, {},
        "cerebro.broker already charges its own commission (CommInfoBase, commission=0.002); RiskOn charges "
        "fee_bps itself: remove setcommission/addcommissioninfo",
    ),
    "own slippage": (
        lambda c: c.broker.set_slippage_perc(0.01), {}, {},
        "cerebro.broker already slips fills (slip_perc=0.01, slip_fixed=0.0, slip_open=True); RiskOn slips the "
        "open by slippage_bps itself: remove set_slippage_perc/fixed",
    ),
    "volume filler": (
        lambda c: c.broker.set_filler(bt.broker.fillers.FixedSize(size=1)), {}, {},
        "cerebro.broker.set_filler caps fills by volume; use RiskOn's liquidity_cap instead",
    ),
    "no preload": (
        None, {"preload": False}, {},
        "RiskOn needs preloaded data (it must know the last bar): use Cerebro(preload=True, exactbars=0)",
    ),
    "second strategy": (
        lambda c: c.addstrategy(bt.Strategy), {}, {},
        "RiskOn would share cerebro.broker's cash with another strategy: give it a Cerebro of its own",
    ),
    "misspelt exit": (
        None, {}, {"trailing_stp": 0.2},
        "RiskOn has no parameter 'trailing_stp' (rule ath_confirmed takes threshold, confirm_days, confirm); "
        "did you mean 'trailing_stop'?",
    ),
    "fraction fee": (None, {}, {"fee": 0.001}, "RiskOn on an IndexCryptoFeed does not take fee: pass fee_bps instead"),
    "out of range": (None, {}, {"trailing_stop": 1.5}, "RiskOn.trailing_stop must be in (0, 1), got 1.5"),
    "filter as entry": (
        None, {}, {"rule": "index_above_ma"},
        "RiskOn.rule must be an event rule; index_above_ma is a filter (it gates entries, it opens none)",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSALS))
def test_settings_that_change_fills_are_refused_in_one_line(feed, case):
    setup, cerebro_kwargs, strategy_kwargs, message = REFUSALS[case]
    with pytest.raises(SetupError) as err:
        _run_with(feed, setup, cerebro_kwargs, **strategy_kwargs)
    assert str(err.value) == message
    assert "\n" not in str(err.value)


def test_the_same_costs_set_by_hand_are_accepted(feed, seed_run):
    """A user who sets exactly RiskOn's own costs changes no fill, so that is allowed."""

    def same(c):
        c.broker.addcommissioninfo(bt.CommissionInfo(commission=0.001, percabs=True))
        c.broker.set_slippage_perc(0.0005, slip_open=True, slip_match=True, slip_out=True)
        c.broker.setcash(100_000)

    strategy = _run_with(feed, same, **SEED_KW)[0]
    assert strategy.equity == seed_run.equity.tolist()
