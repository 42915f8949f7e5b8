"""Issue 15 §3: the cache never shrinks or lies silently, and no symbol leads out of its folders.

Every refusal is checked three ways: the exact one-line message, that it is a
``DataError``, and that the cache folder is byte-for-byte what it was (every
file hashed before and after, temporary files included).
"""

from __future__ import annotations

import errno
import hashlib
import json
import multiprocessing as mp
import os
from pathlib import Path

import pandas as pd
import pytest

import feeds.clock
from feeds.cache import Cache
from feeds.errors import DataError
from feeds.loader import import_file, import_files, load

YH = "Date,Open,High,Low,Close,Adj Close,Volume"
REPLACE = "the cache is unchanged; to replace BTC-USD on purpose, import with --replace (replace=True)"
BAD_SYMBOL = (
    "is not valid: use a Yahoo symbol (^RUT, IWM, BTC-USD) or an exchange pair (binance:BTC/USDT), "
    "without path separators, '..', spaces or control characters"
)


def daily(n: int, start: str = "2021-01-01", closes: list[float] | None = None, **cells: dict[str, str]) -> str:
    """A Yahoo-style daily file: close 100, 101, ... (or ``closes``), high/low 1 either side, volume 1000.

    ``cells`` overrides one cell per row, e.g. ``adj_close={"2021-01-02": "-1"}``.
    """
    out = [YH]
    for i, day in enumerate(pd.date_range(start, periods=n, freq="D")):
        c = closes[i] if closes else 100.0 + i
        row = {"open": c, "high": c + 1, "low": c - 1 if c > 1 else c / 2, "close": c, "adj_close": c, "volume": 1000}
        row = {k: f"{v:g}" if isinstance(v, float) else str(v) for k, v in row.items()}
        for col, by_day in cells.items():
            row[col] = by_day.get(f"{day:%Y-%m-%d}", row[col])
        out.append(
            f"{day:%Y-%m-%d},{row['open']},{row['high']},{row['low']},{row['close']},{row['adj_close']},{row['volume']}"
        )
    return "\n".join(out) + "\n"


def put(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden and temporary ones too) and the SHA-256 of its bytes."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def refused(call, message: str, root: Path) -> None:
    """``call()`` raises a ``DataError`` whose text is exactly ``message``; ``root`` is unchanged, byte for byte."""
    before = tree(root)
    with pytest.raises(DataError) as err:
        call()
    assert str(err.value) == message
    assert "\n" not in str(err.value)
    assert tree(root) == before


@pytest.fixture
def seeded(tmp_path, cache):
    """A cache holding BTC-USD (10 daily bars from 2021-01-01) and ETH-USD (5 bars)."""
    import_file(put(tmp_path / "seed", "BTC-USD.csv", daily(10)), cache=cache)
    import_file(put(tmp_path / "seed", "ETH-USD.csv", daily(5)), cache=cache)
    return cache


# ---------------------------------------------------------------- a shrinking or rewriting import is refused


def _without(text: str, day: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith(day))


SHRINK = [
    (
        "one_row",
        daily(1),
        "would drop 9 of the 10 cached BTC-USD (1d) bars (the file has 1 row(s); first missing bar 2021-01-02)",
    ),
    (
        "head_cut",
        daily(10, start="2021-01-03"),
        "would drop 2 of the 10 cached BTC-USD (1d) bars (the file has 10 row(s); first missing bar 2021-01-01)",
    ),
    (
        "hole",
        _without(daily(12), "2021-01-05"),
        "would drop 1 of the 10 cached BTC-USD (1d) bars (the file has 11 row(s); first missing bar 2021-01-05)",
    ),
]
REWRITE = [
    ("close", daily(12, close={"2021-01-07": "106.5"}), "2021-01-07 (close 106 cached, 106.5 in the file)"),
    ("adj_close", daily(12, adj_close={"2021-01-07": "53"}), "2021-01-07 (adj_close 106 cached, 53 in the file)"),
    ("volume", daily(12, volume={"2021-01-03": "999"}), "2021-01-03 (volume 1000 cached, 999 in the file)"),
]


@pytest.mark.parametrize("via_folder", [False, True], ids=["file", "folder"])
@pytest.mark.parametrize(("text", "says"), [pytest.param(t, s, id=i) for i, t, s in SHRINK])
def test_an_import_that_would_drop_cached_bars_is_refused(tmp_path, seeded, text, says, via_folder):
    path = put(tmp_path / "new", "BTC-USD.csv", text)
    call = (lambda: import_files([path], cache=seeded)) if via_folder else (lambda: import_file(path, cache=seeded))
    refused(call, f"{path}: importing it {says}; {REPLACE}", seeded.root)
    assert seeded.info("BTC-USD")["rows"] == 10


@pytest.mark.parametrize(("text", "where"), [pytest.param(t, w, id=i) for i, t, w in REWRITE])
def test_an_import_that_would_rewrite_cached_history_is_refused(tmp_path, seeded, text, where):
    path = put(tmp_path / "new", "BTC-USD.csv", text)
    refused(
        lambda: import_file(path, cache=seeded),
        f"{path}: 1 cached BTC-USD (1d) bar(s) differ in the file, first on {where}; "
        f"importing it would rewrite history; {REPLACE}",
        seeded.root,
    )


