"""What goes on the wire for a batch of planned operations: ``bulk_write`` or one per document."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from pymongo import DeleteOne, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError, OperationFailure, WriteConcernError

from mongo_persistence._storage.attempts import Attempts
from mongo_persistence._storage.tracker import Op

Outcome = tuple[dict[int, BaseException], set[int]]
"""The errors of a batch by operation index, and the indexes of the operations that upserted."""


def _model(op: Op) -> ReplaceOne[Any] | UpdateOne | DeleteOne:
    """The ``bulk_write`` model of an operation."""
    if op.kind == "delete":
        return DeleteOne(op.filter)
    if op.kind == "replace":
        return ReplaceOne(op.filter, op.document or {}, upsert=True)
    return UpdateOne(op.filter, op.document or {}, upsert=True)


async def _send_one(collection: Any, op: Op) -> bool:
    """Sends one operation with the plain CRUD methods; returns whether it upserted."""
    if op.kind == "delete":
        await collection.delete_one(op.filter)
        return False
    method = collection.replace_one if op.kind == "replace" else collection.update_one
    result = await method(op.filter, op.document, upsert=True)
    return result.upserted_id is not None


def _bulk_errors(exc: BulkWriteError, count: int) -> Outcome:
    """The per-operation errors and upserts of a ``bulk_write`` that failed in part."""
    errors: dict[int, BaseException] = {}
    for error in exc.details.get("writeErrors", []):
        errors[error["index"]] = OperationFailure(
            error.get("errmsg", "write error"), error.get("code"), error
        )
    upserted = {u["index"] for u in exc.details.get("upserted", [])}
    if exc.details.get("writeConcernErrors"):
        concern = exc.details["writeConcernErrors"][0]
        failure = WriteConcernError(
            concern.get("errmsg", "write concern error"), concern.get("code"), concern
        )
        errors = dict.fromkeys(range(count), failure)
    return errors, upserted


async def send_bulk(attempts: Attempts, collection: Any, ops: Iterable[Op]) -> Outcome:
    """One unordered ``bulk_write`` within its deadline."""
    models = [_model(op) for op in ops]
    count = len(models)
    try:
        result = await attempts.run(collection.bulk_write(models, ordered=False), size=count)
    except BulkWriteError as exc:
        return _bulk_errors(exc, count)
    except Exception as exc:  # noqa: BLE001 - every entry gets the error
        return dict.fromkeys(range(count), exc), set()
    return {}, set(result.upserted_ids)


async def send_each(attempts: Attempts, collection: Any, ops: Iterable[Op]) -> Outcome:
    """One request per document (``bulk_write=False``), each within its deadline."""
    results = await asyncio.gather(
        *(attempts.run(_send_one(collection, op)) for op in ops), return_exceptions=True
    )
    errors = {i: r for i, r in enumerate(results) if isinstance(r, BaseException)}
    return errors, {i for i, r in enumerate(results) if r is True}
