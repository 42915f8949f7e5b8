"""``riskon run runs/seed.toml`` in an 80-column terminal: a whole trade table, and the trade analytics it writes.

One subprocess run (a terminal of 80 columns: ``TTY_COMPATIBLE=1``, ``COLUMNS=80``) on the real seed
data writes ``trades.csv`` and ``metrics.csv``; the tests read the table off its output and check the
files against second, simple implementations written here (loops over rows and bars).
"""

from __future__ import annotations

import math
import os
import re
import statistics
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from riskon.analysis.trade_stats import TRADE_ANALYTICS, TRADE_STATS
from riskon.cli.tables import trades_table
from riskon.metrics import price_text
from strategies.backtest import TRADE_COLUMNS
from support.clitools import riskon_cmd

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\+0000$")
MOMENTS = ("decision_time", "entry_time", "exit_decision_time", "exit_time")


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory, data_dir) -> tuple[str, Path]:
    """The seed run in an 80-column terminal: (its output without styles, the folder it wrote)."""
    tmp = tmp_path_factory.mktemp("seed80")
    env = {**os.environ, "TTY_COMPATIBLE": "1", "COLUMNS": "80", "NO_COLOR": "1"}
    proc = subprocess.run(
        [*riskon_cmd(), "run", str(ROOT / "runs" / "seed.toml"), "--no-report", "--out", "out"],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return ANSI.sub("", proc.stdout), tmp / "out"


def trade_block(out: str) -> list[str]:
    """The trade table's lines: from its title to the end of its caption (before the file list)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "trades")
    end = next(i for i, line in enumerate(lines) if re.match(r"^\s*trades: ", line))
    return lines[start:end]


def cells(lines: list[str]) -> set[str]:
    return {c.strip() for line in lines for c in line.split("│")}


def read_trades(folder: Path) -> pd.DataFrame:
    trades = pd.read_csv(folder / "trades.csv")
    for col in MOMENTS:
        trades[col] = pd.to_datetime(trades[col])
    trades["signal_session"] = pd.to_datetime(trades["signal_session"])
    return trades


def test_the_trade_table_fits_80_columns_with_every_value_whole(seed_run):
    out, folder = seed_run
    block = trade_block(out)
    assert max(len(line) for line in block) <= 80, max(block, key=len)
    assert "…" not in out
    shown = cells(block)
    trades = pd.read_csv(folder / "trades.csv")
    assert len(trades) == 19
    for t in trades.itertuples():
        ret = t.pnl / (t.size * t.entry_price + t.entry_fee)
        want = [str(t.position + 1), t.signal_session, t.entry_time[:10], t.exit_time[:10], price_text(t.entry_price),
                price_text(t.exit_price), t.exit_reason, f"{t.days} d", f"{t.pnl:,.2f}", f"{ret:+.2%}"]  # fmt: skip
        missing = [w for w in want if w not in shown]
        assert not missing, (t.position, missing)
    caption = " ".join(line.strip() for line in block if not line.lstrip().startswith(("│", "┃", "┏", "┡", "├", "└")))
    metrics = pd.read_csv(folder / "metrics.csv", index_col="metric")["strategy"]
    assert f"expectancy {metrics['expectancy']:,.2f} ({metrics['expectancy_return']:+.2%})" in caption
    assert f"SQN {metrics['sqn']:.2f} (N capped at 100)" in caption
    assert f"longest losing streak {metrics['max_losing_streak']:.0f}" in caption


def test_trades_csv_has_the_analytics_and_every_moment_carries_its_zone(seed_run):
    _, folder = seed_run
    raw = pd.read_csv(folder / "trades.csv", dtype=str, keep_default_na=False)
    assert list(raw.columns) == [*TRADE_COLUMNS, *TRADE_ANALYTICS]
    for col in MOMENTS:
        for value, is_open in zip(raw[col], raw["open"] == "True", strict=True):
            if col == "exit_decision_time" and is_open:
                assert value == ""  # an open trade has no exit decision
            else:
                assert MOMENT.match(value), (col, value)
    assert raw["signal_session"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()  # a trading day, not a moment
    trades = read_trades(folder)
    for col in MOMENTS:
        assert str(trades[col].dt.tz) == "UTC", col
    for t in trades.itertuples():
        assert t.days == (t.exit_time - t.entry_time).days
        assert t.days == round((t.exit_time - t.entry_time) / pd.Timedelta(days=1))  # daily bars at 00:00 UTC
        assert t.bars_held == t.days + (1 if t.open else 0)
        ret = trades.at[t.Index, "return"]  # `return` is a keyword: not an attribute of the row
        assert math.isclose(ret, t.pnl / (t.size * t.entry_price + t.entry_fee), rel_tol=1e-12)


def test_mae_mfe_of_the_seed_trades_against_a_loop_over_the_bars(seed_run):
    """Every price the leg saw, collected bar by bar from the cached BTC-USD series (not through riskon)."""
    import riskon

    _, folder = seed_run
    trades = read_trades(folder)
    bars = riskon.load("BTC-USD")
    assert trades["open"].iloc[-1] and not trades["open"].iloc[:-1].any()
    for t in trades.itertuples():
        seen = [t.entry_price, t.exit_price]
        for when, bar in bars.iterrows():
            if t.entry_time <= when < t.exit_time or (t.open and when == t.exit_time):
                seen += [bar["close"], bar["high"], bar["low"]]
        assert t.mae_price == min(seen) and t.mfe_price == max(seen), t.Index
        assert math.isclose(t.mae, min(seen) / t.entry_price - 1.0, rel_tol=1e-12, abs_tol=1e-15)
        assert math.isclose(t.mfe, max(seen) / t.entry_price - 1.0, rel_tol=1e-12, abs_tol=1e-15)
        assert t.mae <= 0.0 <= t.mfe


def independent_stats(trades: pd.DataFrame) -> dict[str, float]:
    """Expectancy, SQN, streak and holding days per position, with plain loops and ``statistics``."""
    pos: dict[int, dict] = {}
    for t in trades.itertuples():
        p = pos.setdefault(t.position, {"pnl": 0.0, "cost": 0.0, "in": t.entry_time, "out": t.exit_time})
        p["pnl"] += t.pnl
        p["cost"] += t.size * t.entry_price + t.entry_fee
        p["in"], p["out"] = min(p["in"], t.entry_time), max(p["out"], t.exit_time)
    ordered = [pos[k] for k in sorted(pos)]
    pnl = [p["pnl"] for p in ordered]
    ret = [p["pnl"] / p["cost"] for p in ordered]
    hold = [(p["out"] - p["in"]).total_seconds() / 86400 for p in ordered]
    streak = run = 0
    for x in pnl:
        run = run + 1 if x < 0 else 0
        streak = max(streak, run)
    q1, q2, q3 = statistics.quantiles(hold, n=4, method="inclusive")
    return {
        "expectancy": statistics.fmean(pnl),
        "expectancy_return": statistics.fmean(ret),
        "sqn": math.sqrt(min(len(ret), 100)) * statistics.fmean(ret) / statistics.stdev(ret),
        "max_losing_streak": streak,
        "hold_days_min": min(hold),
        "hold_days_p25": q1,
        "hold_days_median": q2,
        "hold_days_p75": q3,
        "hold_days_max": max(hold),
    }


def test_metrics_csv_trade_statistics_against_a_second_implementation(seed_run):
    _, folder = seed_run
    metrics = pd.read_csv(folder / "metrics.csv", index_col="metric")
    assert list(metrics.index[-len(TRADE_STATS) :]) == list(TRADE_STATS)
    assert metrics.loc[list(TRADE_STATS), "buy_and_hold"].isna().all()
    want = independent_stats(read_trades(folder))
    for name, value in want.items():
        assert math.isclose(metrics.at[name, "strategy"], value, rel_tol=1e-9, abs_tol=1e-12), name
    # the seed's own numbers (19 trades, 6 winners): a losing run of 5 in 2017-18 .. 2021, median 55 days
    assert want["max_losing_streak"] == 5 and want["hold_days_median"] == 55.0
    assert metrics.at["hold_days_median", "strategy"] == 55.0


def test_a_basket_table_fits_80_columns_and_a_wide_terminal_keeps_one_line_per_leg(seed_run):
    """The seed's legs doubled into a two-coin basket with long names: whole at 80, one line per leg at 160."""
    _, folder = seed_run
    trades = read_trades(folder)[TRADE_COLUMNS]
    legs = [trades.assign(asset=name) for name in ("binance:MATIC/USDT", "binance:DOGE/USDT")]
    basket = pd.concat(legs).sort_values(["position", "asset"]).reset_index(drop=True)
    narrow = Console(width=80, record=True, color_system=None)
    narrow.print(trades_table(basket))
    text = narrow.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    shown = cells(text.splitlines())
    assert {"binance:MATIC/USDT", "binance:DOGE/USDT"} <= shown or {"MATIC/USDT", "DOGE/USDT"} <= shown
    wide = Console(width=160, record=True, color_system=None)
    wide.print(trades_table(basket))
    rows = [line for line in wide.export_text().splitlines() if "binance:MATIC/USDT" in line]
    assert len(rows) == len(trades)  # one line per leg, every column side by side
    first = trades.iloc[0]
    assert f"│ {first.entry_time:%Y-%m-%d} │" in rows[0] and f" {price_text(first.entry_price)} │" in rows[0]
