"""Each stored run's rules by code hash, and the check that a re-run from the store uses that very code.

A run's id already hashes the code of the rules it uses (``riskon.sweeps.keys.run_code``), but an id
cannot say *which* rule changed. Keeping ``rule_hashes(cfg)`` with a run lets a re-run from the store
(``--verify``, the random-entry null, a rebuilt report) find each rule with the stored hash, or refuse
in one line naming the rule and the folder it was looked for in: a rule from a user's ``rules/``
folder may have been edited, moved or deleted since the sweep ran.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from riskon.config import RunConfig
from riskon.sweeps.keys import rules_used
from riskon.sweeps.store_errors import StoreError
from strategies import rules
from strategies.codehash import rule_hash
from strategies.errors import RuleError


def sweep_row(store: Any, sweep_id: str) -> dict:
    """A stored sweep's row (name, config text, spec, code version, rule hashes, ...) as a dict.

    ``store`` is a ``riskon.sweeps.store.Store`` (not imported: the store's rebuild checks rules through here).
    """
    with store.connect(read_only=True) as con:
        cur = con.execute("SELECT * FROM sweeps WHERE sweep_id = ?", [sweep_id])
        values = cur.fetchone()
        names = [d[0] for d in cur.description]
    return dict(zip(names, values, strict=True)) if values else {}


def rule_hashes(cfg: RunConfig) -> dict[str, str]:
    """Rule name -> the code hash (``strategies.codehash.rule_hash``) of every rule ``cfg`` uses."""
    return {name: rule_hash(name) for name in rules_used(cfg)}


def sweep_rule_hashes(cfg: RunConfig, values: Mapping[str, list]) -> dict[str, str]:
    """Code hashes of every rule a sweep can use: the base config's, and any rule named by a swept value.

    ``values`` is the sweep's dotted path -> values tried; a value naming a registered rule (``strategy.rule``
    swept over rule names) adds that rule. Kept with the sweep, it covers every run the sweep stores.
    """
    hashes = rule_hashes(cfg)
    known = set(rules.available())
    for options in values.values():
        for value in options:
            if isinstance(value, str) and value in known:
                hashes.setdefault(value, rule_hash(value))
    return dict(sorted(hashes.items()))


def check_stored_rules(store_row: Mapping, cfg: RunConfig, what: str) -> None:
    """Before a re-run from the store: the rules ``cfg`` uses must still be the code its sweep ran with.

    ``store_row`` is the sweep's row (its ``rule_hashes`` JSON); a sweep stored before hashes were kept passes.
    """
    stored = store_row.get("rule_hashes")
    if not stored:
        return
    hashes = json.loads(stored)
    require_rule_hashes({name: hashes[name] for name in rules_used(cfg) if name in hashes}, what)


def require_rule_hashes(stored: Mapping[str, str], what: str) -> None:
    """Refuse (``StoreError``, one line) when a rule of a stored run is missing or is no longer its code.

    ``stored`` is the run's ``rule_hashes``; ``what`` names the run in the message (e.g. ``run 1a2b3c``).
    """
    for name, want in sorted(stored.items()):
        try:
            have = rule_hash(name)
        except RuleError:
            folders = ", ".join(str(f) for f in [Path(rules.__file__).parent, *rules.user_folders()])
            raise StoreError(
                f"{what}: its rule {name!r} is not found (looked in {folders}); restore the rule file or point "
                "RISKON_RULES at its folder"
            ) from None
        if have != want:
            raise StoreError(
                f"{what}: rule {name!r} in {rules.location(name).parent} is not the code the run was made with "
                f"(code hash {have[:12]}, stored {want[:12]}); restore that file or run the sweep again"
            )
