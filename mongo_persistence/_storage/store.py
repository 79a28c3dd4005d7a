"""All I/O with MongoDB: collections, indexes, reads, and the coalescing retrying writer.

Writes handed over together (as PTB does in one ``update_persistence()`` run) are gathered into
one unordered ``bulk_write`` per collection. Each caller still gets its own result or error. A
write that fails is kept (newest data per document wins) and retried with the next batch and at
:meth:`flush`; what cannot be saved before the flush deadline is written to a local recovery
file.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import pymongo
from pymongo import DeleteOne, ReplaceOne, UpdateOne
from pymongo.errors import (
    BulkWriteError,
    ConfigurationError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WriteConcernError,
)
from pymongo.write_concern import WriteConcern

from mongo_persistence._errors import PersistenceConnectionError, PersistenceWriteError
from mongo_persistence._storage.entry import _now, merge_update
from mongo_persistence._storage.journal import Journal, parse_records, record_line
from mongo_persistence._storage.tracker import Entry, Op, Plan, StateTracker
from mongo_persistence._util.logs import get_logger
from mongo_persistence._util.uri import redact_uri

__all__ = ["COLLECTIONS", "Entry", "Health", "MongoStore", "WriteTimeoutError", "is_transient"]

_T = TypeVar("_T")

_LOGGER = get_logger(__name__)

COLLECTIONS: Final = (
    "user_data",
    "chat_data",
    "bot_data",
    "conversations",
    "callback_data",
    "jobs",
)
_READ_BATCH: Final = 5000
_TRANSIENT_CODES: Final = frozenset(
    {6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 50, 64, 112}
)
_MIN_ATTEMPT: Final = 0.05
"""Seconds a write attempt gets at least, even when the flush deadline has passed."""
_GRACE: Final = 0.5
"""Seconds beyond an attempt's deadline after which it is abandoned (clients ignoring it)."""
_JOURNAL_SLACK: Final = 64
"""Records beyond four per kept entity after which the journal is compacted during an outage."""
_CLOSE_TIMEOUT: Final = 1.0
"""Seconds :meth:`MongoStore.close` waits for the owned client to close (a hung server)."""


class WriteTimeoutError(ConnectionFailure):
    """A write attempt got no answer before its deadline (a transient error: it is kept)."""


@dataclass(frozen=True, slots=True)
class Health:
    """What a persistence has not saved in MongoDB yet (:meth:`MongoPersistence.health`).

    Attributes:
        pending (:obj:`int`): Entities whose write failed, kept and retried with the next writes.
        unsaved (:obj:`int`): Entities not acknowledged yet: pending, queued or in flight.
        oldest_unsaved_age (:obj:`float` | :obj:`None`): Seconds since the oldest unsaved change
            was handed over, or :obj:`None` when everything is saved.
        journal_path (:class:`pathlib.Path` | :obj:`None`): The journal holding the kept writes,
            or :obj:`None` when it is empty.
        journal_records (:obj:`int`): Records in the journal (compacted once MongoDB answers).
        journal_bytes (:obj:`int`): Its size in bytes.
        last_error (:obj:`str` | :obj:`None`): The last write error of the current outage
            (without any data), or :obj:`None`.
        outage_since (:class:`datetime.datetime` | :obj:`None`): When MongoDB stopped
            acknowledging writes (UTC), or :obj:`None`.
    """

    pending: int
    unsaved: int
    oldest_unsaved_age: float | None
    journal_path: Path | None
    journal_records: int
    journal_bytes: int
    last_error: str | None
    outage_since: dtm.datetime | None

    @property
    def ok(self) -> bool:
        """Whether MongoDB acknowledges writes and nothing waits for a retry."""
        return self.pending == 0 and self.outage_since is None


@dataclass(slots=True)
class _Outage:
    started: float
    kept: set[tuple[str, Any]] = field(default_factory=set)
    """The documents whose writes were kept during it."""


