"""The encoded-entity step: from a Python value to what the writer sends, in one pass.

Given an entity (collection, ``_id``, label), its value and the settings (codec, bot, the server's
maximum document size, the document fields of its kind), :func:`encode_entity` and its siblings
encode the value with the codec, encode the result to BSON once (which gives the exact size of the
document and the fingerprint of the whole entity), check the size, and return the
:class:`~mongo_persistence._storage.tracker.Entry` the store writes. Per-key fingerprints are
computed from the entry only when a write needs them (a diff): an unchanged entity costs one BSON
encoding, a new one no per-key work at all.

Every error names the entity and the path: :class:`~mongo_persistence.EncodingError` (a value the
codec or BSON cannot hold), :class:`~mongo_persistence.DocumentTooLargeError`.
"""

from __future__ import annotations

import datetime as dtm
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import bson
from telegram import Bot

from mongo_persistence._codec.codec import FORMAT_VERSION, Codec, find_unencodable_text
from mongo_persistence._errors import DocumentTooLargeError, EncodingError
from mongo_persistence._storage.entry import LAZY, Entry
from mongo_persistence._storage.fingerprints import (
    BSON_ERRORS,
    Digests,
    digest_fields,
    document_head,
    document_size,
    fingerprint,
    path_safe,
    shared_extra,
    sized,
)
from mongo_persistence._storage.retention import expire_at

__all__ = ["Encoder", "document_fields", "mergeable"]

_EMPTY: Final[dict[str, Any]] = {}


def document_fields(
    *, version: int | None, expire_after: dtm.timedelta | None, partial: bool = False
) -> Mapping[str, Any]:
    """The top-level fields every write of a kind sets beside the data.

    ``format`` (the codec's :data:`~mongo_persistence._codec.codec.FORMAT_VERSION`) and
    ``data_version`` (the version of the migrations) claim that every value of the document has
    that format and version: a partial write (only some keys, onto a document never read) sets
    neither. ``expire_at`` with an ``expire_after``.
    """
    fields: dict[str, Any] = {}
    if not partial:
        fields["format"] = FORMAT_VERSION
        if version is not None:
            fields["data_version"] = version
    if expire_after is not None:
        fields["expire_at"] = expire_at(expire_after)
        return fields
    return shared_extra(fields)  # one dict for the many writes of a kind: never changed


def mergeable(value: object) -> bool:
    """Tells whether each top-level key can be set on its own (``$set`` of ``data.<key>``)."""
    if isinstance(value, dict):
        return type(value) is dict and all(type(k) is str and path_safe(k) for k in value)
    return all(path_safe(key) for key in vars(value))


def _bson_error(entity: str, exc: Exception, source: object) -> EncodingError:
    """The :class:`EncodingError` for a failure of :func:`bson.encode` on an entity's fields."""
    if isinstance(exc, UnicodeEncodeError):
        path = find_unencodable_text(source) or ""
        reason = f"the text cannot be stored as UTF-8 ({exc.reason})"
        return EncodingError(entity, path, "str", reason)
    # never the exception's text: InvalidDocument quotes the value
    return EncodingError(entity, "", "dict", f"BSON cannot hold it ({type(exc).__name__})")


