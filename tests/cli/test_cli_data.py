"""``riskon data`` end to end in subprocesses: import the snapshot, list it, show a series, refuse a bad file."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from feeds.cache import Cache

INDEX_OR_ETF = {"RUT.csv": "^RUT", "IWM.csv": "IWM", "IWN.csv": "IWN"}


def riskon(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RISKON_DATA"}
    env.update(RISKON_CACHE=str(cache), NO_COLOR="1", COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-c", "from riskon.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def expected_series(data_dir: Path) -> dict[str, tuple[str, str, int]]:
    """symbol -> (first date, last date, rows), from the raw files with the csv module."""
    out = {}
    for path in sorted(data_dir.glob("*.csv")):
        with path.open(newline="") as f:
            rows = [r for r in csv.reader(f) if r][1:]
        stem = path.stem
        if stem.startswith("binance_"):
            _, pair, _tf = stem.split("_")
            symbol = "binance:" + pair.replace("-", "/")
            days = [datetime.fromtimestamp(int(r[0]) / 1000, tz=UTC).date().isoformat() for r in rows]
        else:
            symbol = INDEX_OR_ETF.get(path.name, stem)
            days = [r[0] for r in rows]
            if path.name in INDEX_OR_ETF:  # a New York midnight is still that date in UTC (04:00/05:00)
                days = [
                    datetime.combine(date.fromisoformat(d), datetime.min.time(), ZoneInfo("America/New_York"))
                    .astimezone(UTC)
                    .date()
                    .isoformat()
                    for d in days
                ]
        out[symbol] = (min(days), max(days), len(rows))
    return out


@pytest.fixture(scope="module")
def imported(data_dir, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cli-cache")
    proc = riskon("data", "import", str(data_dir), cache=cache)
    assert proc.returncode == 0, proc.stderr
    return cache, proc


def test_import_folder_reports_each_series_and_real_warnings(imported, data_dir):
    _, proc = imported
    assert "Traceback" not in proc.stderr
    out = proc.stdout.splitlines()
    assert len(out) == len(list(data_dir.glob("*.csv"))) == 28
    assert "^RUT (1d): 9811 rows 1987-09-10 .. 2026-08-21 from RUT.csv" in out
    assert "binance:BTC/USDT (1d): 3064 rows 2017-08-17 .. 2026-01-05 from binance_BTC-USDT_1d.csv" in out
    warn = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert any("DOGE-USD.csv" in w and "2021-01-28 +356%" in w for w in warn)
    assert any(
        "RUT.csv" in w and "zero volume on 4 bar(s): 2023-07-05, 2023-07-18, 2023-07-25, 2026-08-21" in w for w in warn
    )


def test_list_shows_every_snapshot_series_with_true_symbol_dates_and_rows(imported, data_dir):
    cache, _ = imported
    proc = riskon("data", "list", cache=cache)
    assert proc.returncode == 0, proc.stderr
    rows = {}
    for line in proc.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) == 7 and cells[0] != "symbol":
            symbol, source, timeframe, first, last, n, fp = cells
            rows[symbol] = (first, last, int(n))
            assert timeframe == "1d" and source.startswith("csv:") and len(fp) == 16
    assert rows == expected_series(data_dir)
    assert rows["^RUT"] == ("1987-09-10", "2026-08-21", 9811)
    assert rows["binance:BTC/USDT"] == ("2017-08-17", "2026-01-05", 3064)


def test_show_prints_the_fingerprint_and_the_rows(imported):
    cache, _ = imported
    meta = Cache(cache).meta("BTC-USD")
    proc = riskon("data", "show", "BTC-USD", "--rows", "2", cache=cache)
    assert proc.returncode == 0, proc.stderr
    fields = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line and line[:11].strip())
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    assert fields["fingerprint"] == meta["fingerprint"]
    assert fields["symbol"] == "BTC-USD" and fields["rows"] == "4357" and fields["tz"] == "UTC"
    assert fields["first"] == "2014-09-17T00:00:00+00:00" and fields["last"] == "2026-08-21T00:00:00+00:00"
    assert "2014-09-17 00:00:00+00:00" in proc.stdout and "457.334015" in proc.stdout  # first close
    assert "2026-08-21 00:00:00+00:00" in proc.stdout


def test_show_unknown_symbol_is_one_error_line(imported):
    cache, _ = imported
    proc = riskon("data", "show", "NOPE-USD", cache=cache)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        f"error: NOPE-USD (1d) is not in the cache {cache}; "
        "run `riskon data fetch NOPE-USD` or `riskon data import FILE`"
    ]


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("IWM.csv", "Date,Open,High,Close\n2021-01-04,1,2,1.5\n", "missing column(s) low"),
        ("RUT.csv", b"\x00\x01binary\xff", "binary data, not a CSV text file"),
    ],
)
def test_bad_import_exits_non_zero_with_one_line_and_cache_unchanged(imported, tmp_path, name, content, fragment):
    cache, _ = imported
    before = {p.name: p.read_bytes() for p in sorted(cache.iterdir()) if p.is_file()}
    bad = tmp_path / name
    bad.write_bytes(content) if isinstance(content, bytes) else bad.write_text(content)
    proc = riskon("data", "import", str(bad), cache=cache)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert {p.name: p.read_bytes() for p in sorted(cache.iterdir()) if p.is_file()} == before


def test_import_of_a_missing_path_is_one_error_line(tmp_path):
    proc = riskon("data", "import", str(tmp_path / "nowhere.csv"), cache=tmp_path / "cache")
    assert proc.returncode != 0
    assert proc.stderr.strip() == f"error: {tmp_path / 'nowhere.csv'}: no such file or folder"
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_paths_with_brackets_are_printed_as_written(tmp_path):
    # rich would read "[exports]" as a style tag and drop it
    folder = tmp_path / "[exports]"
    folder.mkdir()
    (folder / "BTC-USD.csv").write_text("Date,Open,High,Low,Close,Volume\n2021-01-01,1,2,0.5,1.5,0\n")
    proc = riskon("data", "import", str(folder / "BTC-USD.csv"), cache=tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [f"warning: {folder / 'BTC-USD.csv'}: zero volume on 1 bar(s): 2021-01-01"]
    assert proc.stdout.splitlines() == ["BTC-USD (1d): 1 rows 2021-01-01 .. 2021-01-01 from BTC-USD.csv"]


def test_error_line_keeps_square_brackets(tmp_path):
    bad = tmp_path / "IWM.csv"
    bad.write_text("Date,Open,High,Low,Close\n2021-01-04,13,12,10,11\n")
    proc = riskon("data", "import", str(bad), cache=tmp_path / "cache")
    assert proc.returncode != 0
    assert proc.stderr.strip() == f"error: {bad}: open or close outside [low, high] on 2021-01-04"
