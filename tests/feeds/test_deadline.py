"""Hard deadlines: a hung fetch ends on time, its process is gone, and the CLI says so in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from feeds.deadline import call_with_deadline
from feeds.errors import DataError, NetworkError


def _sleep_after_writing_pid(pid_file: str, seconds: float) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(seconds)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_hung_call_ends_within_the_deadline_and_its_process_is_gone(tmp_path):
    pid_file = tmp_path / "child.pid"
    t0 = time.monotonic()
    with pytest.raises(NetworkError) as err:
        call_with_deadline(_sleep_after_writing_pid, str(pid_file), 60, deadline=1.5, what="fetching ^RUT")
    elapsed = time.monotonic() - t0
    assert 1.4 < elapsed < 3.0
    assert str(err.value) == "fetching ^RUT: no answer within 1.5 s (no network?)"
    pid = int(pid_file.read_text())
    assert pid != os.getpid()
    assert not _alive(pid)  # terminated and reaped, not a zombie


def _raise_data_error() -> None:
    raise DataError("binance does not list FOO/USDT; check the pair (e.g. BTC/USDT)")


def _raise_network_error() -> None:
    raise NetworkError("Yahoo returned no data for ^XYZ")


def _raise_other() -> None:
    raise ValueError("bad JSON\nline two of a long message")


def _die() -> None:
    os._exit(9)


def _frame(symbol: str) -> pd.DataFrame:
    idx = pd.date_range("2021-01-01", periods=3, freq="D", tz="UTC", unit="us", name="time")
    df = pd.DataFrame({"close": [1.0, 2.0, 3.5]}, index=idx)
    df.attrs["symbol"] = symbol
    return df


def test_data_error_in_the_child_is_reraised_as_data_error():
    with pytest.raises(DataError) as err:
        call_with_deadline(_raise_data_error, deadline=10)
    assert str(err.value) == "binance does not list FOO/USDT; check the pair (e.g. BTC/USDT)"


def test_network_error_in_the_child_is_reraised_as_network_error():
    with pytest.raises(NetworkError, match=r"^Yahoo returned no data for \^XYZ$"):
        call_with_deadline(_raise_network_error, deadline=10)


def test_any_other_failure_is_a_one_line_network_error():
    with pytest.raises(NetworkError) as err:
        call_with_deadline(_raise_other, deadline=10, what="fetching IWM")
    assert str(err.value) == "fetching IWM failed: ValueError: bad JSON"


def test_a_child_that_dies_is_a_network_error():
    with pytest.raises(NetworkError, match="fetching BTC-USD: the fetch process died without an answer"):
        call_with_deadline(_die, deadline=10, what="fetching BTC-USD")


def test_a_normal_return_value_comes_back_whole():
    t0 = time.monotonic()
    got = call_with_deadline(_frame, "BTC-USD", deadline=10)
    assert time.monotonic() - t0 < 5
    pd.testing.assert_frame_equal(got, _frame("BTC-USD"))
    assert got.attrs == {"symbol": "BTC-USD"}
    assert str(got.index.dtype) == "datetime64[us, UTC]"


HANG = textwrap.dedent(
    """
    # Test-only: make every Yahoo download hang, as yfinance's cookie fetch can.
    import time
    from pathlib import Path

    import yfinance

    def _hang(*args, **kwargs):
        Path({marker!r}).write_text(repr(time.time()))
        time.sleep(60)

    yfinance.download = _hang
    """
)


def test_cli_fetch_that_hangs_exits_with_one_error_line(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    marker = tmp_path / "hang-started"
    (site / "sitecustomize.py").write_text(HANG.format(marker=str(marker)))
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k != "RISKON_DATA"}
    env.update(RISKON_CACHE=str(cache), PYTHONPATH=str(site), NO_COLOR="1", COLUMNS="200")
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", "from riskon.cli import main; main()", "data", "fetch", "^RUT", "--deadline", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    ended = time.time()
    elapsed = time.monotonic() - t0
    assert proc.returncode != 0
    # the download really hung, and the CLI gave up 2 s later (interpreter start-up not counted)
    assert 2.0 <= ended - float(marker.read_text()) < 5.0
    assert elapsed < 15
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == ["error: fetching ^RUT: no answer within 2 s (no network?)"], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not cache.exists() or not any(cache.glob("*.json"))
    assert not cache.exists() or not any(cache.glob("*.parquet"))
