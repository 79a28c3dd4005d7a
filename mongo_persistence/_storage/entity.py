"""What is stored: the kinds of data and their collections, and the identity of one entity.

One table (:data:`KIND_TABLE`) says which kinds of data exist and what each one supports; the
tuples and mappings that the other modules use (:data:`COLLECTIONS`, :data:`DATA_KINDS`,
:data:`EXPIRE_KINDS`, :data:`MIGRATABLE_KINDS`) are views of it. :class:`EntityRef` is the
identity of one entity (its collection, its ``_id`` and the label that names it in logs and
errors), built in one place for every kind, so that an entity is named alike when it is read,
written, dropped, reported or exported. No I/O here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, TypeAlias

ConversationKey: TypeAlias = tuple[int | str, ...]
"""The key of a conversation: ``(chat_id, user_id)``, or fewer, per the handler's settings."""


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of stored data: a collection (prefixed by the namespace) and what it supports.

    Attributes:
        collection (:obj:`str`): The collection's name, without the namespace.
        formatted (:obj:`bool`): Its documents carry the codec's ``format`` (all but jobs).
        expire_key (:obj:`str` | :obj:`None`): Its key in ``expire_after`` (``"users"``...),
            :obj:`None` when it has no retention.
        migratable (:obj:`bool`): Whether the bot's own migrations apply to it.
    """

    collection: str
    formatted: bool = True
    expire_key: str | None = None
    migratable: bool = False


KIND_TABLE: Final = (
    Kind("user_data", expire_key="users", migratable=True),
    Kind("chat_data", expire_key="chats", migratable=True),
    Kind("bot_data", migratable=True),
    Kind("conversations", expire_key="conversations"),
    Kind("callback_data"),
    Kind("jobs", formatted=False),
)
"""Every kind of stored data, in the order commands list them."""

COLLECTIONS: Final = tuple(kind.collection for kind in KIND_TABLE)
"""The collection names (without the namespace)."""
DATA_KINDS: Final = tuple(kind.collection for kind in KIND_TABLE if kind.formatted)
"""The collections whose documents carry a ``format`` (the data PTB hands over; not jobs)."""
EXPIRE_KINDS: Final = {
    kind.expire_key: kind.collection for kind in KIND_TABLE if kind.expire_key is not None
}
"""The kinds :paramref:`~mongo_persistence.MongoPersistence.expire_after` accepts, by key."""
MIGRATABLE_KINDS: Final = tuple(kind.collection for kind in KIND_TABLE if kind.migratable)
"""The kinds of data that can have migrations."""

BOT_DATA_ID: Final = "bot_data"
"""The ``_id`` of the one ``bot_data`` document."""
CALLBACK_DATA_ID: Final = "callback_data"
"""The ``_id`` of the one ``callback_data`` document."""
_SINGLETONS: Final = {"bot_data": BOT_DATA_ID, "callback_data": CALLBACK_DATA_ID}


def conversation_id(name: str, key: ConversationKey) -> str:
    """The ``_id`` of a conversation document: ``'["name",chat_id,user_id]'`` (readable JSON)."""
    return json.dumps([name, *key], separators=(",", ":"), ensure_ascii=False, default=repr)


class EntityRef(NamedTuple):
    """The identity of one stored entity: its collection, its ``_id`` and its label.

    Build it with the class methods, never by hand: they are the one place where ids and
    labels are made. The label names the entity in logs and errors, never its data:
    ``user_data[42]``, ``chat_data[-100]``, ``bot_data``, ``callback_data``,
    ``conversations['name'][(1, 2)]``, ``jobs['name']``.

    Attributes:
        collection (:obj:`str`): The collection, without the namespace (a :data:`COLLECTIONS`).
        doc_id (:obj:`object`): The document's ``_id``.
        label (:obj:`str`): How logs and errors name it.
    """

    collection: str
    doc_id: Any
    label: str

    def __str__(self) -> str:
        return self.label

    @classmethod
    def user(cls, user_id: int) -> EntityRef:
        """One user's ``user_data``."""
        return cls("user_data", user_id, f"user_data[{user_id}]")

    @classmethod
    def chat(cls, chat_id: int) -> EntityRef:
        """One chat's ``chat_data``."""
        return cls("chat_data", chat_id, f"chat_data[{chat_id}]")

    @classmethod
    def bot(cls) -> EntityRef:
        """The ``bot_data``."""
        return cls("bot_data", BOT_DATA_ID, "bot_data")

    @classmethod
    def callback_data(cls) -> EntityRef:
        """The callback data cache."""
        return cls("callback_data", CALLBACK_DATA_ID, "callback_data")

    @classmethod
    def conversation(cls, name: str, key: ConversationKey) -> EntityRef:
        """The state of one conversation of the handler :paramref:`name`."""
        key = tuple(key)
        return cls("conversations", conversation_id(name, key), f"conversations[{name!r}][{key!r}]")

    @classmethod
    def job(cls, job_id: Any, name: str | None) -> EntityRef:
        """One JobQueue job (its ``_id`` is the job's id, its label its name)."""
        return cls("jobs", job_id, f"jobs[{name!r}]")

    @classmethod
    def of(cls, collection: str, doc_id: Any) -> EntityRef:
        """The entity of kind :paramref:`collection` whose ``_id`` is :paramref:`doc_id`.

        For a user or a chat: :meth:`user`/:meth:`chat`; for ``bot_data``/``callback_data``
        their label; for a conversation or a job (whose ``_id`` alone does not give the label
        of :meth:`conversation`/:meth:`job`): ``conversations[_id='["name",1,2]']``.
        """
        if collection == "user_data" and type(doc_id) is int:
            return cls.user(doc_id)
        if collection == "chat_data" and type(doc_id) is int:
            return cls.chat(doc_id)
        if _SINGLETONS.get(collection) == doc_id:
            return cls(collection, doc_id, collection)
        return cls(collection, doc_id, f"{collection}[_id={doc_id!r}]")

    @classmethod
    def of_document(cls, collection: str, doc: Any) -> EntityRef:
        """The entity of a stored document, named from its own fields where it can be.

        A conversation whose ``name`` and ``key`` are well-formed gets the label of
        :meth:`conversation`, a job with a ``name`` that of :meth:`job`; anything else the
        label of :meth:`of`. Nothing is decoded: the key is taken when it is a plain list of
        ints and strings only.
        """
        doc_id = doc.get("_id") if isinstance(doc, dict) else None
        if collection == "conversations" and isinstance(doc, dict):
            name, key = doc.get("name"), doc.get("key")
            if (
                isinstance(name, str)
                and isinstance(key, list)
                and all(type(part) in (int, str) for part in key)
            ):
                return cls("conversations", doc_id, f"conversations[{name!r}][{tuple(key)!r}]")
        if (
            collection == "jobs"
            and isinstance(doc, dict)
            and isinstance(doc.get("name"), str | None)
        ):
            return cls.job(doc_id, doc.get("name"))
        return cls.of(collection, doc_id)
