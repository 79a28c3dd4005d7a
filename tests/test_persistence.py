"""MongoPersistence against PTB's persistence contract, over the wire, with real Applications."""

from __future__ import annotations

import asyncio
import datetime as dtm
import enum
from collections.abc import Callable
from typing import Any

import pytest
from pymongo import AsyncMongoClient, MongoClient
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackContext,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    PersistenceInput,
    filters,
)

from mongo_persistence import EncodingError, MongoPersistence
from tests.ptb_offline import build_application, callback_update, last_buttons, message_update

Factory = Callable[..., MongoPersistence[Any, Any, Any]]


class Step(enum.IntEnum):
    NAME = 1
    AGE = 2


def conversation(name: str = "talk", **kwargs: Any) -> ConversationHandler[Any]:
    async def start(update: Update, context: CallbackContext[Any, Any, Any, Any]) -> int:
        assert update.message is not None
        await update.message.reply_text("name?")
        return Step.NAME

    async def got_name(update: Update, context: CallbackContext[Any, Any, Any, Any]) -> int:
        assert update.message is not None and context.user_data is not None
        context.user_data["name"] = update.message.text
        await update.message.reply_text("age?")
        return Step.AGE

    async def got_age(update: Update, context: CallbackContext[Any, Any, Any, Any]) -> int:
        assert update.message is not None and context.user_data is not None
        context.user_data["age"] = int(update.message.text or 0)
        await update.message.reply_text(f"bye {context.user_data['name']}")
        return ConversationHandler.END

    return ConversationHandler(
        entry_points=[CommandHandler("start", start)],
        states={
            Step.NAME: [MessageHandler(filters.TEXT & ~filters.COMMAND, got_name)],
            Step.AGE: [MessageHandler(filters.TEXT & ~filters.COMMAND, got_age)],
        },
        fallbacks=[],
        name=name,
        persistent=True,
        **kwargs,
    )


async def record_data(update: Update, context: CallbackContext[Any, Any, Any, Any]) -> None:
    assert update.message is not None
    assert context.user_data is not None and context.chat_data is not None
    text = update.message.text or ""
    context.user_data.setdefault("seen", []).append(text)
    context.user_data[3] = ("tuple", {1, 2})
    context.chat_data["last_message"] = update.message
    context.chat_data["at"] = dtm.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=dtm.timezone.utc)
    context.bot_data["count"] = context.bot_data.get("count", 0) + 1
    context.bot_data[(1, "k")] = frozenset({"x"})


# ----------------------------------------------------------------------------------- layout
async def test_documents_are_plain_and_readable(make_persistence: Factory, db: Any) -> None:
    persistence = make_persistence()
    await persistence.update_user_data(42, {"age": "30"})
    await persistence.update_chat_data(-100123, {"title": "group"})
    await persistence.update_bot_data({"admins": [1, 2]})
    await persistence.update_conversation("talk", (-100123, 42), Step.AGE)
    user = await db.user_data.find_one({"_id": 42})
    assert user["data"] == {"age": "30"}
    assert isinstance(user["updated_at"], dtm.datetime)
    assert (await db.chat_data.find_one({"_id": -100123}))["data"] == {"title": "group"}
    assert (await db.bot_data.find_one({"_id": "bot_data"}))["data"] == {"admins": [1, 2]}
    conv = await db.conversations.find_one({"name": "talk"})
    assert conv["_id"] == '["talk",-100123,42]'  # the handler's name and the key, as JSON
    assert conv["key"] == [-100123, 42]
    assert conv["state"]["__type__"] == "enum"
    # the _id is a number, so `db.user_data.find({_id: 42})` works in mongosh
    assert await db.user_data.count_documents({"_id": {"$type": "number"}}) == 1
    indexes = await db.conversations.index_information()
    assert any(spec["key"] == [("name", 1)] for spec in indexes.values())
    await persistence.flush()


async def test_indexes_are_created_idempotently(make_persistence: Factory, db: Any) -> None:
    for _ in range(2):
        persistence = make_persistence()
        await persistence.get_conversations("x")
        await persistence.flush()
    assert len(await db.conversations.index_information()) == 2  # _id and name


