"""What to send for each entity (skip, replace, diff or merge), and what MongoDB is known to hold.

Pure bookkeeping: no I/O. This module owns every rule of the write path between an encoded entity
and the operation the store sends: the fingerprints of an entity's keys, the last state MongoDB
acknowledged for each document, and the plan derived from both.

Each top-level key of an entity's encoded ``data`` is summarised by a fingerprint: short scalars by
themselves, the rest by a hash of their BSON bytes (type-exact: ``1``, ``1.0`` and ``True`` all
differ). The dicts with non-string keys, which the codec stores tagged (``{"__type__": "intdict",
"value": {"<key>": ...}}`` or ``{"__type__": "dict", "value": {...}, "items": [...]}``), are
fingerprinted one level deeper: each key of their ``value`` is a key of its own
(``value.<key>``), so that they are written as diffs too.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import hashlib
import struct
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import bson
from bson.errors import InvalidDocument

from mongo_persistence._codec.codec import TAG

__all__ = [
    "Digests",
    "Entry",
    "Op",
    "Plan",
    "StateTracker",
    "digest_fields",
    "document_size",
    "fingerprint",
    "path_safe",
]

Digests = dict[str, str | bytes]
"""Per top-level key: a type-exact fingerprint of its value.

Fingerprints are plain ``str``/``bytes`` objects, so a digests dict holds nothing the garbage
collector tracks: with 100k entities that keeps full collections rare and short."""

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
    and ``True`` differ), or a hash of it when long. With :paramref:`tagged`, the elements of
    the sub-document ``value`` are fingerprinted one by one under ``value.<key>``.
    """
    find = raw.find
    pos, end = span
    while pos < end:
        kind = raw[pos]
        name_end = find(b"\x00", pos + 1)
        at = name_end + 1
        following = at + _value_size(raw, kind, at)
        key = raw[pos + 1 : name_end].decode()
        if tagged and kind == 3 and key == _VALUE:
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
_MAYBE: Final = b"?"
"""The fingerprint of a key whose write failed: MongoDB may or may not hold it (never equal to a
real fingerprint, so the key is sent again, or unset when the bot no longer has it)."""
EXTRA_PREFIX: Final = "\x00"
"""Fingerprints of a document's extra top-level fields (``attrs``) are kept under this prefix."""
LAZY: Final[Digests] = {}
"""The per-key fingerprints of an entry not computed yet (compared by identity): the tracker
computes them from its ``data`` and ``extra`` when a plan needs them (:func:`entry_digests`)."""


def fingerprint(raw: bytes, extra: Mapping[str, Any]) -> bytes:
    """The fingerprint of a whole entity: its ``data`` (as BSON) and its extra fields."""
    digest = hashlib.blake2b(raw, digest_size=16)
    if extra:
        digest.update(bson.encode(dict(sorted(extra.items()))))
    return digest.digest()


def keyed_digests(data: Mapping[str, Any], extra: Mapping[str, Any]) -> Digests:
    """The per-key fingerprints of an entity: its ``data`` keys, and its extra fields (prefixed).

    An entity with empty data and no ``attrs`` has none: the tracker's view of "no document".

    Raises:
        :class:`bson.errors.InvalidDocument`: A value cannot be BSON-encoded.
        :class:`UnicodeEncodeError`: A string holds a lone surrogate.
    """
    digests = digest_fields(data)[0]
    if extra and (digests or "attrs" in extra):
        digests = entity_digests(digests, digest_fields(extra)[0])
    return digests


def entry_digests(entry: Entry) -> Digests | None:
    """The per-key fingerprints of an entry, computed now if they were not (:data:`LAZY`)."""
    digests = entry.digests
    if digests is not LAZY or entry.data is None:
        return digests
    if entry.raw is None:
        digests = keyed_digests(entry.data, entry.extra)
    else:
        digests = digest_raw(entry.raw, _tagged_value(entry.data) is not None)
        extra = entry.extra
        if extra and (digests or "attrs" in extra):
            digests = entity_digests(digests, digest_fields(extra)[0])
        entry.raw = None
    entry.digests = digests
    return digests


def entry_keys(entry: Entry) -> tuple[str, ...]:
    """The keys of an entry's fingerprints, without computing them."""
    if entry.digests is not LAZY or entry.data is None:
        return tuple(entry.digests or ())
    data = entry.data
    value = _tagged_value(data)
    keys = list(data) if value is None else [k for k in data if k != _VALUE]
    if value is not None:
        keys.extend(_SUB + k for k in value)
    extra = entry.extra
    if extra and (keys or "attrs" in extra):
        keys.extend(EXTRA_PREFIX + k for k in extra)
    return tuple(keys)


