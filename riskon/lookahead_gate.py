"""The lookahead gate: every run and sweep checks each rule setting it uses, once, and refuses a rule that peeks.

Before ``riskon run`` backtests and before ``riskon sweep`` starts any run, each rule of the entry
expression and the exit rule is put through ``strategies.lookahead.fast_check`` (cuts at every signal,
every change of its output and a seeded sample of the other rows). The verdict is cached in small JSON
files under ``RISKON_CACHE/lookahead/``, keyed by the rule's code hash (``strategies.codehash.rule_hash``),
its parameters, the check's own code and the fingerprints of the data it read: a setting costs once.

A rule that fails raises ``LookaheadError`` (one line naming the rule and the first date that changed)
unless the caller allows it (``--allow-lookahead``, ``allow_lookahead=True``); the run is then marked
``ALLOWED`` wherever its rule is shown, and a sweep in the store.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from feeds.cache import default_root
from riskon.config import RunConfig, entry_spec
from strategies import compose, lookahead
from strategies.codehash import closure_hash, rule_hash

#: How a run or sweep that failed the check but was allowed is marked (run summary, pages, store)
ALLOWED = "lookahead check FAILED, run allowed by --allow-lookahead"
#: The columns of ``feeds.align.session_frame``: what an index rule reads
SESSION_COLUMNS = ["idx_close", "idx_ath", "idx_week_end", "idx_close_time"]
#: Columns a run adds to the aligned bars after the rules ran (not rule input)
ADDED_COLUMNS = ["event", "event_level", "event_session", "exit_signal"]


class LookaheadError(Exception):
    """A rule's output changed when the future was cut away: the run is refused (exit status 1)."""


def cache_folder() -> Path:
    """Where verdicts are kept: ``RISKON_CACHE/lookahead``."""
    return default_root() / "lookahead"


def rule_settings(cfg: RunConfig, entry: bool = True) -> list:
    """Each distinct rule (with its parameters) of ``cfg``'s entry expression (unless not ``entry``) and exit rule."""
    specs = [entry_spec(cfg.strategy, cfg.rule_params)] if entry else []
    if cfg.exits["rule"]:
        specs.append(cfg.exits["rule"])
    found = {}
    for spec in specs:
        for leaf in compose.build(spec).leaves():
            found.setdefault((leaf.rule.name, repr(leaf.rule)), leaf.rule)
    return list(found.values())


def frame_fingerprints(cfg: RunConfig, frames: Mapping[tuple[str, str], pd.DataFrame]) -> dict[str, str]:
    """Symbol -> fingerprint of the series ``cfg`` reads, from a sweep's loaded ``{(symbol, timeframe): frame}``."""
    want = [(cfg.data["index"], "1d"), *((a, cfg.data["timeframe"]) for a in cfg.target["assets"])]
    return {s: str(frames[(s, tf)].attrs.get("fingerprint", "")) for s, tf in want if (s, tf) in frames}


def setting_key(rule, cfg: RunConfig, fingerprints: Mapping[str, str]) -> str:
    """The cache key of one rule setting: code, parameters and exactly the data its output depends on."""
    d = cfg.data
    data: dict = {"index": d["index"], "price": d["index_price"], "fp": fingerprints.get(d["index"], "")}
    if rule.on != "index":  # asset rules read the aligned bars of the first target on the targets' calendar
        data.update(
            assets={a: fingerprints.get(a, "") for a in cfg.target["assets"]},
            timeframe=d["timeframe"], lag=d["publication_lag_hours"], start=d["start"], end=d["end"],
        )  # fmt: skip
    text = json.dumps(
        {"rule": rule.name, "code": rule_hash(rule.name), "values": repr(rule), "data": data,
         "check": closure_hash(["strategies.lookahead"]), "sample": lookahead.FAST_SAMPLE},
        sort_keys=True, default=str,
    )  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # missing or torn (never written atomically by another tool): check again


def _write(path: Path, verdict: dict) -> None:
    """Atomically: a temporary file in the same folder, then ``os.replace``. A read-only cache is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(verdict, f)
        os.replace(tmp, path)
    except OSError:
        return  # the verdict is still used in this process; the next run checks again


class LookaheadGate:
    """Checks each rule setting once per process and once per cache; refuses (or, allowed, records) a peek."""

    def __init__(self, allow: bool = False, folder: Path | None = None, announce: Callable[[str], None] | None = None):
        self.allow = allow
        self.folder = folder
        self.announce = announce
        self.failures: list[str] = []  # one line per failing rule setting (allowed ones)
        self.checked = 0  # settings computed in this process (cache misses)
        self._known: dict[str, str | None] = {}  # setting key -> failure line or None
        self._configs: dict[str, list[str]] = {}  # a config's rule/data key -> its failure lines

    def check(
        self,
        cfg: RunConfig,
        fingerprints: Mapping[str, str],
        inputs: Callable[[], tuple[pd.DataFrame, pd.DataFrame]],
        entry: bool = True,
    ) -> list[str]:
        """The failure lines of ``cfg``'s rules (empty: clean); raises ``LookaheadError`` unless allowed.

        ``inputs`` returns the run's (sessions, aligned bars) and is called only when a setting is not cached.
        ``entry`` False skips the entry rules (a supplied signal replaces them).
        """
        ckey = json.dumps(
            [entry and entry_spec(cfg.strategy, cfg.rule_params), cfg.exits["rule"], cfg.data, cfg.target["assets"],
             sorted(fingerprints.items())], sort_keys=True, default=str,
        )  # fmt: skip
        if ckey not in self._configs:
            self._configs[ckey] = self._check(cfg, fingerprints, inputs, entry)
        lines = self._configs[ckey]
        if lines and not self.allow:
            raise LookaheadError(
                f"{lines[0]}; fix the rule, check it with `riskon check lookahead`, or pass --allow-lookahead"
            )
        return lines

    def _check(self, cfg, fingerprints, inputs, entry: bool) -> list[str]:
        folder = self.folder or cache_folder()
        built = None
        lines = []
        for rule in rule_settings(cfg, entry):
            key = setting_key(rule, cfg, fingerprints)
            if key not in self._known:
                cached = _read(folder / f"{key}.json")
                if cached is None:
                    if built is None:
                        built = inputs()
                    sessions, bars = built
                    frame = lookahead.rule_frame(
                        rule, sessions[SESSION_COLUMNS], bars.drop(columns=ADDED_COLUMNS, errors="ignore")
                    )
                    peek = lookahead.fast_check(rule, frame)
                    cached = {"rule": repr(rule), "failure": None if peek is None else str(peek)}
                    self.checked += 1
                    _write(folder / f"{key}.json", cached)
                self._known[key] = cached["failure"]
            if self._known[key] is not None:
                lines.append(self._known[key])
                if self._known[key] not in self.failures:
                    self.failures.append(self._known[key])
        return lines
