"""``riskon store list`` and ``riskon store gc``: see the store's runs by code version, drop old code's on purpose."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from riskon.cli.console import console
from riskon.sweeps.housekeeping import Dropped, code_versions, drop_code_versions
from riskon.sweeps.store import DEFAULT_DB, Store

app = typer.Typer(
    help="The results store: runs by code version, and dropping old code's runs.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _versions(store: Store):
    try:
        return code_versions(store)
    except FileNotFoundError as e:
        raise typer.BadParameter(str(e), param_hint="--db") from None


@app.command("list")
def list_cmd(db: Path = typer.Option(DEFAULT_DB, help="DuckDB results store.")) -> None:
    """One row per code version of the stored sweeps: sweeps, runs, dates, and which sweeps it is newest for."""
    table = _versions(Store(db))
    out = console()
    if table.empty:
        out.print(f"no sweeps in {db}", highlight=False)
        return
    view = Table(title=f"code versions in {db}, newest first")
    for col, just in (("code version", "left"), ("sweeps", "right"), ("names", "left"), ("runs", "right"),
                      ("ok", "right"), ("first", "left"), ("last", "left"), ("newest for", "left")):  # fmt: skip
        view.add_column(col, justify=just)
    for r in table.to_dict("records"):
        view.add_row(
            r["code_version"], str(r["sweeps"]), ", ".join(r["names"]), str(r["runs"]), str(r["ok"]),
            f"{r['first']:%Y-%m-%d %H:%M}", f"{r['last']:%Y-%m-%d %H:%M}", ", ".join(r["newest_for"]) or "-",
        )  # fmt: skip
    out.print(view)
    out.print(
        "a run id hashes the code the run uses (its engine's and its rules' import closures), so a code change "
        "that a run does not use keeps its id; `riskon store gc --superseded` drops versions newest for no sweep",
        highlight=False,
    )


@app.command("gc")
def gc_cmd(
    code_version: list[str] = typer.Option(
        None, "--code-version", help="A code version to drop (see `riskon store list`); repeat for several."
    ),
    superseded: bool = typer.Option(
        False, "--superseded", help="Drop every code version that is not the newest of any sweep name."
    ),
    yes: bool = typer.Option(False, "--yes", help="Drop them; without it, only print what would be dropped."),
    db: Path = typer.Option(DEFAULT_DB, help="DuckDB results store."),
) -> None:
    """Drop the sweeps of old code versions and the runs only they hold (prints what it would drop without --yes)."""
    if not code_version and not superseded:
        raise typer.BadParameter(
            "name what to drop: --code-version VERSION (see `riskon store list`) or --superseded",
            param_hint="--code-version",
        )
    store = Store(db)
    table = _versions(store)
    versions = list(dict.fromkeys(code_version or []))
    if superseded:
        versions += [v for v, newest in zip(table["code_version"], table["newest_for"], strict=True)
                     if not newest and v not in versions]  # fmt: skip
    out = console()
    if not versions:
        out.print("nothing to drop: every code version is the newest of some sweep", highlight=False)
        return
    try:
        done = drop_code_versions(store, versions, apply=yes)
    except KeyError as e:
        raise typer.BadParameter(str(e.args[0]), param_hint="--code-version") from None
    for line in dropped_lines(done):
        out.print(line, highlight=False, markup=False, soft_wrap=True)


def dropped_lines(done: Dropped) -> list[str]:
    """What ``riskon store gc`` says it dropped, or would drop."""
    names = f" ({', '.join(done.names)})" if done.names else ""
    what = (
        f"{_n(len(done.code_versions), 'code version')} ({', '.join(done.code_versions)}): "
        f"{_n(done.sweeps, 'sweep')}{names}, {_n(done.runs, 'run')}"
    )
    kept = []
    if done.kept_runs == 1:
        kept = ["1 of their runs stays: a kept sweep holds it"]
    elif done.kept_runs:
        kept = [f"{done.kept_runs} of their runs stay: a kept sweep holds them"]
    if not done.applied:
        return [f"would drop {what}", *kept, "run again with --yes to drop them"]
    return [f"dropped {what}, {done.benchmarks} benchmark series no kept run uses", *kept]


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@app.command("migrate")
def migrate_cmd(db: Path = typer.Option(DEFAULT_DB, help="DuckDB results store.")) -> None:
    """Convert a store written by an older riskon (daily returns per run) to this riskon's compact layout."""
    # the config and rates stack loads only when a store is migrated
    from riskon.sweeps.migrate import migrate

    if not Path(db).exists():
        raise typer.BadParameter(f"no results database at {db}", param_hint="--db")
    done = migrate(db)
    if done.backup is None:
        console().print(f"{db}: already store layout {done.found}; nothing to do", highlight=False)
        return
    console().print(
        f"{db}: converted {_n(done.runs, 'run')} from store layout {done.found}: {done.bytes_before:,} -> "
        f"{done.bytes_after:,} bytes; the old file is kept as {done.backup} (delete it when done)",
        highlight=False,
    )
