"""The write path over the wire: coalescing, per-entity errors, skip-unchanged, diff writes.

Round trips are counted with PyMongo's command monitoring (``tests.helpers.command_log``) on the
persistence's own client, against a real server (see ``conftest.py``).
"""

from __future__ import annotations

import asyncio
import datetime as dtm
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bson
import bson.json_util
import pytest
from telegram.ext import CommandHandler, ConversationHandler, MessageHandler, filters

from mongo_persistence import (
    DocumentTooLargeError,
    EncodingError,
    MongoPersistence,
    PersistenceWriteError,
)
from tests.conftest import Monitored
from tests.helpers.command import cli
from tests.helpers.command_log import WRITE_COMMANDS, CommandLog
from tests.ptb_offline import build_application, message_update

Factory = Callable[..., MongoPersistence[Any, Any, Any]]


async def started(persistence: MongoPersistence[Any, Any, Any]) -> MongoPersistence[Any, Any, Any]:
    """Loads everything as PTB's ``Application.initialize()`` does (before any write)."""
    await persistence.get_user_data()
    await persistence.get_chat_data()
    await persistence.get_bot_data()
    return persistence


def user(uid: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": f"user{uid}",
        "visits": uid,
        "tags": ["a", "b"],
        "prefs": {"lang": "en"},
        **extra,
    }


async def stored(db: Any, collection: str) -> dict[Any, Any]:
    return {doc["_id"]: doc async for doc in db[collection].find({})}


# =============================================================================== coalescing
async def test_one_gather_is_one_command_per_collection(monitored: Monitored, db: Any) -> None:
    persistence = await started(monitored())
    log = monitored.log
    log.clear()
    acknowledged_on_return: list[bool] = []

    async def call(coro: Any, collection: str) -> None:
        await coro
        # The reply to the command carrying this entity arrived before the call returned.
        acknowledged_on_return.append(log.acknowledged("update", collection) == 1)

    users, chats, conversations = 500, 60, 40
    await asyncio.gather(
        *(call(persistence.update_user_data(i, user(i)), "user_data") for i in range(1, users + 1)),
        *(
            call(persistence.update_chat_data(-i, {"title": f"c{i}"}), "chat_data")
            for i in range(1, chats + 1)
        ),
        *(
            call(persistence.update_conversation("flow", (i, i), i % 4), "conversations")
            for i in range(1, conversations + 1)
        ),
    )
    assert log.writes() == {
        ("update", "user_data"): 1,
        ("update", "chat_data"): 1,
        ("update", "conversations"): 1,
    }
    assert len(acknowledged_on_return) == users + chats + conversations
    assert all(acknowledged_on_return)
    (update,) = log.documents("update", "user_data")
    assert len(update["updates"]) == users
    assert update.get("ordered") is False

    user_docs = await stored(db, "user_data")
    assert sorted(user_docs) == list(range(1, users + 1))
    assert user_docs[7]["data"] == user(7)
    assert len(await stored(db, "chat_data")) == chats
    conversation_docs = await stored(db, "conversations")
    assert len(conversation_docs) == conversations
    assert {doc["name"] for doc in conversation_docs.values()} == {"flow"}

    # A second run mixing changes, deletions and ended conversations: one command per kind of
    # operation and collection, still.
    log.clear()
    await asyncio.gather(
        *(persistence.update_user_data(i, user(i, visits=-i)) for i in range(1, 201)),
        *(persistence.drop_user_data(i) for i in range(401, users + 1)),
        *(persistence.drop_chat_data(-i) for i in range(1, 11)),
        *(persistence.update_conversation("flow", (i, i), None) for i in range(1, 11)),
        *(persistence.update_conversation("flow", (i, i), "next") for i in range(11, 21)),
        return_exceptions=False,
    )
    assert log.writes() == {
        ("update", "user_data"): 1,
        ("delete", "user_data"): 1,
        ("delete", "chat_data"): 1,
        ("update", "conversations"): 1,
        ("delete", "conversations"): 1,
    }
    user_docs = await stored(db, "user_data")
    assert len(user_docs) == 400
    assert user_docs[5]["data"]["visits"] == -5
    assert user_docs[300]["data"]["visits"] == 300
    assert len(await stored(db, "chat_data")) == chats - 10
    conversation_docs = await stored(db, "conversations")
    assert len(conversation_docs) == conversations - 10
    assert [doc["state"] for doc in conversation_docs.values()].count("next") == 10


