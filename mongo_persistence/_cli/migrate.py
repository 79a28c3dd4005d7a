"""Moving the data of PTB's own persistences into MongoDB.

The source files are read with PTB's own classes (:class:`telegram.ext.PicklePersistence`,
:class:`telegram.ext.DictPersistence`), so they are understood exactly as the bot understood them.
Every entity goes through the encoded-entity step the bot's own writes take
(:mod:`mongo_persistence._storage.encode`: codec, BSON and size checks), so the documents are the
very ones the bot itself would write, and is written through the store (a dry run only counts).
The writes are started in chunks, concurrently, so that the store's writer sends them as one
``bulk_write`` per collection and chunk.

This module knows nothing about the command line; :mod:`mongo_persistence._cli.cli` drives it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from telegram import Bot
from telegram.ext import BasePersistence, DictPersistence, ExtBot, PicklePersistence

from mongo_persistence._codec.codec import Codec
from mongo_persistence._errors import (
    DocumentTooLargeError,
    EncodingError,
    MigrationAbortedError,
    PersistenceWriteError,
    SourceError,
)
from mongo_persistence._persistence.shapes import callback_data_document
from mongo_persistence._storage.encode import Encoder, document_fields
from mongo_persistence._storage.entity import EntityRef, conversation_id
from mongo_persistence._storage.entry import Entry
from mongo_persistence._storage.store import MongoStore
from mongo_persistence._util.names import check_namespace

__all__ = [
    "DICT_JSON_FILES",
    "KINDS",
    "PICKLE_SUFFIXES",
    "MigrationAbortedError",
    "MigrationResult",
    "Problem",
    "SourceData",
    "SourceError",
    "dummy_bot",
    "load_dict_json",
    "load_pickle",
    "migrate",
    "migration_store",
]

KINDS: Final = ("user_data", "chat_data", "bot_data", "callback_data", "conversations")
"""The kinds of data a PTB persistence holds, in the order they are migrated."""

PICKLE_SUFFIXES: Final = tuple(f"_{kind}" for kind in KINDS)
"""The file name suffixes of a ``PicklePersistence(single_file=False)``."""

DICT_JSON_FILES: Final = {kind: f"{kind}.json" for kind in KINDS}
"""The file names looked for when ``--from-dict-json`` names a directory."""

DUMMY_TOKEN: Final = "123:ABC"  # noqa: S105 - a placeholder, never sent anywhere


def dummy_bot() -> ExtBot[None]:
    """A bot that is never initialised nor sent anything: it stands for the bot of the source.

    Telegram objects of the source are bound to it, and references to the source's bot become
    references to it; :class:`~mongo_persistence.MongoPersistence` stores those as the bot
    placeholder, which a bot started on MongoDB turns into itself.
    """
    return ExtBot(DUMMY_TOKEN)


@dataclass(slots=True)
class SourceData:
    """Everything a PTB persistence holds, as its ``get_*`` methods returned it.

    Attributes:
        description (:obj:`str`): Where it came from, for messages.
        user_data (dict[:obj:`int`, :obj:`object`]): By user id.
        chat_data (dict[:obj:`int`, :obj:`object`]): By chat id.
        bot_data (:obj:`object`): The bot data; :obj:`None` when there is none.
        callback_data (:obj:`tuple` | :obj:`None`): ``(keyboards, queries)`` or :obj:`None`.
        conversations (dict[:obj:`str`, dict[:obj:`tuple`, :obj:`object`]]): The states of every
            conversation, by handler name and conversation key.
        bot (:class:`telegram.Bot`): The bot the data was loaded with.
    """

    description: str
    user_data: dict[Any, Any] = field(default_factory=dict)
    chat_data: dict[Any, Any] = field(default_factory=dict)
    bot_data: Any = None
    callback_data: Any = None
    conversations: dict[str, dict[Any, Any]] = field(default_factory=dict)
    bot: Bot | None = None

    def counts(self) -> dict[str, int]:
        """The number of entities of each kind (a conversation entity is one key of a handler)."""
        return {
            "user_data": len(self.user_data),
            "chat_data": len(self.chat_data),
            "bot_data": int(self.bot_data is not None),
            "callback_data": int(self.callback_data is not None),
            "conversations": sum(len(states) for states in self.conversations.values()),
        }

    @property
    def total(self) -> int:
        """The number of entities of all kinds."""
        return sum(self.counts().values())


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


# ====================================================================== reading the sources
def _is_id(key: object) -> bool:
    return isinstance(key, int) and not isinstance(key, bool)


async def _read(
    persistence: BasePersistence[Any, Any, Any], bot: Bot, description: str
) -> SourceData:
    user_data = await persistence.get_user_data()
    chat_data = await persistence.get_chat_data()
    bot_data = await persistence.get_bot_data()
    callback_data = await persistence.get_callback_data()
    # None: that kind was not stored by the bot (store_data flag off)
    user_data = {} if user_data is None else user_data
    chat_data = {} if chat_data is None else chat_data
    for kind, value in (("user_data", user_data), ("chat_data", chat_data)):
        if not isinstance(value, dict):
            raise SourceError(
                f"{description}: its {kind} is a {type(value).__name__}, not a dict by id"
            )
    if not callback_data:  # None, or {} from an old single file without callback data
        callback_data = None
    elif not (
        isinstance(callback_data, tuple | list)
        and len(callback_data) == 2
        and isinstance(callback_data[0], list)
        and isinstance(callback_data[1], dict)
        and all(isinstance(kb, tuple | list) and len(kb) == 3 for kb in callback_data[0])
    ):
        raise SourceError(
            f"{description}: its callback_data is not in the format "
            "(list of (uuid, access time, buttons), dict of queries)"
        )
    return SourceData(
        description=description,
        user_data=user_data,
        chat_data=chat_data,
        bot_data=bot_data if bot_data or not isinstance(bot_data, dict | None) else None,
        callback_data=callback_data,
        conversations={},
        bot=bot,
    )


def _conversations(description: str, raw: Any) -> dict[str, dict[Any, Any]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(states, dict) for states in raw.values()):
        raise SourceError(
            f"{description}: its conversations are not a dict of handler names to dicts of states"
        )
    out: dict[str, dict[Any, Any]] = {}
    for name, states in raw.items():
        if not isinstance(name, str):
            raise SourceError(f"{description}: conversation handler name {name!r} is not a str")
        if states:
            out[name] = dict(states)
    return out


def _unwrap(exc: BaseException) -> str:
    message = str(exc)
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in message:
        message = f"{message} ({type(cause).__name__}: {cause})"
    return message


def pickle_files(path: Path) -> tuple[bool, list[Path]]:
    """Finds the files of a PicklePersistence.

    Args:
        path (:class:`pathlib.Path`): The ``filepath`` the bot gave to PicklePersistence.

    Returns:
        (:obj:`bool`, list[:class:`pathlib.Path`]): Whether it is a single file, and the files.

    Raises:
        :class:`SourceError`: Neither the file nor any of the ``<path>_<kind>`` files exist.
    """
    if path.is_dir():
        raise SourceError(f"{path} is a directory, not a PicklePersistence file or prefix")
    if path.is_file():
        return True, [path]
    parts = [Path(f"{path}{suffix}") for suffix in PICKLE_SUFFIXES]
    found = [part for part in parts if part.is_file()]
    if not found:
        raise SourceError(
            f"No PicklePersistence data at {path}: neither that file nor any of "
            f"{', '.join(p.name for p in parts)} exists"
        )
    return False, found


async def load_pickle(
    path: str | Path, *, bot: Bot | None = None, single_file: bool | None = None
) -> SourceData:
    """Reads the files of a :class:`telegram.ext.PicklePersistence` with PTB's own class.

    Args:
        path (:obj:`str` | :class:`pathlib.Path`): The ``filepath`` of the PicklePersistence: the
            file itself, or with ``single_file=False`` the prefix of the ``<path>_user_data``...
            files.
        bot (:class:`telegram.Bot`, optional): The bot to bind Telegram objects to. Defaults to
            :func:`dummy_bot`.
        single_file (:obj:`bool`, optional): Found out from the files present when not given.

    Raises:
        :class:`SourceError`: The files are missing or not PicklePersistence data.
    """
    path = Path(path)
    detected, files = pickle_files(path)
    if single_file is None:
        single_file = detected
    bot = bot or dummy_bot()
    kind = "single file" if single_file else f"{len(files)} files {path.name}_*"
    description = f"{path} (PicklePersistence, {kind})"
    persistence: PicklePersistence[Any, Any, Any] = PicklePersistence(
        path, single_file=single_file, update_interval=3600
    )
    persistence.set_bot(bot)
    try:
        data = await _read(persistence, bot, description)
        if not single_file:
            await persistence.get_conversations("")  # loads the file of every handler's states
        # A single file holds None when the bot had no persistent conversation handler.
        data.conversations = _conversations(description, persistence.conversations)
    except SourceError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OSError) as exc:
        hint = ""
        suffix = next((x for x in PICKLE_SUFFIXES if path.name.endswith(x)), None)
        if single_file and suffix:
            prefix = path.with_name(path.name[: -len(suffix)])
            hint = f"; for the files of single_file=False give their prefix: {prefix}"
        raise SourceError(f"Cannot read {description}: {_unwrap(exc)}{hint}") from exc
    return data


async def load_dict_json(path: str | Path, *, bot: Bot | None = None) -> SourceData:
    """Reads DictPersistence JSON with PTB's own :class:`telegram.ext.DictPersistence`.

    Args:
        path (:obj:`str` | :class:`pathlib.Path`): Either a JSON file holding an object with any
            of the keys ``user_data``, ``chat_data``, ``bot_data``, ``callback_data`` and
            ``conversations``, each the text of the matching ``DictPersistence.*_json`` property
            (a JSON string) or that JSON itself; or a directory holding any of the files
            ``user_data.json``, ``chat_data.json``, ``bot_data.json``, ``callback_data.json`` and
            ``conversations.json``, each the text of the matching ``*_json`` property.
        bot (:class:`telegram.Bot`, optional): Defaults to :func:`dummy_bot`.

    Raises:
        :class:`SourceError`: Missing, unreadable or not DictPersistence JSON.
    """
    path = Path(path)
    if path.is_dir():
        texts = _dict_json_dir(path)
        description = f"{path}/ (DictPersistence JSON, {len(texts)} files)"
    elif path.is_file():
        texts = _dict_json_file(path)
        description = f"{path} (DictPersistence JSON)"
    else:
        raise SourceError(f"No such file or directory: {path}")

    bot = bot or dummy_bot()
    try:
        persistence = DictPersistence(
            user_data_json=texts.get("user_data", ""),
            chat_data_json=texts.get("chat_data", ""),
            bot_data_json=texts.get("bot_data", ""),
            callback_data_json=texts.get("callback_data", ""),
            conversations_json=texts.get("conversations", ""),
            update_interval=3600,
        )
        persistence.set_bot(bot)
        data = await _read(persistence, bot, description)
    except SourceError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise SourceError(f"Cannot read {description}: {_unwrap(exc)}") from exc
    data.conversations = _conversations(description, persistence.conversations)
    return data


def _dict_json_dir(path: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    for kind, name in DICT_JSON_FILES.items():
        part = path / name
        if part.is_file():
            texts[kind] = _read_text(part)
    if not texts:
        raise SourceError(
            f"No DictPersistence JSON in directory {path}: expected any of "
            f"{', '.join(DICT_JSON_FILES.values())}"
        )
    return texts


def _dict_json_file(path: Path) -> dict[str, str]:
    try:
        combined = json.loads(_read_text(path))
    except ValueError as exc:
        raise SourceError(f"{path} is not a JSON file: {exc}") from None
    if not isinstance(combined, dict):
        raise SourceError(f"{path} does not hold a JSON object with the keys {', '.join(KINDS)}")
    unknown = sorted(set(combined) - set(KINDS))
    if unknown or not combined:
        raise SourceError(
            f"{path} is not DictPersistence JSON: "
            + (f"unknown keys {', '.join(map(repr, unknown))}; " if unknown else "")
            + f"expected keys {', '.join(KINDS)}"
        )
    return {
        kind: value if isinstance(value, str) else json.dumps(value)
        for kind, value in combined.items()
        if value is not None and value != ""
    }


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SourceError(f"{path} is not a UTF-8 text file") from None
    except OSError as exc:
        raise SourceError(f"Cannot read {path}: {exc.strerror or exc}") from None


# ====================================================================== writing
_Job = tuple[str, str, Callable[[], Entry]]


def _jobs(source: SourceData, encoder: Encoder, result: MigrationResult) -> Iterator[_Job]:
    """(kind, entity, the encoded-entity step of it) for every entity of the source."""
    for kind in ("user_data", "chat_data"):
        entries: dict[Any, Any] = getattr(source, kind)
        for entity_id, value in entries.items():
            entity = f"{kind}[{entity_id!r}]"
            if not _is_id(entity_id):
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


def _fields() -> dict[str, Any]:
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
