"""A newcomer offline, through the installed ``riskon`` command: one error line that says no network or
unknown symbol, a download announced before it starts, and ``riskon data show`` importing from RISKON_DATA.

The subprocesses get Yahoo and the exchanges at the wire (``support.fake_yahoo`` through a
``sitecustomize.py``): the real yfinance and ccxt run in the fetch's forked child, only their HTTP
call fails as it does with no network, or answers as Yahoo does for a symbol it does not know.
"""

from __future__ import annotations

import csv
import os
import pty
import select
import subprocess
from pathlib import Path

import pytest

from support import fake_yahoo
from support.clitools import riskon_cmd

TESTS = Path(__file__).resolve().parents[1]
SEED = TESTS.parent / "runs" / "seed.toml"
CURE = "the cache is unchanged. Check the connection, or use a CSV file: put {file} in the folder RISKON_DATA names, "
CURE += "or run `riskon data import FILE`"
NO_NETWORK = "error: {sym}: Yahoo did not answer (DNSError: Could not resolve host: query2.finance.yahoo.com): "
NO_NETWORK += "no network; "


def offline_line(sym: str, file: str) -> str:
    return NO_NETWORK.format(sym=sym) + CURE.format(file=file)


def environment(tmp_path: Path, kind: str | None, data: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RISKON_DATA"}
    env.update(RISKON_CACHE=str(tmp_path / "cache"), RISKON_REPORTS=str(tmp_path / "reports"), NO_COLOR="1",
               COLUMNS="200")  # fmt: skip
    if kind is not None:
        site = tmp_path / "site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(
            fake_yahoo.SITE.format(tests=str(TESTS), kind=kind, cache_dir=str(tmp_path / "yf"))
        )
        env["PYTHONPATH"] = str(site)
    if data is not None:
        env["RISKON_DATA"] = str(data)
    return env


def riskon(tmp_path: Path, *args: str, kind: str | None = "offline", data: Path | None = None):
    return subprocess.run([*riskon_cmd(), *args], env=environment(tmp_path, kind, data), capture_output=True,
                          text=True, timeout=180)  # fmt: skip


def test_data_fetch_offline_prints_exactly_one_line(tmp_path):
    proc = riskon(tmp_path, "data", "fetch", "BTC-USD")
    assert proc.returncode == 3
    assert proc.stderr.splitlines() == [offline_line("BTC-USD", "BTC-USD.csv")]  # no Pandas4Warning, no log line
    assert proc.stdout == ""
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").glob("*.parquet"))


def test_data_fetch_of_an_unknown_symbol_says_so(tmp_path):
    proc = riskon(tmp_path, "data", "fetch", "NOPE-USD", kind="unknown")
    assert proc.returncode == 3
    assert proc.stderr.splitlines() == [
        "error: NOPE-USD: unknown symbol: Yahoo has no NOPE-USD (No data found, symbol may be delisted); "
        "check the symbol as Yahoo writes it (^RUT, IWM, BTC-USD, ETH-USD)"
    ]


def test_data_fetch_of_an_exchange_pair_offline_prints_exactly_one_line(tmp_path):
    proc = riskon(tmp_path, "data", "fetch", "binance:BTC/USDT")
    assert proc.returncode == 3
    assert proc.stderr.splitlines() == [
        "error: binance:BTC/USDT: binance did not answer (NetworkError): no network; "
        + CURE.format(file="binance_BTC-USDT_1d.csv")
    ]


def test_run_announces_the_download_then_fails_in_one_line(tmp_path):
    proc = riskon(tmp_path, "run", str(SEED), "--no-report")
    assert proc.returncode == 3
    assert proc.stderr.splitlines() == [
        "downloading ^RUT (1d) from Yahoo: all history (gives up after 20 s) ...",
        offline_line("^RUT", "RUT.csv"),
    ]


def test_status_refresh_announces_each_download(tmp_path, data_dir):
    # the cache holds the snapshot; --refresh asks Yahoo for the bars from the last cached one on
    filled = riskon(tmp_path, "data", "import", str(data_dir / "RUT.csv"), str(data_dir / "BTC-USD.csv"), kind=None)
    assert filled.returncode == 0, filled.stderr
    with (data_dir / "RUT.csv").open(newline="") as f:
        last = [r for r in csv.reader(f) if r][-1][0]
    proc = riskon(tmp_path, "status", str(SEED), "--refresh", "--deadline", "15")
    assert proc.returncode == 3
    assert proc.stderr.splitlines() == [
        f"downloading ^RUT (1d) from Yahoo: the bars from {last} on (gives up after 15 s) ...",
        offline_line("^RUT", "RUT.csv"),
    ]


def test_data_fetch_announces_the_download_on_the_terminal(tmp_path):
    """On a terminal the attempt shows on the live status line (a pipe gets only the result, as above)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*riskon_cmd(), "data", "fetch", "ETH-USD", "--deadline", "12"],
                            env=environment(tmp_path, "offline"), stdout=subprocess.PIPE, stderr=follower)  # fmt: skip
    os.close(follower)
    seen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the command ended and closed its side
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=60)
    os.close(leader)
    text = seen.decode(errors="replace")
    assert proc.returncode == 3
    assert "downloading ETH-USD (1d) from Yahoo: all history (gives up after 12 s) ..." in text
    assert "no network" in text


# ---------------------------------------------------------------------------------------------- data show
def _rows(path: Path) -> tuple[int, str, str]:
    with path.open(newline="") as f:
        rows = [r for r in csv.reader(f) if r][1:]
    return len(rows), rows[0][0], rows[-1][0]


def test_data_show_imports_from_riskon_data_as_run_does(tmp_path, data_dir):
    n, first, last = _rows(data_dir / "SOL-USD.csv")
    proc = riskon(tmp_path, "data", "show", "SOL-USD", "--rows", "1", kind=None, data=data_dir)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [f"cache: filled SOL-USD from {data_dir / 'SOL-USD.csv'} ({n} rows)"]
    fields = dict(line.strip().split(": ", 1) for line in proc.stdout.splitlines()[:9])
    assert fields["rows"] == str(n) and fields["source"] == "csv:SOL-USD.csv"
    assert fields["first"] == f"{first}T00:00:00+00:00" and fields["last"] == f"{last}T00:00:00+00:00"
    again = riskon(tmp_path, "data", "show", "SOL-USD", "--rows", "1", kind=None, data=data_dir)
    assert again.returncode == 0 and again.stderr == ""  # cached now: nothing to import


@pytest.mark.parametrize("with_data", [True, False])
def test_data_show_of_a_symbol_nowhere_is_one_line(tmp_path, data_dir, with_data):
    proc = riskon(tmp_path, "data", "show", "nope-usd", kind=None, data=data_dir if with_data else None)
    assert proc.returncode == 3
    where = f" and RISKON_DATA={data_dir} has no file for it (expected NOPE-USD.csv)" if with_data else ""
    assert proc.stderr.splitlines() == [
        f"error: NOPE-USD (1d) is not in the cache {tmp_path / 'cache'}{where}; "
        "run `riskon data fetch NOPE-USD` or `riskon data import FILE`"
    ]
