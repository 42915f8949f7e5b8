"""A grid sweep's combinations in three streaming passes: memory does not grow with the grid.

``riskon.sweeps.driver`` used to hold every combination's parsed config and its run id (about 2.6 KB
each: 26 MB for 10,000, 263 MB for 100,000, gigabytes for millions). It now walks the lazy
``Combinations`` up to three times:

1. **survey**: validate every combination (nothing runs and no data loads until all are valid); count
   them and the ones a rule's constraint skips; note the series they read and whether the fast engine
   can run them all.
2. **ids**: with the data's fingerprints and the engine known, give each combination its run id. The
   only state per combination is its id as raw bytes (``RunIds``: 10 bytes for 20 hex digits), enough
   to count the distinct runs and find the rare ids that repeat, so the sweep's size is exact before
   anything runs.
3. **tasks**: hand the combinations still to run to the workers as they are generated (the fast engine
   plans them into chunks a block of ``BLOCK`` at a time).

A sweep of up to ``MEMO`` combinations keeps its parsed configs from the survey (as before: one
validation each, ~22 MB at most); a larger one validates again in passes 2 and 3 instead of holding
them: its memory is bounded by ``BLOCK`` configs (~22 MB) plus its run ids, at the price of three
validations per combination. Run ids, their order, the skipped count and the stored rows are the
same either way.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from riskon.config import RunConfig
from riskon.sweeps.keys import series_needed
from riskon.sweeps.pools import ExecutorError
from riskon.sweeps.spec import Combinations, planned_size

if TYPE_CHECKING:  # the store is handed in by the driver
    from riskon.sweeps.store import Store

#: Sweeps of up to this many combinations keep their parsed configs between the passes (~2.2 KB each).
MEMO = 10_000
#: The fast engine plans (groups by data/rule setting, chunks) this many combinations at a time (~2.2 KB each).
BLOCK = 10_000


@dataclass
class Survey:
    """Pass 1: how many combinations are valid and skipped, what they read, what the fast engine cannot run."""

    valid: int = 0
    skipped: int = 0
    series: list[tuple[str, str]] = field(default_factory=list)
    unsupported: str | None = None  # why the fast engine cannot run one of them (the first found)
    memo: list[tuple[dict, RunConfig]] | None = None  # every (overrides, config) when there are at most MEMO


def survey(combos: Combinations, unsupported: Callable[[RunConfig], str | None] | None) -> Survey:
    """Validate every combination once, keeping only counts (and the configs of a sweep of at most ``MEMO``).

    ``unsupported(cfg)`` says why the fast engine cannot run a config (None: it can); it is asked until
    the first such config (None: not asked at all, for the backtrader engine).
    """
    out = Survey(memo=[] if planned_size(combos.spec) <= MEMO else None)  # a larger grid holds none from the start
    series: dict[tuple[str, str], None] = {}
    for overrides, cfg in combos:
        for key in series_needed([cfg]):
            series.setdefault(key)
        if unsupported is not None and out.unsupported is None:
            out.unsupported = unsupported(cfg)
        if out.memo is not None:
            out.memo.append((overrides, cfg))
            if len(out.memo) > MEMO:
                out.memo = None
    out.valid, out.skipped, out.series = combos.valid, combos.skipped, list(series)
    return out


class RunIds:
    """Run ids (hex digests) collected as raw bytes: how many are distinct, which repeat, each distinct one once.

    A Python set of a million 20-digit ids costs ~100 MB; their 10 bytes each cost 10 MB, sorted once at the end.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._width: int | None = None
        self._sorted: np.ndarray | None = None
        self.repeated: set[str] = set()
        self.distinct = 0

    def add(self, rid: str) -> None:
        """Record one combination's run id."""
        raw = bytes.fromhex(rid)
        if self._width is None:
            self._width = len(raw)
        elif len(raw) != self._width:
            raise ValueError(f"run ids of one sweep have one length; got {rid!r} after ids of {self._width} bytes")
        self._buf += raw

    def add_raw(self, raw: bytes, width: int) -> None:
        """Record run ids already packed as raw bytes, ``width`` bytes each (a Dask worker's share)."""
        if self._width is None:
            self._width = width
        elif width != self._width:
            raise ValueError(f"run ids of one sweep have one length; got {width} bytes after ids of {self._width}")
        self._buf += raw

    def finish(self) -> None:
        """Sort the ids: count the distinct ones and note those that occur more than once."""
        width = self._width or 1
        ids = np.sort(np.frombuffer(self._buf, dtype=f"S{width}"))  # fixed-width bytes: compared as written
        self._buf = bytearray()
        same = ids[1:] == ids[:-1]
        rows = ids.view(np.uint8).reshape(-1, width)
        self.repeated = {rows[i + 1].tobytes().hex() for i in np.flatnonzero(same)}
        keep = np.ones(len(ids), dtype=bool)
        keep[1:] = ~same
        self._sorted = rows[keep]
        self.distinct = int(keep.sum())

    def blocks(self, size: int) -> Iterator[list[str]]:
        """The distinct run ids (sorted), ``size`` at a time."""
        if self._sorted is None:
            raise RuntimeError("RunIds.finish() first")
        for start in range(0, len(self._sorted), size):
            yield [row.tobytes().hex() for row in self._sorted[start : start + size]]


