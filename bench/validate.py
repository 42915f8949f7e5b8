"""Validating and identifying a grid's combinations: CPU per combination, this tree against a baseline tree.

Each side runs in a fresh interpreter importing its own tree (``PYTHONPATH``): it validates the first
``--n`` combinations of ``runs/million.toml`` (``riskon.sweeps.spec.Combinations``, what every sweep does
before anything runs) and gives each its run id (``riskon.sweeps.keys.run_id``, or the tree's
``RunIdMaker`` when it has one), timing each with ``time.process_time`` (CPU of that process only: the
machine is shared). Sides alternate ``--repeat`` times; the medians and their ratio are printed with the
load average.

Run: ``RISKON_DATA=../shared/data python bench/validate.py --base /tmp/base [--n 20000] [--repeat 3]``
(``git worktree add /tmp/base <commit>`` first).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

CHILD = r"""
import itertools, json, sys, time, tomllib
from riskon.sweeps.spec import Combinations, parse_sweep
from riskon.sweeps import keys
n = int(sys.argv[1])
raw = tomllib.loads(open("runs/million.toml").read())
spec = parse_sweep(raw, "runs/million.toml")
combos = iter(Combinations(raw, spec, "runs/million.toml"))
next(combos)  # imports, the rule registry's first scan
t0 = time.process_time()
configs = [cfg for _, cfg in itertools.islice(combos, n)]
t_validate = time.process_time() - t0
fps = {"^RUT@1d": "f" * 16, "BTC-USD@1d": "e" * 16}
maker = keys.RunIdMaker("fast") if hasattr(keys, "RunIdMaker") else None
t0 = time.process_time()
ids = [maker(c, fps) for c in configs] if maker else [keys.run_id(c, fps, "fast") for c in configs]
t_ids = time.process_time() - t0
print(json.dumps({"validate_us": t_validate / n * 1e6, "run_id_us": t_ids / n * 1e6, "n": len(ids)}))
"""


def side(tree: Path, n: int) -> dict:
    """One fresh process importing ``tree``: CPU per combination for validation and for run ids."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(n)], cwd=tree, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{tree}: {out.stderr.strip().splitlines()[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Alternate the two trees and print medians, ratios and the load average."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, required=True, help="a git worktree of the baseline commit")
    ap.add_argument("--n", type=int, default=20_000, help="combinations per process")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    got: dict[str, list[dict]] = {"base": [], "this": []}
    for _ in range(args.repeat):
        got["base"].append(side(args.base.resolve(), args.n))
        got["this"].append(side(HERE, args.n))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"{'per combination, CPU, median of ' + str(args.repeat):<40} {'base':>10} {'this':>10} {'base/this':>10}")
    for key, label in (("validate_us", "validate (Combinations)"), ("run_id_us", "run id")):
        b = statistics.median(r[key] for r in got["base"])
        t = statistics.median(r[key] for r in got["this"])
        print(f"{label:<40} {b:>8.1f}us {t:>8.1f}us {b / t:>9.2f}x")


if __name__ == "__main__":
    main()
