"""Errors a backtest raises, importable without backtrader (the CLI turns them into one line)."""

from __future__ import annotations


class OrderFailed(RuntimeError):
    """backtrader refused an order (Margin or Rejected): the run's numbers would be wrong."""


class RuleError(ValueError):
    """A rule, a rule parameter or a rule expression is invalid: unknown name, wrong type, out of range.

    A ``ValueError`` so that callers validating a config can catch it with the other bad values.
    """


__all__ = ["OrderFailed", "RuleError"]
