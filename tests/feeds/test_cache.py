"""The Parquet cache: round trip, fingerprints, incremental updates, and crashes that corrupt nothing."""

from __future__ import annotations

import io
import multiprocessing as mp
import os
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

import feeds.cache
from feeds.cache import Cache, fingerprint
from feeds.errors import DataError
from feeds.frame import COLUMNS, SeriesMeta, attach


def make_frame(n: int = 6, start: str = "2021-01-01", symbol: str = "BTC-USD", source: str = "test") -> pd.DataFrame:
    """A small normalised daily frame with distinct values in every cell."""
    idx = pd.date_range(start, periods=n, freq="D", tz="UTC", unit="us", name="time")
    close = 100.0 + np.arange(n) * 1.5
    frame = pd.DataFrame(
        {
            "open": close - 0.5,
            "high": close + 2.0,
            "low": close - 2.0,
            "close": close,
            "volume": 1000.0 + np.arange(n),
            "adj_close": close * 0.99,
        },
        index=idx,
    )
    return attach(frame, SeriesMeta(symbol, source, "1d", "UTC"))


def files_of(cache: Cache) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(cache.root.iterdir()) if p.is_file()}


def test_round_trip_returns_exactly_what_was_written(cache):
    frame = make_frame()
    meta = cache.write(frame)
    back = cache.read("BTC-USD", "1d")

    pd.testing.assert_frame_equal(back, frame, check_freq=False)
    assert str(back.index.dtype) == "datetime64[us, UTC]" and back.index.name == "time"
    assert list(back.columns) == list(COLUMNS)
    assert back.attrs == {
        "symbol": "BTC-USD",
        "source": "test",
        "timeframe": "1d",
        "tz": "UTC",
        "fingerprint": fingerprint(frame),
    }
    assert meta == cache.meta("BTC-USD", "1d")
    assert meta["symbol"] == "BTC-USD" and meta["source"] == "test" and meta["timeframe"] == "1d"
    assert meta["first"] == "2021-01-01T00:00:00+00:00" and meta["last"] == "2021-01-06T00:00:00+00:00"
    assert meta["rows"] == 6
    assert meta["fingerprint"] == fingerprint(frame) == fingerprint(back)
    assert abs(datetime.fromisoformat(meta["fetched_at"]) - datetime.now(tz=back.index.tz)) < timedelta(minutes=5)
    assert set(files_of(cache)) == {"BTC-USD__1d.json", f"BTC-USD__1d.{meta['fingerprint']}.parquet"}


def test_symbols_with_slashes_carets_and_colons_round_trip(cache):
    for sym in ("^RUT", "binance:BTC/USDT"):
        cache.write(make_frame(symbol=sym))
        assert cache.read(sym).attrs["symbol"] == sym
    assert cache.has("binance:BTC/USDT") and not cache.has("binance:BTC/USDT", "1h")
    assert all("/" not in p.name and ":" not in p.name for p in cache.root.iterdir())


def test_fingerprint_is_stable_and_changes_with_any_value(cache):
    frame = make_frame()
    fp = fingerprint(frame)
    assert fp == fingerprint(frame.copy()) == fingerprint(make_frame(source="other"))  # content, not metadata
    seen = {fp}
    for col in COLUMNS:
        for row in (0, 3, 5):
            changed = frame.copy()
            changed.iloc[row, changed.columns.get_loc(col)] *= 1 + 1e-12
            seen.add(fingerprint(changed))
    shifted = frame.copy()
    shifted.index = shifted.index + pd.Timedelta(microseconds=1)
    seen.add(fingerprint(shifted))
    nan_volume = frame.copy()
    nan_volume.iloc[2, nan_volume.columns.get_loc("volume")] = np.nan
    seen.add(fingerprint(nan_volume))
    seen.add(fingerprint(frame.iloc[:-1]))
    assert len(seen) == 1 + len(COLUMNS) * 3 + 3