def is_transient(exc: BaseException) -> bool:
    """Tells whether a failed write may succeed when simply tried again."""
    if isinstance(exc, ConnectionFailure | WriteConcernError | WriteTimeoutError):
        return True
    if isinstance(exc, asyncio.CancelledError | asyncio.TimeoutError):
        return True
    if isinstance(exc, PyMongoError) and exc.has_error_label("RetryableWriteError"):
        return True
    if isinstance(exc, OperationFailure) and not isinstance(exc, BulkWriteError):
        return exc.code in _TRANSIENT_CODES
    return False


class MongoStore:
    """Owns the collections of one persistence (one database, one namespace).

    Args:
        database: A database object of PyMongo's async API (or motor, or mongomock-motor).
        namespace (:obj:`str` | :obj:`None`): Prefix of the collection names (``<namespace>.``).
        write_concern (:class:`pymongo.write_concern.WriteConcern`, optional): For every write.
        bulk (:obj:`bool`): Use ``bulk_write``; ``False`` sends one request per document (for
            clients lacking a working ``bulk_write``, such as mongomock-motor).
        write_timeout (:obj:`float`): Seconds every write attempt may take (server selection
            included); a write without an answer by then is kept, journaled and retried.
        journal_dir (:class:`pathlib.Path`, optional): Where the journal of kept writes is;
            the journals left there by earlier runs are replayed when the store is first used.
            Without it, the journal is in the working directory and nothing is replayed.
        uri_for_errors (:obj:`str`, optional): Shown (redacted) in connection errors.
        opener (Callable[[], database], optional): Creates the database object of a client this
            store owns. Then :meth:`close` closes that client, and the next operation opens a new
            one with this callable (an application may be initialised again after a shutdown).
    """

    def __init__(
        self,
        database: Any,
        *,
        namespace: str | None = None,
        write_concern: WriteConcern | None = None,
        bulk: bool = True,
        write_timeout: float = 2.0,
        journal_dir: Path | None = None,
        uri_for_errors: str | None = None,
        opener: Callable[[], Any] | None = None,
    ) -> None:
        self.namespace = namespace
        self.bulk = bulk
        self.write_timeout = write_timeout
        self.last_error: str | None = None
        self._outage: _Outage | None = None
        self._compactor: asyncio.Task[None] | None = None
        self.tracker = StateTracker()
        self.max_bson_size = 16 * 1024 * 1024
        self._uri = redact_uri(uri_for_errors) if uri_for_errors else None
        self._write_concern = write_concern
        self._opener = opener
        self._closed = False
        self._bind(database)
        self._queue: dict[tuple[str, Any], Entry] = {}
        self._pending: dict[tuple[str, Any], Entry] = {}
        # The batch being written; entries leave it once they are acknowledged or failed.
        self._inflight: dict[tuple[str, Any], Entry] = {}
        # While flush() runs: every write attempt ends by this time.monotonic() value.
        self._deadline: float | None = None
        self._writer: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        # The kinds whose documents MongoDB deletes at their expire_at (a TTL index).
        self.ttl_kinds: frozenset[str] = frozenset()
        self._replay = journal_dir is not None
        self._journal_lock = asyncio.Lock()  # appends and rewrites of the file, one at a time
        self.journal = Journal(
            journal_dir or Path.cwd(), getattr(database, "name", None), namespace
        )

    def _bind(self, database: Any) -> None:
        self.database = database
        concern = {} if self._write_concern is None else {"write_concern": self._write_concern}
        self._collections = {
            kind: database.get_collection(self.collection_name(kind), **concern)
            for kind in COLLECTIONS
        }

    def _reopen(self) -> None:
        """Opens a new owned client after :meth:`close` (the tracker's knowledge stays valid)."""
        if self._closed and self._opener is not None:
            self._bind(self._opener())
            self._closed = False

    async def close(self) -> None:
        """Closes the client this store owns (see ``opener``); a client handed in stays open.

        The store stays usable: the next operation opens a new client.
        """
        if self._opener is None or self._closed:
            return
        self._closed = True
        self._ready = None
        closing = asyncio.ensure_future(self.database.client.close())
        # A hung server must not hold the shutdown: the client's sockets are dropped anyway.
        done, _ = await asyncio.wait({closing}, timeout=_CLOSE_TIMEOUT)
        if not done:
            closing.cancel()
            _LOGGER.warning("The MongoDB client did not close within %g s", _CLOSE_TIMEOUT)

    # ------------------------------------------------------------------ names
    def collection_name(self, kind: str) -> str:
        """The collection name of a kind of data (``user_data``...), with the namespace prefix."""
        return f"{self.namespace}.{kind}" if self.namespace else kind

    def collection(self, kind: str) -> Any:
        """The collection object of a kind of data."""
        self._reopen()
        return self._collections[kind]

    # ------------------------------------------------------------------ set-up
    async def ensure_ready(self) -> None:
        """Checks the connection and creates the indexes, once.

        Raises:
            :class:`mongo_persistence.PersistenceConnectionError`: MongoDB cannot be used.
        """
        self._reopen()
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()
            try:
                await self._set_up()
            except BaseException as exc:
                self._ready.set_exception(exc)
                self._ready.exception()  # mark it retrieved: callers get it re-raised below
                self._ready = None
                raise exc from None
            self._ready.set_result(None)
        await self._ready

    async def _create_indexes(self) -> None:
        await self.collection("conversations").create_index([("name", 1)], name="name_1")
        for kind in sorted(self.ttl_kinds):
            await self.collection(kind).create_index(
                [("expire_at", 1)], name="expire_at_ttl", expireAfterSeconds=0
            )

    async def _set_up(self) -> None:
        where = f" at {self._uri}" if self._uri else ""
        try:
            await self.database.command("ping")
            try:
                hello = await self.database.command("hello")
            except NotImplementedError:  # mongomock: no hello; keep MongoDB's default limit
                hello = {}
            size = hello.get("maxBsonObjectSize")
            if isinstance(size, int) and size > 0:
                self.max_bson_size = size
            await self._create_indexes()
            if self._replay:
                await self._replay_journals()
        except ServerSelectionTimeoutError as exc:
            raise PersistenceConnectionError(
                f"Cannot reach MongoDB{where}: no server answered within the server selection "
                f"timeout ({short_error(exc)})"
            ) from None
        except OperationFailure as exc:
            if exc.code in (18, 13, 8000) or "auth" in str(exc).lower():
                message = (exc.details or {}).get("errmsg") or short_error(exc)
                raise PersistenceConnectionError(
                    f"MongoDB{where} refused the credentials or the access: {message}"
                ) from None
            raise PersistenceConnectionError(f"MongoDB{where} failed: {short_error(exc)}") from None
        except ConnectionFailure as exc:
            raise PersistenceConnectionError(
                f"Cannot connect to MongoDB{where}: {short_error(exc)}"
            ) from None
        except ConfigurationError as exc:
            # e.g. a mongodb+srv:// host without SRV record (resolved at the first operation)
            raise PersistenceConnectionError(
                f"Cannot use MongoDB{where}, check the connection settings: {short_error(exc)}"
            ) from None
        except PyMongoError as exc:
            raise PersistenceConnectionError(
                f"Cannot use MongoDB{where}: {type(exc).__name__}: {short_error(exc)}"
            ) from None

    # ------------------------------------------------------------------ reads
    async def iter_documents(
        self, kind: str, query: Mapping[str, Any] | None = None
    ) -> AsyncGenerator[Any, None]:
        """Streams the documents of a collection in large batches.

        Closing the generator (``contextlib.aclosing``) closes the cursor.
        """
        await self.ensure_ready()
        cursor = self.collection(kind).find(dict(query or {}), batch_size=_READ_BATCH)
        try:
            async for doc in cursor:
                yield doc
        finally:
            await cursor.close()

    async def find_one(self, kind: str, doc_id: Any) -> Any:
        """Reads one document by ``_id`` (within :attr:`write_timeout`).

        Raises:
            :class:`WriteTimeoutError`: No answer in time.
        """
        await self.ensure_ready()
        return await self._bounded(self.collection(kind).find_one({"_id": doc_id}))

    # ------------------------------------------------------------------ writes
    async def write(self, entry: Entry) -> None:
        """Writes one entity together with whatever else arrives in the same moment.

        Returns once MongoDB acknowledged it, once it is kept in the local journal (MongoDB
        did not answer in time: it is retried with the next writes, and replayed at the next
        start if the bot stops first), or when nothing needed writing. Kept failed writes are sent
        along (this call is the next persistence run): it returns once they have an answer too.
        Once called, the write goes on even when the caller is cancelled.

        Raises:
            :class:`mongo_persistence.PersistenceWriteError`: The write failed and is not kept
                (e.g. refused by the server), or it cannot be journaled.
        """
        await self.ensure_ready()
        key = entry.key
        if self._unchanged(entry, key):
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry.futures.append(future)
        for older in (self._queue.get(key), self._pending.pop(key, None)):
            if older is not None:
                entry.futures[:0] = older.futures
                entry.since = min(entry.since, older.since)
        self._queue[key] = entry
        carried = []
        for retry in self._pending.values():
            carried.append(loop.create_future())
            retry.futures.append(carried[-1])
        self._kick()
        try:
            await future
        finally:
            # Their errors were reported to their own callers; this caller waits for the answer.
            await asyncio.gather(*carried, return_exceptions=True)

    def is_kept(self, entry: Entry) -> bool:
        """Tells whether this entry's write failed and waits, kept, for the next writes."""
        return self._pending.get(entry.key) is entry

    def _unchanged(self, entry: Entry, key: tuple[str, Any]) -> bool:
        """Tells whether the entry holds what MongoDB already holds, with nothing else on the way.

        Then there is nothing to write nor to wait for (PTB hands over ``bot_data`` and the
        callback data on every run). Kept failed writes always go through the writer: this
        call is the next persistence run that sends them.
        """
        if entry.data is None or entry.digests is None or self._pending:
            return False
        if key in self._queue or key in self._inflight:
            return False
        return self.tracker.plan(entry).kind == "skip"

    def _kick(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        # One turn of the event loop lets every coroutine of the same gather() queue its entry.
        await asyncio.sleep(0)
        retry_all = True  # the first batch of a run takes every kept write along
        while True:
            batch = self._take_batch(retry_all)
            retry_all = False
            if not batch:
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

    def _take_batch(self, retry_all: bool) -> dict[tuple[str, Any], Entry]:
        """The queued entries, with the kept ones (all of them, or those someone waits for)."""
        batch = self._queue
        self._queue = {}
        for key, entry in list(self._pending.items()):
            if retry_all or entry.futures:
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
        ops = [entry.op(plan) for entry, plan in items]
        send = self._send_bulk if self.bulk else self._send_each
        errors, upserted = await send(self.collection(kind), ops)
        repairs: list[Entry] = []
        kept: list[tuple[Entry, Plan]] = []
        for index, (entry, plan) in enumerate(items):
            error = errors.get(index)
            if error is not None:
                if self._failed(entry, plan, ops[index], error):
                    kept.append((entry, plan))
                continue
            self._resolved(entry)
            if self.tracker.acknowledged(entry, plan, upserted=index in upserted):
                repairs.append(entry)  # another program deleted it: a diff created it in part
                continue
            self._saved(entry)
            entry.settle(None)
        await self._keep_all(kept, errors[min(errors)] if errors else None)
        for entry in repairs:
            await self._send(kind, [(entry, self.tracker.plan(entry))])

    async def _send_bulk(
        self, collection: Any, ops: list[Op]
    ) -> tuple[dict[int, BaseException], set[int]]:
        """One unordered ``bulk_write``: (errors by index, indexes that upserted)."""
        models = [_model(op) for op in ops]
        try:
            result = await self._bounded(collection.bulk_write(models, ordered=False))
        except BulkWriteError as exc:
            return _bulk_errors(exc, len(ops))
        except Exception as exc:  # noqa: BLE001 - every entry gets the error
            return dict.fromkeys(range(len(ops)), exc), set()
        return {}, set(result.upserted_ids)

    async def _send_each(
        self, collection: Any, ops: list[Op]
    ) -> tuple[dict[int, BaseException], set[int]]:
        """One request per document (``bulk=False``): (errors by index, indexes that upserted)."""
        results = await asyncio.gather(
            *(self._bounded(_send_one(collection, op)) for op in ops), return_exceptions=True
        )
        errors = {i: r for i, r in enumerate(results) if isinstance(r, BaseException)}
        return errors, {i for i, r in enumerate(results) if r is True}

    async def _bounded(self, operation: Awaitable[_T]) -> _T:
        """Runs one attempt within its deadline (:attr:`write_timeout`, or the flush deadline).

        PyMongo's timeout bounds server selection and every socket read; the outer bound also
        holds for clients that ignore it (motor runs PyMongo in threads). An attempt past the
        outer bound is not cancelled (cancelling the driver mid-operation breaks its locks): it
        ends on its own, and its data is kept for a retry in any case.
        """
        limit = self.write_timeout
        if self._deadline is not None:
            limit = min(limit, max(self._deadline - time.monotonic(), _MIN_ATTEMPT))
        with pymongo.timeout(limit):
            attempt = asyncio.ensure_future(operation)
        attempt.add_done_callback(_retrieve)  # also when this waiter is cancelled
        done, _ = await asyncio.wait({attempt}, timeout=limit + _GRACE)
        if not done:
            raise WriteTimeoutError(f"no answer within {limit:g} s")
        return attempt.result()

    def _failed(self, entry: Entry, plan: Plan, op: Op, error: BaseException) -> bool:
        """Records a failed attempt; tells whether the entry is kept for a retry."""
        self._resolved(entry)
        self.tracker.failed(entry, plan)
        entry.attempts += 1
        self.last_error = f"{type(error).__name__}: {short_error(error)}"
        keep = is_transient(error)
        if entry.abandoned:
            return False  # flush() saved it already
        if not keep:
            _LOGGER.error(
                "Writing %s failed (%s: %s) and is not retried.",
                entry.entity,
                op.kind,
                short_error(error),
            )
            wrapped = PersistenceWriteError(
                entry.entity, f"{op.kind}: {short_error(error)}", kept=False
            )
            wrapped.__cause__ = without_document(error)
            entry.settle(wrapped)
        return keep

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
        self._outage_started([entry.key for entry, _ in fresh], error)
        failure = await self._journal_entries(fresh)
        for entry, _ in fresh:
            entry.settle(failure)

    async def _journal_entries(
        self, items: list[tuple[Entry, Plan]]
    ) -> PersistenceWriteError | None:
        """Appends kept entries to the journal; the error for their callers if that fails."""
        if not items:
            return None
        lines = self._records(items)
        try:
            async with self._journal_lock:
                await asyncio.to_thread(self.journal.append, lines)
        except OSError as exc:
            _LOGGER.error("Cannot write the journal %s: %s", self.journal.path, exc)
            return PersistenceWriteError(
                "kept writes", f"not acknowledged, and the journal failed: {exc}", kept=True
            )
        if self.journal.records > 4 * len(self._pending) + _JOURNAL_SLACK:
            self._compact_soon()  # a long outage: one record per kept entity, not one per run
        return None

    def _records(self, items: Iterable[tuple[Entry, Plan]]) -> list[str]:
        """The journal records of entries (nothing for those that need no write)."""
        database = getattr(self.database, "name", None)
        return [
            record_line(e, p, database=database, namespace=self.namespace)
            for e, p in items
            if p.kind != "skip"
        ]

    def _outage_started(self, keys: list[tuple[str, Any]], error: BaseException | None) -> None:
        if self._outage is None:
            self._outage = _Outage(time.monotonic())
            _LOGGER.warning(
                "MongoDB does not acknowledge writes (%s): they are kept in the journal %s and "
                "retried with the next writes.",
                self.last_error if error is None else short_error(error),
                self.journal.path,
            )
        self._outage.kept.update(keys)

    def _saved(self, entry: Entry) -> None:
        """An entry was acknowledged: ends the outage once nothing is kept any more."""
        if self._outage is None or self._pending or self._inflight:
            return
        outage, self._outage = self._outage, None
        _LOGGER.warning(
            "MongoDB acknowledges writes again after %.1f s: the writes of %d entities kept "
            "during the outage are saved.",
            time.monotonic() - outage.started,
            len(outage.kept),
        )
        self.last_error = None
        self._compact_soon()

    def _compact_soon(self) -> None:
        if self.journal.records and (self._compactor is None or self._compactor.done()):
            self._compactor = asyncio.get_running_loop().create_task(self._compact())

    async def _compact(self) -> None:
        """Rewrites the journal with the kept writes only (removes it when there are none)."""
        try:
            async with self._journal_lock:
                lines = self._records((e, self.tracker.plan(e)) for e in self._pending.values())
                await asyncio.to_thread(self.journal.rewrite, lines)
        except OSError as exc:
            _LOGGER.error("Cannot compact the journal %s: %s", self.journal.path, exc)

    # ------------------------------------------------------------------ health
    @property
    def pending_count(self) -> int:
        """How many entities wait for a retry after a failed write."""
        return len(self._pending)

    def pending_entities(self) -> list[str]:
        """The names of the entities that wait for a retry."""
        return [entry.entity for entry in self._pending.values()]

    def health(self) -> Health:
        """What is not saved in MongoDB yet (see :class:`Health`)."""
        unsaved = self.unsaved_entries()
        oldest = min((e.since for e in unsaved), default=None)
        return Health(
            pending=len(self._pending),
            unsaved=len(unsaved),
            oldest_unsaved_age=None if oldest is None else time.monotonic() - oldest,
            journal_path=self.journal.path if self.journal.records else None,
            journal_records=self.journal.records,
            journal_bytes=self.journal.size,
            last_error=self.last_error,
            outage_since=None if self._outage is None else _ago(self._outage.started),
        )

    # ------------------------------------------------------------------ flush
    async def flush(self, *, timeout: float, recovery_dir: Path | None = None) -> Path | None:
        """Waits for every write in flight, then retries failed writes until :paramref:`timeout`.

        The whole call is bounded by :paramref:`timeout`: a write still in flight at the deadline
        is given up like a failed one, and retries end at the deadline. What could not be saved by
        then is in the journal (Extended JSON, one entity per line), replayed at the next start
        (or with :meth:`restore_recovery_file`, ``mongo-persistence recover``).

        Returns:
            The path of the journal holding what could not be saved, or :obj:`None`.
        """
        del recovery_dir  # the journal's directory is fixed at construction
        deadline = time.monotonic() + max(timeout, 0.0)
        self._deadline = deadline
        try:
            if await self._retry_until(deadline):
                await self._wait_compacted(deadline)
                return None
            return await self._give_up()
        finally:
            self._deadline = None

    async def _retry_until(self, deadline: float) -> bool:
        """Retries kept writes until the deadline; tells whether everything was saved."""
        delay = 0.25
        while True:
            if not await self._wait_for_writer(deadline):
                return False
            if not self._pending and not self._queue:
                return True
            if time.monotonic() >= deadline:
                return False
            self._kick()
            if not await self._wait_for_writer(deadline):
                return False
            if self._pending:
                await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 5.0)

    async def _wait_for_writer(self, deadline: float) -> bool:
        """Waits for the current batch until the deadline; tells whether it is done."""
        writer = self._writer
        if writer is None or writer.done():
            return True
        await asyncio.wait({writer}, timeout=max(0.0, deadline - time.monotonic()))
        return writer.done()

    async def _wait_compacted(self, deadline: float) -> None:
        compactor = self._compactor
        if compactor is not None and not compactor.done():
            await asyncio.wait({compactor}, timeout=max(_MIN_ATTEMPT, deadline - time.monotonic()))

    def unsaved_entries(self) -> list[Entry]:
        """The newest unsaved entry of every document: queued, waiting for a retry, or in flight."""
        unsaved = {**self._inflight, **self._pending, **self._queue}
        return list(unsaved.values())

    async def _give_up(self) -> Path | None:
        """Ends the writes at the flush deadline; what is not saved is in the journal."""
        writer = self._writer
        if writer is not None and not writer.done():
            writer.cancel()  # the client is about to be closed: end the stuck attempt now
            await asyncio.gather(writer, return_exceptions=True)
        entries = self.unsaved_entries()
        if not entries:
            return None
        lines = self._records((e, self.tracker.plan(e)) for e in entries)
        async with self._journal_lock:
            await asyncio.to_thread(self.journal.rewrite, lines)
        path = self.journal.path
        reason = f"not acknowledged before the flush deadline; saved to {path}"
        for entry in entries:
            entry.abandoned = True
            entry.settle(PersistenceWriteError(entry.entity, reason, kept=True))
        self._pending.clear()
        self._queue.clear()
        _LOGGER.error(
            "MongoDB could not be reached before the flush deadline: %d unsaved entities are in "
            "the journal %s. They are written at the next start (or load them with "
            "`mongo-persistence recover %s`).",
            len(lines),
            path,
            path,
        )
        return path

    # ------------------------------------------------------------------ replay
    async def _replay_journals(self) -> None:
        """Writes the journals left by earlier runs (a crash, an outage at shutdown).

        Then removes them: before anything is loaded, so that the bot starts from its last state.
        """
        for path in await asyncio.to_thread(self.journal.left_behind):
            restored, skipped = await self._restore_path(path, check_namespace=True)
            await asyncio.to_thread(path.unlink, missing_ok=True)
            _LOGGER.warning(
                "Replayed the journal %s of an earlier run: %d entities restored, %d older than "
                "the database's copy.",
                path,
                restored,
                skipped,
            )

    async def restore_recovery_file(
        self, path: str | Path, *, check_namespace: bool = True
    ) -> tuple[int, int]:
        """Writes the entities of a journal or recovery file (made by :meth:`flush`) into MongoDB.

        A document that was written again after the file was made (a newer ``updated_at``) is left
        as it is: an older save never overwrites a newer one. Restoring a file twice is harmless.

        Args:
            path (:obj:`str` | :class:`pathlib.Path`): The file.
            check_namespace (:obj:`bool`, optional): Refuse a file whose records name another
                namespace than this store's (the default). :obj:`False` restores them into this
                store's namespace, on purpose.

        Returns:
            (restored, skipped as older than the database's copy).

        Raises:
            :class:`ValueError`: The file belongs to another namespace than this store's (nothing
                is written then), or is not a recovery file.
        """
        await self.ensure_ready()
        return await self._restore_path(Path(path), check_namespace=check_namespace)

    async def _restore_path(self, path: Path, *, check_namespace: bool) -> tuple[int, int]:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        records = []
        for number, record in parse_records(text.splitlines()):
            if check_namespace and record.get("namespace", self.namespace) != self.namespace:
                raise ValueError(
                    f"{path}, line {number}: {record['entity']} belongs to namespace "
                    f"{record['namespace']!r}, not to {self.namespace!r}; nothing was restored"
                )
            if record.get("collection") not in COLLECTIONS:
                raise ValueError(f"{path}, line {number}: not a recovery record")
            records.append(record)
        restored = skipped = 0
        for record in records:
            done = await self._bounded(self._restore_record(record))
            restored += done
            skipped += not done
        return restored, skipped

    async def _restore_record(self, record: dict[str, Any]) -> bool:
        collection = self.collection(record["collection"])
        older = {
            "_id": record["_id"],
            "$or": [
                {"updated_at": {"$lt": record["at"]}},
                {"updated_at": {"$exists": False}},
            ],
        }
        if record["op"] == "delete":
            result = await collection.delete_one(older)
            return bool(result.deleted_count == 1) or not await collection.find_one(
                {"_id": record["_id"]}, {"_id": 1}
            )
        if record["op"] == "merge":
            result = await collection.update_one(older, _merge_update(record))
        else:
            result = await collection.replace_one(older, record["document"])
        if result.matched_count == 1:
            return True
        try:
            await collection.insert_one(record["document"])
        except DuplicateKeyError:
            return False
        return True


