"""CSV import: every snapshot file lands under its true symbol with the right clock; bad files change nothing.

Expected values are computed from the raw files with the ``csv`` module and
``zoneinfo`` — never with the pandas code under test.
"""

from __future__ import annotations

import csv
import re
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from feeds.cache import Cache
from feeds.errors import DataError
from feeds.loader import import_file

NEW_YORK = ZoneInfo("America/New_York")

YAHOO_COINS = ["ADA", "AVAX", "BNB", "BTC", "DOGE", "DOT", "ETH", "LINK", "LTC", "MATIC", "SOL", "XRP"]
BINANCE_COINS = ["ADA", "AVAX", "BNB", "BTC", "DOGE", "DOT", "ETH", "LINK", "LTC", "MATIC", "SOL", "TRX", "XRP"]
#: The snapshot's files and the symbol each one must be stored under.
SNAPSHOT = {
    "RUT.csv": "^RUT",
    "IWM.csv": "IWM",
    "IWN.csv": "IWN",
    **{f"{c}-USD.csv": f"{c}-USD" for c in YAHOO_COINS},
    **{f"binance_{c}-USDT_1d.csv": f"binance:{c}/USDT" for c in BINANCE_COINS},
}
INDEX_OR_ETF = {"RUT.csv", "IWM.csv", "IWN.csv"}


def snapshot_of(root: Path) -> dict[str, bytes]:
    """Every file in the cache folder, byte for byte (temp files included)."""
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())} if root.exists() else {}


def raw_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r]
    return rows[0], rows[1:]


def expected_stamp(name: str, cell: str) -> datetime:
    """The UTC bar-open instant a snapshot date cell stands for, by the design's rules."""
    if name.startswith("binance_"):
        return datetime.fromtimestamp(int(cell) / 1000, tz=UTC)
    d = date.fromisoformat(cell)
    zone = NEW_YORK if name in INDEX_OR_ETF else UTC
    return datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(UTC)


def test_snapshot_folder_holds_exactly_the_known_files(data_dir):
    assert sorted(p.name for p in data_dir.glob("*.csv")) == sorted(SNAPSHOT)


@pytest.mark.parametrize("name", sorted(SNAPSHOT))
def test_snapshot_file_imports_with_true_symbol_dates_and_rows(name, data_dir, cache):
    path = data_dir / name
    header, rows = raw_rows(path)
    stamps = [expected_stamp(name, r[0]) for r in rows]

    filled = import_file(path, cache=cache)
    meta = filled.meta

    assert meta["symbol"] == SNAPSHOT[name]
    assert meta["timeframe"] == "1d"
    assert meta["source"] == f"csv:{name}"
    assert meta["tz"] == ("America/New_York" if name in INDEX_OR_ETF else "UTC")
    assert meta["rows"] == len(rows) == len(set(stamps))
    assert datetime.fromisoformat(meta["first"]) == min(stamps)
    assert datetime.fromisoformat(meta["last"]) == max(stamps)

    frame = cache.read(SNAPSHOT[name], "1d")
    assert str(frame.index.dtype) == "datetime64[us, UTC]"
    assert frame.index.name == "time"
    assert list(frame.index.to_pydatetime()) == sorted(stamps)
    if name in INDEX_OR_ETF:
        local = frame.index.tz_convert("America/New_York")
        assert (local.hour == 0).all() and (local.minute == 0).all()
        # 1987-09-10 was in daylight saving time: 04:00 UTC; a winter date is 05:00 UTC
        assert {4, 5} == set(frame.index.hour)
    else:
        assert (frame.index.hour == 0).all() and (frame.index.minute == 0).all()

    # the values are the file's values
    col = {c.strip().lower(): i for i, c in enumerate(header)}
    last = max(rows, key=lambda r: expected_stamp(name, r[0]))
    for key in ("open", "high", "low", "close", "volume"):
        assert frame[key].iloc[-1] == float(last[col[key]])
    adj = col.get("adj close", col["close"])
    assert frame["adj_close"].iloc[-1] == float(last[adj])
    assert frame.attrs["fingerprint"] == meta["fingerprint"]