def test_read_refuses_a_parquet_file_whose_content_no_longer_matches(cache):
    meta = cache.write(make_frame())
    other = make_frame()
    other.iloc[0, 0] = 1.0
    pd.DataFrame(other).to_parquet(cache.root / meta["file"])
    with pytest.raises(DataError, match="does not match its fingerprint"):
        cache.read("BTC-USD")


def test_missing_or_damaged_files_are_one_line_data_errors(cache):
    meta = cache.write(make_frame())
    (cache.root / meta["file"]).write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="unreadable") as err:
        cache.read("BTC-USD")
    assert "\n" not in str(err.value)
    (cache.root / meta["file"]).unlink()
    with pytest.raises(DataError, match="unreadable"):
        cache.read("BTC-USD")
    (cache.root / "BTC-USD__1d.json").write_text("{ half a json")
    with pytest.raises(DataError, match="metadata .* is unreadable"):
        cache.meta("BTC-USD")
    with pytest.raises(DataError, match="ETH-USD \\(1d\\) is not in the cache"):
        cache.read("ETH-USD")


def test_update_adds_only_the_missing_tail_and_counts_it(cache):
    full = make_frame(10)
    meta, added = cache.update(full.iloc[:6])
    assert added == 6 and meta["rows"] == 6

    meta, added = cache.update(full.iloc[4:9])  # 2 overlapping bars that agree, 3 new
    assert added == 3
    assert meta["rows"] == 9 and meta["last"] == "2021-01-09T00:00:00+00:00"
    back = cache.read("BTC-USD")
    pd.testing.assert_frame_equal(back, full.iloc[:9], check_freq=False)
    assert meta["fingerprint"] == fingerprint(full.iloc[:9])
    assert len([p for p in cache.root.iterdir() if p.suffix == ".parquet"]) == 1  # the old version left the folder
    kept = list((cache.root / "versions").iterdir())  # ...for runs stored against it (riskon report rebuilds them)
    assert [p.suffix for p in kept] == [".parquet"]

    before = files_of(cache)
    meta2, added = cache.update(full.iloc[7:9])
    assert added == 0 and meta2 == meta
    assert files_of(cache) == before  # nothing rewritten


def test_update_with_an_older_head_inserts_it_in_order(cache):
    full = make_frame(8)
    cache.update(full.iloc[3:])
    _, added = cache.update(full.iloc[:5])
    assert added == 3
    pd.testing.assert_frame_equal(cache.read("BTC-USD"), full, check_freq=False)


def test_update_records_a_mixed_source(cache):
    full = make_frame(6)
    cache.update(attach(full.iloc[:3].copy(), SeriesMeta("BTC-USD", "csv:BTC-USD.csv")))
    meta, _ = cache.update(attach(full.iloc[2:].copy(), SeriesMeta("BTC-USD", "yahoo")))
    assert meta["source"] == "csv:BTC-USD.csv+yahoo"


def test_update_refuses_overlapping_bars_that_disagree_and_changes_nothing(cache):
    full = make_frame(8)
    cache.update(full.iloc[:5])
    before, meta_before = files_of(cache), cache.meta("BTC-USD")
    frame_before = cache.read("BTC-USD")

    rewritten = full.iloc[3:].copy()
    rewritten.iloc[1, rewritten.columns.get_loc("close")] *= 1.01  # 2021-01-05 differs by 1 %
    with pytest.raises(DataError, match="disagrees with the cache on 2021-01-05 00:00 \\(1 bar\\(s\\)\\)") as err:
        cache.update(rewritten)
    assert "\n" not in str(err.value)
    assert files_of(cache) == before
    assert cache.meta("BTC-USD") == meta_before
    pd.testing.assert_frame_equal(cache.read("BTC-USD"), frame_before)


