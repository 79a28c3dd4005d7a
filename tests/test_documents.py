"""Documents for people in the Mongo shell (issue 12), over the wire: BSON dates, the format
version, documents written by 0.1.0, migrations of the bot's own data, and retention."""

from __future__ import annotations

import asyncio
import datetime as dtm
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import json_util
from bson.codec_options import CodecOptions
from pymongo import AsyncMongoClient

from mongo_persistence import DecodingError, MongoPersistence
from mongo_persistence._codec.codec import FORMAT_VERSION, TAG
from scripts.make_v010_fixture import USERS

Factory = Callable[..., MongoPersistence[Any, Any, Any]]
UTC = dtm.timezone.utc
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
FIXTURE = Path(__file__).parent / "data" / "v010" / "documents.jsonl"


def same(a: Any, b: Any) -> bool:
    """Equal, of the same type, and for dates with the same zone, offset and fold."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dtm.datetime | dtm.time):
        return (
            a == b and a.tzinfo == b.tzinfo and a.fold == b.fold and a.utcoffset() == b.utcoffset()
        )
    return bool(a == b)


# ============================================================ dates as BSON dates
async def test_an_aware_utc_datetime_is_a_plain_bson_date(
    make_persistence: Factory, db: Any
) -> None:
    signup = dtm.datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)
    persistence = make_persistence()
    await persistence.update_user_data(42, {"signup": signup})
    raw = await db["user_data"].find_one({"_id": 42})
    assert raw["data"]["signup"] == signup.replace(tzinfo=None)  # a BSON date, read naive
    assert raw["format"] == FORMAT_VERSION
    loaded = await make_persistence().get_user_data()
    assert same(loaded[42]["signup"], signup)
    await persistence.flush()


async def test_a_date_range_query_finds_the_right_users(make_persistence: Factory, db: Any) -> None:
    persistence = make_persistence()
    signups = {
        1: dtm.datetime(2025, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
        2: dtm.datetime(2026, 1, 1, tzinfo=UTC),
        3: dtm.datetime(2026, 1, 15, 10, 0, 0, 123456, tzinfo=UTC),  # microseconds: tagged
        4: dtm.datetime(2026, 1, 20, 9, 0, tzinfo=BERLIN),  # a zone: tagged
        5: dtm.datetime(2026, 2, 1, tzinfo=UTC),
    }
    for user_id, signup in signups.items():
        await persistence.update_user_data(user_id, {"signup": signup})
    await persistence.flush()
    january = {"$gte": dtm.datetime(2026, 1, 1), "$lt": dtm.datetime(2026, 2, 1)}
    # the query of the README: plain dates and tagged ones alike
    query = {"$or": [{"data.signup": january}, {"data.signup.date": january}]}
    found = [doc["_id"] async for doc in db["user_data"].find(query).sort("_id", 1)]
    assert found == [2, 3, 4]


async def test_a_bson_date_of_another_program_survives_the_bot(
    make_persistence: Factory, db: Any
) -> None:
    await db["user_data"].insert_one(
        {"_id": 7, "data": {"signup": dtm.datetime(2026, 5, 4, 3, 2, 1, 5000), "n": 1}}
    )
    persistence = make_persistence()
    data = (await persistence.get_user_data())[7]
    assert same(data["signup"], dtm.datetime(2026, 5, 4, 3, 2, 1, 5000, tzinfo=UTC))
    data["n"] = 2  # a diff write
    await persistence.update_user_data(7, data)
    data["other"] = {"x": 1}
    await persistence.update_user_data(7, data)
    persistence.store.tracker.forget("user_data", 7)  # a whole-document write too
    await persistence.update_user_data(7, data)
    await persistence.flush()
    raw = await db["user_data"].find_one({"_id": 7})
    assert raw["data"]["signup"] == dtm.datetime(2026, 5, 4, 3, 2, 1, 5000)
    found = await db["user_data"].count_documents(
        {"data.signup": {"$gte": dtm.datetime(2026, 5, 1)}}
    )
    assert found == 1


async def test_a_tz_aware_client_handed_in_loads_utc_and_writes_the_same_date(
    mongodb_uri: str, db_name: str, db: Any
) -> None:
    stored = dtm.datetime(2026, 5, 4, 3, 2, 1)
    await db["user_data"].insert_one({"_id": 8, "data": {"at": stored}})
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_uri, tz_aware=True, tzinfo=BERLIN)
    try:
        persistence = MongoPersistence(client, database=db_name)
        data = (await persistence.get_user_data())[8]
        assert same(data["at"], stored.replace(tzinfo=UTC))
        data["x"] = 1
        persistence.store.tracker.forget("user_data", 8)
        await persistence.update_user_data(8, data)
        await persistence.flush()
    finally:
        await client.close()
    raw = await db["user_data"].find_one({"_id": 8})
    assert raw["data"]["at"] == stored


VALUES = {
    "utc_ms": dtm.datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC),
    "utc_us": dtm.datetime(2026, 1, 2, 3, 4, 5, 6007, tzinfo=UTC),
    "naive": dtm.datetime(2026, 1, 2, 3, 4, 5, 6007),
    "zone": dtm.datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=1),
    "gap": dtm.datetime(2026, 3, 29, 2, 30, tzinfo=BERLIN),
    "offset": dtm.datetime(2026, 6, 1, 9, 0, tzinfo=dtm.timezone(dtm.timedelta(hours=5.5))),
    "named": dtm.datetime(2026, 2, 3, tzinfo=dtm.timezone(dtm.timedelta(hours=-5), "EST")),
    "fold_utc": dtm.datetime(2026, 1, 1, tzinfo=UTC, fold=1),
    "far": dtm.datetime.min.replace(tzinfo=dtm.timezone(dtm.timedelta(hours=5))),
    "day": dtm.date(1996, 5, 17),
    "alarm": dtm.time(7, 30, 0, 5, tzinfo=BERLIN),
    "timeout": dtm.timedelta(hours=1, minutes=30),
    "late": dtm.timedelta(days=-2, microseconds=5),
}


async def test_every_date_kind_round_trips_over_the_wire(
    make_persistence: Factory, db: Any
) -> None:
    persistence = make_persistence()
    await persistence.update_user_data(1, dict(VALUES))
    await persistence.flush()
    loaded = (await make_persistence().get_user_data())[1]
    for key, value in VALUES.items():
        assert same(loaded[key], value), key
    raw = (await db["user_data"].find_one({"_id": 1}))["data"]
    assert raw["utc_us"] == {
        TAG: "datetime",
        "date": dtm.datetime(2026, 1, 2, 3, 4, 5, 6000),
        "us": 7,
    }
    assert raw["naive"]["naive"] is True
    assert raw["zone"] == {
        TAG: "datetime",
        "date": dtm.datetime(2026, 10, 25, 1, 30),
        "offset": "+01:00",
        "tz": "Europe/Berlin",
        "fold": 1,
    }
    assert raw["day"] == {TAG: "date", "date": dtm.datetime(1996, 5, 17)}
    assert raw["timeout"] == {TAG: "timedelta", "seconds": 5400}


# ============================================================ 0.1.0 documents and the format
def fixture_records() -> list[dict[str, Any]]:
    options = json_util.CANONICAL_JSON_OPTIONS
    return [
        json_util.loads(line, json_options=options) for line in FIXTURE.read_text().splitlines()
    ]


async def plant_fixture(db: Any) -> None:
    for record in fixture_records():
        await db[record["collection"]].insert_one(record["document"])


async def test_the_0_1_0_fixture_loads_exactly_as_written(
    make_persistence: Factory, db: Any
) -> None:
    await plant_fixture(db)
    persistence = make_persistence()
    users = await persistence.get_user_data()
    assert set(users) == set(USERS)
    for user_id, expected in USERS.items():
        for key, value in expected.items():
            if key == "user":
                assert users[user_id][key].to_dict() == value.to_dict()
            else:
                assert same(users[user_id][key], value), (user_id, key)
    chats = await persistence.get_chat_data()
    assert same(chats[-100], {"title": "Engines", "since": dtm.date(2020, 1, 1)})
    bot_data = await persistence.get_bot_data()
    assert same(bot_data, {"started": dtm.datetime(2026, 1, 1, tzinfo=UTC), "n": 2})
    conversations = await persistence.get_conversations("signup")
    assert same(conversations, {(-100, 42): ("AGE", dtm.date(2026, 1, 1)), (-100, 43): 2})
    keyboards, queries = await persistence.get_callback_data() or ([], {})
    assert queries == {"q": "kb1"}
    assert same(keyboards[0][2], {"btn1": ("pay", 5), "btn2": dtm.timedelta(seconds=3)})
    await persistence.flush()


async def test_a_0_1_0_document_is_rewritten_in_the_new_format_on_its_next_write(
    make_persistence: Factory, db: Any
) -> None:
    await plant_fixture(db)
    persistence = make_persistence()
    users = await persistence.get_user_data()
    users[42]["age"] = 31  # one key changes: the whole document is rewritten
    await persistence.update_user_data(42, users[42])
    await persistence.flush()
    raw = await db["user_data"].find_one({"_id": 42})
    assert raw["format"] == FORMAT_VERSION
    assert raw["data"]["signup"] == dtm.datetime(2026, 3, 1, 12, 30, 15, 250000)
    assert raw["data"]["birthday"] == {TAG: "date", "date": dtm.datetime(1996, 5, 17)}
    assert raw["data"]["timeout"] == {TAG: "timedelta", "seconds": 5400}
    untouched = await db["user_data"].find_one({"_id": 43})
    assert "format" not in untouched
    again = (await make_persistence().get_user_data())[42]
    assert same(again, {**USERS[42], "age": 31})


async def test_refresh_merges_a_0_1_0_document_in_the_new_format(
    make_persistence: Factory, db: Any
) -> None:
    await plant_fixture(db)
    persistence = make_persistence(refresh=True, lazy=True)
    data: dict[str, Any] = {}
    await persistence.refresh_user_data(42, data)
    data["age"] = 31
    await persistence.refresh_user_data(42, data)  # the change is merged and written
    await persistence.flush()
    raw = await db["user_data"].find_one({"_id": 42})
    assert raw["format"] == FORMAT_VERSION
    assert raw["data"]["age"] == 31
    assert raw["data"]["signup"] == dtm.datetime(2026, 3, 1, 12, 30, 15, 250000)
    assert same((await make_persistence().get_user_data())[42], {**USERS[42], "age": 31})


async def test_documents_record_the_format_version(make_persistence: Factory, db: Any) -> None:
    persistence = make_persistence()
    await persistence.update_user_data(1, {"a": 1})
    await persistence.update_chat_data(2, {"a": 1})
    await persistence.update_bot_data({"a": 1})
    await persistence.update_conversation("c", (1, 2), 3)
    await persistence.update_callback_data(([], {}))
    await persistence.flush()
    for kind in ("user_data", "chat_data", "bot_data", "conversations", "callback_data"):
        doc = await db[kind].find_one()
        assert doc["format"] == FORMAT_VERSION, kind


def test_the_fixture_is_bson_of_0_1_0() -> None:
    """The fixture holds what 0.1.0 wrote: ISO text dates and no format field."""
    records = fixture_records()
    assert {r["collection"] for r in records} == {
        "user_data",
        "chat_data",
        "bot_data",
        "conversations",
        "callback_data",
    }
    assert all("format" not in r["document"] for r in records)
    assert bson.encode(records[0]["document"])
    ada = next(r for r in records if r["document"]["_id"] == 42)["document"]
    assert ada["data"]["signup"] == {TAG: "datetime", "value": "2026-03-01T12:30:15.250000+00:00"}


_ = CodecOptions  # re-exported for readers of the tz_aware test


# ============================================================ migrations of the bot's own data
def user_migrations(calls: list[tuple[int, Any]]) -> dict[int, Callable[[Any], Any]]:
    def rename_age(data: dict[str, Any]) -> dict[str, Any]:
        calls.append((1, dict(data)))
        data["years"] = int(data.pop("age"))
        return data

    def tags_to_dict(data: dict[str, Any]) -> dict[str, Any]:
        calls.append((2, dict(data)))
        data["tags"] = dict.fromkeys(data.get("tags", []), True)
        return data

    return {2: tags_to_dict, 1: rename_age}  # run in version order, whatever the mapping's


async def test_migrations_run_in_order_once_and_are_written_back_across_restarts(
    make_persistence: Factory, db: Any
) -> None:
    first = make_persistence()
    await first.update_user_data(1, {"age": "30", "tags": ["a", "b"]})
    await first.update_user_data(2, {"age": "40"})
    await first.flush()
    assert "data_version" not in await db["user_data"].find_one({"_id": 1})

    calls: list[tuple[int, Any]] = []
    second = make_persistence(migrations={"user_data": user_migrations(calls)})
    users = await second.get_user_data()
    assert users[1] == {"years": 30, "tags": {"a": True, "b": True}}
    assert users[2] == {"years": 40, "tags": {}}
    assert [version for version, _ in calls] == [1, 2, 1, 2]
    await second.flush()
    for user_id in (1, 2):
        raw = await db["user_data"].find_one({"_id": user_id})
        assert raw["data_version"] == 2
        assert raw["data"] == {k: v for k, v in users[user_id].items()}

    calls.clear()  # a restart: nothing left to migrate
    third = make_persistence(migrations={"user_data": user_migrations(calls)})
    assert (await third.get_user_data())[1] == users[1]
    assert calls == []
    await third.update_user_data(1, {**users[1], "more": 1})
    await third.flush()
    assert (await db["user_data"].find_one({"_id": 1}))["data_version"] == 2

    def add_level(data: dict[str, Any]) -> dict[str, Any]:
        data["level"] = 1
        return data

    steps = {**user_migrations(calls), 3: add_level}
    fourth = make_persistence(migrations={"user_data": steps})
    assert (await fourth.get_user_data())[1] == {**users[1], "more": 1, "level": 1}
    assert calls == []  # only the new migration ran
    await fourth.flush()
    assert (await db["user_data"].find_one({"_id": 1}))["data_version"] == 3


async def test_migrations_in_lazy_and_refresh_mode(make_persistence: Factory, db: Any) -> None:
    first = make_persistence()
    await first.update_user_data(1, {"age": "30"})
    await first.update_chat_data(-5, {"n": 1})
    await first.flush()
    migrations = {
        "user_data": user_migrations([]),
        "chat_data": {1: lambda data: {**data, "n": data["n"] + 1}},
    }
    for mode in ({"lazy": True}, {"lazy": True, "refresh": True}, {"refresh": True}):
        await db["user_data"].update_one(
            {"_id": 1}, {"$set": {"data": {"age": "30"}}, "$unset": {"data_version": ""}}
        )
        await db["chat_data"].update_one(
            {"_id": -5}, {"$set": {"data": {"n": 1}}, "$unset": {"data_version": ""}}
        )
        persistence = make_persistence(migrations=migrations, **mode)
        # as PTB does: the loaded objects (none in lazy mode) are refreshed in place
        user = (await persistence.get_user_data()).get(1, {})
        chat = (await persistence.get_chat_data()).get(-5, {})
        await persistence.refresh_user_data(1, user)
        await persistence.refresh_chat_data(-5, chat)
        assert user == {"years": 30, "tags": {}}, mode
        assert chat == {"n": 2}, mode
        await persistence.flush()
        raw = await db["user_data"].find_one({"_id": 1})
        assert raw["data_version"] == 2 and raw["data"] == {"years": 30, "tags": {}}, mode
        assert (await db["chat_data"].find_one({"_id": -5}))["data"] == {"n": 2}, mode


async def test_a_raising_migration_names_the_entity_and_stops_nothing_else(
    make_persistence: Factory, db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    first = make_persistence()
    await first.update_user_data(1, {"age": "SECRET-not-a-number"})
    await first.update_user_data(2, {"age": "40"})
    await first.update_bot_data({"v": 1})
    await first.flush()
    before = await db["user_data"].find_one({"_id": 1})

    persistence = make_persistence(
        migrations={"user_data": user_migrations([]), "bot_data": {1: lambda d: {**d, "v": 2}}}
    )
    users = await persistence.get_user_data()  # on_bad_document="raise": still nothing stops
    assert 1 not in users
    assert users[2] == {"years": 40, "tags": {}}
    assert await persistence.get_bot_data() == {"v": 2}
    error = persistence.bad_documents["user_data[1]"]
    assert "migration 1" in str(error) and "ValueError" in str(error)
    assert "SECRET" not in str(error) and "SECRET" not in caplog.text
    assert "user_data[1]" in caplog.text
    await persistence.flush()
    assert await db["user_data"].find_one({"_id": 1}) == before  # left as it is
    assert (await db["bot_data"].find_one())["data_version"] == 1


def test_migrations_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        MongoPersistence("mongodb://localhost", migrations={"users": {1: dict}})
    with pytest.raises(ValueError, match="positive ints"):
        MongoPersistence("mongodb://localhost", migrations={"user_data": {0: dict}})
    with pytest.raises(ValueError, match="not callable"):
        MongoPersistence("mongodb://localhost", migrations={"user_data": {1: 5}})  # type: ignore[dict-item]


# ============================================================ retention
async def test_expire_after_sets_expire_at_and_a_ttl_index(
    make_persistence: Factory, db: Any
) -> None:
    persistence = make_persistence(
        expire_after={"users": dtm.timedelta(days=180), "conversations": "2h"}
    )
    before = dtm.datetime.now(UTC)
    await persistence.update_user_data(1, {"a": 1})
    await persistence.update_chat_data(1, {"a": 1})
    await persistence.update_conversation("c", (1, 1), 2)
    await persistence.flush()
    user = await db["user_data"].find_one({"_id": 1})
    at = user["expire_at"].replace(tzinfo=UTC)  # a BSON date
    assert before + dtm.timedelta(days=180) - dtm.timedelta(hours=1) <= at
    assert at <= dtm.datetime.now(UTC) + dtm.timedelta(days=180)
    assert "expire_at" not in await db["chat_data"].find_one({"_id": 1})
    conversation = await db["conversations"].find_one()
    assert conversation["expire_at"].replace(tzinfo=UTC) <= dtm.datetime.now(UTC) + dtm.timedelta(
        hours=2
    )
    for kind, expected in (("user_data", True), ("conversations", True), ("chat_data", False)):
        indexes = {ix["name"]: ix async for ix in await db[kind].list_indexes()}
        assert ("expire_at_ttl" in indexes) is expected, kind
        if expected:
            assert indexes["expire_at_ttl"]["expireAfterSeconds"] == 0
            assert dict(indexes["expire_at_ttl"]["key"]) == {"expire_at": 1}


async def test_an_unchanged_entity_is_not_rewritten_for_its_expire_at(monitored: Any) -> None:
    persistence = monitored(expire_after={"users": "180d"})
    await persistence.update_user_data(1, {"a": 1})
    monitored.log.clear()
    await persistence.update_user_data(1, {"a": 1})  # within the hour: nothing to write
    assert monitored.log.documents("update", "user_data") == []


async def test_a_running_eager_bot_whose_entity_the_server_expired(
    make_persistence: Factory, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TTL monitor deleted the documents (as it does, about once a minute, once expire_at
    has passed): the bot still holds the users; at the next write of each - changed or not, its
    expire_at is renewed - the whole entity is stored again with a new expire_at."""
    import mongo_persistence._storage.encode as module
    from mongo_persistence._storage.retention import expire_at

    half_a_year_ago = dtm.datetime.now(UTC) - dtm.timedelta(days=181)
    monkeypatch.setattr(module, "expire_at", lambda after: expire_at(after, half_a_year_ago))
    persistence = make_persistence(expire_after={"users": "180d"})
    users = {1: {"name": "Ada", "visits": 1}, 2: {"name": "Bob"}, 3: {"name": "Cy"}}
    for user_id, data in users.items():
        await persistence.update_user_data(user_id, data)
    assert await make_persistence().get_user_data() == users
    await db["user_data"].delete_many({})  # what the server's TTL monitor does
    monkeypatch.setattr(module, "expire_at", expire_at)  # today

    users[1]["visits"] = 2
    await persistence.update_user_data(1, users[1])  # changed
    await persistence.update_user_data(2, users[2])  # unchanged: its user came back
    await persistence.flush()
    for user_id in (1, 2):
        doc = await db["user_data"].find_one({"_id": user_id})
        assert doc["data"] == users[user_id]
        assert doc["expire_at"].replace(tzinfo=UTC) > dtm.datetime.now(UTC) + dtm.timedelta(
            days=179
        )
    assert await db["user_data"].find_one({"_id": 3}) is None  # never written again: gone
    assert 3 in users  # (still in the bot's memory until a restart)


