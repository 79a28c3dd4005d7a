"""Rewrites documents of older encoding formats (0.1.0: dates as ISO text) in the current one.

Only the tagged values whose encoding changed (``datetime``, ``date``, ``timedelta``) are
rewritten; every other value of the document stays exactly as stored, byte for byte (bot
placeholders, Telegram objects, values written by other programs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from mongo_persistence._codec.codec import FORMAT_VERSION, TAG, Codec
from mongo_persistence._errors import DecodingError

__all__ = [
    "OLD_FORMAT_QUERY",
    "UPGRADED_FIELDS",
    "UpgradeResult",
    "holds_old_values",
    "is_current",
    "needs_upgrade",
    "upgrade_document",
    "upgrade_documents",
    "upgrade_value",
]

UPGRADED_FIELDS: Final = ("data", "attrs", "state", "key")
"""The fields of a document that hold encoded values."""

OLD_FORMAT_QUERY: Final = {"format": {"$not": {"$gte": FORMAT_VERSION}}}
"""Matches the documents written in an older format (no ``format`` field: 0.1.0)."""

_CODEC: Final = Codec()
_OLD_SHAPES: Final[dict[str, Callable[[dict[str, Any]], bool]]] = {
    "datetime": lambda doc: "value" in doc,
    "date": lambda doc: "value" in doc,
    "timedelta": lambda doc: "days" in doc,
}


def is_current(doc: Any) -> bool:
    """Tells whether a document records the current format."""
    stored = doc.get("format") if isinstance(doc, dict) else None
    return type(stored) is int and stored >= FORMAT_VERSION


_CONTAINERS: Final = (dict, list)


def holds_old_values(value: Any) -> bool:
    """Tells whether a stored value holds tags of an older format (nothing is decoded).

    One loop over a stack of the documents and arrays still to look into (no call per value:
    a document without ``format`` is looked through at every start until it is written).
    """
    stack: list[Any] = [value] if isinstance(value, _CONTAINERS) else []
    pop, push = stack.pop, stack.append
    while stack:
        current = pop()
        items: Iterable[Any] = current
        if isinstance(current, dict):
            tag = current.get(TAG)
            old = _OLD_SHAPES.get(tag) if type(tag) is str else None
            if old is not None and old(current):
                return True
            items = current.values()
        for item in items:
            if isinstance(item, _CONTAINERS):
                push(item)
    return False


def needs_upgrade(doc: Any) -> bool:
    """Tells whether a document holds values of an older format.

    A document without ``format`` (0.1.0, or written by another program) whose values all have
    the current shape needs none.
    """
    if is_current(doc):
        return False
    return any(holds_old_values(doc[name]) for name in UPGRADED_FIELDS if name in doc)


def upgrade_value(value: Any, _path: str = "") -> Any:
    """The stored value with its old date, time and duration tags in the current shape.

    Raises:
        :class:`mongo_persistence.DecodingError`: An old tag is malformed (its path is named,
            never its content).
    """
    if isinstance(value, list):
        return [upgrade_value(item, f"{_path}[{index}]") for index, item in enumerate(value)]
    if not isinstance(value, dict):
        return value
    tag = value.get(TAG)
    old = _OLD_SHAPES.get(tag) if type(tag) is str else None
    if old is not None and old(value):
        try:
            decoded = _CODEC.decode(value, entity="value")
        except DecodingError as exc:
            raise DecodingError("value", _path + exc.path, exc.reason) from None
        encoded = _CODEC.encode(decoded)
        if isinstance(encoded, dict) and "value" in encoded:
            return value  # an instant BSON dates cannot hold keeps its ISO text
        return encoded
    return {key: upgrade_value(item, f"{_path}[{key!r}]") for key, item in value.items()}


def upgrade_document(doc: dict[str, Any]) -> dict[str, Any]:
    """The document in the current format (``format`` set, values rewritten)."""
    out = dict(doc)
    for name in UPGRADED_FIELDS:
        if name in out:
            out[name] = upgrade_value(out[name], "" if name == "data" else f".{name}")
    out["format"] = FORMAT_VERSION
    return out


UPGRADED_COLLECTIONS: Final = (
    "user_data",
    "chat_data",
    "bot_data",
    "conversations",
    "callback_data",
)
"""The collections whose documents carry a ``format`` (jobs have their own plain fields)."""


@dataclass(slots=True)
class UpgradeResult:
    """What :func:`upgrade_documents` did.

    Attributes:
        found (dict[:obj:`str`, :obj:`int`]): Documents of an older format, by collection.
        upgraded (:obj:`int`): Documents rewritten (or, with ``dry_run``, to rewrite).
        raced (:obj:`int`): Documents the bot wrote meanwhile (left to it).
        failed (list[:obj:`str`]): ``collection[_id]: reason`` of documents that cannot be read.
    """

    found: dict[str, int] = field(default_factory=dict)
    upgraded: int = 0
    raced: int = 0
    failed: list[str] = field(default_factory=list)


async def upgrade_documents(
    database: Any,
    namespace: str | None,
    *,
    dry_run: bool = False,
    progress: Callable[[int], Any] | None = None,
    on_total: Callable[[int], Any] | None = None,
) -> UpgradeResult:
    """Rewrites every document of an older format in the current one.

    Idempotent and safe to stop and restart: only documents of an older format are read, and
    each is replaced only if it is still the version read (same ``updated_at``), so a write of a
    running bot in between is never overwritten.

    Args:
        database: An async database object.
        namespace (:obj:`str` | :obj:`None`): The namespace of the collections.
        dry_run (:obj:`bool`, optional): Count and check only.
        progress (Callable[[int], Any], optional): Called with 1 per document handled.
        on_total (Callable[[int], Any], optional): Called with the number of documents to handle.
    """
    result = UpgradeResult()
    collections = {}
    for kind in UPGRADED_COLLECTIONS:
        collection = database[f"{namespace}.{kind}" if namespace else kind]
        collections[kind] = collection
        result.found[kind] = await collection.count_documents(OLD_FORMAT_QUERY)
    if on_total is not None:
        on_total(sum(result.found.values()))
    for kind, collection in collections.items():
        if not result.found[kind]:
            continue
        async for doc in collection.find(OLD_FORMAT_QUERY).sort("_id", 1):
            if progress is not None:
                progress(1)
            await _upgrade_one(collection, kind, doc, result, dry_run=dry_run)
    return result


async def _upgrade_one(
    collection: Any, kind: str, doc: Any, result: UpgradeResult, *, dry_run: bool
) -> None:
    """Rewrites one document, unless the bot wrote it since it was read (same ``updated_at``)."""
    try:
        new = upgrade_document(doc)
    except DecodingError as exc:
        result.failed.append(f"{kind}[{doc['_id']!r}]{exc.path}: {exc.reason}")
        return
    if dry_run:
        result.upgraded += 1
        return
    stamp = doc.get("updated_at", _ABSENT)
    same = {"_id": doc["_id"], "updated_at": stamp}
    if stamp is _ABSENT:
        same["updated_at"] = {"$exists": False}
    replaced = await collection.replace_one(same, new)
    if replaced.matched_count:
        result.upgraded += 1
    else:
        result.raced += 1


_ABSENT: Final = object()