def _merge_update(record: dict[str, Any]) -> dict[str, Any] | list[dict[str, Any]]:
    """The update of a ``merge`` record: its data keys set (one by one), its ``unset`` removed."""
    return merge_update(record["document"], record.get("unset", ()))


def _model(op: Op) -> ReplaceOne[Any] | UpdateOne | DeleteOne:
    """The ``bulk_write`` model of an operation."""
    if op.kind == "delete":
        return DeleteOne(op.filter)
    if op.kind == "replace":
        return ReplaceOne(op.filter, op.document or {}, upsert=True)
    return UpdateOne(op.filter, op.document or {}, upsert=True)


async def _send_one(collection: Any, op: Op) -> bool:
    """Sends one operation with the plain CRUD methods; returns whether it upserted."""
    if op.kind == "delete":
        await collection.delete_one(op.filter)
        return False
    method = collection.replace_one if op.kind == "replace" else collection.update_one
    result = await method(op.filter, op.document, upsert=True)
    return result.upserted_id is not None


def _bulk_errors(exc: BulkWriteError, count: int) -> tuple[dict[int, BaseException], set[int]]:
    """The per-operation errors and upserts of a ``bulk_write`` that failed in part."""
    errors: dict[int, BaseException] = {}
    for error in exc.details.get("writeErrors", []):
        errors[error["index"]] = OperationFailure(
            error.get("errmsg", "write error"), error.get("code"), error
        )
    upserted = {u["index"] for u in exc.details.get("upserted", [])}
    if exc.details.get("writeConcernErrors"):
        concern = exc.details["writeConcernErrors"][0]
        failure = WriteConcernError(
            concern.get("errmsg", "write concern error"), concern.get("code"), concern
        )
        errors = dict.fromkeys(range(count), failure)
    return errors, upserted


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Retrieves the outcome of an attempt given up at its deadline."""
    if not task.cancelled():
        task.exception()


def _ago(started: float) -> dtm.datetime:
    """The wall-clock time of a ``time.monotonic()`` value."""
    return _now() - dtm.timedelta(seconds=time.monotonic() - started)


_ERROR_MAX: Final = 300
_BRACES: Final = re.compile(r"\{.*\}", re.DOTALL)


def short_error(exc: BaseException) -> str:
    """The driver's or the server's message, without anything from a document.

    Only the server's code and message (without the document the driver appends as ``full
    error``, and with every ``{...}`` in it, such as the ``dup key`` of a duplicate key error,
    replaced by ``{...}``), and without the topology dump of server selection errors.
    """
    if isinstance(exc, OperationFailure):
        details = exc.details or {}
        message = details.get("errmsg")
        if not isinstance(message, str):
            message = str(exc).split(", full error:", 1)[0]
        name = details.get("codeName")
        code = f" (code {exc.code}{f', {name}' if isinstance(name, str) else ''})"
        text = _BRACES.sub("{...}", message.split("\n", 1)[0])[:_ERROR_MAX] + code
    else:
        text = str(exc).split("\n", 1)[0]
        text = text.split(", Topology Description:", 1)[0]
        text = _BRACES.sub("{...}", text.split(", full error:", 1)[0])[:_ERROR_MAX]
    return text or type(exc).__name__


def without_document(exc: BaseException) -> BaseException:
    """The exception itself, or for a server's error a copy holding only its code and message.

    A driver's :class:`~pymongo.errors.OperationFailure` of a write holds the document it was
    writing (``details["op"]``), shown in tracebacks as ``full error``.
    """
    if not isinstance(exc, OperationFailure):
        return exc
    details = exc.details or {}
    message = short_error(exc)
    clean = {"ok": 0, "code": exc.code, "codeName": details.get("codeName"), "errmsg": message}
    try:
        copy = type(exc)(message, exc.code, clean)
    except TypeError:
        copy = OperationFailure(message, exc.code, clean)
    copy.__traceback__ = exc.__traceback__
    return copy
