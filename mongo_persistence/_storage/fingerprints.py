"""Fingerprints of encoded entities: per key (type-exact, from the BSON elements), and whole.

Each top-level key of an entity's encoded ``data`` is summarised by a fingerprint: its BSON element
(type, key and value bytes: ``1``, ``1.0`` and ``True`` all differ) when short, else a hash of it.
The dicts with non-string keys, which the codec stores tagged (``{"__type__": "intdict", "value":
{"<key>": ...}}`` or ``{"__type__": "dict", "value": {...}, "items": [...]}``), are fingerprinted
one level deeper: each key of their ``value`` is a key of its own (``value.<key>``), so that they
are written as diffs too. The rules of which keys can be addressed by path live here too.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Mapping
from typing import Any, Final

import bson
from bson.errors import InvalidDocument

from mongo_persistence._codec.codec import TAG

__all__ = [
    "BSON_ERRORS",
    "EXTRA_PREFIX",
    "Digests",
    "digest_fields",
    "digest_raw",
    "document_size",
    "encoded_digests",
    "fingerprint",
    "flat_fields",
    "keyed_digests",
    "path_safe",
    "shared_extra",
]

Digests = dict[str, str | bytes]
"""Per top-level key: a type-exact fingerprint of its value.

Fingerprints are plain ``str``/``bytes`` objects, so a digests dict holds nothing the garbage
collector tracks: with 100k entities that keeps full collections rare and short."""

BSON_ERRORS: Final = (InvalidDocument, ValueError, OverflowError)
"""What :func:`bson.encode` raises for a value BSON cannot hold: a lone surrogate
(``UnicodeEncodeError``, a ``ValueError``), an int over 64 bits, a ``uuid.UUID`` a client read
with its own UUID representation (``ValueError`` with the default options)."""

_UPDATED_AT_SIZE: Final = 2 + len("updated_at") + 8
"""The ``updated_at`` date element every written document ends with."""


_INLINE_ELEMENT: Final = 80
"""BSON elements up to this size (type, key, value) are their own fingerprint; longer ones are
hashed."""
_FIXED_SIZES: Final = {1: 8, 6: 0, 7: 12, 8: 1, 9: 8, 10: 0, 16: 4, 17: 8, 18: 8, 19: 16}
_FIXED_SIZES.update({127: 0, 255: 0})
_LENGTH_PREFIXED: Final = {2: 4, 3: 0, 4: 0, 5: 5, 12: 16, 13: 4, 14: 4, 15: 0}
"""BSON types whose value starts with an int32 length: the bytes it leaves out."""
_INT32: Final = struct.Struct("<i").unpack_from
_INTEGERS: Final = {16: _INT32, 18: struct.Struct("<q").unpack_from}
"""BSON int32 and int64: fingerprinted by their value."""
_BLAKE: Final = hashlib.blake2b


def _value_size(raw: bytes, kind: int, at: int) -> int:
    """The size of the value of a BSON element of type :paramref:`kind` starting at ``at``."""
    size = _FIXED_SIZES.get(kind)
    if size is not None:
        return size
    extra = _LENGTH_PREFIXED.get(kind)
    if extra is not None:
        return int(_INT32(raw, at)[0]) + extra
    if kind == 11:  # a regular expression: two C strings
        return raw.index(b"\x00", raw.index(b"\x00", at) + 1) + 1 - at
    raise InvalidDocument(f"unknown BSON element type {kind}")


def _split(out: Digests, raw: bytes, span: tuple[int, int], prefix: str, tagged: bool) -> None:
    """Fingerprints each element of the BSON elements held in ``raw[span[0]:span[1]]``.

    An element is its own fingerprint (type, key and value bytes: type-exact, ``1``, ``1.0``
    and ``True`` differ), or a hash of it when long; an integer is its value (BSON's int32 and
    int64 read back as the same ``int``: a ``NumberLong`` the bot did not change is not
    rewritten as an int32). With :paramref:`tagged`, the elements of the sub-document ``value``
    are fingerprinted one by one under ``value.<key>``.
    """
    find = raw.find
    pos, end = span
    while pos < end:
        kind = raw[pos]
        name_end = find(b"\x00", pos + 1)
        at = name_end + 1
        following = at + _value_size(raw, kind, at)
        key = raw[pos + 1 : name_end].decode()
        if kind in _INTEGERS:
            out[prefix + key] = f"i{_INTEGERS[kind](raw, at)[0]}"
        elif tagged and kind == 3 and key == _VALUE:
            _split(out, raw, (at + 4, following - 1), _SUB, False)
        elif following - pos <= _INLINE_ELEMENT:
            out[prefix + key] = raw[pos:following]
        else:
            out[prefix + key] = b"h" + _BLAKE(raw[pos:following], digest_size=16).digest()
        pos = following


def digest_raw(raw: bytes, tagged: bool) -> Digests:
    """The per-key fingerprints of a BSON document (:func:`digest_fields`)."""
    out: Digests = {}
    _split(out, raw, (4, len(raw) - 1), "", tagged)
    return out


_TAGGED_DICTS: Final = ("intdict", "dict")
_VALUE: Final = "value"
_SUB: Final = "value."
EXTRA_PREFIX: Final = "\x00"
"""Fingerprints of a document's extra top-level fields (``attrs``) are kept under this prefix."""


