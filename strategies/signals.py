"""From per-session rule signals to per-bar events the strategy can act on.

A signal is an event, not a state: a crypto bar carries an event when a
confirming session becomes visible on it that was not visible on the previous
bar (the first bar counts only the session it carries). Weekend bars that keep
seeing Friday's session therefore never repeat Friday's signal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def bar_events(aligned: pd.DataFrame, rule_out: pd.DataFrame) -> pd.DataFrame:
    """Per bar of ``aligned``: ``event`` (bool), the ``event_level`` and ``event_session`` behind it.

    ``rule_out`` is a rule's per-session output (``signal``, ``level``) on the
    same sessions that produced ``aligned['idx_pos']``.
    """
    signal = rule_out["signal"].to_numpy(dtype=bool)
    level = rule_out["level"].to_numpy(dtype="float64")
    pos = aligned["idx_pos"].to_numpy()
    count = np.concatenate([[0], np.cumsum(signal)])  # count[j + 1] = signals in sessions 0..j
    seen = count[pos + 1]  # pos == -1 -> count[0] == 0
    before = np.empty_like(seen)
    if len(pos):
        before[0] = count[pos[0]] if pos[0] >= 0 else 0  # the first bar: only the session it carries
        before[1:] = seen[:-1]
    event = seen > before
    # the latest confirming session at or before each session
    idx = np.where(signal, np.arange(len(signal)), -1)
    last = np.maximum.accumulate(idx) if len(idx) else idx
    src = np.where(pos >= 0, last[np.maximum(pos, 0)], -1)
    src = np.where(event, src, -1)
    sessions = rule_out.index.to_numpy()
    event_session = np.where(src >= 0, sessions[np.maximum(src, 0)], np.datetime64("NaT"))
    return pd.DataFrame(
        {
            "event": event,
            "event_level": np.where(src >= 0, level[np.maximum(src, 0)], np.nan),
            "event_session": pd.DatetimeIndex(event_session),
        },
        index=aligned.index,
    )