def test_an_import_that_extends_a_series_is_allowed_and_a_repeat_changes_nothing(tmp_path, seeded):
    path = put(tmp_path / "new", "BTC-USD.csv", daily(12))
    filled = import_file(path, cache=seeded)
    assert (filled.added, filled.meta["rows"], filled.meta["last"]) == (2, 12, "2021-01-12T00:00:00+00:00")
    assert seeded.read("BTC-USD")["close"].tolist() == [100.0 + i for i in range(12)]
    assert {n for n in tree(seeded.root) if n.startswith("BTC")} == {
        "BTC-USD__1d.json",
        f"BTC-USD__1d.{filled.meta['fingerprint']}.parquet",
    }
    before = tree(seeded.root)
    again = import_file(path, cache=seeded)
    assert (again.added, again.meta) == (0, filled.meta)
    assert tree(seeded.root) == before  # not even fetched_at is rewritten


def test_replace_overwrites_a_series_on_purpose(tmp_path, seeded):
    filled = import_file(put(tmp_path / "new", "BTC-USD.csv", daily(1)), cache=seeded, replace=True)
    assert (filled.added, filled.meta["rows"]) == (1, 1)
    assert seeded.info("BTC-USD")["rows"] == 1
    assert {n for n in tree(seeded.root) if n.startswith("BTC")} == {
        "BTC-USD__1d.json",
        f"BTC-USD__1d.{filled.meta['fingerprint']}.parquet",
    }  # the 10-bar version is gone


def test_the_real_btc_series_is_not_replaced_by_a_one_row_file(tmp_path, cache, data_dir):
    assert import_file(data_dir / "BTC-USD.csv", cache=cache).meta["rows"] == 4357
    first = (data_dir / "BTC-USD.csv").read_text().splitlines()[:2]
    path = put(tmp_path, "BTC-USD.csv", "\n".join(first) + "\n")
    refused(
        lambda: import_file(path, cache=cache),
        f"{path}: importing it would drop 4356 of the 4357 cached BTC-USD (1d) bars "
        f"(the file has 1 row(s); first missing bar 2014-09-18); {REPLACE}",
        cache.root,
    )


# ---------------------------------------------------------------- a folder is imported all or nothing

FOLDER_BAD = [
    ("missing_column", "DOGE-USD.csv", "Date,Open,High,Close\n2021-01-01,1,2,1.5\n", "missing column(s) low"),
    ("jump", "DOGE-USD.csv", daily(3, closes=[2.0, 2.0, 2000.0]), "close jumps 1,000x on 2021-01-03"),
    ("absurd", "DOGE-USD.csv", daily(3, closes=[2.0, 1e300, 2.0]), "absurd price close 1e+300 on 2021-01-02"),
    ("pre_1900", "DOGE-USD.csv", daily(2, start="1899-12-31"), "bars before 1900 on 1899-12-31"),
    ("future", "DOGE-USD.csv", daily(2, start="2099-01-01"), "2 bar(s) in the future"),
    (
        "bad_adj_close",
        "DOGE-USD.csv",
        daily(3, adj_close={"2021-01-02": "-4"}),
        "zero or negative prices on 2021-01-02",
    ),
    ("shrinks_a_cached_series", "BTC-USD.csv", daily(1), "importing it would drop 9 of the 10 cached BTC-USD"),
]


@pytest.mark.parametrize(("name", "text", "fragment"), [pytest.param(n, t, f, id=i) for i, n, t, f in FOLDER_BAD])
def test_a_folder_with_one_bad_file_changes_nothing_and_names_it(tmp_path, seeded, name, text, fragment):
    folder = tmp_path / "folder"
    put(folder, "ADA-USD.csv", daily(4))  # new series
    put(folder, "ETH-USD.csv", daily(7))  # extends a cached one
    put(folder, "XRP-USD.csv", daily(4))
    bad = put(folder, name, text)
    before = tree(seeded.root)
    with pytest.raises(DataError) as err:
        import_files(sorted(folder.iterdir()), cache=seeded)
    assert str(err.value).startswith(f"{bad}: ") and fragment in str(err.value)
    assert tree(seeded.root) == before
    assert seeded.list()["symbol"].tolist() == ["BTC-USD", "ETH-USD"]


def test_a_folder_holding_one_series_twice_is_refused(tmp_path, cache):
    folder = tmp_path / "folder"
    first = put(folder, "ETH-USD.csv", daily(3))
    second = put(folder, "eth-usd.csv", daily(4))
    refused(
        lambda: import_files([first, second], cache=cache),
        f"{second}: ETH-USD (1d) is also in {first}; import one file per series",
        tmp_path,
    )
    assert not cache.root.exists()