def test_expire_after_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        MongoPersistence("mongodb://localhost", expire_after={"bots": 5})
    with pytest.raises(ValueError, match="positive"):
        MongoPersistence("mongodb://localhost", expire_after={"users": -1})
    with pytest.raises(ValueError, match="not a duration"):
        MongoPersistence("mongodb://localhost", expire_after={"users": "soon"})


# ============================================================ the CLI: upgrade, purge
async def cli(*args: str) -> Any:
    from click.testing import CliRunner

    from mongo_persistence._cli.cli import main

    return await asyncio.to_thread(lambda: CliRunner().invoke(main, list(args)))


async def test_upgrade_rewrites_0_1_0_documents_idempotently(
    mongodb_uri: str, db_name: str, make_persistence: Factory, db: Any
) -> None:
    await plant_fixture(db)
    before = {r["document"]["_id"]: r["document"] for r in fixture_records()}
    common = ("--uri", mongodb_uri, "-d", db_name, "--progress")
    dry = await cli("upgrade", "--dry-run", *common)
    assert dry.exit_code == 0, dry.output
    assert "7 documents to upgrade" in dry.output and "nothing written" in dry.output
    assert await db["user_data"].count_documents({"format": 2}) == 0

    done = await cli("upgrade", *common)
    assert done.exit_code == 0, done.output
    assert "Upgraded 7 of 7 documents" in done.output
    for kind in ("user_data", "chat_data", "bot_data", "conversations", "callback_data"):
        async for doc in db[kind].find():
            assert doc["format"] == FORMAT_VERSION
            assert doc["updated_at"] == before[doc["_id"]]["updated_at"].replace(tzinfo=None)
    ada = await db["user_data"].find_one({"_id": 42})
    assert ada["data"]["signup"] == dtm.datetime(2026, 3, 1, 12, 30, 15, 250000)
    brian = await db["user_data"].find_one({"_id": 43})
    assert brian["data"]["user"] == before[43]["data"]["user"]  # untouched: not a date

    again = await cli("upgrade", *common)
    assert again.exit_code == 0 and "Every document is in the current format." in again.output
    persistence = make_persistence()
    users = await persistence.get_user_data()
    for key, value in USERS[42].items():
        assert same(users[42][key], value), key
    await persistence.flush()


