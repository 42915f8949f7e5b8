"""No way out of the folders: a stored sweep name or run id like ``../../x`` never makes ``riskon results
--export``, ``riskon report``, ``report --sweep`` or ``compare`` write outside ``runs/exports/`` or the
reports folder (``RISKON_REPORTS``).

The store is a real sweep whose name and run ids are then rewritten to hostile strings, as anyone with
the file could. Each command runs through the CLI's entry function; afterwards every file under the
test's folder is listed, so a write anywhere else would show.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest

from riskon.config import ConfigError
from riskon.pages.paths import NAME_CAP, check_inside, inside, safe_name
from support.sweep_store import call, digest, files_under, make_sweep

LONG = "x" * 300
# each hostile name and the folder name it must become, worked out by hand: runs of characters other
# than A-Z a-z 0-9 _ . - become one '_', then leading dots are dropped; an empty result is 'unnamed'
NAMES = [
    ("../../x", "_.._x"),
    ("/etc/evil", "_etc_evil"),
    ("..", "unnamed"),
    ("a/../../b", "a_.._.._b"),
    (".hidden", "hidden"),
    ("C:\\evil\\x", "C_evil_x"),
    ("näme with spaces", "n_me_with_spaces"),
    (LONG, "x" * 111 + "-" + hashlib.sha256(LONG.encode()).hexdigest()[:8]),
]


def test_safe_names():
    for raw, safe in NAMES:
        assert safe_name(raw) == safe
    assert len(safe_name(LONG)) == len(safe_name(LONG, suffix=".parquet")) == NAME_CAP
    assert safe_name("../x", suffix=".csv") == "_x.csv"
    for plain in ("seed_sweep", "seed-sweep.v2", "0123456789abcdef0123", "a.."):  # names riskon accepts: kept
        assert safe_name(plain) == plain


def test_inside_and_check_inside(tmp_path):
    root = tmp_path / "reports"
    assert inside(root, "../../x", "..", "sweep.html") == root / "_.._x" / "unnamed" / "sweep.html"
    (tmp_path / "outside").mkdir()
    root.mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(ConfigError) as info:
        inside(root, "link", "page.html")
    assert str(info.value) == (
        f"refusing to write {root / 'link' / 'page.html'}: it resolves to {tmp_path / 'outside' / 'page.html'}, "
        f"outside {root} (a symbolic link?); remove the link or choose the file with --out"
    )
    assert check_inside(root, root / "a" / "b.html") == root / "a" / "b.html"


@pytest.fixture(scope="module")
def store(tmp_path_factory, data_dir) -> Path:
    db, _ = make_sweep(tmp_path_factory.mktemp("paths"), name="psweep")
    return db


def hostile_copy(store: Path, folder: Path, name: str, run_ids: dict[str, str] | None = None) -> Path:
    """A copy of the store whose sweep is called ``name`` (and whose runs ``old -> new`` are renamed).

    It lies in ``folder/store/``: files the store keeps beside itself are its own, not outputs.
    """
    (folder / "store").mkdir()
    db = folder / "store" / "hostile.duckdb"
    shutil.copy(store, db)
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE sweeps SET name = ?", [name])
        for old, new in (run_ids or {}).items():
            con.execute("UPDATE runs SET run_id = ? WHERE run_id = ?", [new, old])
            con.execute("UPDATE sweep_runs SET run_id = ? WHERE run_id = ?", [new, old])
    return db


def outputs(root: Path) -> dict[str, str]:
    """Every file under ``root`` but the store's own folder."""
    return {k: v for k, v in files_under(root).items() if not k.startswith("store/")}


def best_run(db: Path) -> str:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT run_id FROM runs ORDER BY sharpe DESC, run_id LIMIT 1").fetchone()[0]


@pytest.mark.parametrize(("name", "safe"), NAMES, ids=[n[:20] for n, _ in NAMES])
def test_export_of_a_hostile_sweep_name_stays_in_runs_exports(store, tmp_path, capsys, monkeypatch, name, safe):
    db = hostile_copy(store, tmp_path, name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = outputs(tmp_path)
    code, out, err = call(capsys, "results", name, "--db", str(db), "--export", "csv")
    assert code == 0, err
    written = set(outputs(tmp_path)) - set(before)
    if name == LONG:  # the extension is kept within the cap: the name is cut 4 characters shorter
        safe = "x" * 107 + "-" + hashlib.sha256(LONG.encode()).hexdigest()[:8]
    assert written == {f"work/runs/exports/{safe}.csv"}
    assert f"wrote 24 runs to runs/exports/{safe}.csv" in out


def test_report_and_compare_of_hostile_names_stay_in_the_reports_folder(store, tmp_path, capsys, monkeypatch):
    rid = best_run(store)
    db = hostile_copy(store, tmp_path, "../../x")
    reports = tmp_path / "reports"
    monkeypatch.setenv("RISKON_REPORTS", str(reports))
    work = tmp_path / "deep" / "er" / "work"  # ../../x from here would still be inside tmp_path: look everywhere
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    before = outputs(tmp_path)
    code, out, err = call(capsys, "report", rid, "--db", str(db))
    assert code == 0, err
    code, out, err = call(capsys, "compare", "--sweep", "../../x", "--top", "2", "--null", "0", "--db", str(db))
    assert code == 0, err
    code, out, err = call(capsys, "report", "--sweep", "../../x", "--null", "0", "--db", str(db))
    assert code == 0, err
    written = set(outputs(tmp_path)) - set(before)
    assert written == {
        f"reports/_.._x/{rid}/tearsheet.html",  # the stored sweep name, sanitised
        "reports/x/compare-top2.html",  # compare names its page after the --sweep text, slugged
        "reports/x/plotly.min.js",  # its interactive chart's library, beside it
        "reports/_.._x/sweep.html",
        "reports/index.html",
    }


def test_a_hostile_run_id_is_refused_before_anything_is_written(store, tmp_path, capsys, monkeypatch):
    """A run id edited into ``../../../evil-run`` is not the id its parameters give: one line, nothing written."""
    rid = best_run(store)
    db = hostile_copy(store, tmp_path, "../../x", {rid: "../../../evil-run"})
    monkeypatch.setenv("RISKON_REPORTS", str(tmp_path / "reports"))
    work = tmp_path / "deep" / "er" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    before = outputs(tmp_path)
    code, out, err = call(capsys, "report", "../../../evil", "--db", str(db))
    assert code == 4 and err.startswith("error: run ../../../evil-run: its id is not the one its parameters, data ")
    assert len(err.strip().splitlines()) == 1 and set(outputs(tmp_path)) == set(before)


def test_a_symlink_out_of_the_reports_folder_is_refused(store, tmp_path, capsys, monkeypatch):
    rid = best_run(store)
    db = hostile_copy(store, tmp_path, "linked")
    reports, outside = tmp_path / "reports", tmp_path / "outside"
    reports.mkdir()
    outside.mkdir()
    (reports / "linked").symlink_to(outside)
    monkeypatch.setenv("RISKON_REPORTS", str(reports))
    monkeypatch.chdir(tmp_path)
    before, store_before = outputs(tmp_path), digest(db)
    code, out, err = call(capsys, "report", rid, "--db", str(db))
    assert code == 2
    target = reports / "linked" / rid / "tearsheet.html"
    assert err.strip() == (
        f"error: refusing to write {target}: it resolves to {outside / rid / 'tearsheet.html'}, outside {reports} "
        "(a symbolic link?); remove the link or choose the file with --out"
    )
    assert outputs(tmp_path) == before  # nothing written anywhere; the store byte-identical
    assert digest(db) == store_before
    assert not any(outside.iterdir())
