"""Remembers what each stored document holds, to skip unchanged writes and to send only diffs.

Pure bookkeeping: no I/O. Each top-level key of an entity's encoded ``data`` is summarised by a
digest of its BSON bytes (type-exact: ``1``, ``1.0`` and ``True`` all differ).
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

__all__ = ["Digests", "Plan", "StateTracker", "digest_fields", "path_safe"]

Digests = dict[str, tuple[Any, int]]
"""Per top-level key: (a type-exact fingerprint of its value, its encoded size in bytes)."""

_DOC_OVERHEAD: Final = 512
"""Room kept for ``_id``, metadata fields and the document framing in size checks."""

# Type codes of the values that are their own fingerprint. Codes, not type objects: a tuple of
# plain values is left alone by the garbage collector, which matters with 100k entities.
_SCALAR_CODES: Final[dict[type, str]] = {
    bool: "b",
    int: "i",
    Int64: "i",  # BSON reads every integer back as int or Int64: fingerprint them alike
    float: "f",
    type(None): "n",
}
_INLINE_MAX: Final = 64
"""Strings and bytes up to this length are their own fingerprint; longer ones are hashed."""


def digest_fields(fields: Mapping[str, Any]) -> Digests:
    """Fingerprints every top-level value of an encoded mapping.

    Short scalars are their own fingerprint (with their type, so ``1``, ``1.0`` and ``True``
    differ); anything else is summarised by a hash of its BSON encoding.

    Raises:
        :class:`bson.errors.InvalidDocument`: A value cannot be BSON-encoded.
        :class:`UnicodeEncodeError`: A string holds a lone surrogate.
    """
    out: Digests = {}
    codes = _SCALAR_CODES
    for key, value in fields.items():
        kind = type(value)
        code = codes.get(kind)
        if code is not None:
            out[key] = ((code, value), 16 + len(key))
        elif kind is str and len(value) <= _INLINE_MAX:
            value.encode()  # a lone surrogate cannot be stored: fail here, not in the batch
            out[key] = (("s", value), 8 + len(key) + 4 * len(value))
        elif kind is bytes and len(value) <= _INLINE_MAX:
            out[key] = (("y", value), 8 + len(key) + len(value))
        else:
            raw = bson.encode({"v": value})
            out[key] = (hashlib.blake2b(raw, digest_size=16).digest(), len(raw) + len(key))
    return out


def encoded_size(digests: Digests) -> int:
    """Estimates the size of a document holding these fields, framing included."""
    return sum(size for _, size in digests.values()) + _DOC_OVERHEAD


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
                known = digest_fields(known.data)
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
        # Each path costs "data." and a type byte on top of the value itself.
        diff_size = sum(digests[k][1] for k in set_keys) + sum(len(k) for k in unset_keys)
        diff_size += 8 * (len(set_keys) + len(unset_keys))
        if diff_size > encoded_size(digests):
            return REPLACE
        return Plan("diff", set_keys, unset_keys)

    def __len__(self) -> int:
        return len(self._known)