class IdSet:
    """A read-only set of run ids: a Python set when small, else one sorted array of their bytes."""

    #: Above this many ids the array is used.
    SMALL = 100_000

    def __init__(self, ids: Iterable[str]) -> None:
        ids = ids if isinstance(ids, set | frozenset) else set(ids)
        self._n = len(ids)
        self._small: frozenset[str] | None = frozenset(ids) if self._n <= self.SMALL else None
        if self._small is None:
            raw = [bytes.fromhex(r) for r in ids]
            self._sorted = np.sort(np.array(raw, dtype=f"S{max(len(r) for r in raw)}"))

    def __len__(self) -> int:
        return self._n

    def array(self, width: int) -> np.ndarray:
        """Every id as fixed-width raw bytes (dtype ``S{width}``), for vectorised membership tests."""
        if self._small is None:
            return self._sorted.astype(f"S{width}")
        return np.array([bytes.fromhex(r) for r in self._small], dtype=f"S{width}")

    def __contains__(self, rid: str) -> bool:
        if self._small is not None:
            return rid in self._small
        key = np.array(bytes.fromhex(rid), dtype=self._sorted.dtype)
        i = int(np.searchsorted(self._sorted, key))
        return i < len(self._sorted) and bool(self._sorted[i] == key)


def with_ids(
    combos: Combinations, memo: list[tuple[dict, RunConfig]] | None, rid_of: Callable[[RunConfig], str]
) -> Iterator[tuple[dict, RunConfig, str]]:
    """Every valid combination with its run id: from the survey's configs, or validated again."""
    source = memo if memo is not None else combos
    for overrides, cfg in source:
        yield overrides, cfg, rid_of(cfg)


def todo(
    combos: Iterable[tuple[dict, RunConfig, str]], repeated: set[str], done: IdSet
) -> Iterator[tuple[dict, RunConfig, str]]:
    """The combinations to run: the first of each run id (in sweep order), without those already stored."""
    seen: set[str] = set()
    for overrides, cfg, rid in combos:
        if rid in repeated:
            if rid in seen:
                continue
            seen.add(rid)
        if rid not in done:
            yield overrides, cfg, rid


def stored_runs(store: Store, sweep_id: str, ids: RunIds) -> tuple[int, IdSet]:
    """How many of the sweep's distinct runs are stored already, and their ids.

    Its own finished runs, and finished runs of other sweeps with the same ids, which are linked to it
    (``Store.link_existing``, a block of ``BLOCK`` ids at a time).
    """
    stored, linked, already = store.done_ids(sweep_id), set(), 0
    for block in ids.blocks(BLOCK):
        found = store.link_existing(sweep_id, block)
        linked |= found
        already += sum(r in stored or r in found for r in block)
    return already, IdSet(stored | linked)


def pending(
    combos: Combinations,
    memo: list[tuple[dict, RunConfig]] | None,
    memo_ids: list[str] | None,
    rid_of: Callable[[RunConfig], str],
    repeated: set[str],
    done: IdSet,
) -> Iterator[tuple[dict, RunConfig, str]]:
    """Pass 3: ``(overrides, config, run id)`` of every run still to do, in sweep order, as they are generated."""
    if memo is not None and memo_ids is not None:
        source: Iterable = ((ov, cfg, rid) for (ov, cfg), rid in zip(memo, memo_ids, strict=True))
    else:
        source = with_ids(combos, None, rid_of)
    return todo(source, repeated, done)


def in_blocks(items: Iterable, size: int) -> Iterator[list]:
    """``items`` as lists of at most ``size``."""
    it = iter(items)
    while block := list(itertools.islice(it, size)):
        yield block


#: Seconds without any Dask worker after which a sweep gives up (a worker that restarts comes back sooner).
WORKERLESS_GRACE = 30.0
#: A worker died holding the data sent to it (the tasks that needed it are cancelled).
LOST = (
    "a Dask worker was lost with the data sent to it; the runs finished so far are stored: start workers again "
    "and run the same command to resume"
)


def windowed(
    client, fn: Callable, tasks: Iterable[tuple], window: int | None = None, flatten: bool = False
) -> Iterator:
    """Results of ``fn(*task)`` on a Dask cluster, at most ``window`` tasks submitted and not yet consumed.

    Submitting every task at once would hold all of them (and their futures) in memory. The default
    window is four tasks per worker thread, at least 8. A cluster left without any worker for
    ``WORKERLESS_GRACE`` seconds, or a task whose workers keep dying, ends the sweep with an
    ``ExecutorError`` (the runs finished so far are kept by the caller), never a silent wait.
    """
    # Dask loads only for a Dask sweep
    from dask.distributed import wait
    from distributed.client import FuturesCancelledError
    from distributed.scheduler import KilledWorker

    window = window or max(8, 4 * sum(client.nthreads().values()))
    it = iter(tasks)
    pending = {client.submit(fn, *task, pure=False, retries=3) for task in itertools.islice(it, window)}
    alone_since = None
    while pending:
        try:
            done, pending = wait(pending, timeout=2.0, return_when="FIRST_COMPLETED")
        except FuturesCancelledError:
            raise ExecutorError(LOST) from None
        except TimeoutError:
            if client.scheduler_info().get("workers"):
                alone_since = None
            else:
                alone_since = alone_since or time.monotonic()
                if time.monotonic() - alone_since > WORKERLESS_GRACE:
                    raise ExecutorError(
                        f"every Dask worker is gone (none for {WORKERLESS_GRACE:g} s); the runs finished so far "
                        "are stored: start workers again and run the same command to resume"
                    ) from None
            continue
        for fut in done:
            try:
                result = fut.result()
            except FuturesCancelledError:
                raise ExecutorError(LOST) from None
            except KilledWorker:
                raise ExecutorError(
                    "a Dask task killed its worker on every retry (out of memory?); the runs finished so far are "
                    "stored: run the same command again to resume"
                ) from None
            nxt = next(it, None)
            if nxt is not None:
                pending.add(client.submit(fn, *nxt, pure=False, retries=3))
            if flatten:
                yield from result
            else:
                yield result
