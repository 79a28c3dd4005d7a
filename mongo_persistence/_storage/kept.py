"""The kept writes on disk: appending them to the journal, compacting it, rewriting it.

One lock, so that the file is changed by one of them at a time; the file calls run in a thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Final

from mongo_persistence._errors import PersistenceWriteError
from mongo_persistence._storage.attempts import MIN_ATTEMPT
from mongo_persistence._storage.journal import Journal, record_line
from mongo_persistence._storage.tracker import Entry, Plan, StateTracker
from mongo_persistence._util.logs import get_logger

_LOGGER = get_logger(__name__)

_JOURNAL_SLACK: Final = 64
"""Records beyond four per kept entity after which the journal is compacted during an outage."""


class KeptJournal:
    """Writes the records of kept entries to :attr:`journal`, in a worker thread.

    Args:
        journal (:class:`~mongo_persistence._storage.journal.Journal`): The file.
        tracker (:class:`~mongo_persistence._storage.tracker.StateTracker`): Plans each record.
        database (:obj:`str` | :obj:`None`): Named in each record.
        namespace (:obj:`str` | :obj:`None`): Named in each record.
    """

    __slots__ = ("_compactor", "_database", "_lock", "_namespace", "_tracker", "journal")

    def __init__(
        self,
        journal: Journal,
        tracker: StateTracker,
        database: str | None,
        namespace: str | None,
    ) -> None:
        self.journal = journal
        self._tracker = tracker
        self._database = database
        self._namespace = namespace
        self._lock = asyncio.Lock()  # appends and rewrites of the file, one at a time
        self._compactor: asyncio.Task[None] | None = None

    def records(self, entries: Iterable[Entry]) -> list[str]:
        """The journal records of entries (nothing for those that need no write)."""
        lines = []
        for entry in entries:
            plan = self._tracker.plan(entry)
            if plan.kind != "skip":
                lines.append(self._line(entry, plan))
        return lines

    def _line(self, entry: Entry, plan: Plan) -> str:
        return record_line(entry, plan, database=self._database, namespace=self._namespace)

    async def append(
        self, items: list[tuple[Entry, Plan]], pending: Callable[[], list[Entry]]
    ) -> PersistenceWriteError | None:
        """Appends kept entries (with their plans); the error for their callers if that fails.

        A long outage compacts the journal (one record per kept entity, not one per run).
        """
        if not items:
            return None
        lines = [self._line(entry, plan) for entry, plan in items if plan.kind != "skip"]
        try:
            async with self._lock:
                await asyncio.to_thread(self.journal.append, lines)
        except OSError as exc:
            _LOGGER.error("Cannot write the journal %s: %s", self.journal.path, exc)
            return PersistenceWriteError(
                "kept writes", f"not acknowledged, and the journal failed: {exc}", kept=True
            )
        if self.journal.records > 4 * len(pending()) + _JOURNAL_SLACK:
            self.compact_soon(pending)
        return None

    def compact_soon(self, pending: Callable[[], list[Entry]]) -> None:
        """Rewrites the journal with the kept writes only, soon (removed when there are none)."""
        if self.journal.records and (self._compactor is None or self._compactor.done()):
            self._compactor = asyncio.get_running_loop().create_task(self._compact(pending))

    async def _compact(self, pending: Callable[[], list[Entry]]) -> None:
        try:
            async with self._lock:
                await asyncio.to_thread(self.journal.rewrite, self.records(pending()))
        except OSError as exc:
            _LOGGER.error("Cannot compact the journal %s: %s", self.journal.path, exc)

    async def wait_compacted(self, deadline: float) -> None:
        """Waits for a compaction under way, at most until :paramref:`deadline` (monotonic)."""
        compactor = self._compactor
        if compactor is not None and not compactor.done():
            await asyncio.wait({compactor}, timeout=max(MIN_ATTEMPT, deadline - time.monotonic()))

    async def release(self) -> None:
        """Releases the journal's lock: what it holds is left behind, for the next start."""
        async with self._lock:
            await asyncio.to_thread(self.journal.release)

    async def rewrite(self, entries: Iterable[Entry]) -> int:
        """Replaces the journal's records by those of :paramref:`entries`; returns their count."""
        lines = self.records(entries)
        async with self._lock:
            await asyncio.to_thread(self.journal.rewrite, lines)
        return len(lines)