def test_doge_real_355_percent_move_is_a_warning_and_kept(data_dir, cache):
    _, rows = raw_rows(data_dir / "DOGE-USD.csv")
    close = {r[0]: float(r[4]) for r in rows}
    move = close["2021-01-28"] / close["2021-01-27"] - 1
    assert 3.55 < move < 3.56

    filled = import_file(data_dir / "DOGE-USD.csv", cache=cache)
    big = [w for w in filled.warnings if w.kind == "large_move"]
    assert len(big) == 1
    assert "2021-01-28" in big[0].dates
    assert "2021-01-28 +356%" in big[0].message and "(kept)" in big[0].message
    frame = cache.read("DOGE-USD")
    assert frame.loc["2021-01-28", "close"].item() == close["2021-01-28"]
    assert len(frame) == len(rows)


def test_rut_zero_volume_rows_are_reported_with_dates_and_kept(data_dir, cache):
    _, rows = raw_rows(data_dir / "RUT.csv")
    zero = sorted(r[0] for r in rows if float(r[6]) == 0)
    assert zero == ["2023-07-05", "2023-07-18", "2023-07-25", "2026-08-21"]

    filled = import_file(data_dir / "RUT.csv", cache=cache)
    (w,) = [w for w in filled.warnings if w.kind == "zero_volume"]
    assert list(w.dates) == zero
    assert "4 bar(s)" in w.message and "2023-07-05" in w.message
    assert {w.kind for w in filled.warnings} == {"zero_volume"}  # no gaps, no large moves in 39 years
    frame = cache.read("^RUT")
    assert len(frame) == len(rows)
    local_dates = frame.index.tz_convert("America/New_York").strftime("%Y-%m-%d")
    assert sorted(local_dates[frame["volume"].to_numpy() == 0]) == zero


# ---------------------------------------------------------------- bad files

YH = "Date,Open,High,Low,Close,Adj Close,Volume"
IWM_GOOD = [
    "2021-01-04,10,11,9,10.5,10.5,100",
    "2021-01-05,10.5,12,10,11,11,100",
    "2021-01-06,11,12,10,11.5,11.5,100",
]
BTC_GOOD = [
    "2021-01-01,10,11,9,10.5,10.5,100",
    "2021-01-02,10.5,12,10,11,11,100",
    "2021-01-03,11,12,10,11.5,11.5,100",
]


def lines(*rows: str) -> str:
    return "\n".join(rows) + "\n"