def test_list_shows_every_series_with_its_metadata(cache):
    assert cache.list().empty and list(cache.list().columns) == [
        "symbol",
        "source",
        "timeframe",
        "first",
        "last",
        "rows",
        "fingerprint",
        "fetched_at",
    ]
    a = cache.write(make_frame(4, symbol="BTC-USD"))
    b = cache.write(make_frame(7, start="2020-03-01", symbol="binance:ETH/USDT", source="ccxt:binance"))
    (cache.root / "garbage.json").write_text("not json")  # an unreadable entry is skipped, not fatal
    listed = cache.list().set_index("symbol")
    assert sorted(listed.index) == ["BTC-USD", "binance:ETH/USDT"]
    assert listed.loc["BTC-USD", "rows"] == 4 and listed.loc["binance:ETH/USDT", "rows"] == 7
    assert listed.loc["binance:ETH/USDT", "first"] == "2020-03-01T00:00:00+00:00"
    assert listed.loc["binance:ETH/USDT", "last"] == "2020-03-07T00:00:00+00:00"
    assert listed.loc["binance:ETH/USDT", "source"] == "ccxt:binance"
    assert listed.loc["BTC-USD", "fingerprint"] == a["fingerprint"]
    assert listed.loc["binance:ETH/USDT", "fingerprint"] == b["fingerprint"]


# ---------------------------------------------------------------- crashes


def test_exception_while_writing_parquet_keeps_the_previous_version(cache, monkeypatch):
    old = make_frame(5)
    cache.write(old)
    before, meta_before = files_of(cache), cache.meta("BTC-USD")

    def broken_to_parquet(self, path, *args, **kwargs):
        path.write(b"PAR1 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken_to_parquet)
    with pytest.raises(OSError, match="No space left"):
        cache.write(make_frame(9))
    monkeypatch.undo()

    assert files_of(cache) == before  # no temp file, no new parquet, same JSON
    assert cache.meta("BTC-USD") == meta_before
    pd.testing.assert_frame_equal(cache.read("BTC-USD"), old, check_freq=False, check_flags=False)
    listed = cache.list()
    assert listed["symbol"].tolist() == ["BTC-USD"] and listed["rows"].tolist() == [5]


def _crash_on_call(root: str, crash_call: int, new: pd.DataFrame) -> None:
    """In a forked child: write ``new`` and die (os._exit) inside the ``crash_call``-th atomic write."""
    real = feeds.cache._atomic_write_bytes
    calls = []

    def dying(target, write):
        calls.append(target)
        if len(calls) < crash_call:
            return real(target, write)

        def half_then_die(f):
            buf = io.BytesIO()
            write(buf)
            f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
            f.flush()
            os._exit(17)  # no cleanup, no finally: like kill -9 or a power cut

        return real(target, half_then_die)

    feeds.cache._atomic_write_bytes = dying
    Cache(root).write(new)
    os._exit(0)  # not reached


@pytest.mark.parametrize(
    "crash_call",
    [
        pytest.param(1, id="while-writing-parquet"),
        pytest.param(2, id="after-parquet-renamed-before-json-replaced"),
    ],
)
def test_process_killed_mid_write_leaves_the_previous_version_readable(cache, crash_call):
    old = make_frame(5)
    cache.write(old)
    meta_before = cache.meta("BTC-USD")
    new = make_frame(9)
    new.iloc[0, 0] = 99.0  # differs from the old version inside the overlap too

    child = mp.get_context("fork").Process(target=_crash_on_call, args=(str(cache.root), crash_call, new))
    child.start()
    child.join(30)
    assert child.exitcode == 17

    leftovers = {p.name for p in cache.root.iterdir()} - {"BTC-USD__1d.json", meta_before["file"]}
    if crash_call == 2:  # the new parquet landed but nothing points at it
        assert f"BTC-USD__1d.{fingerprint(new)}.parquet" in leftovers
    assert all(name.startswith(".") or name.endswith(".parquet") for name in leftovers)

    fresh = Cache(cache.root)
    assert fresh.meta("BTC-USD") == meta_before
    pd.testing.assert_frame_equal(fresh.read("BTC-USD"), old, check_freq=False)
    listed = fresh.list()
    assert listed["symbol"].tolist() == ["BTC-USD"]
    assert listed["fingerprint"].tolist() == [meta_before["fingerprint"]]

    # and the cache keeps working: the next write goes through
    meta = fresh.write(new)
    pd.testing.assert_frame_equal(fresh.read("BTC-USD"), new, check_freq=False)
    assert meta["rows"] == 9
