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

This module knows nothing about the command line; :mod:`mongo_persistence._cli.backup` drives it.
"""

from __future__ import annotations

import datetime as dtm
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final, TextIO

from bson import json_util
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.json_util import JSONMode, JSONOptions
from pymongo import ReplaceOne

from mongo_persistence._errors import ExportFormatError
from mongo_persistence._storage.entity import COLLECTIONS
from mongo_persistence._storage.store import MongoStore

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "JSON_OPTIONS",
    "ExportFormatError",
    "ExportHeader",
    "export_namespace",
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


def read_export(
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
    numbered = _numbered(lines)
    first = next(numbered, None)
    if first is None:
        raise ExportFormatError(f"{where} is empty: not a mongo-persistence export")
    header = _header(*first, where)
    namespace = header.get("namespace")
    info = ExportHeader(
        database=str(header.get("database", "")),
        namespace=namespace if isinstance(namespace, str) and namespace else None,
        exported_at=header.get("exported_at"),
        counts=_count_records(numbered, where),
    )
    return info, _records(lines, where)


def _numbered(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """The lines that are not blank, with their numbers."""
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield number, line


def _header(number: int, line: str, where: str) -> dict[str, Any]:
    """The header line, checked: the format and its version."""
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
    return record


def _count_records(numbered: Iterator[tuple[int, str]], where: str) -> dict[str, int]:
    """Checks the lines after the header up to the end line; returns the documents per kind."""
    counts = dict.fromkeys(COLLECTIONS, 0)
    for number, line in numbered:
        record = _parse(line, number, where)
        if isinstance(record, dict) and "end" in record:
            after = next(numbered, None)
            if after is not None:
                raise ExportFormatError(f"{where}, line {after[0]}: data after the end line")
            _check_end(record["end"], sum(counts.values()), where)
            return counts
        kind, _ = _check_record(record, number, where)
        counts[kind] += 1
    raise ExportFormatError(
        f"{where} is incomplete: its end line is missing (the file was cut short?)"
    )


def _check_end(trailer: Any, documents: int, where: str) -> None:
    """The end line must count the documents read."""
    if not isinstance(trailer, dict) or trailer.get("documents") != documents:
        expected = trailer.get("documents") if isinstance(trailer, dict) else trailer
        raise ExportFormatError(
            f"{where} is incomplete: it holds {documents} documents, its end line says {expected!r}"
        )


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