async def test_purge_deletes_what_was_not_written_for_a_while(
    mongodb_uri: str, db_name: str, make_persistence: Factory, db: Any
) -> None:
    persistence = make_persistence()
    for user_id in (1, 2):
        await persistence.update_user_data(user_id, {"a": user_id})
    await persistence.update_chat_data(-1, {"a": 1})
    await persistence.update_bot_data({"a": 1})
    await persistence.flush()
    old = dtm.datetime.now(UTC) - dtm.timedelta(days=200)
    await db["user_data"].update_one({"_id": 1}, {"$set": {"updated_at": old}})
    await db["chat_data"].update_one({"_id": -1}, {"$set": {"updated_at": old}})
    await db["bot_data"].update_one({}, {"$set": {"updated_at": old}})
    common = ("--uri", mongodb_uri, "-d", db_name)
    dry = await cli("purge", "--older-than", "180d", "--dry-run", *common)
    assert dry.exit_code == 0, dry.output
    assert "2 documents to delete (users 1, chats 1, conversations 0)" in dry.output
    assert await db["user_data"].count_documents({}) == 2
    only_users = await cli("purge", "--older-than", "180d", "--kind", "users", *common)
    assert "Deleted 1 document (users 1)" in only_users.output
    assert [d["_id"] async for d in db["user_data"].find()] == [2]
    assert await db["chat_data"].count_documents({}) == 1
    assert await db["bot_data"].count_documents({}) == 1  # never purged
    bad = await cli("purge", "--older-than", "soon", *common)
    assert bad.exit_code == 2 and "not a duration" in bad.output


