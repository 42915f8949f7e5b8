"""Run configs: a TOML file in ``runs/`` read into frozen, validated dataclasses.

Unknown keys, wrong types and out-of-range values fail before anything runs,
naming the key, what is valid, and a "did you mean" for a near miss.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from feeds.errors import DataError
from feeds.symbols import canonical_symbol
from strategies import compose, rules
from strategies.params import Param, check_params, did_you_mean


class ConfigError(ValueError):
    """A config that cannot be run; the message names the file, the key and the fix."""


_DATE = r"^\d{4}-\d{2}-\d{2}$"

SECTIONS: dict[str, dict[str, Param]] = {
    "data": {
        "index": Param("^RUT", str, "Yahoo symbol of the signal index (^RUT, IWN, ...)"),
        "asset": Param("BTC-USD", str, "traded symbol: Yahoo (BTC-USD) or exchange:BASE/QUOTE"),
        # metrics, the store and reports assume one bar per calendar day; alignment itself handles any bar length
        "timeframe": Param("1d", str, "bar length of the traded asset", choices=("1d",)),
        "start": Param(None, str, "first traded bar date YYYY-MM-DD", nullable=True),
        "end": Param(None, str, "last traded bar date YYYY-MM-DD (inclusive)", nullable=True),
        "publication_lag_hours": Param(0.0, float, "hours after the index close before it is usable", 0.0, 240.0),
        "index_price": Param("close", str, "index column the signal uses", choices=("close", "adj_close")),
    },
    "strategy": {
        "rule": Param("ath_confirmed", str, "entry rule name (see `riskon rules`); or use [strategy.entry]"),
        "entry": Param(None, dict, "composed entry rule: {all_of|any_of|not|rule = ...}", nullable=True),
        "signal_delay": Param(0, int, "bars between seeing a signal and deciding", 0, 30),
        "cooldown_days": Param(0.0, float, "calendar days after an exit fill before a new entry", 0.0, 3650.0),
    },
    "exits": {
        "trailing_stop": Param(None, float, "fraction below the peak close", 0.0001, 0.99, nullable=True),
        "max_hold_days": Param(None, float, "calendar days from the entry fill", 1.0, 36500.0, nullable=True),
        "index_drawdown": Param(None, float, "index close below its ATH by this fraction", 0.0001, 0.99, nullable=True),
        "index_below_break": Param(False, bool, "exit when the index closes at or below the broken level"),
        "stop": Param(
            None, float, "fixed stop: position value below cost by this fraction", 0.0001, 0.99, nullable=True
        ),
        "take_profit": Param(None, float, "position value above cost by this fraction", 0.0001, 100.0, nullable=True),
        "rule": Param(
            None, dict, "exit when this composed rule is true: {all_of|any_of|not|rule = ...}", nullable=True
        ),
        "intrabar": Param(False, bool, "trailing/fixed stop as a stop order inside the next bar (single target)"),
    },
    "target": {
        "mode": Param("single", str, "what to buy on a signal", choices=("single", "basket", "top_k")),
        "assets": Param(None, list, "coins to trade (default: [data.asset])", nullable=True),
        "k": Param(3, int, "top_k: coins held", 1, 100),
        "momentum_days": Param(30, int, "top_k: momentum lookback in bars", 1, 3650),
        "liquidity_cap": Param(
            None, float, "an entry buys at most this fraction of the fill bar's volume", 1e-6, 1.0, nullable=True
        ),  # fmt: skip
    },
    "costs": {
        "fee_bps": Param(10.0, float, "basis points of notional per fill", 0.0, 1000.0),
        "slippage_bps": Param(5.0, float, "basis points against the open per fill", 0.0, 1000.0),
    },
    "portfolio": {
        "cash": Param(100_000.0, float, "starting cash", 1.0, 1e15),
        "fraction": Param(1.0, float, "share of equity per entry (sizing = fraction)", 0.0001, 1.0),
        "cash_rate": Param(
            0.0, float, "annual rate idle cash earns, or the symbol of a cached yield series", -0.99, 10.0
        ),
        "risk_free": Param(
            0.0, float, "annual rate Sharpe, Sortino, PSR, DSR are in excess of, or a yield symbol", -0.99, 10.0
        ),
        "sizing": Param("fraction", str, "how an entry is sized", choices=("fraction", "vol_target", "notional")),
        "vol_target": Param(None, float, "vol_target: target annual volatility", 0.001, 10.0, nullable=True),
        "vol_lookback": Param(30, int, "vol_target: bars of daily returns up to the decision", 2, 3650),
        "vol_cap": Param(1.0, float, "vol_target: largest share of equity per entry", 0.0001, 1.0),
        "notional": Param(None, float, "notional: cash per entry, capped at the equity", 1.0, 1e15, nullable=True),
    },
    "report": {
        "tearsheet": Param(True, bool, "write the quantstats HTML tear sheet"),
        "chart": Param(True, bool, "write the signal chart PNG"),
        "benchmark": Param(
            None, str, "symbol of a cached series to compare with (default: buy-and-hold of the targets)", nullable=True
        ),
        "stale_days": Param(3.0, float, "`riskon status` warns when its latest bar closed longer ago", 0.0, 36500.0),
    },
}
TOP = {"name": Param("run", str, "run name (reports/<name>/)"), "description": Param("", str, "free text")}
#: [portfolio] keys that take a constant annual rate or the symbol of a cached yield series.
RATE_KEYS = ("cash_rate", "risk_free")


@dataclass(frozen=True)
class RunConfig:
    """A validated run: one dict of values per section plus the rule's own parameters."""

    name: str
    description: str
    data: dict[str, Any]
    strategy: dict[str, Any]
    rule_params: dict[str, Any]
    exits: dict[str, Any]
    target: dict[str, Any]
    costs: dict[str, Any]
    portfolio: dict[str, Any]
    report: dict[str, Any]
    source: str = ""
    text: str = field(default="", repr=False)

    def canonical(self) -> dict[str, Any]:
        """Every parameter that changes the result, as one plain dict (for hashing and stores)."""
        return {
            "data": {k: v for k, v in self.data.items()},
            "strategy": dict(self.strategy),
            "rule_params": dict(self.rule_params),
            "exits": dict(self.exits),
            "target": dict(self.target),
            "costs": dict(self.costs),
            "portfolio": dict(self.portfolio),
        }