async def test_several_updates_of_one_entity_in_one_gather_keep_the_newest(
    monitored: Monitored, db: Any
) -> None:
    persistence = await started(monitored())
    monitored.log.clear()
    results = await asyncio.gather(
        persistence.update_user_data(1, {"v": 1}),
        persistence.update_user_data(1, {"v": 2}),
        persistence.update_user_data(1, {"v": 3}),
    )
    assert results == [None, None, None]
    assert monitored.log.writes() == {("update", "user_data"): 1}
    assert (await db.user_data.find_one({"_id": 1}))["data"] == {"v": 3}


# =============================================================================== failures
async def test_an_unencodable_entity_fails_alone(monitored: Monitored, db: Any) -> None:
    persistence = await started(monitored())
    monitored.log.clear()
    data = {i: user(i) for i in range(1, 21)}
    data[7]["callback"] = lambda: None  # a function cannot be stored
    results = await asyncio.gather(
        *(persistence.update_user_data(i, value) for i, value in data.items()),
        persistence.update_chat_data(-1, {"ok": True}),
        return_exceptions=True,
    )
    assert isinstance(results[6], EncodingError)
    assert results[6].entity == "user_data[7]"
    assert results[6].path == "['callback']"
    assert [r for i, r in enumerate(results) if i != 6] == [None] * 20
    assert monitored.log.writes() == {("update", "user_data"): 1, ("update", "chat_data"): 1}
    user_docs = await stored(db, "user_data")
    assert sorted(user_docs) == [i for i in range(1, 21) if i != 7]
    assert user_docs[8]["data"] == user(8)
    assert await db.chat_data.find_one({"_id": -1}) is not None


async def test_a_document_the_server_rejects_fails_alone(monitored: Monitored, db: Any) -> None:
    # A unique index on a field inside the data: the server refuses the one duplicate.
    await db.user_data.create_index("data.email", unique=True, sparse=True)
    await db.user_data.insert_one({"_id": 999, "data": {"email": "taken@example.org"}})
    persistence = await started(monitored())
    monitored.log.clear()
    data = {i: {"email": f"u{i}@example.org", "n": i} for i in range(1, 11)}
    data[4]["email"] = "taken@example.org"
    results = await asyncio.gather(
        *(persistence.update_user_data(i, value) for i, value in data.items()),
        return_exceptions=True,
    )
    assert isinstance(results[3], PersistenceWriteError)
    assert results[3].entity == "user_data[4]"
    assert [r for i, r in enumerate(results) if i != 3] == [None] * 9
    assert monitored.log.writes() == {("update", "user_data"): 1}
    user_docs = await stored(db, "user_data")
    assert sorted(user_docs) == [1, 2, 3, 5, 6, 7, 8, 9, 10, 999]
    assert user_docs[5]["data"] == {"email": "u5@example.org", "n": 5}
    # A duplicate key never succeeds by retrying: it is not kept.
    assert results[3].kept is False
    assert persistence.health().pending == 0

    # The others are known: the same data again sends nothing, only the fixed entity is written.
    monitored.log.clear()
    data[4]["email"] = "u4@example.org"
    await asyncio.gather(*(persistence.update_user_data(i, value) for i, value in data.items()))
    (update,) = monitored.log.documents("update", "user_data")
    assert [op["q"] for op in update["updates"]] == [{"_id": 4}]
    assert (await db.user_data.find_one({"_id": 4}))["data"]["email"] == "u4@example.org"


# =============================================================================== skip unchanged
async def test_unchanged_data_sends_nothing(monitored: Monitored) -> None:
    persistence = await started(monitored())
    log = monitored.log

    async def run() -> None:
        await asyncio.gather(
            *(persistence.update_user_data(i, user(i)) for i in range(1, 101)),
            *(persistence.update_chat_data(-i, {"title": f"c{i}"}) for i in range(1, 11)),
            *(persistence.update_conversation("flow", (i, i), 1) for i in range(1, 11)),
            persistence.update_bot_data({"global": [1, 2, 3]}),
            persistence.update_callback_data(([("kb", 1.5, {"b1": ("x", 1)})], {"q1": "kb"})),
        )

    await run()
    assert log.total(WRITE_COMMANDS) == 5
    log.clear()
    await run()  # the same data again (fresh objects, as PTB deep-copies)
    assert log.total() == 0
    await run()
    assert log.total() == 0


