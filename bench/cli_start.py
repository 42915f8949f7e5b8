"""What each ``riskon`` command costs before it does anything: ``riskon CMD --help``, this tree against a baseline.

``--help`` loads the command (its module and everything that module imports) and prints, running nothing:
what a user waits for before the command's own work starts. Each command runs as a new process, alternately
this tree's installed script and the baseline tree's entry (``--baseline``, a ``git worktree`` of the commit
to compare with, first on ``PYTHONPATH``), ``--rounds`` times; printed are the medians of the wall time and
of the CPU time (the process and its children, user + system), the ratio this tree / baseline, and whether
DuckDB, pandas, rich and pydantic (typer's parameter coercion) were imported (read from one more run under
``python -X importtime``, which is not timed: its listing slows the start).

Run: ``python bench/cli_start.py --baseline /tmp/base [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The commands (and one subcommand of each group) timed, as the help lists them.
COMMANDS = ["--version", "--help", "run", "status", "rules", "sweep", "results", "report", "compare", "walkforward",
            "events", "data list", "check lookahead", "store list"]  # fmt: skip
HEAVY = ("duckdb", "pandas", "rich", "pydantic")
BASELINE_CLI = "import sys; sys.argv[0] = 'riskon'; from riskon.cli import main; main()"


#: Where the commands run: not a source tree (``python -c`` puts the current folder first on ``sys.path``, so
#: the baseline's ``riskon`` would be this tree's when run from here).
NEUTRAL = Path(tempfile.gettempdir())


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """Wall and CPU seconds of one command (its process and its children, user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *cmd], env=env, cwd=NEUTRAL, capture_output=True, text=True)
    took = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{cmd} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def heavy_imports(cmd: list[str], env: dict) -> set[str]:
    """The heavy packages (``HEAVY``) one command imports, from ``python -X importtime``'s listing."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *cmd], env=env, cwd=NEUTRAL, capture_output=True,
                          text=True)  # fmt: skip
    names = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in proc.stderr.splitlines()
             if line.startswith("import time:")}  # fmt: skip
    return names & set(HEAVY)


def main() -> None:
    """Time every command's start in both trees, alternating, and print the medians and ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--baseline", type=Path, required=True, help="a source tree of the commit to compare with")
    args = ap.parse_args()
    script = shutil.which("riskon")
    if script is None:
        sys.exit("the riskon command is not installed: pip install -e . first")
    trees = {"now": ([script], dict(os.environ)),
             "baseline": (["-c", BASELINE_CLI], dict(os.environ, PYTHONPATH=str(args.baseline.resolve())))}  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; medians of {args.rounds} rounds")
    head = f"{'riskon ...':22} {'now s':>6} {'CPU':>5} {'base s':>6} {'CPU':>5} {'CPU now/base':>12}"
    print(f"{head}  imports now | baseline")
    for command in COMMANDS:
        words = command.split() + ([] if command.startswith("--") else ["--help"])
        wall: dict[str, list[float]] = {t: [] for t in trees}
        cpu: dict[str, list[float]] = {t: [] for t in trees}
        heavy = {tree: heavy_imports([*cli, *words], env) for tree, (cli, env) in trees.items()}
        for i in range(args.rounds):
            for tree in list(trees)[i % 2 :] + list(trees)[: i % 2]:  # each goes first in turn
                cli, env = trees[tree]
                w, c = timed([*cli, *words], env)
                wall[tree].append(w)
                cpu[tree].append(c)
        m = {t: (statistics.median(wall[t]), statistics.median(cpu[t])) for t in trees}
        shown = " | ".join(",".join(sorted(heavy[t])) or "-" for t in trees)
        print(f"{' '.join(words):22} {m['now'][0]:6.2f} {m['now'][1]:5.2f} {m['baseline'][0]:6.2f} "
              f"{m['baseline'][1]:5.2f} {m['now'][1] / m['baseline'][1]:11.2f}x  {shown}", flush=True)  # fmt: skip
    print(f"load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
