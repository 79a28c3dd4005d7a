"""All I/O with MongoDB for one persistence: opening, set-up, reads, and the writer's front.

:class:`MongoStore` opens (and reopens) the client it owns, checks the connection and creates the
indexes once, reads documents, and hands writes to the :class:`~mongo_persistence._storage.writer.
Writer` (batching, ``bulk_write``, retries, deadlines) whose failed writes the journal keeps
(:mod:`~mongo_persistence._storage.kept`) and the next start replays
(:mod:`~mongo_persistence._storage.restore`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Final

from bson.errors import InvalidBSON
from pymongo.errors import PyMongoError
from pymongo.write_concern import WriteConcern

from mongo_persistence._codec.plain_bson import read_plainly, undecodable
from mongo_persistence._errors import DecodingError
from mongo_persistence._storage.attempts import Attempts
from mongo_persistence._storage.entity import COLLECTIONS, EntityRef
from mongo_persistence._storage.health import Health
from mongo_persistence._storage.journal import Journal
from mongo_persistence._storage.kept import KeptJournal
from mongo_persistence._storage.restore import restore_file
from mongo_persistence._storage.retention import TTL_INDEX
from mongo_persistence._storage.tracker import Entry, StateTracker
from mongo_persistence._storage.writer import Writer
from mongo_persistence._util.errors import connection_error
from mongo_persistence._util.logs import get_logger
from mongo_persistence._util.uri import redact_uri

# Re-exported for the modules that still import them from here (the CLI's).

_LOGGER = get_logger(__name__)

_READ_BATCH: Final = 5000
_CLOSE_TIMEOUT: Final = 1.0
"""Seconds :meth:`MongoStore.close` waits for the owned client to close (a hung server)."""


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

    __slots__ = (
        "_closed",
        "_collections",
        "_opener",
        "_ready",
        "_replay",
        "_uri",
        "_write_concern",
        "attempts",
        "database",
        "max_bson_size",
        "namespace",
        "tracker",
        "ttl_kinds",
        "writer",
    )

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
        self.tracker = StateTracker()
        self.max_bson_size = 16 * 1024 * 1024
        self.attempts = Attempts(write_timeout)
        self._uri = redact_uri(uri_for_errors) if uri_for_errors else None
        self._write_concern = write_concern
        self._opener = opener
        self._closed = False
        self._bind(database)
        self._ready: asyncio.Future[None] | None = None
        # The kinds whose documents MongoDB deletes at their expire_at (a TTL index).
        self.ttl_kinds: frozenset[str] = frozenset()
        self._replay = journal_dir is not None
        name = getattr(database, "name", None)
        journal = Journal(journal_dir or Path.cwd(), name, namespace)
        self.writer = Writer(
            collection=self.collection,
            tracker=self.tracker,
            attempts=self.attempts,
            kept=KeptJournal(journal, self.tracker, name, namespace),
            bulk=bulk,
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

        The store stays usable: the next operation opens a new client. The journal's lock is
        released: what it still holds is left behind, for the next start to replay.
        """
        await self.writer.kept.release()
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

    def reads_plainly(self, kind: str) -> bool:
        """Tells whether documents of this kind are read with PyMongo's default codec options.

        See :func:`~mongo_persistence._codec.plain_bson.read_plainly`.
        """
        return read_plainly(getattr(self.collection(kind), "codec_options", None))

    @property
    def journal(self) -> Journal:
        """The journal of kept writes."""
        return self.writer.kept.journal

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
        # shielded: a caller cancelled while the set-up runs must not cancel it for the others
        await asyncio.shield(self._ready)

    async def _create_indexes(self) -> None:
        await self.collection("conversations").create_index([("name", 1)], name="name_1")
        for kind in sorted(self.ttl_kinds):
            await self.collection(kind).create_index(
                [("expire_at", 1)], name=TTL_INDEX, expireAfterSeconds=0
            )

    async def _set_up(self) -> None:
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
        except PyMongoError as exc:
            raise connection_error(exc, f" at {self._uri}" if self._uri else "") from None

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

    async def iter_bson(
        self, kind: str, projection: Mapping[str, Any] | None = None
    ) -> AsyncGenerator[bytes, None]:
        """Streams every document of a collection as BSON, a batch of documents at a time.

        Each batch is the documents' BSON one after the other (``find_raw_batches``; see
        :func:`~mongo_persistence._codec.plain_bson.split_documents`), with the fields of
        :paramref:`projection` only. Only for a collection that :meth:`reads_plainly`. Closing
        the generator closes the cursor.
        """
        await self.ensure_ready()
        cursor = self.collection(kind).find_raw_batches(
            {}, projection=dict(projection) if projection else None, batch_size=_READ_BATCH
        )
        try:
            async for batch in cursor:
                yield batch
        finally:
            await cursor.close()

    async def find_one(self, kind: str, doc_id: Any) -> Any:
        """Reads one document by ``_id`` (within the write timeout).

        Raises:
            :class:`~mongo_persistence._storage.attempts.WriteTimeoutError`: No answer in time.
            :class:`mongo_persistence.DecodingError`: PyMongo cannot decode the document (a date
                past year 9999...); the entity is named, the value never.
        """
        await self.ensure_ready()
        try:
            return await self.attempts.run(self.collection(kind).find_one({"_id": doc_id}))
        except InvalidBSON as exc:  # what the driver raises for a reply it cannot decode
            label = EntityRef.of(kind, doc_id).label
            raise DecodingError(label, "", undecodable(exc)) from None

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
        answer = self.submit(entry)
        if answer is not None:
            await answer

    def submit(self, entry: Entry) -> Awaitable[None] | None:
        """:meth:`write` without a coroutine of its own (one object less per waiting caller).

        Returns:
            What to await for the answer :meth:`write` waits for, or :obj:`None` when nothing
            needs writing nor waiting for.
        """
        ready = self._ready
        if self._closed or ready is None or not ready.done():
            return self._submit_when_ready(entry)  # not set up yet (or closed)
        return self.writer.submit(entry)

    async def _submit_when_ready(self, entry: Entry) -> None:
        await self.ensure_ready()  # once, not per write
        answer = self.writer.submit(entry)
        if answer is not None:
            await answer

    def unchanged_value(
        self, key: tuple[str, Any], value: object, extra: Mapping[str, Any]
    ) -> bool:
        """Tells whether a value needs no encoding and no write.

        It is the plain value last found unchanged, and nothing else is on the way (see
        :mod:`~mongo_persistence._storage.values`).
        """
        return self.writer.unchanged_value(key, value, extra)

    def is_kept(self, entry: Entry) -> bool:
        """Tells whether this entry's write failed and waits, kept, for the next writes."""
        return self.writer.is_kept(entry)

    def health(self) -> Health:
        """What is not saved in MongoDB yet (see :class:`Health`)."""
        return self.writer.health()

    @property
    def pending_count(self) -> int:
        """How many entities wait for a retry after a failed write (:attr:`Health.pending`)."""
        return len(self.writer.pending_entries())

    # ------------------------------------------------------------------ flush
    async def flush(self, *, timeout: float) -> Path | None:
        """Waits for every write in flight, then retries failed writes until :paramref:`timeout`.

        The whole call is bounded by :paramref:`timeout`: a write still in flight at the deadline
        is given up like a failed one, and retries end at the deadline. What could not be saved by
        then is in the journal (Extended JSON, one entity per line), replayed at the next start
        (or with :meth:`restore_recovery_file`, ``mongo-persistence recover``).

        Returns:
            The path of the journal holding what could not be saved, or :obj:`None`.
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        self.attempts.deadline = deadline
        try:
            if await self._retry_until(deadline):
                await self.writer.kept.wait_compacted(deadline)
                return None
            records = await self.writer.give_up()
        finally:
            self.attempts.deadline = None
        if records is None:
            return None
        path = self.journal.path
        _LOGGER.error(
            "MongoDB could not be reached before the flush deadline: %d unsaved entities are in "
            "the journal %s. They are written at the next start (or load them with "
            "`mongo-persistence recover %s`).",
            records,
            path,
            path,
        )
        return path

    async def _retry_until(self, deadline: float) -> bool:
        """Retries kept writes until the deadline; tells whether everything was saved."""
        writer = self.writer
        delay = 0.25
        while True:
            if not await writer.wait(deadline):
                return False
            if not writer.busy():
                return True
            if time.monotonic() >= deadline:
                return False
            writer.kick()
            if not await writer.wait(deadline):
                return False
            if writer.has_pending:
                await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 5.0)

    # ------------------------------------------------------------------ replay
    async def _replay_journals(self) -> None:
        """Writes the journals left by earlier runs (a crash, an outage at shutdown).

        Then removes them: before anything is loaded, so that the bot starts from its last state.
        A journal whose process still runs (its lock is held) is its own: neither read nor removed.
        """
        for path in await asyncio.to_thread(self.journal.left_behind):
            lock = await asyncio.to_thread(Journal.take, path)
            if lock is None:
                _LOGGER.info("The journal %s is held by a running process: not replayed", path.name)
                continue
            try:
                restored, skipped = await self._restore(path, check_namespace=True)
                await asyncio.to_thread(path.unlink, missing_ok=True)
            finally:
                await asyncio.to_thread(lock.release)
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
        return await self._restore(Path(path), check_namespace=check_namespace)

    async def _restore(self, path: Path, *, check_namespace: bool) -> tuple[int, int]:
        return await restore_file(
            path,
            collection=self.collection,
            attempts=self.attempts,
            namespace=self.namespace,
            check_namespace=check_namespace,
        )
