"""Yield series: import in both units and FRED's format, known-at stamps and the as-of rule, bad files, no shrinking."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from feeds.errors import DataError
from feeds.yields import YieldCache, import_yield, known_at, load_yield, read_yield_csv
from strategies.cash import growth_per_bar, rate_per_bar
from support.sweep_store import call

UTC = "UTC"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def riskon(capsys, monkeypatch):
    """``riskon ARGS`` in this process (the CLI's own entry function) on the cache ``cache``."""

    def go(*args: str, cache: Path) -> SimpleNamespace:
        monkeypatch.delenv("RISKON_DATA", raising=False)
        monkeypatch.setenv("RISKON_CACHE", str(cache))
        monkeypatch.setenv("NO_COLOR", "1")
        monkeypatch.setenv("COLUMNS", "200")
        code, out, err = call(capsys, *args)
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)

    return go


def folder_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------ import
def test_percent_and_fraction_store_the_same_annual_fractions(tmp_path):
    pct = write(tmp_path / "a.csv", "date,value\n2024-01-02,5.25\n2024-01-03,0\n2024-01-04,-0.5\n")
    frac = write(tmp_path / "b.csv", "date,value\n2024-01-02,0.0525\n2024-01-03,0\n2024-01-04,-0.005\n")
    import_yield(pct, "PCT", "percent", tmp_path / "c")
    import_yield(frac, "FRAC", "fraction", tmp_path / "c")
    store = YieldCache(tmp_path / "c")
    a, b = store.read("PCT"), store.read("FRAC")
    assert a["value"].tolist() == pytest.approx([0.0525, 0.0, -0.005], abs=1e-15)
    assert b["value"].tolist() == [0.0525, 0.0, -0.005]
    # each date's midnight in New York, in UTC (as index bars are stored)
    assert list(a.index) == [pd.Timestamp(f"2024-01-0{d} 05:00", tz=UTC) for d in (2, 3, 4)]
    meta = store.meta("PCT")
    assert meta["kind"] == "yield" and meta["unit"] == "fraction, annual" and meta["source"] == "csv:a.csv (percent)"


@pytest.mark.parametrize("header", ["DATE,DGS3MO", "observation_date,DGS3MO"])
def test_fred_downloads_drop_missing_values_and_say_how_many(tmp_path, header):
    path = write(tmp_path / "DGS3MO.csv", f"{header}\n2024-03-28,5.46\n2024-03-29,.\n2024-04-01,5.45\n2024-04-02,\n")
    frame, dropped = read_yield_csv(path, unit="percent")
    assert dropped == 2
    assert frame.attrs["symbol"] == "DGS3MO"  # from the file name
    assert frame["value"].tolist() == pytest.approx([0.0546, 0.0545], abs=1e-15)
    done = import_yield(path, None, "percent", tmp_path / "c")
    assert done.notes == ["DGS3MO.csv: dropped 2 row(s) without a value ('.' or empty)"]
    assert done.meta["rows"] == 2 and done.added == 2


def test_negative_rates_are_kept_and_shrink_cash(tmp_path):
    path = write(tmp_path / "neg.csv", "date,value\n2020-03-02,-0.75\n2020-03-03,-0.75\n")
    import_yield(path, "EURNEG", "percent", tmp_path / "c")
    series = load_yield("EURNEG", cache=tmp_path / "c")
    assert series.tolist() == [-0.0075, -0.0075]
    bars = pd.date_range("2020-03-04", periods=3, freq="D", tz=UTC)
    g = growth_per_bar(bars, pd.Timedelta(days=1), series)
    assert g == pytest.approx(np.full(3, 0.9925 ** (1 / 365) - 1.0), rel=1e-12) and (g < 0).all()


# ------------------------------------------------------------------------------------------ known at
def test_a_yield_is_known_at_its_sessions_close_plus_the_lag():
    dates = pd.DatetimeIndex(["2024-03-08", "2024-03-28", "2024-03-29", "2024-07-03", "2024-07-05"])
    got = known_at(dates, 0.0)
    assert list(got) == [
        pd.Timestamp("2024-03-08 21:00", tz=UTC),  # 16:00 New York in winter time
        pd.Timestamp("2024-03-28 20:00", tz=UTC),  # summer time
        pd.Timestamp("2024-03-29 20:00", tz=UTC),  # Good Friday: no NYSE session, 16:00 New York
        pd.Timestamp("2024-07-03 17:00", tz=UTC),  # NYSE early close at 13:00
        pd.Timestamp("2024-07-05 20:00", tz=UTC),
    ]
    assert list(known_at(dates[:1], 2.5)) == [pd.Timestamp("2024-03-08 23:30", tz=UTC)]