def test_a_good_folder_commits_every_series_and_leaves_no_temporary_file(tmp_path, seeded):
    folder = tmp_path / "folder"
    for name, n in (("ADA-USD.csv", 4), ("BTC-USD.csv", 12), ("ETH-USD.csv", 5), ("XRP-USD.csv", 6)):
        put(folder, name, daily(n))
    eth_before = tree(seeded.root)["ETH-USD__1d.json"]
    filled = import_files(sorted(folder.iterdir()), cache=seeded)
    assert [(f.meta["symbol"], f.meta["rows"], f.added) for f in filled] == [
        ("ADA-USD", 4, 4),
        ("BTC-USD", 12, 2),
        ("ETH-USD", 5, 0),
        ("XRP-USD", 6, 6),
    ]
    listed = seeded.list(verify=True)
    assert listed[["symbol", "rows"]].values.tolist() == [
        ["ADA-USD", 4],
        ["BTC-USD", 12],
        ["ETH-USD", 5],
        ["XRP-USD", 6],
    ]
    assert listed["problem"].isna().all()
    names = sorted(tree(seeded.root))
    assert not [n for n in names if n.startswith(".")]
    # a JSON and a Parquet file per series, and BTC-USD's replaced version kept for runs stored against it
    assert (
        len([n for n in names if "/" not in n]) == 8
        and [n for n in names if "/" in n] == [n for n in names if n.startswith("versions/BTC-USD__1d.")]
        and len([n for n in names if "/" in n]) == 1
    )
    assert tree(seeded.root)["ETH-USD__1d.json"] == eth_before  # unchanged content, untouched file


# ---------------------------------------------------------------- a failure or a crash halfway through a folder commit


def _folder(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "folder"
    return [put(folder, "ADA-USD.csv", daily(4)), put(folder, "BTC-USD.csv", daily(12))]  # one new, one extended


def _committed(cache: Cache) -> None:
    fresh = Cache(cache.root)
    assert fresh.list(verify=True)[["symbol", "rows"]].values.tolist() == [
        ["ADA-USD", 4],
        ["BTC-USD", 12],
        ["ETH-USD", 5],
    ]
    assert not [n for n in tree(cache.root) if n.startswith(".")]
    top = [n for n in tree(cache.root) if "/" not in n]
    assert len(top) == 6  # a JSON and one Parquet file per series; BTC-USD's replaced version under versions/
    assert [n.split(".")[0] for n in tree(cache.root) if "/" in n] == ["versions/BTC-USD__1d"]


def _count_replaces(tmp_path: Path, monkeypatch) -> int:
    """How many os.replace calls a successful commit of the folder makes (on a copy of the seeded cache)."""
    probe = Cache(tmp_path / "probe")
    import_file(put(tmp_path / "p", "BTC-USD.csv", daily(10)), cache=probe)
    import_file(put(tmp_path / "p", "ETH-USD.csv", daily(5)), cache=probe)
    real, calls = os.replace, []
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append(b), real(a, b))[1])
    import_files(_folder(tmp_path / "probe-src"), cache=probe)
    monkeypatch.setattr(os, "replace", real)
    return len(calls)


def test_a_folder_commit_makes_eight_renames(tmp_path, monkeypatch):
    # journal begun, journal prepared, 2 Parquet files, 2 JSONs, journal committed (the commit point), then
    # BTC-USD's replaced Parquet file moved under versions/ (kept for stored runs that read it)
    assert _count_replaces(tmp_path, monkeypatch) == 8


@pytest.mark.parametrize("persistent", [False, True], ids=["one-fault", "disk-stays-full"])
@pytest.mark.parametrize("failing_call", range(1, 8))
def test_a_full_disk_halfway_through_a_folder_commit_leaves_the_cache_as_before(
    tmp_path, seeded, monkeypatch, failing_call, persistent
):
    files = _folder(tmp_path)
    before = tree(seeded.root)
    real, calls = os.replace, []

    def replace(a, b):
        calls.append(b)
        if len(calls) == failing_call or (persistent and len(calls) > failing_call):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(a, b)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError) as err:
        import_files(files, cache=seeded)
    assert err.value.errno == errno.ENOSPC  # the fault really fired
    monkeypatch.setattr(os, "replace", real)
    # a fault that persists can stop the roll-back too: the journal then makes the next open finish it
    fresh = Cache(seeded.root)
    assert fresh.list(verify=True)[["symbol", "rows"]].values.tolist() == [["BTC-USD", 10], ["ETH-USD", 5]]
    assert tree(seeded.root) == before
    # and the cache keeps working
    import_files(files, cache=fresh)
    _committed(fresh)


def _die_at(root: str, files: list[str], call: int, after: bool) -> None:
    """In a forked child: import ``files`` and die like kill -9 at the ``call``-th os.replace."""
    real, calls = os.replace, []

    def replace(a, b):
        calls.append(b)
        if len(calls) == call and not after:
            os._exit(17)
        real(a, b)
        if len(calls) == call:
            os._exit(17)

    os.replace = replace
    import_files([Path(f) for f in files], cache=Cache(root))
    os._exit(0)


