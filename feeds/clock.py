"""The current time, in one place: validation asks it whether a bar lies in the future.

Tests replace the clock either by passing ``now=`` to the import functions or by
patching :func:`utc_now` (looked up on every call, so ``monkeypatch.setattr``
on this module works).
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd


def utc_now() -> pd.Timestamp:
    """The current time as a UTC-aware timestamp."""
    return pd.Timestamp.now(tz="UTC")


def as_utc(now: datetime | pd.Timestamp | str | None) -> pd.Timestamp:
    """``now`` as a UTC-aware timestamp (naive values are read as UTC); ``None`` means :func:`utc_now`."""
    if now is None:
        return utc_now()
    stamp = pd.Timestamp(now)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
