"""The write side of MongoPersistence: the data PTB hands over, as the store's entries.

Which document fields a write sets, the data class check, the plain-value data classes, the
reads a lazy write needs first, and writes handed over so that a cancelled caller does not cancel
them. The encoding itself is the encoded-entity step (:mod:`mongo_persistence._storage.encode`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from pymongo.errors import ConnectionFailure

from mongo_persistence._errors import BadDocumentError, EncodingError
from mongo_persistence._persistence.loading import SKIPPED
from mongo_persistence._storage.encode import Encoder, document_fields, mergeable
from mongo_persistence._storage.entity import EntityRef
from mongo_persistence._util.errors import short_error
from mongo_persistence._util.logs import get_logger

if TYPE_CHECKING:
    from mongo_persistence._codec.codec import Codec
    from mongo_persistence._persistence.loading import Loader
    from mongo_persistence._persistence.settings import Settings
    from mongo_persistence._persistence.syncing import Syncer
    from mongo_persistence._storage.store import MongoStore
    from mongo_persistence._storage.tracker import Digests

_LOGGER = get_logger(__name__)


def _settled(task: asyncio.Future[None]) -> None:
    """Retrieves the outcome of a write whose caller may be gone (it was reported to it)."""
    if not task.cancelled():
        task.exception()


class Saver:
    """Writes users', chats' and the bot's data, callback data and conversation states.

    Args:
        settings (:class:`~mongo_persistence._persistence.settings.Settings`): The options.
        codec (:class:`~mongo_persistence._codec.codec.Codec`): The value codec.
        store (:class:`~mongo_persistence._storage.store.MongoStore`): Where entries go.
        loader (:class:`~mongo_persistence._persistence.loading.Loader`): What was loaded,
            the bad documents.
        bot (Callable[[], :class:`telegram.Bot` | :obj:`None`]): The persistence's bot.

    Attributes:
        syncer (:class:`~mongo_persistence._persistence.syncing.Syncer`): Reads a lazy entity
            before its first write (set once the syncer exists: it writes through this saver).
        handed_over (set[:class:`asyncio.Future`]): Writes that read their document first.
    """

    __slots__ = (
        "_bot",
        "_codec",
        "_encoder",
        "_fields",
        "_loader",
        "_settings",
        "_store",
        "handed_over",
        "syncer",
    )

    def __init__(
        self,
        settings: Settings,
        codec: Codec,
        store: MongoStore,
        loader: Loader,
        bot: Callable[[], Any],
    ) -> None:
        self._settings = settings
        self._codec = codec
        self._store = store
        self._loader = loader
        self._bot = bot
        self.syncer: Syncer | None = None
        self.handed_over: set[asyncio.Future[None]] = set()
        self._encoder: Encoder | None = None
        self._fields: dict[tuple[str, bool], Mapping[str, Any]] = {}

    def encoder(self) -> Encoder:
        """The encoded-entity step, with the bot of now and the server's size limit."""
        last = self._encoder
        bot, max_size = self._bot(), self._store.max_bson_size
        if last is None or last.bot is not bot or last.max_size != max_size:
            last = self._encoder = Encoder(self._codec, bot, max_size)
        return last

    def encode_entity(
        self, value: object, entity: str, *, copy: bool = True
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Encodes a top-level ``*_data`` object into its ``data`` field and extra fields."""
        data, extra = self.encoder().data_of(value, entity, copy=copy)
        return data, dict(extra)

    def digest(self, fields: dict[str, Any], entity: str, source: object = None) -> Digests:
        """The per-key fingerprints of encoded data."""
        return self.encoder().whole(("", None), entity, fields, source=source).digests or {}

    def document_fields(self, kind: str, *, partial: bool = False) -> Mapping[str, Any]:
        """The top-level fields every write of this kind sets beside the data."""
        fields = self._fields.get((kind, partial))
        if fields is not None:
            return fields
        expire_after = self._settings.expire_after.get(kind)
        fields = document_fields(
            version=self._settings.migrations.version(kind),
            expire_after=expire_after,
            partial=partial,
        )
        if expire_after is None:  # the same for every write (the options are fixed)
            self._fields[(kind, partial)] = fields
        return fields

    def check_not_bad(self, kind: str, doc_id: Any, label: str | None = None) -> None:
        """Refuses to write an entity whose stored document was skipped as bad."""
        if (kind, doc_id) in self._loader.bad:
            raise BadDocumentError(label or EntityRef.of(kind, doc_id).label)

    def save_ref(self, ref: EntityRef, value: object) -> Awaitable[None] | None:
        """:meth:`save` of an entity given by its reference (not kept while the caller waits)."""
        return self.save(ref.collection, ref.doc_id, value, ref.label)

    def save(self, kind: str, doc_id: Any, value: object, entity: str) -> Awaitable[None] | None:
        """Encodes and hands over one user's, chat's or the bot's data.

        A plain function (no coroutine per entity): what it returns is awaited by the caller.

        Returns:
            What to await for the write's answer (see
            :meth:`~mongo_persistence._storage.store.MongoStore.write`), or :obj:`None` when
            there is nothing to write nor to wait for.

        Raises:
            :class:`~mongo_persistence.EncodingError`: The value cannot be stored.
            :class:`~mongo_persistence.BadDocumentError`: Its stored document was skipped.
        """
        self.check_not_bad(kind, doc_id, entity)
        cls = self._settings.classes[kind]
        if not isinstance(value, cls):
            # What is written must load: the loader restores context_types' classes.
            raise EncodingError(
                entity,
                "",
                type(value).__qualname__,
                f"it is not a {cls.__qualname__} (context_types)",
            )
        if kind in self._settings.scalar_kinds:
            return self._save_scalar(kind, doc_id, value, entity)
        if self._needs_read_first(kind, doc_id, value):
            return self._hand_over(EntityRef.of(kind, doc_id), value)
        # Lazy mode, an entity not loaded: its keys are set onto a document never read.
        partial = self._unloaded(kind, doc_id) and not self._settings.refresh
        fields = self.document_fields(kind, partial=partial)
        if type(value) is dict and self._store.unchanged_value((kind, doc_id), value, fields):
            return None  # the plain value last found unchanged: nothing to encode nor to send
        # The tracker plans what is sent: a document it does not know (lazy mode, an entity
        # not loaded yet; eager mode, made by another program) gets the bot's keys set onto it.
        return self._store.submit(self.encoder().entity((kind, doc_id), entity, value, fields))

    def _unloaded(self, kind: str, doc_id: Any) -> bool:
        """Lazy mode, an entity not loaded yet."""
        loaded = self._loader.loaded.get(kind)
        return self._settings.lazy and loaded is not None and doc_id not in loaded

    def _needs_read_first(self, kind: str, doc_id: Any, value: object) -> bool:
        """Lazy mode, an entity never read nor written whose keys cannot be set one by one."""
        if self._settings.refresh or not self._unloaded(kind, doc_id):
            return False
        return self._store.tracker.known(kind, doc_id) is None and not mergeable(value)

    async def _hand_over(self, ref: EntityRef, value: object) -> None:
        """Reads, merges and writes; a cancelled caller does not cancel the read nor the write."""
        assert self.syncer is not None  # set up with the persistence
        task = asyncio.ensure_future(self.syncer.read_then_save(ref, value))
        self.handed_over.add(task)
        task.add_done_callback(self.handed_over.discard)
        task.add_done_callback(_settled)
        await asyncio.shield(task)

    async def _save_scalar(self, kind: str, doc_id: Any, value: object, entity: str) -> None:
        """Writes the data of a kind whose class holds a plain value (``int``, ``complex``...).

        The document is ``{_id, data: <value>}``, written whole. In lazy mode, an entity never
        loaded holds the class's default (such values cannot be changed in place): a stored
        value wins over it.
        """
        if self._unloaded(kind, doc_id):
            try:
                doc = await self._loader.find(EntityRef.of(kind, doc_id))
            except ConnectionFailure as exc:
                # The class's default cannot have changed: writing it now could replace a stored
                # value, skipping it loses nothing (the next write reads again).
                _LOGGER.warning("Cannot read %s before writing it (%s)", entity, short_error(exc))
                return
            if doc is SKIPPED:
                return  # skipped as bad: never overwritten
            self._loader.loaded[kind].add(doc_id)
            if doc is not None:
                self._loader.track(kind, doc)
                return
        encoder = self.encoder()
        fields = {"data": encoder.value(value, entity)}
        extra = self.document_fields(kind)
        await self._store.write(
            encoder.whole((kind, doc_id), entity, fields, extra, source={"data": value})
        )

    async def save_encoded(
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
        self.check_not_bad(kind, doc_id, entity)
        fields = {**(extra or {}), **self.document_fields(kind, partial=partial)}
        entry = self.encoder().encoded((kind, doc_id), entity, data, fields, source=source)
        await self._store.write(entry)
