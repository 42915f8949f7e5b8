"""Housekeeping of the results store: its sweeps by code version, and dropping old code's runs on purpose.

A run id hashes the code the run uses (``riskon.sweeps.keys``), so runs of old code stay in the store
beside the new ones; ``riskon store list`` shows them by code version and ``riskon store gc`` drops them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskon.sweeps.store import Store


@dataclass(frozen=True)
class Dropped:
    """What ``Store.drop_code_versions`` dropped (``applied``) or would drop: sweeps, runs, benchmark series."""

    code_versions: tuple[str, ...]
    sweeps: int
    names: tuple[str, ...]
    runs: int
    kept_runs: int  # runs of the dropped sweeps that a kept sweep also holds
    benchmarks: int  # only counted when applied
    applied: bool


def code_versions(store: Store) -> pd.DataFrame:
    """One row per code version of the stored sweeps, newest first, for ``riskon store list``.

    Columns: ``code_version``; ``sweeps`` (count) and ``names``; ``runs`` and ``ok`` (distinct runs
    linked to those sweeps); ``first`` and ``last`` (creation times); ``newest_for``: the sweep names
    whose most recent sweep used this version (empty: every sweep of it was superseded by a newer one).
    """
    with store.connect(read_only=True) as con:
        table = con.execute(
            "WITH newest AS (SELECT name, arg_max(code_version, created) AS code_version FROM sweeps "
            "GROUP BY name) "
            "SELECT s.code_version, count(DISTINCT s.sweep_id) AS sweeps, "
            "list(DISTINCT s.name ORDER BY s.name) AS names, count(DISTINCT r.run_id) AS runs, "
            "count(DISTINCT r.run_id) FILTER (WHERE r.status = 'ok') AS ok, min(s.created) AS first, "
            "max(s.created) AS last, "
            "(SELECT list(n.name ORDER BY n.name) FROM newest n WHERE n.code_version = s.code_version) "
            "AS newest_for "
            "FROM sweeps s LEFT JOIN sweep_runs l USING (sweep_id) LEFT JOIN runs r ON r.run_id = l.run_id "
            "GROUP BY s.code_version ORDER BY last DESC, s.code_version"
        ).df()
    for col in ("names", "newest_for"):  # DuckDB lists arrive as arrays, an empty result as NA
        table[col] = table[col].map(lambda v: list(v) if isinstance(v, list | np.ndarray) else [])
    return table


def drop_code_versions(store: Store, versions: list[str], apply: bool = False) -> Dropped:
    """Drop every sweep of the given code versions and the runs only they hold; ``apply=False`` only counts.

    A run another (kept) sweep also holds stays, and is counted in ``kept_runs``; benchmark series no
    kept run references go too. Everything is deleted in one transaction. An unknown version raises
    ``KeyError`` naming the known ones.
    """
    known = set(code_versions(store)["code_version"])
    unknown = [v for v in versions if v not in known]
    if unknown:
        raise KeyError(f"no sweeps of code version {unknown[0]!r} in {store.path}; known: {', '.join(sorted(known))}")
    gone = "SELECT sweep_id FROM sweeps WHERE list_contains(?, code_version)"
    only_gone = (
        f"SELECT run_id FROM sweep_runs WHERE sweep_id IN ({gone}) EXCEPT "
        f"SELECT run_id FROM sweep_runs WHERE sweep_id NOT IN ({gone})"
    )
    with store.connect(read_only=not apply) as con:
        names = [r[0] for r in con.execute(f"SELECT name FROM sweeps WHERE sweep_id IN ({gone}) ORDER BY name",
                                           [versions]).fetchall()]  # fmt: skip
        linked = con.execute(
            f"SELECT count(DISTINCT run_id) FROM sweep_runs WHERE sweep_id IN ({gone})", [versions]
        ).fetchone()[0]
        dropped = con.execute(
            f"SELECT count(*) FROM runs WHERE run_id IN ({only_gone})", [versions, versions]
        ).fetchone()[0]
        if apply:
            con.execute("BEGIN TRANSACTION")
            con.execute(f"DELETE FROM runs WHERE run_id IN ({only_gone})", [versions, versions])
            # a kept run first stored by a dropped sweep now names a sweep that holds it
            con.execute(
                f"UPDATE runs SET sweep_id = (SELECT min(l.sweep_id) FROM sweep_runs l WHERE l.run_id = "
                f"runs.run_id AND l.sweep_id NOT IN ({gone})) WHERE sweep_id IN ({gone})",
                [versions, versions],
            )
            con.execute(f"DELETE FROM sweep_runs WHERE sweep_id IN ({gone})", [versions])
            con.execute("DELETE FROM sweeps WHERE list_contains(?, code_version)", [versions])
            benches = con.execute(
                "DELETE FROM benchmarks WHERE bench_id NOT IN (SELECT bench_id FROM runs WHERE bench_id IS NOT NULL)"
            ).fetchone()
            con.execute("COMMIT")
        else:
            benches = None
    return Dropped(
        code_versions=tuple(versions), sweeps=len(names), names=tuple(dict.fromkeys(names)), runs=dropped,
        kept_runs=linked - dropped, benchmarks=benches[0] if benches else 0, applied=apply,
    )  # fmt: skip
