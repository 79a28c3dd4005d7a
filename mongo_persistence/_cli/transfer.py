"""Backups of a namespace as Extended JSON lines, and statistics of the collections.

An export is a text file with one JSON object per line, in canonical Extended JSON (so that
``1``, ``Int64(1)`` and ``1.0`` stay what they were, and dates, binaries... come back exactly):

- first a header: ``{"format": "mongo_persistence-export", "version": 1, "database": ...,
  "namespace": ..., "exported_at": ...}``;
- then one line per document: ``{"kind": "user_data", "document": {...}}``, the kind being one of
  ``user_data``, ``chat_data``, ``bot_data``, ``conversations``, ``callback_data``;
- last a trailer: ``{"end": {"documents": N, "counts": {kind: n, ...}}}``, so that a cut file is
  noticed.

Importing replaces each document by ``_id`` (upsert): importing the same file twice leaves the
same documents.

This module knows nothing about the command line; :mod:`mongo_persistence._cli.cli` drives it.
"""

from __future__ import annotations

import datetime as dtm
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

from bson import json_util
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.json_util import JSONMode, JSONOptions
from pymongo import ReplaceOne
from pymongo.errors import OperationFailure

from mongo_persistence._errors import ExportFormatError
from mongo_persistence._storage.store import COLLECTIONS, MongoStore

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "JSON_OPTIONS",
    "CollectionStats",
    "ExportFormatError",
    "ExportHeader",
    "RecoveryFileInfo",
    "check_recovery_file",
    "collection_stats",
    "export_namespace",
    "find_namespaces",
    "import_records",
    "read_export",
]

EXPORT_FORMAT: Final = "mongo_persistence-export"
"""The ``format`` field of an export's header line."""

EXPORT_VERSION: Final = 1
"""The ``version`` field of an export's header line."""

JSON_OPTIONS: Final = JSONOptions(
    json_mode=JSONMode.CANONICAL,
    datetime_conversion=DatetimeConversion.DATETIME_AUTO,
    tz_aware=True,
    tzinfo=dtm.timezone.utc,
)
"""Canonical Extended JSON; dates outside Python's range are kept as milliseconds."""

READ_OPTIONS: Final[CodecOptions[dict[str, Any]]] = CodecOptions(
    document_class=dict, datetime_conversion=DatetimeConversion.DATETIME_AUTO
)
"""How documents are read for an export: every BSON value keeps its type."""

_BATCH: Final = 1000
_RECOVERY_KEYS: Final = frozenset({"collection", "_id", "op", "at", "document"})


@dataclass(frozen=True, slots=True)
class ExportHeader:
    """What the header and the trailer of an export say.

    Attributes:
        database (:obj:`str`): The database it was exported from.
        namespace (:obj:`str` | :obj:`None`): The namespace it was exported from.
        exported_at (:obj:`object`): When.
        counts (dict[:obj:`str`, :obj:`int`]): Documents per kind.
    """

    database: str
    namespace: str | None
    exported_at: Any
    counts: dict[str, int]

    @property
    def total(self) -> int:
        """The number of documents."""
        return sum(self.counts.values())


def _dumps(value: Any) -> str:
    return json_util.dumps(value, json_options=JSON_OPTIONS, ensure_ascii=False)