def test_fridays_yield_is_used_by_saturdays_crypto_bar_not_fridays(tmp_path):
    path = write(tmp_path / "y.csv", "date,value\n2024-03-06,4\n2024-03-07,5\n2024-03-08,6\n")
    import_yield(path, "US3M", "percent", tmp_path / "c")
    bars = pd.date_range("2024-03-08", periods=3, freq="D", tz=UTC)  # Friday, Saturday, Sunday (00:00 UTC opens)
    # by hand: Thursday's 5% is known Thursday 21:00 UTC; Friday's 6% Friday 21:00 UTC, after Friday's open
    assert rate_per_bar(bars, load_yield("US3M", cache=tmp_path / "c")).tolist() == [0.05, 0.06, 0.06]
    # a publication lag of 4 hours: each value is known at 01:00 UTC the next day, so one bar later
    lagged = load_yield("US3M", lag=4.0, cache=tmp_path / "c")
    assert lagged.index[-1] == pd.Timestamp("2024-03-09 01:00", tz=UTC)
    assert rate_per_bar(bars, lagged).tolist() == [0.04, 0.05, 0.06]


def test_load_yield_of_a_series_not_cached_says_how_to_import_it(tmp_path):
    with pytest.raises(DataError) as e:
        load_yield("us3m", cache=tmp_path / "c")
    assert str(e.value) == (
        f"the yield series US3M is not in the cache {tmp_path / 'c' / 'yields'}; import it with "
        "`riskon data import FILE --symbol US3M --kind yield --unit percent` (or --unit fraction)"
    )


# ------------------------------------------------------------------------------------------ bad input, CLI
BAD = [
    (["--unit", "bps"], "date,value\n2024-01-02,5\n",
     "error: unknown unit 'bps' for a yield series; use --unit percent (5.25 means 5.25% a year) or --unit fraction "
     "(0.0525)"),
    ([], "date,value\n2024-01-02,5\n",
     "error: a yield series needs its unit: --unit percent (5.25 means 5.25% a year) or --unit fraction (0.0525)"),
    (["--unit", "percent"], "Date,Open,High,Low,Close\n2024-01-02,1,2,0.5,1.5\n",
     "error: {f}: has price columns (Open, High, Low, Close), so it is a price series, not a yield; import it "
     "without --kind yield, or give a file with a date column and one value column"),
    (["--unit", "percent"], "date,value\n2024-01-02,5\n2024-01-03,n/a\n",
     "error: {f}: non-numeric value 'n/a' at line 3; a yield is a number (percent), or '.' or an empty cell for a "
     "day without one"),
    (["--unit", "percent"], "date,value\n2024-01-02,5\n2024-01-03,5.1\n2024-01-02,5.2\n",
     "error: {f}: the date 2024-01-02 appears 2 times (lines 2, 4); keep one value per date"),
    (["--unit", "fraction"], "date,value\n2024-01-02,5.25\n",
     "error: {f}: value 5.25 on 2024-01-02 would be 525% a year as a fraction; if the file is in percent, import "
     "it with --unit percent"),
]  # fmt: skip


@pytest.mark.parametrize(("options", "text", "message"), BAD)
def test_bad_yield_files_get_one_line_exit_3_and_leave_the_cache_alone(riskon, tmp_path, options, text, message):
    cache = tmp_path / "c"
    good = write(tmp_path / "good.csv", "date,value\n2024-01-02,5\n")
    ok = riskon("data", "import", str(good), "--symbol", "US3M", "--kind", "yield", "--unit", "percent", cache=cache)
    assert ok.returncode == 0, ok.stderr
    assert (
        ok.stdout.strip() == "US3M (yield, percent -> annual fraction): 1 values 2024-01-02 .. 2024-01-02 from good.csv"
    )
    before = folder_bytes(cache)
    bad = write(tmp_path / "bad.csv", text)
    r = riskon("data", "import", str(bad), "--symbol", "US3M", "--kind", "yield", *options, cache=cache)
    assert r.returncode == 3
    assert r.stderr.strip() == message.format(f=bad)
    assert folder_bytes(cache) == before