@pytest.mark.parametrize(
    ("call", "after"),
    [(c, False) for c in range(1, 8)] + [(c, True) for c in range(1, 8)],
    ids=[f"before-{c}" for c in range(1, 8)] + [f"after-{c}" for c in range(1, 8)],
)
def test_a_process_killed_halfway_through_a_folder_commit_leaves_before_or_after(tmp_path, seeded, call, after):
    files = _folder(tmp_path)
    before = tree(seeded.root)
    child = mp.get_context("fork").Process(
        target=_die_at, args=(str(seeded.root), [str(f) for f in files], call, after)
    )
    child.start()
    child.join(60)
    assert child.exitcode == 17
    fresh = Cache(seeded.root)
    fresh.recover()  # what any writer does first; reads roll back a journal on their own
    if call == 7 and after:  # the commit point was passed: the next open finishes the commit
        _committed(fresh)
    else:
        assert fresh.list(verify=True)[["symbol", "rows"]].values.tolist() == [["BTC-USD", 10], ["ETH-USD", 5]]
        assert tree(seeded.root) == before


def test_reads_roll_back_an_interrupted_commit_by_themselves(tmp_path, seeded):
    files = _folder(tmp_path)
    before = tree(seeded.root)
    child = mp.get_context("fork").Process(target=_die_at, args=(str(seeded.root), [str(f) for f in files], 5, True))
    child.start()
    child.join(60)
    assert child.exitcode == 17
    assert ".riskon-commit.journal" in tree(seeded.root)  # ADA-USD's new JSON is in place, BTC-USD's is not
    assert "ADA-USD__1d.json" in tree(seeded.root)
    assert Cache(seeded.root).info("BTC-USD")["rows"] == 10  # the read rolled the commit back first
    assert tree(seeded.root) == before
    assert not Cache(seeded.root).has("ADA-USD")


# ---------------------------------------------------------------- refused bars: future, before 1900, absurd, jumps

NOW = pd.Timestamp("2021-01-10 12:00", tz="UTC")


def test_the_bar_in_progress_is_accepted_and_a_bar_after_now_is_refused(tmp_path, cache):
    ok = put(tmp_path / "a", "BTC-USD.csv", daily(10))  # the last bar opened at 2021-01-10 00:00, now is 12:00
    assert import_file(ok, cache=cache, now=NOW).meta["last"] == "2021-01-10T00:00:00+00:00"
    bad = put(tmp_path / "b", "BTC-USD.csv", daily(11))
    refused(
        lambda: import_file(bad, cache=cache, now=NOW),
        f"{bad}: 1 bar(s) in the future (after 2021-01-10 12:00 UTC) on 2021-01-11; "
        "check the dates, the file's time zone and the clock",
        cache.root,
    )


