"""`mongo-persistence migrate`: PTB's PicklePersistence and DictPersistence into MongoDB.

The sources are real PTB files: written by PTB 20.0 and 21.0 (tests/data/cli, see make_pickles.py)
and by the installed PTB driving a real Application offline. After a migration, a MongoPersistence
must hand a bot exactly what PTB's own class hands it from the source.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from click.testing import CliRunner, Result
from pymongo import AsyncMongoClient, monitoring
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, TelegramObject, Update
from telegram.ext import (
    BasePersistence,
    CallbackContext,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    DictPersistence,
    ExtBot,
    MessageHandler,
    PicklePersistence,
    filters,
)
from telegram.warnings import PTBUserWarning

from mongo_persistence import MongoPersistence
from mongo_persistence._cli.migrate import migrate, migration_store
from mongo_persistence._cli.sources import SourceData
from tests.helpers.command import ENTRY_POINT as main
from tests.ptb_offline import build_application, callback_update, last_buttons, message_update

DATA = Path(__file__).parent / "data" / "cli"
ROOT = Path(__file__).resolve().parent.parent
Factory = Callable[..., MongoPersistence[Any, Any, Any]]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


async def cli(*args: str) -> Result:
    """Runs the command in a thread: it runs its own event loop."""
    return await asyncio.to_thread(invoke, *args)


def assert_clean(result: Result, code: int = 0) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    if code == 0:
        assert result.exception is None
    else:
        assert isinstance(result.exception, SystemExit), repr(result.exception)


# ------------------------------------------------------------------------------------- helpers
def canon(value: Any, bot: Bot) -> Any:
    """A comparable form that keeps every type (int vs str keys, tuple vs list, sets...).

    Telegram objects are compared by their JSON and must be bound to ``bot``.
    """
    if isinstance(value, TelegramObject):
        assert value.get_bot() is bot, f"{type(value).__name__} is not bound to the new bot"
        return ("telegram", type(value).__name__, json.loads(value.to_json()))
    if isinstance(value, Bot):
        return ("bot", value is bot)
    if isinstance(value, dict):
        items = [((type(k).__name__, repr(k)), canon(v, bot)) for k, v in value.items()]
        return (type(value).__name__, sorted(items, key=repr))
    if isinstance(value, list | tuple):
        return (type(value).__name__, [canon(v, bot) for v in value])
    if isinstance(value, set | frozenset):
        return (type(value).__name__, sorted(repr(canon(v, bot)) for v in value))
    return (type(value).__name__, value)


async def snapshot(persistence: BasePersistence[Any, Any, Any], names: list[str]) -> Any:
    """What a bot gets from a persistence at start-up, in comparable form."""
    bot = persistence.bot
    conversations = {}
    for name in names:
        states = await persistence.get_conversations(name)
        conversations[name] = {k: v for k, v in states.items() if v is not None}
    return canon(
        {
            "user_data": await persistence.get_user_data(),
            "chat_data": await persistence.get_chat_data(),
            "bot_data": await persistence.get_bot_data(),
            "callback_data": await persistence.get_callback_data() or None,
            "conversations": conversations,
        },
        bot,
    )


def pickle_source(name: str) -> tuple[Path, bool]:
    single = name.endswith(".pickle")
    return DATA / name, single


async def raw_documents(db: Any, prefix: str = "") -> dict[str, list[bytes]]:
    options: CodecOptions[RawBSONDocument] = CodecOptions(document_class=RawBSONDocument)
    out = {}
    for kind in ("user_data", "chat_data", "bot_data", "conversations", "callback_data"):
        collection = db.get_collection(f"{prefix}{kind}", codec_options=options)
        out[kind] = [doc.raw async for doc in collection.find({}, {"updated_at": 0}).sort("_id")]
    return out


# ------------------------------------------------------------------ PTB 20 / 21 pickle files
@pytest.mark.parametrize(
    ("name", "namespace"),
    [
        ("ptb20_single.pickle", None),
        ("ptb20_multi", "bot2"),
        ("ptb21_single.pickle", "bot3"),
        ("ptb21_multi", None),
    ],
)
async def test_pickle_files_of_older_ptb_migrate_exactly(
    name: str,
    namespace: str | None,
    mongodb_uri: str,
    db_name: str,
    db: Any,
    make_persistence: Factory,
) -> None:
    path, single = pickle_source(name)
    args = ["migrate", "--from-pickle", str(path), "--uri", mongodb_uri, "-d", db_name]
    if namespace:
        args += ["--namespace", namespace]
    result = await cli(*args)
    assert_clean(result)
    assert "user_data             2" in result.output
    assert "conversations         3  (2 handlers: order, survey)" in result.output
    assert "Migrated 8 entities." in result.output
    prefix = f"{namespace}." if namespace else ""
    assert await db[f"{prefix}user_data"].count_documents({}) == 2
    assert await db[f"{prefix}conversations"].count_documents({}) == 3

    new_bot = ExtBot("999:NEW")
    source: PicklePersistence[Any, Any, Any] = PicklePersistence(path, single_file=single)
    source.set_bot(new_bot)
    mongo = make_persistence(namespace=namespace)
    mongo.set_bot(new_bot)
    try:
        expected = await snapshot(source, ["order", "survey"])
        assert await snapshot(mongo, ["order", "survey"]) == expected
        users = await mongo.get_user_data()
        assert set(users) == {42, 43}
        assert users[42][7] == {"nested": {3: "x"}}
        assert type(users[42]["cart"]) is tuple
        assert users[42]["tags"] == {"a", "b"}
        assert users[42]["last_message"].get_bot() is new_bot
        assert users[42]["last_message"].text == "hello"
        assert (await mongo.get_bot_data())["big"] == 2**70
        assert await mongo.get_conversations("order") == {(42, 42): 1, (-100123, 43): "STATE_B"}
        keyboards, queries = await mongo.get_callback_data()  # type: ignore[misc]
        assert keyboards == [
            ("kb-uuid-1", 1700000000.5, {"btn-1": ("action", 1), "btn-2": {"k": "v"}})
        ]
        assert queries == {"query-1": "kb-uuid-1"}
    finally:
        await mongo.flush()


async def test_migration_twice_is_idempotent(mongodb_uri: str, db_name: str, db: Any) -> None:
    args = ["migrate", "--from-pickle", str(DATA / "ptb21_single.pickle"), "--uri", mongodb_uri]
    args += ["-d", db_name, "-n", "twice"]
    shown = await cli(*args, "--progress")
    assert_clean(shown)
    assert "migrating" in shown.stderr and "8/8" in shown.stderr  # the progress bar
    first = await raw_documents(db, "twice.")
    assert_clean(await cli(*args))
    assert await raw_documents(db, "twice.") == first
    assert sum(len(docs) for docs in first.values()) == 8


# ------------------------------------------------------------------ a live PTB 22 bot
class Step:
    NAME = 1
    AGE = 2


def build_bot(
    persistence: BasePersistence[Any, Any, Any],
) -> tuple[Any, Any, ConversationHandler[Any]]:
    async def start(update: Update, _: Any) -> int:
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
        await update.message.reply_text(f"bye {context.user_data['name']}")
        return ConversationHandler.END

    async def offer(update: Update, _: Any) -> None:
        assert update.message is not None
        keyboard = [
            [InlineKeyboardButton("one", callback_data=("pick", 1, {"d": dtm.date(2024, 1, 1)}))],
            [InlineKeyboardButton("two", callback_data=("pick", 2, None))],
        ]
        await update.message.reply_text("pick", reply_markup=InlineKeyboardMarkup(keyboard))

    async def picked(update: Update, _: Any) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer()
        await query.edit_message_text(f"picked {query.data!r}")

    async def record(update: Update, context: CallbackContext[Any, Any, Any, Any]) -> None:
        assert update.message is not None
        assert context.user_data is not None and context.chat_data is not None
        context.user_data.setdefault("seen", []).append(update.message.text)
        context.user_data[3] = ("tuple", {1, 2})
        context.chat_data["last_message"] = update.message
        context.chat_data["at"] = dtm.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=dtm.timezone.utc)
        context.bot_data["count"] = context.bot_data.get("count", 0) + 1
        context.bot_data[(1, "k")] = frozenset({"x"})

    handler: ConversationHandler[Any] = ConversationHandler(
        entry_points=[CommandHandler("start", start)],
        states={
            Step.NAME: [MessageHandler(filters.TEXT & ~filters.COMMAND, got_name)],
            Step.AGE: [MessageHandler(filters.TEXT & ~filters.COMMAND, got_age)],
        },
        fallbacks=[],
        name="talk",
        persistent=True,
    )
    app, request = build_application(persistence, arbitrary_callback_data=True)
    app.add_handler(handler, group=0)
    app.add_handler(CommandHandler("offer", offer), group=1)
    app.add_handler(CallbackQueryHandler(picked), group=1)
    app.add_handler(MessageHandler(filters.ALL, record), group=2)
    return app, request, handler


def app_state(app: Any, handler: ConversationHandler[Any]) -> Any:
    return canon(
        {
            "user_data": dict(app.user_data),
            "chat_data": dict(app.chat_data),
            "bot_data": app.bot_data,
            "callback_data": app.bot.callback_data_cache.persistence_data,
            "conversations": dict(handler._conversations),
        },
        app.bot,
    )


@pytest.mark.parametrize("single_file", [True, False])
async def test_a_bot_resumes_on_mongodb_where_it_was_on_pickle(
    single_file: bool, tmp_path: Path, mongodb_uri: str, db_name: str, make_persistence: Factory
) -> None:
    path = tmp_path / "bot.pickle"
    app, request, _ = build_bot(PicklePersistence(path, single_file=single_file))
    async with app:
        await app.process_update(message_update(app, "/start", user_id=42))
        await app.process_update(message_update(app, "Alice", user_id=42))
        await app.process_update(message_update(app, "/start", user_id=7, chat_id=-5))
        await app.process_update(message_update(app, "/offer", user_id=42))
        message, buttons = last_buttons(request)

    result = await cli(
        "migrate", "--from-pickle", str(path), "--uri", mongodb_uri, "-d", db_name, "-n", "live"
    )
    assert_clean(result)

    # The same bot restarted on the pickle file, and on MongoDB: they must see the same.
    app_p, _, handler_p = build_bot(PicklePersistence(path, single_file=single_file))
    app_m, request_m, handler_m = build_bot(make_persistence(namespace="live"))
    async with app_p, app_m:
        assert app_state(app_m, handler_m) == app_state(app_p, handler_p)
        assert handler_m._conversations == {(42, 42): Step.AGE, (-5, 7): Step.NAME}
        assert app_m.user_data[42][3] == ("tuple", {1, 2})
        assert app_m.chat_data[42]["last_message"].get_bot() is app_m.bot
        # the conversation goes on, and a button sent before the migration still works
        await app_m.process_update(message_update(app_m, "33", user_id=42))
        assert request_m.sent()[-1]["text"] == "bye Alice"
        await app_m.process_update(callback_update(app_m, message, buttons[0]))
        texts = [p["text"] for p in request_m.sent("editMessageText")]
        assert texts == ["picked ('pick', 1, {'d': datetime.date(2024, 1, 1)})"]


# ------------------------------------------------------------------ dry run and bad values
class Opaque:
    """Picklable, but no codec knows it."""


async def make_pickle(path: Path, user_data: dict[int, Any], **kwargs: Any) -> None:
    persistence: PicklePersistence[Any, Any, Any] = PicklePersistence(path, on_flush=True)
    persistence.set_bot(ExtBot("123:ABC"))
    for user_id, data in user_data.items():
        await persistence.update_user_data(user_id, data)
    for chat_id, data in kwargs.get("chat_data", {}).items():
        await persistence.update_chat_data(chat_id, data)
    await persistence.flush()


async def test_dry_run_counts_and_lists_every_value_that_cannot_be_stored(
    tmp_path: Path, mongodb_uri: str, db_name: str, db: Any
) -> None:
    path = tmp_path / "bad.pickle"
    await make_pickle(
        path,
        {1: {"ok": 1}, 2: {"bad": {"x": [1, Opaque()]}}, 3: {"s": "\ud800"}},
        chat_data={-9: {"deep": Opaque()}},
    )
    result = await cli(
        "migrate", "--from-pickle", str(path), "--dry-run", "--uri", mongodb_uri, "-d", db_name
    )
    assert_clean(result, 1)
    assert "user_data             3" in result.output
    assert "chat_data             1" in result.output
    assert "user_data[2]['bad']['x'][1]" in result.output
    assert "tests.test_migrate.Opaque" in result.output
    assert "chat_data[-9]['deep']" in result.output
    assert "user_data[3]" in result.output  # a lone surrogate: BSON cannot hold it
    assert "Dry run: nothing was written. 1 entity can be migrated." in result.output
    assert "3 entities cannot be migrated" in result.output
    assert await db.list_collection_names() == []


async def test_migration_writes_what_it_can_and_fails_for_the_rest(
    tmp_path: Path, mongodb_uri: str, db_name: str, db: Any, make_persistence: Factory
) -> None:
    path = tmp_path / "bad.pickle"
    await make_pickle(path, {1: {"ok": 1}, 2: {"bad": Opaque()}})
    base = ["migrate", "--from-pickle", str(path), "--uri", mongodb_uri, "-d", db_name]
    result = await cli(*base)
    assert_clean(result, 1)
    assert "user_data[2]['bad']" in result.output
    assert "1 entity cannot be migrated (listed above); the other 1 were written." in result.output
    assert [doc["_id"] async for doc in db.user_data.find()] == [1]

    # with the pickle fallback (as MongoPersistence(pickle_fallback=True)) it goes through
    result = await cli(*base, "--pickle-fallback")
    assert_clean(result)
    with pytest.warns(PTBUserWarning, match="pickle"):
        mongo = make_persistence(pickle_fallback=True)
    try:
        users = await mongo.get_user_data()
        assert users[1] == {"ok": 1}
        assert isinstance(users[2]["bad"], Opaque)
    finally:
        await mongo.flush()


# ------------------------------------------------------------------ DictPersistence JSON
async def dict_persistence_json() -> dict[str, str]:
    source = DictPersistence()
    source.set_bot(ExtBot("123:ABC"))
    await source.update_user_data(42, {"name": "Alice", "7": "seven", "list": [1, 2]})
    await source.update_user_data(43, {})
    await source.update_chat_data(-100123, {"title": "group"})
    await source.update_bot_data({"counter": 5})
    await source.update_callback_data(([("kb", 1700000000.5, {"b1": "data"})], {"q1": "kb"}))
    await source.update_conversation("order", (42, 42), 1)
    await source.update_conversation("order", (-100123, 43), "B")
    return {
        "user_data": source.user_data_json,
        "chat_data": source.chat_data_json,
        "bot_data": source.bot_data_json,
        "callback_data": source.callback_data_json,
        "conversations": source.conversations_json,
    }


@pytest.mark.parametrize("form", ["file-of-strings", "file-of-objects", "directory"])
async def test_dict_persistence_json_migrates_exactly(
    form: str, tmp_path: Path, mongodb_uri: str, db_name: str, make_persistence: Factory
) -> None:
    texts = await dict_persistence_json()
    if form == "directory":
        target = tmp_path / "json"
        target.mkdir()
        for kind, text in texts.items():
            (target / f"{kind}.json").write_text(text)
    else:
        target = tmp_path / "dict.json"
        values: dict[str, Any] = (
            texts if form == "file-of-strings" else {k: json.loads(v) for k, v in texts.items()}
        )
        target.write_text(json.dumps(values))
    result = await cli(
        "migrate", "--from-dict-json", str(target), "--uri", mongodb_uri, "-d", db_name, "-n", "dj"
    )
    assert_clean(result)
    assert "Migrated 7 entities." in result.output

    bot = ExtBot("999:NEW")
    expected = DictPersistence(**{f"{k}_json": v for k, v in texts.items()})
    expected.set_bot(bot)
    mongo = make_persistence(namespace="dj")
    mongo.set_bot(bot)
    try:
        assert await snapshot(mongo, ["order"]) == await snapshot(expected, ["order"])
        users = await mongo.get_user_data()
        assert users[42][7] == "seven"  # DictPersistence turns int-like keys into ints
        assert await mongo.get_conversations("order") == {(42, 42): 1, (-100123, 43): "B"}
    finally:
        await mongo.flush()


# ------------------------------------------------------------------ errors of the source
def test_source_errors_are_one_line_messages(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("just text\n")
    not_a_dict = tmp_path / "list.pickle"
    not_a_dict.write_bytes(pickle.dumps([1, 2, 3]))
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{nope")
    wrong_keys = tmp_path / "keys.json"
    wrong_keys.write_text(json.dumps({"users": {}}))
    bad_user_json = tmp_path / "bad_user.json"
    bad_user_json.write_text(json.dumps({"user_data": "[1, 2]"}))
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    cases = [
        (["--from-pickle", str(tmp_path / "missing")], "No PicklePersistence data at"),
        (["--from-pickle", str(text)], "does not contain valid pickle data"),
        (["--from-pickle", str(not_a_dict)], "Something went wrong unpickling"),
        (["--from-pickle", str(empty_dir)], "is a directory"),
        (
            ["--from-pickle", str(DATA / "ptb21_multi_user_data")],
            f"give their prefix: {DATA / 'ptb21_multi'}",
        ),
        (["--from-dict-json", str(tmp_path / "missing.json")], "No such file or directory"),
        (["--from-dict-json", str(bad_json)], "is not a JSON file"),
        (["--from-dict-json", str(wrong_keys)], "unknown keys 'users'"),
        (["--from-dict-json", str(bad_user_json)], "Unable to deserialize user_data_json"),
        (["--from-dict-json", str(empty_dir)], "No DictPersistence JSON in directory"),
    ]
    for args, message in cases:
        result = invoke("migrate", *args, "--uri", "mongodb://127.0.0.1:1", "--timeout", "0.2")
        assert_clean(result, 1)
        assert message in result.output, (args, result.output)
        assert result.output.count("\n") == 1, result.output  # one line


def test_usage_errors_exit_with_2(tmp_path: Path) -> None:
    assert_clean(invoke("migrate"), 2)
    both = invoke("migrate", "--from-pickle", "a", "--from-dict-json", "b")
    assert_clean(both, 2)
    assert "exactly one of --from-pickle and --from-dict-json" in both.output
    assert_clean(invoke("migrate", "--from-dict-json", "b", "--single-file"), 2)
    assert_clean(invoke("migrate", "--from-pickle", "a", "--codec", "nocolon"), 2)
    help_text = invoke("migrate", "--help")
    assert_clean(help_text)
    assert "callback_data.json" in help_text.output and "PATH_user_data" in help_text.output


# ------------------------------------------------------------------ batching
class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.writes: list[tuple[str, int]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "update":
            self.writes.append((event.command["update"], len(event.command["updates"])))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_writes_are_sent_as_one_bulk_write_per_collection_and_chunk(
    mongodb_uri: str, db_name: str
) -> None:
    listener = Commands()
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_uri, event_listeners=[listener])
    try:
        store = migration_store(client[db_name])
        bot = ExtBot("123:ABC")
        source = SourceData(
            description="test",
            user_data={i: {"n": i} for i in range(250)},
            chat_data={-i: {"n": i} for i in range(1, 11)},
            bot_data={"x": 1},
            bot=bot,
        )
        seen: list[int] = []
        result = await migrate(source, store, chunk_size=100, progress=seen.append)
        assert result.written["user_data"] == 250 and not result.problems
        assert seen == [100, 100, 61]
        users = [n for name, n in listener.writes if name == "user_data"]
        assert users == [100, 100, 50]
        assert await client[db_name].user_data.count_documents({}) == 250
    finally:
        await client.drop_database(db_name)
        await client.close()


# ------------------------------------------------------------------ end to end, own classes
async def test_python_m_with_the_bots_own_classes_and_codec(
    tmp_path: Path, mongodb_uri: str, db_name: str, db: Any, make_persistence: Factory
) -> None:
    sys.path.insert(0, str(DATA))
    try:
        from cli_points import POINT_CODEC, Point  # type: ignore[import-not-found]

        path = tmp_path / "points.pickle"
        await make_pickle(path, {5: {"home": Point(1, 2), "route": (Point(0, 0), Point(3, 4))}})
    finally:
        sys.path.remove(str(DATA))
    env = {**os.environ, "MONGODB_URI": mongodb_uri, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "mongo_persistence", "migrate", "--from-pickle", str(path)]
    command += ["-d", db_name, "--pythonpath", str(DATA), "--codec", "cli_points:POINT_CODEC"]
    done = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Migrated 1 entity." in done.stdout
    stored = await db.user_data.find_one({"_id": 5})
    assert stored["data"]["home"] == {
        "__type__": "custom",
        "codec": "Point",
        "value": {"x": 1, "y": 2},
    }
    mongo = make_persistence(codecs=[POINT_CODEC])
    try:
        assert (await mongo.get_user_data())[5] == {
            "home": Point(1, 2),
            "route": (Point(0, 0), Point(3, 4)),
        }
    finally:
        await mongo.flush()
