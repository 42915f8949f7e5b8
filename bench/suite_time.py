"""Wall and CPU time of chosen tests in one tree against a baseline tree, alternating, with per-test durations.

The test suite must stay well under CI's 15 minutes on 2 cores, so a test made faster is measured against
the same test as it was: ``pytest -q`` on the given tests in each tree (its own source first on
``PYTHONPATH``), ``--rounds`` times, the trees alternating and each going first in turn. Printed: the load
average before each run, the medians of the wall time and of the CPU time (pytest and every process it
waited for, user + system), each test's median duration (setup + call + teardown, from ``--durations``)
and CPU time, split into pytest's own process and its children (``bench/suite_time_plugin.py``), and the
ratios this tree / baseline. On a machine other sessions keep busy the wall time follows the CPU
time, whatever the number of processes: compare the ratios, and read the CPU column beside the wall.

Run: ``python bench/suite_time.py --baseline /tmp/base [--tree .] [--rounds 3] tests/x.py tests/y.py::test_z``
(``--tree`` and ``--baseline``: ``git worktree``s of the two commits, or of one commit with and without
the test edits; the data comes from ``RISKON_DATA`` as for the suite).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: One line of ``--durations``: seconds, phase, test id.
DURATION = re.compile(r"^\s*([0-9.]+)s (setup|call|teardown)\s+(\S.*?)\s*$")


def one_run(tree: Path, tests: list[str]) -> tuple[float, float, dict[str, tuple[float, float, float]]]:
    """Wall and CPU seconds of ``pytest -q TESTS`` in ``tree``, and each test's (duration, own CPU, children's
    CPU); exits if a test fails."""
    with tempfile.TemporaryDirectory(prefix="suite-time-") as folder:
        split = Path(folder) / "cpu.jsonl"
        env = dict(os.environ, PYTHONPATH=f"{tree}{os.pathsep}{HERE}", SUITE_TIME_OUT=str(split))
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "suite_time_plugin",
               "--durations=0", "--durations-min=0", *tests]  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            sys.exit(f"pytest failed in {tree} ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
        cpu_of = {}
        for line in split.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            cpu_of[row["id"]] = (row["self"], row["children"])
    seconds: dict[str, float] = defaultdict(float)
    for line in proc.stdout.splitlines():
        m = DURATION.match(line)
        if m:
            seconds[m.group(3)] += float(m.group(1))
    per_test = {t: (seconds[t], *cpu_of.get(t, (0.0, 0.0))) for t in seconds}
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, per_test


def main() -> None:
    """Run the tests in both trees, alternating, and print the medians and the ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tests", nargs="+", help="test files or ids, relative to each tree")
    ap.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1], help="default: this tree")
    ap.add_argument("--baseline", type=Path, required=True, help="a source tree of the commit to compare with")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    trees = {"now": args.tree.resolve(), "baseline": args.baseline.resolve()}
    wall: dict[str, list[float]] = {t: [] for t in trees}
    cpu: dict[str, list[float]] = {t: [] for t in trees}
    per: dict[str, dict[str, list[tuple[float, float, float]]]] = {t: defaultdict(list) for t in trees}
    print(f"{os.cpu_count()} cores; {args.rounds} rounds; now = {trees['now']}, baseline = {trees['baseline']}")
    for i in range(args.rounds):
        for tree in list(trees)[i % 2 :] + list(trees)[: i % 2]:  # each goes first in turn
            load = os.getloadavg()[0]
            w, c, per_test = one_run(trees[tree], args.tests)
            wall[tree].append(w)
            cpu[tree].append(c)
            for test, row in per_test.items():
                per[tree][test].append(row)
            print(f"round {i + 1} {tree:8} wall {w:7.1f} s  CPU {c:7.1f} s  load before {load:5.2f}", flush=True)
    # per test: medians of the duration, of the CPU in all and of its own and its children's parts
    med = {t: {k: [statistics.median(col) for col in zip(*v, strict=True)] for k, v in per[t].items()} for t in trees}
    print(f"\n{'test (medians)':70} {'now s':>6} {'base s':>6} {'ratio':>6} | {'CPU now':>7} {'base':>6} {'ratio':>6}"
          f" | now: {'own':>5} {'kids':>5}")  # fmt: skip
    for test in sorted(set(med["now"]) | set(med["baseline"]), key=lambda k: -med["baseline"].get(k, [0.0])[0]):
        now, base = med["now"].get(test), med["baseline"].get(test)
        if max(now[0] if now else 0.0, base[0] if base else 0.0) < 0.5:
            continue
        if now is None or base is None:
            print(f"{test[-70:]:70} only in {'baseline' if now is None else 'now'}")
            continue
        cn, cb = now[1] + now[2], base[1] + base[2]
        print(f"{test[-70:]:70} {now[0]:6.1f} {base[0]:6.1f} {now[0] / base[0]:5.2f}x | {cn:7.1f} {cb:6.1f} "
              f"{cn / cb if cb else float('nan'):5.2f}x | {now[1]:9.1f} {now[2]:5.1f}")  # fmt: skip
    mw = {t: statistics.median(wall[t]) for t in trees}
    mc = {t: statistics.median(cpu[t]) for t in trees}
    print(f"\nwall {mw['now']:.1f} s against {mw['baseline']:.1f} s: {mw['now'] / mw['baseline']:.2f}x")
    print(f"CPU  {mc['now']:.1f} s against {mc['baseline']:.1f} s: {mc['now'] / mc['baseline']:.2f}x")
    print(f"load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
