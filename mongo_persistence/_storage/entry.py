"""What the writer sends for one entity: the :class:`Entry`, its :class:`Plan` and :class:`Op`."""

from __future__ import annotations

import asyncio
import datetime as dtm
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from mongo_persistence._storage.fingerprints import (
    _SUB,
    _VALUE,
    EXTRA_PREFIX,
    Digests,
    _field,
    _tagged_value,
    encoded_digests,
    flat_fields,
    keyed_digests,
    path_safe,
)

__all__ = [
    "DELETE",
    "LAZY",
    "REPLACE",
    "SKIP",
    "Entry",
    "Op",
    "Plan",
    "entry_digests",
    "entry_keys",
    "is_tagged",
    "now_utc",
]

LAZY: Final[Digests] = {}
"""The per-key fingerprints of an entry not computed yet (compared by identity): the tracker
computes them from its ``data`` and ``extra`` when a plan needs them (:func:`entry_digests`)."""


def entry_digests(entry: Entry) -> Digests | None:
    """The per-key fingerprints of an entry, computed now if they were not (:data:`LAZY`)."""
    digests = entry.digests
    if digests is not LAZY or entry.data is None:
        return digests
    if entry.raw is None:
        digests = keyed_digests(entry.data, entry.extra)
    else:
        digests = encoded_digests(entry.raw, is_tagged(entry.data), entry.extra)
        entry.raw = None
    entry.digests = digests
    return digests


def is_tagged(data: Mapping[str, Any]) -> bool:
    """Tells whether encoded ``data`` is a dict with non-string keys (fingerprinted per key)."""
    return _tagged_value(data) is not None


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


def now_utc() -> dtm.datetime:
    """The time now, as an aware UTC date (a document's ``updated_at``)."""
    return dtm.datetime.now(dtm.timezone.utc)


@dataclass(frozen=True, slots=True)
class Plan:
    """What to send for one entity.

    Attributes:
        kind (:obj:`str`): ``"skip"``, ``"delete"``, ``"replace"`` (the whole document),
            ``"diff"`` (the changed keys, against what MongoDB acknowledged) or ``"merge"`` (every
            key the bot holds, set onto a document whose content is not known).
        set_keys (tuple[:obj:`str`, ...]): With ``"diff"``/``"merge"``, the keys to set.
        unset_keys (tuple[:obj:`str`, ...]): With ``"diff"``, the keys that are gone.
        by_field (:obj:`bool`): Some keys cannot be addressed by a path (``"a.b"``, ``"$x"``):
            the update is a pipeline that sets them with ``$setField`` (MongoDB 5.0).
    """

    kind: str
    set_keys: tuple[str, ...] = ()
    unset_keys: tuple[str, ...] = ()
    by_field: bool = False


SKIP: Final = Plan("skip")
REPLACE: Final = Plan("replace")
DELETE: Final = Plan("delete")