async def test_namespaces_isolate_bots(make_persistence: Factory, db: Any) -> None:
    one = make_persistence(namespace="bot1")
    two = make_persistence(namespace="bot2")
    await one.update_user_data(1, {"who": "one"})
    await two.update_user_data(1, {"who": "two"})
    await one.update_conversation("c", (1,), 5)
    await two.drop_user_data(1)
    assert "bot1.user_data" in await db.list_collection_names()
    assert await one.get_user_data() == {1: {"who": "one"}}
    assert await two.get_user_data() == {}
    assert await two.get_conversations("c") == {}
    assert await one.get_conversations("c") == {(1,): 5}
    await one.flush()
    await two.flush()


@pytest.mark.parametrize(
    "namespace", ["", "$x", "a\x00b", ".x", "shop bot", "a.b", "x/y", "é", "n" * 65, 5]
)
def test_bad_namespace_is_refused(namespace: Any) -> None:
    with pytest.raises(ValueError, match="namespace") as info:
        MongoPersistence("mongodb://127.0.0.1:1", namespace=namespace)
    assert str(info.value).endswith("use 1 to 64 letters, digits, '_' or '-'")


@pytest.mark.parametrize("database", ["", "a/b", "a b", "a.b", 'a"b', "a$b", "d" * 64, "a\x00"])
def test_bad_database_name_is_refused_as_such(database: str, mongodb_uri: str) -> None:
    """Not "ptb_persistence" for "", not "an invalid connection string" for the others."""
    with pytest.raises(ValueError, match=r"^Invalid database name .*: use 1 to 63 bytes"):
        MongoPersistence(mongodb_uri, database=database)


def test_an_invalid_database_name_in_the_uri_is_named_as_such() -> None:
    with pytest.raises(ValueError, match=r"Invalid database name 'a\*b' in the connection string"):
        MongoPersistence("mongodb://127.0.0.1:1/a*b")


async def test_a_synchronous_client_is_refused_at_once(mongodb_uri: str) -> None:
    sync: MongoClient[Any] = MongoClient(mongodb_uri, connect=False)
    try:
        for target in (sync, sync["db"]):
            with pytest.raises(TypeError, match=r"Use pymongo\.AsyncMongoClient"):
                MongoPersistence(target)
    finally:
        sync.close()


async def test_client_kwargs_with_a_client_handed_in_are_refused(client: Any, db: Any) -> None:
    for target in (client, db):
        with pytest.raises(TypeError, match="client_kwargs are only used"):
            MongoPersistence(target, client_kwargs={"appname": "x"})


# ----------------------------------------------------------------------------------- restarts
async def test_everything_survives_a_restart(make_persistence: Factory, db: Any) -> None:
    """Checklist 1 and 12: data written in one life is what get_* returns in the next."""
    app, _request = build_application(make_persistence())
    app.add_handler(conversation(), group=0)
    app.add_handler(MessageHandler(filters.ALL, record_data), group=1)
    async with app:
        await app.process_update(message_update(app, "/start", user_id=42))
        await app.process_update(message_update(app, "Alice", user_id=42))
        await app.process_update(message_update(app, "/start", user_id=7, chat_id=-5))
        # shutdown (async with) runs update_persistence() then flush()

    app2, request2 = build_application(make_persistence())
    handler = conversation()
    app2.add_handler(handler, group=0)
    app2.add_handler(MessageHandler(filters.ALL, record_data), group=1)
    async with app2:
        assert app2.user_data[42]["seen"] == ["/start", "Alice"]
        assert app2.user_data[42]["name"] == "Alice"
        assert app2.user_data[42][3] == ("tuple", {1, 2})
        assert app2.bot_data["count"] == 3
        assert app2.bot_data[(1, "k")] == frozenset({"x"})
        last = app2.chat_data[42]["last_message"]
        assert last.text == "Alice"
        assert last.get_bot() is app2.bot
        assert app2.chat_data[42]["at"] == dtm.datetime(
            2024, 1, 2, 3, 4, 5, 678901, tzinfo=dtm.timezone.utc
        )
        # conversation resumes in its state: 42 is at AGE, 7 at NAME (in chat -5)
        assert handler._conversations == {(42, 42): Step.AGE, (-5, 7): Step.NAME}
        await app2.process_update(message_update(app2, "33", user_id=42))
        assert request2.sent()[-1]["text"] == "bye Alice"
        # a restored Message still works with the new bot
        await last.reply_text("hello again")
        assert request2.sent()[-1]["text"] == "hello again"
    # the ended conversation's document is gone
    assert await db.conversations.count_documents({"_id": '["talk",42,42]'}) == 0
    assert await db.conversations.count_documents({"_id": '["talk",-5,7]'}) == 1