# (id, file name, content, fragment the one-line error must contain)
BAD = [
    (
        "missing_column",
        "IWM.csv",
        lines("Date,Open,High,Close,Volume", "2021-01-04,10,11,10.5,100"),
        "missing column(s) low",
    ),
    (
        "unparseable_date",
        "IWM.csv",
        lines(YH, IWM_GOOD[0], "2021-13-45,10,11,9,10,10,1"),
        "unparseable date '2021-13-45' at line 3",
    ),
    ("word_date", "IWM.csv", lines(YH, IWM_GOOD[0], "yesterday,10,11,9,10,10,1"), "unparseable date 'yesterday'"),
    (
        "conflicting_duplicate",
        "IWM.csv",
        lines(YH, *IWM_GOOD, "2021-01-06,11,12,10,11.7,11.7,100"),
        "same timestamp appears twice with different values on 2021-01-06",
    ),
    ("nan_empty_cell", "IWM.csv", lines(YH, *IWM_GOOD, "2021-01-07,11,,10,11.5,11.5,100"), "NaN) prices on 2021-01-07"),
    ("nan_literal", "IWM.csv", lines(YH, *IWM_GOOD, "2021-01-07,NaN,12,10,11.5,11.5,1"), "NaN) prices on 2021-01-07"),
    (
        "zero_price",
        "IWM.csv",
        lines(YH, *IWM_GOOD, "2021-01-07,0,12,0,11.5,11.5,100"),
        "zero or negative prices on 2021-01-07",
    ),
    ("negative_price", "IWM.csv", lines(YH, *IWM_GOOD, "2021-01-07,11,12,-1,11.5,11.5,1"), "zero or negative prices"),
    (
        "infinite_price",
        "IWM.csv",
        lines(YH, *IWM_GOOD, "2021-01-07,11,inf,10,11.5,11.5,1"),
        "infinite values on 2021-01-07",
    ),
    (
        "overflow_price",
        "IWM.csv",
        lines(YH, *IWM_GOOD, "2021-01-07,11,1e400,10,11,11,1"),
        "infinite values on 2021-01-07",
    ),
    (
        "high_below_low",
        "IWM.csv",
        lines(YH, *IWM_GOOD, "2021-01-07,11,10,12,11.5,11.5,100"),
        "high < low on 2021-01-07",
    ),
    (
        "open_above_high",
        "IWM.csv",
        lines(YH, *IWM_GOOD, "2021-01-07,13,12,10,11.5,11.5,100"),
        "open or close outside [low, high] on 2021-01-07",
    ),
    ("close_below_low", "IWM.csv", lines(YH, *IWM_GOOD, "2021-01-07,11,12,10,9.5,9.5,100"), "outside [low, high]"),
    (
        "negative_volume",
        "IWM.csv",
        lines(YH, *IWM_GOOD, "2021-01-07,11,12,10,11,11,-5"),
        "negative volume on 2021-01-07",
    ),
    (
        "mixed_tz_offset_then_naive",
        "BTC-USD.csv",
        lines(YH, "2021-01-01T00:00:00+00:00,10,11,9,10.5,10.5,100", "2021-01-02,10.5,12,10,11,11,100"),
        "mixed time zones (some dates carry a UTC offset, line 3 does not)",
    ),
    (
        "mixed_tz_naive_then_offset",
        "IWM.csv",
        lines(YH, IWM_GOOD[0], "2021-01-05 00:00:00+00:00,10.5,12,10,11,11,100"),
        "mixed time zones (some dates carry a UTC offset, line 2 does not)",
    ),
    (
        "mixed_offsets_in_utc_series",
        "BTC-USD.csv",
        lines(YH, "2021-01-01 00:00:00+00:00,10,11,9,10.5,10.5,1", "2021-01-02 00:00:00+01:00,10,11,9,10.5,10.5,1"),
        "mixed time zones ('2021-01-02 00:00:00+01:00' at line 3",
    ),
    (
        "utc_and_new_york_offsets_in_etf",
        "IWM.csv",
        lines(YH, "2021-01-04T00:00:00-05:00,10,11,9,10.5,10.5,1", "2021-01-05T00:00:00+00:00,10,11,9,10.5,10.5,1"),
        "is not in America/New_York",
    ),
    (
        "ms_and_seconds_mixed",
        "binance_BTC-USDT_1d.csv",
        lines("timestamp,open,high,low,close,volume", "1609459200000,1,2,0.5,1.5,3", "1609545600,1,2,0.5,1.5,3"),
        "timestamps mix milliseconds and seconds (line 3)",
    ),
    (
        "dst_ambiguous_local_time",
        "IWM.csv",
        lines(
            "Datetime,Open,High,Low,Close,Volume", "2021-11-07 00:30:00,1,2,0.5,1,1", "2021-11-07 01:30:00,1,2,0.5,1,1"
        ),
        "local time '2021-11-07 01:30:00' at line 3 does not exist or is ambiguous in America/New_York",
    ),
    (
        "etf_bar_on_a_saturday",
        "IWM.csv",
        lines(YH, *IWM_GOOD, "2021-01-09,11,12,10,11.5,11.5,100"),
        "not NYSE sessions: 2021-01-09",
    ),
    ("empty_file", "IWM.csv", "", "the file is empty"),
    ("blank_lines_only", "IWM.csv", "\n \n\n", "the file is empty"),
    (
        "semicolons",
        "IWM.csv",
        lines(YH.replace(",", ";"), *(r.replace(",", ";") for r in IWM_GOOD)),
        "separated by semicolons",
    ),
    ("tabs", "IWM.csv", lines(YH.replace(",", "\t"), *(r.replace(",", "\t") for r in IWM_GOOD)), "separated by tabs"),
    ("header_only", "IWM.csv", lines(YH), "only a header, no data rows"),
    (
        "non_numeric_cell",
        "IWM.csv",
        lines(YH, *IWM_GOOD, "2021-01-07,11,abc,10,11.5,11.5,100"),
        "non-numeric high 'abc' at line 5",
    ),
    (
        "thousands_separator",
        "IWM.csv",
        lines(YH, '2021-01-04,"1,000",1100,900,1050,1050,100'),
        "non-numeric open '1,000'",
    ),
    ("extra_fields", "IWM.csv", lines(YH, *IWM_GOOD, "2021-01-07,11,12,10,11.5,11.5,100,7,8"), "malformed CSV"),
    ("not_a_header", "IWM.csv", lines("hello world", "1 2 3"), "is not a CSV header"),
]
BAD_BYTES = [
    (
        "binary_garbage",
        "IWM.csv",
        b"PAR1\x00\x01\x02\x03\x15\x04garbage\x00\xff\xfe" * 20,
        "binary data, not a CSV text file",
    ),
    ("gzip_file", "IWM.csv", bytes.fromhex("1f8b0800000000000003") + b"\x00" * 30, "binary data"),
    (
        "latin1_in_header",
        "IWM.csv",
        lines("Date,Open,High,Low,Close,Volum\xe9", "2021-01-04,10,11,9,10.5,100").encode("latin-1"),
        "not UTF-8 text (byte 0xe9 at offset 30)",
    ),
    (
        "latin1_in_cell",
        "IWM.csv",
        lines("Date,Open,High,Low,Close,Volume", "2021-01-04,10,11,9,10.5,caf\xe9").encode("latin-1"),
        "not UTF-8 text (byte 0xe9",
    ),
]
GOOD_FOR = {
    "IWM.csv": ("IWM", lines(YH, *IWM_GOOD)),
    "BTC-USD.csv": ("BTC-USD", lines(YH, *BTC_GOOD)),
    "binance_BTC-USDT_1d.csv": (
        "binance:BTC/USDT",
        lines("timestamp,open,high,low,close,volume", "1609459200000,1,2,0.5,1.5,3", "1609545600000,1,2,0.5,1.5,3"),
    ),
}