def _section(where: str, name: str, raw: Any, declared: dict[str, Param]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [{name}] must be a table, got {type(raw).__name__}")
    raw = {k: (None if v is False and declared.get(k, Param(0)).nullable else v) for k, v in raw.items()}
    try:
        return check_params(f"[{name}]", declared, raw)
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None


class ParseMemo:
    """Results of ``parse``'s steps for raw tables it has already checked, found by the tables' identity.

    A sweep's combinations share every table they do not override (``riskon.sweeps.spec.apply``): with a
    memo, ``parse`` checks each distinct table once (a section's keys, the rules it builds) instead of once
    per combination, and returns the same config, or raises the same error, as without one. Each entry
    keeps the tables it was keyed by alive, so an identity is never reused while it is in the memo. Tables
    handed to ``parse`` with a memo must not change afterwards (sweep tables never do). At most ``limit``
    entries are held; then it starts empty.
    """

    def __init__(self, limit: int = 50_000) -> None:
        self.limit = limit
        self._done: dict[tuple, tuple] = {}

    def step(self, key: tuple, keep: tuple, compute: Callable[..., Any], *args: Any) -> Any:
        """``compute(*args)``'s result (or its ConfigError, raised again) for ``key``, computed once."""
        hit = self._done.get(key)
        if hit is None:
            if len(self._done) >= self.limit:
                self._done.clear()
            try:
                hit = (True, compute(*args), keep)
            except ConfigError as e:
                hit = (False, str(e), keep)
            self._done[key] = hit
        if not hit[0]:
            raise ConfigError(hit[1])
        return hit[1]


def _plain(memo: ParseMemo | None, key: tuple, keep: tuple, compute: Callable[..., Any], *args: Any) -> Any:
    return compute(*args) if memo is None else memo.step(key, keep, compute, *args)


#: Top-level keys a config may have: its sections, and those read by sweeps, walk-forwards and event studies.
_KNOWN = frozenset(TOP) | frozenset(SECTIONS) | {"sweep", "walkforward", "events"}
#: The table a missing section reads (one object, so a memo recognises it).
_EMPTY: dict[str, Any] = {}


def parse(raw: dict[str, Any], where: str = "config", memo: ParseMemo | None = None) -> RunConfig:
    """Validate a config dict (as read from TOML) into a ``RunConfig``.

    ``memo`` (a sweep's, ``riskon.sweeps.spec.GridParser``): reuse the checks of tables seen before.
    """
    for key in raw:
        if key not in _KNOWN:
            known = sorted(_KNOWN)
            raise ConfigError(f"{where}: unknown key {key!r}; valid: {', '.join(known)}" + did_you_mean(key, known))
    named = (raw.get("name"), raw.get("description"))
    top = _plain(memo, ("top", where, id(named[0]), id(named[1])), named, _top, raw, where)
    sections = {}
    for name, declared in SECTIONS.items():
        body = raw.get(name, _EMPTY)
        got, params = _plain(memo, ("section", where, name, id(body)), (body,), _body, where, name, body, declared)
        sections[name] = dict(got)
        if name == "strategy":
            sections["rule_params"] = params
    data_body = raw.get("data", _EMPTY)
    _plain(memo, ("dates", where, id(data_body)), (data_body,), _check_dates, where, sections["data"])
    st_body, ex = raw.get("strategy", _EMPTY), sections["exits"]
    key = ("rules", where, id(st_body), id(ex["rule"]), ex["index_below_break"])
    rule_given = isinstance(st_body, dict) and "rule" in st_body
    sections["rule_params"] = dict(_plain(memo, key, (st_body, ex["rule"]), _check_rules, where, sections, rule_given))
    tg = sections["target"]
    given_asset = (raw.get("data") or {}).get("asset") if isinstance(raw.get("data"), dict) else None
    if tg["assets"] and given_asset is not None and given_asset != tg["assets"][0]:
        raise ConfigError(
            f"{where}: [data] asset = {given_asset!r} but [target] assets starts with {tg['assets'][0]!r}; "
            "drop [data] asset (the targets are traded) or make them agree"
        )
    assets = tg["assets"] if tg["assets"] is not None else [sections["data"]["asset"]]
    if not assets or not all(isinstance(a, str) and a for a in assets) or len(set(assets)) != len(assets):
        raise ConfigError(f"{where}: [target] assets must be a non-empty list of distinct symbols")
    if tg["mode"] == "single" and len(assets) != 1:
        raise ConfigError(
            f"{where}: [target] mode 'single' trades one asset; use mode = 'basket' or 'top_k' for {assets}"
        )
    sections["target"] = {**tg, "assets": list(assets)}
    sections["data"] = {**sections["data"], "asset": assets[0]}
    bench = sections["report"]["benchmark"]
    if bench is not None:
        try:
            sections["report"] = {**sections["report"], "benchmark": canonical_symbol(bench)}
        except DataError:
            raise ConfigError(
                f"{where}: [report] benchmark = {bench!r} is not a symbol; give a cached series such as 'BTC-USD', "
                "'^RUT' or 'binance:ETH/USDT', or drop the key to compare with buy-and-hold of the targets"
            ) from None
    _check_sizing(where, sections["portfolio"])
    if sections["exits"]["intrabar"] and tg["mode"] != "single":
        raise ConfigError(
            f"{where}: [exits] intrabar stops need [target] mode = 'single' (a basket exits on its value)"
        )
    return RunConfig(
        name=top["name"],
        description=top["description"],
        data=sections["data"],
        strategy=sections["strategy"],
        rule_params=sections["rule_params"],
        exits=sections["exits"],
        target=sections["target"],
        costs=sections["costs"],
        portfolio=sections["portfolio"],
        report=sections["report"],
        source=where,
    )


def _top(raw: dict[str, Any], where: str) -> dict[str, Any]:
    top = {k: raw[k] for k in TOP if k in raw}
    try:
        top = check_params("config", TOP, top)
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", top["name"]):
        raise ConfigError(
            f"{where}: name {top['name']!r} must start with a letter or digit and use only letters, digits, _ - ."
        )
    return top


def _body(where: str, name: str, raw_body: Any, declared: dict[str, Param]) -> tuple[dict[str, Any], Any]:
    """One section checked, and the raw ``[strategy.params]`` (``{}`` for other sections)."""
    body = dict(raw_body) if isinstance(raw_body, dict) else raw_body
    params = body.pop("params", {}) if name == "strategy" and isinstance(body, dict) else {}
    symbols = _rate_symbols(where, body) if name == "portfolio" and isinstance(body, dict) else {}
    return {**_section(where, name, body, declared), **symbols}, params


def _check_dates(where: str, data: dict[str, Any]) -> None:
    for key in ("start", "end"):
        value = data[key]
        if value is not None:
            if not re.match(_DATE, value):
                raise ConfigError(f"{where}: [data] {key} = {value!r} is not a date; write YYYY-MM-DD")
            try:
                pd.Timestamp(value)
            except ValueError:
                raise ConfigError(f"{where}: [data] {key} = {value!r} is not a valid date") from None
    if data["start"] and data["end"] and data["start"] > data["end"]:
        raise ConfigError(f"{where}: [data] start {data['start']} is after end {data['end']}")


def _check_rules(where: str, sections: dict[str, Any], rule_given: bool) -> dict[str, Any]:
    """The entry rule's full parameters; the entry and exit expressions built and checked."""
    st, rule_params, exits = sections["strategy"], sections["rule_params"], sections["exits"]
    if not isinstance(rule_params, dict):
        raise ConfigError(f"{where}: [strategy.params] must be a table")
    if st["entry"] is not None and (rule_given or rule_params):
        raise ConfigError(f"{where}: [strategy] give either rule (+ [strategy.params]) or [strategy.entry], not both")
    try:
        if st["entry"] is None:
            rule_params = dict(rules.make(st["rule"], **rule_params).values)
        entry = compose.build(entry_spec(st, rule_params), "[strategy.entry]")
        if not compose.has_event(entry):
            raise ValueError("[strategy.entry] needs at least one event rule (e.g. ath_confirmed), not only filters")
        if exits["rule"] is not None:
            compose.build(exits["rule"], "[exits.rule]")
        if exits["index_below_break"]:
            no_level = [leaf.rule.name for leaf in entry.leaves() if leaf.rule.kind == "event" and not leaf.rule.level]
            if no_level:
                raise ValueError(
                    f"[exits] index_below_break needs event rules that report a break level; {', '.join(no_level)} "
                    "does not"
                )
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    return rule_params


def _rate_symbols(where: str, body: dict[str, Any]) -> dict[str, str]:
    """Take the rate keys given as yield symbols out of ``body`` (a number stays for its Param to check)."""
    out = {}
    for key in RATE_KEYS:
        value = body.get(key)
        if isinstance(value, str):
            try:
                out[key] = canonical_symbol(body.pop(key))
            except DataError:
                raise ConfigError(
                    f"{where}: [portfolio] {key} = {value!r} is neither a rate nor a symbol; give an annual rate "
                    "(0.04 is 4%) or the symbol of a cached yield series (riskon data import FILE --kind yield)"
                ) from None
    return out


def _check_sizing(where: str, pf: dict[str, Any]) -> None:
    sizing = pf["sizing"]
    if sizing in ("vol_target", "notional") and pf[sizing] is None:
        example = "0.4 (40% a year)" if sizing == "vol_target" else "25000"
        raise ConfigError(f"{where}: [portfolio] sizing = {sizing!r} needs {sizing} set, e.g. {sizing} = {example}")
    if sizing != "fraction" and pf["fraction"] != 1.0:
        raise ConfigError(
            f"{where}: [portfolio] fraction = {pf['fraction']!r} applies to sizing = 'fraction' only; drop it "
            f"(sizing = {sizing!r} sets the size{' and vol_cap caps it' if sizing == 'vol_target' else ''})"
        )


def entry_spec(strategy: dict[str, Any], rule_params: dict[str, Any]) -> dict[str, Any]:
    """The entry expression of a config: [strategy.entry], or the single rule with its params."""
    if strategy.get("entry") is not None:
        return strategy["entry"]
    return {"rule": strategy["rule"], **rule_params}


def load(path: str | Path) -> RunConfig:
    """Read and validate a TOML run config."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the config ({e})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    except RecursionError:  # the TOML parser recurses once per nested table or array
        raise ConfigError(
            f"{path}: tables or arrays nested too deeply to read; a run config needs a few levels"
        ) from None
    cfg = parse(raw, str(path))
    return RunConfig(**{**cfg.__dict__, "text": text})


def benchmark_text(cfg: RunConfig, symbol: str | None) -> str:
    """The benchmark a run of ``cfg`` was measured against, in words (pages and the run summary name it).

    ``symbol``: the ``[report] benchmark`` series the run used, or None for the buy-and-hold of its
    targets (always the case for a run read back from a sweep store: the option is a page
    setting, not part of a run's identity).
    """
    if symbol is not None:
        return f"{symbol} bought at its first open in the run's window and held ([report] benchmark)"
    assets = cfg.target["assets"]
    if len(assets) == 1:
        return f"{assets[0]} bought at its first open and held"
    return (
        f"buy-and-hold of the {len(assets)} coins: equal cash into each at its own first bar, held; a coin whose "
        "data ends is sold at its last close and that cash stays cash"
    )


def benchmark_name(cfg: RunConfig, symbol: str | None) -> str:
    """What is bought and held, in a few words: the symbol, or ``11 coins`` for a basket's targets."""
    if symbol is not None:
        return symbol
    assets = cfg.target["assets"]
    return assets[0] if len(assets) == 1 else f"{len(assets)} coins"


def benchmark_label(cfg: RunConfig, symbol: str | None) -> str:
    """The benchmark's short name for chart legends and table columns, e.g. ``buy & hold BTC-USD``."""
    return f"buy & hold {benchmark_name(cfg, symbol)}"


def target_text(cfg: RunConfig) -> str:
    """The traded target in words: one asset, or a basket/top-k over n coins."""
    tg = cfg.target
    if tg["mode"] == "single":
        return tg["assets"][0]
    what = "equal-weight basket" if tg["mode"] == "basket" else f"top-{tg['k']} by {tg['momentum_days']}-bar momentum"
    return f"{what} of {len(tg['assets'])} coins"