@pytest.mark.parametrize("planted", ["2", True, -1, 1.5, None])
async def test_a_planted_data_version_that_is_no_version_skips_only_that_entity(
    planted: Any, make_persistence: Factory, db: Any
) -> None:
    await db["user_data"].insert_many(
        [
            {"_id": 1, "data": {"age": "1"}, "data_version": planted},
            {"_id": 2, "data": {"age": "2"}},
        ]
    )
    persistence = make_persistence(migrations={"user_data": user_migrations([])})
    users = await persistence.get_user_data()
    assert users == {2: {"years": 2, "tags": {}}}
    assert "not a non-negative integer" in str(persistence.bad_documents["user_data[1]"])
    await persistence.flush()
    assert (await db["user_data"].find_one({"_id": 1}))["data"] == {"age": "1"}


async def test_upgrade_leaves_a_document_the_bot_wrote_meanwhile_to_the_bot(
    mongodb_uri: str, db_name: str, db: Any
) -> None:
    from pymongo import MongoClient

    from mongo_persistence._codec.upgrade import upgrade_documents

    await plant_fixture(db)
    bot_write = {
        "_id": 42,
        "data": {"name": "Ada", "age": 31},
        "format": 2,
        "updated_at": dtm.datetime.now(UTC),
    }
    with MongoClient(mongodb_uri) as sync_client:
        handled = []

        def progress(_: int) -> None:
            handled.append(1)
            if len(handled) == 1:  # the first user: the bot writes it between read and replace
                sync_client[db_name]["user_data"].replace_one({"_id": 42}, bot_write)

        result = await upgrade_documents(db, None, progress=progress)
    assert result.raced == 1 and result.upgraded == 6 and not result.failed
    assert (await db["user_data"].find_one({"_id": 42}))["data"] == {"name": "Ada", "age": 31}
    assert await db["user_data"].count_documents({"format": 2}) == 2


