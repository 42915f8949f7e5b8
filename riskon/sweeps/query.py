"""``riskon results --where``: a small filter language over a sweep's runs, parsed here and never run as SQL.

A filter is read by a tokenizer and a recursive-descent parser into a tree, every name in it is checked
against the runs' metrics and swept parameters, and the tree is evaluated on the pandas table of runs.
User text never reaches a database or ``eval``: anything outside the grammar is refused with one line.

```text
filter     := or
or         := and ("or" and)*
and        := not ("and" not)*
not        := "not" not | "(" or ")" | comparison
comparison := operand (op operand)+          a < b <= c means a < b and b <= c
operand    := name | number | -number | 'text' | "text" | true | false
op         := < | <= | > | >= | == | = | != | <>
name       := a metric (sharpe), a parameter's short name as the results table shows it
              (confirm_days), or its dotted path (strategy.params.confirm_days)
```

Numbers compare as numbers; a cell that is not a number (a disabled stop stored as ``false``, a
missing value, a NaN metric of a failed run) never satisfies ``<``, ``<=``, ``>``, ``>=`` or ``==``,
and ``!=`` is ``not ==``. Text and ``true``/``false`` compare only with ``==`` and ``!=``. Keywords
are case-insensitive (``AND`` works too).
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskon.config import ConfigError
from riskon.metrics import METRICS
from riskon.sweeps.store import short_name

#: Longest filter accepted, in characters.
MAX_LENGTH = 1000
#: Deepest nesting of parentheses and ``not``.
MAX_DEPTH = 32

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
      | (?P<text>"[^"\\\n]*"|'[^'\\\n]*')
      | (?P<op><=|>=|==|!=|<>|<|>|=)
      | (?P<paren>[()])
      | (?P<minus>-)""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "true", "false"}
_ORDER = {"<", "<=", ">", ">="}
_HOW = "write e.g. \"sharpe > 0.8 and confirm_days >= 2\" (names, numbers, 'text', < <= > >= == !=, and, or, not, ())"


@dataclass(frozen=True)
class Token:
    """One token: its kind (number, name, text, op, paren, minus, keyword), its text and where it starts."""

    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    """The tokens of a filter; a character outside the grammar is refused with its position."""
    if len(text) > MAX_LENGTH:
        raise ConfigError(f"--where: the filter has {len(text):,} characters, at most {MAX_LENGTH:,}; shorten it")
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ConfigError(f"--where: unexpected character {text[pos]!r} at position {pos + 1}; {_HOW}")
        kind = m.lastgroup
        if kind != "space":
            word = m.group()
            if kind == "name" and word.lower() in _KEYWORDS:
                kind, word = "keyword", word.lower()
            elif kind == "op":
                word = {"=": "==", "<>": "!="}.get(word, word)
            out.append(Token(kind, word, pos + 1))
        pos = m.end()
    return out


# -- the tree: ("or", [nodes]) ("and", [nodes]) ("not", node) ("cmp", [operands], [ops]); operands are
#    ("name", text) ("num", float) ("text", str) ("bool", bool)
class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens, self.i, self.depth = tokens, 0, 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise ConfigError(f"--where: the filter ends too early; {_HOW}")
        self.i += 1
        return tok

    def fail(self, tok: Token | None, wanted: str) -> ConfigError:
        if tok is None:
            return ConfigError(f"--where: the filter ends where {wanted} was expected; {_HOW}")
        return ConfigError(f"--where: unexpected {tok.text!r} at position {tok.pos}: {wanted} was expected; {_HOW}")

    def parse(self) -> tuple:
        if not self.tokens:
            raise ConfigError(f"--where: the filter is empty; {_HOW}")
        node = self.or_()
        if self.peek() is not None:
            raise self.fail(self.peek(), "'and', 'or' or the end")
        return node

    def _keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "keyword" and tok.text == word:
            self.i += 1
            return True
        return False

    def or_(self) -> tuple:
        parts = [self.and_()]
        while self._keyword("or"):
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def and_(self) -> tuple:
        parts = [self.not_()]
        while self._keyword("and"):
            parts.append(self.not_())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def _deeper(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ConfigError(f"--where: nested more than {MAX_DEPTH} levels deep at position {tok.pos}; simplify it")

    def not_(self) -> tuple:
        tok = self.peek()
        if tok is not None and tok.kind == "keyword" and tok.text == "not":
            self._deeper(tok)
            self.i += 1
            node = ("not", self.not_())
            self.depth -= 1
            return node
        if tok is not None and tok.kind == "paren" and tok.text == "(":
            self._deeper(tok)
            self.i += 1
            node = self.or_()
            close = self.peek()
            if close is None or close.text != ")":
                raise self.fail(close, "')'")
            self.i += 1
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> tuple:
        operands, ops = [self.operand()], []
        while (tok := self.peek()) is not None and tok.kind == "op":
            self.i += 1
            ops.append(tok.text)
            operands.append(self.operand())
        if not ops:
            raise self.fail(self.peek(), "a comparison operator (< <= > >= == !=)")
        return ("cmp", operands, ops)

    def operand(self) -> tuple:
        tok = self.take()
        if tok.kind == "minus":
            num = self.peek()
            if num is None or num.kind != "number":
                raise self.fail(num, "a number after '-'")
            self.i += 1
            return ("num", -float(num.text))
        if tok.kind == "number":
            return ("num", float(tok.text))
        if tok.kind == "name":
            return ("name", tok.text)
        if tok.kind == "text":
            return ("text", tok.text[1:-1])
        if tok.kind == "keyword" and tok.text in ("true", "false"):
            return ("bool", tok.text == "true")
        self.i -= 1
        raise self.fail(tok, "a name, a number or 'text'")


def parse(text: str) -> tuple:
    """The tree of a filter (see the module docstring); one ``ConfigError`` line for anything else."""
    return _Parser(tokenize(text)).parse()


def _names(node: tuple) -> list[str]:
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        if n[0] in ("or", "and"):
            stack.extend(n[1])
        elif n[0] == "not":
            stack.append(n[1])
        else:
            out += [o[1] for o in n[1] if o[0] == "name"]
    return out


def param_paths(runs: pd.DataFrame) -> list[str]:
    """The dotted paths a sweep varies (every run of a sweep stores the same ones in ``params``)."""
    if runs.empty or "params" not in runs:
        return []
    return list(json.loads(runs["params"].iloc[0]))


def valid_names(runs: pd.DataFrame, paths: list[str]) -> dict[str, str]:
    """Every name a filter may use, mapped to its column: metrics, parameters' short names and dotted paths."""
    names = {m: m for m in METRICS if m in runs.columns}
    for p in paths:
        col = short_name(p, paths)
        if col in runs.columns:
            names.setdefault(col, col)
            names.setdefault(p, col)
    return names


