"""The behaviours PTB's own persistence tests rely on, each checked over the wire.

(PTB's suite itself runs against MongoPersistence in ``make conformance``.)
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import os
import signal
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.write_concern import WriteConcern
from telegram import Bot, Chat, Message, TelegramObject, User
from telegram.ext import BasePersistence, ContextTypes, ExtBot
from telegram.warnings import PTBUserWarning

from mongo_persistence import (
    BadDocumentError,
    DecodingError,
    EncodingError,
    MongoPersistence,
    PersistenceWriteError,
)
from scripts.local_server import LocalServer
from tests.helpers.servers import FAST_SELECTION_MS, disk_server, until_reachable
from tests.ptb_offline import build_application

Factory = Callable[..., MongoPersistence[Any, Any, Any]]


class Private(TelegramObject):
    """A TelegramObject of the bot's own, whose __init__ does not fit ``de_json``."""

    def __init__(self, private: str, normal: str, bot: Bot | None) -> None:
        super().__init__()
        self._private = private
        self.normal = normal
        self._bot = bot


class Slotted(TelegramObject):
    __slots__ = ("_private", "new_var")

    def __init__(self, new_var: str, private: str) -> None:
        super().__init__()
        self.new_var = new_var
        self._private = private


# ------------------------------------------------------------------ re-use after flush()
async def test_a_persistence_is_usable_again_after_flush(make_persistence: Factory) -> None:
    persistence = make_persistence()  # from a URI: it owns its client and closes it in flush()
    await persistence.get_user_data()
    await persistence.update_user_data(1, {"before": 1})
    await persistence.flush()

    assert await persistence.get_user_data() == {1: {"before": 1}}
    await persistence.update_user_data(2, {"after": 2})  # written, not kept and dropped
    await persistence.flush()
    assert persistence.last_recovery_file is None
    assert await make_persistence().get_user_data() == {1: {"before": 1}, 2: {"after": 2}}


async def test_an_application_initialised_again_after_shutdown(make_persistence: Factory) -> None:
    persistence = make_persistence()
    app, _ = build_application(persistence)
    await app.initialize()
    app.user_data[7]["n"] = 1  # type: ignore[index]
    app.mark_data_for_update_persistence(user_ids=7)
    await app.shutdown()

    await app.initialize()  # PTB allows this; its tests do it
    assert app.user_data[7] == {"n": 1}
    app.user_data[7]["n"] = 2  # type: ignore[index]
    app.mark_data_for_update_persistence(user_ids=7)
    await app.shutdown()
    assert (await make_persistence().get_user_data())[7] == {"n": 2}


# ------------------------------------------------------------------ data classes PTB accepts
@pytest.mark.parametrize("cls", [int, float, complex])
async def test_plain_value_data_classes(make_persistence: Factory, cls: type) -> None:
    types = ContextTypes(user_data=cls, chat_data=cls, bot_data=cls)
    persistence = make_persistence(context_types=types)
    assert await persistence.get_bot_data() == cls()
    await persistence.update_user_data(1, cls(1))
    await persistence.update_chat_data(-1, cls(2))
    await persistence.update_bot_data(cls(3))
    await persistence.flush()

    again = make_persistence(context_types=types)
    users, chats, bot_data = (
        await again.get_user_data(),
        await again.get_chat_data(),
        await again.get_bot_data(),
    )
    assert (users, chats, bot_data) == ({1: cls(1)}, {-1: cls(2)}, cls(3))
    assert {type(users[1]), type(chats[-1]), type(bot_data)} == {cls}


async def test_a_value_of_another_class_than_context_types_is_refused(
    make_persistence: Factory, db: Any
) -> None:
    persistence = make_persistence()
    with pytest.raises(EncodingError, match=r"user_data\[1\].*not a dict"):
        await persistence.update_user_data(1, 1)  # would not load as the dict PTB expects
    assert await db.user_data.count_documents({}) == 0