async def test_idle_bot_and_callback_data_send_nothing_after_a_restart(
    monitored: Monitored,
) -> None:
    first = await started(monitored())
    await first.update_bot_data(
        {"counter": 5, "when": dtm.datetime(2024, 1, 2, tzinfo=dtm.timezone.utc)}
    )
    await first.update_callback_data(([("kb", 2.0, {"b": {"deep": (1, 2)}})], {"q": "kb"}))
    await first.flush()

    second = monitored()
    bot_data = await second.get_bot_data()
    callback_data = await second.get_callback_data()
    assert callback_data is not None
    monitored.log.clear()
    for _ in range(3):  # PTB calls both on every update_persistence() run, changed or not
        await second.update_bot_data(bot_data)
        await second.update_callback_data(callback_data)
    assert monitored.log.total() == 0


@pytest.mark.parametrize(("first", "then"), [(1, True), (1, 1.0), (True, 1), (1.0, 1), (0, False)])
async def test_changes_of_type_alone_are_written(
    monitored: Monitored, db: Any, first: Any, then: Any
) -> None:
    persistence = await started(monitored())
    await persistence.update_user_data(1, {"v": first})
    monitored.log.clear()
    await persistence.update_user_data(1, {"v": then})
    assert monitored.log.writes() == {("update", "user_data"): 1}
    value = (await db.user_data.find_one({"_id": 1}))["data"]["v"]
    assert type(value) is type(then)
    assert value == then
    reloaded = await monitored().get_user_data()
    assert type(reloaded[1]["v"]) is type(then)


# =============================================================================== diff writes
async def seeded(monitored: Monitored, data: dict[str, Any]) -> MongoPersistence[Any, Any, Any]:
    """Writes user 1, then returns a restarted persistence that loaded it."""
    first = await started(monitored())
    await first.update_user_data(1, data)
    await first.flush()
    second = monitored()
    assert (await second.get_user_data())[1] == data
    monitored.log.clear()
    return second


def only_update(log: CommandLog, collection: str = "user_data") -> dict[str, Any]:
    assert log.writes() == {("update", collection): 1}
    (command,) = log.documents("update", collection)
    (op,) = command["updates"]
    return dict(op["u"])


async def test_changing_one_key_sets_only_that_key(monitored: Monitored, db: Any) -> None:
    data = {"a": 1, "b": {"deep": [1, 2, 3]}, "c": "three"}
    persistence = await seeded(monitored, data)
    await persistence.update_user_data(1, {**data, "b": {"deep": [1, 2, 3, 4]}})
    update = only_update(monitored.log)
    assert set(update) == {"$set"}
    assert set(update["$set"]) == {"data.b", "format", "updated_at"}
    assert update["$set"]["data.b"] == {"deep": [1, 2, 3, 4]}
    assert (await db.user_data.find_one({"_id": 1}))["data"] == {
        **data,
        "b": {"deep": [1, 2, 3, 4]},
    }


async def test_adding_and_removing_keys_sends_set_and_unset(monitored: Monitored, db: Any) -> None:
    data = {"a": 1, "b": 2, "c": 3}
    persistence = await seeded(monitored, data)
    await persistence.update_user_data(1, {"a": 1, "c": 3, "d": 4})
    update = only_update(monitored.log)
    assert set(update) == {"$set", "$unset"}
    assert set(update["$set"]) == {"data.d", "format", "updated_at"}
    assert set(update["$unset"]) == {"data.b"}
    assert (await db.user_data.find_one({"_id": 1}))["data"] == {"a": 1, "c": 3, "d": 4}

    # Emptying the data removes every key: nothing of the old data may come back after a restart.
    monitored.log.clear()
    await persistence.update_user_data(1, {})
    assert monitored.log.total(WRITE_COMMANDS) == 1
    assert (await db.user_data.find_one({"_id": 1}))["data"] == {}
    assert (await monitored().get_user_data())[1] == {}


