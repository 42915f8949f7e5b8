"""What the docs pages promise: every metric defined, every command shown exists as written, every
example config loads, and a basket run states its survivorship bias."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from support.clitools import riskon_cmd

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.parts)


def test_every_metric_is_explained():
    """Each metric the tables print has a row, under its printed name, on the metrics page."""
    from riskon.metrics import LABELS, METRICS

    page = (DOCS / "reference" / "metrics.md").read_text(encoding="utf-8")
    for key in METRICS:
        assert f"| {LABELS[key]} |" in page, key


def shell_lines() -> list[tuple[str, str]]:
    """Every ``riskon ...`` command in a bash block of the README or a docs page."""
    found = []
    for path in [ROOT / "README.md", *PAGES]:
        for block in re.findall(r"```bash\n(.*?)```", path.read_text(encoding="utf-8"), re.S):
            for line in block.splitlines():
                for part in line.split("&&"):
                    words = shlex.split(part, comments=True)
                    while words and re.match(r"^[A-Z_]+=", words[0]):
                        words.pop(0)  # RISKON_DATA=... riskon ...
                    if words and words[0] == "riskon":
                        found.append((str(path.relative_to(ROOT)), shlex.join(words)))
    return found


SHELL = shell_lines()


@pytest.mark.parametrize(("where", "line"), SHELL, ids=[f"{w}:{ln[:60]}" for w, ln in SHELL])
def test_documented_commands_exist(where, line):
    """The command path and every --option of each documented command line are real."""
    from typer.main import get_command

    from riskon.cli import app

    words = shlex.split(line)[1:]
    cmd = get_command(app)
    while getattr(cmd, "commands", None) and words and words[0] in cmd.commands:  # typer ships its own click
        cmd = cmd.commands[words.pop(0)]
    assert not getattr(cmd, "commands", None), f"{where}: `{line}` names no command"
    options = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
    unknown = [w.split("=")[0] for w in words if w.startswith("--") and w.split("=")[0] not in options]
    assert unknown == [], f"{where}: `{line}`: no such option"


def test_the_docs_show_the_main_commands():
    assert len(SHELL) > 20
    shown = {line.split()[1] for _, line in SHELL}
    assert {"run", "sweep", "results", "report", "compare", "events", "walkforward", "status"} <= shown


@pytest.mark.parametrize("path", sorted((ROOT / "runs").glob("*.toml")), ids=lambda p: p.name)
def test_example_configs_load(path):
    """The configuration reference says every example in runs/ is tested."""
    import tomllib

    from riskon.config import load
    from riskon.sweeps.spec import parse_sweep

    cfg = load(path)
    assert cfg.name == path.stem
    raw = tomllib.loads(path.read_text())
    if "sweep" in raw:
        assert parse_sweep(raw, str(path)).values


def test_basket_run_states_survivorship_bias(data_dir, tmp_path):
    """Concepts: every basket and top-k report says its coin list has survivorship bias."""
    text = (
        (ROOT / "runs" / "alt_basket.toml")
        .read_text()
        .replace('index = "^RUT"', 'index = "^RUT"\nstart = "2020-06-01"\nend = "2021-12-31"')
    )
    cfg = tmp_path / "alt.toml"
    cfg.write_text(text)
    proc = subprocess.run(
        [*riskon_cmd(), "run", str(cfg), "--no-report", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "survivorship bias" in proc.stdout
    assert "binance:SOL/USDT" in proc.stdout  # one row per coin leg
    import pandas as pd

    trades = pd.read_csv(tmp_path / "out" / "trades.csv")
    assert trades.groupby("position")["asset"].nunique().max() > 5