def document_head(doc_id: Any, extra: Mapping[str, Any]) -> bytes:
    """The BSON of ``{"_id": ..., <the extra fields, in the order of their names>}``."""
    if not extra:
        return bson.encode({"_id": doc_id})
    shared = _BY_ID.get(id(extra))
    if shared is not None and shared[0] is extra and type(doc_id) is int:
        # the common case, without a dict nor a sort: an int _id, the shared document fields
        element = _id_element(doc_id)
        if element is not None:
            body = element + shared[2]
            return _INT32_PACK(len(body) + 5) + body + b"\x00"
    return _head(doc_id, extra)


def _head(doc_id: Any, extra: Mapping[str, Any]) -> bytes:
    return bson.encode({"_id": doc_id, **dict(sorted(extra.items()))})


_INT32_PACK: Final = struct.Struct("<i").pack
_INT64_PACK: Final = struct.Struct("<q").pack


def _id_element(doc_id: int) -> bytes | None:
    """The BSON element of an int ``_id``, as :func:`bson.encode` writes it (int32 or int64)."""
    if -(2**31) <= doc_id < 2**31:
        return b"\x10_id\x00" + _INT32_PACK(doc_id)
    if -(2**63) <= doc_id < 2**63:
        return b"\x12_id\x00" + _INT64_PACK(doc_id)
    return None


def fingerprint(raw: bytes, head: bytes) -> bytes:
    """The fingerprint of a whole entity: its ``data`` (as BSON) and its :func:`document_head`."""
    digest = hashlib.blake2b(raw, digest_size=16)
    digest.update(head)
    return digest.digest()


def encoded_digests(raw: bytes, tagged: bool, extra: Mapping[str, Any]) -> Digests:
    """The per-key fingerprints of an entity from the BSON of its ``data`` (:func:`keyed_digests`).

    Args:
        raw (:obj:`bytes`): ``bson.encode(data)``.
        tagged (:obj:`bool`): ``data`` is a dict with non-string keys (fingerprinted one level
            deeper).
        extra (Mapping): Its extra fields.
    """
    digests = digest_raw(raw, tagged)
    if extra and (digests or "attrs" in extra):
        digests.update(_extra_digests(extra))
    return digests


def keyed_digests(data: Mapping[str, Any], extra: Mapping[str, Any]) -> Digests:
    """The per-key fingerprints of an entity: its ``data`` keys, and its extra fields (prefixed).

    An entity with empty data and no ``attrs`` has none: the tracker's view of "no document".

    Raises:
        :class:`bson.errors.InvalidDocument`: A value cannot be BSON-encoded.
        :class:`UnicodeEncodeError`: A string holds a lone surrogate.
    """
    digests = digest_fields(data)[0]
    if extra and (digests or "attrs" in extra):
        digests.update(_extra_digests(extra))
    return digests


_SHARED_EXTRA_KINDS: Final = frozenset({int, str, bool, float})
_ExtraKey = tuple[tuple[str, type, Any], ...]
_EXTRAS: dict[_ExtraKey, tuple[Mapping[str, Any], Digests, bytes]] = {}
"""Extra fields of plain values seen (``{"format": 2}`` are those of most entities), with their
prefixed fingerprints and their BSON elements (in :func:`document_head`'s order); bounded, and
keyed by type as well as value (``1``, ``1.0`` and ``True`` differ)."""
_EXTRAS_MAX: Final = 256


_BY_ID: dict[int, tuple[Mapping[str, Any], Digests, bytes]] = {}
"""The entries of :data:`_EXTRAS` by the ``id`` of their dict (alive as long as they are cached):
the shared dict handed out again is found without looking at its values."""


