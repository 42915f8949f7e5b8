"""A run without trades: every file but the tear sheet, a note saying why, and exit 0; asked for directly, one line."""

from __future__ import annotations

import pandas as pd
import pytest

from riskon.pages.tearsheet import TearsheetError, tearsheet_skip_reason, write_returns_tearsheet
from support.sweep_store import call

REASON = (
    "no tear sheet: the strategy's daily returns are all the same (no trades), and quantstats' regression on the "
    "benchmark needs them to vary"
)


def test_a_run_without_trades_writes_everything_but_the_tear_sheet(data_dir, tmp_path, capsys):
    cfg = tmp_path / "flat.toml"
    cfg.write_text('name = "flat"\n[data]\nstart = "2020-01-01"\nend = "2020-06-30"\n', encoding="utf-8")
    code, out, err = call(capsys, "run", str(cfg), "--out", str(tmp_path / "flat"))
    assert code == 0, err
    assert f"note: {REASON}" in err.splitlines() and "Traceback" not in err
    written = {p.name for p in (tmp_path / "flat").iterdir()}
    assert {"trades.csv", "equity.csv", "metrics.csv", "run.html", "signals.png"} <= written
    assert "tearsheet.html" not in written
    trades = pd.read_csv(tmp_path / "flat" / "trades.csv")
    assert len(trades) == 0 and {"mae", "mfe", "days", "return"} <= set(trades.columns)


def test_asked_for_directly_it_is_a_tearsheet_error(tmp_path):
    index = pd.date_range("2020-01-01", periods=30, freq="D", tz="UTC")
    flat = pd.Series(0.0001, index=index)  # idle cash at a constant rate: constant, too
    assert tearsheet_skip_reason(flat) == REASON
    assert tearsheet_skip_reason(flat.where(index != index[3], 0.002)) is None
    with pytest.raises(TearsheetError, match="no tear sheet"):
        write_returns_tearsheet(flat, flat * 0 + 0.01, tmp_path / "t.html", "flat")
    assert not (tmp_path / "t.html").exists()
