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

from pymongo.write_concern import WriteConcern
from telegram.ext import ContextTypes, PersistenceInput
from telegram.warnings import PTBUserWarning

from mongo_persistence._codec.codec import Codec, TypeCodec
from mongo_persistence._persistence.contract import PersistenceContract
from mongo_persistence._persistence.loading import Loader
from mongo_persistence._persistence.saving import Saver
from mongo_persistence._persistence.settings import Settings, open_store
from mongo_persistence._persistence.syncing import Syncer
from mongo_persistence._storage.health import Health
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


class MongoPersistence(PersistenceContract[UD, CD, BD]):
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
            one document) may take, server selection included; a batch gets that for every
            1000 documents it holds. A write without an answer by then is kept in the journal and
            retried with the next persistence run. Defaults to ``2``.
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
        "_job_store",
        "_loader",
        "_saver",
        "_settings",
        "_store",
        "_syncer",
        "codec",
        "context_types",
        "last_recovery_file",
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
        self._store = open_store(
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
        self._set_up_layers()

    def _set_up_layers(self) -> None:
        """The loader, the saver and the syncer (which reads and writes through both)."""
        settings = self._settings
        save = self._save  # the loader writes back what a migration changed
        self._loader = loader = Loader(settings, self.codec, self._store, bot=self._bot, save=save)
        self._saver = saver = Saver(settings, self.codec, self._store, loader, bot=self._bot)
        self._syncer = saver.syncer = Syncer(
            settings,
            self._store,
            loader,
            codec=self.codec,
            bot=self._bot,
            saver=saver,
        )

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
        return self._store.database

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

    async def _save(self, kind: str, doc_id: Any, value: object, entity: str) -> None:
        answer = self._saver.save(kind, doc_id, value, entity)
        if answer is not None:
            await answer

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

        await self._store.ensure_ready()
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
            if self._saver.handed_over:  # writes that read their document first
                await asyncio.wait(set(self._saver.handed_over), timeout=self.flush_timeout)
            self.last_recovery_file = await self._store.flush(
                timeout=max(deadline - loop.time(), 0.0)
            )
        finally:
            if job_store is not None:
                job_store.resume_retries()
            await self._store.close()

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
        return self._store.health()