@dataclass(slots=True)
class Encoder:
    """Encodes entities for one persistence: its codec, its bot and the server's size limit.

    Args:
        codec (:class:`~mongo_persistence._codec.codec.Codec`): Encodes the values.
        bot (:class:`telegram.Bot` | None): The running bot (stored as a placeholder).
        max_size (:obj:`int`): The server's maximum document size in bytes.
    """

    codec: Codec
    bot: Bot | None
    max_size: int

    def data_of(self, value: object, entity: str, *, copy: bool = False) -> tuple[Any, Any]:
        """Encodes a top-level ``*_data`` object: ``(data, extra)``; ``extra`` holds ``attrs``.

        ``copy=False`` for the deep copies PTB hands to ``update_*``: nobody changes them later,
        so plain data is written as it is, without a copy.

        Raises:
            :class:`~mongo_persistence.EncodingError`: The value cannot be stored.
        """
        extra: dict[str, Any] = _EMPTY
        if type(value) is dict:
            source: Any = value
        elif isinstance(value, dict):
            source = dict(value)
            attributes = getattr(value, "__dict__", None)
            if attributes:
                extra = {
                    "attrs": self.codec.encode(attributes, bot=self.bot, entity=f"{entity}.attrs")
                }
        elif hasattr(value, "__dict__"):
            source = vars(value)
        else:
            raise EncodingError(
                entity,
                "",
                type(value).__qualname__,
                "context_types data classes must be dict subclasses or have a __dict__",
            )
        return self.codec.encode(source, bot=self.bot, entity=entity, copy=copy), extra

    def entity(
        self,
        key: tuple[str, Any],
        entity: str,
        value: object,
        fields: Mapping[str, Any],
    ) -> Entry:
        """The entry of a ``*_data`` object as PTB hands it over (a deep copy nobody changes).

        Args:
            key (tuple[:obj:`str`, object]): Its collection and ``_id``.
            entity (:obj:`str`): Its label in errors, e.g. ``user_data[42]``.
            value: The data.
            fields (Mapping): The document fields of its kind (:func:`document_fields`).

        Raises:
            :class:`~mongo_persistence.EncodingError`: The value cannot be stored.
            :class:`~mongo_persistence.DocumentTooLargeError`: The document would be too large.
        """
        data, extra = self.data_of(value, entity)
        source = value if isinstance(value, dict) else getattr(value, "__dict__", None)
        entry = self.encoded(
            key, entity, data, {**extra, **fields} if extra else fields, source=source
        )
        if type(value) is dict:
            entry.source = value
        return entry

    def encoded(
        self,
        key: tuple[str, Any],
        entity: str,
        data: dict[str, Any],
        extra: Mapping[str, Any],
        *,
        source: object = None,
    ) -> Entry:
        """The entry of already encoded ``data`` with its extra top-level fields.

        Args:
            key (tuple[:obj:`str`, object]): Its collection and ``_id``.
            entity (:obj:`str`): Its label in errors.
            data (dict): The encoded ``data`` field.
            extra (Mapping): The other top-level fields (``attrs``, the document fields).
            source: The value :paramref:`data` was encoded from (names the path of a bad text).
        """
        collection, doc_id = key
        try:
            raw = bson.encode(data)
            head = document_head(doc_id, extra)
        except BSON_ERRORS as exc:
            raise _bson_error(entity, exc, data if source is None else source) from None
        total = sized(len(head), "data", len(raw))
        if total > self.max_size:
            raise DocumentTooLargeError(entity, total, self.max_size)
        extra = extra if type(extra) is dict else dict(extra)
        return Entry(
            collection,
            doc_id,
            entity,
            data,
            LAZY,
            extra=extra,
            raw=raw,
            fingerprint=fingerprint(raw, head),
        )

    def whole(
        self,
        key: tuple[str, Any],
        entity: str,
        fields: dict[str, Any],
        extra: Mapping[str, Any] = _EMPTY,
        *,
        source: object = None,
    ) -> Entry:
        """The entry of a document always written whole: its fields at the top level.

        A plain value (``{"data": <value>}``) or a conversation (``{"state": ...}`` with ``name``
        and ``key`` in :paramref:`extra`).
        """
        collection, doc_id = key
        digests: Digests
        try:
            digests, size = digest_fields(fields)
            total = document_size(doc_id, "", size, extra)
        except BSON_ERRORS as exc:
            raise _bson_error(entity, exc, fields if source is None else source) from None
        if total > self.max_size:
            raise DocumentTooLargeError(entity, total, self.max_size)
        return Entry(
            collection,
            doc_id,
            entity,
            fields,
            digests,
            extra=dict(extra),
            diffable=False,
            field_name="",
        )

    def callback_data(
        self, key: tuple[str, Any], structure: dict[str, Any], fields: Mapping[str, Any]
    ) -> Entry:
        """The entry of PTB's callback data cache, given as the document its ``data`` holds.

        :func:`mongo_persistence._persistence.shapes.callback_data_document` makes it.
        """
        encoded = self.codec.encode(structure, bot=self.bot, entity="callback_data", copy=False)
        return self.encoded(key, "callback_data", encoded, fields, source=structure)

    def conversation(
        self,
        key: tuple[str, Any],
        entity: str,
        conversation: tuple[str, tuple[Any, ...]],
        state: object,
        fields: Mapping[str, Any],
    ) -> Entry:
        """The entry of one conversation's state: ``{state, name, key}`` at the top level.

        Args:
            key (tuple[:obj:`str`, object]): Its collection and ``_id``.
            entity (:obj:`str`): Its label in errors.
            conversation (tuple[:obj:`str`, tuple]): The handler's name and the conversation key.
            state: The state (not :obj:`None`: that deletes the document).
            fields (Mapping): The document fields of conversations (:func:`document_fields`).
        """
        name, conversation_key = conversation
        encoded = {"state": self.codec.encode(state, bot=self.bot, entity=entity)}
        extra = {"name": name, "key": self.codec.encode(list(conversation_key), entity=entity)}
        extra.update(fields)
        return self.whole(key, entity, encoded, extra, source=state)

    def value(self, value: object, entity: str) -> Any:
        """Encodes one value (a conversation state, a plain ``*_data`` value)."""
        return self.codec.encode(value, bot=self.bot, entity=entity, copy=False)
