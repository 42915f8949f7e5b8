"""What a run is compared with: the basket's buy-and-hold, a chosen ``[report] benchmark``, named everywhere.

Every expected benchmark equity is computed here from the raw CSV files of the snapshot with the csv
module and plain Python (never through ``feeds``): equal cash into each coin at its own first bar's
open (slipped, fee paid), held; a coin whose data ends is sold at its last close (fee paid) and the
cash stays cash. Also the count of entries that met an exit condition on their fill bar.
"""

from __future__ import annotations

import csv
import math
import re
import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import riskon
from feeds.errors import DataError
from riskon.cli import app
from riskon.config import ConfigError, benchmark_text, parse
from riskon.runner import run

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "runs" / "seed.toml"
CASH, FEE, SLIP = 100_000.0, 10 / 1e4, 5 / 1e4
HAIRCUT = 1e-9
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
#: BNB trades from before the window, SOL lists inside it (2020-08-11), MATIC's data ends inside it (2024-09-10).
COINS = {"binance:BNB/USDT": "binance_BNB-USDT_1d.csv", "binance:SOL/USDT": "binance_SOL-USDT_1d.csv",
         "binance:MATIC/USDT": "binance_MATIC-USDT_1d.csv"}  # fmt: skip
START, END = "2020-01-01", "2025-06-30"


def read_bars(path: Path) -> dict[date, tuple[float, float]]:
    """UTC day -> (open, close) from a snapshot CSV (exchange files: ms timestamps; Yahoo files: dates)."""
    out = {}
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    o, c = head.index("open" if "open" in head else "Open"), head.index("close" if "close" in head else "Close")
    for r in rows[1:]:
        if not r:
            continue
        day = datetime.fromtimestamp(int(r[0]) / 1000, UTC).date() if r[0].isdigit() else date.fromisoformat(r[0])
        out[day] = (float(r[o]), float(r[c]))
    return out


def days(first: str, last: str) -> list[date]:
    a, b = date.fromisoformat(first), date.fromisoformat(last)
    return [a + timedelta(days=i) for i in range((b - a).days + 1)]


def hand_buy_and_hold(series: list[dict[date, tuple[float, float]]], calendar: list[date]) -> list[float]:
    """Equity per day: cash split equally up front; each series bought at its first open on the calendar and
    valued at its close (the last close carried over days without a bar); sold at its last close when its data
    ends before the calendar does."""
    budget = CASH / len(series)
    equity = [CASH] * len(calendar)
    for bars in series:
        inside = sorted(d for d in bars if calendar[0] <= d <= calendar[-1])
        first, last = inside[0], inside[-1]
        price = bars[first][0] * (1 + SLIP)
        units = budget / (price * (1 + FEE)) * (1 - HAIRCUT)
        cost = units * price * (1 + FEE)
        close = None
        for i, d in enumerate(calendar):
            if d < first:
                continue
            close = bars[d][1] if d in bars and d <= last else close
            if d < last or last == calendar[-1]:
                equity[i] += units * close - cost
            else:  # sold at the last close with the fee; the cash stays cash
                equity[i] += units * bars[last][1] * (1 - FEE) - cost
    return equity


def config(**sections) -> dict:
    raw = tomllib.loads(SEED.read_text(encoding="utf-8"))
    raw["data"]["start"], raw["data"]["end"] = START, END
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return raw


@pytest.fixture(scope="module")
def basket(data_dir):
    raw = config(target={"mode": "basket", "assets": list(COINS)})
    raw["data"].pop("asset")
    return parse(raw, "basket")


def test_basket_buy_and_hold_buys_each_coin_at_its_own_first_bar(basket, data_dir):
    res = run(basket, engine="fast")
    calendar = days(START, END)
    want = hand_buy_and_hold([read_bars(data_dir / f) for f in COINS.values()], calendar)
    assert [d.date() for d in res.benchmark.index] == calendar
    np.testing.assert_allclose(res.benchmark.to_numpy(), want, rtol=1e-12)
    # before SOL lists, its third of the cash waits as cash; MATIC's third is cash again after its last day
    sol_day = calendar.index(date(2020, 8, 11))
    assert res.benchmark.iloc[sol_day - 1] == pytest.approx(want[sol_day - 1], rel=1e-12)
    matic = read_bars(data_dir / COINS["binance:MATIC/USDT"])
    flat = np.diff(res.benchmark.to_numpy()[calendar.index(max(matic)) :])
    bnb_sol = [read_bars(data_dir / COINS[c]) for c in ("binance:BNB/USDT", "binance:SOL/USDT")]
    bnb_sol_moves = np.diff(hand_buy_and_hold(bnb_sol, calendar)[calendar.index(max(matic)) :]) * (2 / 3)
    np.testing.assert_allclose(flat, bnb_sol_moves, rtol=1e-9, atol=1e-6)  # MATIC adds nothing after its end
    # not a daily mean of the coins' returns (a daily-rebalanced portfolio)
    rets = pd.DataFrame({s: f["close"].pct_change() for s, f in res.assets.items()}).mean(axis=1).fillna(0.0)
    assert not math.isclose(float((1 + rets).prod()), res.benchmark.iloc[-1] / CASH, rel_tol=1e-3)
    assert res.benchmark_symbol is None and res.benchmark_label == "buy & hold 3 coins"
    assert res.benchmark_text == benchmark_text(basket, None)
    assert "equal cash into each at its own first bar" in res.benchmark_text


