"""Moving the data of PTB's own persistences into MongoDB.

The sources are read by :mod:`mongo_persistence._cli.sources`. Every entity goes through the
encoded-entity step the bot's own writes take (:mod:`mongo_persistence._storage.encode`: codec,
BSON and size checks), so the documents are the very ones the bot itself would write, and is
written through the store (a dry run only counts).
The writes are started in chunks, concurrently, so that the store's writer sends them as one
``bulk_write`` per collection and chunk.

This module knows nothing about the command line; :mod:`mongo_persistence._cli.migrating` drives it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from mongo_persistence._cli.sources import KINDS, SourceData, is_id
from mongo_persistence._codec.codec import Codec
from mongo_persistence._errors import (
    DocumentTooLargeError,
    EncodingError,
    MigrationAbortedError,
    PersistenceWriteError,
)
from mongo_persistence._persistence.shapes import callback_data_document
from mongo_persistence._storage.encode import Encoder, document_fields
from mongo_persistence._storage.entity import EntityRef, conversation_id
from mongo_persistence._storage.entry import Entry
from mongo_persistence._storage.store import MongoStore
from mongo_persistence._util.names import check_namespace


@dataclass(frozen=True, slots=True)
class Problem:
    """An entity that cannot be migrated.

    Attributes:
        kind (:obj:`str`): ``user_data``, ``chat_data``...
        entity (:obj:`str`): The entity, e.g. ``user_data[42]``.
        message (:obj:`str`): Why, naming the path of the offending value where there is one.
    """

    kind: str
    entity: str
    message: str


@dataclass  # not slotted: it travels in a pickled MigrationAbortedError
class MigrationResult:
    """What a migration (or a dry run) did.

    Attributes:
        written (dict[:obj:`str`, :obj:`int`]): Entities written (or, in a dry run, that would be
            written) per kind. Ended conversations (state :obj:`None`) count as written: their
            document is deleted.
        problems (list[:class:`Problem`]): Entities that cannot be migrated.
    """

    written: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    problems: list[Problem] = field(default_factory=list)

    @property
    def total_written(self) -> int:
        """The number of entities written, all kinds together."""
        return sum(self.written.values())


DRY_RUN_MAX_SIZE: Final = 16 * 1024 * 1024
"""The document size limit of a dry run (MongoDB's; the server's own is used when writing)."""


def migration_store(database: Any, *, namespace: str | None = None) -> MongoStore:
    """The store a migration writes through: a database's collections, in a namespace.

    Args:
        database: An async database object.
        namespace (:obj:`str` | :obj:`None`): The collections' prefix.

    Raises:
        :exc:`ValueError`: The namespace is invalid.
    """
    if namespace is not None:
        check_namespace(namespace)
    return MongoStore(database, namespace=namespace)


# ====================================================================== writing
_Job = tuple[str, str, Callable[[], Entry]]


def _jobs(source: SourceData, encoder: Encoder, result: MigrationResult) -> Iterator[_Job]:
    """(kind, entity, the encoded-entity step of it) for every entity of the source."""
    for kind in ("user_data", "chat_data"):
        entries: dict[Any, Any] = getattr(source, kind)
        for entity_id, value in entries.items():
            entity = f"{kind}[{entity_id!r}]"
            if not is_id(entity_id):
                result.problems.append(
                    Problem(kind, entity, f"Cannot store {entity}: the key is not an int id")
                )
                continue
            yield kind, entity, _entity(encoder, (kind, entity_id), entity, value)
    if source.bot_data is not None:
        key = ("bot_data", "bot_data")
        yield "bot_data", "bot_data", _entity(encoder, key, "bot_data", source.bot_data)
    if source.callback_data is not None:
        yield "callback_data", "callback_data", _callback_data(encoder, source.callback_data)
    yield from _conversation_jobs(source, encoder, result)


def _fields() -> Mapping[str, Any]:
    """The document fields of a migrated entity (the codec's format; no migrations version)."""
    return document_fields(version=None, expire_after=None)


def _entity(encoder: Encoder, key: tuple[str, Any], entity: str, value: Any) -> Callable[[], Entry]:
    return lambda: encoder.entity(key, entity, value, _fields())


def _callback_data(encoder: Encoder, data: Any) -> Callable[[], Entry]:
    keyboards, queries = data
    cdc = ([(str(u), float(t), b) for u, t, b in keyboards], dict(queries))
    ref = EntityRef.callback_data()
    structure = callback_data_document(cdc)
    return lambda: encoder.callback_data((ref.collection, ref.doc_id), structure, _fields())


def _conversation_jobs(
    source: SourceData, encoder: Encoder, result: MigrationResult
) -> Iterator[_Job]:
    for name, states in source.conversations.items():
        for conversation_key, state in states.items():
            entity = f"conversations[{name!r}][{conversation_key!r}]"
            if not isinstance(conversation_key, tuple):
                result.problems.append(
                    Problem(
                        "conversations", entity, f"Cannot store {entity}: the key is not a tuple"
                    )
                )
                continue
            yield "conversations", entity, _conversation(encoder, name, conversation_key, state)


def _conversation(
    encoder: Encoder, name: str, conversation_key: tuple[Any, ...], state: Any
) -> Callable[[], Entry]:
    key = ("conversations", conversation_id(name, conversation_key))
    entity = f"conversations[{name!r}][{conversation_key!r}]"
    if state is None:  # as update_conversation(): no state, no document
        return lambda: Entry(*key, entity, None, None)
    conversation = (name, conversation_key)
    return lambda: encoder.conversation(key, entity, conversation, state, _fields())


def _chunks(jobs: Iterator[_Job], size: int) -> Iterator[list[_Job]]:
    chunk: list[_Job] = []
    for job in jobs:
        chunk.append(job)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def migrate(
    source: SourceData,
    store: MongoStore | None,
    *,
    codec: Codec | None = None,
    chunk_size: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> MigrationResult:
    """Writes every entity of :paramref:`source` through :paramref:`store`.

    Each entity goes through the encoded-entity step of the bot's own writes (codec, BSON and
    size checks); the writes of one chunk are started together, and the store's writer sends
    them as one ``bulk_write`` per collection. Running it again writes the same documents again.
    Without a store (a dry run) nothing is written, but every entity is still encoded and
    checked.

    Args:
        source (:class:`SourceData`): What to migrate; its bot is the bot of the encoding.
        store (:class:`~mongo_persistence._storage.store.MongoStore` | :obj:`None`): The target
            (:func:`migration_store`), or :obj:`None` for a dry run.
        codec (:class:`~mongo_persistence.Codec`, optional): The codec (your
            :class:`~mongo_persistence.TypeCodec` classes, the pickle fallback).
        chunk_size (:obj:`int`, optional): Entities per batch. Defaults to ``1000``.
        progress (Callable[[:obj:`int`], :obj:`None`], optional): Called with the number of
            entities done after each chunk.

    Returns:
        :class:`MigrationResult`: Written counts and the entities that cannot be stored.

    Raises:
        :class:`MigrationAbortedError`: MongoDB failed in a way that may pass (the connection was
            lost...); run the migration again later.
        :class:`mongo_persistence.PersistenceConnectionError`: MongoDB cannot be reached.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    result = MigrationResult()
    if store is not None:
        await store.ensure_ready()
    max_size = store.max_bson_size if store is not None else DRY_RUN_MAX_SIZE
    encoder = Encoder(codec or Codec(), source.bot, max_size)
    for chunk in _chunks(_jobs(source, encoder, result), chunk_size):
        failure = await _write_chunk(chunk, store, result)
        if progress is not None:
            progress(len(chunk))
        if failure is not None:
            raise MigrationAbortedError(
                f"MongoDB failed during the migration ({failure.reason}); "
                f"{result.total_written} entities were written. Run the migration again: it "
                "writes the same documents again.",
                result,
            )
    return result


async def _write_chunk(
    chunk: list[_Job], store: MongoStore | None, result: MigrationResult
) -> PersistenceWriteError | None:
    """Encodes and writes one chunk; returns a failure that may pass (the entry was kept)."""
    encoded: list[tuple[str, str, Entry]] = []
    for kind, entity, make in chunk:
        try:
            encoded.append((kind, entity, make()))
        except (EncodingError, DocumentTooLargeError) as exc:
            result.problems.append(Problem(kind, entity, str(exc)))
    if store is None:
        for kind, _, _ in encoded:
            result.written[kind] += 1
        return None
    outcomes = await asyncio.gather(
        *(store.write(entry) for _, _, entry in encoded), return_exceptions=True
    )
    failure: PersistenceWriteError | None = None
    for (kind, entity, _), outcome in zip(encoded, outcomes, strict=True):
        if outcome is None:
            result.written[kind] += 1
        elif isinstance(outcome, PersistenceWriteError):
            result.problems.append(Problem(kind, entity, str(outcome)))
            if outcome.kept:
                failure = outcome
        elif isinstance(outcome, BaseException):
            raise outcome
    return failure
