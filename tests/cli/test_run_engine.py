"""``riskon run --engine fast`` prints the same table as the backtrader reference (the engines agree to 1e-9)."""

from __future__ import annotations

import sys
from pathlib import Path

from riskon import cli

SEED = Path(__file__).resolve().parents[2] / "runs" / "seed.toml"


def printed(capsys, *args: str) -> str:
    argv, sys.argv = sys.argv, ["riskon", *args]
    try:
        cli.main()
    except SystemExit as e:
        assert e.code == 0
    finally:
        sys.argv = argv
    return capsys.readouterr().out


def test_fast_engine_prints_the_reference_tables(capsys, data_dir):
    reference = printed(capsys, "run", str(SEED), "--no-report")
    fast = printed(capsys, "run", str(SEED), "--no-report", "--engine", "fast")
    body = reference.splitlines()[1:]  # the first line carries the elapsed time
    assert fast.splitlines()[1:] == body
    assert "│ CAGR                 │   -0.04% │             53.60% │" in reference  # column: buy & hold BTC-USD
