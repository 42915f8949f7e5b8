"""The store at scale: `riskon results` and `riskon report --sweep` on 10,000 runs, and on a 10⁶-run store.

Builds the 10,000-run store of ``runs/big_sweep.toml`` once (or copies ``--store``, a store that holds
``big_sweep``), gives the baseline tree (a ``git worktree`` of the commit to compare against) and this tree
a copy each, and times ``riskon results big_sweep --top 5`` and ``riskon report --sweep big_sweep`` in fresh
processes (wall clock and peak RSS from ``/usr/bin/time -v``: the largest single process), alternating
baseline and current, and prints the medians, the ratios, the load average and the store bytes per run.
The first `riskon results` of each copy computes and stores the sweep's robustness; the timed repetitions
read it back (the second and later queries a user makes).

``--million`` then builds a synthetic 10⁶-run store from that one (``synthetic_million``: 100 copies of
big_sweep's 10,000 runs under new run ids, each copy one more value of a sixth swept parameter,
``costs.fee_bps`` 10..109, as the sweep ``million``; the copies keep big_sweep's metrics and stored fields, so
the robustness is over big_sweep's distinct returns and is computed in seconds) and times the same two
commands on it, for both trees.

Run: ``RISKON_DATA=/work/shared/data python bench/store.py --base /tmp/Q-base [--reps 3] [--million]``
(make the baseline with ``git worktree add /tmp/Q-base <commit>``). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parents[1]


def riskon(tree: Path, args: list[str], cwd: Path) -> tuple[float, float, str]:
    """``riskon ARGS`` from ``tree`` in a fresh process: (wall seconds, peak RSS in MB, output)."""
    code = f"import sys; sys.argv = ['riskon', *{args!r}]; from riskon.cli import main; main()"
    env = {**os.environ, "PYTHONPATH": str(tree), "MPLBACKEND": "Agg"}
    proc = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", code], cwd=cwd, env=env,
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"riskon {' '.join(args)} failed in {tree}:\n{proc.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", proc.stderr).group(1)
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1)) / 1024
    return seconds, rss, proc.stdout


def synthetic_million(source: Path, target: Path, copies: int = 100, name: str = "million") -> int:
    """A store of ``copies`` x big_sweep's runs as one more sweep ``name`` (see the module docstring).

    Copy ``k`` of a run has run id ``sha256(run_id:k)[:20]`` and ``costs.fee_bps = 10 + k`` among its
    parameters; metrics and stored fields are the original's. Returns the new sweep's run count.
    """
    shutil.copyfile(source, target)
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{target}' AS store (ROW_GROUP_SIZE 2048)")
        con.execute("USE store")
        sweep_id = con.execute("SELECT sweep_id FROM sweeps WHERE name = 'big_sweep'").fetchone()[0]
        cols = [r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = 'runs' "
                                          "ORDER BY column_index").fetchall()]  # fmt: skip
        new = {"run_id": "substr(sha256(r.run_id || ':' || k.k::VARCHAR), 1, 20)", "sweep_id": "'synth'",
               "params": "'{\"costs.fee_bps\": ' || (10 + k.k)::VARCHAR || ', ' || substr(r.params, 2)"}  # fmt: skip
        picked = ", ".join(new.get(c, f"r.{c}") for c in cols)
        con.execute("CREATE TEMP TABLE src AS SELECT r.* FROM runs r WHERE r.sweep_id = ?", [sweep_id])
        con.execute(f"INSERT INTO runs SELECT {picked} FROM src r, range({copies}) k(k)")
        con.execute("INSERT INTO sweep_runs SELECT 'synth', run_id FROM runs WHERE sweep_id = 'synth'")
        values = ", ".join(str(10 + k) for k in range(copies))
        con.execute(
            "INSERT INTO sweeps SELECT 'synth', ?, config_text, "
            'replace(spec, \'"values": {\', \'"values": {"costs.fee_bps": [' + values + "], '), fingerprints, "
            "code_version, created + INTERVAL 1 SECOND, status, n_total * ?, strategy_key, lookahead, rule_hashes "
            "FROM sweeps WHERE sweep_id = ?",
            [name, copies, sweep_id],
        )
        con.execute("CHECKPOINT")
        return con.execute("SELECT count(*) FROM sweep_runs WHERE sweep_id = 'synth'").fetchone()[0]
    finally:
        con.close()


def timed(trees: dict[str, Path], dbs: dict[str, Path], name: str, out: Path, reps: int) -> dict[str, dict]:
    """The first ``results`` of each tree's store, then ``results --top 5`` and ``report --sweep``, alternating."""
    print(f"load average: {os.getloadavg()}", flush=True)
    for label, tree in trees.items():  # the first query: the robustness is computed and stored
        seconds, rss, _ = riskon(tree, ["results", name, "--top", "5", "--db", str(dbs[label])], tree)
        print(f"  {label}: first results {seconds:.1f} s, {rss:.0f} MB", flush=True)
    commands = {
        "results --top 5": lambda db: ["results", name, "--top", "5", "--db", str(db)],
        "report --sweep": lambda db: ["report", "--sweep", name, "--db", str(db), "--out", str(out)],
    }
    medians: dict[str, dict] = {}
    for what, args in commands.items():
        got: dict[str, list[tuple[float, float]]] = {k: [] for k in trees}
        for _ in range(reps):
            for label, tree in trees.items():  # alternating baseline and current
                seconds, rss, _ = riskon(tree, args(dbs[label]), tree)
                got[label].append((seconds, rss))
        med = {k: (statistics.median(s for s, _ in v), statistics.median(r for _, r in v)) for k, v in got.items()}
        medians[what] = med
        (bs, br), (cs, cr) = med["baseline"], med["current"]
        spread = ", ".join(f"{k} {min(s for s, _ in v):.2f}-{max(s for s, _ in v):.2f}" for k, v in got.items())
        print(f"  {what}: baseline {bs:.2f} s {br:.0f} MB | current {cs:.2f} s {cr:.0f} MB | time ratio "
              f"{cs / bs:.2f}x, memory ratio {cr / br:.2f}x (medians of {reps}; ranges {spread}; load "
              f"{os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
    return medians


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, required=True, help="a git worktree of the baseline commit")
    ap.add_argument("--current", type=Path, default=HERE, help="the tree measured (default: this one)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--store", type=Path, help="copy this store (holding big_sweep) instead of sweeping again")
    ap.add_argument("--million", action="store_true", help="also time both commands on a synthetic 10^6-run store")
    ap.add_argument("--million-reps", type=int, default=2)
    ap.add_argument("--only-million", action="store_true", help="skip the 10,000-run timings")
    a = ap.parse_args()
    print(f"load average at start: {os.getloadavg()}; {os.cpu_count()} cores", flush=True)
    trees = {"baseline": a.base.resolve(), "current": a.current.resolve()}
    with tempfile.TemporaryDirectory(prefix="riskon-bench-store-") as tmp:
        work = Path(tmp)
        source = work / "big_sweep.duckdb"
        if a.store:
            shutil.copyfile(a.store, source)
        else:
            t0 = time.perf_counter()
            riskon(trees["current"], ["sweep", "runs/big_sweep.toml", "--db", str(source), "--workers",
                                      str(a.workers), "--top", "1"], trees["current"])  # fmt: skip
            print(f"sweep of big_sweep: {time.perf_counter() - t0:.1f} s", flush=True)
        size = source.stat().st_size
        print(f"store: {size:,} bytes = {size / 10_000:,.0f} bytes per run", flush=True)
        if not a.only_million:
            print("10,000 runs (big_sweep):")
            dbs = {k: work / f"{k}.duckdb" for k in trees}
            for db in dbs.values():
                shutil.copyfile(source, db)
            timed(trees, dbs, "big_sweep", work / "sweep.html", a.reps)
            for db in dbs.values():
                db.unlink()
        if a.million or a.only_million:
            t0 = time.perf_counter()
            million = work / "million.duckdb"
            n = synthetic_million(source, million)
            print(f"10^6 runs (synthetic sweep 'million', {n:,} runs, {million.stat().st_size / 1e6:,.0f} MB) "
                  f"built in {time.perf_counter() - t0:.1f} s:", flush=True)  # fmt: skip
            dbs = {"baseline": million, "current": work / "million_current.duckdb"}
            shutil.copyfile(million, dbs["current"])
            timed(trees, dbs, "million", work / "million.html", a.million_reps)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
