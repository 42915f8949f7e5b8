"""The run page's trade-statistics block and the files of a run that ends with an open trade.

The seed config cut to 2020-01-01 .. 2021-11-20: three entries, the last still open on the last bar.
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path

import pandas as pd
import pytest

import riskon
from riskon.analysis.trade_stats import TRADE_ANALYTICS, TRADE_STATS
from riskon.metrics import LABELS
from riskon.pages.run_page import result_html

ROOT = Path(__file__).resolve().parents[2]


def shown(html: str, key: str) -> str:
    """The value the page's trade-statistics table shows for ``key``."""
    return re.search(rf"<th>{re.escape(LABELS[key])}</th>\s*<td>([^<]*)</td>", html)[1]


@pytest.fixture(scope="module")
def result(data_dir):
    raw = tomllib.loads((ROOT / "runs" / "seed.toml").read_text(encoding="utf-8"))
    raw["data"].update(start="2020-01-01", end="2021-11-20")
    raw["report"] = {"tearsheet": False, "chart": False}
    return riskon.run(raw)


def test_the_page_shows_the_trade_statistics_and_each_trades_excursions(result):
    trades = result.trades
    assert len(trades) == 3 and trades["open"].tolist() == [False, False, True]
    html = result_html(result)
    assert "trade statistics (net of fees)" in html
    for key in TRADE_STATS:
        assert f"<th>{LABELS[key]}</th>" in html, key
    pnl = trades["pnl"].tolist()  # one leg per position here
    streak = run = 0
    for p in pnl:
        run = run + 1 if p < 0 else 0
        streak = max(streak, run)
    assert shown(html, "expectancy") == f"{sum(pnl) / 3:,.2f}"
    assert shown(html, "max_losing_streak") == str(streak)
    assert shown(html, "hold_days_max") == f"{max((trades['exit_time'] - trades['entry_time']).dt.days):.1f}"
    for col in ("<th>return</th>", "<th>days</th>", "<th>mae</th>", "<th>mfe</th>"):
        assert col in html


def test_an_open_trades_excursions_include_its_last_bar(result, tmp_path):
    paths = result.write(tmp_path / "out")
    got = pd.read_csv(paths["trades"], keep_default_na=False, dtype={"exit_decision_time": str})
    assert list(got.columns[-len(TRADE_ANALYTICS) :]) == TRADE_ANALYTICS
    last = got.iloc[-1]
    assert bool(last["open"]) and last["exit_decision_time"] == "" and last["exit_reason"] == "open"
    btc = result.assets["BTC-USD"]
    entry, end = pd.Timestamp(last["entry_time"]), pd.Timestamp(last["exit_time"])
    held = btc[(btc.index >= entry) & (btc.index <= end)]  # through the marking bar, whole
    assert end == btc.index[-1] and len(held) == int(last["bars_held"])
    seen = [float(last["entry_price"]), float(last["exit_price"]), *held["close"], *held["high"], *held["low"]]
    assert float(last["mae_price"]) == min(seen) and float(last["mfe_price"]) == max(seen)
    assert math.isclose(float(last["mae"]), min(seen) / float(last["entry_price"]) - 1.0, rel_tol=1e-12)
    metrics = pd.read_csv(paths["metrics"], index_col="metric")
    assert metrics.at["expectancy", "strategy"] == pytest.approx(result.trades["pnl"].mean(), rel=1e-12)
