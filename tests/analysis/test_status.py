"""``riskon status`` at dates chosen from the snapshot, checked against the raw CSV files read here.

Every expected value (closes, records, break levels, confirmation progress, session counts,
``idx_age``, the unrealised P&L) is computed in this file from ``RUT.csv`` and ``BTC-USD.csv``
with the csv module and plain Python, never through ``feeds``/``strategies``. The position is
checked against the trade list of a full backtrader run of the same config.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from typer.testing import CliRunner

import riskon
from riskon.cli import app

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "runs" / "seed.toml"  # ath_confirmed, threshold 0, confirm_days 3; 25 % trail, 10 % index drawdown
COMPOSED = ROOT / "runs" / "composed.toml"
K = 3
NY = ZoneInfo("America/New_York")


def _read(path: Path) -> list[tuple[str, float]]:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))[1:]
    return [(r[0], float(r[4])) for r in rows if r]


@pytest.fixture(scope="module")
def rut(data_dir) -> list[tuple[str, float]]:
    """(session date, close) from RUT.csv."""
    return _read(data_dir / "RUT.csv")


@pytest.fixture(scope="module")
def btc(data_dir) -> dict[str, float]:
    """BTC-USD close per UTC day."""
    return dict(_read(data_dir / "BTC-USD.csv"))


@pytest.fixture(scope="module")
def full_trades(data_dir) -> pd.DataFrame:
    """The seed config's trade list from a full backtrader run."""
    return riskon.run(SEED).trades


def last_session(rut, day: str) -> int:
    """Position of the last session on or before ``day`` (a BTC bar of day D sees the close of D)."""
    return max(i for i, (d, _) in enumerate(rut) if d <= day)


def is_record(rut, i: int) -> bool:
    return i > 0 and rut[i][1] > max(c for _, c in rut[:i])


def pending_break(rut, i: int, k: int = K) -> tuple[str, float, int] | None:
    """The oldest break whose k-session window is still open at session i and has held so far."""
    for j in range(k - 1, 0, -1):
        b = i - j + 1
        level = max(c for _, c in rut[:b])
        if rut[b][1] > level and all(c > level for _, c in rut[b : i + 1]):
            return rut[b][0], level, j
    return None


@pytest.mark.parametrize("day", ["2021-01-07", "2021-01-08"])
def test_inside_a_confirmation_k_of_n(day, rut):
    st = riskon.status(SEED, asof=day)
    i = last_session(rut, day)
    assert rut[i][0] == day
    exp = pending_break(rut, i)
    assert exp is not None
    leaf = st.leaves[0]
    assert leaf.pending is not None
    assert (f"{leaf.pending.break_session:%Y-%m-%d}", leaf.pending.done, leaf.pending.needed) == (exp[0], exp[2], K)
    assert leaf.pending.level == pytest.approx(exp[1], rel=1e-12)
    # 2021-01-07: the break of 01-06 (above 2007.10, the 2020-12-23 close) has held 2 of 3 sessions
    if day == "2021-01-07":
        assert exp == ("2021-01-06", 2007.0999755859373, 2)
    row = next(text for label, text in st.rows() if label == "event")
    assert row.startswith(leaf.rule) and f"{exp[2]} of {K} sessions confirmed" in row


def test_the_day_of_a_record_close(rut):
    day = "2021-01-07"
    st = riskon.status(SEED, asof=day)
    i = last_session(rut, day)
    assert is_record(rut, i)
    assert st.index_session == pd.Timestamp(day)
    assert st.index_close == rut[i][1] == st.ath
    assert st.ath_distance == 0.0
    assert st.sessions_since_record == 0
    assert st.last_record == pd.Timestamp(day)


def test_a_weekend_sees_fridays_session_and_idx_age_shows_it(rut):
    day = "2021-01-09"  # Saturday
    st = riskon.status(SEED, asof=day)
    friday = "2021-01-08"
    assert date.fromisoformat(day).weekday() == 5
    assert st.asof == pd.Timestamp(day, tz="UTC")
    assert st.index_session == pd.Timestamp(friday)
    assert st.index_close == rut[last_session(rut, friday)][1]
    # the Saturday bar closes Sunday 00:00 UTC; Friday's session closed 16:00 New York
    session_close = datetime.combine(date.fromisoformat(friday), datetime.min.time().replace(hour=16), NY)
    bar_close = datetime.combine(date.fromisoformat(day) + timedelta(days=1), datetime.min.time(), UTC)
    assert st.idx_age == pytest.approx((bar_close - session_close) / timedelta(days=1), abs=1e-12)
    assert st.idx_age == pytest.approx(1.125)
    # the break of 01-07 has not been confirmed nor voided: the weekend changes nothing
    assert st.leaves[0].pending.done == 2 and f"{st.leaves[0].pending.break_session:%Y-%m-%d}" == "2021-01-07"
    assert not st.signal_now  # Friday's confirmation was an event on Friday's bar, not on Saturday's
    assert st.last_signal_bar == pd.Timestamp(friday, tz="UTC")