def _prepare(tmp_path: Path, cache: Cache, name: str) -> tuple[str, dict[str, bytes], pd.DataFrame, dict]:
    """Import a small valid file for the symbol the bad file maps to; return what the cache holds."""
    symbol, text = GOOD_FOR[name]
    good = tmp_path / "good" / name
    good.parent.mkdir()
    good.write_text(text)
    import_file(good, cache=cache)
    return symbol, snapshot_of(cache.root), cache.read(symbol), cache.meta(symbol)


def _assert_unchanged(cache: Cache, symbol: str, files: dict[str, bytes], frame: pd.DataFrame, meta: dict) -> None:
    assert snapshot_of(cache.root) == files  # same JSON, same Parquet bytes, no stray temp files
    assert cache.meta(symbol) == meta
    after = cache.read(symbol)
    pd.testing.assert_frame_equal(after, frame)
    assert after.attrs == frame.attrs
    assert cache.list()["symbol"].tolist() == [symbol]


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [pytest.param(n, c, f, id=i) for i, n, c, f in BAD + BAD_BYTES],
)
def test_bad_file_is_refused_with_one_line_and_cache_unchanged(tmp_path, cache, name, content, fragment):
    symbol, files, frame, meta = _prepare(tmp_path, cache, name)
    bad = tmp_path / "bad" / name
    bad.parent.mkdir()
    if isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        bad.write_text(content, encoding="utf-8")

    with pytest.raises(DataError) as err:
        import_file(bad, cache=cache)
    msg = str(err.value)
    assert fragment in msg
    assert "\n" not in msg
    assert msg.startswith(str(bad))  # every message names the file
    _assert_unchanged(cache, symbol, files, frame, meta)


@pytest.mark.parametrize(
    ("bad_text", "fragment"), [(lines(YH, *IWM_GOOD[:2], "2021-01-06,11,12,13,11,11,1"), "high < low")]
)
def test_bad_file_under_symbol_override_leaves_that_symbol_unchanged(tmp_path, cache, bad_text, fragment):
    symbol, files, frame, meta = _prepare(tmp_path, cache, "IWM.csv")
    bad = tmp_path / "export from broker.csv"
    bad.write_text(bad_text)
    with pytest.raises(DataError, match=re.escape(fragment)):
        import_file(bad, symbol="IWM", cache=cache)
    _assert_unchanged(cache, symbol, files, frame, meta)


def test_symbol_override_names_the_series_and_its_clock(tmp_path, cache):
    path = tmp_path / "russell.csv"
    path.write_text(lines(YH, "2020-11-13,1700,1710,1690,1705,1705,5"))
    meta = import_file(path, symbol="^RUT", cache=cache).meta
    assert meta["symbol"] == "^RUT" and meta["tz"] == "America/New_York"
    assert datetime.fromisoformat(meta["first"]) == datetime(2020, 11, 13, 5, tzinfo=UTC)
    assert cache.list()["symbol"].tolist() == ["^RUT"]


# ---------------------------------------------------------------- warnings: data kept