async def test_shell_without_mongosh_says_how_to_get_it(
    mongodb_uri: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("MONGOSH", raising=False)
    monkeypatch.chdir(tmp_path)
    result = await cli("shell", "--mongosh", str(tmp_path / "nothing"), "--uri", mongodb_uri)
    assert result.exit_code == 1
    assert "mongosh not found" in result.output and "--mongosh PATH" in result.output


def test_make_server_starts_a_local_server_and_prints_its_uri(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from pymongo import MongoClient

    from scripts.local_server import free_port

    root = Path(__file__).resolve().parent.parent
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            str(root / "scripts" / "local_server.py"),
            "--port",
            str(port),
            "--storage",
            str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().strip()
        assert first == f"MONGODB_URI=mongodb://127.0.0.1:{port}/"
        with MongoClient(first.split("=", 1)[1], serverSelectionTimeoutMS=5000) as client:
            assert client.admin.command("ping")["ok"] == 1
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C stops the server too
        assert process.wait(timeout=30) == 0
    from pymongo.errors import ServerSelectionTimeoutError

    gone = MongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=300)
    with gone, pytest.raises(ServerSelectionTimeoutError):
        gone.admin.command("ping")


async def test_upgrade_reports_a_bad_old_value_without_its_content_and_goes_on(
    mongodb_uri: str, db_name: str, db: Any
) -> None:
    bad = {"_id": 5, "data": {"at": {TAG: "datetime", "value": "SECRET-day"}}}
    good = {"_id": 6, "data": {"at": {TAG: "date", "value": "2020-01-02"}}}
    await db["user_data"].insert_many([bad, good])
    result = await cli("upgrade", "--uri", mongodb_uri, "-d", db_name)
    assert result.exit_code == 1, result.output
    assert "Cannot upgrade user_data[5]['at']: bad 'datetime' value: ValueError" in result.output
    assert "SECRET" not in result.output
    assert "Upgraded 1 of 2 documents (user_data 2)" in result.output
    assert await db["user_data"].find_one({"_id": 5}) == bad
    upgraded = await db["user_data"].find_one({"_id": 6})
    assert upgraded["data"]["at"] == {TAG: "date", "date": dtm.datetime(2020, 1, 2)}


async def test_refresh_of_a_bad_0_1_0_value_names_the_entity(
    make_persistence: Factory, db: Any
) -> None:
    await db["user_data"].insert_one({"_id": 5, "data": {"at": {TAG: "date", "value": "SECRET"}}})
    persistence = make_persistence(lazy=True, refresh=True)
    with pytest.raises(DecodingError) as info:
        await persistence.refresh_user_data(5, {})
    assert info.value.entity == "user_data[5]"
    assert info.value.path == "['at']"
    assert "SECRET" not in str(info.value)
    await persistence.flush()
