"""The :class:`MongoPersistence` class: PTB's persistence contract, delegated by layer.

Construction and options: :mod:`~mongo_persistence._persistence.settings`; loading and bad
documents: :mod:`~mongo_persistence._persistence.loading`; lazy loading and ``refresh``:
:mod:`~mongo_persistence._persistence.syncing`; the shapes PTB hands over:
:mod:`~mongo_persistence._persistence.shapes`; jobs: :mod:`~mongo_persistence._persistence.jobs`;
all I/O: :mod:`~mongo_persistence._storage.store`.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pymongo.errors import ConnectionFailure
from pymongo.write_concern import WriteConcern
from telegram.ext import BasePersistence, ContextTypes, PersistenceInput
from telegram.warnings import PTBUserWarning

from mongo_persistence._codec.codec import Codec, TypeCodec
from mongo_persistence._errors import BadDocumentError, EncodingError
from mongo_persistence._persistence.loading import Loader
from mongo_persistence._persistence.settings import Settings, open_store
from mongo_persistence._persistence.shapes import CDCData, ConversationDict, callback_data_document
from mongo_persistence._persistence.syncing import Syncer
from mongo_persistence._storage.encode import Encoder, document_fields, mergeable
from mongo_persistence._storage.entity import ConversationKey, EntityRef
from mongo_persistence._storage.health import Health
from mongo_persistence._storage.tracker import (
    Digests,
    Entry,
)
from mongo_persistence._util.errors import short_error
from mongo_persistence._util.logs import get_logger

if TYPE_CHECKING:
    from telegram.ext import Application

    from mongo_persistence._persistence.jobs import MongoJobStore


_LOGGER = get_logger(__name__)

UD = TypeVar("UD")
CD = TypeVar("CD")
BD = TypeVar("BD")
# from_uri is a classmethod: its result's data classes are its own type variables
_UD = TypeVar("_UD")
_CD = TypeVar("_CD")
_BD = TypeVar("_BD")


def _settled(task: asyncio.Future[None]) -> None:
    """Retrieves the outcome of a write whose caller may be gone (it was reported to it)."""
    if not task.cancelled():
        task.exception()


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
            ``"ptb_persistence"``. Ignored when :paramref:`target` is a database. 1 to 63
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
        codec: The value codec (the classes of :paramref:`codecs` and the built-in ones).
        database: The async database object holding the collections.
        namespace (:obj:`str` | :obj:`None`): The prefix of the collection names.
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
        "_loader",
        "_migrated",
        "_migrations",
        "_scalar_kinds",
        "_settings",
        "_syncer",
        "codec",
        "context_types",
        "last_recovery_file",
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
        self.context_types: ContextTypes[Any, UD, CD, BD] = context_types or ContextTypes()  # type: ignore[assignment]
        types = self.context_types
        self._settings = settings = Settings(
            classes={
                "user_data": types.user_data,
                "chat_data": types.chat_data,
                "bot_data": types.bot_data,
            },
            namespace=namespace,
            lazy=lazy,
            refresh=refresh,
            flush_timeout=flush_timeout,
            recovery_dir=recovery_dir,
            on_bad_document=on_bad_document,
            migrations=migrations,
            expire_after=expire_after,
        )
        self.codec = Codec(codecs, pickle_fallback=pickle_fallback)
        self.store = open_store(
            settings,
            target,
            database=database,
            client_kwargs=client_kwargs,
            write_concern=write_concern,
            write_timeout=write_timeout,
            bulk_write=bulk_write,
            pickle_fallback=pickle_fallback,
        )
        self.last_recovery_file: Path | None = None
        self._job_store: MongoJobStore | None = None
        self._handed_over: set[asyncio.Future[None]] = set()
        self._set_up_layers()

    def _set_up_layers(self) -> None:
        """The loader and the syncer, and the views of their state the write path reads."""
        settings = self._settings
        loader = Loader(settings, self.codec, self.store, bot=self._bot, save=self._save)
        self._loader = loader
        self._syncer = Syncer(
            settings,
            self.store,
            loader,
            codec=self.codec,
            bot=self._bot,
            encode=self._encode_entity,
            digest=self._digest,
            save_encoded=self._save_encoded,
        )
        self._bad = loader.bad
        self._loaded = loader.loaded
        self._migrated = loader.migrated
        self._classes = settings.classes
        self._scalar_kinds = settings.scalar_kinds
        self._migrations = settings.migrations

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
                else ``"ptb_persistence"``: the same rule as the constructor's.
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

    # ================================================================ options
    @property
    def database(self) -> Any:
        """The async database object holding the collections."""
        return self.store.database

    @property
    def namespace(self) -> str | None:
        """:obj:`str` | :obj:`None`: The prefix of the collection names, if any."""
        return self._settings.namespace

    @property
    def lazy(self) -> bool:
        """:obj:`bool`: Whether user and chat data are loaded lazily."""
        return self._settings.lazy

    @property
    def refresh(self) -> bool:
        """:obj:`bool`: Whether entities are re-read on every update."""
        return self._settings.refresh

    @property
    def flush_timeout(self) -> float:
        """:obj:`float`: Seconds :meth:`flush` retries."""
        return self._settings.flush_timeout

    @property
    def recovery_dir(self) -> Path | None:
        """:class:`pathlib.Path` | :obj:`None`: Where the journal of kept writes is."""
        return self._settings.recovery_dir

    @property
    def on_bad_document(self) -> str:
        """:obj:`str`: ``"raise"`` or ``"skip"``."""
        return self._settings.on_bad_document

    @property
    def expire_after(self) -> dict[str, dtm.timedelta]:
        """dict[:obj:`str`, :class:`datetime.timedelta`]: The retention by collection kind."""
        return self._settings.expire_after

    @property
    def bad_documents(self) -> dict[str, Any]:
        """dict[:obj:`str`, :class:`mongo_persistence.DecodingError`]: The skipped entities."""
        return self._loader.bad_documents

    def _bot(self) -> Any:
        return self.bot

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
        await self._syncer.read_then_save(EntityRef.of(kind, doc_id), value)

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

    def _track_loaded(self, kind: str, doc: Any) -> None:
        self._loader.track(kind, doc)

    # ================================================================ get_*
    async def get_user_data(self) -> dict[int, UD]:
        """Returns the stored ``user_data`` of every user (nothing with :attr:`lazy`).

        Returns:
            dict[:obj:`int`, UD]: The restored user data by user id.
        """
        await self.store.ensure_ready()
        return {} if self.lazy else await self._loader.load_all("user_data")

    async def get_chat_data(self) -> dict[int, CD]:
        """Returns the stored ``chat_data`` of every chat (nothing with :attr:`lazy`).

        Returns:
            dict[:obj:`int`, CD]: The restored chat data by chat id.
        """
        await self.store.ensure_ready()
        return {} if self.lazy else await self._loader.load_all("chat_data")

    async def get_bot_data(self) -> BD:
        """Returns the stored ``bot_data``, or a new instance of ``context_types.bot_data``.

        Returns:
            BD: The restored bot data.
        """
        return await self._loader.bot_data()  # type: ignore[no-any-return]

    async def get_callback_data(self) -> CDCData | None:
        """Returns the stored callback data cache (keyboards and callback queries).

        Returns:
            tuple[list[tuple[:obj:`str`, :obj:`float`, dict[:obj:`str`, :class:`object`]]], \
                dict[:obj:`str`, :obj:`str`]] | :obj:`None`: The cache, or :obj:`None`.
        """
        return await self._loader.callback_data()

    async def get_conversations(self, name: str) -> ConversationDict:
        """Returns the stored states of the conversation handler :paramref:`name`.

        Args:
            name (:obj:`str`): The handler's name.

        Returns:
            dict[tuple[:obj:`int` | :obj:`str`, ...], :class:`object`]: The states by key.
        """
        return await self._loader.conversations(name)

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
        ref = EntityRef.user(user_id)
        await self._save(ref.collection, ref.doc_id, data, ref.label)

    async def update_chat_data(self, chat_id: int, data: CD) -> None:
        """Writes the ``chat_data`` of one chat; returns once MongoDB acknowledged it.

        Args:
            chat_id (:obj:`int`): The chat.
            data (CD): Its data.

        Raises:
            :class:`mongo_persistence.EncodingError`: A value cannot be stored.
            :class:`mongo_persistence.PersistenceWriteError`: MongoDB did not acknowledge it.
        """
        ref = EntityRef.chat(chat_id)
        await self._save(ref.collection, ref.doc_id, data, ref.label)

    async def update_bot_data(self, data: BD) -> None:
        """Writes ``bot_data`` (nothing is sent when it did not change).

        Args:
            data (BD): The bot data.
        """
        ref = EntityRef.bot()
        await self._save(ref.collection, ref.doc_id, data, ref.label)

    async def update_callback_data(self, data: CDCData) -> None:
        """Writes the callback data cache (nothing is sent when it did not change).

        Args:
            data: ``(keyboards, queries)`` as handed over by PTB.
        """
        ref = EntityRef.callback_data()
        if (ref.collection, ref.doc_id) in self._bad:
            raise BadDocumentError(ref.label)
        fields = self._document_fields(ref.collection)
        structure = callback_data_document(data)
        entry = self._encoder().callback_data((ref.collection, ref.doc_id), structure, fields)
        await self.store.write(entry)

    async def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> None:
        """Writes the state of one conversation; :obj:`None` deletes its document.

        Args:
            name (:obj:`str`): The handler's name.
            key (tuple[:obj:`int` | :obj:`str`, ...]): The conversation key.
            new_state (:class:`object`): The new state, or :obj:`None` when it ended.
        """
        ref = EntityRef.conversation(name, key)
        if (ref.collection, ref.doc_id) in self._bad:
            raise BadDocumentError(ref.label)
        if new_state is None:
            await self.store.write(Entry(ref.collection, ref.doc_id, ref.label, None, None))
            return
        fields = self._document_fields(ref.collection)
        entry = self._encoder().conversation(
            (ref.collection, ref.doc_id), ref.label, (name, key), new_state, fields
        )
        await self.store.write(entry)

    # ================================================================ drop_*
    async def drop_chat_data(self, chat_id: int) -> None:
        """Deletes the document of one chat.

        Args:
            chat_id (:obj:`int`): The chat.

        Raises:
            :class:`mongo_persistence.PersistenceWriteError`: With :attr:`lazy`, the chat was never
                loaded and its stored data would be lost (the document is kept).
        """
        ref = EntityRef.chat(chat_id)
        if self.lazy and chat_id not in self._loaded["chat_data"]:
            await self._syncer.refuse_blind_drop(ref)
        await self._drop(ref)

    async def drop_user_data(self, user_id: int) -> None:
        """Deletes the document of one user.

        Args:
            user_id (:obj:`int`): The user.
        """
        await self._drop(EntityRef.user(user_id))

    async def _drop(self, ref: EntityRef) -> None:
        self._loaded[ref.collection].discard(ref.doc_id)
        self._loader.forget_bad(ref)
        await self.store.write(Entry(ref.collection, ref.doc_id, ref.label, None, None))

    # ================================================================ refresh_*
    async def refresh_user_data(self, user_id: int, user_data: UD) -> None:
        """Loads (:attr:`lazy`) or re-reads (:attr:`refresh`) one user's data, in place.

        .. seealso:: :meth:`telegram.ext.BasePersistence.refresh_user_data`

        Args:
            user_id (:obj:`int`): The user.
            user_data (UD): The object to fill.
        """
        if self.lazy or self.refresh:
            await self._syncer.refresh(EntityRef.user(user_id), user_data)

    async def refresh_chat_data(self, chat_id: int, chat_data: CD) -> None:
        """Loads (:attr:`lazy`) or re-reads (:attr:`refresh`) one chat's data, in place.

        .. seealso:: :meth:`telegram.ext.BasePersistence.refresh_chat_data`

        Args:
            chat_id (:obj:`int`): The chat.
            chat_data (CD): The object to fill.
        """
        if self.lazy or self.refresh:
            await self._syncer.refresh(EntityRef.chat(chat_id), chat_data)

    async def refresh_bot_data(self, bot_data: BD) -> None:
        """Re-reads ``bot_data`` in place when :attr:`refresh` is on.

        .. seealso:: :meth:`telegram.ext.BasePersistence.refresh_bot_data`

        Args:
            bot_data (BD): The object to fill.
        """
        if self.refresh:
            await self._syncer.refresh(EntityRef.bot(), bot_data)

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
        from mongo_persistence._persistence.job_restore import restore_jobs

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