def test_the_clock_can_be_patched_where_no_now_is_passed(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(feeds.clock, "utc_now", lambda: NOW)
    bad = put(tmp_path, "ETH-USD.csv", daily(12))
    refused(
        lambda: import_files([bad], cache=cache),
        f"{bad}: 2 bar(s) in the future (after 2021-01-10 12:00 UTC) on 2021-01-11, 2021-01-12; "
        "check the dates, the file's time zone and the clock",
        tmp_path,
    )


@pytest.mark.parametrize(("now", "accepted"), [("2021-01-11 04:59", False), ("2021-01-11 05:00", True)])
def test_a_new_york_session_starts_at_new_york_midnight(tmp_path, cache, now, accepted):
    days = ["2021-01-07", "2021-01-08", "2021-01-11"]  # Thu, Fri, Mon: 2021-01-11 opens at 05:00 UTC
    path = put(tmp_path, "IWM.csv", _rows(days))
    stamp = pd.Timestamp(now, tz="UTC")
    if accepted:
        assert import_file(path, cache=cache, now=stamp).meta["last"] == "2021-01-11T05:00:00+00:00"
    else:
        refused(
            lambda: import_file(path, cache=cache, now=stamp),
            f"{path}: 1 bar(s) in the future (after 2021-01-11 04:59 UTC) on 2021-01-11; "
            "check the dates, the file's time zone and the clock",
            tmp_path,
        )


def test_an_hourly_bar_after_now_is_refused_with_its_hour(tmp_path, cache):
    hours = pd.date_range("2021-01-10 10:00", periods=4, freq="h")  # 10:00 .. 13:00, now 12:30
    path = put(
        tmp_path, "BTC-USD.csv", "\n".join([YH, *(f"{t:%Y-%m-%dT%H:%M:%SZ},1,2,0.5,1,1,1" for t in hours)]) + "\n"
    )
    refused(
        lambda: import_file(path, cache=cache, timeframe="1h", now=pd.Timestamp("2021-01-10 12:30", tz="UTC")),
        f"{path}: 1 bar(s) in the future (after 2021-01-10 12:30 UTC) on 2021-01-10 13:00; "
        "check the dates, the file's time zone and the clock",
        tmp_path,
    )


def _rows(days: list[str]) -> str:
    return "\n".join([YH, *(f"{d},10,11,9,10.5,10.5,100" for d in days)]) + "\n"


@pytest.mark.parametrize(
    "days",
    [["1899-12-30", "1899-12-31"], ["0021-01-01", "0021-01-02"], ["1850-06-01", "1850-06-02"], ["0001-01-01"]],
    ids=["1899", "year-21", "1850", "year-1"],
)
def test_bars_before_1900_are_refused(tmp_path, cache, days):
    path = put(tmp_path, "BTC-USD.csv", _rows(days))
    refused(
        lambda: import_file(path, cache=cache),
        f"{path}: bars before 1900 on {', '.join(days)}; "
        "check the date column (two-digit years, or the wrong epoch unit)",
        tmp_path,
    )


def test_an_index_session_before_1900_is_refused_by_its_new_york_date(tmp_path, cache):
    path = put(tmp_path, "RUT.csv", _rows(["1899-12-29"]))
    refused(
        lambda: import_file(path, cache=cache),
        f"{path}: bars before 1900 on 1899-12-29; check the date column (two-digit years, or the wrong epoch unit)",
        tmp_path,
    )


@pytest.mark.parametrize(
    ("closes", "says"),
    [
        ([2.0, 1e300, 2.0], "absurd price close 1e+300 on 2021-01-02 (prices above 1e+12 are refused; 1 bar(s))"),
        ([1e13, 1e13, 1e13], "absurd price close 1e+13 on 2021-01-01 (prices above 1e+12 are refused; 3 bar(s))"),
    ],
    ids=["1e300", "1e13"],
)
def test_absurd_prices_are_refused(tmp_path, cache, closes, says):
    path = put(tmp_path, "BTC-USD.csv", daily(3, closes=closes))
    refused(lambda: import_file(path, cache=cache), f"{path}: {says}; check the file's units and values", tmp_path)


def test_a_price_just_under_the_limit_is_kept(tmp_path, cache):
    path = put(tmp_path, "BTC-USD.csv", daily(3, closes=[9e11, 9e11, 9e11]))
    assert cache.read(import_file(path, cache=cache).meta["symbol"])["close"].tolist() == [9e11] * 3


JUMP_TAIL = "fix the file (a unit or decimal slip?) or, if it is real, import with --allow-jumps (allow_jumps=True)"


@pytest.mark.parametrize(
    ("closes", "says"),
    [
        ([2.0, 2.0, 2000.0, 2000.0], "close jumps 1,000x on 2021-01-03, from 2 on 2021-01-02 to 2000"),
        ([2000.0, 2.0, 2.0], "close falls 1,000x on 2021-01-02, from 2000 on 2021-01-01 to 2"),
        ([3.0, 30000.0, 3.0], "close jumps 10,000x on 2021-01-02, from 3 on 2021-01-01 to 30000 (2 such jumps)"),
    ],
    ids=["up", "down", "up-and-back"],
)
def test_a_1000x_jump_is_refused_naming_its_date_unless_allowed(tmp_path, cache, closes, says):
    path = put(tmp_path, "BTC-USD.csv", daily(len(closes), closes=closes))
    refused(lambda: import_file(path, cache=cache), f"{path}: {says}; {JUMP_TAIL}", tmp_path)
    filled = import_file(path, cache=cache, allow_jumps=True)
    assert cache.read("BTC-USD")["close"].tolist() == closes
    (move,) = [w for w in filled.warnings if w.kind == "large_move"]
    assert move.dates[0] == says.split(" on ")[1].split(",")[0]


def test_a_999x_move_is_only_a_warning(tmp_path, cache):
    path = put(tmp_path, "BTC-USD.csv", daily(2, closes=[2.0, 1998.0]))
    filled = import_file(path, cache=cache)
    assert [(w.kind, w.dates) for w in filled.warnings] == [("large_move", ("2021-01-02",))]


# ---------------------------------------------------------------- adj_close is a price like the others


@pytest.mark.parametrize(
    ("cell", "says"),
    [
        ("-4", "zero or negative prices on 2021-01-02 (adj_close); prices must be positive"),
        ("0", "zero or negative prices on 2021-01-02 (adj_close); prices must be positive"),
        ("", "missing (NaN) prices on 2021-01-02 (adj_close); fill or delete those rows and import again"),
        ("null", "missing (NaN) prices on 2021-01-02 (adj_close); fill or delete those rows and import again"),
        ("inf", "infinite values on 2021-01-02"),
        (
            "1e300",
            "absurd price adj_close 1e+300 on 2021-01-02 (prices above 1e+12 are refused; 1 bar(s)); "
            "check the file's units and values",
        ),
    ],
    ids=["negative", "zero", "empty", "null", "inf", "1e300"],
)
def test_a_bad_adj_close_is_refused(tmp_path, seeded, cell, says):
    path = put(tmp_path / "new", "BTC-USD.csv", daily(12, adj_close={"2021-01-02": cell}))
    refused(lambda: import_file(path, cache=seeded, replace=True), f"{path}: {says}", seeded.root)


# ---------------------------------------------------------------- symbol names: Yahoo's are case-insensitive


def test_a_lower_case_yahoo_file_imports_under_the_upper_case_symbol(tmp_path, cache):
    meta = import_file(put(tmp_path / "a", "eth-usd.csv", daily(5)), cache=cache).meta
    assert (meta["symbol"], meta["source"]) == ("ETH-USD", "csv:eth-usd.csv")
    assert set(tree(cache.root)) == {"ETH-USD__1d.json", f"ETH-USD__1d.{meta['fingerprint']}.parquet"}
    assert cache.has("eth-usd") and cache.has("Eth-Usd")
    assert cache.read("eth-usd").attrs["symbol"] == "ETH-USD"
    # the same series under another spelling: a shorter file is refused like any shrinking import
    upper = put(tmp_path / "b", "ETH-USD.csv", daily(2))
    refused(
        lambda: import_file(upper, cache=cache),
        f"{upper}: importing it would drop 3 of the 5 cached ETH-USD (1d) bars (the file has 2 row(s); "
        "first missing bar 2021-01-03); the cache is unchanged; to replace ETH-USD on purpose, "
        "import with --replace (replace=True)",
        cache.root,
    )


@pytest.mark.parametrize(
    ("name", "symbol", "expected"),
    [
        ("export.csv", "btc-usd", "BTC-USD"),
        ("rut.csv", None, "^RUT"),
        ("x.csv", "^rut", "^RUT"),
        ("binance_btc-usdt_1d.csv", None, "binance:BTC/USDT"),
        ("x.csv", "Binance:eth/usdt", "binance:ETH/USDT"),
    ],
)
def test_symbols_are_folded_to_one_spelling(tmp_path, cache, name, symbol, expected):
    if expected.startswith("binance:"):
        text = "timestamp,open,high,low,close,volume\n1609459200000,1,2,0.5,1.5,3\n1609545600000,1,2,0.5,1.5,3\n"
    elif expected == "^RUT":
        text = f"{YH}\n2021-01-04,10,11,9,10.5,10.5,100\n2021-01-05,10,11,9,10.5,10.5,100\n"
    else:
        text = daily(2)
    assert import_file(put(tmp_path, name, text), symbol=symbol, cache=cache).meta["symbol"] == expected
    assert cache.list()["symbol"].tolist() == [expected]


def test_riskon_data_files_are_found_case_insensitively(tmp_path, cache, monkeypatch):
    folder = tmp_path / "data"
    put(folder, "sol-usd.csv", daily(4))
    monkeypatch.setenv("RISKON_DATA", str(folder))
    said = []
    frame = load("SOL-USD", cache=cache, announce=said.append)
    assert said == [f"cache: filled SOL-USD from {folder / 'sol-usd.csv'} (4 rows)"]
    assert len(frame) == 4 and frame.attrs["symbol"] == "SOL-USD"
    pd.testing.assert_frame_equal(load("sol-usd", cache=cache), frame)
    put(folder, "SOL-USD.csv", daily(4))
    refused(
        lambda: load("Sol-Usd", cache=Cache(tmp_path / "other")),
        f"RISKON_DATA={folder} has 2 files for SOL-USD (1d): SOL-USD.csv, sol-usd.csv; keep one",
        tmp_path,
    )


# ---------------------------------------------------------------- hourly bars under a daily name


def _hourly(n: int, start: str = "2021-01-01", step: str = "h") -> str:
    stamps = pd.date_range(start, periods=n, freq=step)
    return "\n".join([YH, *(f"{t:%Y-%m-%d %H:%M:%S},1,2,0.5,1,1,1" for t in stamps)]) + "\n"


def _ms_hourly(n: int) -> str:
    stamps = pd.date_range("2021-01-01", periods=n, freq="h", tz="UTC")
    return (
        "\n".join(["timestamp,open,high,low,close,volume", *(f"{t.value // 10**6},1,2,0.5,1,1" for t in stamps)]) + "\n"
    )


@pytest.mark.parametrize(
    ("name", "text", "found"),
    [
        ("BTC-USD.csv", _hourly(48), "1h"),
        ("binance_BTC-USDT_1d.csv", _ms_hourly(48), "1h"),
        ("BTC-USD.csv", _hourly(12, step="4h"), "4h"),
        ("BTC-USD.csv", _hourly(20, step="90min"), "90m"),
    ],
    ids=["yahoo-name", "exchange-name", "4h", "90m"],
)
def test_bars_finer_than_the_declared_timeframe_are_refused(tmp_path, seeded, name, text, found):
    path = put(tmp_path / "new", name, text)
    kind = {"1h": "hourly", "4h": "4h", "90m": "90m"}[found]
    refused(
        lambda: import_file(path, cache=seeded, replace=True),
        f"{path}: the bars are {found} apart (median spacing) but the series is declared 1d: {kind} bars under a "
        f"daily name or timeframe; import it with --timeframe {found} (timeframe='{found}') or use daily bars",
        seeded.root,
    )
    meta = import_file(path, cache=seeded, timeframe=found).meta  # said on purpose: its own series
    assert (meta["timeframe"], meta["rows"]) == (found, len(text.splitlines()) - 1)
    if meta["symbol"] == "BTC-USD":  # the daily series beside it is untouched
        assert seeded.info("BTC-USD", "1d")["rows"] == 10


# ---------------------------------------------------------------- the cache's metadata is checked, never trusted


def _json(cache: Cache) -> Path:
    return cache.root / "BTC-USD__1d.json"


MALFORMED = [
    ("list", [], "not a JSON object but an array"),
    ("string", "BTC", "not a JSON object but a string"),
    ("number", 7, "not a JSON object but a number"),
    ("empty_object", {}, "missing key(s) symbol, source, timeframe, tz, first, last, rows, fingerprint, file"),
    ("missing_file", {"file": None}, "missing key(s) file"),
    ("file_climbs_out", {"file": "../../etc/passwd"}, "its file entry '../../etc/passwd' points outside the cache"),
    ("file_absolute", {"file": "/etc/passwd"}, "its file entry '/etc/passwd' points outside the cache"),
    ("file_dotdot", {"file": ".."}, "its file entry '..' points outside the cache"),
    ("file_other_name", {"file": "ETH-USD__1d.json"}, "its file entry 'ETH-USD__1d.json' is not {expected!r}"),
    ("rows_text", {"rows": "10"}, "rows is '10', not an integer"),
    ("rows_bool", {"rows": True}, "rows is True, not an integer"),
    ("rows_zero", {"rows": 0}, "rows is 0"),
    ("other_series", {"symbol": "ETH-USD"}, "it describes 'ETH-USD' ('1d')"),
    ("other_timeframe", {"timeframe": "1h"}, "it describes 'BTC-USD' ('1h')"),
    ("traversal_symbol", {"symbol": "../OUTSIDE"}, "it describes '../OUTSIDE' ('1d')"),
    ("fingerprint_path", {"fingerprint": "../x"}, "fingerprint '../x' is not 16 hex digits"),
    ("tz_path", {"tz": "../../etc/passwd"}, "tz '../../etc/passwd' is not a time zone"),
    ("first_not_a_time", {"first": "yesterday"}, "first 'yesterday' is not a time"),
]


@pytest.mark.parametrize(("change", "why"), [pytest.param(c, w, id=i) for i, c, w in MALFORMED])
def test_malformed_metadata_is_one_line_naming_the_series_and_the_repair(tmp_path, seeded, change, why):
    good = json.loads(_json(seeded).read_text())
    if isinstance(change, dict) and change:  # a change to the good metadata (None deletes a key)
        bad = {k: v for k, v in {**good, **change}.items() if v is not None or k not in change}
    else:  # a whole replacement
        bad = change
    _json(seeded).write_text(json.dumps(bad))
    why = why.format(expected=good["file"])
    message = (
        f"cached BTC-USD (1d) metadata {_json(seeded)} is malformed ({why}); "
        f"delete {_json(seeded)} and import BTC-USD again (or import it with --replace)"
    )
    for call in (seeded.meta, seeded.read, seeded.info):
        refused(lambda call=call: call("BTC-USD"), message, seeded.root)
    newer = put(tmp_path / "new", "BTC-USD.csv", daily(12))
    refused(lambda: import_file(newer, cache=seeded), message, seeded.root)
    assert seeded.list()["symbol"].tolist() == ["ETH-USD"]  # a listing skips it ...
    listed = seeded.list(verify=True).set_index("symbol")  # ... or, verifying, shows why
    assert listed.loc["BTC-USD", "problem"] == message and listed["problem"].isna().sum() == 1
    # the repair the message names works, and removes the old Parquet file
    meta = import_file(newer, cache=seeded, replace=True).meta
    assert seeded.info("BTC-USD")["rows"] == 12
    assert {n for n in tree(seeded.root) if n.startswith("BTC")} == {"BTC-USD__1d.json", meta["file"]}


def test_unparseable_metadata_is_one_line_too(seeded):
    _json(seeded).write_text("{ half a json")
    refused(
        lambda: seeded.read("BTC-USD"),
        f"cached BTC-USD (1d) metadata {_json(seeded)} is unreadable (JSONDecodeError); "
        f"delete {_json(seeded)} and import BTC-USD again (or import it with --replace)",
        seeded.root,
    )


def test_a_file_entry_naming_a_good_parquet_file_outside_the_cache_is_not_followed(tmp_path, seeded):
    good = json.loads(_json(seeded).read_text())
    outside = tmp_path / "outside.parquet"
    outside.write_bytes((seeded.root / good["file"]).read_bytes())  # valid data, right fingerprint
    (seeded.root / good["file"]).unlink()
    _json(seeded).write_text(json.dumps({**good, "file": "../outside.parquet"}))
    refused(
        lambda: seeded.read("BTC-USD"),
        f"cached BTC-USD (1d) metadata {_json(seeded)} is malformed (its file entry '../outside.parquet' points "
        f"outside the cache); delete {_json(seeded)} and import BTC-USD again (or import it with --replace)",
        tmp_path,
    )


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"rows": 4357}, "it says 4357 rows 2021-01-01T00:00:00+00:00 .. 2021-01-10T00:00:00+00:00"),
        (
            {"first": "2014-09-17T00:00:00+00:00"},
            "it says 10 rows 2014-09-17T00:00:00+00:00 .. 2021-01-10T00:00:00+00:00",
        ),
        (
            {"last": "2026-08-21T00:00:00+00:00"},
            "it says 10 rows 2021-01-01T00:00:00+00:00 .. 2026-08-21T00:00:00+00:00",
        ),
    ],
    ids=["rows", "first", "last"],
)
def test_metadata_that_disagrees_with_the_data_is_refused(seeded, change, says):
    good = json.loads(_json(seeded).read_text())
    _json(seeded).write_text(json.dumps({**good, **change}))
    message = (
        f"cached BTC-USD (1d) metadata {_json(seeded)} disagrees with its data: {says}, the data holds "
        f"10 rows 2021-01-01T00:00:00+00:00 .. 2021-01-10T00:00:00+00:00; "
        f"delete {_json(seeded)} and import BTC-USD again"
    )
    refused(lambda: seeded.info("BTC-USD"), message, seeded.root)
    refused(lambda: seeded.read("BTC-USD"), message, seeded.root)
    assert seeded.list(verify=True).set_index("symbol").loc["BTC-USD", "problem"] == message