async def test_several_and_nested_conversation_handlers(make_persistence: Factory) -> None:
    async def enter_child(update: Update, _: Any) -> int:
        return 1

    async def child_end(update: Update, _: Any) -> int:
        return ConversationHandler.END

    def build() -> tuple[ConversationHandler[Any], ConversationHandler[Any]]:
        child = ConversationHandler(
            entry_points=[CommandHandler("child", enter_child)],
            states={1: [CommandHandler("done", child_end)]},
            fallbacks=[],
            name="child",
            persistent=True,
            map_to_parent={ConversationHandler.END: 2},
        )
        parent = ConversationHandler(
            entry_points=[CommandHandler("parent", enter_child)],
            states={1: [child], 2: [CommandHandler("parent", enter_child)]},
            fallbacks=[],
            name="parent",
            persistent=True,
        )
        return parent, child

    app, _ = build_application(make_persistence())
    parent, _child = build()
    app.add_handler(parent)
    app.add_handler(conversation("other"), group=1)
    async with app:
        await app.process_update(message_update(app, "/parent", user_id=1))
        await app.process_update(message_update(app, "/child", user_id=1))
        await app.process_update(message_update(app, "/start", user_id=2))

    app2, _ = build_application(make_persistence())
    parent2, child2 = build()
    other2 = conversation("other")
    app2.add_handler(parent2)
    app2.add_handler(other2, group=1)
    async with app2:
        assert child2._conversations == {(1, 1): 1}
        assert other2._conversations == {(2, 2): Step.NAME}
        await app2.process_update(message_update(app2, "/done", user_id=1))
        assert child2._conversations == {}
        assert parent2._conversations == {(1, 1): 2}

    persistence = make_persistence()
    assert await persistence.get_conversations("child") == {}
    assert await persistence.get_conversations("parent") == {(1, 1): 2}
    await persistence.flush()


async def test_callback_data_survives_a_restart(make_persistence: Factory, db: Any) -> None:
    async def offer(update: Update, _: Any) -> None:
        assert update.message is not None
        keyboard = [
            [InlineKeyboardButton("one", callback_data=("pick", 1, {"x": dtm.date(2024, 1, 1)}))],
            [InlineKeyboardButton("two", callback_data=("pick", 2, None))],
        ]
        await update.message.reply_text("pick", reply_markup=InlineKeyboardMarkup(keyboard))

    async def picked(update: Update, _: Any) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer()
        await query.edit_message_text(f"picked {query.data!r}")

    def build(persistence: MongoPersistence[Any, Any, Any]) -> Any:
        app, request = build_application(persistence, arbitrary_callback_data=True)
        app.add_handler(CommandHandler("offer", offer))
        app.add_handler(CallbackQueryHandler(picked))
        return app, request

    app, request = build(make_persistence())
    async with app:
        await app.process_update(message_update(app, "/offer"))
        message, buttons = last_buttons(request)
    stored = await db.callback_data.find_one({"_id": "callback_data"})
    keyboard = stored["data"]["keyboards"][0]
    assert set(keyboard) == {"keyboard", "access_time", "buttons"}
    assert len(keyboard["buttons"]) == 2

    app2, request2 = build(make_persistence())
    async with app2:
        await app2.process_update(callback_update(app2, message, buttons[0]))
        texts = [p["text"] for p in request2.sent("editMessageText")]
        assert texts == ["picked ('pick', 1, {'x': datetime.date(2024, 1, 1)})"]


