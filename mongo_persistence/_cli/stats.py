"""Statistics of a namespace's collections, and the namespaces a database holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pymongo.errors import OperationFailure

from mongo_persistence._storage.entity import COLLECTIONS
from mongo_persistence._storage.store import MongoStore


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
