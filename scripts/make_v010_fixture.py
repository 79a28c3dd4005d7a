"""Writes the 0.1.0 fixture database (tests/data/v010/documents.jsonl) with the 0.1.0 code.

Run from a checkout of release 0.1.0 (commit 1cc1bd5), e.g.::

    mkdir /tmp/v010 && git archive 1cc1bd5 | tar -x -C /tmp/v010
    cd /tmp/v010 && PYTHONPATH=/tmp/v010 $REPO/.venv/bin/python \
        $REPO/scripts/make_v010_fixture.py $REPO/tests/data/v010/documents.jsonl

It starts a local SecantusDB, lets MongoPersistence 0.1.0 write a bot's data (dates of every kind,
tuples, sets, id-keyed maps, a Telegram object, conversations, callback data), and dumps every
document as canonical Extended JSON, one ``{"collection": ..., "document": ...}`` per line.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dtm
import decimal
import sys
import uuid
import zoneinfo
from pathlib import Path

from bson import json_util
from pymongo import AsyncMongoClient
from telegram import User

import mongo_persistence
from tests.helpers.local_server import LocalServer

UTC = dtm.timezone.utc
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
EST = dtm.timezone(dtm.timedelta(hours=-5), "EST")

USERS = {
    42: {
        "name": "Ada",
        "age": 30,
        "signup": dtm.datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC),
        "last_seen": dtm.datetime(2026, 11, 27, 0, 18, 27, 303810, tzinfo=UTC),
        "birthday": dtm.date(1996, 5, 17),
        "alarm": dtm.time(7, 30),
        "timeout": dtm.timedelta(hours=1, minutes=30),
        "tags": {"math", "engines"},
        "point": (3, 4),
    },
    43: {
        "name": "Brian",
        "signup": dtm.datetime(2025, 12, 24, 18, 0, tzinfo=UTC),
        "meeting": dtm.datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=1),
        "local": dtm.datetime(2026, 1, 2, 3, 4, 5, 600007),
        "offset": dtm.datetime(2026, 6, 1, 9, 0, tzinfo=dtm.timezone(dtm.timedelta(hours=5.5))),
        "named": dtm.datetime(2026, 2, 3, 4, 5, tzinfo=EST),
        "lunch": dtm.time(12, 15, 30, 123456, tzinfo=BERLIN),
        "late": dtm.timedelta(days=-2, microseconds=5),
        "scores": {1: 10, 2: 20},
        "price": decimal.Decimal("9.99"),
        "token": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "history": collections.deque([1, 2], maxlen=5),
        "user": User(7, "Tele", False, username="tele"),
    },
}


async def write(uri: str, database: str) -> None:
    persistence = mongo_persistence.MongoPersistence(uri, database=database)
    for user_id, data in USERS.items():
        await persistence.update_user_data(user_id, data)
    await persistence.update_chat_data(-100, {"title": "Engines", "since": dtm.date(2020, 1, 1)})
    await persistence.update_bot_data({"started": dtm.datetime(2026, 1, 1, tzinfo=UTC), "n": 2})
    await persistence.update_conversation("signup", (-100, 42), ("AGE", dtm.date(2026, 1, 1)))
    await persistence.update_conversation("signup", (-100, 43), 2)
    await persistence.update_callback_data(
        (
            [("kb1", 1764201600.5, {"btn1": ("pay", 5), "btn2": dtm.timedelta(seconds=3)})],
            {"q": "kb1"},
        )
    )
    await persistence.flush()


async def dump(uri: str, database: str, out: Path) -> None:
    client: AsyncMongoClient[dict] = AsyncMongoClient(uri)
    lines = []
    db = client[database]
    for name in sorted(await db.list_collection_names()):
        async for doc in db[name].find().sort("_id", 1):
            doc["updated_at"] = dtm.datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
            record = {"collection": name, "document": doc}
            lines.append(json_util.dumps(record, json_options=json_util.CANONICAL_JSON_OPTIONS))
    await client.close()
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    assert mongo_persistence.__version__ == "0.1.0", mongo_persistence.__file__
    out = Path(sys.argv[1])
    with LocalServer() as server:
        asyncio.run(write(server.uri, "v010"))
        asyncio.run(dump(server.uri, "v010", out))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
