"""Writing a journal or a recovery file back into MongoDB: older never overwrites newer.

The records are those of :mod:`mongo_persistence._storage.journal` (which writes and parses the
format); this module checks them (:func:`read_recovery_file`) and restores them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymongo.errors import DuplicateKeyError

from mongo_persistence._storage.attempts import Attempts
from mongo_persistence._storage.entity import COLLECTIONS
from mongo_persistence._storage.entry import merge_update
from mongo_persistence._storage.journal import parse_records, record_problem


def record_error(record: Any) -> str | None:
    """What makes :paramref:`record` (a parsed line) no record to restore here, or :obj:`None`.

    The journal's rules (:func:`~mongo_persistence._storage.journal.record_problem`) and a
    collection of this package.
    """
    problem = record_problem(record)
    if problem is None and record["collection"] not in COLLECTIONS:
        problem = f"unknown collection {record['collection']!r}"
    return problem


def check_records(
    text: str, path: Path, *, namespace: str | None, check_namespace: bool
) -> list[dict[str, Any]]:
    """The records of a journal or recovery file, checked before anything is written.

    Args:
        text (:obj:`str`): The file's text.
        path (:class:`pathlib.Path`): The file (named in errors).
        namespace (:obj:`str` | :obj:`None`): The namespace the records are restored into.
        check_namespace (:obj:`bool`): Refuse records of another namespace.

    Raises:
        :class:`ValueError`: A record of another namespace, or a line that is not a record.
    """
    records = []
    for number, record in parse_records(text.splitlines()):
        problem = record_error(record)
        if problem is not None:
            raise ValueError(f"{path}, line {number}: {problem}")
        if check_namespace and record.get("namespace", namespace) != namespace:
            raise ValueError(
                f"{path}, line {number}: {record['entity']} belongs to namespace "
                f"{record['namespace']!r}, not to {namespace!r}; nothing was restored"
            )
        records.append(record)
    return records


async def _restore_record(collection: Any, record: dict[str, Any]) -> bool:
    """Writes one record unless the document was written after it; tells whether it did."""
    older = {
        "_id": record["_id"],
        "$or": [
            {"updated_at": {"$lt": record["at"]}},
            {"updated_at": {"$exists": False}},
        ],
    }
    if record["op"] == "delete":
        result = await collection.delete_one(older)
        return bool(result.deleted_count == 1) or not await collection.find_one(
            {"_id": record["_id"]}, {"_id": 1}
        )
    if record["op"] == "merge":
        result = await collection.update_one(
            older, merge_update(record["document"], record.get("unset", ()))
        )
    else:
        result = await collection.replace_one(older, record["document"])
    if result.matched_count == 1:
        return True
    try:
        await collection.insert_one(record["document"])
    except DuplicateKeyError:
        return False
    return True


async def restore_file(
    path: Path,
    *,
    collection: Callable[[str], Any],
    attempts: Attempts,
    namespace: str | None,
    check_namespace: bool,
) -> tuple[int, int]:
    """Writes the records of a journal or recovery file; returns (restored, skipped as older).

    Args:
        path (:class:`pathlib.Path`): The file.
        collection (Callable[[:obj:`str`], collection]): The collection object of a kind.
        attempts (:class:`~mongo_persistence._storage.attempts.Attempts`): Bounds each write.
        namespace (:obj:`str` | :obj:`None`): The namespace restored into.
        check_namespace (:obj:`bool`): Refuse a file of another namespace (nothing is written).

    Raises:
        :class:`ValueError`: See :func:`check_records`.
    """
    text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    records = check_records(text, path, namespace=namespace, check_namespace=check_namespace)
    restored = skipped = 0
    for record in records:
        done = await attempts.run(_restore_record(collection(record["collection"]), record))
        restored += done
        skipped += not done
    return restored, skipped
