"""Codec round trips through the public API: a persistence writes, a fresh one reads back.

What is stored is read with the test's own PyMongo client; hostile documents are planted with it.
The constants are the documented values (spelled here, not imported from the package).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from telegram import Bot

from mongo_persistence import MongoPersistence

Factory = Callable[..., MongoPersistence[Any, Any, Any]]

TAG = "__type__"
"""The key of a tagged value (README "Types: the codec")."""
FORMAT = 2
"""The current format version of the documents (README "In the Mongo shell": "now `2`")."""
USER = 1
"""The user whose ``user_data`` the round trips write."""


async def write_user(
    make_persistence: Factory,
    db: Any,
    data: dict[Any, Any],
    *,
    bot: Bot | None = None,
    **options: Any,
) -> Any:
    """``update_user_data(USER, data)`` by a persistence; returns the stored ``data`` field."""
    writer = make_persistence(**options)
    if bot is not None:
        writer.set_bot(bot)
    try:
        await writer.update_user_data(USER, data)
    finally:
        await writer.flush()
    stored = await db["user_data"].find_one({"_id": USER})
    assert stored is not None and stored["format"] == FORMAT, stored
    return stored["data"]


async def load_user(make_persistence: Factory, *, bot: Bot | None = None, **options: Any) -> Any:
    """A fresh persistence (a restart) on the same database and namespace: the user's data."""
    reader = make_persistence(**options)
    if bot is not None:
        reader.set_bot(bot)
    try:
        return (await reader.get_user_data())[USER]
    finally:
        await reader.flush()


async def round_trip(
    make_persistence: Factory,
    db: Any,
    data: dict[Any, Any],
    *,
    bot: Bot | None = None,
    **options: Any,
) -> tuple[Any, Any]:
    """Writes ``data`` as a user's data and loads it in a restart: (stored ``data``, loaded)."""
    stored = await write_user(make_persistence, db, data, bot=bot, **options)
    return stored, await load_user(make_persistence, bot=bot, **options)


async def plant(db: Any, kind: str, documents: dict[Any, Any]) -> None:
    """Inserts ``{_id: data}`` into ``kind`` in the current format, as another program would."""
    await db[kind].insert_many(
        [{"_id": key, "data": data, "format": FORMAT} for key, data in documents.items()]
    )


async def bad_documents(make_persistence: Factory, kind: str, **options: Any) -> dict[str, Any]:
    """Loads ``kind`` with ``on_bad_document="skip"``: the DecodingError of each skipped entity."""
    persistence = make_persistence(on_bad_document="skip", **options)
    try:
        await getattr(persistence, f"get_{kind}")()
        return dict(persistence.bad_documents)
    finally:
        await persistence.flush()
