"""Refreshing: lazy loading of one entity, re-reading it (``refresh``), reads before writes.

In lazy mode, an entity is read when the first update for it arrives (PTB's ``refresh_*``), and
what the bot holds wins over what is stored. With ``refresh``, every update re-reads its entity:
the bot's unsaved changes are written first (only those keys), everything else comes from
MongoDB. A write or a drop of an entity never read reads it first where blindly setting or
deleting it could lose stored data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pymongo.errors import ConnectionFailure

from mongo_persistence._codec.codec import TAG
from mongo_persistence._codec.upgrade import needs_upgrade, upgrade_value
from mongo_persistence._errors import BadDocumentError, DecodingError, PersistenceWriteError
from mongo_persistence._persistence.loading import SKIPPED, Loader
from mongo_persistence._persistence.settings import Settings
from mongo_persistence._persistence.shapes import decode_entity, fill_in_place, new_instance
from mongo_persistence._storage.entity import EntityRef
from mongo_persistence._storage.store import MongoStore
from mongo_persistence._storage.tracker import Digests
from mongo_persistence._util.errors import short_error
from mongo_persistence._util.logs import get_logger

if TYPE_CHECKING:
    from mongo_persistence._persistence.saving import Saver

_LOGGER = get_logger(__name__)


def _changes(local: Digests, known: Digests | None) -> tuple[list[str], list[str]]:
    """The keys the bot set or changed, and those it removed, since the last read or write."""
    if known is None:  # never read nor written: every key the bot holds is its change
        return list(local), []
    return [k for k, v in local.items() if known.get(k) != v], [k for k in known if k not in local]


def _merge(
    stored: dict[str, Any], local: dict[str, Any], changes: tuple[list[str], list[str]]
) -> dict[str, Any]:
    merged = dict(stored)
    merged.update((k, local[k]) for k in changes[0])
    for key in changes[1]:
        merged.pop(key, None)
    return merged


class Syncer:
    """Lazy loading and re-reading of one entity at a time (see the module).

    Args:
        settings (:class:`~mongo_persistence._persistence.settings.Settings`): The options.
        store (:class:`~mongo_persistence._storage.store.MongoStore`): Reads the documents.
        loader (:class:`~mongo_persistence._persistence.loading.Loader`): Decodes and tracks.
        codec: The value codec (decodes the merged data).
        bot (Callable): The bot PTB set.
        saver (:class:`~mongo_persistence._persistence.saving.Saver`): Encodes and writes.
    """

    __slots__ = ("_bot", "_codec", "_loader", "_saver", "_settings", "_store")

    def __init__(
        self,
        settings: Settings,
        store: MongoStore,
        loader: Loader,
        *,
        codec: Any,
        bot: Callable[[], Any],
        saver: Saver,
    ) -> None:
        self._settings = settings
        self._store = store
        self._loader = loader
        self._codec = codec
        self._bot = bot
        self._saver = saver

    # ------------------------------------------------------------------ refresh_*
    async def refresh(self, ref: EntityRef, target: Any) -> None:
        """Loads (lazy mode) or re-reads (``refresh``) one entity into :paramref:`target`.

        MongoDB unreachable: the handlers go on with the data in memory (logged).
        """
        kind, doc_id = ref.collection, ref.doc_id
        if kind in self._settings.scalar_kinds or (kind, doc_id) in self._loader.bad:
            return  # a plain value cannot be updated in place; a skipped one is left alone
        loaded = self._loader.loaded.get(kind)
        try:
            if self._settings.refresh:
                await self.sync(ref, target)
            elif loaded is not None and doc_id not in loaded:
                await self._load_one(ref, target)
        except PersistenceWriteError as exc:
            if not exc.kept:
                raise
            _LOGGER.warning("Cannot refresh %s (%s); using the data in memory", ref, exc.reason)
            return
        except ConnectionFailure as exc:
            # Nothing is lost: changes are written (or kept for a retry) by the next persistence
            # run, and an entity not loaded yet is merged onto its stored document and loaded
            # next time.
            _LOGGER.warning(
                "Cannot refresh %s from MongoDB (%s); using the data in memory",
                ref,
                short_error(exc),
            )
            return
        if loaded is not None:
            loaded.add(doc_id)

    async def _load_one(self, ref: EntityRef, target: Any) -> None:
        """Lazy mode: fills an entity not loaded yet with its stored keys (PTB's keys win)."""
        kind, doc_id = ref.collection, ref.doc_id
        doc = await self._loader.find(ref)
        if doc is None or doc is SKIPPED:
            return
        loaded_data = self._loader.decode(doc, kind, doc_id, ref.label)
        if loaded_data is SKIPPED:
            return
        fill_in_place(target, loaded_data, replace=False)
        self._loader.track(kind, doc)
        if (kind, doc_id) in self._loader.migrated:
            self._loader.loaded[kind].add(doc_id)  # written whole, not merged
            await self._loader.write_back(kind, doc_id, target, ref.label)

    # ------------------------------------------------------------------ refresh=True
    async def sync(self, ref: EntityRef, target: Any) -> None:
        """Merges the bot's unsaved changes and the database's document, both ways.

        The bot's changes since the last write or read (keys set, changed or removed) are written
        (only those keys); everything else comes from the database, so edits and deletions made
        by other programs replace what the bot holds in memory. One read, plus one write only
        when the bot changed something.
        """
        kind, doc_id, label = ref.collection, ref.doc_id, ref.label
        local, extra = self._saver.encode_entity(target, label)
        known = self._store.tracker.known(kind, doc_id)
        changes = _changes(self._saver.digest(local, label, target), known)
        read = await self._read_stored(ref)
        if read is None:
            return  # found bad now: left as it is, the bot's changes are not merged into it
        doc, stored, migrate = read
        extra_changed = bool(extra) and (doc is None or doc.get("attrs") != extra.get("attrs"))
        changed = bool(changes[0] or changes[1] or extra_changed or migrate)
        if not changed:
            merged = stored
        elif TAG in local or TAG in stored or (known is not None and TAG in known):
            merged = local  # not a mapping of plain keys on both sides: the bot's version wins
        else:
            merged = _merge(stored, local, changes)
        self._track_read(kind, doc_id, doc, known)
        if changed:
            await self._saver.save_encoded(kind, doc_id, merged, label, extra)
        elif doc is None:
            fill_in_place(target, new_instance(self._settings.classes[kind]), replace=True)
            return
        attrs = extra or ({"attrs": doc["attrs"]} if doc is not None and "attrs" in doc else {})
        self._fill_fresh(ref, target, {"data": merged, **attrs})

    def _fill_fresh(self, ref: EntityRef, target: Any, doc: dict[str, Any]) -> None:
        cls = self._settings.classes[ref.collection]
        fresh = decode_entity(self._codec, doc, cls, ref.label, self._bot())
        fill_in_place(target, fresh, replace=True)

    def _track_read(self, kind: str, doc_id: Any, doc: Any, known: Digests | None) -> None:
        tracker = self._store.tracker
        if doc is not None:
            self._loader.track(kind, doc)
        elif known is not None:  # it existed at our last read or write: deleted elsewhere
            tracker.deleted_elsewhere(kind, doc_id)
        else:
            tracker.forget(kind, doc_id)

    async def _read_stored(self, ref: EntityRef) -> tuple[Any, dict[str, Any], bool] | None:
        """The document, its ``data`` (upgraded, migrated) and whether it was migrated.

        :obj:`None` when the document is skipped as bad.
        """
        kind, doc_id, label = ref.collection, ref.doc_id, ref.label
        doc = await self._loader.find(ref)
        if doc is SKIPPED:
            return None
        if (
            doc is not None
            and self._settings.on_bad_document == "skip"
            and self._loader.decode(doc, kind, doc_id, label) is SKIPPED
        ):
            return None
        stored = doc.get("data", {}) if doc is not None else {}
        if not isinstance(stored, dict):
            raise DecodingError(label, "", "its 'data' field is not a document")
        if doc is None:
            return doc, stored, False
        if needs_upgrade(doc):
            try:  # an older format: what is merged is rewritten
                stored = upgrade_value(stored)
            except DecodingError as exc:
                raise DecodingError(label, exc.path, exc.reason) from None
        if not self._settings.migrations.outdated(kind, doc):
            return doc, stored, False
        migrated = self._loader.decode({**doc, "data": stored}, kind, doc_id, label)
        self._loader.migrated.discard((kind, doc_id))
        if migrated is SKIPPED:
            return None
        return doc, self._saver.encode_entity(migrated, label)[0], True

    # ------------------------------------------------------------------ reads before writes
    async def read_then_save(self, ref: EntityRef, value: object) -> None:
        """Reads what is stored and merges it under what PTB holds, then writes it.

        When MongoDB cannot be read, the bot's keys are written (set onto the stored document).
        """
        kind, doc_id, label = ref.collection, ref.doc_id, ref.label
        try:
            doc = await self._loader.find(ref)
        except ConnectionFailure as exc:
            _LOGGER.warning("Cannot read %s before writing it (%s)", label, short_error(exc))
            doc = None
        if doc is SKIPPED:
            raise BadDocumentError(label)
        if doc is not None:
            stored = self._loader.decode(doc, kind, doc_id, label)
            if stored is SKIPPED:
                raise BadDocumentError(label)
            self._loader.migrated.discard((kind, doc_id))  # written whole just below
            fill_in_place(value, stored, replace=False)
            self._loader.track(kind, doc)
        data, extra = self._saver.encode_entity(value, label, copy=False)
        await self._saver.save_encoded(kind, doc_id, data, label, extra, source=value)

    async def refuse_blind_drop(self, ref: EntityRef) -> None:
        """Lazy mode: a chat never loaded is dropped only when nothing of it is stored.

        ``application.migrate_chat_data()`` moves the data PTB holds in memory to the new chat and
        drops the old one: for a chat not loaded yet, that is nothing, and deleting its document
        would lose the stored data. Such a drop is refused (the document is kept), and so is one
        whose document cannot be read to tell.

        Raises:
            :class:`mongo_persistence.PersistenceWriteError`: The drop is refused.
        """
        try:
            doc = await self._loader.find(ref)
        except ConnectionFailure as exc:
            reason = "lazy mode: this chat was never loaded and MongoDB cannot be read to tell "
            reason += f"whether dropping it would lose stored data ({short_error(exc)})"
        else:
            if doc is None or (doc is not SKIPPED and doc.get("data") in ({}, None)):
                return
            reason = "lazy mode: this chat was never loaded, so dropping or migrating it would "
            reason += "lose its stored data"
        raise PersistenceWriteError(
            ref.label,
            f"{reason}; the document is kept. Load it first: await application.persistence"
            ".refresh_chat_data(chat_id, application.chat_data[chat_id])",
            kept=False,
        )
