"""The :class:`MongoPersistence` class: PTB's persistence contract mapped onto codec and store."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import inspect
import json
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypeVar, overload

import pymongo
from pymongo import AsyncMongoClient
from pymongo.database import Database as SyncDatabase
from pymongo.errors import ConnectionFailure, PyMongoError
from pymongo.write_concern import WriteConcern
from telegram.ext import BasePersistence, ContextTypes, PersistenceInput
from telegram.warnings import PTBUserWarning

from mongo_persistence._codec.codec import (
    FORMAT_VERSION,
    TAG,
    Codec,
    TypeCodec,
    watching_interrupts,
)
from mongo_persistence._codec.upgrade import needs_upgrade, upgrade_value
from mongo_persistence._errors import (
    BadDocumentError,
    DecodingError,
    EncodingError,
    MigrationError,
    PersistenceConnectionError,
    PersistenceWriteError,
)
from mongo_persistence._persistence.migrations import Migrations
from mongo_persistence._storage.encode import Encoder, document_fields, mergeable
from mongo_persistence._storage.retention import parse_expire_after
from mongo_persistence._storage.store import Entry, Health, MongoStore, short_error
from mongo_persistence._storage.tracker import Digests
from mongo_persistence._util.logs import get_logger
from mongo_persistence._util.names import check_database_name, check_namespace
from mongo_persistence._util.uri import redact_text, redact_uri

if TYPE_CHECKING:
    from telegram.ext import Application

    from mongo_persistence._persistence.jobs import MongoJobStore

__all__ = ["DEFAULT_DATABASE", "MongoPersistence"]

_LOGGER = get_logger(__name__)

UD = TypeVar("UD")
CD = TypeVar("CD")
BD = TypeVar("BD")
# from_uri is a classmethod: its result's data classes are its own type variables
_UD = TypeVar("_UD")
_CD = TypeVar("_CD")
_BD = TypeVar("_BD")

# PTB's own aliases live in its private telegram.ext._utils.types: spelled out here (as ptbcontrib
# does), so that a change of PTB's internals cannot break the import.
ConversationKey: TypeAlias = tuple[int | str, ...]
"""The key of a conversation: ``(chat_id, user_id)``, or fewer, per the handler's settings."""
ConversationDict: TypeAlias = dict[ConversationKey, object]
"""The states of a :class:`telegram.ext.ConversationHandler`, by conversation key."""
CDCData: TypeAlias = tuple[list[tuple[str, float, dict[str, Any]]], dict[str, str]]
"""The data of :attr:`telegram.ext.CallbackDataCache.persistence_data`: keyboards and queries."""

DEFAULT_DATABASE: Final = "ptb_persistence"
"""The database used when neither the URI nor :paramref:`MongoPersistence.database` names one."""

_SKIPPED: Final = object()
"""Stands for an entity whose document was skipped (``on_bad_document="skip"``)."""
_BOT_DATA_ID: Final = "bot_data"
_CALLBACK_DATA_ID: Final = "callback_data"


def conversation_id(name: str, key: ConversationKey) -> str:
    """The ``_id`` of a conversation document: ``'["name",chat_id,user_id]'`` (readable JSON)."""
    return json.dumps([name, *key], separators=(",", ":"), ensure_ascii=False, default=repr)


def _settled(task: asyncio.Future[None]) -> None:
    """Retrieves the outcome of a write whose caller may be gone (it was reported to it)."""
    if not task.cancelled():
        task.exception()


def _new_instance(cls: Any) -> Any:
    """An empty instance of a data class: ``cls()``, or ``cls.__new__(cls)`` if it needs arguments.

    Only a signature that cannot be called without arguments falls back; a :class:`TypeError`
    raised by the class's own ``__init__`` propagates (it is a bug of the bot to report).
    """
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # no signature to read (some built-in classes)
        return cls()
    try:
        signature.bind()
    except TypeError:  # an __init__ that needs arguments
        return cls.__new__(cls)
    return cls()


def conversation_key(codec: Codec, doc: Any, where: str) -> ConversationKey:
    """The key of a conversation document, checked: a list of ints and strings.

    Args:
        codec (:class:`mongo_persistence.Codec`): Decodes the key.
        doc: The document.
        where (:obj:`str`): Names the handler in errors, e.g. ``conversations['talk']``.

    Raises:
        :class:`mongo_persistence.DecodingError`: The key is not such a list.
    """
    entity = f"{where}[_id={doc.get('_id')!r}]"
    raw = doc.get("key")
    if not isinstance(raw, list):
        raise DecodingError(entity, "['key']", "the key is not an array of ids")
    key = tuple(codec.decode(raw, entity=entity))
    if not all(type(part) in (int, str) for part in key):
        raise DecodingError(entity, "['key']", "the key holds other values than ints and text")
    return key


def callback_data_from(data: Any) -> CDCData:
    """PTB's callback data cache from the decoded ``data`` field, its shape checked."""
    entity = "callback_data"
    if not isinstance(data, dict) or set(data) != {"keyboards", "queries"}:
        raise DecodingError(entity, "", "its 'data' field must hold 'keyboards' and 'queries'")
    if not isinstance(data["keyboards"], list):
        raise DecodingError(entity, "['keyboards']", "it is not an array")
    keyboards = []
    fields = {"keyboard", "access_time", "buttons"}
    for index, keyboard in enumerate(data["keyboards"]):
        path = f"['keyboards'][{index}]"
        if not isinstance(keyboard, dict) or set(keyboard) != fields:
            raise DecodingError(entity, path, f"a keyboard needs exactly {sorted(fields)}")
        uuid, access_time, buttons = (keyboard[k] for k in ("keyboard", "access_time", "buttons"))
        if not isinstance(uuid, str) or not isinstance(buttons, dict):
            raise DecodingError(entity, path, "'keyboard' must be a string, 'buttons' a document")
        if type(access_time) not in (int, float):
            raise DecodingError(entity, f"{path}['access_time']", "it is not a number")
        keyboards.append((uuid, float(access_time), buttons))
    queries = data["queries"]
    if not isinstance(queries, dict) or not all(isinstance(v, str) for v in queries.values()):
        raise DecodingError(entity, "['queries']", "it must map query ids to keyboard ids")
    return keyboards, dict(queries)


def _is_scalar_class(cls: type) -> bool:
    """Tells whether instances of a data class hold no keys nor attributes (int, complex...)."""
    return not issubclass(cls, dict) and getattr(cls, "__dictoffset__", 0) == 0


