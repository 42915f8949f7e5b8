"""Sweep throughput: riskon's executors against backtrader's ``optstrategy``, as ratios in one run.

The grid varies exit parameters of the seed strategy (trailing stop x index drawdown x max holding
days = 200 combinations) over the full history, so ``optstrategy`` can run the very same
``RiskOn`` strategy on one preloaded feed. Every path uses ``stdstats=False`` and no analyzers.
riskon runs the grid on both of its engines (backtrader, and the vectorised ``fast`` simulator held
equal to it by the parity tests), serially, on a local process pool and on a Dask LocalCluster;
each rate includes worker start-up, data shipping and the DuckDB writes.
Run: ``RISKON_DATA=../shared/data python bench/sweep.py [--combos 200] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import tempfile
import time
from pathlib import Path

TRAILS = [0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40]
DDS = [False, 0.05, 0.10, 0.15, 0.20]
HOLDS = [False, 30, 90, 180, 365]


def grid(n: int) -> list[dict]:
    combos = [
        {"exits.trailing_stop": t, "exits.index_drawdown": d, "exits.max_hold_days": h}
        for t, d, h in itertools.product(TRAILS, DDS, HOLDS)
    ]
    return combos[:n]


def write_config(folder: Path, combos: list[dict]) -> Path:
    trails = sorted({c["exits.trailing_stop"] for c in combos})
    text = (Path(__file__).resolve().parents[1] / "runs" / "seed.toml").read_text()
    text = text.replace('name = "seed"', 'name = "bench_sweep"')
    text += f"""
[sweep]
method = "grid"
objective = "sharpe"
batch_size = 50

[sweep.params]
"exits.trailing_stop" = {trails}
"exits.index_drawdown" = {[d if d else False for d in DDS]}
"exits.max_hold_days" = {[h if h else False for h in HOLDS]}
""".replace("False", "false")
    path = folder / "bench_sweep.toml"
    path.write_text(text)
    return path


def bench_optstrategy(combos: list[dict], maxcpus: int) -> float:
    from feeds.btcompat import bt
    from feeds.btfeed import make_feed
    from riskon.config import load
    from riskon.runner import prepare, strategy_params
    from strategies.backtest import spans
    from strategies.strategy import RiskOn, RiskOnBroker

    cfg = load(Path(__file__).resolve().parents[1] / "runs" / "seed.toml")
    _, bars, assets, _ = prepare(cfg)
    base = strategy_params(cfg)
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True, runonce=True, preload=True, maxcpus=maxcpus,
                         optreturn=True, optdatas=True)  # fmt: skip
    cerebro.broker = RiskOnBroker()
    for name, frame in assets.items():
        cerebro.adddata(make_feed(frame, bars, name=name))  # the same array-backed feed riskon uses
    cerebro.broker.setcash(base.cash)
    cerebro.broker.set_coo(True)
    cerebro.broker.addcommissioninfo(bt.CommissionInfo(commission=base.fee, percabs=True))
    cerebro.broker.set_slippage_perc(base.slippage, slip_open=True, slip_limit=True, slip_match=True, slip_out=True)
    trails = sorted({c["exits.trailing_stop"] for c in combos})
    cerebro.optstrategy(
        RiskOn, trail=trails, index_exit_dd=[d or None for d in DDS], max_hold_days=[h or None for h in HOLDS],
        fee=[base.fee], slippage=[base.slippage], spans=[spans(assets)],
    )  # fmt: skip
    t = time.perf_counter()
    results = cerebro.run()
    assert len(results) == len(trails) * len(DDS) * len(HOLDS)
    return len(results) / (time.perf_counter() - t)


def bench_riskon(path: Path, workers: int, scheduler: str | None, engine: str) -> float:
    from riskon.sweeps.driver import run_sweep

    db = Path(tempfile.mkdtemp()) / "bench.duckdb"
    t = time.perf_counter()
    res = run_sweep(path, db=db, workers=workers, scheduler=scheduler, engine=engine)
    elapsed = time.perf_counter() - t
    assert res.failed == 0 and res.ran == res.total, res
    shutil.rmtree(db.parent)
    return res.ran / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--combos", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-dask", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("RISKON_CACHE", tempfile.mkdtemp())
    combos = grid(args.combos)
    folder = Path(tempfile.mkdtemp())
    path = write_config(folder, combos)
    rates = {}
    rates["optstrategy, 1 process"] = bench_optstrategy(combos, 1)
    rates[f"optstrategy, {args.workers} processes"] = bench_optstrategy(combos, args.workers)
    for engine in ("backtrader", "fast"):
        rates[f"riskon {engine}, serial"] = bench_riskon(path, 1, None, engine)
        rates[f"riskon {engine}, local pool x{args.workers}"] = bench_riskon(path, args.workers, None, engine)
        if not args.skip_dask:
            rates[f"riskon {engine}, Dask LocalCluster x{args.workers}"] = bench_riskon(
                path, args.workers, "local", engine
            )
    base = rates[f"optstrategy, {args.workers} processes"]
    print(f"{len(combos)} combinations of the seed strategy over the full history ({os.cpu_count()} cores)")
    print(f"| path | runs/s | × optstrategy ({args.workers} processes) |")
    print("|---|---:|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.2f} | {rate / base:.2f} |")


if __name__ == "__main__":
    main()