async def export_namespace(
    store: MongoStore,
    handle: TextIO,
    *,
    database: str,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Writes every document of the store's namespace to :paramref:`handle`.

    Args:
        store (:class:`~mongo_persistence._storage.store.MongoStore`): The namespace.
        handle (:obj:`typing.TextIO`): Where the lines go.
        database (:obj:`str`): The database name, recorded in the header.
        progress (Callable[[:obj:`int`], :obj:`None`], optional): Called with the number of
            documents written since the last call.

    Returns:
        dict[:obj:`str`, :obj:`int`]: Documents per kind.
    """
    header = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "database": database,
        "namespace": store.namespace,
        "exported_at": dtm.datetime.now(dtm.timezone.utc),
    }
    handle.write(_dumps(header) + "\n")
    counts = dict.fromkeys(COLLECTIONS, 0)
    for kind in COLLECTIONS:
        collection = store.collection(kind).with_options(codec_options=READ_OPTIONS)
        pending = 0
        async for doc in collection.find({}, sort=[("_id", 1)], batch_size=_BATCH):
            handle.write(_dumps({"kind": kind, "document": doc}) + "\n")
            counts[kind] += 1
            pending += 1
            if progress is not None and pending >= 100:
                progress(pending)
                pending = 0
        if progress is not None and pending:
            progress(pending)
    trailer = {"end": {"documents": sum(counts.values()), "counts": counts}}
    handle.write(_dumps(trailer) + "\n")
    return counts


def _parse(line: str, number: int, where: str) -> Any:
    try:
        return json_util.loads(line, json_options=JSON_OPTIONS)
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise ExportFormatError(f"{where}, line {number}: not Extended JSON ({exc})") from None


def read_export(  # noqa: C901 - owned by the api branch; split there
    lines: Iterable[str], *, where: str = "the export"
) -> tuple[ExportHeader, Iterator[tuple[str, dict[str, Any]]]]:
    """Checks a whole export and returns its header and a reader of its documents.

    The lines are read twice when :paramref:`lines` can be iterated twice (a list, an object
    that re-opens the file each time); a one-shot iterable (an iterator, a generator, an open
    file) is read into a list first.

    Args:
        lines (Iterable[:obj:`str`]): The lines of the file.
        where (:obj:`str`, optional): Names the file in error messages.

    Returns:
        (:class:`ExportHeader`, Iterator[(:obj:`str`, :obj:`dict`)]): The header, and
        ``(kind, document)`` pairs.

    Raises:
        :class:`ExportFormatError`: It is not a complete export.
    """
    if iter(lines) is lines:  # one pass only: the check below would use it up
        lines = list(lines)
    header: dict[str, Any] | None = None
    counts = dict.fromkeys(COLLECTIONS, 0)
    trailer: dict[str, Any] | None = None
    number = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if header is None:
            if not line.lstrip().startswith("{"):
                raise ExportFormatError(
                    f"{where} is not a mongo-persistence export (its first line is not JSON)"
                )
            record = _parse(line, number, where)
            if not isinstance(record, dict) or record.get("format") != EXPORT_FORMAT:
                raise ExportFormatError(
                    f"{where} is not a mongo-persistence export (its first line must be the "
                    f'header with "format": "{EXPORT_FORMAT}")'
                )
            if record.get("version") != EXPORT_VERSION:
                raise ExportFormatError(
                    f"{where} is an export of version {record.get('version')!r}; this tool reads "
                    f"version {EXPORT_VERSION}"
                )
            header = record
            continue
        if trailer is not None:
            raise ExportFormatError(f"{where}, line {number}: data after the end line")
        record = _parse(line, number, where)
        if isinstance(record, dict) and "end" in record:
            trailer = record["end"]
            continue
        kind, _ = _check_record(record, number, where)
        counts[kind] += 1
    if header is None:
        raise ExportFormatError(f"{where} is empty: not a mongo-persistence export")
    if trailer is None:
        raise ExportFormatError(
            f"{where} is incomplete: its end line is missing (the file was cut short?)"
        )
    if not isinstance(trailer, dict) or trailer.get("documents") != sum(counts.values()):
        expected = trailer.get("documents") if isinstance(trailer, dict) else trailer
        raise ExportFormatError(
            f"{where} is incomplete: it holds {sum(counts.values())} documents, its end line "
            f"says {expected!r}"
        )
    namespace = header.get("namespace")
    info = ExportHeader(
        database=str(header.get("database", "")),
        namespace=namespace if isinstance(namespace, str) and namespace else None,
        exported_at=header.get("exported_at"),
        counts=counts,
    )
    return info, _records(lines, where)


def _check_record(record: Any, number: int, where: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(record, dict) or set(record) != {"kind", "document"}:
        raise ExportFormatError(
            f'{where}, line {number}: expected {{"kind": ..., "document": ...}}'
        )
    kind = record["kind"]
    document = record["document"]
    if kind not in COLLECTIONS:
        raise ExportFormatError(f"{where}, line {number}: unknown kind {kind!r}")
    if not isinstance(document, dict) or "_id" not in document:
        raise ExportFormatError(f"{where}, line {number}: the document has no _id")
    return kind, document


def _records(lines: Iterable[str], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    started = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if not started:
            started = True  # the header
            continue
        record = _parse(line, number, where)
        if isinstance(record, dict) and "end" in record:
            return
        yield _check_record(record, number, where)


async def import_records(
    store: MongoStore,
    records: Iterable[tuple[str, dict[str, Any]]],
    *,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Writes documents into the store's namespace, replacing each one by ``_id`` (upsert).

    Args:
        store (:class:`~mongo_persistence._storage.store.MongoStore`): The target namespace.
        records (Iterable[(:obj:`str`, :obj:`dict`)]): ``(kind, document)`` pairs.
        progress (Callable[[:obj:`int`], :obj:`None`], optional): Called with the number of
            documents written since the last call.

    Returns:
        dict[:obj:`str`, :obj:`int`]: Documents written per kind.
    """
    await store.ensure_ready()
    counts = dict.fromkeys(COLLECTIONS, 0)
    batches: dict[str, list[ReplaceOne[Any]]] = {kind: [] for kind in COLLECTIONS}

    async def send(kind: str) -> None:
        batch = batches[kind]
        if batch:
            await store.collection(kind).bulk_write(batch, ordered=False)
            counts[kind] += len(batch)
            if progress is not None:
                progress(len(batch))
            batches[kind] = []

    for kind, document in records:
        batches[kind].append(ReplaceOne({"_id": document["_id"]}, document, upsert=True))
        if len(batches[kind]) >= _BATCH:
            await send(kind)
    for kind in COLLECTIONS:
        await send(kind)
    return counts


# ====================================================================== statistics
@dataclass(slots=True)
class CollectionStats:
    """Size figures of one collection.

    Attributes:
        kind (:obj:`str`): ``user_data``...
        name (:obj:`str`): The collection's name.
        count (:obj:`int`): Documents.
        data_size (:obj:`int`): The BSON size of all documents, in bytes.
        largest (:obj:`int`): The BSON size of the largest document, in bytes.
        storage_size (:obj:`int` | :obj:`None`): Bytes on disk, when the server tells.
        index_size (:obj:`int` | :obj:`None`): Bytes of all indexes, when the server tells.
    """

    kind: str
    name: str
    count: int = 0
    data_size: int = 0
    largest: int = 0
    storage_size: int | None = None
    index_size: int | None = None
    notes: list[str] = field(default_factory=list)


async def collection_stats(store: MongoStore, kind: str) -> CollectionStats:
    """Counts the documents of a collection and measures them.

    The sizes are summed with ``$bsonSize`` (MongoDB 4.4+); storage and index sizes come from the
    ``collStats`` command when the server has it.

    Args:
        store (:class:`~mongo_persistence._storage.store.MongoStore`): The namespace.
        kind (:obj:`str`): The kind of data.
    """
    collection = store.collection(kind)
    stats = CollectionStats(kind, store.collection_name(kind))
    pipeline: list[dict[str, Any]] = [
        {"$project": {"size": {"$bsonSize": "$$ROOT"}}},
        {
            "$group": {
                "_id": None,
                "count": {"$sum": 1},
                "size": {"$sum": "$size"},
                "largest": {"$max": "$size"},
            }
        },
    ]
    try:
        cursor = await collection.aggregate(pipeline)
        rows = await cursor.to_list()
        if rows:
            stats.count = int(rows[0]["count"])
            stats.data_size = int(rows[0]["size"])
            stats.largest = int(rows[0]["largest"] or 0)
    except OperationFailure:  # no $bsonSize before MongoDB 4.4
        stats.count = await collection.count_documents({})
        stats.notes.append("sizes from collStats")
    try:
        info = await store.database.command("collStats", stats.name)
    except OperationFailure:
        return stats
    if not stats.data_size and isinstance(info.get("size"), int | float):
        stats.data_size = int(info["size"])
    for attribute, key in (("storage_size", "storageSize"), ("index_size", "totalIndexSize")):
        value = info.get(key)
        if isinstance(value, int | float):
            setattr(stats, attribute, int(value))
    return stats


async def find_namespaces(database: Any) -> list[str | None]:
    """The namespaces that have at least one collection in :paramref:`database`.

    Args:
        database: An async database object.

    Returns:
        list[:obj:`str` | :obj:`None`]: :obj:`None` stands for the collections without a
        namespace; sorted, :obj:`None` first.
    """
    found: set[str | None] = set()
    for name in await database.list_collection_names():
        if name in COLLECTIONS:
            found.add(None)
            continue
        namespace, dot, kind = name.rpartition(".")
        if dot and namespace and kind in COLLECTIONS and not name.startswith("system."):
            found.add(namespace)
    return sorted(found, key=lambda ns: (ns is not None, ns or ""))


@dataclass(slots=True)
class RecoveryFileInfo:
    """What a recovery file holds.

    Attributes:
        ops (dict[:obj:`str`, :obj:`int`]): Records per operation (``replace``, ``merge``,
            ``delete``).
        database (:obj:`str` | :obj:`None`): The bot's database, when the file names it.
        namespace (:obj:`str` | :obj:`None`): The bot's namespace, when the file names it.
        names_namespace (:obj:`bool`): Whether the file names the namespace (files of older
            versions do not).
    """

    ops: dict[str, int] = field(default_factory=lambda: {"replace": 0, "merge": 0, "delete": 0})
    database: str | None = None
    namespace: str | None = None
    names_namespace: bool = False

    @property
    def total(self) -> int:
        """The number of records."""
        return sum(self.ops.values())


def _check_recovery_record(record: Any, where: str) -> dict[str, Any]:
    if not isinstance(record, dict) or not set(record) >= _RECOVERY_KEYS:
        raise ExportFormatError(
            f"{where}: not a recovery file record (expected the keys "
            f"{', '.join(sorted(_RECOVERY_KEYS))})"
        )
    if record["collection"] not in COLLECTIONS:
        raise ExportFormatError(f"{where}: unknown collection {record['collection']!r}")
    op = record["op"]
    document = record["document"]
    if op in ("replace", "merge"):
        if not isinstance(document, dict) or document.get("_id") != record["_id"]:
            raise ExportFormatError(f"{where}: the document does not match _id")
    elif op != "delete":
        raise ExportFormatError(f"{where}: unknown op {op!r}")
    if not isinstance(record["at"], dtm.datetime):
        raise ExportFormatError(f"{where}: 'at' is not a date")
    return record


def check_recovery_file(lines: Iterable[str], *, where: str = "the file") -> RecoveryFileInfo:
    """Checks that every line is a record of a recovery file written by ``MongoPersistence.flush``.

    Args:
        lines (Iterable[:obj:`str`]): The lines of the file.
        where (:obj:`str`, optional): Names the file in error messages.

    Returns:
        :class:`RecoveryFileInfo`: Its counts, database and namespace.

    Raises:
        :class:`ExportFormatError`: It is not a recovery file, or its records name several
            databases or namespaces.
    """
    info = RecoveryFileInfo()
    databases: set[Any] = set()
    namespaces: set[Any] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if not line.lstrip().startswith("{"):
            raise ExportFormatError(
                f"{where}, line {number}: not a recovery file record (not JSON)"
            )
        record = _check_recovery_record(_parse(line, number, where), f"{where}, line {number}")
        if "database" in record:
            databases.add(record["database"])
        if "namespace" in record:
            namespaces.add(record["namespace"])
        info.ops[record["op"]] += 1
    if not info.total:
        raise ExportFormatError(f"{where} holds no records: not a recovery file")
    if len(databases) > 1 or len(namespaces) > 1:
        raise ExportFormatError(f"{where} mixes records of several databases or namespaces")
    if databases:
        database = databases.pop()
        info.database = database if isinstance(database, str) and database else None
    if namespaces:
        namespace = namespaces.pop()
        info.names_namespace = True
        info.namespace = namespace if isinstance(namespace, str) and namespace else None
    return info
