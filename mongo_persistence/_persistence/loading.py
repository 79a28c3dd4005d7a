"""Loading: documents become PTB's data; bad documents are raised or skipped; migrations run.

:class:`Loader` reads every user and chat at start-up (eager mode), ``bot_data``, the callback
data and the conversations, and decides what happens to a document that cannot be decoded
(``on_bad_document``). The documents it read are known to the tracker, so that the next write
sends only what changed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import bson

from mongo_persistence._codec.codec import FORMAT_VERSION, Codec, watching_interrupts
from mongo_persistence._codec.plain_bson import (
    DECODE_ERRORS,
    decode_plain,
    document_id,
    split_documents,
    undecodable,
)
from mongo_persistence._codec.upgrade import needs_upgrade
from mongo_persistence._errors import (
    DecodingError,
    EncodingError,
    MigrationError,
    PersistenceWriteError,
)
from mongo_persistence._persistence.settings import Settings
from mongo_persistence._persistence.shapes import (
    CDCData,
    ConversationDict,
    callback_data_from,
    conversation_key,
    decode_entity,
)
from mongo_persistence._storage.entity import EntityRef
from mongo_persistence._storage.fingerprints import shared_extra
from mongo_persistence._storage.store import MongoStore
from mongo_persistence._util.logs import get_logger

_LOGGER = get_logger(__name__)

SKIPPED: Final = object()
"""Stands for an entity whose document was skipped (``on_bad_document="skip"``)."""

_TRACKED_FIELDS: Final = ("attrs", "data_version", "expire_at")
"""The top-level fields beside ``data`` that every write of a document sets (with ``format``)."""
_READ_FIELDS: Final = {name: 1 for name in ("data", "format", *_TRACKED_FIELDS)}
"""What the eager load reads of each document (with ``_id``): not ``updated_at`` (a date to
decode, of no use here) nor other programs' fields."""
_CURRENT: Final = shared_extra({"format": FORMAT_VERSION})
"""The tracked fields of most documents: one dict for all of them."""
_EMPTY: Final[dict[str, Any]] = {}
"""The ``data`` of a document that has none."""


def _int_id(doc_id: Any) -> int | None:
    """The ``_id`` of a user's or chat's document as the id PTB uses, or :obj:`None`.

    An ``Int64`` is an id too; a bool or any other type is none.
    """
    if not isinstance(doc_id, int) or isinstance(doc_id, bool):
        return None
    return int(doc_id)


Save = Callable[[str, Any, Any, str], Awaitable[None]]
"""Writes one user's, chat's or the bot's data: ``save(kind, doc_id, value, label)``."""


