"""What a sweep call did, and the store's view of the sweep afterwards (its runs read only when asked for)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from riskon.sweeps.store import Store


@dataclass
class SweepResult:
    """What a sweep call did, and the store's view of the sweep afterwards."""

    sweep_id: str
    name: str
    total: int
    already_done: int
    ran: int
    failed: int
    skipped: int
    seconds: float
    executor: str
    store: Store | None = field(repr=False, default=None)
    _runs: pd.DataFrame | None = field(repr=False, default=None)

    @property
    def runs(self) -> pd.DataFrame:
        """Every run of the sweep as stored, read on first use (a sweep of 10^6 runs does not hold them all)."""
        if self._runs is None:
            self._runs = self.store.runs(self.sweep_id) if self.store is not None else pd.DataFrame()
        return self._runs
