"""The results store's errors (exit code 4), apart so that modules the store calls can raise them."""

from __future__ import annotations


class StoreError(RuntimeError):
    """The results file cannot be used (locked too long, not a DuckDB file, an older layout)."""


class StoreBusy(StoreError):
    """The database stayed locked by another process for longer than the timeout."""


__all__ = ["StoreBusy", "StoreError"]