def test_info_gives_numbers_recomputed_from_the_data(seeded):
    info = seeded.info("btc-usd")
    assert (info["symbol"], info["rows"], info["first"], info["last"]) == (
        "BTC-USD",
        10,
        "2021-01-01T00:00:00+00:00",
        "2021-01-10T00:00:00+00:00",
    )
    assert info["fingerprint"] == seeded.read("BTC-USD").attrs["fingerprint"]


def test_a_parquet_file_swapped_for_another_series_is_caught_by_its_fingerprint(seeded):
    btc, eth = json.loads(_json(seeded).read_text()), json.loads((seeded.root / "ETH-USD__1d.json").read_text())
    (seeded.root / btc["file"]).write_bytes((seeded.root / eth["file"]).read_bytes())
    refused(
        lambda: seeded.info("BTC-USD"),
        f"cached BTC-USD (1d) data {seeded.root / btc['file']} does not match its fingerprint; "
        f"delete {_json(seeded)} and import BTC-USD again (or import it with --replace)",
        seeded.root,
    )


# ---------------------------------------------------------------- no symbol leads out of RISKON_DATA or RISKON_CACHE

TRAVERSAL = [
    "../OUTSIDE",
    "..",
    "../../etc/passwd",
    "/etc/passwd",
    "a/b",
    "..\\OUTSIDE",
    "x\x00y",
    ".hidden",
    "C:x",
    "A..B",
]


