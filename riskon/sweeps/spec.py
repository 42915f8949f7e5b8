"""The ``[sweep]`` section of a config: which parameters vary, how, and what is optimised.

```toml
[sweep]
method = "grid"            # grid | random | optuna
objective = "sharpe"       # any stored metric
direction = "maximize"
n = 200                    # random samples / optuna trials
seed = 7
batch_size = 25            # runs committed to the store per transaction

[sweep.params]             # dotted paths into the config; a list, or an inclusive range
"strategy.params.confirm_days" = [1, 2, 3, 5]
"exits.trailing_stop" = { start = 0.10, stop = 0.40, step = 0.05 }
```
Every combination is validated as a full config (so unknown keys, wrong types
and out-of-range values are refused before anything runs); combinations a
rule's constraint rejects are skipped and counted. The sweep is counted before
any value is listed (each range with exact arithmetic on its numbers as written)
and refused above ``MAX_COMBINATIONS``; ``Combinations`` generates and validates
the combinations lazily, so nothing holds them all.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np

from riskon.config import ConfigError, ParseMemo, RunConfig, parse
from riskon.metrics import METRICS
from strategies.params import Param, check_params

SWEEP_KEYS = {
    "method": Param("grid", str, "", choices=("grid", "random", "optuna")),
    "objective": Param("sharpe", str, "", choices=tuple(METRICS)),
    "direction": Param("maximize", str, "", choices=("maximize", "minimize")),
    "n": Param(100, int, "samples or trials", 1, 1_000_000),
    "seed": Param(0, int, "", 0, 2**32 - 1),
    "batch_size": Param(25, int, "runs per committed batch", 1, 100_000),
}


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: method, objective, and the values each dotted path takes."""

    method: str
    objective: str
    direction: str
    n: int
    seed: int
    batch_size: int
    values: dict[str, list[Any]]
    ranges: dict[str, tuple[float, float, float] | None]


#: Most combinations a sweep may have unless raised (``max_combinations=``, ``riskon sweep --max-combinations``).
MAX_COMBINATIONS = 2_000_000


def _exact(value: int | float) -> Fraction:
    """A range bound as the exact number its TOML text wrote (``0.1`` is 1/10, not the nearest double)."""
    return Fraction(value) if isinstance(value, int) else Fraction(Decimal(repr(value)))