def _open_database(
    target: Any, database: str | None, client_kwargs: dict[str, Any] | None
) -> tuple[Any, Callable[[], Any] | None]:
    """The database object of :paramref:`target`, and for a URI how to open it again."""
    if isinstance(target, str):

        def opener() -> Any:
            client: AsyncMongoClient[Any] = AsyncMongoClient(
                target, appname="mongo_persistence", **(client_kwargs or {})
            )
            default_db = client.get_default_database(default=DEFAULT_DATABASE).name
            where = " in the connection string"
            return client[database or check_database_name(default_db, where=where)]

        try:
            return opener(), opener
        except (PyMongoError, ValueError, TypeError) as exc:
            if isinstance(exc, ValueError) and "database name" in str(exc):
                raise
            raise PersistenceConnectionError(
                f"Invalid MongoDB connection string {redact_uri(target)}: "
                f"{redact_text(str(exc), target)}"
            ) from None
    # Checked on the class: clients and databases answer any attribute with a sub-object.
    if hasattr(type(target), "get_database"):
        return target.get_database(database or DEFAULT_DATABASE), None
    if hasattr(type(target), "get_collection"):
        return target, None
    raise TypeError(
        "MongoPersistence needs a MongoDB URI, an async client or an async database, "
        f"not {type(target).__name__}"
    )


def _check_target(target: object, client_kwargs: dict[str, Any] | None) -> None:
    """Refuses at once what would fail later: a synchronous client, ignored client_kwargs."""
    if isinstance(target, pymongo.MongoClient | SyncDatabase):
        raise TypeError(
            f"MongoPersistence needs an async client: {type(target).__name__} is PyMongo's "
            "synchronous API. Use pymongo.AsyncMongoClient (same arguments) instead."
        )
    if client_kwargs is not None and not isinstance(target, str):
        raise TypeError(
            "client_kwargs are only used when MongoPersistence creates the client from a URI; "
            "pass these options to the client you hand in instead"
        )