async def test_values_changed_in_place_after_an_eager_load_are_written(
    monitored: Monitored, db: Any
) -> None:
    """The eager load hands over the read documents' dicts and lists without copying them; what
    MongoDB holds is known by the documents' BSON. So a value the bot changes in place (a nested
    dict, a list, a dict with int keys) is a change, and only its key is sent."""
    data = {
        "prefs": {"lang": "en", "theme": "dark"},
        "tags": ["a", "b"],
        "scores": {7: 1, 8: 2},
        "seen": dtm.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dtm.timezone.utc),
        "same": {"kept": [1, 2]},
    }
    first = await started(monitored())
    await first.update_user_data(1, data)
    restarted = await started(monitored())
    loaded = (await restarted.get_user_data())[1]
    assert loaded == data
    loaded["prefs"]["lang"] = "de"
    loaded["tags"].append("c")
    loaded["scores"][7] = 10
    monitored.log.clear()
    await restarted.update_user_data(1, loaded)
    update = only_update(monitored.log)
    assert set(update["$set"]) == {
        "data.prefs",
        "data.tags",
        "data.scores",
        "format",
        "updated_at",
    }
    assert (await monitored().get_user_data())[1] == loaded
    monitored.log.clear()
    await restarted.update_user_data(1, loaded)  # nothing changed since
    assert monitored.log.total(WRITE_COMMANDS) == 0


async def test_an_external_edit_between_load_and_write_survives(
    monitored: Monitored, db: Any
) -> None:
    data = {"a": 1, "b": 2}
    persistence = await seeded(monitored, data)
    await db.user_data.update_one({"_id": 1}, {"$set": {"data.other": "from the admin panel"}})
    await persistence.update_user_data(1, {"a": 1, "b": 3})
    update = only_update(monitored.log)
    assert set(update["$set"]) == {"data.b", "format", "updated_at"}
    assert (await db.user_data.find_one({"_id": 1}))["data"] == {
        "a": 1,
        "b": 3,
        "other": "from the admin panel",
    }


def only_op(log: CommandLog, collection: str = "user_data") -> Any:
    """The ``u`` of the only update sent: a document, or a pipeline (a list of stages)."""
    assert log.writes() == {("update", collection): 1}
    (command,) = log.documents("update", collection)
    (op,) = command["updates"]
    return op["u"]


@pytest.mark.parametrize("key", ["with.dot", "$dollar", "a.b.c"])
async def test_keys_that_are_no_paths_are_set_alone(
    monitored: Monitored, db: Any, key: str
) -> None:
    """A key no ``data.<key>`` path can address is set (and unset) alone with ``$setField``;
    the codec keeps ``$`` keys as ``[key, value]`` pairs: that ``items`` field is set whole."""
    data = {"plain": 1, key: {"x": 1}}
    persistence = await seeded(monitored, data)
    await db.user_data.update_one({"_id": 1}, {"$set": {"other": "from the admin panel"}})
    changed = {"plain": 1, key: {"x": 2}}
    await persistence.update_user_data(1, changed)
    update = only_op(monitored.log)
    if key.startswith("$"):
        assert set(update["$set"]) == {"data.items", "format", "updated_at"}, update
    else:
        assert isinstance(update, list), update  # a pipeline: no replacement
        assert "data.plain" not in update[1]["$set"]  # unchanged keys are not sent
    assert (await monitored().get_user_data())[1] == changed

    # Removing such a key unsets it alone (for a "$" key, the data stops being a tagged
    # mapping: a change of its shape, written whole).
    monitored.log.clear()
    await persistence.update_user_data(1, {"plain": 2})
    update = only_op(monitored.log)
    assert (await monitored().get_user_data())[1] == {"plain": 2}
    stored = await db.user_data.find_one({"_id": 1})
    assert stored["data"] == {"plain": 2}
    if not key.startswith("$"):
        assert isinstance(update, list), update  # never a replacement
        assert stored["other"] == "from the admin panel"


