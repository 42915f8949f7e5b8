"""Shared by the CLI tests of stored sweeps: a small real sweep in a store, and the CLI called in-process."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

#: A 4 x 2 x 3 grid of the seed strategy over two years: 24 fast runs, a few seconds.
CONFIG = """\
name = "{name}"
[data]
index = "^RUT"
asset = "BTC-USD"
start = "2019-01-01"
end = "2021-12-31"
[strategy]
rule = "ath_confirmed"
[strategy.params]
confirm_days = 3
[exits]
trailing_stop = 0.25
[costs]
fee_bps = 10
slippage_bps = 5
[sweep]
batch_size = 8
[sweep.params]
"strategy.params.confirm_days" = [1, 2, 3, 5]
"strategy.params.threshold" = [0.0, 0.005]
"exits.trailing_stop" = {{ start = 0.1, stop = 0.3, step = 0.1 }}
"""


def make_sweep(folder: Path, name: str = "wsweep") -> tuple[Path, str]:
    """Run the small sweep into ``folder/store.duckdb`` (fast engine, in this process); the store and sweep id."""
    from riskon.sweeps.driver import run_sweep

    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / f"{name}.toml"
    cfg.write_text(CONFIG.format(name=name), encoding="utf-8")
    db = folder / "store.duckdb"
    res = run_sweep(cfg, db=db, workers=1, engine="fast")
    assert (res.total, res.failed) == (24, 0)
    return db, res.sweep_id


def call(capsys, *args: str) -> tuple[int, str, str]:
    """``riskon ARGS`` through the CLI's entry function in this process: exit status, stdout, stderr."""
    from riskon import cli

    argv, sys.argv = sys.argv, ["riskon", *args]
    try:
        cli.main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = argv
    out, err = capsys.readouterr()
    return code, out, err


def digest(path: Path) -> str:
    """A file's SHA-256 (the store must be byte-identical after a refused command)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_under(root: Path) -> dict[str, str]:
    """Every file below ``root`` (relative path -> SHA-256)."""
    return {str(p.relative_to(root)): digest(p) for p in sorted(root.rglob("*")) if p.is_file()}
