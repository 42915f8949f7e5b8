"""Issue 15 §3 through the real CLI: ``riskon data`` refuses with one line, a non-zero exit, and an unchanged cache."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from feeds.cache import Cache
from feeds.loader import import_file
from support.clitools import riskon_cmd

YH = "Date,Open,High,Low,Close,Adj Close,Volume"


def riskon(*args: str, cache: Path, data: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RISKON_DATA"}
    env.update(RISKON_CACHE=str(cache), NO_COLOR="1", COLUMNS="400")
    if data is not None:
        env["RISKON_DATA"] = str(data)
    return subprocess.run(
        [*riskon_cmd(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def tree(root: Path) -> dict[str, str]:
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def daily(days: list[str]) -> str:
    return "\n".join([YH, *(f"{d},10,11,9,10.5,10.5,100" for d in days)]) + "\n"


DAYS = [f"2021-01-{d:02d}" for d in range(1, 11)]


@pytest.fixture
def seeded(tmp_path) -> Cache:
    cache = Cache(tmp_path / "cache")
    src = tmp_path / "seed"
    src.mkdir()
    (src / "BTC-USD.csv").write_text(daily(DAYS))
    import_file(src / "BTC-USD.csv", cache=cache)
    return cache


def one_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0].removeprefix("error: ")


def test_import_of_a_one_row_file_over_a_cached_series_is_refused(tmp_path, seeded):
    short = tmp_path / "new" / "btc-usd.csv"  # lower case: the same series
    short.parent.mkdir()
    short.write_text(daily(DAYS[:1]))
    before = tree(seeded.root)
    msg = one_error(riskon("data", "import", str(short), cache=seeded.root))
    assert msg == (
        f"{short}: importing it would drop 9 of the 10 cached BTC-USD (1d) bars (the file has 1 row(s); "
        "first missing bar 2021-01-02); the cache is unchanged; to replace BTC-USD on purpose, "
        "import with --replace (replace=True)"
    )
    assert tree(seeded.root) == before


def test_show_refuses_metadata_that_disagrees_with_the_data(seeded):
    path = seeded.root / "BTC-USD__1d.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "rows": 4357}))
    before = tree(seeded.root)
    msg = one_error(riskon("data", "show", "btc-usd", cache=seeded.root))
    assert msg == (
        f"cached BTC-USD (1d) metadata {path} disagrees with its data: it says 4357 rows "
        "2021-01-01T00:00:00+00:00 .. 2021-01-10T00:00:00+00:00, the data holds 10 rows "
        f"2021-01-01T00:00:00+00:00 .. 2021-01-10T00:00:00+00:00; delete {path} and import BTC-USD again"
    )
    assert tree(seeded.root) == before


def test_show_refuses_a_file_entry_that_leaves_the_cache(seeded):
    path = seeded.root / "BTC-USD__1d.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "file": "../../../etc/passwd"}))
    before = tree(seeded.root)
    msg = one_error(riskon("data", "show", "BTC-USD", cache=seeded.root))
    assert msg == (
        f"cached BTC-USD (1d) metadata {path} is malformed (its file entry '../../../etc/passwd' points outside "
        f"the cache); delete {path} and import BTC-USD again (or import it with --replace)"
    )
    assert tree(seeded.root) == before


def test_show_of_a_traversal_symbol_is_refused(tmp_path, seeded):
    before = tree(tmp_path)
    msg = one_error(riskon("data", "show", "../OUTSIDE", cache=seeded.root))
    assert msg == (
        "symbol '../OUTSIDE' is not valid: use a Yahoo symbol (^RUT, IWM, BTC-USD) or an exchange pair "
        "(binance:BTC/USDT), without path separators, '..', spaces or control characters"
    )
    assert tree(tmp_path) == before


def test_import_of_a_folder_with_one_bad_file_changes_nothing(tmp_path, seeded):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "ADA-USD.csv").write_text(daily(DAYS[:4]))
    (folder / "BTC-USD.csv").write_text(daily(DAYS + ["2021-01-11"]))
    (folder / "XRP-USD.csv").write_text(daily(["2021-01-01", "2099-01-01"]))  # a bar in the future
    before = tree(seeded.root)
    msg = one_error(riskon("data", "import", str(folder), cache=seeded.root))
    assert msg.startswith(f"{folder / 'XRP-USD.csv'}: 1 bar(s) in the future")
    assert tree(seeded.root) == before
