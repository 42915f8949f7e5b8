"""The NYSE schedule is computed once per span and library versions, then read from the cache folder."""

from __future__ import annotations

import pandas as pd
import pytest

from feeds import sessions

SPAN = ("2019-01-01", "2020-12-31")


@pytest.fixture
def cold(tmp_path, monkeypatch):
    """A fresh cache folder and an empty in-process memo."""
    monkeypatch.setenv("RISKON_CACHE", str(tmp_path / "cache"))
    sessions._schedule.cache_clear()
    yield tmp_path / "cache"
    sessions._schedule.cache_clear()


def test_the_schedule_is_kept_and_read_back_equal(cold, monkeypatch):
    first = sessions._schedule(*SPAN)
    path = sessions.calendar_file(*SPAN)
    assert path.parent == cold / "calendars" and path.exists()
    sessions._schedule.cache_clear()
    calls = []
    monkeypatch.setattr(sessions, "_compute", lambda *a: calls.append(a))
    again = sessions._schedule(*SPAN)
    assert calls == []  # read from the file, not computed
    pd.testing.assert_frame_equal(again, first)
    # 2020-11-27 (the day after Thanksgiving) closed at 13:00 New York = 18:00 UTC
    assert again.loc["2020-11-27", "market_close"] == pd.Timestamp("2020-11-27 18:00", tz="UTC")
    assert len(again.loc["2019"]) == 252 and len(again.loc["2020"]) == 253


def test_a_new_library_version_computes_it_again(cold, monkeypatch):
    old = sessions.calendar_file(*SPAN)
    monkeypatch.setattr(sessions, "_versions", lambda: "pandas_market_calendars=99.0,pandas=9.9")
    assert sessions.calendar_file(*SPAN) != old


def test_a_torn_file_is_recomputed_and_replaced(cold):
    want = sessions._compute(*SPAN)
    path = sessions.calendar_file(*SPAN)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PAR1 torn")
    sessions._schedule.cache_clear()
    pd.testing.assert_frame_equal(sessions._schedule(*SPAN), want)
    pd.testing.assert_frame_equal(pd.read_parquet(path), want)


def test_a_full_disk_still_gives_the_schedule_and_leaves_no_temp_file(cold, monkeypatch):
    def full(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sessions.os, "replace", full)
    got = sessions._schedule(*SPAN)
    pd.testing.assert_frame_equal(got, sessions._compute(*SPAN))
    assert list((cold / "calendars").iterdir()) == []
