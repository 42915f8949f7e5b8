"""One run with its tear sheet: ``riskon run`` against the same job wired by hand, alternated, in one process tree.

**The hand-wired job** is a plain script (``HAND_WIRED`` below): it loads ``RUT.csv`` and ``BTC-USD.csv``
with pandas, runs the seed strategy (^RUT confirmed new closing high over 3 sessions -> long BTC at the
next open, 25% trailing stop on the close, exit when ^RUT closes 10% below its high, 10 bps fees) in a
plain backtrader ``Cerebro``, and calls ``quantstats.reports.html`` against buy-and-hold BTC. It is a
timing baseline, not riskon's model: its index join is a plain date merge, its fills backtrader's defaults.

**riskon** runs ``riskon run`` (the installed command, a new process) on a copy of ``runs/seed.toml``
whose fee differs by a hair in every round, so every run has a run id never seen before; the data cache
is warm (filled once before timing, like a user's second day), the report folder is new each time and
no process is kept between runs.

Each round runs both, alternating which goes first; the figure is the median over ``--rounds`` (>= 5)
and the ratio riskon / hand-wired of the medians, both measured in this run on this machine. Beside the
wall time each contender's CPU time is printed (its process and every process it started, user + system):
Linux groups CPU time per session, so on a machine whose other sessions keep the cores busy the wall time
follows the CPU time, and the CPU ratio is what the wall ratio tends to under load.

With ``--baseline TREE`` (a ``git worktree`` of the commit to compare with), that tree's ``riskon run`` is
a third contender in every round (its own warm cache, its CLI run with the tree first on ``PYTHONPATH``),
and the ratio riskon / baseline is printed too. The load average is printed each round: the machine is
shared, so only ratios measured in the same run mean anything.

Run: ``RISKON_DATA=../shared/data python bench/single_run.py [--rounds 5] [--no-report] [--baseline /tmp/base]``.
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

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "runs" / "seed.toml"

HAND_WIRED = r"""
import sys
import backtrader as bt
import pandas as pd
import quantstats as qs

data_dir, out = sys.argv[1], sys.argv[2]
idx = pd.read_csv(f"{data_dir}/RUT.csv", parse_dates=["Date"], index_col="Date")
btc = pd.read_csv(f"{data_dir}/BTC-USD.csv", parse_dates=["Date"], index_col="Date")
close = idx["Close"]
prior_high = close.cummax().shift(1)
broke = close > prior_high
level = prior_high.where(broke).ffill()
held = (close > level).astype(int)
run = held.groupby((held == 0).cumsum()).cumsum()  # sessions in a row above the broken level
confirmed = broke.shift(2, fill_value=False) & (run >= 3)
sig = pd.DataFrame({"confirmed": confirmed, "idx_close": close, "idx_ath": close.cummax()})
feed = btc.join(sig, how="left").ffill().fillna({"confirmed": False})
feed["confirmed"] = feed["confirmed"].astype(float)


class Feed(bt.feeds.PandasData):
    lines = ("confirmed", "idx_close", "idx_ath")
    params = (("confirmed", -1), ("idx_close", -1), ("idx_ath", -1))


class Seed(bt.Strategy):
    def __init__(self):
        self.peak = None

    def next(self):
        d = self.data
        if not self.position:
            if d.confirmed[0] > 0:
                self.order_target_percent(target=0.99)
                self.peak = d.close[0]
            return
        self.peak = max(self.peak, d.close[0])
        if d.close[0] < self.peak * 0.75 or d.idx_close[0] < d.idx_ath[0] * 0.9:
            self.close()