def test_cli_refuses_a_unit_for_a_price_import_and_an_unknown_kind(riskon, tmp_path):
    f = write(tmp_path / "x.csv", "date,value\n2024-01-02,5\n")
    r = riskon("data", "import", str(f), "--unit", "percent", cache=tmp_path / "c")
    assert (r.returncode, r.stderr.strip()) == (
        3, "error: --unit percent applies to yield series only; add --kind yield or drop --unit"
    )  # fmt: skip
    r = riskon("data", "import", str(f), "--kind", "rate", "--unit", "percent", cache=tmp_path / "c")
    assert (r.returncode, r.stderr.strip()) == (
        3, "error: unknown kind 'rate'; use --kind price (OHLC bars) or --kind yield (annual rates)"
    )  # fmt: skip


def test_list_and_show_present_a_yield_series(riskon, tmp_path):
    cache = tmp_path / "c"
    f = write(tmp_path / "DGS3MO.csv", "DATE,DGS3MO\n2024-03-28,5.46\n2024-03-29,.\n2024-04-01,-0.25\n")
    r = riskon("data", "import", str(f), "--symbol", "US3M", "--kind", "yield", "--unit", "percent", cache=cache)
    assert r.returncode == 0 and r.stderr.strip() == "DGS3MO.csv: dropped 1 row(s) without a value ('.' or empty)"
    listed = riskon("data", "list", cache=cache)
    assert listed.returncode == 0
    assert "yield series (annual rates)" in listed.stdout
    row = next(line for line in listed.stdout.splitlines() if "US3M" in line)
    assert row.split("│")[1:-1] == [
        " US3M   ", " csv:DGS3MO.csv (percent) ", " 2024-03-28 ", " 2024-04-01 ", "      2 ",
        f" {YieldCache(cache).meta('US3M')['fingerprint']} ",
    ]  # fmt: skip
    shown = riskon("data", "show", "US3M", cache=cache)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "       kind: yield" in lines and "      first: 2024-03-28" in lines and "       rows: 2" in lines
    assert "2024-03-28            5.46" in lines and "2024-04-01           -0.25" in lines


# ------------------------------------------------------------------------------------------ the cache never shrinks
def test_an_import_that_drops_or_rewrites_cached_values_is_refused_unless_replace(tmp_path):
    cache = tmp_path / "c"
    full = write(tmp_path / "full.csv", "date,value\n2024-01-02,5\n2024-01-03,5.1\n2024-01-04,5.2\n")
    import_yield(full, "US3M", "percent", cache)
    before = folder_bytes(cache)
    short = write(tmp_path / "short.csv", "date,value\n2024-01-02,5\n")
    with pytest.raises(DataError) as e:
        import_yield(short, "US3M", "percent", cache)
    assert str(e.value) == (
        f"{short}: importing it would drop 2 of the 3 cached US3M (1d) bars (the file has 1 row(s); first missing "
        "bar 2024-01-03); the cache is unchanged; to replace US3M on purpose, import with --replace (replace=True)"
    )
    changed = write(tmp_path / "changed.csv", "date,value\n2024-01-02,5\n2024-01-03,5.3\n2024-01-04,5.2\n")
    with pytest.raises(DataError, match=r"1 cached US3M \(1d\) bar\(s\) differ in the file, first on 2024-01-03"):
        import_yield(changed, "US3M", "percent", cache)
    assert folder_bytes(cache) == before
    longer = write(tmp_path / "longer.csv", "date,value\n2024-01-02,5\n2024-01-03,5.1\n2024-01-04,5.2\n2024-01-05,5\n")
    assert import_yield(longer, "US3M", "percent", cache).added == 1
    assert import_yield(short, "US3M", "percent", cache, replace=True).meta["rows"] == 1
    assert len(load_yield("US3M", cache=cache)) == 1  # the cached copy read before is not served stale
