"""Errors a backtest raises, importable without backtrader (the CLI turns them into one line)."""

from __future__ import annotations


class OrderFailed(RuntimeError):
    """backtrader refused an order (Margin or Rejected): the run's numbers would be wrong."""


__all__ = ["OrderFailed"]
