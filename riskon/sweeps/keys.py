"""What identifies a run and groups runs: the run id, the strategy key, the code version, the bars key.

A run id is the primary key of the store: a resumed sweep skips every run whose id is stored.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from riskon.config import RunConfig, entry_spec
from riskon.version import __version__


@lru_cache(maxsize=1)
def code_version() -> str:
    """riskon's version plus a hash of its source (feeds, strategies, riskon): a code change is a new run."""
    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    for pkg in ("feeds", "strategies", "riskon"):
        for p in sorted((root / pkg).rglob("*.py")):
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


def stable_hash(obj: object) -> str:
    """A SHA-256 hex digest of ``obj`` as canonical JSON (sorted keys; other types by their text)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def run_id(cfg: RunConfig, fingerprints: dict[str, str], engine: str = "backtrader") -> str:
    """The primary key of a run: canonical parameters + data fingerprints + code version + engine."""
    return stable_hash({"params": cfg.canonical(), "data": fingerprints, "code": code_version(), "engine": engine})[:20]


def strategy_key(cfg: RunConfig) -> str:
    """What counts as 'the same strategy' across sweeps: index, targets and the entry rules used."""
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs
    from strategies import compose

    rules = sorted({leaf.rule.name for leaf in compose.build(entry_spec(cfg.strategy, cfg.rule_params)).leaves()})
    return stable_hash({"index": cfg.data["index"], "assets": cfg.target["assets"], "rules": rules})[:16]


def series_needed(configs: list[RunConfig]) -> list[tuple[str, str]]:
    """Every (symbol, timeframe) the configs read, each once, in first-use order."""
    need = []
    for c in configs:
        need.append((c.data["index"], "1d"))
        need += [(a, c.data["timeframe"]) for a in c.target["assets"]]
    return list(dict.fromkeys(need))


def bars_key(cfg: RunConfig) -> str:
    """What the aligned bars depend on: data, targets, entry rule and exit rule (not exits, targets' sizes, costs)."""
    return json.dumps(
        [cfg.data, cfg.target["assets"], entry_spec(cfg.strategy, cfg.rule_params), cfg.exits["rule"]],
        sort_keys=True,
        default=str,
    )