class MongoPersistence(BasePersistence[UD, CD, BD]):
    """Makes a bot persistent in MongoDB: one readable document per chat, user and conversation.

    Example:
        .. code:: python

            persistence = MongoPersistence("mongodb://localhost:27017", database="mybot")
            application = Application.builder().token(TOKEN).persistence(persistence).build()

    Every ``update_*``/``drop_*`` call returns once MongoDB acknowledged the write. Calls that
    arrive together are sent as one ``bulk_write`` per collection; unchanged data is not written;
    changed data is written as a diff of its top-level keys. A failed write is kept and retried.

    Attention:
        The interface provided by this class is intended to be accessed exclusively by
        :class:`~telegram.ext.Application`. Calling any of the methods below manually might
        interfere with the integration of persistence into :class:`~telegram.ext.Application`.
        :meth:`store_jobs` is the exception: pass it as the application's ``post_init``.

    .. seealso:: :meth:`from_uri`, :class:`telegram.ext.BasePersistence`

    Args:
        target (:obj:`str` | client | database): A ``mongodb://`` URI (the persistence then owns
            its :class:`pymongo.AsyncMongoClient` and closes it in :meth:`flush`), or a
            :class:`pymongo.AsyncMongoClient`, a motor ``AsyncIOMotorClient``, a
            mongomock-motor client, or an async database object of one of them (never closed here).
        database (:obj:`str`, optional): The database name. Defaults to the URI's database, else
            :data:`DEFAULT_DATABASE`. Ignored when :paramref:`target` is a database. 1 to 63
            bytes, without spaces, NUL, a slash, a backslash or any of ``. "$*<>:|?``.
        namespace (:obj:`str`, optional): Prefix of the collection names (``<namespace>.user_data``
            ...), so that several bots share one database without seeing each other's data.
            1 to 64 letters, digits, ``_`` or ``-``.
        store_data (:class:`telegram.ext.PersistenceInput`, optional): Which kinds of data to
            store. All of them by default.
        update_interval (:obj:`int` | :obj:`float`, optional): Seconds between two persistence runs
            of the application. Defaults to ``60``.
        context_types (:class:`telegram.ext.ContextTypes`, optional): Custom classes for
            ``user_data``/``chat_data``/``bot_data``; loaded data is restored into them.
        codecs (Iterable[:class:`mongo_persistence.TypeCodec`], optional): Encoders for your own
            classes.
        pickle_fallback (:obj:`bool`, optional): Store values of unsupported types with
            :mod:`pickle`. Off by default. **Anyone who can write to the database can then run
            code in the bot.**
        write_concern (:class:`pymongo.write_concern.WriteConcern`, optional): E.g.
            ``WriteConcern(w="majority", j=True)``. The server's default otherwise.
        lazy (:obj:`bool`, optional): Load no user and chat data at start-up; each entity is read
            when the first update for it arrives. ``application.user_data`` then holds only
            entities seen so far. Defaults to :obj:`False`.
        refresh (:obj:`bool`, optional): Re-read the entity of every update (and ``bot_data``),
            so that edits made in MongoDB by other programs are seen by handlers. Changes of the
            bot not yet written are written first (only the changed keys), so none are lost.
            Defaults to :obj:`False`.
        flush_timeout (:obj:`float`, optional): Seconds :meth:`flush` keeps retrying kept writes
            before it leaves them in the journal. Defaults to ``5``. With the defaults, a bot
            stopped during an outage ends within a container's 10 s stop grace period.
        write_timeout (:obj:`float`, optional): Seconds every write attempt (and every read of
            one document) may take, server selection included. A write without an answer by
            then is kept in the journal and retried with the next persistence run. Defaults to
            ``2``.
        recovery_dir (:obj:`str` | :obj:`pathlib.Path`, optional): Where the journal of kept
            writes is (``mongo_persistence-journal-<database>.<namespace>.<pid>-<id>.jsonl``,
            readable by the bot's user only); journals left there by an earlier run (a crash, an
            outage at shutdown) are replayed at the next start, before loading. Defaults to the
            working directory.
        client_kwargs (:obj:`dict`, optional): Extra keyword arguments for
            :class:`pymongo.AsyncMongoClient` when :paramref:`target` is a URI (a
            :class:`TypeError` with a client or database handed in).
        on_bad_document (:obj:`str`, optional): What loading does with a user, chat, bot data,
            conversation or callback data document that cannot be decoded (see
            :class:`~mongo_persistence.DecodingError`).
            ``"raise"`` (the default): the error stops the loading (``application.initialize()``
            fails), so nothing goes unnoticed. ``"skip"``: the entity is logged once (entity and
            path, never the content) and starts empty; every other entity is loaded. Its stored
            document is left as it is and never overwritten: writes of the entity raise
            :class:`~mongo_persistence.BadDocumentError` until the document is fixed or deleted
            (and the bot restarted) or the entity is dropped. The skipped entities are in
            :attr:`bad_documents`.
        migrations (Mapping[:obj:`str`, Mapping[:obj:`int`, Callable]], optional): Migrations of
            your own data, by kind (``"user_data"``, ``"chat_data"``, ``"bot_data"``): functions
            by the version they produce, e.g. ``{"user_data": {1: rename_age, 2: tags_to_dict}}``.
            Each takes the data of one entity in the previous version's shape and returns it in
            its own. An entity loaded with an older ``data_version`` (none: 0) runs the newer
            ones in order and is written back. A migration that raises (or returns no instance
            of the data class) is a :class:`~mongo_persistence.MigrationError`: that
            entity is skipped as a bad document (see :paramref:`on_bad_document` ``"skip"``),
            every other one loads.
        expire_after (Mapping[:obj:`str`, :class:`datetime.timedelta` | :obj:`float` | \
            :obj:`str`], optional): Retention by kind (``"users"``, ``"chats"``,
            ``"conversations"``): e.g. ``{"users": timedelta(days=180)}`` (or seconds, or
            ``"180d"``). Each write sets ``expire_at`` to now plus that duration (rounded down by
            at most 1 % of it), and MongoDB deletes the documents whose ``expire_at`` has passed
            (a TTL index; the server checks about once a minute).
        bulk_write (:obj:`bool`, optional): Send the writes of one run as one ``bulk_write`` per
            collection (the default). :obj:`False` sends one request per document: for
            mongomock-motor, whose ``bulk_write`` does not work with PyMongo's models.

    Attributes:
        store (:class:`mongo_persistence._storage.store.MongoStore`): The I/O layer.
        codec (:class:`mongo_persistence.Codec`): The value codec.
        context_types (:class:`telegram.ext.ContextTypes`): The data classes.
        lazy (:obj:`bool`): Whether user and chat data are loaded lazily.
        refresh (:obj:`bool`): Whether entities are re-read on every update.
        flush_timeout (:obj:`float`): Seconds :meth:`flush` retries.
        recovery_dir (:class:`pathlib.Path` | :obj:`None`): Where the journal of kept writes is.
        last_recovery_file (:class:`pathlib.Path` | :obj:`None`): The journal left by the last
            :meth:`flush` that could not save everything.
        on_bad_document (:obj:`str`): ``"raise"`` or ``"skip"``.
        bad_documents (dict[:obj:`str`, :class:`mongo_persistence.DecodingError`]): With
            ``on_bad_document="skip"``, the entities skipped at loading, by entity name (and
            those whose migration failed, with any :paramref:`on_bad_document`).
        expire_after (dict[:obj:`str`, :class:`datetime.timedelta`]): The retention by
            collection kind (``"user_data"``, ``"chat_data"``, ``"conversations"``).
    """

    __slots__ = (
        "_bad",
        "_classes",
        "_handed_over",
        "_job_store",
        "_loaded",
        "_loaded_chats",
        "_loaded_users",
        "_migrated",
        "_migrations",
        "_scalar_kinds",
        "bad_documents",
        "codec",
        "context_types",
        "expire_after",
        "flush_timeout",
        "last_recovery_file",
        "lazy",
        "on_bad_document",
        "recovery_dir",
        "refresh",
        "store",
    )

    @overload
    def __init__(
        self: MongoPersistence[dict[Any, Any], dict[Any, Any], dict[Any, Any]],
        target: Any,
        *,
        database: str | None = None,
        namespace: str | None = None,
        store_data: PersistenceInput | None = None,
        update_interval: float = 60,
        codecs: Iterable[TypeCodec[Any]] = (),
        pickle_fallback: bool = False,
        write_concern: WriteConcern | None = None,
        lazy: bool = False,
        refresh: bool = False,
        flush_timeout: float = 5.0,
        write_timeout: float = 2.0,
        recovery_dir: str | Path | None = None,
        client_kwargs: dict[str, Any] | None = None,
        on_bad_document: str = "raise",
        migrations: Mapping[str, Mapping[int, Callable[[Any], Any]]] | None = None,
        expire_after: Mapping[str, dtm.timedelta | float | str] | None = None,
        bulk_write: bool = True,
    ) -> None: ...

    @overload
    def __init__(
        self: MongoPersistence[UD, CD, BD],
        target: Any,
        *,
        database: str | None = None,
        namespace: str | None = None,
        store_data: PersistenceInput | None = None,
        update_interval: float = 60,
        context_types: ContextTypes[Any, UD, CD, BD],
        codecs: Iterable[TypeCodec[Any]] = (),
        pickle_fallback: bool = False,
        write_concern: WriteConcern | None = None,
        lazy: bool = False,
        refresh: bool = False,
        flush_timeout: float = 5.0,
        write_timeout: float = 2.0,
        recovery_dir: str | Path | None = None,
        client_kwargs: dict[str, Any] | None = None,
        on_bad_document: str = "raise",
        migrations: Mapping[str, Mapping[int, Callable[[Any], Any]]] | None = None,
        expire_after: Mapping[str, dtm.timedelta | float | str] | None = None,
        bulk_write: bool = True,
    ) -> None: ...

    def __init__(
        self,
        target: Any,
        *,
        database: str | None = None,
        namespace: str | None = None,
        store_data: PersistenceInput | None = None,
        update_interval: float = 60,
        context_types: ContextTypes[Any, UD, CD, BD] | None = None,
        codecs: Iterable[TypeCodec[Any]] = (),
        pickle_fallback: bool = False,
        write_concern: WriteConcern | None = None,
        lazy: bool = False,
        refresh: bool = False,
        flush_timeout: float = 5.0,
        write_timeout: float = 2.0,
        recovery_dir: str | Path | None = None,
        client_kwargs: dict[str, Any] | None = None,
        on_bad_document: str = "raise",
        migrations: Mapping[str, Mapping[int, Callable[[Any], Any]]] | None = None,
        expire_after: Mapping[str, dtm.timedelta | float | str] | None = None,
        bulk_write: bool = True,
    ) -> None:
        super().__init__(store_data=store_data, update_interval=update_interval)
        if on_bad_document not in ("raise", "skip"):
            raise ValueError(f"on_bad_document must be 'raise' or 'skip', not {on_bad_document!r}")
        self.on_bad_document = on_bad_document
        self.bad_documents: dict[str, DecodingError] = {}
        self._bad: set[tuple[str, Any]] = set()
        self._migrations = Migrations(migrations)
        # Entities whose migrated data is written back by the loader that read them.
        self._migrated: set[tuple[str, Any]] = set()
        self.expire_after = parse_expire_after(expire_after)
        namespace = check_namespace(namespace)
        if database is not None:
            check_database_name(database)
        _check_target(target, client_kwargs)
        if pickle_fallback:
            warnings.warn(
                "MongoPersistence(pickle_fallback=True): values of unsupported types are stored "
                "with pickle. Anyone who can write to the database can then run code in this bot.",
                PTBUserWarning,
                stacklevel=2,
            )
        self.context_types: ContextTypes[Any, UD, CD, BD] = context_types or ContextTypes()  # type: ignore[assignment]
        self.codec = Codec(codecs, pickle_fallback=pickle_fallback)
        self.lazy = lazy
        self.refresh = refresh
        self.flush_timeout = flush_timeout
        self.recovery_dir = Path(recovery_dir) if recovery_dir is not None else None
        self.last_recovery_file: Path | None = None
        self._job_store: MongoJobStore | None = None
        self._handed_over: set[asyncio.Future[None]] = set()
        self._loaded_users: set[int] = set()
        self._loaded_chats: set[int] = set()
        # The ids whose documents were read (lazy mode loads each one once).
        self._loaded: dict[str, set[int]] = {
            "user_data": self._loaded_users,
            "chat_data": self._loaded_chats,
        }
        self._classes: dict[str, Any] = {
            "user_data": self.context_types.user_data,
            "chat_data": self.context_types.chat_data,
            "bot_data": self.context_types.bot_data,
        }
        # Data classes such as int or complex (PTB accepts any class constructible without
        # arguments): the value itself is stored, not its keys or attributes.
        self._scalar_kinds = frozenset(
            kind for kind, cls in self._classes.items() if _is_scalar_class(cls)
        )
        db, opener = _open_database(target, database, client_kwargs)
        uri = target if isinstance(target, str) else None
        self.store = MongoStore(
            db,
            namespace=namespace,
            write_concern=write_concern,
            bulk=bulk_write,
            write_timeout=write_timeout,
            journal_dir=self.recovery_dir or Path.cwd(),
            uri_for_errors=uri,
            opener=opener,
        )
        self.store.ttl_kinds = frozenset(self.expire_after)

    @overload
    @classmethod
    def from_uri(
        cls,
        uri: str,
        *,
        database: str | None = None,
        client_kwargs: dict[str, Any] | None = None,
        context_types: ContextTypes[Any, _UD, _CD, _BD],
        **options: Any,
    ) -> MongoPersistence[_UD, _CD, _BD]: ...

    @overload
    @classmethod
    def from_uri(
        cls,
        uri: str,
        *,
        database: str | None = None,
        client_kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> MongoPersistence[dict[Any, Any], dict[Any, Any], dict[Any, Any]]: ...

    @classmethod
    def from_uri(
        cls,
        uri: str,
        *,
        database: str | None = None,
        client_kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> MongoPersistence[Any, Any, Any]:
        """Creates a persistence that creates, owns and closes its own client.

        The same as ``MongoPersistence(uri, database=database, client_kwargs=client_kwargs,
        **options)``, and only for a connection string: the persistence makes a
        :class:`pymongo.AsyncMongoClient` from it (closed in :meth:`flush`).

        Example:
            .. code:: python

                persistence = MongoPersistence.from_uri(
                    "mongodb://localhost:27017/mybot", namespace="shop"
                )

        Args:
            uri (:obj:`str`): A ``mongodb://`` or ``mongodb+srv://`` connection string.
            database (:obj:`str`, optional): The database name. Defaults to the URI's database,
                else :data:`DEFAULT_DATABASE`: the same rule as the constructor's.
            client_kwargs (:obj:`dict`, optional): Extra keyword arguments for
                :class:`pymongo.AsyncMongoClient`.
            **options: Any other keyword argument of :class:`MongoPersistence` (``namespace``,
                ``store_data``, ``context_types``, ``lazy``...).

        Returns:
            :class:`MongoPersistence`: The persistence.

        Raises:
            :exc:`TypeError`: :paramref:`uri` is not a string (hand a client or a database to
                the constructor instead), or an option is unknown.
            :exc:`ValueError`: A database name or namespace is invalid.
            :class:`~mongo_persistence.PersistenceConnectionError`: The URI is malformed.
        """
        if not isinstance(uri, str):
            raise TypeError(
                f"MongoPersistence.from_uri() needs a connection string, not {type(uri).__name__}; "
                "hand a client or a database to MongoPersistence() itself"
            )
        return cls(uri, database=database, client_kwargs=client_kwargs, **options)

    @property
    def database(self) -> Any:
        """The async database object holding the collections."""
        return self.store.database

    # ================================================================ encoding helpers
    # (the encoded-entity step itself lives in mongo_persistence._storage.encode)
    def _encoder(self) -> Encoder:
        return Encoder(self.codec, self.bot, self.store.max_bson_size)

    def _encode_entity(
        self, value: object, entity: str, *, copy: bool = True
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Encodes a top-level ``*_data`` object into its ``data`` field and extra fields."""
        data, extra = self._encoder().data_of(value, entity, copy=copy)
        return data, dict(extra)

    def _digest(self, fields: dict[str, Any], entity: str, source: object = None) -> Digests:
        """The per-key fingerprints of encoded data (:func:`digest_fields`)."""
        return self._encoder().whole(("", None), entity, fields, source=source).digests or {}

    def _document_fields(self, kind: str, *, partial: bool = False) -> dict[str, Any]:
        """The top-level fields every write of this kind sets beside the data."""
        return document_fields(
            version=self._migrations.version(kind),
            expire_after=self.expire_after.get(kind),
            partial=partial,
        )

    async def _save(self, kind: str, doc_id: Any, value: object, entity: str) -> None:
        """Encodes and writes one user's, chat's or the bot's data."""
        if (kind, doc_id) in self._bad:
            raise BadDocumentError(entity)
        cls = self._classes[kind]
        if not isinstance(value, cls):
            # What is written must load: the loader restores context_types' classes.
            raise EncodingError(
                entity,
                "",
                type(value).__qualname__,
                f"it is not a {cls.__qualname__} (context_types)",
            )
        if kind in self._scalar_kinds:
            await self._save_scalar(kind, doc_id, value, entity)
            return
        if self._needs_read_first(kind, doc_id, value):
            # Handed over now: a cancelled caller does not cancel the read nor the write.
            task = asyncio.ensure_future(self._read_then_save(kind, doc_id, value, entity))
            self._handed_over.add(task)
            task.add_done_callback(self._handed_over.discard)
            task.add_done_callback(_settled)
            await asyncio.shield(task)
            return
        # Lazy mode, an entity not loaded: its keys are set onto a document never read.
        loaded = self._loaded.get(kind)
        partial = self.lazy and not self.refresh and loaded is not None and doc_id not in loaded
        fields = self._document_fields(kind, partial=partial)
        # The tracker plans what is sent: a document it does not know (lazy mode, an entity not
        # loaded yet; eager mode, created by another program) gets the bot's keys set onto it.
        await self.store.write(self._encoder().entity((kind, doc_id), entity, value, fields))

    def _needs_read_first(self, kind: str, doc_id: Any, value: object) -> bool:
        """Lazy mode, an entity never read nor written whose keys cannot be set one by one."""
        loaded = self._loaded.get(kind)
        if not self.lazy or self.refresh or loaded is None or doc_id in loaded:
            return False
        return self.store.tracker.known(kind, doc_id) is None and not mergeable(value)

    async def _read_then_save(self, kind: str, doc_id: Any, value: object, entity: str) -> None:
        """Reads what is stored and merges it under what PTB holds, then writes it.

        When MongoDB cannot be read, the bot's keys are written (set onto the stored document).
        """
        try:
            doc = await self.store.find_one(kind, doc_id)
        except ConnectionFailure as exc:
            _LOGGER.warning("Cannot read %s before writing it (%s)", entity, short_error(exc))
            doc = None
        if doc is not None:
            stored = self._decode_or_skip(doc, kind, doc_id, entity)
            if stored is _SKIPPED:
                raise BadDocumentError(entity)
            self._migrated.discard((kind, doc_id))  # written whole just below
            self._fill_in_place(value, stored, replace=False)
            self._track_loaded(kind, doc)
        if (kind, doc_id) in self._bad:
            raise BadDocumentError(entity)
        fields = self._document_fields(kind)
        await self.store.write(self._encoder().entity((kind, doc_id), entity, value, fields))

    async def _save_scalar(self, kind: str, doc_id: Any, value: object, entity: str) -> None:
        """Writes the data of a kind whose class holds a plain value (``int``, ``complex``...).

        The document is ``{_id, data: <value>}``, written whole. In lazy mode, an entity never
        loaded holds the class's default (such values cannot be changed in place): a stored
        value wins over it.
        """
        loaded = self._loaded.get(kind)
        if self.lazy and loaded is not None and doc_id not in loaded:
            try:
                doc = await self.store.find_one(kind, doc_id)
            except ConnectionFailure as exc:
                # The class's default cannot have changed: writing it now could replace a stored
                # value, skipping it loses nothing (the next write reads again).
                _LOGGER.warning("Cannot read %s before writing it (%s)", entity, short_error(exc))
                return
            loaded.add(doc_id)
            if doc is not None:
                self._track_loaded(kind, doc)
                return
        encoder = self._encoder()
        fields = {"data": encoder.value(value, entity)}
        extra = self._document_fields(kind)
        await self.store.write(
            encoder.whole((kind, doc_id), entity, fields, extra, source={"data": value})
        )

    async def _save_encoded(
        self,
        kind: str,
        doc_id: Any,
        data: dict[str, Any],
        entity: str,
        extra: dict[str, Any] | None = None,
        *,
        source: object = None,
        partial: bool = False,
    ) -> None:
        """Writes already encoded data (with its extra fields, e.g. ``attrs``)."""
        if (kind, doc_id) in self._bad:
            raise BadDocumentError(entity)
        fields = {**(extra or {}), **self._document_fields(kind, partial=partial)}
        entry = self._encoder().encoded((kind, doc_id), entity, data, fields, source=source)
        await self.store.write(entry)

    def _decode_entity(self, doc: Any, cls: Any, entity: str) -> Any:
        if _is_scalar_class(cls):
            value = self.codec.decode(doc.get("data"), bot=self.bot, entity=entity)
            if not isinstance(value, cls):
                found = type(value).__name__
                raise DecodingError(entity, "", f"its 'data' is a {found}, not a {cls.__name__}")
            return value
        data = doc.get("data", {})
        if not isinstance(data, dict):
            raise DecodingError(
                entity, "", f"its 'data' field is a {type(data).__name__}, not a document"
            )
        decoded = self.codec.decode(data, bot=self.bot, entity=entity)
        if cls is dict:
            if not isinstance(decoded, dict):
                raise DecodingError(entity, "", "its 'data' field is not a mapping")
            return decoded
        obj = cls.__new__(cls)
        if isinstance(obj, dict):
            dict.update(obj, decoded)
            if "attrs" in doc:
                obj.__dict__.update(self.codec.decode(doc["attrs"], bot=self.bot, entity=entity))
        else:
            obj.__dict__.update(decoded)
        return obj

    @staticmethod
    def _fill_in_place(target: Any, loaded: Any, *, replace: bool) -> None:
        if isinstance(target, dict):
            if replace:
                target.clear()
                target.update(loaded)
            else:
                for key, value in loaded.items():
                    target.setdefault(key, value)
            source_attrs = getattr(loaded, "__dict__", None)
            if source_attrs is not None and hasattr(target, "__dict__"):
                if replace:
                    vars(target).clear()
                vars(target).update(source_attrs)
        else:
            attributes = vars(target)
            if replace:
                attributes.clear()
                attributes.update(vars(loaded))
            else:
                for key, value in vars(loaded).items():
                    attributes.setdefault(key, value)

    def _track_loaded(self, kind: str, doc: Any) -> None:
        if kind in self._scalar_kinds:
            self.store.tracker.loaded(kind, doc["_id"], {"data": doc.get("data")})
            return
        if needs_upgrade(doc):  # values of an older format: the next write rewrites it all
            self.store.tracker.forget(kind, doc["_id"])
            return
        # extra fields are tracked under "\x00"-prefixed keys (_save_encoded); values of the
        # current shape are of the current format, whether the document says so or not
        fields = {k: doc[k] for k in ("attrs", "data_version", "expire_at") if k in doc}
        fields["format"] = FORMAT_VERSION
        self.store.tracker.loaded(kind, doc["_id"], doc.get("data", {}), fields)

    def _decode_or_skip(self, doc: Any, kind: str, doc_id: Any, entity: str) -> Any:
        """Decodes an entity's document; with ``on_bad_document="skip"`` a bad one is skipped.

        Returns :data:`_SKIPPED` for a skipped document: it is logged once and marked, so that
        it is never overwritten.
        """
        cls = self._classes[kind]
        try:
            decoded = self._decode_entity(doc, cls, entity)
            if self._migrations.outdated(kind, doc):
                decoded = self._migrations.apply(kind, doc, decoded, cls, entity)
                self._migrated.add((kind, doc_id))
            return decoded
        except DecodingError as exc:
            self._skip_bad(kind, doc_id, entity, exc)
            return _SKIPPED

    def _skip_bad(self, kind: str, doc_id: Any, entity: str, exc: DecodingError) -> None:
        """Re-raises, or (``on_bad_document="skip"``) logs once and marks the document bad."""
        if self.on_bad_document == "raise" and not isinstance(exc, MigrationError):
            raise exc  # a migration that raises names its entity and stops nothing else
        self._bad.add((kind, doc_id))
        if entity not in self.bad_documents:
            self.bad_documents[entity] = exc
            _LOGGER.error(
                "Skipped %s: its document cannot be loaded (at %s: %s). It starts empty and "
                "its document is left untouched; writes of it are refused until it is fixed "
                "or deleted.",
                entity,
                exc.path or "the top level",
                exc.reason,
            )

    async def _load_all(self, kind: str, cls: Any) -> dict[int, Any]:
        out: dict[int, Any] = {}
        # One watch for the loop (not a signal-handler swap per document); closing the cursor
        # on any error, a real Ctrl-C included.
        documents = contextlib.aclosing(self.store.iter_documents(kind))
        with watching_interrupts():
            async with documents as docs:
                async for doc in docs:
                    doc_id = doc["_id"]
                    if not isinstance(doc_id, int) or isinstance(doc_id, bool):
                        _LOGGER.warning(
                            "Ignoring a %s document whose _id is a %s, not an int",
                            kind,
                            type(doc_id).__name__,
                        )
                        continue
                    key = int(doc_id)
                    loaded = self._decode_or_skip(doc, kind, key, f"{kind}[{key}]")
                    if loaded is _SKIPPED:
                        continue
                    out[key] = loaded
                    self._track_loaded(kind, doc)
        migrated = [(key, value) for key, value in out.items() if (kind, key) in self._migrated]
        if migrated:  # written back together: one bulk write per batch
            await asyncio.gather(
                *(self._write_back(kind, key, value, f"{kind}[{key}]") for key, value in migrated)
            )
        return out

    async def _write_back(self, kind: str, doc_id: Any, data: Any, entity: str) -> None:
        """Writes an entity whose data a migration changed while it was loaded.

        A failure is logged (entity and reason only) and stops nothing: the migrated data is in
        memory, and the next write of the entity (or a retry of a kept write) stores it.
        """
        if (kind, doc_id) not in self._migrated:
            return
        self._migrated.discard((kind, doc_id))
        try:
            await self._save(kind, doc_id, data, entity)
        except (EncodingError, PersistenceWriteError) as exc:
            _LOGGER.error("Cannot write back the migrated %s: %s", entity, exc)

    # ================================================================ get_*
    async def get_user_data(self) -> dict[int, UD]:
        """Returns the stored ``user_data`` of every user (nothing with :attr:`lazy`).

        Returns:
            dict[:obj:`int`, UD]: The restored user data by user id.
        """
        await self.store.ensure_ready()
        if self.lazy:
            return {}
        return await self._load_all("user_data", self.context_types.user_data)

    async def get_chat_data(self) -> dict[int, CD]:
        """Returns the stored ``chat_data`` of every chat (nothing with :attr:`lazy`).

        Returns:
            dict[:obj:`int`, CD]: The restored chat data by chat id.
        """
        await self.store.ensure_ready()
        if self.lazy:
            return {}
        return await self._load_all("chat_data", self.context_types.chat_data)

    async def get_bot_data(self) -> BD:
        """Returns the stored ``bot_data``, or a new instance of ``context_types.bot_data``.

        Returns:
            BD: The restored bot data.
        """
        doc = await self.store.find_one("bot_data", _BOT_DATA_ID)
        if doc is None:
            return self.context_types.bot_data()
        loaded = self._decode_or_skip(doc, "bot_data", _BOT_DATA_ID, "bot_data")
        if loaded is _SKIPPED:
            return self.context_types.bot_data()
        self._track_loaded("bot_data", doc)
        await self._write_back("bot_data", _BOT_DATA_ID, loaded, "bot_data")
        return loaded  # type: ignore[no-any-return]

    async def get_callback_data(self) -> CDCData | None:
        """Returns the stored callback data cache (keyboards and callback queries).

        Returns:
            tuple[list[tuple[:obj:`str`, :obj:`float`, dict[:obj:`str`, :class:`object`]]], \
                dict[:obj:`str`, :obj:`str`]] | :obj:`None`: The cache, or :obj:`None`.
        """
        doc = await self.store.find_one("callback_data", _CALLBACK_DATA_ID)
        if doc is None:
            return None
        try:
            data = self.codec.decode(doc.get("data", {}), bot=self.bot, entity="callback_data")
            cache = callback_data_from(data)
        except DecodingError as exc:
            self._skip_bad("callback_data", _CALLBACK_DATA_ID, "callback_data", exc)
            return None
        self._track_loaded("callback_data", doc)
        return cache

    async def get_conversations(self, name: str) -> ConversationDict:
        """Returns the stored states of the conversation handler :paramref:`name`.

        Args:
            name (:obj:`str`): The handler's name.

        Returns:
            dict[tuple[:obj:`int` | :obj:`str`, ...], :class:`object`]: The states by key.
        """
        out: ConversationDict = {}
        async for doc in self.store.iter_documents("conversations", {"name": name}):
            try:
                key = conversation_key(self.codec, doc, f"conversations[{name!r}]")
                entity = f"conversations[{name!r}][{key!r}]"
                if "state" not in doc:
                    raise DecodingError(entity, "", "the document has no 'state' field")
                out[key] = self.codec.decode(doc["state"], bot=self.bot, entity=entity)
            except DecodingError as exc:
                self._skip_bad("conversations", doc.get("_id"), exc.entity, exc)
                continue
            self.store.tracker.loaded("conversations", doc["_id"], {"state": doc["state"]})
        return out

    # ================================================================ update_*
    async def update_user_data(self, user_id: int, data: UD) -> None:
        """Writes the ``user_data`` of one user; returns once MongoDB acknowledged it.

        Args:
            user_id (:obj:`int`): The user.
            data (UD): Their data.

        Raises:
            :class:`mongo_persistence.EncodingError`: A value cannot be stored.
            :class:`mongo_persistence.PersistenceWriteError`: MongoDB did not acknowledge it.
        """
        await self._save("user_data", user_id, data, f"user_data[{user_id}]")

    async def update_chat_data(self, chat_id: int, data: CD) -> None:
        """Writes the ``chat_data`` of one chat; returns once MongoDB acknowledged it.

        Args:
            chat_id (:obj:`int`): The chat.
            data (CD): Its data.

        Raises:
            :class:`mongo_persistence.EncodingError`: A value cannot be stored.
            :class:`mongo_persistence.PersistenceWriteError`: MongoDB did not acknowledge it.
        """
        await self._save("chat_data", chat_id, data, f"chat_data[{chat_id}]")

    async def update_bot_data(self, data: BD) -> None:
        """Writes ``bot_data`` (nothing is sent when it did not change).

        Args:
            data (BD): The bot data.
        """
        await self._save("bot_data", _BOT_DATA_ID, data, "bot_data")

    async def update_callback_data(self, data: CDCData) -> None:
        """Writes the callback data cache (nothing is sent when it did not change).

        Args:
            data: ``(keyboards, queries)`` as handed over by PTB.
        """
        if ("callback_data", _CALLBACK_DATA_ID) in self._bad:
            raise BadDocumentError("callback_data")
        fields = self._document_fields("callback_data")
        key = ("callback_data", _CALLBACK_DATA_ID)
        await self.store.write(self._encoder().callback_data(key, data, fields))

    async def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> None:
        """Writes the state of one conversation; :obj:`None` deletes its document.

        Args:
            name (:obj:`str`): The handler's name.
            key (tuple[:obj:`int` | :obj:`str`, ...]): The conversation key.
            new_state (:class:`object`): The new state, or :obj:`None` when it ended.
        """
        doc_id = conversation_id(name, key)
        entity = f"conversations[{name!r}][{key!r}]"
        if ("conversations", doc_id) in self._bad:
            raise BadDocumentError(entity)
        if new_state is None:
            await self.store.write(Entry("conversations", doc_id, entity, None, None))
            return
        fields = self._document_fields("conversations")
        entry = self._encoder().conversation(
            ("conversations", doc_id), entity, (name, key), new_state, fields
        )
        await self.store.write(entry)

    # ================================================================ drop_*
    async def drop_chat_data(self, chat_id: int) -> None:
        """Deletes the document of one chat.

        Args:
            chat_id (:obj:`int`): The chat.
        """
        entity = f"chat_data[{chat_id}]"
        if self.lazy and chat_id not in self._loaded_chats:
            await self._refuse_blind_drop(chat_id, entity)
        self._loaded_chats.discard(chat_id)
        self._forget_bad("chat_data", chat_id, entity)
        await self.store.write(Entry("chat_data", chat_id, entity, None, None))

    async def _refuse_blind_drop(self, chat_id: int, entity: str) -> None:
        """Lazy mode: a chat never loaded is dropped only when nothing of it is stored.

        ``application.migrate_chat_data()`` moves the data PTB holds in memory to the new chat and
        drops the old one: for a chat not loaded yet, that is nothing, and deleting its document
        would lose the stored data. Such a drop is refused (the document is kept), and so is one
        whose document cannot be read to tell.
        """
        try:
            doc = await self.store.find_one("chat_data", chat_id)
        except ConnectionFailure as exc:
            reason = "lazy mode: this chat was never loaded and MongoDB cannot be read to tell "
            reason += f"whether dropping it would lose stored data ({short_error(exc)})"
        else:
            if doc is None or doc.get("data") in ({}, None):
                return
            reason = "lazy mode: this chat was never loaded, so dropping or migrating it would "
            reason += "lose its stored data"
        raise PersistenceWriteError(
            entity,
            f"{reason}; the document is kept. Load it first: await application.persistence"
            ".refresh_chat_data(chat_id, application.chat_data[chat_id])",
            kept=False,
        )

    async def drop_user_data(self, user_id: int) -> None:
        """Deletes the document of one user.

        Args:
            user_id (:obj:`int`): The user.
        """
        self._loaded_users.discard(user_id)
        self._forget_bad("user_data", user_id, f"user_data[{user_id}]")
        await self.store.write(Entry("user_data", user_id, f"user_data[{user_id}]", None, None))

    def _forget_bad(self, kind: str, doc_id: Any, entity: str) -> None:
        """Dropping an entity is the user's decision: its bad document is deleted too."""
        self._bad.discard((kind, doc_id))
        self.bad_documents.pop(entity, None)

    # ================================================================ refresh_*
    async def _refresh(self, kind: str, doc_id: Any, target: Any) -> None:
        if kind in self._scalar_kinds:
            return  # a plain value cannot be updated in place
        if (kind, doc_id) in self._bad:
            return  # a skipped document is neither read again nor written
        cls = self._classes[kind]
        entity = "bot_data" if kind == "bot_data" else f"{kind}[{doc_id}]"
        loaded = self._loaded.get(kind)
        try:
            if self.refresh:
                await self._sync(kind, doc_id=doc_id, target=target, cls=cls, entity=entity)
            elif loaded is not None and doc_id not in loaded:
                await self._load_one(kind, doc_id, target, entity)
        except PersistenceWriteError as exc:
            if not exc.kept:
                raise
            _LOGGER.warning("Cannot refresh %s (%s); using the data in memory", entity, exc.reason)
            return
        except ConnectionFailure as exc:
            # MongoDB is unreachable: the handlers go on with the data in memory. Nothing is
            # lost: changes are written (or kept for a retry) by the next persistence run, and
            # an entity not loaded yet is merged onto its stored document and loaded next time.
            _LOGGER.warning(
                "Cannot refresh %s from MongoDB (%s); using the data in memory",
                entity,
                short_error(exc),
            )
            return
        if loaded is not None:
            loaded.add(doc_id)

    async def _load_one(self, kind: str, doc_id: Any, target: Any, entity: str) -> None:
        """Lazy mode: fills an entity not loaded yet with its stored keys (PTB's keys win)."""
        doc = await self.store.find_one(kind, doc_id)
        if doc is None:
            return
        loaded_data = self._decode_or_skip(doc, kind, doc_id, entity)
        if loaded_data is _SKIPPED:
            return
        self._fill_in_place(target, loaded_data, replace=False)
        self._track_loaded(kind, doc)
        if (kind, doc_id) in self._migrated:
            self._loaded[kind].add(doc_id)  # written whole, not merged
            await self._write_back(kind, doc_id, target, entity)

    async def _sync(  # noqa: PLR0912, C901
        self, kind: str, *, doc_id: Any, target: Any, cls: Any, entity: str
    ) -> None:
        """Merges the bot's unsaved changes and the database's document, both ways.

        The bot's changes since the last write or read (keys set, changed or removed) are written
        (only those keys); everything else comes from the database, so edits and deletions made
        by other programs replace what the bot holds in memory. One read, plus one write only
        when the bot changed something.
        """
        tracker = self.store.tracker
        local, extra = self._encode_entity(target, entity)
        local_digests = self._digest(local, entity, target)
        known = tracker.known(kind, doc_id)
        read = await self._read_for_sync(kind, doc_id, entity)
        if read is None:
            return  # found bad now: left as it is, the bot's changes are not merged into it
        doc, stored = read
        migrate = doc is not None and self._migrations.outdated(kind, doc)
        if doc is not None and needs_upgrade(doc):
            try:  # an older format: what is merged is rewritten
                stored = upgrade_value(stored)
            except DecodingError as exc:
                raise DecodingError(entity, exc.path, exc.reason) from None
        if migrate:
            migrated = self._decode_or_skip({**doc, "data": stored}, kind, doc_id, entity)
            self._migrated.discard((kind, doc_id))
            if migrated is _SKIPPED:
                return
            stored = self._encode_entity(migrated, entity)[0]
        if known is None:  # never read nor written: every key the bot holds is its change
            set_keys = list(local_digests)
            unset_keys: list[str] = []
        else:
            set_keys = [k for k, v in local_digests.items() if known.get(k) != v]
            unset_keys = [k for k in known if k not in local_digests]
        extra_changed = bool(extra) and (doc is None or doc.get("attrs") != extra.get("attrs"))
        changed = bool(set_keys or unset_keys or extra_changed or migrate)

        if not changed:
            merged = stored
        elif TAG in local or TAG in stored or (known is not None and TAG in known):
            merged = local  # not a mapping of plain keys on both sides: the bot's version wins
        else:
            merged = dict(stored)
            merged.update((k, local[k]) for k in set_keys)
            for key in unset_keys:
                merged.pop(key, None)

        if doc is not None:
            self._track_loaded(kind, doc)
        elif known is not None:  # it existed at our last read or write: deleted elsewhere
            tracker.deleted_elsewhere(kind, doc_id)
        else:
            tracker.forget(kind, doc_id)
        if changed:
            await self._save_encoded(kind, doc_id, merged, entity, extra)
        elif doc is None:
            self._fill_in_place(target, _new_instance(cls), replace=True)
            return
        attrs = extra or ({"attrs": doc["attrs"]} if doc is not None and "attrs" in doc else {})
        fresh = self._decode_entity({"data": merged, **attrs}, cls, entity)
        self._fill_in_place(target, fresh, replace=True)

    async def _read_for_sync(
        self, kind: str, doc_id: Any, entity: str
    ) -> tuple[Any, dict[str, Any]] | None:
        """Reads the document and its ``data``; :obj:`None` when it is skipped as bad."""
        doc = await self.store.find_one(kind, doc_id)
        if (
            doc is not None
            and self.on_bad_document == "skip"
            and self._decode_or_skip(doc, kind, doc_id, entity) is _SKIPPED
        ):
            return None
        stored = doc.get("data", {}) if doc is not None else {}
        if not isinstance(stored, dict):
            raise DecodingError(entity, "", "its 'data' field is not a document")
        return doc, stored

    async def refresh_user_data(self, user_id: int, user_data: UD) -> None:
        """Loads (:attr:`lazy`) or re-reads (:attr:`refresh`) one user's data, in place.

        .. seealso:: :meth:`telegram.ext.BasePersistence.refresh_user_data`

        Args:
            user_id (:obj:`int`): The user.
            user_data (UD): The object to fill.
        """
        if self.lazy or self.refresh:
            await self._refresh("user_data", user_id, user_data)

    async def refresh_chat_data(self, chat_id: int, chat_data: CD) -> None:
        """Loads (:attr:`lazy`) or re-reads (:attr:`refresh`) one chat's data, in place.

        .. seealso:: :meth:`telegram.ext.BasePersistence.refresh_chat_data`

        Args:
            chat_id (:obj:`int`): The chat.
            chat_data (CD): The object to fill.
        """
        if self.lazy or self.refresh:
            await self._refresh("chat_data", chat_id, chat_data)

    async def refresh_bot_data(self, bot_data: BD) -> None:
        """Re-reads ``bot_data`` in place when :attr:`refresh` is on.

        .. seealso:: :meth:`telegram.ext.BasePersistence.refresh_bot_data`

        Args:
            bot_data (BD): The object to fill.
        """
        if self.refresh:
            await self._refresh("bot_data", _BOT_DATA_ID, bot_data)

    # ================================================================ jobs
    async def store_jobs(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Keeps the application's JobQueue jobs in MongoDB, and schedules the stored ones again.

        Pass it as the application's ``post_init``, or await it in your own ``post_init`` (or
        between ``application.initialize()`` and ``application.start()``):

        .. code:: python

            application = (
                Application.builder()
                .token(TOKEN)
                .persistence(persistence)
                .post_init(persistence.store_jobs)
                .build()
            )

        From then on, every job made with ``job_queue.run_once/run_repeating/run_daily/
        run_monthly/run_custom`` is a document of the ``jobs`` collection, written (acknowledged,
        retried) whenever it is added, runs or is removed. Stored jobs whose callback is found
        among the imported modules are scheduled again with their stored next run time; missed
        runs follow the job's ``misfire_grace_time`` and ``coalesce``. A job whose callback is not
        found is reported and not run, and its document is kept.

        Args:
            application (:class:`telegram.ext.Application`): The application; it needs a
                :class:`telegram.ext.JobQueue` (``python-telegram-bot[job-queue]``).

        Raises:
            :exc:`RuntimeError`: The application has no JobQueue, or it is already running.
            :class:`mongo_persistence.PersistenceConnectionError`: MongoDB cannot be used.
        """
        with warnings.catch_warnings():  # PTB warns when there is none: the error below says it
            warnings.simplefilter("ignore", PTBUserWarning)
            job_queue = application.job_queue
        if job_queue is None:
            raise RuntimeError(
                "store_jobs() needs the application's JobQueue: install "
                '"python-telegram-bot[job-queue]"'
            )
        from mongo_persistence._persistence.jobs import restore_jobs

        await self.store.ensure_ready()
        self._job_store = await restore_jobs(self, job_queue)

    # ================================================================ flush
    async def flush(self) -> None:
        """Waits for every write in flight and retries kept ones for :attr:`flush_timeout`.

        What still cannot be saved stays in the journal (its path is logged at ERROR level and
        kept in :attr:`last_recovery_file`); it is written at the next start. Then a client
        created from a URI is closed (waiting at most 1 s for it); a client handed in is left
        open. The whole call takes at most :attr:`flush_timeout` plus about 1.5 s, whatever the
        server does. The persistence stays usable: PTB may initialise the application again after
        a shutdown, and the next call opens a new client.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(self.flush_timeout, 0.0)
        job_store = self._job_store
        try:
            if job_store is not None:
                await asyncio.wait_for(job_store.stop_retries(), max(self.flush_timeout, 0.1))
            if self._handed_over:  # writes that read their document first
                await asyncio.wait(set(self._handed_over), timeout=self.flush_timeout)
            self.last_recovery_file = await self.store.flush(
                timeout=max(deadline - loop.time(), 0.0)
            )
        finally:
            if job_store is not None:
                job_store.resume_retries()
            await self.store.close()

    def health(self) -> Health:
        """What is not saved in MongoDB yet: for a ``/healthz`` endpoint or a metrics exporter.

        Example:
            .. code:: python

                health = persistence.health()
                if not health.ok:
                    print(health.pending, health.oldest_unsaved_age, health.last_error)

        Returns:
            :class:`mongo_persistence.Health`: Pending (kept) writes, the age of the oldest
            unsaved change, the journal's size, the last error, the outage's start.
        """
        return self.store.health()