async def test_a_diff_of_a_document_deleted_meanwhile_is_repaired(
    monitored: Monitored, db: Any
) -> None:
    data = {"a": 1, "b": 2, "c": [1, 2]}
    persistence = await seeded(monitored, data)
    await db.user_data.delete_one({"_id": 1})
    changed = {"a": 1, "b": 20, "c": [1, 2]}
    await persistence.update_user_data(1, changed)
    first, repair = monitored.log.documents("update", "user_data")
    assert set(first["updates"][0]["u"]["$set"]) == {"data.b", "format", "updated_at"}
    # every key is set again (never a blind replacement: another writer may have recreated it)
    assert set(repair["updates"][0]["u"]["$set"]) == {
        "data.a",
        "data.b",
        "data.c",
        "format",
        "updated_at",
    }
    assert (await db.user_data.find_one({"_id": 1}))["data"] == changed
    # ... and the state is known again: the same data sends nothing.
    monitored.log.clear()
    await persistence.update_user_data(1, changed)
    assert monitored.log.total() == 0


async def test_chat_and_bot_data_are_diffed_too(monitored: Monitored, db: Any) -> None:
    first = await started(monitored())
    await first.update_chat_data(-5, {"a": 1, "b": 2})
    await first.update_bot_data({"x": 1, "y": 2})
    await first.flush()
    second = await started(monitored())
    monitored.log.clear()
    await second.update_chat_data(-5, {"a": 1, "b": 3})
    await second.update_bot_data({"x": 1, "y": 2, "z": 3})
    chat = dict(monitored.log.documents("update", "chat_data")[0]["updates"][0]["u"])
    bot = dict(monitored.log.documents("update", "bot_data")[0]["updates"][0]["u"])
    assert set(chat["$set"]) == {"data.b", "format", "updated_at"}
    assert set(bot["$set"]) == {"data.z", "format", "updated_at"}
    assert (await db.bot_data.find_one({"_id": "bot_data"}))["data"] == {"x": 1, "y": 2, "z": 3}


# =============================================================================== through PTB
async def test_update_persistence_of_a_real_application(monitored: Monitored, db: Any) -> None:
    persistence = monitored()
    app, _ = build_application(persistence)

    async def count(update: Any, context: Any) -> None:
        context.user_data["messages"] = context.user_data.get("messages", 0) + 1
        context.user_data["last"] = update.effective_message.text
        context.chat_data.setdefault("seen", []).append(update.effective_user.id)

    async def start(update: Any, context: Any) -> int:
        return 1

    async def step(update: Any, context: Any) -> int:
        return 2

    conversation = ConversationHandler(
        entry_points=[CommandHandler("start", start)],
        states={1: [MessageHandler(filters.TEXT & ~filters.COMMAND, step)], 2: []},
        fallbacks=[],
        name="flow",
        persistent=True,
    )
    app.add_handler(conversation)
    app.add_handler(MessageHandler(filters.TEXT, count), group=1)

    async with app:
        log = monitored.log
        log.clear()
        users = 120
        for uid in range(1, users + 1):
            await app.process_update(message_update(app, "/start", user_id=uid))
            await app.process_update(message_update(app, f"hello {uid}", user_id=uid))
        await app.process_update(message_update(app, "group hello", user_id=1, chat_id=-100))
        assert log.total(WRITE_COMMANDS) == 0  # processing updates alone writes nothing

        await app.update_persistence()
        writes = log.writes()
        assert writes.pop(("update", "user_data")) == 1
        assert writes.pop(("update", "chat_data")) == 1
        assert writes.pop(("update", "conversations")) == 1
        assert writes in ({}, {("update", "bot_data"): 1})  # an empty bot_data, written once
        (user_update,) = log.documents("update", "user_data")
        assert len(user_update["updates"]) == users

        log.clear()
        await app.update_persistence()  # nothing changed since
        assert log.total() == 0

        await app.process_update(message_update(app, "again", user_id=7))
        log.clear()
        await app.update_persistence()
        # No conversation changed state: only user 7 and its chat are written.
        assert log.writes() == {("update", "user_data"): 1, ("update", "chat_data"): 1}
        (user_update,) = log.documents("update", "user_data")
        (op,) = user_update["updates"]
        assert set(op["u"]["$set"]) == {"data.messages", "data.last", "format", "updated_at"}

    docs = await stored(db, "user_data")
    assert len(docs) == users
    assert docs[7]["data"] == {"messages": 3, "last": "again"}
    assert len(await stored(db, "chat_data")) == users + 1
    conversations = await stored(db, "conversations")
    assert len(conversations) == users
    assert {doc["state"] for doc in conversations.values()} == {2}