class Op(NamedTuple):
    """One operation on the wire: ``"replace"`` (upsert), ``"update"`` (upsert) or ``"delete"``.

    Attributes:
        kind (:obj:`str`): The operation.
        filter (dict): Selects the document (by ``_id``).
        document (dict | None): The replacement, or the update (``$set``/``$unset``).
    """

    kind: str
    filter: dict[str, Any]
    document: dict[str, Any] | list[dict[str, Any]] | None = None


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
    waiters: asyncio.Future[None] | list[asyncio.Future[None]] | None = None
    """The future of each caller waiting for its answer: one (most entries: no list to keep
    alive while the write goes on), several, or none."""
    attempts: int = 0
    abandoned: bool = False
    """Saved to a recovery file by :meth:`MongoStore.flush`: a late outcome changes nothing."""
    at: float = field(default_factory=time.time)
    """``time.time()`` when it was handed over (the journal's "older never overwrites newer"
    compares it, as :attr:`handed_at`)."""
    since: float = field(default_factory=time.monotonic)
    """``time.monotonic()`` when its oldest unsaved change was handed over."""
    raw: bytes | None = None
    """Its ``data`` as BSON, until its per-key fingerprints are computed from it."""
    fingerprint: bytes | None = None
    """The fingerprint of the whole entity (:func:`fingerprint`): equal to the one of what MongoDB
    holds, nothing is sent, and no per-key fingerprint is computed."""
    planned: Plan | None = None
    """The tracker's last plan for it, valid while the tracker's state is that of
    :attr:`planned_at` (one plan per entry, not one when handed over and one when sent)."""
    planned_at: int = -1
    source: object = None
    """The plain ``dict`` it was encoded from (a deep copy PTB handed over), else :obj:`None`:
    remembered by its fingerprint when it is found unchanged
    (:meth:`~mongo_persistence._storage.tracker.StateTracker.found_unchanged`)."""

    @property
    def key(self) -> tuple[str, Any]:
        """(collection, _id)."""
        return (self.collection, self.doc_id)

    @property
    def handed_at(self) -> dtm.datetime:
        """When it was handed over, as an aware UTC date."""
        return dtm.datetime.fromtimestamp(self.at, dtm.timezone.utc)

    def keys(self) -> tuple[str, ...]:
        """The keys of its fingerprints (:func:`entry_keys`)."""
        return entry_keys(self)

    def replacement(self, now: dtm.datetime | None = None) -> dict[str, Any]:
        """The whole document (``field_name=""`` puts the fields of ``data`` at the top level).

        Its ``updated_at`` is :paramref:`now` (one date for a batch), else the time of the call.
        """
        fields = {self.field_name: self.data} if self.field_name else dict(self.data or {})
        return {"_id": self.doc_id, **fields, **self.extra, "updated_at": now or now_utc()}

    def set_update(
        self, keys: Iterable[str], unset: Iterable[str] = (), now: dtm.datetime | None = None
    ) -> dict[str, Any]:
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
        fields["updated_at"] = now or now_utc()
        update: dict[str, Any] = {"$set": fields}
        if unset:
            removed = {k[1:] if k[:1] == EXTRA_PREFIX else prefix + k: "" for k in unset}
            for name in self.extra:  # a field set by every write is never unset by it
                removed.pop(name, None)
            if removed:
                update["$unset"] = removed
        return update

    def op_kind(self, plan: Plan) -> str:
        """The kind of the operation :meth:`op` makes for :paramref:`plan`."""
        if plan.kind == "delete" or self.data is None:
            return "delete"
        return "replace" if plan.kind == "replace" else "update"

    def op(self, plan: Plan, now: dtm.datetime | None = None) -> Op:
        """The operation that carries out :paramref:`plan` (``updated_at``: :paramref:`now`)."""
        where = {"_id": self.doc_id}
        kind, data = self.op_kind(plan), self.data
        if kind == "delete" or data is None:
            return Op("delete", where)
        now = now or now_utc()
        if kind == "replace":
            return Op("replace", where, self.replacement(now))
        if plan.by_field:
            extra = {**self.extra, "updated_at": now}
            pipeline = field_pipeline(data, plan.set_keys, plan.unset_keys, extra)
            return Op("update", where, pipeline)
        return Op("update", where, self.set_update(plan.set_keys, plan.unset_keys, now))

    def waiting(self) -> list[asyncio.Future[None]]:
        """The futures of the callers waiting for its answer."""
        waiters = self.waiters
        if waiters is None:
            return []
        return waiters if isinstance(waiters, list) else [waiters]

    def wait_for(self, future: asyncio.Future[None]) -> None:
        """Adds the future of a caller waiting for its answer."""
        waiters = self.waiters
        if waiters is None:
            self.waiters = future  # the common case: no list at all
        elif isinstance(waiters, list):
            waiters.append(future)  # its own list (:meth:`_keep` makes a new one)
        else:
            self.waiters = [waiters, future]

    def take_waiters(self, older: Entry) -> None:
        """Answers the callers waiting for an older entry of the same document too.

        The older entry keeps them: they are answered by whichever is settled first.
        """
        self._keep([*older.waiting(), *self.waiting()])

    def _keep(self, waiters: list[asyncio.Future[None]]) -> None:
        self.waiters = None if not waiters else waiters[0] if len(waiters) == 1 else waiters

    def settle(self, error: BaseException | None) -> None:
        """Resolves every caller waiting for this entry (with the error, if any)."""
        waiters, self.waiters = self.waiting(), None
        for future in waiters:
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)


def _literal(value: Any) -> dict[str, Any]:
    return {"$literal": value}


def field_pipeline(
    data: Mapping[str, Any], keys: Iterable[str], unset: Iterable[str], extra: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The update pipeline that sets these keys of ``data`` and unsets others, whatever their names.

    Keys a path cannot address (``"a.b"``, ``"$x"``) with ``$setField``, the others by path, and
    :paramref:`extra` (the other top-level fields) as they are. Every value is a ``$literal``:
    nothing in it is read as an expression.
    """
    expression: Any = {"$ifNull": ["$data", {}]}
    top: dict[str, Any] = {}
    for key in keys:
        if key[:1] == EXTRA_PREFIX:
            continue
        if path_safe(key):
            top[f"data.{key}"] = _literal(data[key])
        else:
            change = {"field": _literal(key), "input": expression, "value": _literal(data[key])}
            expression = {"$setField": change}
    for key in unset:
        if key[:1] == EXTRA_PREFIX:
            if key[1:] not in extra:  # a field set by every write is never unset by it
                top[key[1:]] = "$$REMOVE"
        elif path_safe(key):
            top[f"data.{key}"] = "$$REMOVE"
        else:
            change = {"field": _literal(key), "input": expression, "value": "$$REMOVE"}
            expression = {"$setField": change}
    top.update((name, _literal(value)) for name, value in extra.items())
    return [{"$set": {"data": expression}}, {"$set": top}]


def merge_update(
    document: Mapping[str, Any], unset: Iterable[str] = ()
) -> dict[str, Any] | list[dict[str, Any]]:
    """The update of a journaled ``merge``.

    The keys of its ``data`` set onto the stored document (one by one), the keys of
    :paramref:`unset` removed, its other fields set.
    """
    data = document.get("data", {})
    unset = tuple(unset)
    extra = {k: v for k, v in document.items() if k not in ("_id", "data")}
    tagged = _tagged_value(data) is not None
    if not tagged and not all(path_safe(k) for k in (*data, *unset) if k[:1] != EXTRA_PREFIX):
        return field_pipeline(data, tuple(data), unset, extra)
    fields = {f"data.{k}": v for k, v in flat_fields(data).items()}
    fields.update(extra)
    update: dict[str, Any] = {"$set": fields}
    removed = {f"data.{k}": "" for k in unset if not k.startswith(EXTRA_PREFIX)}
    if removed:
        update["$unset"] = removed
    return update
