"""``riskon status`` says how old its latest bar is against the current time, and warns when it is stale.

The clock is injected (``clock=`` in Python; ``signal_state.utc_now`` patched for the CLI). The latest
bar's date is read from ``BTC-USD.csv`` with the csv module; a daily bar closes at the next 00:00 UTC.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from riskon.analysis import signal_state
from riskon.cli import app
from riskon.config import ConfigError, load, parse

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "runs" / "seed.toml"
ENV = {"COLUMNS": "300", "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def last_close(data_dir) -> pd.Timestamp:
    """When the snapshot's last BTC-USD bar closes: the day after its date, 00:00 UTC."""
    with (data_dir / "BTC-USD.csv").open(newline="") as f:
        last = [r for r in csv.reader(f) if r][-1][0]
    return pd.Timestamp(last, tz="UTC") + pd.Timedelta(days=1)


def at(stamp: str):
    return lambda: pd.Timestamp(stamp, tz="UTC")


def stale_line(age: float, limit: float) -> str:
    return (
        f"stale data: the latest bar closed {age:.1f} days ago (more than {limit:g}), so this is the state of "
        "2026-08-21, not today's; run `riskon status --refresh` or `riskon data fetch` first"
    )


def test_fresh_data_has_its_age_and_no_warning(last_close):
    st = signal_state.status(load(SEED), clock=at("2026-08-22 12:00"))
    assert last_close == pd.Timestamp("2026-08-22", tz="UTC")
    assert st.now == pd.Timestamp("2026-08-22 12:00", tz="UTC")
    assert st.data_age == 0.5
    rows = dict(st.rows())
    assert rows["data age"] == "0.5 days: the latest bar closed 2026-08-22 00:00 UTC, it is now 2026-08-22 12:00 UTC"
    assert not any(n.startswith("stale data") for n in st.notes)


def test_old_data_is_flagged_against_the_current_time(last_close):
    now = pd.Timestamp("2026-12-03 12:00", tz="UTC")
    st = signal_state.status(load(SEED), clock=lambda: now)
    age = (now - last_close) / pd.Timedelta(days=1)
    assert age == 103.5 and st.data_age == age
    assert stale_line(age, 3) in st.notes
    assert ("note", stale_line(age, 3)) in st.rows()
    # the threshold is the config's [report] stale_days
    raw = {"data": {"index": "^RUT", "asset": "BTC-USD"}, "exits": {"trailing_stop": 0.25},
           "report": {"stale_days": 200}}  # fmt: skip
    patient = signal_state.status(parse(raw, "patient"), clock=lambda: now)
    assert patient.data_age == age and not any(n.startswith("stale data") for n in patient.notes)


def test_just_past_the_threshold_warns(last_close):
    over = signal_state.status(load(SEED), clock=lambda: last_close + pd.Timedelta(days=3, minutes=1))
    assert any(n.startswith("stale data: the latest bar closed 3.0 days ago (more than 3)") for n in over.notes)
    under = signal_state.status(load(SEED), clock=lambda: last_close + pd.Timedelta(days=3))
    assert not any(n.startswith("stale data") for n in under.notes)


def test_an_asof_date_is_not_measured_against_now():
    st = signal_state.status(load(SEED), asof="2021-01-08", clock=at("2026-12-03"))
    assert st.now is None and st.data_age is None
    assert "data age" not in dict(st.rows()) and not any(n.startswith("stale data") for n in st.notes)


def test_cli_prints_the_age_and_warns(monkeypatch):
    monkeypatch.setattr(signal_state, "utc_now", at("2026-12-03 12:00"))
    got = CliRunner().invoke(app, ["status", str(SEED)], env=ENV)
    assert got.exit_code == 0, got.output
    assert "data age" in got.stdout and "103.5 days: the latest bar closed 2026-08-22 00:00 UTC" in got.stdout
    assert got.stderr.splitlines() == [f"warning: {stale_line(103.5, 3)}"]
    quiet = CliRunner().invoke(app, ["status", str(SEED), "--stale-days", "150"], env=ENV)
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr and "stale data" not in quiet.stdout
    bad = CliRunner().invoke(app, ["status", str(SEED), "--stale-days", "-1"], env=ENV)
    assert bad.exit_code == 2 and "-1.0 must be 0 or more days" in bad.output


def test_stale_days_is_validated():
    with pytest.raises(ConfigError, match=r"\[report\]\.stale_days"):
        parse({"report": {"stale_days": -2}}, "x.toml")
