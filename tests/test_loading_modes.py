"""Loading modes over the wire, through real PTB Applications: eager (default), lazy and refresh.

Reads are counted with PyMongo's command monitoring (``tests.helpers.command_log``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from telegram.ext import (
    Application,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from mongo_persistence import MongoPersistence
from tests.conftest import Monitored
from tests.helpers.command_log import READ_COMMANDS, WRITE_COMMANDS
from tests.ptb_offline import build_application, message_update

Factory = Callable[..., MongoPersistence[Any, Any, Any]]

USERS = {uid: {"name": f"user{uid}", "visits": uid, "tags": ("a", uid)} for uid in range(1, 31)}
CHATS = {uid: {"title": f"chat{uid}", "members": {uid}} for uid in range(1, 31)}
BOT_DATA = {"motd": "hello", "counts": {1: 2}}


@pytest.fixture
async def seeded(make_persistence: Factory) -> None:
    """30 users, 30 chats, bot data and two conversations, written by an earlier bot run."""
    persistence = make_persistence()
    await persistence.get_user_data()
    for uid, data in USERS.items():
        await persistence.update_user_data(uid, copy.deepcopy(data))
        await persistence.update_chat_data(uid, copy.deepcopy(CHATS[uid]))
    await persistence.update_bot_data(copy.deepcopy(BOT_DATA))
    await persistence.update_conversation("flow", (3, 3), 1)
    await persistence.update_conversation("flow", (4, 4), 2)
    await persistence.flush()


class Bot:
    """An application with a persistent conversation and a handler that records what it sees."""

    def __init__(self, persistence: MongoPersistence[Any, Any, Any]) -> None:
        self.app: Application[Any, Any, Any, Any, Any, Any]
        self.app, _ = build_application(persistence)
        self.seen: list[tuple[str, dict[Any, Any], dict[Any, Any], dict[Any, Any]]] = []
        self.states: list[tuple[int, str]] = []
        self.write: dict[str, Any] = {}

        async def record(update: Any, context: Any) -> None:
            self.seen.append(
                (
                    update.effective_message.text,
                    copy.deepcopy(dict(context.user_data)),
                    copy.deepcopy(dict(context.chat_data)),
                    copy.deepcopy(dict(context.bot_data)),
                )
            )
            context.user_data.update(self.write)

        def state(number: int) -> Callable[..., Any]:
            async def callback(update: Any, context: Any) -> int:
                self.states.append((update.effective_user.id, f"state {number}"))
                return 1 if number == 2 else number + 1  # 0 -> 1 -> 2 -> 1 ...

            return callback

        self.app.add_handler(
            ConversationHandler(
                entry_points=[CommandHandler("start", state(0))],
                states={
                    1: [MessageHandler(filters.TEXT, state(1))],
                    2: [MessageHandler(filters.TEXT, state(2))],
                },
                fallbacks=[],
                name="flow",
                persistent=True,
            )
        )
        self.app.add_handler(MessageHandler(filters.ALL, record), group=1)

    async def send(self, uid: int, text: str = "hi") -> tuple[dict[Any, Any], dict[Any, Any]]:
        """Processes a message of user ``uid`` in their private chat; returns user and chat data."""
        await self.app.process_update(message_update(self.app, text, user_id=uid))
        _, user_data, chat_data, _ = self.seen[-1]
        return user_data, chat_data


# =============================================================================== eager
async def test_eager_loads_everything_at_startup(seeded: None, monitored: Monitored) -> None:
    bot = Bot(monitored())
    async with bot.app:
        assert dict(bot.app.user_data) == USERS
        assert dict(bot.app.chat_data) == CHATS
        assert bot.app.bot_data == BOT_DATA
        reads = monitored.log.reads()
        assert reads[("find", "user_data")] == 1
        assert reads[("find", "chat_data")] == 1
        monitored.log.clear()
        assert await bot.send(5) == (USERS[5], CHATS[5])
        assert await bot.send(4) == (USERS[4], CHATS[4])
        assert bot.states == [(4, "state 2")]  # the stored conversation state
        assert monitored.log.total() == 0  # nothing is read per update


# =============================================================================== lazy
async def test_lazy_returns_nothing_at_startup(seeded: None, monitored: Monitored) -> None:
    persistence = monitored(lazy=True)
    assert await persistence.get_user_data() == {}
    assert await persistence.get_chat_data() == {}
    assert await persistence.get_bot_data() == BOT_DATA
    assert await persistence.get_conversations("flow") == {(3, 3): 1, (4, 4): 2}
    reads = monitored.log.reads()
    assert ("find", "user_data") not in reads
    assert ("find", "chat_data") not in reads


async def test_lazy_loads_an_entity_when_its_first_update_arrives(
    seeded: None, monitored: Monitored, db: Any
) -> None:
    bot = Bot(monitored(lazy=True))
    async with bot.app:
        reads = monitored.log.reads()
        assert set(reads) <= {("find", "bot_data"), ("find", "conversations")}, reads
        assert dict(bot.app.user_data) == {}
        assert dict(bot.app.chat_data) == {}

        monitored.log.clear()
        assert await bot.send(7) == (USERS[7], CHATS[7])
        finds = monitored.log.documents("find")
        assert sorted((cmd["find"], cmd["filter"]["_id"]) for cmd in finds) == [
            ("chat_data", 7),
            ("user_data", 7),
        ]
        monitored.log.clear()
        assert await bot.send(7) == (USERS[7], CHATS[7])
        assert monitored.log.total() == 0  # loaded once only

        # The conversations were loaded at startup: user 3 continues in state 1.
        await bot.send(3)
        assert bot.states == [(3, "state 1")]
        # A user never stored starts empty.
        assert await bot.send(99) == ({}, {})

        # Writing a loaded entity sends only its change.
        bot.write = {"visits": 100}
        await bot.send(7)
        monitored.log.clear()
        await bot.app.update_persistence()
        (update,) = monitored.log.documents("update", "user_data")
        ops = {op["q"]["_id"]: dict(op["u"]) for op in update["updates"]}
        assert set(ops[7]["$set"]) == {"data.visits", "format", "updated_at"}
    doc = await db.user_data.find_one({"_id": 7})
    assert doc["data"]["visits"] == 100
    assert doc["data"]["name"] == "user7"
    assert await db.user_data.count_documents({}) == len(USERS) + 1  # user 99 was added


async def test_lazy_startup_reads_no_entity_whatever_the_size(
    make_persistence: Factory, monitored: Monitored, db: Any
) -> None:
    await db.chat_data.insert_many([{"_id": -i, "data": {"n": i}} for i in range(1, 2001)])
    await db.user_data.insert_many([{"_id": i, "data": {"n": i}} for i in range(1, 2001)])
    bot = Bot(monitored(lazy=True))
    async with bot.app:
        reads = monitored.log.reads()
        assert set(reads) <= {("find", "bot_data"), ("find", "conversations")}, reads
        assert await bot.send(1500) == ({"n": 1500}, {})


async def test_lazy_write_of_an_entity_not_loaded_yet_keeps_its_stored_data(
    seeded: None, monitored: Monitored, db: Any
) -> None:
    bot = Bot(monitored(lazy=True))
    async with bot.app:
        # Edited outside handlers (e.g. from a job without user_id or an admin command), as PTB's
        # docs suggest, for a user whose data was not loaded yet.
        bot.app.user_data[8]["note"] = "vip"
        bot.app.mark_data_for_update_persistence(user_ids=[8])
        await bot.app.update_persistence()
        stored = (await db.user_data.find_one({"_id": 8}))["data"]
        assert stored["name"] == "user8"
        assert stored["note"] == "vip"
        user_data, _ = await bot.send(8)
        assert user_data["name"] == "user8"
        assert user_data["note"] == "vip"


# =============================================================================== refresh
async def test_refresh_shows_external_edits_to_the_next_update(
    seeded: None, monitored: Monitored, db: Any
) -> None:
    bot = Bot(monitored(refresh=True))
    async with bot.app:
        assert await bot.send(9) == (USERS[9], CHATS[9])

        await db.user_data.update_one(
            {"_id": 9},
            {"$set": {"data.added": "by admin", "data.visits": 900}, "$unset": {"data.tags": ""}},
        )
        await db.chat_data.update_one({"_id": 9}, {"$set": {"data.title": "renamed"}})
        await db.bot_data.update_one({"_id": "bot_data"}, {"$set": {"data.motd": "new motd"}})
        user_data, chat_data = await bot.send(9)
        assert user_data == {"name": "user9", "visits": 900, "added": "by admin"}
        assert chat_data == {**CHATS[9], "title": "renamed"}
        assert bot.seen[-1][3]["motd"] == "new motd"

        await db.user_data.delete_one({"_id": 9})
        await db.chat_data.delete_one({"_id": 9})
        assert await bot.send(9) == ({}, {})

        # What the bot changes after that is written whole again.
        bot.write = {"back": True}
        await bot.send(9)
        await bot.app.update_persistence()
    assert (await db.user_data.find_one({"_id": 9}))["data"] == {"back": True}


async def test_refresh_does_not_recreate_a_document_deleted_externally(
    seeded: None, monitored: Monitored, db: Any
) -> None:
    bot = Bot(monitored(refresh=True))
    async with bot.app:
        await bot.send(9)
        await db.user_data.delete_one({"_id": 9})
        assert (await bot.send(9))[0] == {}
        monitored.log.clear()
        await bot.app.update_persistence()  # the handler changed nothing
        assert ("update", "user_data") not in monitored.log.writes()
    assert await db.user_data.find_one({"_id": 9}) is None


async def test_refresh_writes_unsaved_changes_of_the_bot_first(
    seeded: None, monitored: Monitored, db: Any
) -> None:
    bot = Bot(monitored(refresh=True))
    async with bot.app:
        bot.write = {"mine": 1}
        await bot.send(10)  # the handler sets "mine"; no update_persistence() run follows
        bot.write = {}
        await db.user_data.update_one({"_id": 10}, {"$set": {"data.theirs": "x"}})

        monitored.log.clear()
        user_data, _ = await bot.send(10)
        assert user_data == {**USERS[10], "mine": 1, "theirs": "x"}
        (update,) = monitored.log.documents("update", "user_data")
        (op,) = update["updates"]
        assert set(op["u"]) == {"$set"}  # a diff: the external key is not overwritten
        assert set(op["u"]["$set"]) == {"data.mine", "format", "updated_at"}

        await bot.app.update_persistence()
    stored = (await db.user_data.find_one({"_id": 10}))["data"]
    assert stored == {
        "name": "user10",
        "visits": 10,
        "tags": stored["tags"],
        "mine": 1,
        "theirs": "x",
    }


async def test_refresh_keeps_a_document_created_externally_for_a_new_user(
    seeded: None, monitored: Monitored, db: Any
) -> None:
    bot = Bot(monitored(refresh=True))
    async with bot.app:
        bot.write = {"mine": 1}
        await bot.send(77)  # a new user: the handler stores "mine", not written yet
        bot.write = {}
        await db.user_data.insert_one({"_id": 77, "data": {"theirs": "x"}})
        user_data, _ = await bot.send(77)
        assert user_data == {"mine": 1, "theirs": "x"}


@pytest.mark.parametrize(
    "mode",
    [{}, {"lazy": True}, {"refresh": True}, {"lazy": True, "refresh": True}],
    ids=["eager", "lazy", "refresh", "lazy+refresh"],
)
async def test_every_mode_loads_conversations_at_startup_and_round_trips(
    seeded: None, monitored: Monitored, db: Any, mode: dict[str, bool]
) -> None:
    bot = Bot(monitored(**mode))
    async with bot.app:
        assert ("find", "conversations") in monitored.log.reads()
        await bot.send(3)
        await bot.send(4)
        assert bot.states == [(3, "state 1"), (4, "state 2")]
        assert await bot.send(11) == (USERS[11], CHATS[11])
        bot.write = {"visits": -11}
        await bot.send(11)
        await bot.app.update_persistence()
    assert (await db.user_data.find_one({"_id": 11}))["data"]["visits"] == -11
    conversations = {doc["_id"]: doc["state"] async for doc in db.conversations.find({})}
    assert sorted(conversations.values()) == [1, 2]

    restarted = monitored(**mode)
    assert (await restarted.get_conversations("flow")) == {(3, 3): 2, (4, 4): 1}
    users = await restarted.get_user_data()
    assert users == ({} if mode.get("lazy") else {**USERS, 11: {**USERS[11], "visits": -11}})


async def test_refresh_reads_per_update_and_eager_does_not(
    seeded: None, monitored: Monitored
) -> None:
    bot = Bot(monitored(refresh=True))
    async with bot.app:
        monitored.log.clear()
        await bot.send(12)
        await bot.send(12)
        reads = monitored.log.counts(READ_COMMANDS)
        assert reads[("find", "user_data")] == 2
        assert reads[("find", "chat_data")] == 2
        assert reads[("find", "bot_data")] == 2
        assert monitored.log.total(WRITE_COMMANDS) == 0
