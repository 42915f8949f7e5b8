"""The store at scale: `riskon results big_sweep --top 5` and `riskon report --sweep big_sweep` on 10,000 runs.

Builds the 10,000-run store of ``runs/big_sweep.toml`` twice, with this tree and with a baseline tree (a
``git worktree`` of the commit to compare against), then times each command in a fresh process (wall clock
and peak RSS from ``/usr/bin/time -v``), alternating baseline and current, and prints the medians, the
ratios and the store bytes per run. The first `riskon results` of a store computes and stores its
robustness; the timed repetitions that follow read it back (the second and later queries a user makes).

Run: ``RISKON_DATA=/work/shared/data python bench/store.py --base /tmp/S-base [--reps 3]``
(make the baseline with ``git worktree add /tmp/S-base <commit>``).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, required=True, help="a git worktree of the baseline commit")
    ap.add_argument("--current", type=Path, default=HERE, help="the tree measured (default: this one)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="riskon-bench-store-") as tmp:
        work = Path(tmp)
        trees = {"baseline": a.base.resolve(), "current": a.current.resolve()}
        dbs = {}
        for label, tree in trees.items():
            db = work / f"{label}.duckdb"
            seconds, rss, _ = riskon(tree, ["sweep", "runs/big_sweep.toml", "--db", str(db), "--workers",
                                            str(a.workers), "--top", "1"], tree)  # fmt: skip
            dbs[label] = db
            size = db.stat().st_size
            print(f"{label}: sweep {seconds:.1f} s, store {size:,} bytes = {size / 10_000:,.0f} bytes per run")
        for label, tree in trees.items():  # the first query: robustness computed (and, current, stored)
            seconds, rss, _ = riskon(tree, ["results", "big_sweep", "--top", "5", "--db", str(dbs[label])], tree)
            print(f"{label}: first results {seconds:.1f} s, {rss:.0f} MB")
        commands = {
            "results --top 5": lambda db: ["results", "big_sweep", "--top", "5", "--db", str(db)],
            "report --sweep": lambda db: [
                "report",
                "--sweep",
                "big_sweep",
                "--db",
                str(db),
                "--out",
                str(work / "sweep.html"),
            ],  # fmt: skip
        }
        for name, args in commands.items():
            got: dict[str, list[tuple[float, float]]] = {k: [] for k in trees}
            for _ in range(a.reps):
                for label, tree in trees.items():  # alternating baseline and current
                    seconds, rss, _ = riskon(tree, args(dbs[label]), tree)
                    got[label].append((seconds, rss))
            med = {k: (statistics.median(s for s, _ in v), statistics.median(r for _, r in v)) for k, v in got.items()}
            (bs, br), (cs, cr) = med["baseline"], med["current"]
            print(f"{name}: baseline {bs:.2f} s {br:.0f} MB | current {cs:.2f} s {cr:.0f} MB | "
                  f"time ratio {cs / bs:.2f}x, memory ratio {cr / br:.2f}x (medians of {a.reps})")  # fmt: skip
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
