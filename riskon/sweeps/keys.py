"""What identifies a run and groups runs: the run id, the strategy key, the code version, the bars key.

A run id is the primary key of the store: a resumed sweep skips every run whose id is stored. Its code
part hashes only the code the run uses (``strategies.codehash``): the import closure of the engine that
ran it (``ENGINE_MODULES``) and of each rule its config uses, plus the versions of the numeric libraries.
Adding a rule file or editing a page leaves every stored run id as it is; editing a module in a run's
closure gives it a new id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from functools import lru_cache

from feeds.errors import DataError
from feeds.yields import YieldCache
from riskon.config import RATE_KEYS, RunConfig, entry_spec
from riskon.version import __version__
from strategies.codehash import closure_hash, rule_hash

#: The modules each engine computes a run's numbers with (returns, trades, metrics); their import closures,
#: not hand-kept file lists, are hashed. Rules load dynamically and are hashed per rule (``rule_hash``).
ENGINE_MODULES: dict[str, tuple[str, ...]] = {
    "backtrader": ("riskon.runner", "strategies.backtest", "strategies.strategy"),
    "fast": ("riskon.runner", "riskon.sweeps.chunks", "strategies.fastsim"),
}


def engine_hash(engine: str) -> str:
    """The closure hash of an engine's modules (``ENGINE_MODULES``); unknown engines raise ValueError."""
    if engine not in ENGINE_MODULES:
        raise ValueError(f"unknown engine {engine!r}; valid: {', '.join(ENGINE_MODULES)}")
    return closure_hash(ENGINE_MODULES[engine])


def rules_used(cfg: RunConfig) -> list[str]:
    """Names of every rule a config uses: its entry rules and its exit rule's, sorted."""
    return list(_rules_of(json.dumps([entry_spec(cfg.strategy, cfg.rule_params), cfg.exits["rule"]], default=str)))


@lru_cache(maxsize=4096)
def _rules_of(specs: str) -> tuple[str, ...]:
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs
    from strategies import compose

    entry, exit_rule = json.loads(specs)
    leaves = compose.build(entry).leaves() + (compose.build(exit_rule).leaves() if exit_rule else [])
    return tuple(sorted({leaf.rule.name for leaf in leaves}))


def _code(engines: tuple[str, ...], rule_names: tuple[str, ...]) -> str:
    return stable_hash(
        {"engines": {e: engine_hash(e) for e in engines}, "rules": {r: rule_hash(r) for r in rule_names}}
    )


def run_code(cfg: RunConfig, engine: str) -> str:
    """The code part of a run id: the hash of the engine's closure and of each rule ``cfg`` uses."""
    return _code((engine,), tuple(rules_used(cfg)))


def code_version(engine: str | None = None, configs: Iterable[RunConfig] | None = None) -> str:
    """riskon's version plus a hash of the code a sweep uses: stored per sweep, part of its sweep id.

    The hash covers the closure of ``engine`` (every engine when None) and of each rule the ``configs``
    use (no rule when None). A sweep passes its engine and its configs, so that editing code its runs do
    not use leaves its id alone, and editing a rule they use gives it a new sweep id as well as new run ids.
    """
    engines = (engine,) if engine is not None else tuple(sorted(ENGINE_MODULES))
    names = sorted({r for c in configs for r in rules_used(c)}) if configs is not None else []
    return f"{__version__}+{_code(engines, tuple(names))[:12]}"


def stable_hash(obj: object) -> str:
    """A SHA-256 hex digest of ``obj`` as canonical JSON (sorted keys; other types by their text)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def run_id(cfg: RunConfig, fingerprints: dict[str, str], engine: str = "backtrader") -> str:
    """The primary key of a run: canonical parameters + data fingerprints + the code it uses + engine.

    The fingerprint of each yield series a ``[portfolio]`` rate names joins the data (``rate_fingerprints``).
    """
    code = run_code(cfg, engine)
    data = {**fingerprints, **rate_fingerprints(cfg, fingerprints)}
    return run_id_of(cfg, data, code, engine)


def run_id_of(cfg: RunConfig, data: dict[str, str], code: str, engine: str) -> str:
    """``run_id`` from its parts already found: the fingerprints of what ``cfg`` reads and its code hash."""
    return stable_hash({"params": cfg.canonical(), "data": data, "code": code, "engine": engine})[:20]


class RunIdMaker:
    """``run_id`` for the many configs of one sweep: each rule set's code hash computed once.

    The code a sweep runs is fixed for its duration (its sweep id hashes it once too), so hashing the
    engine's and the rules' closures again for every combination would only cost time.
    """

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self._codes: dict[tuple[str, ...], str] = {}

    def __call__(self, cfg: RunConfig, fingerprints: dict[str, str]) -> str:
        """The run id of ``cfg``: the same as ``run_id(cfg, fingerprints, engine)``."""
        names = tuple(rules_used(cfg))
        code = self._codes.get(names)
        if code is None:
            code = self._codes[names] = _code((self.engine,), names)
        data = {**fingerprints, **rate_fingerprints(cfg, fingerprints)}
        return run_id_of(cfg, data, code, self.engine)


def rate_fingerprints(cfg: RunConfig, known: dict[str, str] | None = None) -> dict[str, str]:
    """``yield:<symbol>`` -> fingerprint of each yield series the config's rates name (not already ``known``).

    Read from the cache's metadata (the default cache, as the sweep's runs read them): a re-imported
    series gives its runs new ids, so a resumed sweep never keeps runs computed with the old values.
    """
    out = {}
    for key in RATE_KEYS:
        symbol = cfg.portfolio.get(key)
        name = f"yield:{symbol}"
        if not isinstance(symbol, str) or name in (known or {}) or name in out:
            continue
        store = YieldCache()
        if not store.has(symbol, "1d"):
            raise DataError(
                f"[portfolio] {key} names the yield series {symbol}, which is not in the cache {store.root}; import "
                f"it with `riskon data import FILE --symbol {symbol} --kind yield --unit percent` (or --unit fraction)"
            )
        out[name] = str(store.meta(symbol, "1d")["fingerprint"])
    return out


def strategy_key(cfg: RunConfig) -> str:
    """What counts as 'the same strategy' across sweeps: index, targets and the entry rules used."""
    return stable_hash({"index": cfg.data["index"], "assets": cfg.target["assets"], "rules": entry_rules(cfg)})[:16]


def entry_rules(cfg: RunConfig) -> list[str]:
    """Names of the entry rules a config uses, sorted: with index and targets, what makes a strategy."""
    # a backtest's stack (pandas, numba, backtrader) loads only when one runs
    from strategies import compose

    return sorted({leaf.rule.name for leaf in compose.build(entry_spec(cfg.strategy, cfg.rule_params)).leaves()})


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