# ----------------------------------------------------------------------------- exact sizes
SIZED_VALUES: dict[str, Any] = {
    "f": 1.5,
    "i32": 7,
    "i64": 2**40,
    "b": True,
    "n": None,
    "s": "short",
    "é": "ünïcode ✓",
    "long": "x" * 200,
    "bytes": b"\x00\x01",
    "nested": {"a": [1.0, 2**40, "z"]},
}


async def test_the_size_limit_is_checked_exactly_before_sending(make_persistence: Factory) -> None:
    """A document of exactly the server's limit is written; one byte more is refused before
    sending. Floats and int64 used to be undercounted by 2 bytes per key: a document over the
    limit passed the check and failed on the server."""
    limit = 16 * 1024 * 1024  # maxBsonObjectSize (the server reports it; 16 MiB everywhere)
    data: dict[str, Any] = {f"k{i}": float(i) for i in range(2000)}
    data |= {f"n{i}": 2**40 for i in range(2000)} | {"pad": ""}
    head = {"_id": 1, "data": data, "format": 2, "updated_at": dtm.datetime.now(dtm.timezone.utc)}
    data["pad"] = "x" * (limit - len(bson.encode(head)))
    persistence = make_persistence(write_timeout=30)  # 16 MiB to a server written in Python
    await persistence.get_user_data()
    too_big = {**data, "pad": data["pad"] + "x"}
    with pytest.raises(DocumentTooLargeError) as info:
        await persistence.update_user_data(1, too_big)
    assert (info.value.size, info.value.limit) == (limit + 1, limit)
    await persistence.update_user_data(1, data)
    assert persistence.health().pending == 0
    await persistence.flush()


def _merge_record(document: dict[str, Any], unset: list[str]) -> str:
    record = {
        "collection": "user_data",
        "_id": document["_id"],
        "entity": f"user_data[{document['_id']}]",
        "op": "merge",
        "at": dtm.datetime.now(dtm.timezone.utc),
        "document": document,
        "unset": unset,
    }
    return bson.json_util.dumps(record, json_options=bson.json_util.CANONICAL_JSON_OPTIONS)


async def test_a_journaled_merge_sets_keys_no_path_can_address_onto_the_stored_document(
    db: Any, mongodb_uri: str, db_name: str, tmp_path: Path
) -> None:
    """The replay of a kept ``merge`` (journal, recovery file) sets ``"a.b"`` as one key."""
    await db.user_data.insert_one({"_id": 1, "data": {"other": 1, "gone": 2}})
    await db.user_data.insert_one({"_id": 2, "data": {"other": 1}})
    recovery = tmp_path / "recovery.jsonl"
    recovery.write_text(
        _merge_record({"_id": 1, "data": {"a.b": {"c": "$d"}, "n": 1}, "format": 2}, ["gone"])
        + "\n"
        + _merge_record({"_id": 2, "data": {"n": 2}}, [])
        + "\n"
    )
    result = await cli("recover", str(recovery), "--uri", mongodb_uri, "-d", db_name)
    assert result.exit_code == 0, result.output
    stored = await db.user_data.find_one({"_id": 1})
    assert stored["data"] == {"other": 1, "a.b": {"c": "$d"}, "n": 1}
    assert stored["format"] == 2
    assert (await db.user_data.find_one({"_id": 2}))["data"] == {"other": 1, "n": 2}


async def test_a_big_run_gets_the_time_its_size_needs(monitored: Monitored) -> None:
    """A run of 3,000 new users is one bulk_write whose deadline grows with its size.

    With a fixed deadline per attempt, a batch the server needs longer for than that timed out at
    every retry, and was kept forever while the server was merely slow. The deadline is read where
    the server sees it, in the ``maxTimeMS`` PyMongo sends (the deadline left, less the round trip):
    a batch of 3,000 operations gets 3 s, a write of one user the 1 s of ``write_timeout``. (Timing
    the server instead made this test depend on the machine's load.)
    """
    persistence = await started(monitored(write_timeout=1.0))
    log = monitored.log
    log.clear()
    await asyncio.gather(*(persistence.update_user_data(uid, user(uid)) for uid in range(3000)))
    await persistence.update_user_data(5000, user(5000))
    big, small = log.documents("update", "user_data")
    assert (len(big["updates"]), len(small["updates"])) == (3000, 1)
    assert 2000 < big["maxTimeMS"] <= 3000
    assert 0 < small["maxTimeMS"] <= 1000