def test_basket_benchmark_is_the_same_on_both_engines(basket):
    fast, bt = run(basket, engine="fast"), run(basket, engine="backtrader")
    assert np.array_equal(fast.benchmark.to_numpy(), bt.benchmark.to_numpy())


def test_report_benchmark_is_any_cached_series(data_dir):
    """^RUT as the benchmark of a BTC run: bought at its first session's open in the window, its close carried
    over weekends and holidays; the run's own numbers do not change."""
    plain = run(parse(config(), "plain"), engine="fast")
    res = run(parse(config(report={"benchmark": "^rut"}), "rut"), engine="fast")
    calendar = days(START, END)
    want = hand_buy_and_hold([read_bars(data_dir / "RUT.csv")], calendar)
    assert want[0] == CASH  # 2020-01-01 is a holiday: nothing bought yet
    np.testing.assert_allclose(res.benchmark.to_numpy(), want, rtol=1e-12)
    assert np.array_equal(res.equity.to_numpy(), plain.equity.to_numpy())
    assert res.metrics.at["total_return", "buy_and_hold"] == pytest.approx(want[-1] / CASH - 1, rel=1e-12)
    assert res.benchmark_symbol == "^RUT" and res.benchmark_label == "buy & hold ^RUT"
    assert res.benchmark_text == "^RUT bought at its first open in the run's window and held ([report] benchmark)"


def test_run_summary_names_the_benchmark(tmp_path, data_dir):
    path = tmp_path / "eth.toml"
    text = SEED.read_text(encoding="utf-8").replace("[data]\n", f'[data]\nstart = "{START}"\nend = "{END}"\n')
    path.write_text(text + '\n[report]\nbenchmark = "ETH-USD"\n')
    got = CliRunner().invoke(app, ["run", str(path), "--no-report", "--engine", "fast"], env=ENV)
    assert got.exit_code == 0, got.output
    out = got.stdout.splitlines()
    assert "benchmark: ETH-USD bought at its first open in the run's window and held ([report] benchmark)" in out
    assert any("buy & hold ETH-USD" in line for line in out)  # the metrics table's column
    eth = read_bars(data_dir / "ETH-USD.csv")
    want = hand_buy_and_hold([eth], days(START, END))[-1] / CASH - 1
    assert any(f"{want:.2%}" in line for line in out if "Total return" in line)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("../../etc/passwd", "x.toml: [report] benchmark = '../../etc/passwd' is not a symbol; give a cached series "
         "such as 'BTC-USD', '^RUT' or 'binance:ETH/USDT', or drop the key to compare with buy-and-hold of the "
         "targets"),
        (3, "x.toml: [report].benchmark must be str, got int 3"),
    ],
)  # fmt: skip
def test_report_benchmark_is_validated(value, message):
    with pytest.raises(ConfigError) as e:
        parse(config(report={"benchmark": value}), "x.toml")
    assert str(e.value).startswith(message)


def test_a_benchmark_without_data_is_one_data_error(data_dir):
    with pytest.raises(DataError, match=r"^NOPE-USD \(1d\) is not cached and RISKON_DATA="):
        run(parse(config(report={"benchmark": "nope-usd"}), "x"), engine="fast")


# ------------------------------------------------------------------------- entries that exit on their fill bar
def test_entries_that_meet_an_exit_on_their_fill_bar_are_counted_and_warned(tmp_path):
    """A 20-session high fires while ^RUT is far below its all-time high, so the 10 % index-drawdown exit
    is already true when the entry fills: those entries are sold at the next open."""
    text = SEED.read_text(encoding="utf-8").replace('rule = "ath_confirmed"', 'rule = "n_day_high"')
    text = re.sub(r"threshold = .*\nconfirm_days = .*\nconfirm = .*\n", "window = 20\n", text)
    text = text.replace("[data]\n", '[data]\nstart = "2022-01-01"\nend = "2023-12-31"\n')
    path = tmp_path / "nday.toml"
    path.write_text(text)
    res = riskon.run(path, engine="fast")
    bars, trades = res.bars, res.trades
    hand = 0
    for t in trades.itertuples():  # the exit condition read off the fill bar's index columns
        fill = bars.loc[t.entry_time]
        already = fill["idx_close"] < fill["idx_ath"] * (1 - 0.10)
        if already:
            assert t.exit_reason == "index_dd" and t.exit_decision_time == t.entry_time
            assert t.exit_time == t.entry_time + pd.Timedelta(days=1)
        hand += bool(already)
    assert 0 < hand < len(trades)
    assert res.fill_bar_exits == hand
    got = CliRunner().invoke(app, ["run", str(path), "--no-report", "--engine", "fast"], env=ENV)
    assert got.exit_code == 0, got.output
    warning = (
        f"warning: {hand} of {len(trades)} entries already met an exit condition (index drawdown, index below break "
        "or exit rule) at the close of their fill bar and were sold at the next open: one-day round trips that pay "
        "fees and slippage twice; make the entry require what the exit checks, or loosen that exit"
    )
    assert warning in got.stdout.splitlines()
    seed = riskon.run(SEED, engine="fast")
    assert seed.fill_bar_exits == 0 and seed.fill_bar_warning is None