def _now() -> dtm.datetime:
    return dtm.datetime.now(dtm.timezone.utc)


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
    head = len(bson.encode({"_id": doc_id, **(extra or {})})) - 1  # without the closing NUL
    # a sub-document (type, name, NUL, fields), or the fields without their framing
    body = 2 + len(field_name.encode()) + fields_size if field_name else fields_size - 5
    return head + body + _UPDATED_AT_SIZE + 1


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


def entity_digests(digests: Digests, extra_digests: Digests) -> Digests:
    """The fingerprints of an entity: its ``data`` keys, and its extra fields (prefixed)."""
    if not extra_digests:
        return digests
    return {**digests, **{EXTRA_PREFIX + k: v for k, v in extra_digests.items()}}


@dataclass(frozen=True, slots=True)
class Plan:
    """What to send for one entity.

    Attributes:
        kind (:obj:`str`): ``"skip"``, ``"delete"``, ``"replace"`` (the whole document),
            ``"diff"`` (the changed keys, against what MongoDB acknowledged) or ``"merge"`` (every
            key the bot holds, set onto a document whose content is not known).
        set_keys (tuple[:obj:`str`, ...]): With ``"diff"``/``"merge"``, the keys to set.
        unset_keys (tuple[:obj:`str`, ...]): With ``"diff"``, the keys that are gone.
    """

    kind: str
    set_keys: tuple[str, ...] = ()
    unset_keys: tuple[str, ...] = ()


SKIP: Final = Plan("skip")
REPLACE: Final = Plan("replace")
DELETE: Final = Plan("delete")


@dataclass(frozen=True, slots=True)
class Op:
    """One operation on the wire: ``"replace"`` (upsert), ``"update"`` (upsert) or ``"delete"``.

    Attributes:
        kind (:obj:`str`): The operation.
        filter (dict): Selects the document (by ``_id``).
        document (dict | None): The replacement, or the update (``$set``/``$unset``).
    """

    kind: str
    filter: dict[str, Any]
    document: dict[str, Any] | None = None


@dataclass(eq=False, slots=True)
class Entry:
    """One entity to write: the newest data for one document.

    ``data`` is the encoded ``data`` field (``None`` means delete); ``extra`` holds the other
    top-level fields of the document (e.g. ``name`` and ``key`` of a conversation, ``attrs``),
    set on every write of it.
    """

    collection: str
    doc_id: Any
    entity: str
    data: dict[str, Any] | None
    digests: Digests | None
    extra: dict[str, Any] = field(default_factory=dict)
    diffable: bool = True
    field_name: str = "data"
    futures: list[asyncio.Future[None]] = field(default_factory=list)
    attempts: int = 0
    abandoned: bool = False
    """Saved to a recovery file by :meth:`MongoStore.flush`: a late outcome changes nothing."""
    at: dtm.datetime = field(default_factory=_now)
    """When it was handed over (the journal's "older never overwrites newer" compares it)."""
    since: float = field(default_factory=time.monotonic)
    """``time.monotonic()`` when its oldest unsaved change was handed over."""
    raw: bytes | None = None
    """Its ``data`` as BSON, until its per-key fingerprints are computed from it."""
    fingerprint: bytes | None = None
    """The fingerprint of the whole entity (:func:`fingerprint`): equal to the one of what MongoDB
    holds, nothing is sent, and no per-key fingerprint is computed."""

    @property
    def key(self) -> tuple[str, Any]:
        """(collection, _id)."""
        return (self.collection, self.doc_id)

    def keys(self) -> tuple[str, ...]:
        """The keys of its fingerprints (:func:`entry_keys`)."""
        return entry_keys(self)

    def replacement(self) -> dict[str, Any]:
        """The whole document (``field_name=""`` puts the fields of ``data`` at the top level)."""
        fields = {self.field_name: self.data} if self.field_name else dict(self.data or {})
        return {"_id": self.doc_id, **fields, **self.extra, "updated_at": _now()}

    def set_update(self, keys: Iterable[str], unset: Iterable[str] = ()) -> dict[str, Any]:
        """The update setting these keys of ``data`` (and unsetting others) on the document."""
        prefix = self.field_name + "."
        data = self.data or {}
        tagged = _tagged_value(data) is not None
        fields = {
            prefix + k: _field(data, k) if tagged else data[k]
            for k in keys
            if k[:1] != EXTRA_PREFIX
        }
        fields.update(self.extra)
        fields["updated_at"] = _now()
        update: dict[str, Any] = {"$set": fields}
        if unset:
            removed = {k[1:] if k[:1] == EXTRA_PREFIX else prefix + k: "" for k in unset}
            for name in self.extra:  # a field set by every write is never unset by it
                removed.pop(name, None)
            if removed:
                update["$unset"] = removed
        return update

    def op(self, plan: Plan) -> Op:
        """The operation that carries out :paramref:`plan`."""
        where = {"_id": self.doc_id}
        if plan.kind == "delete" or self.data is None:
            return Op("delete", where)
        if plan.kind == "replace":
            return Op("replace", where, self.replacement())
        return Op("update", where, self.set_update(plan.set_keys, plan.unset_keys))

    def settle(self, error: BaseException | None) -> None:
        """Resolves every caller waiting for this entry (with the error, if any)."""
        for future in self.futures:
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
        self.futures.clear()