# ----------------------------------------------------------------------------------- contract
async def test_store_data_flags_off_neither_load_nor_write(
    make_persistence: Factory, db: Any
) -> None:
    """Checklist 2."""
    seed = make_persistence()
    await seed.update_user_data(1, {"old": True})
    await seed.update_bot_data({"old": True})
    await seed.flush()

    flags = PersistenceInput(bot_data=False, chat_data=False, user_data=False, callback_data=False)
    app, _ = build_application(make_persistence(store_data=flags))
    app.add_handler(MessageHandler(filters.ALL, record_data))
    async with app:
        assert app.user_data == {}
        assert app.bot_data == {}
        await app.process_update(message_update(app, "hi", user_id=2))
    assert await db.user_data.count_documents({}) == 1
    assert await db.chat_data.count_documents({}) == 0
    assert (await db.bot_data.find_one({}))["data"] == {"old": True}


async def test_updates_alone_write_nothing_until_update_persistence(
    make_persistence: Factory, db: Any
) -> None:
    """Checklist 4, 5 and 6."""
    app, _ = build_application(make_persistence())
    app.add_handler(MessageHandler(filters.ALL, record_data))
    async with app:
        await app.process_update(message_update(app, "a", user_id=1))
        await app.process_update(message_update(app, "b", user_id=2))
        assert await db.user_data.count_documents({}) == 0
        await app.update_persistence()
        assert await db.user_data.count_documents({}) == 2
        stamp = (await db.user_data.find_one({"_id": 1}))["updated_at"]
        await app.update_persistence()  # nothing changed: nothing written
        assert (await db.user_data.find_one({"_id": 1}))["updated_at"] == stamp

        app.user_data[1]["outside"] = "handler"
        await app.update_persistence()
        assert "outside" not in (await db.user_data.find_one({"_id": 1}))["data"]["value"]
        app.mark_data_for_update_persistence(user_ids=[1])
        await app.update_persistence()
        assert (await db.user_data.find_one({"_id": 1}))["data"]["value"]["outside"] == "handler"


async def test_cleared_data_is_written(make_persistence: Factory, db: Any) -> None:
    persistence = make_persistence()
    await persistence.update_user_data(1, {"a": 1, "b": 2})
    await persistence.update_user_data(1, {})
    assert (await db.user_data.find_one({"_id": 1}))["data"] == {}
    await persistence.update_bot_data({})
    await persistence.flush()
    assert await make_persistence().get_user_data() == {1: {}}


async def test_drop_and_migrate(make_persistence: Factory, db: Any) -> None:
    """Checklist 7."""
    app, _ = build_application(make_persistence())
    app.add_handler(MessageHandler(filters.ALL, record_data))
    async with app:
        await app.process_update(message_update(app, "a", user_id=1, chat_id=-10))
        await app.process_update(message_update(app, "b", user_id=2, chat_id=-20))
        await app.update_persistence()
        app.drop_user_data(1)
        app.drop_chat_data(-20)
        app.migrate_chat_data(old_chat_id=-10, new_chat_id=-1000010)
        assert await db.user_data.count_documents({}) == 2
        await app.update_persistence()
    assert sorted(d["_id"] for d in await db.user_data.find().to_list()) == [2]
    assert sorted(d["_id"] for d in await db.chat_data.find().to_list()) == [-1000010]
    chat = await make_persistence().get_chat_data()
    assert chat[-1000010]["last_message"].text == "a"


async def test_ids_are_persisted_when_callbacks_raise(make_persistence: Factory, db: Any) -> None:
    """Checklist 8 and 11: errors go to the error handler; data is still persisted."""
    errors: list[BaseException] = []

    async def failing(update: Update, context: CallbackContext[Any, Any, Any, Any]) -> None:
        assert context.user_data is not None
        context.user_data["before_error"] = True
        raise RuntimeError("boom")

    async def on_error(_: object, context: CallbackContext[Any, Any, Any, Any]) -> None:
        assert context.error is not None
        errors.append(context.error)

    app, _ = build_application(make_persistence())
    app.add_handler(MessageHandler(filters.ALL, failing))
    app.add_error_handler(on_error)
    async with app:
        await app.process_update(message_update(app, "x", user_id=5))
        await app.update_persistence()
    assert [str(e) for e in errors] == ["boom"]
    assert (await db.user_data.find_one({"_id": 5}))["data"] == {"before_error": True}


