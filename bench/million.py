"""A million-combination sweep on this machine: wall time, peak memory of the process tree, store size, queries.

Runs ``riskon sweep runs/million.toml`` (10 x 10 x 10 x 10 x 10 combinations of the seed strategy, fast
engine, 2 workers, the lookahead check of each rule setting included) in a fresh process into a new store,
sampling the memory of the whole process tree (the sweep and every worker it starts) every 0.25 s: the peak
of the summed resident set sizes (RSS; pages shared after a fork count once per process, so it overstates)
and of the summed proportional set sizes (PSS; shared pages split between their processes: the memory the
tree really holds). Then times ``riskon results million --top 5`` (the first computes and stores the
robustness, the later ones read it back) and ``riskon report --sweep million`` the same way, and prints the
store's size, the load average before and after each step, and whether each limit of issue 19 was met.

``--base TREE`` runs every step with a second tree too (a ``git worktree`` of the commit to compare
against), alternating, for ratios in the same run; with ``--config`` a smaller grid makes that affordable.

Run: ``RISKON_DATA=/work/shared/data python bench/million.py [--scheduler local] [--reps 3] [--keep DIR]``.
Not part of the test suite (it takes ~10+ minutes of both cores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
PAGE = os.sysconf("SC_PAGE_SIZE")
LIMITS = {"sweep s": 600.0, "store MB": 2000.0, "peak MB": 4000.0, "report s": 60.0}


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(name))
    return kids


def tree_memory(root: int) -> tuple[float, float]:
    """(summed RSS, summed PSS) in MB of ``root`` and all its descendants now."""
    kids = _children()
    todo, rss, pss = [root], 0, 0
    while todo:
        pid = todo.pop()
        todo += kids.get(pid, [])
        try:
            with open(f"/proc/{pid}/statm") as f:
                rss += int(f.read().split()[1]) * PAGE
            with open(f"/proc/{pid}/smaps_rollup") as f:
                pss += next(int(line.split()[1]) * 1024 for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration, ValueError):
            continue
    return rss / 2**20, pss / 2**20


def measured(tree: Path, args: list[str], cwd: Path) -> dict:
    """``riskon ARGS`` from ``tree`` in a fresh process: wall seconds, peak tree RSS and PSS (MB), output."""
    code = f"import sys; sys.argv = ['riskon', *{args!r}]; from riskon.cli import main; main()"
    env = {**os.environ, "PYTHONPATH": str(tree), "MPLBACKEND": "Agg"}
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    peak = [0.0, 0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss, pss = tree_memory(proc.pid)
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            done.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = proc.communicate()[0]
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"riskon {' '.join(args)} failed (exit {proc.returncode}) in {tree}:\n{out[-3000:]}")
    return {"s": wall, "rss": peak[0], "pss": peak[1], "out": out, "load": (load0, os.getloadavg()[0])}


def store_mb(db: Path) -> float:
    """The store's bytes on disk (the file and any write-ahead log), in MB."""
    return sum(p.stat().st_size for p in (db, db.with_name(db.name + ".wal")) if p.exists()) / 1e6


def line(label: str, r: dict) -> str:
    """One measured step as printed."""
    return (f"{label}: {r['s']:.1f} s, peak tree RSS {r['rss']:,.0f} MB, PSS {r['pss']:,.0f} MB "
            f"(load {r['load'][0]:.1f} -> {r['load'][1]:.1f})")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=Path("runs/million.toml"), help="relative to each tree")
    ap.add_argument("--name", default="million", help="the config's sweep name")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheduler", help="passed to riskon sweep (e.g. 'local': a Dask LocalCluster)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each query (medians)")
    ap.add_argument("--base", type=Path, help="a git worktree of a commit to compare against, same steps")
    ap.add_argument("--keep", type=Path, help="keep the stores in this folder (default: a temporary one)")
    a = ap.parse_args()
    trees = {"current": HERE}
    if a.base:
        trees = {"baseline": a.base.resolve(), **trees}
    print(f"load average at start: {os.getloadavg()}; {os.cpu_count()} cores", flush=True)
    work = a.keep or Path(tempfile.mkdtemp(prefix="riskon-bench-million-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        got: dict[str, dict] = {k: {} for k in trees}
        for label, tree in trees.items():
            db = work / f"{label}.duckdb"
            for p in (db, db.with_name(db.name + ".wal")):
                p.unlink(missing_ok=True)
            args = ["sweep", str(a.config), "--db", str(db), "--workers", str(a.workers), "--top", "3"]
            r = measured(tree, args + (["--scheduler", a.scheduler] if a.scheduler else []), tree)
            got[label]["sweep"], got[label]["db"] = r, db
            summary = [ln for ln in r["out"].splitlines() if "combinations" in ln]
            print(line(f"{label}: sweep", r), f"store {store_mb(db):,.1f} MB", *summary[-1:], sep="\n  ", flush=True)
            r = measured(tree, ["results", a.name, "--top", "5", "--db", str(db)], tree)
            print(line(f"{label}: first results (robustness computed and stored)", r), flush=True)
            got[label]["first results"] = r
        queries = {
            "results --top 5": lambda db: ["results", a.name, "--top", "5", "--db", str(db)],
            "report --sweep": lambda db: ["report", "--sweep", a.name, "--db", str(db), "--out", str(work / "s.html")],
        }
        for name, args in queries.items():
            runs: dict[str, list[dict]] = {k: [] for k in trees}
            for _ in range(a.reps):
                for label, tree in trees.items():  # alternating the trees
                    runs[label].append(measured(tree, args(got[label]["db"]), tree))
            for label in trees:
                med = {k: statistics.median(r[k] for r in runs[label]) for k in ("s", "rss", "pss")}
                got[label][name] = med
                print(f"{label}: {name}: median of {a.reps}: {med['s']:.2f} s (range "
                      f"{min(r['s'] for r in runs[label]):.2f}-{max(r['s'] for r in runs[label]):.2f}), peak tree "
                      f"RSS {med['rss']:,.0f} MB, PSS {med['pss']:,.0f} MB", flush=True)  # fmt: skip
        if "baseline" in got:
            for step in ("sweep", "first results", "results --top 5", "report --sweep"):
                b, c = got["baseline"][step], got["current"][step]
                ratio_t, ratio_m = c["s"] / b["s"], c["pss"] / b["pss"]
                print(f"ratio current / baseline, {step}: time {ratio_t:.2f}x, peak PSS {ratio_m:.2f}x")
            b, c = store_mb(got["baseline"]["db"]), store_mb(got["current"]["db"])
            print(f"ratio current / baseline, store size: {c / b:.2f}x")
        cur = got["current"]
        checks = {
            "sweep s": cur["sweep"]["s"],
            "store MB": store_mb(cur["db"]),
            "peak MB": cur["sweep"]["pss"],
            "report s": cur["report --sweep"]["s"],
        }
        for k, v in checks.items():
            print(f"limit {k} <= {LIMITS[k]:g}: {v:,.1f} {'met' if v <= LIMITS[k] else 'NOT met'}")
    finally:
        if a.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
