"""All I/O with MongoDB: collections, indexes, reads, and the coalescing retrying writer.

Writes handed over together (as PTB does in one ``update_persistence()`` run) are gathered into
one unordered ``bulk_write`` per collection. Each caller still gets its own result or error. A
write that fails is kept (newest data per document wins) and retried with the next batch and at
:meth:`flush`; what cannot be saved before the flush deadline is written to a local recovery
file.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import os
import re
import tempfile
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pymongo
from bson import json_util
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

from mongo_persistence.errors import PersistenceConnectionError, PersistenceWriteError
from mongo_persistence.logs import get_logger
from mongo_persistence.tracker import Digests, StateTracker
from mongo_persistence.uri import redact_uri

__all__ = ["COLLECTIONS", "Entry", "MongoStore", "is_transient"]

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


def _now() -> dtm.datetime:
    return dtm.datetime.now(dtm.timezone.utc)


def is_transient(exc: BaseException) -> bool:
    """Tells whether a failed write may succeed when simply tried again."""
    if isinstance(exc, ConnectionFailure | WriteConcernError):
        return True
    if isinstance(exc, PyMongoError) and exc.has_error_label("RetryableWriteError"):
        return True
    if isinstance(exc, OperationFailure) and not isinstance(exc, BulkWriteError):
        return exc.code in _TRANSIENT_CODES
    return False


@dataclass(eq=False, slots=True)
class Entry:
    """One entity to write: the newest data for one document.

    ``data`` is the encoded ``data`` field (``None`` means delete); ``extra`` holds the other
    fields of the document (e.g. ``name`` and ``key`` of a conversation).
    """

    collection: str
    doc_id: Any
    entity: str
    data: dict[str, Any] | None
    digests: Digests | None
    extra: dict[str, Any] = field(default_factory=dict)
    diffable: bool = True
    field_name: str = "data"
    futures: list[asyncio.Future[None]] = field(default_factory=list)
    attempts: int = 0
    merge: bool = False
    """Set the keys of ``data`` onto the stored document, never replace it: the writer does not
    know the document's other keys (lazy mode, an entity not loaded yet)."""
    abandoned: bool = False
    """Saved to a recovery file by :meth:`MongoStore.flush`: a late outcome changes nothing."""

    def replacement(self) -> dict[str, Any]:
        """The whole document (``field_name=""`` puts the fields of ``data`` at the top level)."""
        fields = {self.field_name: self.data} if self.field_name else dict(self.data or {})
        return {"_id": self.doc_id, **fields, **self.extra, "updated_at": _now()}

    def set_update(self, keys: Iterable[str], unset: Iterable[str] = ()) -> dict[str, Any]:
        """The update setting these keys of ``data`` (and unsetting others) on the document."""
        prefix = self.field_name
        data = self.data or {}
        fields = {f"{prefix}.{k}": data[k] for k in keys}
        update: dict[str, Any] = {"$set": {**fields, **self.extra, "updated_at": _now()}}
        removed = {f"{prefix}.{k}": "" for k in unset}
        if removed:
            update["$unset"] = removed
        return update

    def full_model(self) -> ReplaceOne[Any] | UpdateOne | DeleteOne:
        """The model that writes everything this entry knows (or deletes the document)."""
        if self.data is None:
            return DeleteOne({"_id": self.doc_id})
        if self.merge:
            # merge: every key of data is set, the stored document's other keys are kept
            return UpdateOne({"_id": self.doc_id}, self.set_update(self.data), upsert=True)
        return ReplaceOne({"_id": self.doc_id}, self.replacement(), upsert=True)

    def settle(self, error: BaseException | None) -> None:
        """Resolves every caller waiting for this entry (with the error, if any)."""
        for future in self.futures:
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
        self.futures.clear()