cerebro = bt.Cerebro(stdstats=False)
cerebro.adddata(Feed(dataname=feed.rename(columns=str.lower)))
cerebro.addstrategy(Seed)
cerebro.broker.setcash(100_000)
cerebro.broker.setcommission(commission=0.001)
cerebro.addanalyzer(bt.analyzers.TimeReturn, _name="ret", timeframe=bt.TimeFrame.Days)
strat = cerebro.run()[0]
returns = pd.Series(strat.analyzers.ret.get_analysis())
returns.index = pd.DatetimeIndex(returns.index)
bench = btc["Close"].pct_change().reindex(returns.index).fillna(0.0)
qs.reports.html(returns, benchmark=bench, output=out, title="seed (hand-wired)")
"""


def timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float]:
    """Wall seconds of the command, and the CPU seconds of it and every process it started (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{cmd[:3]} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


#: ``riskon`` from another source tree (``--baseline``): its CLI entry run with that tree first on the path.
BASELINE_CLI = "import sys; sys.argv[0] = 'riskon'; from riskon.cli import main; main()"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-report", action="store_true", help="time riskon without its pages (the hand job as is)")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="a source tree of the commit to compare with (git worktree add /tmp/base <commit>): "
                         "its riskon run is timed in the same rounds")  # fmt: skip
    args = ap.parse_args()
    data = os.environ.get("RISKON_DATA")
    if not data or not Path(data, "RUT.csv").exists():
        sys.exit("set RISKON_DATA to the folder holding RUT.csv and BTC-USD.csv (e.g. ../shared/data)")
    riskon = shutil.which("riskon")
    if riskon is None:
        sys.exit("the riskon command is not installed: pip install -e . first")
    if args.baseline is not None and not (args.baseline / "riskon" / "cli" / "__init__.py").exists():
        sys.exit(f"--baseline {args.baseline}: not a riskon source tree (no riskon/cli/__init__.py)")
    work = Path(tempfile.mkdtemp(prefix="riskon-bench-single-"))
    env = dict(os.environ, RISKON_CACHE=str(work / "cache"), MPLBACKEND="Agg")
    script = work / "hand_wired.py"
    script.write_text(HAND_WIRED, encoding="utf-8")
    seed = SEED.read_text(encoding="utf-8")
    contenders: dict[str, tuple[list[str], dict]] = {"riskon": ([riskon], env)}
    if args.baseline is not None:  # its own warm cache: the two trees never read each other's files
        base_env = dict(env, RISKON_CACHE=str(work / "cache-base"), PYTHONPATH=str(args.baseline.resolve()))
        contenders["baseline"] = ([sys.executable, "-c", BASELINE_CLI], base_env)
    # warm the data cache and the calendar once: a user's second run, not a first import
    warm = work / "warm.toml"
    warm.write_text(seed, encoding="utf-8")
    for cli, cli_env in contenders.values():
        timed([*cli, "run", str(warm), "--no-report"], cli_env, work)
    times: dict[str, list[float]] = {who: [] for who in [*contenders, "hand"]}
    cpus: dict[str, list[float]] = {who: [] for who in times}
    for i in range(max(args.rounds, 1)):
        cmds = {}
        for k, (who, (cli, cli_env)) in enumerate(contenders.items()):
            cfg = work / f"{who}_{i}.toml"  # a fee never run before: a new run id in every round and tree
            fee = 10 + (i * len(contenders) + k + 1) * 1e-6
            cfg.write_text(seed.replace("fee_bps = 10 ", f"fee_bps = {fee!r} "), encoding="utf-8")
            out = ["--no-report"] if args.no_report else ["--out", str(work / f"{who}_r{i}")]
            cmds[who] = ([*cli, "run", str(cfg), *out], cli_env)
        cmds["hand"] = ([sys.executable, str(script), data, str(work / f"hand_{i}.html")], env)
        order = list(cmds)
        order = order[i % len(order) :] + order[: i % len(order)]  # each goes first in turn
        for who in order:
            wall, cpu = timed(*cmds[who], work)
            times[who].append(wall)
            cpus[who].append(cpu)
        load = os.getloadavg()[0]
        print(f"round {i + 1}: " + ", ".join(f"{w} {t[-1]:.2f} s (CPU {cpus[w][-1]:.2f} s)" for w, t in times.items())
              + f" (load {load:.2f})", flush=True)  # fmt: skip
    med = {w: statistics.median(t) for w, t in times.items()}
    cpu = {w: statistics.median(t) for w, t in cpus.items()}
    tag = " [--no-report]" if args.no_report else ""
    print(f"\nmedian of {len(times['hand'])} rounds{tag}, load average now {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} cores (CPU: the command and every process it started, user + system):")  # fmt: skip
    for who in contenders:
        print(f"  {who:8} {med[who]:6.2f} s  ratio to hand-wired {med[who] / med['hand']:.2f}x (target <= 0.70x); "
              f"CPU {cpu[who]:.2f} s, {cpu[who] / cpu['hand']:.2f}x the hand-wired job's")  # fmt: skip
    print(f"  {'hand':8} {med['hand']:6.2f} s  CPU {cpu['hand']:.2f} s")
    if "baseline" in med:
        wall_ratio, cpu_ratio = med["riskon"] / med["baseline"], cpu["riskon"] / cpu["baseline"]
        print(f"  riskon / baseline: {wall_ratio:.2f}x wall, {cpu_ratio:.2f}x CPU")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