def _range_count(where: str, path: str, spec: dict) -> int:
    """How many values an inclusive ``{start, stop, step}`` range has, counted exactly (nothing is expanded)."""
    unknown = set(spec) - {"start", "stop", "step"}
    if unknown or not {"start", "stop", "step"} <= set(spec):
        raise ConfigError(f"{where}: [sweep.params] {path!r} range needs start, stop and step (got {sorted(spec)})")
    for k in ("start", "stop", "step"):
        v = spec[k]
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ConfigError(f"{where}: [sweep.params] {path!r} {k} must be a number, got {v!r}")
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{where}: [sweep.params] {path!r} {k} must be a finite number, got {v!r}")
    start, stop, step = spec["start"], spec["stop"], spec["step"]
    if step <= 0:
        raise ConfigError(f"{where}: [sweep.params] {path!r} step must be > 0, got {step!r}")
    if stop < start:
        raise ConfigError(f"{where}: [sweep.params] {path!r} is an empty range (start {start!r} > stop {stop!r})")
    return int((_exact(stop) - _exact(start)) // _exact(step)) + 1


def _range_values(where: str, path: str, start: int | float, step: int | float, n: int) -> list[int | float]:
    """The ``n`` values of a range (``n`` already counted and within the limit).

    Bounds with at most 10 decimals (every range written by hand) keep the formula sweeps always used,
    ``round(start + i * step, 10)``, so their values, run ids and sweep ids stay the same; finer bounds get
    each value exactly (``start + i * step`` in rationals, then the nearest double). Values that doubles
    cannot tell apart (a step far below the start's precision) are refused rather than silently merged.
    """
    if all(isinstance(v, int) for v in (start, step)):
        return [start + i * step for i in range(n)]
    if all(Decimal(repr(v)).as_tuple().exponent >= -10 for v in (start, step)):
        vals = [round(start + i * step, 10) for i in range(n)]
    else:
        a, d = _exact(start), _exact(step)
        vals = [float(a + i * d) for i in range(n)]
    for prev, cur in itertools.pairwise(vals):
        if cur <= prev:
            raise ConfigError(
                f"{where}: [sweep.params] {path!r} step {step!r} is too fine for floating point near {cur!r} "
                "(values repeat); use a larger step"
            )
    return vals


def _value_count(where: str, path: str, spec: Any) -> int:
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{where}: [sweep.params] {path!r} is an empty list")
        return len(spec)
    if isinstance(spec, dict):
        return _range_count(where, path, spec)
    raise ConfigError(f"{where}: [sweep.params] {path!r} must be a list or {{start, stop, step}}, got {spec!r}")


def _check_size(where: str, method: str, n: int, counts: dict[str, int], limit: int | None) -> None:
    """Refuse a sweep above ``limit`` combinations, counted before anything is expanded (one line)."""
    if limit is None:
        return

    def fix(needed: int) -> str:
        return (
            f"; vary fewer values, or raise the limit: riskon sweep --max-combinations {needed} "
            f"(Python: max_combinations={needed})"
        )

    if method == "grid":
        total = math.prod(counts.values())
        if total > limit:
            each = " x ".join(f"{p!r}: {c:,}" for p, c in counts.items())
            raise ConfigError(
                f"{where}: the sweep grid has {total:,} combinations ({each}), above the limit of {limit:,}{fix(total)}"
            )
        return
    if n > limit:
        raise ConfigError(f"{where}: [sweep] n = {n:,} {method} trials, above the limit of {limit:,}{fix(n)}")
    for p, c in counts.items():  # every value of a parameter is listed to draw from it
        if c > limit:
            raise ConfigError(f"{where}: [sweep.params] {p!r} has {c:,} values, above the limit of {limit:,}{fix(c)}")


def _expand(where: str, path: str, spec: Any, count: int) -> tuple[list[Any], tuple | None]:
    if isinstance(spec, list):
        return list(spec), None
    start, stop, step = spec["start"], spec["stop"], spec["step"]
    return _range_values(where, path, start, step, count), (start, stop, step)


def _copy(value: Any) -> Any:
    """A deep copy of TOML data (tables, arrays, immutable scalars): 5x faster than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _set_copied(node: Any, parts: list[str], value: Any) -> Any:
    """``node`` with ``value`` at the path ``parts``: tables and arrays on the path copied, the rest shared."""
    if not parts:
        return _copy(value)
    head, rest = parts[0], parts[1:]
    if isinstance(node, list):
        out = list(node)
        out[int(head)] = _set_copied(out[int(head)], rest, value)
        return out
    out = dict(node) if isinstance(node, dict) else {}
    child = out.get(head)
    if child is None:
        child = [] if rest and rest[0].isdigit() else {}
    out[head] = _set_copied(child, rest, value)
    return out


def apply(base: dict, overrides: dict[str, Any]) -> dict:
    """A copy of ``base`` with each dotted path set.

    Only the tables and arrays along the overridden paths are copied; everything else is shared with
    ``base`` (``parse`` reads its input without changing it), which keeps validating a sweep of tens of
    thousands of combinations fast. Treat the result as read-only, like ``base``.
    """
    raw = {k: v for k, v in base.items() if k != "sweep"}
    for path, value in overrides.items():
        raw = _set_copied(raw, path.split("."), value)
    return raw


def sweep_options(raw: dict, where: str = "config") -> dict[str, Any]:
    """The ``[sweep]`` options (method, objective, direction, n, seed, batch_size), validated; params left alone.

    For readers of a stored sweep that only need its objective: nothing is counted or expanded.
    """
    section = raw.get("sweep")
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: no [sweep] section; add one with [sweep.params] to run a sweep")
    section = {k: v for k, v in section.items() if k != "params"}
    try:
        return check_params("[sweep]", SWEEP_KEYS, section)
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None


def parse_sweep(raw: dict, where: str = "config", max_combinations: int | None = MAX_COMBINATIONS) -> SweepSpec:
    """Validate the ``[sweep]`` section of a raw config dict.

    Every range is validated (numbers, finite, step > 0, stop >= start) and counted exactly before any
    value is listed; a sweep of more than ``max_combinations`` (the grid's product of value counts, or a
    random or Optuna sweep's ``n``) is refused with one line giving the count (None: no limit).
    """
    opts = sweep_options(raw, where)
    params = raw["sweep"].get("params")
    if not isinstance(params, dict) or not params:
        raise ConfigError(f"{where}: [sweep.params] must list at least one parameter to vary")
    counts = {path: _value_count(where, path, spec) for path, spec in params.items()}
    _check_size(where, opts["method"], opts["n"], counts, max_combinations)
    values, ranges = {}, {}
    for path, spec in params.items():
        values[path], ranges[path] = _expand(where, path, spec, counts[path])
        try:  # the path must lead somewhere valid: check the first value in a full config
            parse(apply(raw, {path: values[path][0]}), where)
        except ConfigError as e:
            raise ConfigError(f"{e} (from [sweep.params] {path!r})") from None
    return SweepSpec(values=values, ranges=ranges, **opts)


def _first_of_each(values: list[Any]) -> list[int]:
    """For each value, the index of the first value with the same text (``repr``): duplicates map to one."""
    first: dict[str, int] = {}
    return [first.setdefault(repr(v), i) for i, v in enumerate(values)]


def planned_size(spec: SweepSpec) -> int:
    """How many combinations ``grid_overrides`` yields at most: the grid's distinct values multiplied, or ``n``."""
    if spec.method != "grid":
        return spec.n
    return math.prod(len(set(_first_of_each(v))) for v in spec.values.values())


def grid_overrides(spec: SweepSpec) -> Iterator[dict[str, Any]]:
    """The sweep's combinations as override dicts, generated lazily, each distinct one once, in sweep order.

    Grid: ``itertools.product`` over each parameter's distinct values (the same combinations, in the same
    order, as the product of the full lists with repeats dropped). Random: ``n`` seeded draws, a repeated
    draw dropped (each draw is remembered as one integer).
    """
    paths = list(spec.values)
    if spec.method == "grid":
        distinct = []
        for p in paths:
            keep = _first_of_each(spec.values[p])
            distinct.append([v for i, v in enumerate(spec.values[p]) if keep[i] == i])
        for vals in itertools.product(*distinct):
            yield dict(zip(paths, vals, strict=True))
        return
    rng = np.random.default_rng(spec.seed)
    canon = [_first_of_each(spec.values[p]) for p in paths]
    seen: set[int] = set()
    for _ in range(spec.n):
        idx = [int(rng.integers(len(spec.values[p]))) for p in paths]
        key = 0
        for p, c, i in zip(paths, canon, idx, strict=True):
            key = key * len(spec.values[p]) + c[i]
        if key in seen:
            continue
        seen.add(key)
        yield {p: spec.values[p][i] for p, i in zip(paths, idx, strict=True)}


class Combinations:
    """The sweep's valid combinations as ``(overrides, config)``, validated lazily each time it is iterated.

    Nothing is held but a bounded memo of checked tables (``GridParser``): iterating a grid of millions
    costs the memory of one combination plus the memo. A combination that fails validation only because
    of a rule's constraint is skipped (``skipped`` counts them, and ``valid`` the rest, once an iteration
    has finished); any other invalid value is an error naming it. Every iteration yields the same
    combinations in the same order.
    """

    def __init__(self, raw: dict, spec: SweepSpec, where: str = "config") -> None:
        self.raw, self.spec, self.where = raw, spec, where
        self.skipped = 0
        self.valid = 0
        self.parser = GridParser(raw, spec.values, where)

    def __iter__(self) -> Iterator[tuple[dict, RunConfig]]:
        skipped = valid = 0
        paths, values = self.parser.paths, self.parser.values
        for idx in _indices(self.spec):
            cfg = self.parser.config(idx)
            if cfg is None:
                skipped += 1
                continue
            valid += 1
            yield {p: values[j][i] for j, (p, i) in enumerate(zip(paths, idx, strict=True))}, cfg
        self.skipped, self.valid = skipped, valid


def validate(raw: dict, combo: dict[str, Any], where: str = "config") -> RunConfig | None:
    """One combination's config; None when a rule's constraint rejects it (skipped, counted), else a ConfigError."""
    try:
        return parse(apply(raw, combo), where)
    except ConfigError as e:
        return _rejected(e, combo)


def _rejected(e: ConfigError, combo: dict[str, Any]) -> None:
    """None for a rule's constraint (the combination is skipped); any other error names the combination."""
    if "constraint violated" in str(e):
        return None
    raise ConfigError(f"{e} (combination {combo})") from None


class GridParser:
    """``validate(raw, combo)`` for a combination given as one index into each path's values, shared work reused.

    Combinations differ only in their swept values, so each top-level table is built once per distinct
    choice of the values under it, and ``riskon.config.parse`` checks each such table once (``ParseMemo``).
    Every combination gets the config, or the error, ``validate`` gives it, several times faster: what
    lets a grid of 10^6 be validated in passes of seconds. Memory is bounded by ``LIMIT`` tables.
    """

    #: Most tables held (then it starts empty).
    LIMIT = 20_000

    def __init__(self, raw: dict, values: dict[str, list[Any]], where: str = "config") -> None:
        self.raw = {k: v for k, v in raw.items() if k != "sweep"}
        self.paths = list(values)
        self.values = [list(values[p]) for p in self.paths]
        self.where = where
        groups: dict[str, list[int]] = {}
        for j, p in enumerate(self.paths):
            groups.setdefault(p.split(".")[0], []).append(j)
        self.groups = [(top, tuple(js)) for top, js in groups.items()]
        self.memo = ParseMemo()
        self._tables: dict[tuple, Any] = {}

    def config(self, idx: tuple[int, ...]) -> RunConfig | None:
        """The config of combination ``idx`` (value ``idx[j]`` of path j); None when a rule's constraint skips it."""
        raw = dict(self.raw)
        for top, js in self.groups:
            key = (top, *(idx[j] for j in js))
            table = self._tables.get(key, _MISSING)
            if table is _MISSING:
                if len(self._tables) >= self.LIMIT:
                    self._tables.clear()
                base = {top: self.raw[top]} if top in self.raw else {}
                table = self._tables[key] = apply(base, {self.paths[j]: self.values[j][idx[j]] for j in js})[top]
            raw[top] = table
        try:
            return parse(raw, self.where, self.memo)
        except ConfigError as e:
            return _rejected(e, {p: self.values[j][idx[j]] for j, p in enumerate(self.paths)})


_MISSING = object()


def _indices(spec: SweepSpec) -> Iterator[tuple[int, ...]]:
    """``grid_overrides``' combinations as indices into ``spec.values``, in the same order."""
    paths = list(spec.values)
    if spec.method == "grid":
        distinct = []
        for p in paths:
            keep = _first_of_each(spec.values[p])
            distinct.append([i for i in range(len(keep)) if keep[i] == i])
        yield from itertools.product(*distinct)
        return
    rng = np.random.default_rng(spec.seed)
    canon = [_first_of_each(spec.values[p]) for p in paths]
    seen: set[int] = set()
    for _ in range(spec.n):
        idx = tuple(int(rng.integers(len(spec.values[p]))) for p in paths)
        key = 0
        for p, c, i in zip(paths, canon, idx, strict=True):
            key = key * len(spec.values[p]) + c[i]
        if key in seen:
            continue
        seen.add(key)
        yield idx


class GridSpace:
    """A grid sweep's combinations by position: ``at(i)`` is the ``i``-th override dict ``grid_overrides`` yields.

    Positions are mixed-radix numbers over each parameter's distinct values (the last parameter varies
    fastest, as in ``itertools.product``), so a worker can expand any range of the grid on its own.
    """

    def __init__(self, spec: SweepSpec) -> None:
        if spec.method != "grid":
            raise ValueError(f"a GridSpace needs a grid sweep, not {spec.method!r}")
        self.paths = list(spec.values)
        self.values = []
        self.kept: list[list[int]] = []  # for each parameter, the indices into spec.values of its distinct values
        for p in self.paths:
            keep = _first_of_each(spec.values[p])
            self.kept.append([i for i in range(len(keep)) if keep[i] == i])
            self.values.append([spec.values[p][i] for i in self.kept[-1]])
        self.size = math.prod(len(v) for v in self.values)

    def at(self, i: int) -> dict[str, Any]:
        """The override dict at position ``i`` (0 <= i < ``size``)."""
        idx = self.indices(i)
        return {p: vals[k] for p, vals, k in zip(self.paths, self.values, self._distinct(idx), strict=True)}

    def indices(self, i: int) -> tuple[int, ...]:
        """Position ``i`` as one index into each parameter's ``spec.values`` (what ``GridParser.config`` takes)."""
        out = []
        for kept in reversed(self.kept):
            i, k = divmod(i, len(kept))
            out.append(kept[k])
        return tuple(reversed(out))

    def _distinct(self, idx: tuple[int, ...]) -> list[int]:
        return [kept.index(k) for kept, k in zip(self.kept, idx, strict=True)]


def combinations(raw: dict, spec: SweepSpec, where: str = "config") -> tuple[list[tuple[dict, RunConfig]], int]:
    """The sweep's combinations (grid or seeded random) as a list of (overrides, config); and how many were skipped.

    A list holds every config at once: for a small sweep (a walk-forward's grid, a test). ``Combinations``
    streams them.
    """
    combos = Combinations(raw, spec, where)
    out = list(combos)
    return out, combos.skipped
