"""Remembers what each stored document holds, to skip unchanged writes and to send only diffs.

Pure bookkeeping: no I/O. Each top-level key of an entity's encoded ``data`` is summarised by a
fingerprint: short scalars by themselves, the rest by a hash of their BSON bytes (type-exact:
``1``, ``1.0`` and ``True`` all differ).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import bson
from bson import Int64
from bson.errors import InvalidDocument

from mongo_persistence.codec import TAG

__all__ = ["Digests", "Plan", "StateTracker", "digest_fields", "document_size", "path_safe"]

Digests = dict[str, str | bytes]
"""Per top-level key: a type-exact fingerprint of its value.

Fingerprints are plain ``str``/``bytes`` objects, so a digests dict holds nothing the garbage
collector tracks: with 100k entities that keeps full collections rare and short."""

_DOC_OVERHEAD: Final = 512
"""About the framing of a document beside its fields: a diff larger than this is not sent."""

_INT32_MIN: Final = -(2**31)
_INT32_MAX: Final = 2**31 - 1
_UPDATED_AT_SIZE: Final = 2 + len("updated_at") + 8
"""The ``updated_at`` date element every written document ends with."""

_INLINE_MAX: Final = 64
"""Strings and bytes up to this length are their own fingerprint; longer ones are hashed."""


def digest_fields(fields: Mapping[str, Any]) -> tuple[Digests, int]:
    """Fingerprints every top-level value of an encoded mapping.

    Short scalars are their own fingerprint, prefixed by their type (``1``, ``1.0`` and ``True``
    differ); anything else is summarised by a hash of its BSON encoding.

    Returns:
        The fingerprints, and the exact size in bytes of the BSON document holding these fields
        (what :func:`bson.encode` makes of :paramref:`fields`).

    Raises:
        :class:`bson.errors.InvalidDocument`: A value cannot be BSON-encoded.
        :class:`UnicodeEncodeError`: A string holds a lone surrogate.
    """
    out: Digests = {}
    size = 5  # the int32 length and the closing NUL
    for key, value in fields.items():
        kind = type(value)
        # type byte, key, NUL
        size += 2 + (len(key) if key.isascii() else len(key.encode()))
        if kind is str and len(value) <= _INLINE_MAX:
            out[key] = "s" + value
            size += 5 + (len(value) if value.isascii() else len(value.encode()))
        elif kind is int:  # BSON reads integers back as int or Int64: alike
            out[key] = f"i{value}"
            size += 4 if _INT32_MIN <= value <= _INT32_MAX else 8
        elif kind is Int64:
            out[key] = f"i{value}"
            size += 8
        elif kind is bool:
            out[key] = "bT" if value else "bF"
            size += 1
        elif kind is float:
            out[key] = f"f{value!r}"
            size += 8
        elif value is None:
            out[key] = "n"
        elif kind is bytes and len(value) <= _INLINE_MAX:
            out[key] = b"y" + value
            size += 5 + len(value)
        else:
            raw = bson.encode({"v": value})
            out[key] = b"h" + hashlib.blake2b(raw, digest_size=16).digest()
            size += len(raw) - 8  # without the framing of {"v": ...}: length, type, "v", NUL
    return out, size


def document_size(
    doc_id: Any, field_name: str, fields_size: int, extra: Mapping[str, Any] | None = None
) -> int:
    """The exact BSON size of the document the store writes (:meth:`Entry.replacement`).

    Args:
        doc_id: Its ``_id``.
        field_name (:obj:`str`): The field holding the fields (``""``: at the top level).
        fields_size (:obj:`int`): The size of the fields' document (from :func:`digest_fields`).
        extra (Mapping, optional): The document's other fields.
    """
    head = len(bson.encode({"_id": doc_id, **(extra or {})})) - 1  # without the closing NUL
    # a sub-document (type, name, NUL, fields), or the fields without their framing
    body = 2 + len(field_name.encode()) + fields_size if field_name else fields_size - 5
    return head + body + _UPDATED_AT_SIZE + 1


def path_safe(key: str) -> bool:
    """Tells whether ``data.<key>`` addresses exactly this key in an update."""
    return bool(key) and "." not in key and "\x00" not in key and key[0] != "$" and key != TAG


@dataclass(frozen=True)
class Plan:
    """What to send for one entity.

    Attributes:
        kind (:obj:`str`): ``"skip"``, ``"replace"`` or ``"diff"``.
        set_keys (tuple[:obj:`str`, ...]): With ``"diff"``, the keys whose value changed or is new.
        unset_keys (tuple[:obj:`str`, ...]): With ``"diff"``, the keys that are gone.
    """

    kind: str
    set_keys: tuple[str, ...] = ()
    unset_keys: tuple[str, ...] = ()


SKIP: Final = Plan("skip")
REPLACE: Final = Plan("replace")


class _Loaded:
    """A document as read from the database; digested only when it is first written again."""

    __slots__ = ("data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data


_ABSENT: Final[Digests] = {}
"""Known content of a document another program deleted (compared by identity)."""


class StateTracker:
    """The last known content of every document, keyed by (collection, _id).

    Known content is what was acknowledged by MongoDB or read from it. An entity whose content is
    not known (never seen, or its last write failed) is always written whole.
    """

    __slots__ = ("_known",)

    def __init__(self) -> None:
        self._known: dict[tuple[str, Any], Digests | _Loaded] = {}

    def loaded(self, collection: str, doc_id: Any, data: Mapping[str, Any]) -> None:
        """Records a document's ``data`` (in encoded form) as read from the database."""
        self._known[(collection, doc_id)] = _Loaded(data)

    def acknowledged(self, collection: str, doc_id: Any, digests: Digests | None) -> None:
        """Records a write MongoDB acknowledged (``None``: the document was deleted)."""
        if digests is None:
            self._known.pop((collection, doc_id), None)
        else:
            self._known[(collection, doc_id)] = digests

    def deleted_elsewhere(self, collection: str, doc_id: Any) -> None:
        """Records that another program deleted the document: empty data does not recreate it."""
        self._known[(collection, doc_id)] = _ABSENT

    def forget(self, collection: str, doc_id: Any) -> None:
        """Marks a document's content as unknown (its last write may or may not have happened)."""
        self._known.pop((collection, doc_id), None)

    def known(self, collection: str, doc_id: Any) -> Digests | None:
        """The digests of what the database holds, if known (empty: no document)."""
        known = self._known.get((collection, doc_id))
        if isinstance(known, _Loaded):
            try:
                known = digest_fields(known.data)[0]
            except (InvalidDocument, UnicodeEncodeError, OverflowError):
                self._known.pop((collection, doc_id), None)
                return None
            self._known[(collection, doc_id)] = known
        return known

    def plan(  # noqa: PLR0911
        self, collection: str, doc_id: Any, digests: Digests, *, diffable: bool = True
    ) -> Plan:
        """Decides how to write an entity whose encoded fields have these digests."""
        old = self.known(collection, doc_id)
        if old is None:
            return REPLACE
        if old is _ABSENT:
            # Deleted by another program: empty data does not recreate it; anything else does.
            return SKIP if not digests else REPLACE
        if old == digests:
            return SKIP
        if not diffable or TAG in digests or TAG in old:
            return REPLACE
        set_keys = tuple(k for k, v in digests.items() if old.get(k) != v)
        unset_keys = tuple(k for k in old if k not in digests)
        if not all(path_safe(k) for k in set_keys) or not all(path_safe(k) for k in unset_keys):
            return REPLACE
        # A diff repeats "data." and a type byte per key: with every key changed and many keys,
        # it is larger than the whole document (whose framing costs about _DOC_OVERHEAD).
        if len(set_keys) == len(digests) and 8 * (len(set_keys) + len(unset_keys)) > _DOC_OVERHEAD:
            return REPLACE
        return Plan("diff", set_keys, unset_keys)

    def __len__(self) -> int:
        return len(self._known)
