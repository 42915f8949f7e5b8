"""Entry rules and filters as one-file plugins: ``strategies/rules/<name>.py`` defines rule ``<name>``.

A rule reads either the index **sessions** (``on = "index"``: ``idx_close``,
``idx_ath``, ``idx_week_end`` per NYSE session, full history) or the traded
asset's **bars** (``on = "asset"``: OHLCV plus the ``idx_*`` lines each bar
sees) and returns a boolean ``signal`` (and optionally the break ``level``)
from the past only. ``kind = "event"`` rules trigger entries; ``kind =
"filter"`` rules are states that gate them. No backtrader and no position state
live in a rule. Rules shipped in other packages register through the entry-point
group ``riskon.rules``.

Rules also live outside the package, so nobody writes into site-packages: a ``rules/``
folder in the current directory, and the folders listed in ``RISKON_RULES`` (separated
like ``PATH``), are scanned exactly like this one: ``rules/<name>.py`` defines rule
``<name>``, with the same registry, parameters, lookahead check and error messages. A
name defined in two files is refused with a line naming both. A user's file is imported
only when its rule is asked for, in the process that asks (sweep workers receive signals
as arrays, never rule code).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import pkgutil
import sys
from collections.abc import Callable
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from strategies.errors import RuleError
from strategies.params import Param, check_params, did_you_mean

ENTRY_POINT_GROUP = "riskon.rules"
#: Environment variable listing more rule folders (separated by ``os.pathsep``, like ``PATH``).
RULES_ENV = "RISKON_RULES"
#: The folder of the current directory scanned for rules.
USER_FOLDER = "rules"


class Rule:
    """Base class of rules: declare ``name``, ``kind``, ``on``, ``params``; implement ``compute``."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "event"  # "event" (fires entries) or "filter" (a state that gates them)
    on: ClassVar[str] = "index"  # "index": per index session; "asset": per bar of the traded asset
    level: ClassVar[bool] = False  # True when ``compute`` also returns the broken ``level`` of each signal
    params: ClassVar[dict[str, Param]] = {}
    #: optional check between parameters: returns an error message, or None when the values are fine
    constraint: ClassVar[Callable[[dict[str, Any]], str | None] | None] = None

    def __init__(self, **values: Any) -> None:
        self.values = check_params(f"rule {self.name}", self.params, values)
        if self.constraint is not None:
            problem = type(self).constraint(self.values)
            if problem:
                raise RuleError(f"rule {self.name}: constraint violated: {problem}")

    def compute(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``signal`` (bool) and optionally ``level`` (float) per row of ``frame``, from the past only."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.values.items())
        return f"{self.name}({args})"


@lru_cache(maxsize=1)
def _plugins() -> dict[str, Any]:
    """Rules registered by other packages (scanning entry points is slow: cached; see ``refresh``)."""
    try:
        return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    except Exception:  # a broken third-party distribution must not break the built-ins
        return {}


def refresh() -> None:
    """Forget the cached entry-point plugins (after installing a package that ships rules)."""
    _plugins.cache_clear()
    _LOCAL.clear()
    _CLASSES.clear()


_LOCAL: dict[tuple, dict[str, Path | None]] = {}


def user_folders() -> list[Path]:
    """Rule folders outside the package: ``./rules`` when it exists, then each ``RISKON_RULES`` entry.

    A ``RISKON_RULES`` entry that is not a folder is refused; a folder listed twice (or this package's own
    folder) counts once.
    """
    found = [Path.cwd() / USER_FOLDER] if (Path.cwd() / USER_FOLDER).is_dir() else []
    for entry in os.environ.get(RULES_ENV, "").split(os.pathsep):
        if entry.strip():
            folder = Path(entry.strip()).expanduser()
            if not folder.is_dir():
                raise RuleError(
                    f"{RULES_ENV}: {entry.strip()} is not a folder; list folders of rule files separated by "
                    f"{os.pathsep!r}"
                )
            found.append(folder)
    seen = {Path(p).resolve() for p in __path__}
    out = []
    for folder in found:
        if folder.resolve() not in seen:
            seen.add(folder.resolve())
            out.append(folder)
    return out


@lru_cache(maxsize=16)
def _env_entries(env: str) -> tuple[str, ...]:
    return tuple(e.strip() for e in env.split(os.pathsep) if e.strip())


def _scan_key() -> tuple:
    """What the scan depends on: every candidate folder and its modification time (None: missing), cheaply."""
    candidates = (*__path__, os.path.join(os.getcwd(), USER_FOLDER), *_env_entries(os.environ.get(RULES_ENV, "")))
    key = []
    for folder in candidates:
        try:
            key.append((folder, os.stat(folder).st_mtime_ns))
        except OSError:
            key.append((folder, None))
    return tuple(key)


def _local_modules() -> dict[str, Path | None]:
    """Rule module names -> their file outside the package (None: in this folder); rescanned on any change.

    The folders' modification times are the cache key, so a dropped-in file registers at once; scanning on
    every call made validating a 10,000-combination sweep take seconds. A name in two files is refused.
    """
    key = _scan_key()
    if key not in _LOCAL:
        folders = user_folders()
        _LOCAL.clear()
        _CLASSES.clear()  # a file deleted and dropped in again under the same name must load anew
        names: dict[str, Path | None] = {m.name: None for m in pkgutil.iter_modules(__path__)}
        for folder in folders:
            for path in sorted(folder.glob("*.py")):
                name = path.stem
                if name.startswith("_") or not name.isidentifier():
                    continue
                if name in names:
                    other = names[name] or Path(__path__[0]) / f"{name}.py"
                    raise RuleError(f"rule {name!r} is defined twice: {other} and {path}; rename one of the files")
                names[name] = path
        _LOCAL[key] = names
    return _LOCAL[key]


def available() -> list[str]:
    """Names of every rule: files in this folder and the user's rule folders, plus entry-point plugins."""
    local = {name for name in _local_modules() if not name.startswith("_")}
    return sorted(local | set(_plugins()))


def location(name: str) -> Path:
    """The file that defines rule ``name`` (for messages: which folder a rule came from)."""
    local = _local_modules()
    if name in local:
        return local[name] or Path(__path__[0]) / f"{name}.py"
    return Path(sys.modules[get(name).__module__].__file__ or name)


def get(name: str) -> type[Rule]:
    """The rule class registered under ``name``; unknown names list the valid ones."""
    local = _local_modules()
    if not name.startswith("_") and name in local:
        found = _CLASSES.get(name)
        if found is None:
            path = local[name]
            found = _CLASSES[name] = _local_class(name) if path is None else _user_class(name, path)
        return found
    names = available()
    if name not in names:
        raise RuleError(f"unknown rule {name!r}; valid: {', '.join(names)}" + did_you_mean(name, names))
    obj = _plugins()[name].load()
    if not (isinstance(obj, type) and issubclass(obj, Rule)):
        raise RuleError(f"entry point {name!r} in group {ENTRY_POINT_GROUP} is not a Rule subclass")
    return obj


#: Rule classes found in this folder since its last scan (a sweep validates thousands of configs)
_CLASSES: dict[str, type[Rule]] = {}


def _local_class(name: str) -> type[Rule]:
    module = importlib.import_module(f"{__name__}.{name}")
    for obj in vars(module).values():
        if isinstance(obj, type) and issubclass(obj, Rule) and obj is not Rule and obj.name == name:
            return obj
    raise RuleError(f"strategies/rules/{name}.py defines no Rule subclass with name = {name!r}")


def _user_class(name: str, path: Path) -> type[Rule]:
    """Import a user's rule file (under a module name unique to its path) and find its rule."""
    module_name = f"riskon_user_rules_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}_{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # rule_hash finds the file through it
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        sys.modules.pop(module_name, None)
        raise RuleError(f"{path}:{e.lineno}: {e.msg}; fix the rule file") from None
    except ImportError as e:
        sys.modules.pop(module_name, None)
        raise RuleError(f"{path}: {e}; a rule file may import riskon's strategies, pandas and numpy") from None
    for obj in vars(module).values():
        if isinstance(obj, type) and issubclass(obj, Rule) and obj is not Rule and obj.name == name:
            return obj
    raise RuleError(f"{path} defines no Rule subclass with name = {name!r}")


def make(name: str, **values: Any) -> Rule:
    """Instantiate rule ``name`` with validated parameter values."""
    return get(name)(**values)
