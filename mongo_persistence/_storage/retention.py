"""Retention: documents that MongoDB deletes by itself, and one-off clean-ups.

With ``MongoPersistence(expire_after={"users": ..., "chats": ..., "conversations": ...})``
every write of such a document sets ``expire_at`` (a BSON date: now plus the duration), and a TTL
index on ``expire_at`` (``expireAfterSeconds: 0``) lets the server delete the documents whose time
has come. MongoDB's TTL monitor runs about once a minute.
"""

from __future__ import annotations

import datetime as dtm
import re
from collections.abc import Mapping
from typing import Any, Final

from mongo_persistence._storage.entity import EXPIRE_KINDS

TTL_INDEX: Final = "expire_at_ttl"
"""The name of the TTL index on ``expire_at``."""

_MAX_STEP: Final = dtm.timedelta(hours=1)
_AGE: Final = re.compile(r"([0-9]+)([smhdw])")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> dtm.timedelta:
    """``"180d"``, ``"12h"``, ``"30m"``, ``"90s"``, ``"2w"`` as a duration.

    Raises:
        :class:`ValueError`: Not such a duration.
    """
    match = _AGE.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"{text!r} is not a duration such as 180d, 12h, 30m, 90s or 2w (a positive number)"
        )
    return dtm.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_expire_after(
    value: Mapping[str, dtm.timedelta | float | str] | None,
) -> dict[str, dtm.timedelta]:
    """Checks ``expire_after``; returns the durations by collection kind (``user_data``...).

    Raises:
        :class:`ValueError`: An unknown kind, or a duration that is not positive.
    """
    out: dict[str, dtm.timedelta] = {}
    for kind, duration in (value or {}).items():
        collection = EXPIRE_KINDS.get(kind)
        if collection is None:
            raise ValueError(f"expire_after: unknown kind {kind!r}; use {', '.join(EXPIRE_KINDS)}")
        if isinstance(duration, str):
            delta = parse_age(duration)
        elif isinstance(duration, dtm.timedelta):
            delta = duration
        elif isinstance(duration, int | float) and not isinstance(duration, bool):
            delta = dtm.timedelta(seconds=duration)
        else:
            raise ValueError(f"expire_after[{kind!r}] must be a timedelta, seconds or '180d'")
        if delta <= dtm.timedelta(0):
            raise ValueError(f"expire_after[{kind!r}] must be positive")
        out[collection] = delta
    return out


def expire_at(after: dtm.timedelta, now: dtm.datetime | None = None) -> dtm.datetime:
    """The ``expire_at`` of a document written now: now plus :paramref:`after`.

    Rounded down to a step of 1 % of :paramref:`after` (at least a second, at most an hour), so
    that an entity written again and again with the same data is not rewritten for a new
    ``expire_at`` more than once per step.
    """
    now = now or dtm.datetime.now(dtm.timezone.utc)
    step = min(max(after / 100, dtm.timedelta(seconds=1)), _MAX_STEP)
    at = now + after
    epoch = dtm.datetime(1970, 1, 1, tzinfo=dtm.timezone.utc)
    steps = (at - epoch) // step
    return epoch + steps * step


async def purge(
    database: Any,
    namespace: str | None,
    kinds: list[str],
    older_than: dtm.timedelta,
    *,
    dry_run: bool,
) -> dict[str, int]:
    """Deletes (or with :paramref:`dry_run` counts) the documents not written for a while.

    Args:
        database: An async database object.
        namespace (:obj:`str` | :obj:`None`): The namespace of the collections.
        kinds (list[:obj:`str`]): Keys of :data:`EXPIRE_KINDS`.
        older_than (:class:`datetime.timedelta`): Documents whose ``updated_at`` is older go.
        dry_run (:obj:`bool`): Count only.

    Returns:
        dict[:obj:`str`, :obj:`int`]: By kind, how many documents were (or would be) deleted.
    """
    cutoff = dtm.datetime.now(dtm.timezone.utc) - older_than
    query = {"updated_at": {"$lt": cutoff}}
    out = {}
    for kind in kinds:
        name = EXPIRE_KINDS[kind]
        collection = database[f"{namespace}.{name}" if namespace else name]
        if dry_run:
            out[kind] = await collection.count_documents(query)
        else:
            out[kind] = (await collection.delete_many(query)).deleted_count
    return out