async def test_encoding_error_reaches_error_handler_and_others_are_saved(
    make_persistence: Factory, db: Any
) -> None:
    errors: list[BaseException] = []

    async def store(update: Update, context: CallbackContext[Any, Any, Any, Any]) -> None:
        assert update.message is not None and context.user_data is not None
        context.user_data["text"] = update.message.text
        if update.message.text == "bad":
            context.user_data["callback"] = object()

    async def on_error(_: object, context: CallbackContext[Any, Any, Any, Any]) -> None:
        assert context.error is not None
        errors.append(context.error)

    app, _ = build_application(make_persistence())
    app.add_handler(MessageHandler(filters.ALL, store))
    app.add_error_handler(on_error)
    async with app:
        for user_id, text in [(1, "ok"), (2, "bad"), (3, "ok")]:
            await app.process_update(message_update(app, text, user_id=user_id))
        await app.update_persistence()
        assert len(errors) == 1
        error = errors[0]
        assert isinstance(error, EncodingError)
        assert error.entity == "user_data[2]"
        assert error.path == "['callback']"
        assert sorted(d["_id"] for d in await db.user_data.find().to_list()) == [1, 3]
        assert await db.chat_data.count_documents({}) == 3
        del app.user_data[2]["callback"]
        app.mark_data_for_update_persistence(user_ids=[2])


async def test_non_blocking_conversation_resolves_before_final_write(
    make_persistence: Factory,
) -> None:
    """Checklist 9: a pending non-blocking state is resolved by stop() + shutdown()."""
    release = asyncio.Event()

    async def slow_start(update: Update, _: Any) -> int:
        await release.wait()
        return 7

    handler: ConversationHandler[Any] = ConversationHandler(
        entry_points=[CommandHandler("start", slow_start, block=False)],
        states={7: [CommandHandler("start", slow_start)]},
        fallbacks=[],
        name="nb",
        persistent=True,
    )
    app, _ = build_application(make_persistence())
    app.add_handler(handler)
    async with app:
        await app.start()
        await app.process_update(message_update(app, "/start", user_id=9))
        await app.update_persistence()  # the state is still pending: the old state (None)
        assert await make_persistence().get_conversations("nb") == {}
        release.set()
        await app.stop()
    assert await make_persistence().get_conversations("nb") == {(9, 9): 7}


async def test_conversation_timeout_removes_document(make_persistence: Factory, db: Any) -> None:
    """Checklist 10 (END via timeout): the stored entry vanishes."""
    handler = conversation("timed", conversation_timeout=0.2)
    app, _ = build_application(make_persistence())
    app.add_handler(handler)
    async with app:
        await app.start()
        await app.process_update(message_update(app, "/start", user_id=4))
        await app.update_persistence()
        assert await db.conversations.count_documents({"name": "timed"}) == 1
        for _ in range(100):  # wait (bounded) for the job queue to fire the timeout
            if not handler._conversations:
                break
            await asyncio.sleep(0.05)
        assert handler._conversations == {}
        await app.stop()
    assert await db.conversations.count_documents({"name": "timed"}) == 0


async def test_handler_stop_and_stored_end_states_are_dropped(make_persistence: Factory) -> None:
    persistence = make_persistence()
    await persistence.update_conversation("talk", (1, 1), ConversationHandler.END)
    app, _ = build_application(make_persistence())
    handler = conversation()
    app.add_handler(handler)
    async with app:
        assert handler._conversations == {}
    assert ApplicationHandlerStop  # imported for PTB-version sanity
    await persistence.flush()


# ----------------------------------------------------------------------------------- custom types
class UserData(dict[str, Any]):
    """A dict subclass with an attribute, as some bots use."""

    def __init__(self, owner: str) -> None:
        super().__init__()
        self.owner = owner


class ChatData:
    def __init__(self, title: str) -> None:
        self.title = title
        self.members: set[int] = set()


class BotData:
    def __init__(self) -> None:
        self.counter = 0