class MongoStore:
    """Owns the collections of one persistence (one database, one namespace).

    Args:
        database: A database object of PyMongo's async API (or motor, or mongomock-motor).
        namespace (:obj:`str` | :obj:`None`): Prefix of the collection names (``<namespace>.``).
        write_concern (:class:`pymongo.write_concern.WriteConcern`, optional): For every write.
        bulk (:obj:`bool`): Use ``bulk_write``; ``False`` sends one request per document (for
            clients lacking a working ``bulk_write``, such as mongomock-motor).
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
        uri_for_errors: str | None = None,
        opener: Callable[[], Any] | None = None,
    ) -> None:
        self.namespace = namespace
        self.bulk = bulk
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
        await self.database.client.close()

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
            await self.collection("conversations").create_index([("name", 1)], name="name_1")
            for kind in sorted(self.ttl_kinds):
                await self.collection(kind).create_index(
                    [("expire_at", 1)], name="expire_at_ttl", expireAfterSeconds=0
                )
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
        """Reads one document by ``_id``."""
        await self.ensure_ready()
        return await self.collection(kind).find_one({"_id": doc_id})

    # ------------------------------------------------------------------ writes
    async def write(self, entry: Entry) -> None:
        """Writes one entity together with whatever else arrives in the same moment.

        Returns once MongoDB acknowledged it, or when nothing needed writing. Kept failed writes
        are sent along (this call is the next persistence run): it returns once they have an
        answer too, so that a run that carries retries ends with their outcome known.

        Raises:
            :class:`mongo_persistence.PersistenceWriteError`: The write failed.
        """
        await self.ensure_ready()
        key = (entry.collection, entry.doc_id)
        if self._unchanged(entry, key):
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry.futures.append(future)
        older = self._queue.get(key)
        if older is not None:
            entry.futures[:0] = older.futures
        self._queue[key] = entry
        replaced = self._pending.pop(key, None)
        if replaced is not None:
            entry.futures[:0] = replaced.futures
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

    def _unchanged(self, entry: Entry, key: tuple[str, Any]) -> bool:
        """Tells whether the entry holds what MongoDB already holds, with nothing else on the way.

        Then there is nothing to write nor to wait for (PTB hands over ``bot_data`` and the
        callback data on every run). Kept failed writes always go through the writer: this
        call is the next persistence run that sends them.
        """
        if entry.data is None or entry.digests is None or entry.merge or self._pending:
            return False
        if key in self._queue or key in self._inflight:
            return False
        plan = self.tracker.plan(entry.collection, entry.doc_id, entry.digests)
        return plan.kind == "skip"

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
                # yet is kept for a retry, and nobody is left waiting.
                for entry in list(self._inflight.values()):
                    self._failed(entry, None, exc, keep=True)
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
        key = (entry.collection, entry.doc_id)
        if self._inflight.get(key) is entry:
            del self._inflight[key]

    async def _write_batch(self, entries: Iterable[Entry]) -> None:
        per_collection: dict[str, list[tuple[Entry, Any]]] = {}
        for entry in entries:
            try:
                model = self._model(entry)
            except Exception as exc:  # noqa: BLE001 - fails this entry alone
                self._failed(entry, None, exc)
                continue
            if model is None:
                self._resolved(entry)
                entry.settle(None)
                continue
            per_collection.setdefault(entry.collection, []).append((entry, model))
        if per_collection:
            await asyncio.gather(
                *(self._send(kind, items) for kind, items in per_collection.items())
            )

    def _model(self, entry: Entry) -> Any:
        if entry.data is None or entry.digests is None or entry.attempts or entry.merge:
            return entry.full_model()
        plan = self.tracker.plan(
            entry.collection, entry.doc_id, entry.digests, diffable=entry.diffable
        )
        if plan.kind == "skip":
            return None
        if plan.kind == "replace":
            return entry.full_model()
        update = entry.set_update(plan.set_keys, plan.unset_keys)
        return UpdateOne({"_id": entry.doc_id}, update, upsert=True)

    async def _send(self, kind: str, items: list[tuple[Entry, Any]]) -> None:  # noqa: PLR0912
        collection = self.collection(kind)
        errors: dict[int, BaseException] = {}
        upserted: Iterable[int] = ()
        sent = False
        if self.bulk:
            sent = True
            try:
                with self._attempt_limit():
                    result = await collection.bulk_write([m for _, m in items], ordered=False)
                upserted = result.upserted_ids.keys()
            except BulkWriteError as exc:
                for error in exc.details.get("writeErrors", []):
                    errors[error["index"]] = OperationFailure(
                        error.get("errmsg", "write error"), error.get("code"), error
                    )
                upserted = (u["index"] for u in exc.details.get("upserted", []))
                if exc.details.get("writeConcernErrors"):
                    concern = exc.details["writeConcernErrors"][0]
                    failure = WriteConcernError(
                        concern.get("errmsg", "write concern error"), concern.get("code"), concern
                    )
                    errors = dict.fromkeys(range(len(items)), failure)
            except (TypeError, NotImplementedError) as exc:
                # A client whose bulk_write does not work with these models (mongomock-motor
                # under recent pymongo): nothing was sent; use one request per document.
                _LOGGER.warning(
                    "bulk_write is not usable with this client (%s); writing one document per "
                    "request from now on.",
                    short_error(exc),
                )
                self.bulk = sent = False
            except Exception as exc:  # noqa: BLE001 - every entry gets the error
                errors = dict.fromkeys(range(len(items)), exc)
        if not sent:
            with self._attempt_limit():
                results = await asyncio.gather(
                    *(self._send_one(collection, model) for _, model in items),
                    return_exceptions=True,
                )
            errors = {i: r for i, r in enumerate(results) if isinstance(r, BaseException)}
            upserted = (i for i, r in enumerate(results) if r is True)

        repairs = []
        for index in upserted:
            entry, model = items[index]
            if isinstance(model, UpdateOne) and not entry.merge and index not in errors:
                # The document was gone (deleted by someone else): the diff created it with only
                # the changed keys, so write it whole now.
                repairs.append(entry)
        for index, (entry, model) in enumerate(items):
            error = errors.get(index)
            if error is None:
                if entry in repairs:
                    continue
                if entry.merge:  # the document holds more than this entry knows
                    self.tracker.forget(entry.collection, entry.doc_id)
                else:
                    self.tracker.acknowledged(entry.collection, entry.doc_id, entry.digests)
                self._resolved(entry)
                entry.settle(None)
            else:
                self._failed(entry, model, error)
        for entry in repairs:
            self.tracker.forget(entry.collection, entry.doc_id)
            entry.attempts += 1
            await self._send(kind, [(entry, entry.full_model())])

    @staticmethod
    async def _send_one(collection: Any, model: Any) -> bool:
        """Sends one model with the plain CRUD methods; returns whether it upserted."""
        if isinstance(model, DeleteOne):
            await collection.delete_one(model._filter)  # noqa: SLF001 - no public accessor
            return False
        method = collection.replace_one if isinstance(model, ReplaceOne) else collection.update_one
        result = await method(model._filter, model._doc, upsert=True)  # noqa: SLF001
        return result.upserted_id is not None

    def _attempt_limit(self) -> contextlib.AbstractContextManager[Any]:
        """Bounds a write attempt by the flush deadline while :meth:`flush` runs.

        Server selection included, whatever the client's ``serverSelectionTimeoutMS``.
        """
        if self._deadline is None:
            return contextlib.nullcontext()
        return pymongo.timeout(max(self._deadline - time.monotonic(), _MIN_ATTEMPT))

    def _failed(
        self, entry: Entry, model: Any, error: BaseException, *, keep: bool | None = None
    ) -> None:
        key = (entry.collection, entry.doc_id)
        self._resolved(entry)
        self.tracker.forget(*key)
        entry.attempts += 1
        if keep is None:
            keep = is_transient(error) or (isinstance(model, UpdateOne) and entry.attempts == 1)
        op = _op_name(model, entry)
        wrapped = PersistenceWriteError(entry.entity, f"{op}: {short_error(error)}", kept=keep)
        wrapped.__cause__ = without_document(error)
        entry.settle(wrapped)
        if entry.abandoned:
            return  # flush() saved it to a recovery file already
        if key in self._queue or key in self._pending:
            return  # a newer write of this document is already waiting
        if keep:
            self._pending[key] = entry
            _LOGGER.warning(
                "Writing %s failed (%s: %s); its newest data is kept and will be retried.",
                entry.entity,
                op,
                short_error(error),
            )
        else:
            _LOGGER.error(
                "Writing %s failed (%s: %s) and is not retried.",
                entry.entity,
                op,
                short_error(error),
            )

    # ------------------------------------------------------------------ flush
    @property
    def pending_count(self) -> int:
        """How many entities wait for a retry after a failed write."""
        return len(self._pending)

    def pending_entities(self) -> list[str]:
        """The names of the entities that wait for a retry."""
        return [entry.entity for entry in self._pending.values()]

    async def flush(self, *, timeout: float, recovery_dir: Path | None) -> Path | None:
        """Waits for every write in flight, then retries failed writes until :paramref:`timeout`.

        The whole call is bounded by :paramref:`timeout`: a write still in flight at the deadline
        is given up (and saved) like a failed one, and retries end at the deadline whatever the
        client's ``serverSelectionTimeoutMS``. What could not be saved by then is written to a
        recovery file (Extended JSON, one entity per line; see :meth:`restore_recovery_file`).

        Returns:
            The path of the recovery file holding what could not be saved, or :obj:`None`.
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        self._deadline = deadline
        delay = 0.25
        try:
            while True:
                if not await self._wait_for_writer(deadline):
                    break
                if not self._pending and not self._queue:
                    return None
                if time.monotonic() >= deadline:
                    break
                self._kick()
                if not await self._wait_for_writer(deadline):
                    break
                if self._pending:
                    await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                    delay = min(delay * 2, 5.0)
            return await self._give_up(recovery_dir or Path.cwd())
        finally:
            self._deadline = None

    async def _wait_for_writer(self, deadline: float) -> bool:
        """Waits for the current batch until the deadline; tells whether it is done."""
        writer = self._writer
        if writer is None or writer.done():
            return True
        await asyncio.wait({writer}, timeout=max(0.0, deadline - time.monotonic()))
        return writer.done()

    def unsaved_entries(self) -> list[Entry]:
        """The newest unsaved entry of every document: queued, waiting for a retry, or in flight."""
        unsaved = {**self._inflight, **self._pending, **self._queue}
        return list(unsaved.values())

    async def _give_up(self, directory: Path) -> Path | None:
        entries = self.unsaved_entries()
        path = self._write_recovery_file(directory, entries) if entries else None
        reason = f"not acknowledged before the flush deadline; saved to {path}"
        for entry in entries:
            entry.abandoned = True
            entry.settle(PersistenceWriteError(entry.entity, reason, kept=True))
        self._pending.clear()
        self._queue.clear()
        writer = self._writer
        if writer is not None and not writer.done():
            writer.cancel()  # the client is about to be closed: end the stuck attempt now
            await asyncio.gather(writer, return_exceptions=True)
        return path

    def _recovery_record(self, entry: Entry) -> str:
        record = {
            "database": getattr(self.database, "name", None),
            "namespace": self.namespace,
            "collection": entry.collection,
            "_id": entry.doc_id,
            "entity": entry.entity,
            "op": "delete" if entry.data is None else "merge" if entry.merge else "replace",
            "at": _now(),
            "document": None if entry.data is None else entry.replacement(),
        }
        return json_util.dumps(record, json_options=json_util.CANONICAL_JSON_OPTIONS) + "\n"

    def _write_recovery_file(self, directory: Path, entries: Iterable[Entry]) -> Path:
        lines = [self._recovery_record(entry) for entry in entries]
        stamp = dtm.datetime.now(dtm.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"mongo_persistence-unsaved-{stamp}.jsonl"
        problems = []
        for folder in dict.fromkeys([directory, Path(tempfile.gettempdir())]):
            path = folder / name
            try:
                folder.mkdir(parents=True, exist_ok=True)
                # Only the bot's user may read it: it holds the bot's data.
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.writelines(lines)
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                problems.append(f"{path}: {exc}")
                _LOGGER.error("Cannot write the recovery file %s: %s", path, exc)
                continue
            _LOGGER.error(
                "MongoDB could not be reached before the flush deadline: %d unsaved entities "
                "were written to %s. Load them later with `mongo-persistence recover %s`.",
                len(lines),
                path,
                path,
            )
            return path
        raise OSError(
            f"{len(lines)} entities could not be saved to MongoDB nor to a recovery file ("
            + "; ".join(problems)
            + ")"
        )

    async def restore_recovery_file(
        self, path: str | Path, *, check_namespace: bool = True
    ) -> tuple[int, int]:
        """Writes the entities of a recovery file (made by :meth:`flush`) into MongoDB.

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
        records = []
        with Path(path).open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                record = json_util.loads(line, json_options=json_util.CANONICAL_JSON_OPTIONS)
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
            done = await self._restore_record(record)
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
            document = record["document"]
            fields = {f"data.{k}": v for k, v in document.get("data", {}).items()}
            fields.update((k, v) for k, v in document.items() if k not in ("_id", "data"))
            result = await collection.update_one(older, {"$set": fields})
        else:
            result = await collection.replace_one(older, record["document"])
        if result.matched_count == 1:
            return True
        try:
            await collection.insert_one(record["document"])
        except DuplicateKeyError:
            return False
        return True


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


def _op_name(model: Any, entry: Entry) -> str:
    if isinstance(model, DeleteOne) or entry.data is None:
        return "delete"
    if isinstance(model, ReplaceOne):
        return "replace"
    if isinstance(model, UpdateOne):
        return "update"
    return "write"
