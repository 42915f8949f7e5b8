"""Where one ``riskon run`` with its pages spends its CPU: each step's CPU seconds and in which process.

Runs ``riskon run runs/seed.toml --out DIR`` in this process (the CLI's own entry), with a timer around each
step: the CLI's imports, the backtest, run.html, and in the tear-sheet worker its quantstats import, the
figure plan, quantstats' page (metrics table, EOY and drawdown tables), the signal chart and each figure
(in the worker or a helper). Like ``bench/single_run.py``: a fee that differs by a hair (a new run id), a
warm data cache (filled first), a new report folder. The total CPU is this process's and every process
it started (user + system). The load average is printed: on a busy machine every step takes more CPU.

Run: ``RISKON_DATA=../shared/data python bench/single_run_steps.py``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
T0 = time.perf_counter()
#: Where every process appends its steps (pid, step, start, end, CPU), and the worker's job runner it wraps.
_STATE: dict = {}


def log(step: str, start: float, end: float, cpu: float) -> None:
    """One timed step, from whichever process ran it."""
    with open(_STATE["log"], "a", encoding="utf-8") as f:
        f.write(f"{os.getpid()}\t{step}\t{start - T0:.3f}\t{end - T0:.3f}\t{cpu:.3f}\n")


def call(name: str, *args):
    """``sheet_pool._call`` with the worker's imports timed and timers put around figure_worker's steps."""
    if name == "warm":  # the worker's first job: figure_worker's imports (quantstats, matplotlib)
        start, cpu = time.perf_counter(), time.process_time()
        # the worker module loads quantstats: timed here, in the worker
        from riskon.pages import figure_worker

        log("worker: quantstats and matplotlib imports", start, time.perf_counter(), time.process_time() - cpu)
        _timed(figure_worker, "plan", "worker: figure plan (reports.html recorded)")
        _timed(figure_worker, "page", "worker: quantstats' page (metrics, tables)")
        _timed(figure_worker, "chart", "signals.png")
        _timed(figure_worker, "draw", "quantstats' figures (14)")
    return _STATE["call"](name, *args)


def _timed(module, name: str, step: str) -> None:
    inner = getattr(module, name)

    @functools.wraps(inner)
    def wrapper(*args, **kwargs):
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            log(step, start, time.perf_counter(), time.process_time() - cpu)

    setattr(module, name, wrapper)


def main() -> None:
    """Warm the cache, run the seed with its pages once under the step timers, print the CPU per step."""
    data = os.environ.get("RISKON_DATA")
    if not data or not Path(data, "RUT.csv").exists():
        sys.exit("set RISKON_DATA to the folder holding RUT.csv and BTC-USD.csv (e.g. ../shared/data)")
    work = Path(tempfile.mkdtemp(prefix="riskon-bench-steps-"))
    os.environ.update(RISKON_CACHE=str(work / "cache"), MPLBACKEND="Agg")
    seed = (ROOT / "runs" / "seed.toml").read_text(encoding="utf-8")
    (work / "warm.toml").write_text(seed, encoding="utf-8")
    subprocess.run([sys.executable, "-c", "import sys; from riskon.cli import main; sys.argv[0] = 'riskon'; main()",
                    "run", str(work / "warm.toml"), "--no-report"], check=True, capture_output=True)  # fmt: skip
    cfg = work / "seed.toml"
    cfg.write_text(seed.replace("fee_bps = 10 ", "fee_bps = 10.000001 "), encoding="utf-8")
    log_file = _STATE["log"] = work / "steps.log"
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the warm-up run is not counted
    t_start, cpu0 = time.perf_counter(), time.process_time()
    # the command tree and the run command's module, as the script loads them: timed here
    import riskon.cli.commands  # noqa: F401
    import riskon.cli.run_cmd  # noqa: F401

    log(
        "CLI start: the command tree and riskon run's imports", t_start, time.perf_counter(), time.process_time() - cpu0
    )
    # riskon's modules load after the timer above started (they are part of the CLI start)
    from riskon import api
    from riskon.pages import run_page, sheet_pool

    _timed(api, "run", "load, lookahead gate, backtest")
    _timed(run_page, "write_run_page", "run.html and plotly.min.js")
    _STATE["call"] = sheet_pool._call
    sheet_pool._call = call
    sys.argv = ["riskon", "run", str(cfg), "--out", str(work / "out")]
    # the entry point, loaded already (riskon.cli.commands imports it)
    from riskon.cli import main as cli_main

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the run's tables: not what is measured here
            cli_main()
    except SystemExit as e:
        if e.code:
            sys.exit(f"riskon run failed ({e.code})")
    wall = time.perf_counter() - t_start
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = time.process_time() - cpu0 + (kids.ru_utime - kids0.ru_utime) + (kids.ru_stime - kids0.ru_stime)
    steps: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    pids: dict[str, set[int]] = defaultdict(set)
    for line in log_file.read_text(encoding="utf-8").splitlines():
        pid, step, _, _, cpu = line.split("\t")
        steps[step][0] += float(cpu)
        steps[step][1] += 1
        pids[step].add(int(pid))
    print(f"riskon run {cfg.name} with its pages: {wall:.2f} s wall, {total:.2f} s CPU in all its processes "
          f"(load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")  # fmt: skip
    for step, (cpu, n) in steps.items():
        where = "command" if pids[step] == {os.getpid()} else f"{len(pids[step])} process(es)"
        print(f"  {cpu:6.2f} s  {step}{f' x{n}' if n > 1 else ''}  [{where}]")
    print(f"  {total - sum(c for c, _ in steps.values()):6.2f} s  the rest (config, printed tables, CSVs, forks)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