async def test_custom_context_types_are_restored(make_persistence: Factory) -> None:
    context_types = ContextTypes(
        user_data=lambda: UserData("nobody"), chat_data=lambda: ChatData("?"), bot_data=BotData
    )
    # PTB calls these factories; persistence needs the classes:
    types: ContextTypes[Any, Any, Any, Any] = ContextTypes(
        user_data=UserData, chat_data=ChatData, bot_data=BotData
    )
    persistence = make_persistence(context_types=types)
    user = UserData("alice")
    user["k"] = (1, 2)
    chat = ChatData("group")
    chat.members.add(5)
    bot = BotData()
    bot.counter = 3
    await persistence.update_user_data(1, user)
    await persistence.update_chat_data(2, chat)
    await persistence.update_bot_data(bot)
    await persistence.flush()

    loaded = make_persistence(context_types=types)
    users = await loaded.get_user_data()
    assert type(users[1]) is UserData
    assert users[1] == {"k": (1, 2)}
    assert users[1].owner == "alice"
    chats = await loaded.get_chat_data()
    assert type(chats[2]) is ChatData and chats[2].title == "group" and chats[2].members == {5}
    bot_data = await loaded.get_bot_data()
    assert type(bot_data) is BotData and bot_data.counter == 3
    assert context_types is not None
    await loaded.flush()


async def test_custom_bot_data_class_when_nothing_stored(make_persistence: Factory) -> None:
    persistence = make_persistence(context_types=ContextTypes(bot_data=BotData))
    assert isinstance(await persistence.get_bot_data(), BotData)
    await persistence.flush()


# ----------------------------------------------------------------------------------- clients
async def test_client_handed_in_is_not_closed(
    client: AsyncMongoClient[Any], db_name: str, make_persistence: Factory
) -> None:
    persistence = make_persistence(target=client)
    await persistence.update_user_data(1, {"a": 1})
    await persistence.flush()
    assert await client[db_name].user_data.count_documents({}) == 1  # still usable


async def test_database_object_as_target(db: Any, make_persistence: Factory) -> None:
    persistence = make_persistence(target=db)
    await persistence.update_chat_data(1, {"a": 1})
    assert await make_persistence(target=db).get_chat_data() == {1: {"a": 1}}
    await persistence.flush()


async def test_own_client_is_closed_by_flush(make_persistence: Factory) -> None:
    persistence = make_persistence()
    await persistence.update_user_data(1, {"a": 1})
    await persistence.flush()
    with pytest.raises(Exception):  # noqa: B017 - the driver's "closed" error
        await persistence.database.command("ping")


async def test_motor_client_works(mongodb_uri: str, db_name: str) -> None:
    motor = pytest.importorskip("motor.motor_asyncio")
    client = motor.AsyncIOMotorClient(mongodb_uri)
    try:
        app, _request = build_application(MongoPersistence(client, database=db_name))
        app.add_handler(conversation())
        async with app:
            await app.process_update(message_update(app, "/start", user_id=3))
            await app.process_update(message_update(app, "Bob", user_id=3))
        handler = conversation()
        app2, request2 = build_application(MongoPersistence(client, database=db_name))
        app2.add_handler(handler)
        async with app2:
            assert app2.user_data[3] == {"name": "Bob"}
            assert handler._conversations == {(3, 3): Step.AGE}
            await app2.process_update(message_update(app2, "40", user_id=3))
            assert request2.sent()[-1]["text"] == "bye Bob"
        assert await client[db_name].conversations.count_documents({}) == 0
    finally:
        await client.drop_database(db_name)
        client.close()


async def test_mongomock_motor_basic_cycle() -> None:
    """What bot authors do in their own unit tests: no server, a basic write/read cycle."""
    from mongomock_motor import AsyncMongoMockClient

    client = AsyncMongoMockClient()
    app, _ = build_application(MongoPersistence(client, database="unit", bulk_write=False))
    app.add_handler(conversation())
    async with app:
        await app.process_update(message_update(app, "/start", user_id=8))
        await app.process_update(message_update(app, "Eve", user_id=8))
        app.user_data[8][5] = ("int", "key")
        app.mark_data_for_update_persistence(user_ids=[8])
    handler = conversation()
    app2, _ = build_application(MongoPersistence(client, database="unit", bulk_write=False))
    app2.add_handler(handler)
    async with app2:
        assert app2.user_data[8] == {"name": "Eve", 5: ("int", "key")}
        assert handler._conversations == {(8, 8): Step.AGE}
        app2.drop_user_data(8)
    assert await MongoPersistence(client, database="unit").get_user_data() == {}