class Loader:
    """Turns stored documents into PTB's data, for one persistence.

    Args:
        settings (:class:`~mongo_persistence._persistence.settings.Settings`): The options.
        codec (:class:`~mongo_persistence._codec.codec.Codec`): Decodes the values.
        store (:class:`~mongo_persistence._storage.store.MongoStore`): Reads the documents.
        bot (Callable[[], :class:`telegram.Bot` | :obj:`None`]): The bot PTB set, when decoding.
        save (Callable): Writes the data of an entity a migration changed.

    Attributes:
        bad (set[tuple[:obj:`str`, object]]): The (kind, ``_id``) of the documents skipped as
            bad: never overwritten.
        bad_documents (dict[:obj:`str`, :class:`mongo_persistence.DecodingError`]): Why, by label.
        migrated (set[tuple[:obj:`str`, object]]): Entities whose migrated data is written back
            by the loader that read them.
        loaded (dict[:obj:`str`, set[:obj:`int`]]): The user and chat ids whose documents were
            read (lazy mode loads each one once).
    """

    __slots__ = (
        "_bot",
        "_codec",
        "_save",
        "_settings",
        "_store",
        "bad",
        "bad_documents",
        "loaded",
        "migrated",
    )

    def __init__(
        self,
        settings: Settings,
        codec: Codec,
        store: MongoStore,
        *,
        bot: Callable[[], Any],
        save: Save,
    ) -> None:
        self._settings = settings
        self._codec = codec
        self._store = store
        self._bot = bot
        self._save = save
        self.bad: set[tuple[str, Any]] = set()
        self.bad_documents: dict[str, DecodingError] = {}
        self.migrated: set[tuple[str, Any]] = set()
        self.loaded: dict[str, set[int]] = {"user_data": set(), "chat_data": set()}

    # ------------------------------------------------------------------ one document
    def track(
        self, kind: str, doc: Any, *, document: bytes | None = None, plain: bool = False
    ) -> None:
        """Tells the tracker what a read document holds (the next write sends the changes).

        ``document``: the BSON of a document read as BSON whose ``data`` is a dict. ``plain``:
        it holds no tag (it was decoded by :func:`~mongo_persistence._codec.plain_bson.
        decode_plain`).
        """
        tracker = self._store.tracker
        if kind in self._settings.scalar_kinds:
            tracker.loaded(kind, doc["_id"], {"data": doc.get("data")})
            return
        # old values are tagged: a document holding no tag holds none
        if not plain and needs_upgrade(doc):  # values of an older format: rewritten whole
            tracker.forget(kind, doc["_id"])
            return
        # extra fields are tracked under "\x00"-prefixed keys; values of the current shape are of
        # the current format, whether the document says so or not
        fields: Mapping[str, Any] = _CURRENT
        if not doc.keys().isdisjoint(_TRACKED_FIELDS):
            fields = {**{k: doc[k] for k in _TRACKED_FIELDS if k in doc}, "format": FORMAT_VERSION}
        tracker.loaded(kind, doc["_id"], doc.get("data", {}), fields, document=document)

    def decode(
        self,
        doc: Any,
        kind: str,
        doc_id: Any,
        entity: str,
        *,
        copy: bool = True,
        plain: bool = False,
    ) -> Any:
        """Decodes an entity's document; with ``on_bad_document="skip"`` a bad one is skipped.

        Returns :data:`SKIPPED` for a skipped document: it is logged once and marked, so that
        it is never overwritten. ``copy=False``: the data may share the dicts and lists of
        :paramref:`doc` (a document read for this alone; never when a migration changes it).
        ``plain``: its ``data`` is decoded already (:func:`~mongo_persistence._codec.plain_bson.
        decode_plain`).
        """
        cls = self._settings.classes[kind]
        migrations = self._settings.migrations
        try:
            outdated = migrations.outdated(kind, doc)
            decoded = decode_entity(
                self._codec, doc, cls, entity, self._bot(), copy=copy or outdated, plain=plain
            )
            if outdated:
                decoded = migrations.apply(kind, doc, decoded, cls, entity)
                self.migrated.add((kind, doc_id))
            return decoded
        except DecodingError as exc:
            self.skip_bad(kind, doc_id, entity, exc)
            return SKIPPED

    async def find(self, ref: EntityRef) -> Any:
        """An entity's stored document, :obj:`None` when it has none.

        :data:`SKIPPED` for a document PyMongo cannot decode (a date past year 9999...) with
        ``on_bad_document="skip"``, raised otherwise: one bad document, as any other.
        """
        try:
            return await self._store.find_one(ref.collection, ref.doc_id)
        except DecodingError as exc:
            self.skip_bad(ref.collection, ref.doc_id, ref.label, exc)
            return SKIPPED

    def skip_bad(self, kind: str, doc_id: Any, entity: str, exc: DecodingError) -> None:
        """Re-raises, or (``on_bad_document="skip"``) logs once and marks the document bad."""
        if self._settings.on_bad_document == "raise" and not isinstance(exc, MigrationError):
            raise exc  # a migration that raises names its entity and stops nothing else
        self.bad.add((kind, doc_id))
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

    def forget_bad(self, ref: EntityRef) -> None:
        """Dropping an entity is the user's decision: its bad document is deleted too."""
        self.bad.discard((ref.collection, ref.doc_id))
        self.bad_documents.pop(ref.label, None)

    async def write_back(self, kind: str, doc_id: Any, data: Any, entity: str) -> None:
        """Writes an entity whose data a migration changed while it was loaded.

        A failure is logged (entity and reason only) and stops nothing: the migrated data is in
        memory, and the next write of the entity (or a retry of a kept write) stores it.
        """
        if (kind, doc_id) not in self.migrated:
            return
        self.migrated.discard((kind, doc_id))
        try:
            await self._save(kind, doc_id, data, entity)
        except (EncodingError, PersistenceWriteError) as exc:
            _LOGGER.error("Cannot write back the migrated %s: %s", entity, exc)

    # ------------------------------------------------------------------ whole kinds
    async def load_all(self, kind: str) -> dict[int, Any]:
        """Every user's or chat's data (eager mode), migrated ones written back together."""
        out: dict[int, Any] = {}
        # Read as BSON when it can be decoded without a walk (PyMongo's default codec options)
        as_bson = self._store.reads_plainly(kind) and kind not in self._settings.scalar_kinds
        options = self._store.collection(kind).codec_options
        # One watch for the loop (not a signal-handler swap per document); closing the cursor
        # on any error, a real Ctrl-C included.
        with watching_interrupts():
            if as_bson:
                read = self._store.iter_bson(kind, _READ_FIELDS)
                async with contextlib.aclosing(read) as batches:
                    async for batch in batches:
                        for document in split_documents(batch):
                            self._load_bson(out, kind, document, options)
            else:
                async with contextlib.aclosing(self._store.iter_documents(kind)) as docs:
                    async for doc in docs:
                        self._load_into(out, kind, doc)
        migrated = [(key, value) for key, value in out.items() if (kind, key) in self.migrated]
        if migrated:  # written back together: one bulk write per batch
            await asyncio.gather(
                *(
                    self.write_back(kind, key, value, EntityRef.of(kind, key).label)
                    for key, value in migrated
                )
            )
        return out

    def _load_bson(self, out: dict[int, Any], kind: str, document: bytes, options: Any) -> None:
        """Loads a document read as BSON: decoded in one call when it holds no tag."""
        doc = decode_plain(document)
        if doc is None or type(doc.get("data", _EMPTY)) is not dict:
            try:
                doc = bson.decode(document, codec_options=options)  # as the collection would
            except DECODE_ERRORS as exc:
                self._skip_undecodable(kind, document, exc)
                return
            whole = type(doc.get("data", _EMPTY)) is dict
            self._load_into(out, kind, doc, document=document if whole else None)
            return
        settings = self._settings
        if settings.classes[kind] is dict and not settings.migrations.outdated(kind, doc):
            # nothing to decode, nothing that can fail: the data is the decoded "data" field
            key = doc["_id"]
            if type(key) is int:
                out[key] = doc.get("data", {})
                self.track(kind, doc, document=document, plain=True)
                return
        self._load_into(out, kind, doc, plain=True, document=document)

    def _skip_undecodable(self, kind: str, document: bytes, exc: Exception) -> None:
        """A document PyMongo cannot decode (a date past year 9999...) fails alone."""
        doc_id = _int_id(document_id(document))
        if doc_id is None:
            _LOGGER.warning("Ignoring a %s document that cannot be decoded", kind)
            return
        label = EntityRef.of(kind, doc_id).label
        self.skip_bad(kind, doc_id, label, DecodingError(label, "", undecodable(exc)))

    def _load_into(
        self,
        out: dict[int, Any],
        kind: str,
        doc: Any,
        *,
        plain: bool = False,
        document: bytes | None = None,
    ) -> None:
        key = _int_id(doc["_id"])
        if key is None:
            _LOGGER.warning(
                "Ignoring a %s document whose _id is a %s, not an int",
                kind,
                type(doc["_id"]).__name__,
            )
            return
        # The document serves for this alone: the data shares its dicts and lists (or is its
        # plainly decoded data), and the tracker keeps BSON (encoded before the bot can change
        # anything, or the document's own).
        label = EntityRef.of(kind, key).label
        loaded = self.decode(doc, kind, key, label, copy=False, plain=plain)
        if loaded is not SKIPPED:
            out[key] = loaded
            self.track(kind, doc, document=document, plain=plain)

    async def bot_data(self) -> Any:
        """The stored ``bot_data``, or a new instance of its class."""
        ref = EntityRef.bot()
        cls = self._settings.classes["bot_data"]
        doc = await self.find(ref)
        if doc is None or doc is SKIPPED:
            return cls()
        loaded = self.decode(doc, ref.collection, ref.doc_id, ref.label)
        if loaded is SKIPPED:
            return cls()
        self.track(ref.collection, doc)
        await self.write_back(ref.collection, ref.doc_id, loaded, ref.label)
        return loaded

    async def callback_data(self) -> CDCData | None:
        """The stored callback data cache, or :obj:`None`."""
        ref = EntityRef.callback_data()
        doc = await self.find(ref)
        if doc is None or doc is SKIPPED:
            return None
        try:
            data = self._codec.decode(doc.get("data", {}), bot=self._bot(), entity=ref.label)
            cache = callback_data_from(data)
        except DecodingError as exc:
            self.skip_bad(ref.collection, ref.doc_id, ref.label, exc)
            return None
        self.track(ref.collection, doc)
        return cache

    async def conversations(self, name: str) -> ConversationDict:
        """The stored states of the conversation handler :paramref:`name`."""
        out: ConversationDict = {}
        async for doc in self._store.iter_documents("conversations", {"name": name}):
            try:
                key = conversation_key(self._codec, doc, f"conversations[{name!r}]")
                label = EntityRef.conversation(name, key).label
                if "state" not in doc:
                    raise DecodingError(label, "", "the document has no 'state' field")
                out[key] = self._codec.decode(doc["state"], bot=self._bot(), entity=label)
            except DecodingError as exc:
                self.skip_bad("conversations", doc.get("_id"), exc.entity, exc)
                continue
            self._store.tracker.loaded("conversations", doc["_id"], {"state": doc["state"]})
        return out