def _shared(extra: Mapping[str, Any]) -> tuple[Mapping[str, Any], Digests, bytes] | None:
    """The one copy of these extra fields (and their fingerprints), if their values are plain."""
    shared = _BY_ID.get(id(extra))
    if shared is not None and shared[0] is extra:
        return shared
    if not all(type(v) in _SHARED_EXTRA_KINDS for v in extra.values()):
        return None
    key = tuple((k, type(v), v) for k, v in extra.items())
    shared = _EXTRAS.get(key)
    if shared is None:
        if len(_EXTRAS) > _EXTRAS_MAX:
            _EXTRAS.clear()
            _BY_ID.clear()
        copy = dict(extra)
        elements = bson.encode(dict(sorted(copy.items())))[4:-1]  # without the framing
        shared = _EXTRAS[key] = (copy, _prefixed(digest_fields(extra)[0]), elements)
        _BY_ID[id(copy)] = shared
    return shared


def shared_extra(extra: Mapping[str, Any]) -> Mapping[str, Any]:
    """Equal extra fields of plain values as one dict (kept for many documents; never changed)."""
    shared = _shared(extra)
    return extra if shared is None else shared[0]


def _extra_digests(extra: Mapping[str, Any]) -> Digests:
    """The fingerprints of an entity's extra fields, under :data:`EXTRA_PREFIX`."""
    shared = _shared(extra)
    return _prefixed(digest_fields(extra)[0]) if shared is None else shared[1]


def _prefixed(extra_digests: Digests) -> Digests:
    return {EXTRA_PREFIX + k: v for k, v in extra_digests.items()}


def _tagged_value(fields: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``value`` of an encoded dict with non-string keys (fingerprinted per key), else None."""
    tag = fields.get(TAG)
    if isinstance(tag, str) and tag in _TAGGED_DICTS:
        value = fields.get(_VALUE)
        if type(value) is dict:
            return value
    return None


def digest_fields(fields: Mapping[str, Any]) -> tuple[Digests, int]:
    """Fingerprints every top-level value of an encoded mapping.

    Each key's fingerprint is its BSON element (short ones) or a hash of it: type-exact (``1``,
    ``1.0`` and ``True`` all differ). For a dict with non-string keys
    (``{"__type__": "intdict", "value": {...}}``), each key of its ``value`` has its own
    fingerprint, under ``value.<key>``.

    Returns:
        The fingerprints, and the exact size in bytes of the BSON document holding these fields
        (what :func:`bson.encode` makes of :paramref:`fields`).

    Raises:
        :class:`bson.errors.InvalidDocument`: A value cannot be BSON-encoded.
        :class:`UnicodeEncodeError`: A string holds a lone surrogate.
    """
    raw = bson.encode(fields)
    return digest_raw(raw, _tagged_value(fields) is not None), len(raw)


def flat_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``data`` by the keys of its fingerprints (see :func:`digest_fields`)."""
    value = _tagged_value(data)
    if value is None:
        return dict(data)
    out = {k: v for k, v in data.items() if k != _VALUE}
    out.update((_SUB + k, v) for k, v in value.items())
    return out


def _field(data: Mapping[str, Any], key: str) -> Any:
    if key.startswith(_SUB):
        value = _tagged_value(data)
        if value is not None:
            return value[key[len(_SUB) :]]
    return data[key]


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
    return sized(len(document_head(doc_id, extra or {})), field_name, fields_size)


def sized(head_size: int, field_name: str, fields_size: int) -> int:
    """:func:`document_size` from the size of the :func:`document_head`."""
    # without the head's closing NUL; a sub-document (type, name, NUL, fields), or the fields
    # without their framing
    body = 2 + len(field_name.encode()) + fields_size if field_name else fields_size - 5
    return head_size - 1 + body + _UPDATED_AT_SIZE + 1


def path_safe(key: str) -> bool:
    """Tells whether ``data.<key>`` addresses exactly this key in an update."""
    return bool(key) and "." not in key and "\x00" not in key and key[0] != "$" and key != TAG


def _addressable(key: str, tagged: bool) -> bool:
    """Tells whether a fingerprinted key can be set or unset on its own."""
    if key.startswith(EXTRA_PREFIX):
        return True  # extra fields are set whole at the top level
    if tagged and key == TAG:
        return True
    if tagged and key.startswith(_SUB):
        return path_safe(key[len(_SUB) :])
    return path_safe(key)


_ADDRESSABLE: set[str] = set()
"""Plain keys found addressable (a bounded cache: key names repeat across entities)."""
_ADDRESSABLE_MAX: Final = 4096


def _all_addressable(keys: Iterable[str], tagged: bool) -> bool:
    """Tells whether every key can be set or unset on its own (:func:`_addressable`)."""
    if tagged:
        return all(_addressable(k, tagged) for k in keys)
    if _ADDRESSABLE.issuperset(keys):
        return True
    if not all(_addressable(k, False) for k in keys):
        return False
    if len(_ADDRESSABLE) > _ADDRESSABLE_MAX:
        _ADDRESSABLE.clear()
    _ADDRESSABLE.update(keys)
    return True