@pytest.mark.parametrize("day", ["2021-03-15", "2019-06-15", "2021-11-20"])
def test_position_long_after_a_signal_matches_the_backtest(day, full_trades, btc):
    st = riskon.status(SEED, asof=day)
    t = pd.Timestamp(day, tz="UTC")
    holding = full_trades[(full_trades["entry_time"] <= t) & (full_trades["exit_time"] > t)]
    assert len(st.holdings) == len(holding)
    if day == "2019-06-15":  # the 2018-10-12 index-drawdown exit left the strategy flat through 2019
        assert holding.empty and st.next_open.startswith("nothing")
        return
    trade = holding.iloc[0]
    h = st.holdings[0]
    assert h.entry_time == trade["entry_time"]
    # status runs the fast engine, held to backtrader within 1e-9 by the parity contract
    assert h.entry_price == pytest.approx(trade["entry_price"], rel=1e-9)
    assert h.size == pytest.approx(trade["size"], rel=1e-9)
    assert h.last_close == btc[day]
    expected = trade["size"] * (btc[day] - trade["entry_price"]) - trade["entry_fee"]
    assert h.unrealised == pytest.approx(expected, rel=1e-9)
    assert st.next_open == "hold"


def test_next_open_says_buy_on_the_bar_that_decides_an_entry(full_trades):
    trade = full_trades.iloc[-1]
    st = riskon.status(SEED, asof=f"{trade['decision_time']:%Y-%m-%d}")
    assert st.signal_now and not st.holdings
    assert st.next_open.startswith("buy")


def test_sessions_since_the_last_record_after_a_long_drought(rut):
    day = "2023-06-30"
    st = riskon.status(SEED, asof=day)
    i = last_session(rut, day)
    records, high = [], rut[0][1]
    for j in range(1, i + 1):
        if rut[j][1] > high:
            records.append(j)
        high = max(high, rut[j][1])
    last_rec = records[-1]
    assert rut[last_rec][0] == "2021-11-08"
    count = sum(1 for d, _ in rut if "2021-11-08" < d <= day)
    assert st.sessions_since_record == count == i - last_rec
    assert st.last_record == pd.Timestamp("2021-11-08")
    assert st.ath == rut[last_rec][1]
    assert st.ath_distance == pytest.approx(rut[i][1] / rut[last_rec][1] - 1, rel=1e-12)


def test_composite_entry_reports_each_leaf(rut):
    day = "2021-01-08"
    st = riskon.status(COMPOSED, asof=day)
    assert [leaf.rule.split("(")[0] for leaf in st.leaves] == ["ath_confirmed", "index_above_ma", "asset_above_ma",
                                                               "idx_age_max"]  # fmt: skip
    i = last_session(rut, day)
    closes = [c for _, c in rut[: i + 1]]
    assert st.leaves[1].now == (closes[-1] > sum(closes[-200:]) / 200)
    assert st.leaves[3].now == (st.idx_age <= 1.0)
    assert st.leaves[0].pending is None  # confirm_days = 2: the 01-07 break confirmed on 01-08
    assert st.leaves[0].now and st.leaves[0].last_true == pd.Timestamp(day)
    events = st.result.bars["event"]
    assert st.last_signal_bar == events[events].index[-1]


OFFLINE = textwrap.dedent(
    """
    # Test-only: no network. Every Yahoo download fails as it does with the cable pulled.
    import yfinance

    def _offline(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'query2.finance.yahoo.com'")

    yfinance.download = _offline
    """
)


def test_latest_data_is_the_default_and_cli_prints_the_same_rows(rut, monkeypatch):
    from riskon.analysis import signal_state

    monkeypatch.setattr(signal_state, "utc_now", lambda: pd.Timestamp("2026-12-03 12:00", tz="UTC"))  # one clock
    st = riskon.status(SEED)
    assert st.index_session == pd.Timestamp(rut[-1][0])
    assert st.asof == pd.Timestamp("2026-08-21", tz="UTC")  # BTC-USD.csv's last day
    proc = CliRunner().invoke(app, ["status", str(SEED)], env={"COLUMNS": "300", "NO_COLOR": "1"})
    assert proc.exit_code == 0, proc.output
    for _label, text in st.rows():
        assert text in proc.stdout, text


def test_refresh_offline_fails_with_the_same_line_as_data_fetch(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(OFFLINE)
    env = {k: v for k, v in os.environ.items() if k != "RISKON_DATA"}
    env.update(RISKON_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(site), NO_COLOR="1", COLUMNS="200")
    main = [sys.executable, "-c", "from riskon.cli import main; main()"]
    status = subprocess.run([*main, "status", str(SEED), "--refresh"], env=env, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    # `riskon data fetch` under the same outage, in this process (the fetch's forked child inherits the stub)
    import yfinance

    stub: dict = {}
    exec(OFFLINE.replace("yfinance.download = _offline", ""), stub)
    monkeypatch.setattr(yfinance, "download", stub["_offline"])
    monkeypatch.setenv("RISKON_CACHE", str(tmp_path / "cache2"))
    monkeypatch.delenv("RISKON_DATA", raising=False)
    fetch = CliRunner().invoke(app, ["data", "fetch", "^RUT"])
    assert fetch.exit_code != 0 and fetch.exception is not None
    lines = [line for line in status.stderr.splitlines() if line.strip()]
    assert lines == ["downloading ^RUT (1d) from Yahoo: all history (gives up after 20 s) ...",
                     f"error: {fetch.exception}"]  # fmt: skip
    assert lines[1] == ("error: ^RUT: Yahoo did not answer (ConnectionError: Failed to resolve "
                        "'query2.finance.yahoo.com'): no network; the cache is unchanged. Check the connection, "
                        "or use a CSV file: put RUT.csv in the folder RISKON_DATA names, or run "
                        "`riskon data import FILE`")  # fmt: skip
    assert status.returncode == 3
    assert "Traceback" not in status.stderr + status.stdout
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").glob("*.parquet"))


def test_bad_asof_is_one_config_error():
    with pytest.raises(riskon.ConfigError, match="as-of date 'soon' is not a date"):
        riskon.status(SEED, asof="soon")