def _numbers(values: pd.Series) -> np.ndarray:
    """A column as floats; anything not a number (true/false, text, None) is NaN."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return np.full(len(values), np.nan)
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.to_numpy(dtype="float64")
    return np.array(
        [float(v) if isinstance(v, int | float | np.number) and not isinstance(v, bool | np.bool_) else math.nan
         for v in values],
        dtype="float64",
    )  # fmt: skip


def _value(operand: tuple, runs: pd.DataFrame, names: dict[str, str]) -> Any:
    return runs[names[operand[1]]] if operand[0] == "name" else operand


def _compare(left: Any, op: str, right: Any, n: int) -> np.ndarray:
    if op in _ORDER:
        for side in (left, right):
            if isinstance(side, tuple) and side[0] != "num":
                raise ConfigError(f"--where: {op} compares numbers; text and true/false take only == and !=")
        a = _numbers(left) if isinstance(left, pd.Series) else left[1]
        b = _numbers(right) if isinstance(right, pd.Series) else right[1]
        with np.errstate(invalid="ignore"):
            out = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}[op](a, b)
        return np.broadcast_to(np.asarray(out, dtype=bool), (n,))
    same = _equal(left, right, n)
    return same if op == "==" else ~same


def _equal(left: Any, right: Any, n: int) -> np.ndarray:
    if isinstance(right, pd.Series) and not isinstance(left, pd.Series):
        left, right = right, left
    if not isinstance(left, pd.Series):  # two literals
        return np.full(n, left == right)
    if isinstance(right, tuple):
        kind, lit = right
        if kind == "num":
            return _numbers(left) == lit
        if kind == "text":
            return np.array([isinstance(v, str) and v == lit for v in left], dtype=bool)
        return np.array([isinstance(v, bool | np.bool_) and bool(v) == lit for v in left], dtype=bool)
    a, b = _numbers(left), _numbers(right)
    plain = np.array(
        [not isinstance(x, int | float | np.number) or isinstance(x, bool | np.bool_) for x in left], dtype=bool
    )
    other = np.array([x == y if p else False for x, y, p in zip(left, right, plain, strict=True)], dtype=bool)
    return (a == b) | other


def _evaluate(node: tuple, runs: pd.DataFrame, names: dict[str, str]) -> np.ndarray:
    kind = node[0]
    if kind in ("or", "and"):
        parts = [_evaluate(p, runs, names) for p in node[1]]
        return np.logical_or.reduce(parts) if kind == "or" else np.logical_and.reduce(parts)
    if kind == "not":
        return ~_evaluate(node[1], runs, names)
    operands, ops = node[1], node[2]
    values = [_value(o, runs, names) for o in operands]
    out = np.ones(len(runs), dtype=bool)
    for left, op, right in zip(values, ops, values[1:], strict=False):
        out &= _compare(left, op, right, len(runs))
    return out


def filter_runs(runs: pd.DataFrame, text: str, paths: list[str] | None = None) -> pd.DataFrame:
    """The runs a ``--where`` filter keeps (same columns and order).

    ``paths``: the sweep's dotted parameter paths (default: read from the runs' ``params``). An unknown
    name is one line listing the valid ones, with a did-you-mean.
    """
    tree = parse(text)
    names = valid_names(runs, param_paths(runs) if paths is None else paths)
    for name in _names(tree):
        if name not in names:
            valid = ", ".join(sorted(names, key=lambda k: (k not in METRICS, "." in k, k)))
            lower = {k.lower(): k for k in names}
            close = [lower[name.lower()]] if name.lower() in lower else difflib.get_close_matches(name, list(names), 1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"--where: unknown name {name!r}{hint}; valid names: {valid}")
    return runs[_evaluate(tree, runs, names)]
