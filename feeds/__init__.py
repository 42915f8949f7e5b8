"""Data in: sources, validation, the Parquet cache, as-of alignment and backtrader feeds.

``feeds`` knows nothing of strategies or of riskon's configs; it hands the next
room plain, validated pandas frames.
"""

from feeds.errors import DataError, NetworkError

__all__ = ["DataError", "NetworkError"]