def _import(tmp_path: Path, cache: Cache, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    filled = import_file(path, cache=cache)
    return filled, {w.kind: w for w in filled.warnings}


def test_exact_duplicate_row_is_dropped_and_warned_with_its_date(tmp_path, cache):
    filled, warn = _import(
        tmp_path, cache, "BTC-USD.csv", lines(YH, BTC_GOOD[0], BTC_GOOD[1], BTC_GOOD[1], BTC_GOOD[2])
    )
    assert set(warn) == {"duplicates"}
    assert warn["duplicates"].dates == ("2021-01-02",)
    assert "2021-01-02" in warn["duplicates"].message
    frame = cache.read("BTC-USD")
    assert filled.meta["rows"] == 3 == len(frame)
    assert frame.index.is_unique
    assert frame["close"].tolist() == [10.5, 11.0, 11.5]


def test_unsorted_rows_are_sorted_and_warned(tmp_path, cache):
    _, warn = _import(tmp_path, cache, "BTC-USD.csv", lines(YH, BTC_GOOD[2], BTC_GOOD[0], BTC_GOOD[1]))
    assert set(warn) == {"unsorted"}
    frame = cache.read("BTC-USD")
    assert frame.index.is_monotonic_increasing
    assert list(frame.index.strftime("%Y-%m-%d")) == ["2021-01-01", "2021-01-02", "2021-01-03"]
    assert frame["close"].tolist() == [10.5, 11.0, 11.5]


def test_zero_volume_is_warned_with_its_date_and_kept(tmp_path, cache):
    _, warn = _import(tmp_path, cache, "IWM.csv", lines(YH, IWM_GOOD[0], "2021-01-05,10.5,12,10,11,11,0", IWM_GOOD[2]))
    assert set(warn) == {"zero_volume"}
    assert warn["zero_volume"].dates == ("2021-01-05",)
    frame = cache.read("IWM")
    assert frame["volume"].tolist() == [100.0, 0.0, 100.0]


def test_crypto_missing_day_is_a_gap_warning_with_its_date(tmp_path, cache):
    _, warn = _import(
        tmp_path, cache, "BTC-USD.csv", lines(YH, BTC_GOOD[0], BTC_GOOD[1], "2021-01-04,11,12,10,11,11,1")
    )
    assert set(warn) == {"gaps"}
    assert warn["gaps"].dates == ("2021-01-03",)
    assert "1 missing bar(s): 2021-01-03" in warn["gaps"].message
    assert len(cache.read("BTC-USD")) == 3


def test_etf_missing_nyse_session_is_a_gap_warning_but_weekends_and_holidays_are_not(tmp_path, cache):
    # Fri 2021-01-15, (weekend, MLK day Mon 2021-01-18 closed), Tue 19, Wed 20 missing, Thu 21
    rows = [
        "2021-01-15,10,11,9,10.5,10.5,1",
        "2021-01-19,10,11,9,10.5,10.5,1",
        "2021-01-21,10,11,9,10.5,10.5,1",
    ]
    _, warn = _import(tmp_path, cache, "IWM.csv", lines(YH, *rows))
    assert set(warn) == {"gaps"}
    assert warn["gaps"].dates == ("2021-01-20",)
    frame = cache.read("IWM")
    assert list(frame.index.tz_convert("America/New_York").strftime("%Y-%m-%d")) == [r[:10] for r in rows]


def test_yfinance_history_csv_with_new_york_offsets_is_read_as_session_dates(tmp_path, cache):
    # Ticker.history().to_csv() writes tz-aware dates: -05:00 in winter, -04:00 in summer
    text = lines(
        "Date,Open,High,Low,Close,Volume,Dividends,Stock Splits",
        "2021-03-12 00:00:00-05:00,10,11,9,10.5,100,0,0",
        "2021-03-15 00:00:00-04:00,10.5,12,10,11,100,0,0",
    )
    filled, warn = _import(tmp_path, cache, "IWM.csv", text)
    assert warn == {}
    frame = cache.read("IWM")
    assert [t.isoformat() for t in frame.index] == ["2021-03-12T05:00:00+00:00", "2021-03-15T04:00:00+00:00"]
    assert frame["adj_close"].tolist() == frame["close"].tolist()


def test_csv_files_expands_folders_and_refuses_empty_ones(tmp_path, data_dir):
    from feeds.loader import csv_files

    files = csv_files([data_dir, data_dir / "RUT.csv"])
    assert [p.name for p in files] == sorted(SNAPSHOT)  # sorted, the repeated RUT.csv listed once
    (tmp_path / "notes.txt").write_text("no csv here")
    with pytest.raises(DataError, match="no .csv files in this folder"):
        csv_files([tmp_path])
    with pytest.raises(DataError, match="no such file or folder"):
        csv_files([tmp_path / "missing.csv"])