# ------------------------------------------------------------------ Telegram objects and bots
def _message(bot: Bot | None) -> Message:
    chat = Chat(2, type="supergroup")
    message = Message(
        3, dtm.datetime(2026, 1, 2, 3, 4, 5, 678), chat, from_user=User(1, "A", False)
    )
    if bot is not None:
        message.set_bot(bot)
        chat.set_bot(bot)
    return message


async def test_telegram_objects_keep_their_binding(make_persistence: Factory) -> None:
    running, other, restarted = ExtBot("1:A"), ExtBot("2:B"), ExtBot("1:A")
    persistence = make_persistence()
    persistence.set_bot(running)
    data = {"mine": _message(running), "none": _message(None), "other": _message(other)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await persistence.update_user_data(1, data)
    # One warning for the entity, though two objects of it are bound to the other bot.
    ours = [str(w.message)[:27] for w in caught if issubclass(w.category, PTBUserWarning)]
    assert ours == ["Unknown bot instance found."]
    await persistence.flush()

    again = make_persistence()
    again.set_bot(restarted)
    loaded = (await again.get_user_data())[1]
    assert loaded == data
    assert loaded["mine"].get_bot() is restarted
    assert loaded["mine"].chat.get_bot() is restarted
    assert loaded["none"]._bot is None
    assert loaded["other"]._bot is None
    assert loaded["other"].chat._bot is None
    assert loaded["mine"].date == data["mine"].date  # naive, microseconds: as it was


async def test_own_telegram_object_subclasses_come_back_equal(make_persistence: Factory) -> None:
    bot = ExtBot("1:A")
    persistence = make_persistence()
    persistence.set_bot(bot)
    await persistence.update_user_data(
        1, {"dict": Private("p", "n", bot), "slots": Slotted("v", "private")}
    )
    await persistence.flush()

    again = make_persistence()
    again.set_bot(bot)
    loaded = (await again.get_user_data())[1]
    assert (loaded["dict"]._private, loaded["dict"].normal) == ("p", "n")
    assert loaded["dict"]._bot is bot
    assert (loaded["slots"].new_var, loaded["slots"]._private) == ("v", "private")
    assert loaded["slots"]._bot is None


async def test_telegram_objects_written_by_0_1_still_load(
    make_persistence: Factory, db: Any
) -> None:
    legacy = {"__type__": "telegram", "class": "User", "value": {"id": 5, "first_name": "Old"}}
    legacy["value"]["is_bot"] = False
    await db.user_data.insert_one({"_id": 5, "data": {"me": legacy}})
    persistence = make_persistence()
    bot = ExtBot("1:A")
    persistence.set_bot(bot)
    me = (await persistence.get_user_data())[5]["me"]
    assert me == User(5, "Old", False)
    assert me.get_bot() is bot


# ------------------------------------------------------------------ malformed documents
_CONVERSATION = {"_id": '["talk",1]', "name": "talk", "state": 1}


@pytest.mark.parametrize(
    ("collection", "document", "entity"),
    [
        ("callback_data", {"_id": "callback_data", "data": "(())"}, "callback_data"),
        ("callback_data", {"_id": "callback_data", "data": {"keyboards": []}}, "callback_data"),
        (
            "callback_data",
            {"_id": "callback_data", "data": {"keyboards": [{"keyboard": 1}], "queries": {}}},
            r"callback_data\['keyboards'\]\[0\]",
        ),
        (
            "callback_data",
            {
                "_id": "callback_data",
                "data": {
                    "keyboards": [{"keyboard": "k", "access_time": "now", "buttons": {}}],
                    "queries": {},
                },
            },
            r"callback_data\['keyboards'\]\[0\]\['access_time'\]",
        ),
        ("conversations", {**_CONVERSATION, "key": "(())"}, r"conversations\['talk'\]"),
        ("conversations", {**_CONVERSATION, "key": [1.5]}, r"conversations\['talk'\]"),
        ("conversations", {"_id": "x", "name": "talk", "key": [1]}, r"'state'"),
    ],
)
async def test_malformed_documents_raise_a_decoding_error_naming_them(
    make_persistence: Factory, db: Any, collection: str, document: dict[str, Any], entity: str
) -> None:
    await db[collection].insert_one(document)
    persistence = make_persistence()
    with pytest.raises(DecodingError, match=entity):
        if collection == "callback_data":
            await persistence.get_callback_data()
        else:
            await persistence.get_conversations("talk")


# ------------------------------------------------------------------ lazy migrate_chat_data
async def test_lazy_migrate_of_a_chat_not_loaded_loses_nothing(
    make_persistence: Factory, db: Any
) -> None:
    writer = make_persistence()
    await writer.update_chat_data(-1, {"old": "data"})
    await writer.flush()

    persistence = make_persistence(lazy=True)
    app, _ = build_application(persistence)
    errors: list[BaseException] = []

    async def on_error(_: object, context: Any) -> None:
        errors.append(context.error)

    app.add_error_handler(on_error)
    async with app:
        app.migrate_chat_data(old_chat_id=-1, new_chat_id=-2)  # chat -1 was never loaded
        await app.update_persistence()
    assert [type(e) for e in errors] == [PersistenceWriteError]
    assert "never loaded" in str(errors[0])
    assert (await db.chat_data.find_one({"_id": -1}))["data"] == {"old": "data"}  # kept

    # Loaded first (as the README says), the migration does what PTB documents.
    persistence = make_persistence(lazy=True)
    app, _ = build_application(persistence)
    async with app:
        await persistence.refresh_chat_data(-1, app.chat_data[-1])
        app.migrate_chat_data(old_chat_id=-1, new_chat_id=-2)
        await app.update_persistence()
    assert await db.chat_data.find_one({"_id": -1}) is None
    assert (await db.chat_data.find_one({"_id": -2}))["data"] == {"old": "data"}


async def test_lazy_drop_of_a_chat_that_holds_nothing_goes_through(
    make_persistence: Factory, db: Any
) -> None:
    await db.chat_data.insert_one({"_id": -3, "data": {}})
    persistence = make_persistence(lazy=True)
    await persistence.get_chat_data()
    await persistence.drop_chat_data(-3)
    assert await db.chat_data.find_one({"_id": -3}) is None


# ------------------------------------------------------------------ slots (PTB's slot test)
def _mro_slots(obj: object) -> list[str]:
    return [s for cls in type(obj).__mro__ if hasattr(cls, "__slots__") for s in cls.__slots__]


def test_slot_behaviour(make_persistence: Factory) -> None:
    persistence = make_persistence()
    for attr in persistence.__slots__:
        assert getattr(persistence, attr, "err") != "err", f"got extra slot '{attr}'"
    assert not hasattr(persistence, "__dict__")
    slots = _mro_slots(persistence)
    assert len(slots) == len(set(slots)), "duplicate slot"
    assert set(BasePersistence.__slots__) <= set(slots)


# ------------------------------------------------------------------ a run that carries retries
@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[LocalServer]:
    """A server of the test's own, to kill, restart and hang (its data on disk)."""
    server = disk_server(tmp_path / "server")
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            os.killpg(server.process.pid, signal.SIGCONT)
        server.kill()


def _on(server: LocalServer, tmp_path: Path, **kwargs: Any) -> MongoPersistence[Any, Any, Any]:
    return MongoPersistence(
        server.uri,
        database="own",
        update_interval=3600,
        recovery_dir=tmp_path / "journal",
        client_kwargs={"serverSelectionTimeoutMS": FAST_SELECTION_MS},
        **kwargs,
    )


def _seed(server: LocalServer, collection: str, document: dict[str, Any]) -> None:
    """Writes a document as another program would, on disk (it survives a kill)."""
    with MongoClient(server.uri, serverSelectionTimeoutMS=5000) as client:
        client.own.get_collection(collection, write_concern=WriteConcern(j=True)).insert_one(
            document
        )


def _stored(server: LocalServer, collection: str, doc_id: Any) -> Any:
    with MongoClient(server.uri, serverSelectionTimeoutMS=5000) as client:
        return client.own[collection].find_one({"_id": doc_id})


async def test_a_run_that_carries_kept_writes_returns_with_their_answer(
    own_server: LocalServer, tmp_path: Path
) -> None:
    assert own_server.process is not None
    persistence = _on(own_server, tmp_path, write_timeout=30)
    await persistence.get_user_data()
    own_server.kill()
    await persistence.update_user_data(1, {"v": 1})  # kept in the journal: no error for PTB
    assert persistence.health().pending == 1
    own_server.start()
    await until_reachable(persistence.database)
    os.killpg(own_server.process.pid, signal.SIGSTOP)  # the retry is answered only on SIGCONT

    # The next run (PTB writes bot_data every time) carries the kept write: it returns only
    # once that write has an answer too.
    run = asyncio.create_task(persistence.update_bot_data({"x": 1}))
    done, _ = await asyncio.wait({run}, timeout=2.0)
    assert not done, "the run returned before the kept write it carried was answered"
    os.killpg(own_server.process.pid, signal.SIGCONT)
    await run
    assert persistence.health().pending == 0
    assert _stored(own_server, "user_data", 1)["data"] == {"v": 1}
    await persistence.flush()


# ------------------------------------------------------------------ skip mode: every kind
async def test_skip_mode_skips_bad_conversation_and_callback_documents(
    make_persistence: Factory, db: Any
) -> None:
    good = make_persistence()
    await good.update_conversation("talk", (1, 1), 3)
    await good.flush()
    bad_id = '["talk",2,2]'
    await db.conversations.insert_one({"_id": bad_id, "name": "talk", "key": [2, 2]})  # no state
    await db.callback_data.insert_one({"_id": "callback_data", "data": "(())"})

    persistence = make_persistence(on_bad_document="skip")
    assert await persistence.get_conversations("talk") == {(1, 1): 3}
    assert await persistence.get_callback_data() is None
    assert sorted(persistence.bad_documents) == ["callback_data", "conversations['talk'][(2, 2)]"]
    with pytest.raises(BadDocumentError) as refused:
        await persistence.update_conversation("talk", (2, 2), 5)  # never overwritten
    assert refused.value.entity in persistence.bad_documents  # named alike read and written
    with pytest.raises(BadDocumentError) as refused:
        await persistence.update_callback_data(([], {}))
    assert refused.value.entity in persistence.bad_documents
    assert (await db.conversations.find_one({"_id": bad_id})) == {
        "_id": bad_id,
        "name": "talk",
        "key": [2, 2],
    }
    await persistence.update_conversation("talk", (1, 1), 4)  # the others are written
    reader = make_persistence(on_bad_document="skip")
    assert (await reader.get_conversations("talk"))[(1, 1)] == 4


# ------------------------------------------------------------------ lazy reads that fail
async def test_lazy_drop_of_a_never_loaded_chat_that_cannot_be_read_is_refused(
    own_server: LocalServer, tmp_path: Path
) -> None:
    _seed(own_server, "chat_data", {"_id": -4, "data": {"keep": 1}})
    persistence = _on(own_server, tmp_path, lazy=True)
    await persistence.get_chat_data()
    own_server.kill()  # the read before the drop fails
    with pytest.raises(PersistenceWriteError, match="cannot be read") as caught:
        await persistence.drop_chat_data(-4)
    assert not caught.value.kept
    await persistence.flush()
    own_server.start()
    assert _stored(own_server, "chat_data", -4)["data"] == {"keep": 1}


async def test_lazy_plain_value_not_loaded_and_unreadable_is_not_written_over(
    own_server: LocalServer, tmp_path: Path
) -> None:
    _seed(own_server, "user_data", {"_id": 5, "data": 7})
    persistence = _on(own_server, tmp_path, lazy=True, context_types=ContextTypes(user_data=int))
    await persistence.get_user_data()
    own_server.kill()  # the read before the write fails
    await persistence.update_user_data(5, 0)  # PTB's default for a user not loaded
    assert persistence.health().unsaved == 0  # nothing kept: nothing to write over the value
    await persistence.flush()
    own_server.start()
    assert _stored(own_server, "user_data", 5)["data"] == 7
