"""PTB's persistence contract (``get_*``, ``update_*``, ``drop_*``, ``refresh_*``) on the layers.

:class:`~mongo_persistence.MongoPersistence` sets the layers up (options, store, loader, syncer,
saver) and inherits these methods; each maps one of PTB's calls onto them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from telegram.ext import BasePersistence

from mongo_persistence._persistence.shapes import CDCData, ConversationDict, callback_data_document
from mongo_persistence._storage.entity import ConversationKey, EntityRef
from mongo_persistence._storage.tracker import Entry

if TYPE_CHECKING:
    from mongo_persistence._persistence.loading import Loader
    from mongo_persistence._persistence.saving import Saver
    from mongo_persistence._persistence.settings import Settings
    from mongo_persistence._persistence.syncing import Syncer
    from mongo_persistence._storage.store import MongoStore

UD = TypeVar("UD")
CD = TypeVar("CD")
BD = TypeVar("BD")


class PersistenceContract(BasePersistence[UD, CD, BD]):
    """The methods PTB's :class:`~telegram.ext.Application` calls, on the persistence's layers.

    Not to be used on its own: :class:`~mongo_persistence.MongoPersistence` is the persistence.
    """

    __slots__ = ()

    # Set up by MongoPersistence.__init__ (its slots):
    _store: MongoStore
    _settings: Settings
    _loader: Loader
    _syncer: Syncer
    _saver: Saver

    # ================================================================ get_*
    async def get_user_data(self) -> dict[int, UD]:
        """Returns the stored ``user_data`` of every user (nothing with :attr:`lazy`).

        Returns:
            dict[:obj:`int`, UD]: The restored user data by user id.
        """
        await self._store.ensure_ready()
        return {} if self._settings.lazy else await self._loader.load_all("user_data")

    async def get_chat_data(self) -> dict[int, CD]:
        """Returns the stored ``chat_data`` of every chat (nothing with :attr:`lazy`).

        Returns:
            dict[:obj:`int`, CD]: The restored chat data by chat id.
        """
        await self._store.ensure_ready()
        return {} if self._settings.lazy else await self._loader.load_all("chat_data")

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
        answer = self._saver.save_ref(EntityRef.user(user_id), data)
        if answer is not None:
            await answer

    async def update_chat_data(self, chat_id: int, data: CD) -> None:
        """Writes the ``chat_data`` of one chat; returns once MongoDB acknowledged it.

        Args:
            chat_id (:obj:`int`): The chat.
            data (CD): Its data.

        Raises:
            :class:`mongo_persistence.EncodingError`: A value cannot be stored.
            :class:`mongo_persistence.PersistenceWriteError`: MongoDB did not acknowledge it.
        """
        answer = self._saver.save_ref(EntityRef.chat(chat_id), data)
        if answer is not None:
            await answer

    async def update_bot_data(self, data: BD) -> None:
        """Writes ``bot_data`` (nothing is sent when it did not change).

        Args:
            data (BD): The bot data.
        """
        answer = self._saver.save_ref(EntityRef.bot(), data)
        if answer is not None:
            await answer

    async def update_callback_data(self, data: CDCData) -> None:
        """Writes the callback data cache (nothing is sent when it did not change).

        Args:
            data: ``(keyboards, queries)`` as handed over by PTB.
        """
        ref = EntityRef.callback_data()
        self._saver.check_not_bad(ref.collection, ref.doc_id, ref.label)
        fields = self._saver.document_fields(ref.collection)
        structure = callback_data_document(data)
        entry = self._saver.encoder().callback_data((ref.collection, ref.doc_id), structure, fields)
        await self._store.write(entry)

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
        self._saver.check_not_bad(ref.collection, ref.doc_id, ref.label)
        if new_state is None:
            await self._store.write(Entry(ref.collection, ref.doc_id, ref.label, None, None))
            return
        fields = self._saver.document_fields(ref.collection)
        entry = self._saver.encoder().conversation(
            (ref.collection, ref.doc_id), ref.label, (name, key), new_state, fields
        )
        await self._store.write(entry)

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
        if self._settings.lazy and chat_id not in self._loader.loaded["chat_data"]:
            await self._syncer.refuse_blind_drop(ref)
        await self._drop(ref)

    async def drop_user_data(self, user_id: int) -> None:
        """Deletes the document of one user.

        Args:
            user_id (:obj:`int`): The user.
        """
        await self._drop(EntityRef.user(user_id))

    async def _drop(self, ref: EntityRef) -> None:
        self._loader.loaded[ref.collection].discard(ref.doc_id)
        self._loader.forget_bad(ref)
        await self._store.write(Entry(ref.collection, ref.doc_id, ref.label, None, None))

    # ================================================================ refresh_*
    async def refresh_user_data(self, user_id: int, user_data: UD) -> None:
        """Loads (:attr:`lazy`) or re-reads (:attr:`refresh`) one user's data, in place.

        .. seealso:: :meth:`telegram.ext.BasePersistence.refresh_user_data`

        Args:
            user_id (:obj:`int`): The user.
            user_data (UD): The object to fill.
        """
        if self._settings.lazy or self._settings.refresh:
            await self._syncer.refresh(EntityRef.user(user_id), user_data)

    async def refresh_chat_data(self, chat_id: int, chat_data: CD) -> None:
        """Loads (:attr:`lazy`) or re-reads (:attr:`refresh`) one chat's data, in place.

        .. seealso:: :meth:`telegram.ext.BasePersistence.refresh_chat_data`

        Args:
            chat_id (:obj:`int`): The chat.
            chat_data (CD): The object to fill.
        """
        if self._settings.lazy or self._settings.refresh:
            await self._syncer.refresh(EntityRef.chat(chat_id), chat_data)

    async def refresh_bot_data(self, bot_data: BD) -> None:
        """Re-reads ``bot_data`` in place when :attr:`refresh` is on.

        .. seealso:: :meth:`telegram.ext.BasePersistence.refresh_bot_data`

        Args:
            bot_data (BD): The object to fill.
        """
        if self._settings.refresh:
            await self._syncer.refresh(EntityRef.bot(), bot_data)
