"""The two failures the data layer reports to users, each as one clear line."""

from __future__ import annotations


class DataError(ValueError):
    """Data that cannot be used as it is: the message says what is wrong and how to fix it."""


class NetworkError(RuntimeError):
    """A source could not be reached in time; nothing in the cache was changed."""
