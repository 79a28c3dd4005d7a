"""The coalescing, retrying writer: batches, one ``bulk_write`` per collection, kept writes.

Writes handed over together (as PTB does in one ``update_persistence()`` run) are gathered into
one unordered ``bulk_write`` per collection. Each caller still gets its own result or error. A
write that fails is kept (newest data per document wins), journaled, and retried with the next
batch and at :meth:`Writer.flush`; what cannot be saved before the flush deadline stays in the
journal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from mongo_persistence._errors import PersistenceWriteError
from mongo_persistence._storage.attempts import Attempts, is_transient
from mongo_persistence._storage.entry import now_utc
from mongo_persistence._storage.health import Health, OutageLog
from mongo_persistence._storage.kept import KeptJournal
from mongo_persistence._storage.tracker import Entry, Plan, StateTracker
from mongo_persistence._storage.wire import send_bulk, send_each
from mongo_persistence._util.errors import short_error, without_document
from mongo_persistence._util.logs import get_logger

_LOGGER = get_logger(__name__)

_Key = tuple[str, Any]


class Writer:
    """Sends the entries handed over, keeps and retries those that fail.

    Args:
        collection (Callable[[:obj:`str`], collection]): The collection object of a kind.
        tracker (:class:`~mongo_persistence._storage.tracker.StateTracker`): Plans each write.
        attempts (:class:`~mongo_persistence._storage.attempts.Attempts`): Bounds each attempt.
        kept (:class:`~mongo_persistence._storage.kept.KeptJournal`): The journal of kept writes.
        bulk (:obj:`bool`): ``bulk_write`` per collection, else one request per document.
    """

    __slots__ = (
        "_attempts",
        "_collection",
        "_inflight",
        "_pending",
        "_queue",
        "_round",
        "_task",
        "bulk",
        "kept",
        "outage",
        "tracker",
    )

    def __init__(
        self,
        *,
        collection: Callable[[str], Any],
        tracker: StateTracker,
        attempts: Attempts,
        kept: KeptJournal,
        bulk: bool,
    ) -> None:
        self._collection = collection
        self.tracker = tracker
        self._attempts = attempts
        self.kept = kept
        self.bulk = bulk
        self.outage = OutageLog()
        self._queue: dict[_Key, Entry] = {}
        self._pending: dict[_Key, Entry] = {}
        # The batch being written; entries leave it once they are acknowledged or failed.
        self._inflight: dict[_Key, Entry] = {}
        self._task: asyncio.Task[None] | None = None
        # Answered once the next batch, which takes every kept write along, has its answers:
        # one future for all the callers of a run (not one per caller and kept write).
        self._round: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ handing over
    def submit(self, entry: Entry) -> Awaitable[None] | None:
        """Hands one entity over, to be written with whatever else arrives in the same moment.

        Returns:
            What to await for its answer (see
            :meth:`mongo_persistence._storage.store.MongoStore.write`), or :obj:`None` when
            there is nothing to write nor to wait for.
        """
        key = entry.key
        if self._unchanged(entry, key):
            return None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry.wait_for(future)
        for older in (self._queue.get(key), self._pending.pop(key, None)):
            if older is not None:
                entry.take_waiters(older)
                entry.since = min(entry.since, older.since)
        self._queue[key] = entry
        carried = self._carried(loop) if self._pending else None
        self.kick()
        return future if carried is None else _answered(future, carried)

    def _carried(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        """The round that sends the kept writes along with the next batch."""
        if self._round is None or self._round.done():
            self._round = loop.create_future()
        return self._round

    def is_kept(self, entry: Entry) -> bool:
        """Tells whether this entry's write failed and waits, kept, for the next writes."""
        return self._pending.get(entry.key) is entry

    def _unchanged(self, entry: Entry, key: _Key) -> bool:
        """Tells whether the entry holds what MongoDB already holds, with nothing else on the way.

        Then there is nothing to write nor to wait for (PTB hands over ``bot_data`` and the
        callback data on every run). Kept failed writes always go through the writer: this
        call is the next persistence run that sends them.
        """
        if entry.data is None or entry.digests is None or self._pending:
            return False
        if key in self._queue or key in self._inflight:
            return False
        if self.tracker.plan(entry).kind != "skip":
            return False
        self.tracker.found_unchanged(entry)
        return True

    def unchanged_value(self, key: _Key, value: object, extra: Mapping[str, Any]) -> bool:
        """Tells whether a value is the one last found unchanged, with nothing else on the way.

        See :meth:`~mongo_persistence._storage.tracker.StateTracker.same_value`.
        """
        if self._pending or key in self._queue or key in self._inflight:
            return False
        return self.tracker.same_value(key, value, extra)

    def kick(self) -> None:
        """Starts the writer task unless it runs."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    # ------------------------------------------------------------------ batches
    async def _drain(self) -> None:
        # One turn of the event loop lets every coroutine of the same gather() queue its entry.
        await asyncio.sleep(0)
        retry_all = True  # the first batch of a run takes every kept write along
        while True:
            round_, self._round = self._round, None
            batch = self._take_batch(retry_all or round_ is not None)
            retry_all = False
            if not batch:
                _answer(round_)
                return
            self._inflight = batch
            try:
                await self._write_batch(list(batch.values()))
            except BaseException as exc:
                # Cancelled (e.g. by flush() at its deadline) or a bug: whatever was not settled
                # yet is kept for a retry (and journaled), and nobody is left waiting.
                kept = [(e, self.tracker.plan(e)) for e in self._inflight.values()]
                self._inflight = {}
                for entry, plan in kept:
                    self.tracker.failed(entry, plan)
                await asyncio.shield(self._keep_all(kept, exc))
                raise
            finally:
                self._inflight = {}
                _answer(round_)

    def _take_batch(self, retry_all: bool) -> dict[_Key, Entry]:
        """The queued entries, with the kept ones (all of them, or those someone waits for)."""
        batch = self._queue
        self._queue = {}
        for key, entry in list(self._pending.items()):
            if retry_all or entry.waiters is not None:
                batch.setdefault(key, entry)
                del self._pending[key]
        return batch

    def _resolved(self, entry: Entry) -> None:
        if self._inflight.get(entry.key) is entry:
            del self._inflight[entry.key]

    async def _write_batch(self, entries: Iterable[Entry]) -> None:
        per_collection: dict[str, list[tuple[Entry, Plan]]] = {}
        for entry in entries:
            plan = self.tracker.plan(entry)
            if plan.kind == "skip":
                self._resolved(entry)
                entry.settle(None)
                continue
            per_collection.setdefault(entry.collection, []).append((entry, plan))
        if per_collection:
            await asyncio.gather(
                *(self._send(kind, items) for kind, items in per_collection.items())
            )

    async def _send(self, kind: str, items: list[tuple[Entry, Plan]]) -> None:
        """Sends one collection's entries; records each outcome (acknowledged, kept, failed)."""
        now = now_utc()  # one updated_at for the batch
        # made one by one as they are sent (none kept while the batch waits for its answer)
        ops = (entry.op(plan, now) for entry, plan in items)
        send = send_bulk if self.bulk else send_each
        errors, upserted = await send(self._attempts, self._collection(kind), ops)
        repairs: list[Entry] = []
        kept: list[tuple[Entry, Plan]] = []
        for index, (entry, plan) in enumerate(items):
            error = errors.get(index)
            if error is not None:
                if self._failed(entry, plan, error):
                    kept.append((entry, plan))
                continue
            self._resolved(entry)
            if self.tracker.acknowledged(entry, plan, upserted=index in upserted):
                repairs.append(entry)  # another program deleted it: a diff created it in part
                continue
            self._saved()
            entry.settle(None)
        await self._keep_all(kept, errors[min(errors)] if errors else None)
        for entry in repairs:
            await self._send(kind, [(entry, self.tracker.plan(entry))])

    # ------------------------------------------------------------------ outcomes
    def _failed(self, entry: Entry, plan: Plan, error: BaseException) -> bool:
        """Records a failed attempt; tells whether the entry is kept for a retry."""
        self._resolved(entry)
        self.tracker.failed(entry, plan)
        entry.attempts += 1
        self.outage.failed(error)
        if entry.abandoned:
            return False  # flush() saved it already
        if is_transient(error):
            return True
        kind = entry.op_kind(plan)
        _LOGGER.error(
            "Writing %s failed (%s: %s) and is not retried.",
            entry.entity,
            kind,
            short_error(error),
        )
        wrapped = PersistenceWriteError(entry.entity, f"{kind}: {short_error(error)}", kept=False)
        wrapped.__cause__ = without_document(error)
        entry.settle(wrapped)
        return False

    async def _keep_all(self, kept: list[tuple[Entry, Plan]], error: BaseException | None) -> None:
        """Keeps failed writes for a retry, journals them, then answers their callers."""
        if not kept:
            return
        fresh = []
        for entry, plan in kept:
            if entry.key in self._queue or entry.key in self._pending:
                entry.settle(None)  # a newer write of this document is already waiting
                continue
            self._pending[entry.key] = entry
            fresh.append((entry, plan))
        self.outage.kept([entry.key for entry, _ in fresh], error, self.kept.journal.path)
        failure = await self.kept.append(fresh, self.pending_entries)
        for entry, _ in fresh:
            entry.settle(failure)

    def _saved(self) -> None:
        """An entry was acknowledged: ends the outage once nothing is kept any more."""
        if self._pending or self._inflight:
            return
        if self.outage.ended():
            self.kept.compact_soon(self.pending_entries)

    # ------------------------------------------------------------------ state
    def pending_entries(self) -> list[Entry]:
        """The entries kept after a failed write, waiting for a retry."""
        return list(self._pending.values())

    def unsaved_entries(self) -> list[Entry]:
        """The newest unsaved entry of every document: queued, waiting for a retry, or in flight."""
        unsaved = {**self._inflight, **self._pending, **self._queue}
        return list(unsaved.values())

    def health(self) -> Health:
        """What is not saved in MongoDB yet (see :class:`Health`)."""
        unsaved = self.unsaved_entries()
        oldest = min((e.since for e in unsaved), default=None)
        journal = self.kept.journal
        return Health(
            pending=len(self._pending),
            unsaved=len(unsaved),
            oldest_unsaved_age=None if oldest is None else time.monotonic() - oldest,
            journal_path=journal.path if journal.records else None,
            journal_records=journal.records,
            journal_bytes=journal.size,
            last_error=self.outage.last_error,
            outage_since=self.outage.since,
        )

    # ------------------------------------------------------------------ the end of a run
    def busy(self) -> bool:
        """Whether anything waits: queued or kept entries."""
        return bool(self._pending or self._queue)

    @property
    def has_pending(self) -> bool:
        """Whether kept entries wait for a retry."""
        return bool(self._pending)

    async def wait(self, deadline: float) -> bool:
        """Waits for the current batch until :paramref:`deadline`; tells whether it is done."""
        task = self._task
        if task is None or task.done():
            return True
        await asyncio.wait({task}, timeout=max(0.0, deadline - time.monotonic()))
        return task.done()

    async def give_up(self) -> int | None:
        """Ends the writes at the flush deadline: the unsaved entries are journaled and answered.

        Returns:
            The number of records in the journal, or :obj:`None` when nothing was unsaved.
        """
        task = self._task
        if task is not None and not task.done():
            task.cancel()  # the client is about to be closed: end the stuck attempt now
            await asyncio.gather(task, return_exceptions=True)
        entries = self.unsaved_entries()
        if not entries:
            return None
        records = await self.kept.rewrite(entries)
        reason = f"not acknowledged before the flush deadline; saved to {self.kept.journal.path}"
        for entry in entries:
            entry.abandoned = True
            entry.settle(PersistenceWriteError(entry.entity, reason, kept=True))
        self._pending.clear()
        self._queue.clear()
        return records


async def _answered(future: asyncio.Future[None], carried: asyncio.Future[None]) -> None:
    """Waits for an entry's answer, then for the round that carries the kept writes along.

    The kept writes' errors were reported to their own callers; this caller waits for their
    answer (``asyncio.wait``: a cancelled caller does not cancel the round).
    """
    try:
        await future
    finally:
        await asyncio.wait({carried})


def _answer(round_: asyncio.Future[None] | None) -> None:
    """Tells the callers waiting for a round of kept writes that it has its answers."""
    if round_ is not None and not round_.done():
        round_.set_result(None)