@pytest.mark.parametrize("symbol", TRAVERSAL)
def test_a_symbol_that_is_a_path_is_refused_everywhere(tmp_path, seeded, monkeypatch, symbol):
    data = tmp_path / "data"
    put(data, "BTC-USD.csv", daily(3))
    put(tmp_path, "OUTSIDE.csv", daily(3))  # what ../OUTSIDE would reach
    monkeypatch.setenv("RISKON_DATA", str(data))
    message = f"symbol {symbol!r} {BAD_SYMBOL}"
    frame = seeded.read("ETH-USD")
    frame.attrs["symbol"] = symbol
    calls = [
        lambda: load(symbol, cache=seeded),
        lambda: seeded.has(symbol),
        lambda: seeded.read(symbol),
        lambda: seeded.write(frame),
        lambda: seeded.write_many([frame]),
        lambda: import_file(data / "BTC-USD.csv", symbol=symbol, cache=seeded),
    ]
    for call in calls:
        refused(call, message, tmp_path)  # nothing read or written anywhere under tmp_path


def test_a_link_in_riskon_data_that_leads_outside_is_not_followed(tmp_path, cache, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    outside = put(tmp_path / "secret", "BTC-USD.csv", daily(3))
    (data / "BTC-USD.csv").symlink_to(outside)
    monkeypatch.setenv("RISKON_DATA", str(data))
    refused(
        lambda: load("BTC-USD", cache=cache),
        f"{data / 'BTC-USD.csv'} resolves to {outside}, outside RISKON_DATA={data}; "
        "riskon reads only files inside that folder",
        tmp_path,
    )
    assert not cache.root.exists()


def test_a_commit_journal_naming_paths_outside_the_cache_is_refused(tmp_path, seeded):
    victim = put(tmp_path, "victim.txt", "keep me")
    journal = {
        "txn": "0" * 16,
        "state": "prepared",
        "entries": [{"key": "k", "json": "../victim.txt", "data": "x", "backup": None}],
    }
    (seeded.root / ".riskon-commit.journal").write_text(json.dumps(journal))
    refused(
        lambda: seeded.read("BTC-USD"),
        f"the cache {seeded.root} holds an unreadable commit journal {seeded.root / '.riskon-commit.journal'}; "
        "delete it, then check the cache with `riskon data list`",
        tmp_path,
    )
    assert victim.read_text() == "keep me"