class _Loaded:
    """A document as read from the database; fingerprinted only when it is first written again."""

    __slots__ = ("data", "extra")

    def __init__(self, data: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
        self.data = data
        self.extra = extra

    def fingerprint(self) -> bytes:
        """Its whole fingerprint (``b""``, never equal to an entry's, if BSON refuses it)."""
        try:
            return fingerprint(bson.encode(self.data), self.extra)
        except (InvalidDocument, UnicodeEncodeError, OverflowError):
            return b""


class _Partial:
    """Known keys of a document that may hold others (written by merges, never read).

    ``doubtful``: a write that may have created or deleted the document failed, so whether it
    exists is not known either: the next write sets every key (never skipped).
    """

    __slots__ = ("digests", "doubtful")

    def __init__(self, digests: Digests, doubtful: bool = False) -> None:
        self.digests = digests
        self.doubtful = doubtful


_ABSENT: Final[Digests] = {}
"""Known content of a document another program deleted (compared by identity)."""


class StateTracker:
    """The last state MongoDB acknowledged (or returned) for every document, and the plans.

    A document is known whole (read, or written whole), known in part (only the keys this bot
    set: another program may have set others), or not known at all (then the bot's keys are set
    onto it, never replacing it). A failed write leaves the keys it touched in doubt: they are
    sent again (or unset) by the next plan, so a retry is the same diff, never a replacement.
    """

    __slots__ = ("_fps", "_known")

    def __init__(self) -> None:
        self._known: dict[tuple[str, Any], Digests | _Loaded | _Partial] = {}
        # The whole fingerprints of the documents known whole whose entry carried one (bytes
        # only: nothing the garbage collector tracks).
        self._fps: dict[tuple[str, Any], bytes] = {}

    def _put(
        self, key: tuple[str, Any], state: Digests | _Loaded | _Partial, fp: bytes | None = None
    ) -> None:
        self._known[key] = state
        if fp is None:
            self._fps.pop(key, None)
        else:
            self._fps[key] = fp

    def loaded(
        self,
        collection: str,
        doc_id: Any,
        data: Mapping[str, Any],
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Records a document's ``data`` (in encoded form) as read from the database.

        Args:
            collection (:obj:`str`): Its collection.
            doc_id: Its ``_id``.
            data (Mapping): Its encoded ``data`` field.
            extra (Mapping, optional): Its extra fields written with every write (``attrs``).
        """
        self._put((collection, doc_id), _Loaded(data, extra or {}))

    def deleted_elsewhere(self, collection: str, doc_id: Any) -> None:
        """Records that another program deleted the document: empty data does not recreate it."""
        self._put((collection, doc_id), _ABSENT)

    def forget(self, collection: str, doc_id: Any) -> None:
        """Marks a document's content as unknown."""
        self._known.pop((collection, doc_id), None)
        self._fps.pop((collection, doc_id), None)

    def known(self, collection: str, doc_id: Any) -> Digests | None:
        """The digests of what the database is known to hold, if known (empty: no document)."""
        state = self._state((collection, doc_id))
        return state[0] if state is not None else None

    def _state(self, key: tuple[str, Any]) -> tuple[Digests, bool] | None:
        """(digests, known whole) of a document, or :obj:`None`."""
        known = self._known.get(key)
        if isinstance(known, _Partial):
            return known.digests, False
        if isinstance(known, _Loaded):
            try:
                known = self._known[key] = keyed_digests(known.data, known.extra)
            except (InvalidDocument, UnicodeEncodeError, OverflowError):
                self.forget(*key)
                return None
        return (known, True) if known is not None else None

    def _doubtful(self, key: tuple[str, Any]) -> bool:
        known = self._known.get(key)
        return isinstance(known, _Partial) and known.doubtful

    def _unchanged(self, entry: Entry) -> bool:
        """Tells whether the entry's whole fingerprint is the one of the document known whole."""
        if entry.fingerprint is None:
            return False
        key = entry.key
        fp = self._fps.get(key)
        if fp is None:
            known = self._known.get(key)
            if not isinstance(known, _Loaded):
                return False
            fp = self._fps[key] = known.fingerprint()
        return fp == entry.fingerprint

    # ------------------------------------------------------------------ plans
    def plan(self, entry: Entry) -> Plan:
        """Decides what to send for an entry, from what MongoDB is known to hold."""
        if entry.data is None or entry.digests is None:
            return DELETE if entry.data is None else REPLACE
        if self._unchanged(entry):
            return SKIP
        state = self._state(entry.key)
        if state is None or state[0] is _ABSENT:
            # not known (or deleted by another program: empty data does not recreate it)
            keys = entry_keys(entry)
            skip = state is not None and not keys
            return SKIP if skip else _merge_plan(keys) if entry.diffable else REPLACE
        new = entry_digests(entry) or {}
        if not self._doubtful(entry.key):
            return _diff_plan(entry, state[0], new)
        if not entry.diffable:
            return REPLACE
        return _merge_plan(tuple(new), unset=tuple(k for k in state[0] if k not in new))

    def acknowledged(self, entry: Entry, plan: Plan, *, upserted: bool) -> bool:
        """Records a write MongoDB acknowledged.

        Returns:
            :obj:`bool`: Whether the entry must be written again whole: a diff created the
            document (another program deleted it), so it holds only the changed keys.
        """
        key = entry.key
        if plan.kind == "delete" or entry.digests is None:
            self.forget(*key)
            return False
        if plan.kind == "diff" and upserted and not set(plan.set_keys).issuperset(entry.keys()):
            self.forget(*key)
            return True
        known = self._known.get(key)
        digests = entry_digests(entry) or {}
        if plan.kind == "replace" or upserted or not isinstance(known, _Partial | None):
            self._put(key, digests, entry.fingerprint)  # known whole
        else:
            self._put(key, _Partial(digests))
        return False

    def failed(self, entry: Entry, plan: Plan) -> None:
        """Records a write that failed: the keys it touched may or may not have been written."""
        if plan.kind == "skip":
            return
        key = entry.key
        state = self._state(key)
        old, whole = state if state is not None and state[0] is not _ABSENT else ({}, False)
        if plan.kind in ("replace", "delete"):
            touched: Iterable[str] = {*old, *(entry_digests(entry) or ())}
        else:
            touched = (*plan.set_keys, *plan.unset_keys)
        digests = dict(old)
        digests.update(dict.fromkeys(touched, _MAYBE))
        if plan.kind in ("merge", "delete") or self._doubtful(key):
            # it may or may not have created (or deleted) the document
            self._put(key, _Partial(digests, doubtful=True))
        else:
            self._put(key, digests if whole else _Partial(digests))

    def __len__(self) -> int:
        return len(self._known)


def _diff_plan(entry: Entry, old: Digests, new: Digests) -> Plan:
    """The keys to set and unset, against what MongoDB is known to hold."""
    if old == new:
        return SKIP
    if not entry.diffable or old.get(TAG) != new.get(TAG):
        return REPLACE  # not a mapping of keys, or its keys changed type (plain <-> int)
    tagged = TAG in new
    set_keys = tuple(k for k, v in new.items() if old.get(k) != v)
    unset_keys = tuple(k for k in old if k not in new)
    if not _all_addressable((*set_keys, *unset_keys), tagged):
        return REPLACE
    return Plan("diff", set_keys, unset_keys)


def _merge_plan(keys: tuple[str, ...], unset: tuple[str, ...] = ()) -> Plan:
    """Sets every key of the bot onto a document whose content is not known."""
    if not _all_addressable((*keys, *unset) if unset else keys, TAG in keys):
        return REPLACE
    return Plan("merge", keys, unset)
