"""What to send for each entity (skip, replace, diff or merge), and what MongoDB is known to hold.

Pure bookkeeping: no I/O. The last state MongoDB acknowledged (or returned) for each document, and
the plan derived from it and an entry's fingerprints (:mod:`~mongo_persistence._storage.
fingerprints`): an entry whose whole fingerprint is the one of a document known whole is skipped
without computing any per-key fingerprint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import bson

from mongo_persistence._codec.codec import FORMAT_VERSION, TAG
from mongo_persistence._codec.plain_bson import data_bson, holds_tag
from mongo_persistence._storage.entry import (
    DELETE,
    LAZY,
    REPLACE,
    SKIP,
    Entry,
    Op,
    Plan,
    entry_digests,
    entry_keys,
    is_tagged,
)
from mongo_persistence._storage.fingerprints import (
    BSON_ERRORS,
    Digests,
    _all_addressable,
    digest_fields,
    document_head,
    document_size,
    encoded_digests,
    fingerprint,
    flat_fields,
    path_safe,
    shared_extra,
)
from mongo_persistence._storage.values import value_digest

__all__ = [
    "Digests",
    "Entry",
    "Op",
    "Plan",
    "StateTracker",
    "digest_fields",
    "document_size",
    "flat_fields",
    "path_safe",
]

_MAYBE: Final = b"?"
"""The fingerprint of a key whose write failed: MongoDB may or may not hold it (never equal to a
real fingerprint, so the key is sent again, or unset when the bot no longer has it)."""


class _Encoded:
    """A document known whole by the BSON of its ``data``: read, or written whole (a new one).

    Fingerprinted per key only when a later write of it needs a diff, and as a whole when one is
    first compared with it. A document read as BSON keeps the document's BSON until then (its
    ``data`` is cut out of it when first needed). Bytes: nothing the bot's data shares, nothing
    the garbage collector walks.
    """

    __slots__ = ("_document", "_raw", "extra", "tagged")

    def __init__(
        self,
        raw: bytes | None,
        tagged: bool,
        extra: Mapping[str, Any],
        document: bytes | None = None,
    ) -> None:
        self._raw = raw
        self._document = document
        self.tagged = tagged
        self.extra = shared_extra(extra)

    @property
    def raw(self) -> bytes:
        """The BSON of its ``data``."""
        raw = self._raw
        if raw is None:
            raw = self._raw = data_bson(self._document or b"")
            self._document = None
        return raw

    def digests(self) -> Digests:
        """Its per-key fingerprints."""
        return encoded_digests(self.raw, self.tagged, self.extra)

    def fingerprint(self, doc_id: Any) -> bytes:
        """Its whole fingerprint (``b""``, never equal to an entry's, if BSON refuses it)."""
        try:
            return fingerprint(self.raw, document_head(doc_id, self.extra))
        except BSON_ERRORS:
            return b""


_READ: Final = shared_extra({"format": FORMAT_VERSION})
"""The extra fields of most documents read: a document read as BSON with these and no tag is
known by its BSON alone (``bytes``: one object less per document for the garbage collector)."""

_ENCODED_MAX: Final = 64 * 1024
"""The largest BSON a document is known by (:class:`_Encoded`); a larger one is fingerprinted per
key at once (its fingerprints are smaller than its BSON)."""


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

    __slots__ = ("_fps", "_known", "_values", "_version")

    def __init__(self) -> None:
        # Known whole by per-key fingerprints (Digests), by BSON (_Encoded, or the bytes of a
        # document read: see _READ), or known in part (_Partial).
        self._known: dict[tuple[str, Any], Digests | _Encoded | _Partial | bytes] = {}
        # The whole fingerprints of the documents known whole whose entry carried one (bytes
        # only: nothing the garbage collector tracks).
        self._fps: dict[tuple[str, Any], bytes] = {}
        # The fingerprints of plain values found unchanged (:mod:`~mongo_persistence._storage.
        # values`), with the extra fields they were written with; dropped at any change of state.
        self._values: dict[tuple[str, Any], tuple[bytes, Mapping[str, Any]]] = {}
        # Changes with every change of what is known: an entry's plan made at the same version
        # still holds.
        self._version = 0

    def _put(
        self,
        key: tuple[str, Any],
        state: Digests | _Encoded | _Partial | bytes,
        fp: bytes | None = None,
    ) -> None:
        self._version += 1
        self._known[key] = state
        self._values.pop(key, None)
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
        *,
        document: bytes | None = None,
    ) -> None:
        """Records a document's ``data`` (in encoded form) as read from the database.

        What is kept is its BSON: the bot's data may share the dicts and lists of :paramref:`data`
        (decoded without copies) and change them.

        Args:
            collection (:obj:`str`): Its collection.
            doc_id: Its ``_id``.
            data (Mapping): Its encoded ``data`` field (a dict).
            extra (Mapping, optional): Its extra fields written with every write (``attrs``).
            document (:obj:`bytes`, optional): The BSON of the whole document, when it was read
                as BSON: ``data``'s is cut out of it when a write first needs it.
        """
        key = (collection, doc_id)
        try:
            if document is not None and len(document) <= _ENCODED_MAX:
                tagged = is_tagged(data)
                read = extra is _READ and not tagged
                self._put(key, document if read else _Encoded(None, tagged, extra or {}, document))
                return
            raw = bson.encode(data) if document is None else data_bson(document)
            known = _Encoded(raw, is_tagged(data), extra or {})
            if len(raw) <= _ENCODED_MAX:
                self._put(key, known)
            else:
                self._put(key, known.digests(), known.fingerprint(doc_id))
        except BSON_ERRORS:
            self.forget(*key)

    def deleted_elsewhere(self, collection: str, doc_id: Any) -> None:
        """Records that another program deleted the document: empty data does not recreate it."""
        self._put((collection, doc_id), _ABSENT)

    def forget(self, collection: str, doc_id: Any) -> None:
        """Marks a document's content as unknown."""
        self._version += 1
        self._known.pop((collection, doc_id), None)
        self._fps.pop((collection, doc_id), None)
        self._values.pop((collection, doc_id), None)

    def known(self, collection: str, doc_id: Any) -> Digests | None:
        """The digests of what the database is known to hold, if known (empty: no document)."""
        state = self._state((collection, doc_id))
        return state[0] if state is not None else None

    def _encoded(self, key: tuple[str, Any]) -> Digests | _Encoded | _Partial | None:
        """What is known of a document (the bytes of one read become an :class:`_Encoded`)."""
        known = self._known.get(key)
        if isinstance(known, bytes):
            known = self._known[key] = _Encoded(None, False, _READ, known)
        return known

    def _state(self, key: tuple[str, Any]) -> tuple[Digests, bool] | None:
        """(digests, known whole) of a document, or :obj:`None`."""
        known = self._encoded(key)
        if isinstance(known, _Partial):
            return known.digests, False
        if isinstance(known, _Encoded):
            known = self._known[key] = known.digests()
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
            known = self._encoded(key)
            if not isinstance(known, _Encoded):
                return False
            fp = self._fps[key] = known.fingerprint(key[1])
        return fp == entry.fingerprint

    # ------------------------------------------------------------------ unchanged values
    def same_value(self, key: tuple[str, Any], value: object, extra: Mapping[str, Any]) -> bool:
        """Tells whether a value handed over is the plain value last found unchanged.

        With the same extra fields: then MongoDB holds it, and it needs no encoding.
        """
        known = self._values.get(key)
        if known is None or known[1] is not extra:
            return False
        return value_digest(value) == known[0]

    def found_unchanged(self, entry: Entry) -> None:
        """Remembers the value of an entry skipped as unchanged, when it is plain."""
        source, raw = entry.source, entry.raw
        if source is None or raw is None or holds_tag(raw):
            return
        digest = value_digest(source)
        if digest is not None:
            self._values[entry.key] = (digest, entry.extra)

    # ------------------------------------------------------------------ plans
    def plan(self, entry: Entry) -> Plan:
        """Decides what to send for an entry, from what MongoDB is known to hold."""
        if entry.planned is not None and entry.planned_at == self._version:
            return entry.planned
        plan = self._plan(entry)
        entry.planned, entry.planned_at = plan, self._version
        return plan

    def _plan(self, entry: Entry) -> Plan:
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
        if plan.kind == "replace" or upserted or not isinstance(known, _Partial | None):
            raw = entry.raw
            if entry.digests is LAZY and raw is not None and len(raw) <= _ENCODED_MAX:
                state: Digests | _Encoded = _Encoded(raw, is_tagged(entry.data or {}), entry.extra)
            else:
                state = entry_digests(entry) or {}
            self._put(key, state, entry.fingerprint)  # known whole
            return False
        self._put(key, _Partial(entry_digests(entry) or {}))
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
    unset_keys = () if new.keys() >= old.keys() else tuple(k for k in old if k not in new)
    plan = _DIFFS.get((set_keys, unset_keys, tagged))
    if plan is not None:
        return plan
    if not _all_addressable((*set_keys, *unset_keys), tagged):
        # keys a path cannot address: set with $setField (a plain mapping only)
        plan = REPLACE if tagged else Plan("diff", set_keys, unset_keys, by_field=True)
    else:
        plan = Plan("diff", set_keys, unset_keys)
    if len(_DIFFS) > _PLANS_MAX:
        _DIFFS.clear()
    _DIFFS[(set_keys, unset_keys, tagged)] = plan
    return plan


_DIFFS: dict[tuple[tuple[str, ...], tuple[str, ...], bool], Plan] = {}
"""The diff plans of the key changes seen (a bounded cache: entities of a kind change the same
keys)."""
_PLANS_MAX: Final = 4096


_MERGES: dict[tuple[str, ...], Plan] = {}
"""The merge plans of the key sets seen (a bounded cache: entities of a kind share their keys)."""


def _merge_plan(keys: tuple[str, ...], unset: tuple[str, ...] = ()) -> Plan:
    """Sets every key of the bot onto a document whose content is not known."""
    plan = None if unset else _MERGES.get(keys)
    if plan is not None:
        return plan
    if not _all_addressable((*keys, *unset) if unset else keys, TAG in keys):
        # keys a path cannot address: set with $setField (a plain mapping only)
        plan = REPLACE if TAG in keys else Plan("merge", keys, unset, by_field=True)
    else:
        plan = Plan("merge", keys, unset)
    if not unset:
        if len(_MERGES) > _PLANS_MAX:
            _MERGES.clear()
        _MERGES[keys] = plan
    return plan
