"""Every bot in examples/, driven offline over the real test server across simulated restarts.

A restart is a new Application with a new MongoPersistence on the same database. Telegram is
replaced by tests.ptb_offline's request object; the examples' own ``build_persistence`` and
``build_application`` are used, as their ``main()`` does.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from telegram.ext import Application, ContextTypes

from mongo_persistence import EncodingError
from tests.ptb_offline import TOKEN, OfflineRequest, callback_update, last_buttons, message_update

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))

import arbitrary_callback_data_bot  # noqa: E402
import custom_codec_bot  # noqa: E402
import lazy_refresh_bot  # noqa: E402
import namespaces  # noqa: E402
import persistent_conversation_bot  # noqa: E402
import telegram_objects_bot  # noqa: E402

# The bot author's own tests in examples/test_my_bot_with_mongomock.py run here too.
from test_my_bot_with_mongomock import (  # noqa: E402
    test_ending_the_conversation_removes_its_document as test_mongomock_example_end,
)
from test_my_bot_with_mongomock import (  # noqa: E402
    test_facts_and_the_conversation_survive_a_restart as test_mongomock_example_restart,
)
from test_my_bot_with_mongomock import (  # noqa: E402
    test_what_is_stored as test_mongomock_example_documents,
)

__all__ = [
    "test_mongomock_example_documents",
    "test_mongomock_example_end",
    "test_mongomock_example_restart",
]

App = Application[Any, Any, Any, Any, Any, Any]


@contextlib.asynccontextmanager
async def running(example: Any, persistence: Any) -> AsyncIterator[tuple[App, OfflineRequest]]:
    """One life of the example bot: initialize (loads), ..., shutdown (writes and flushes)."""
    request = OfflineRequest()
    app = example.build_application(
        persistence, token=TOKEN, request=request, get_updates_request=OfflineRequest()
    )
    async with app:
        yield app, request


async def send(app: App, text: str, **kwargs: Any) -> None:
    await app.process_update(message_update(app, text, **kwargs))


def replies(request: OfflineRequest) -> list[str]:
    return [p["text"] for n, p in request.calls if n in ("sendMessage", "editMessageText")]


@pytest.fixture
def persistence_of(mongodb_uri: str, db_name: str) -> Any:
    """The example's own persistence, on the test database (a new one = a restart)."""

    def factory(example: Any, **kwargs: Any) -> Any:
        return example.build_persistence(
            mongodb_uri, database=db_name, update_interval=3600, **kwargs
        )

    return factory


# ============================================================================ the examples
async def test_persistent_conversation_bot(persistence_of: Any, db: Any) -> None:
    bot = persistent_conversation_bot
    async with running(bot, persistence_of(bot)) as (app, request):
        for text in ("/start", "Age", "32", "Favourite colour"):
            await send(app, text)

    async with running(bot, persistence_of(bot)) as (app, request):
        await send(app, "Blue")  # the answer to the question asked before the restart
        await send(app, "/show_data")
    after = replies(request)
    assert after[0].startswith("Neat! Just so you know, this is what you already told me:")
    assert "age - 32\nfavourite colour - blue" in after[1]

    user = await db.user_data.find_one({"_id": 42})
    assert user["data"] == {"age": "32", "favourite colour": "blue"}
    conversation = await db.conversations.find_one({"name": "my_conversation"})
    assert conversation["_id"] == '["my_conversation",42,42]'
    assert conversation["state"] == bot.CHOOSING


async def test_arbitrary_callback_data_bot(persistence_of: Any, db: Any) -> None:
    pytest.importorskip("cachetools", reason="needs python-telegram-bot[callback-data]")
    bot = arbitrary_callback_data_bot
    async with running(bot, persistence_of(bot)) as (app, request):
        await send(app, "/start")
        first_keyboard = last_buttons(request)
        await app.process_update(callback_update(app, first_keyboard[0], first_keyboard[1][1]))
        second_keyboard = last_buttons(request)
    assert replies(request)[-1] == "So far you've selected [2]. Choose the next item:"

    stored = await db.callback_data.find_one({"_id": "callback_data"})
    [keyboard] = stored["data"]["keyboards"]  # the first one was dropped after the press
    assert keyboard["buttons"][second_keyboard[1][3][32:]] == {
        "__type__": "tuple",
        "value": [4, [2]],
    }

    async with running(bot, persistence_of(bot)) as (app, request):
        # A button sent before the restart still carries its Python object.
        await app.process_update(callback_update(app, second_keyboard[0], second_keyboard[1][3]))
        # A button whose data was dropped before the restart is reported as invalid.
        await app.process_update(callback_update(app, first_keyboard[0], first_keyboard[1][0]))
    assert replies(request) == [
        "So far you've selected [2, 4]. Choose the next item:",
        "Sorry, I could not process this button click 😕 Please send /start to get a new keyboard.",
    ]


async def test_telegram_objects_bot(persistence_of: Any, db: Any) -> None:
    bot = telegram_objects_bot
    async with running(bot, persistence_of(bot)) as (app, request):
        update = message_update(app, "The password is swordfish")
        await app.process_update(update)
    original = update.message

    stored = await db.chat_data.find_one({"_id": 42})
    message_doc = stored["data"]["last_message"]
    assert message_doc["__type__"] == "telegram"
    assert message_doc["class"] == "Message"
    assert message_doc["state"]["text"] == "The password is swordfish"
    user = await db.user_data.find_one({"_id": 42})
    me = user["data"]["me"]
    assert (me["__type__"], me["class"]) == ("telegram", "User")
    assert {k: me["state"][k] for k in ("id", "first_name", "is_bot")} == {
        "id": 42,
        "first_name": "Alice",
        "is_bot": False,
    }

    async with running(bot, persistence_of(bot)) as (app, request):
        loaded = app.chat_data[42]["last_message"]
        assert loaded == original
        assert loaded.get_bot() is app.bot  # bound to the new bot: shortcuts work
        await send(app, "/recall")
    [(_, params)] = [c for c in request.calls if c[0] == "sendMessage"]
    assert params["text"] == f"Alice, you said this on {original.date:%Y-%m-%d at %H:%M} UTC."
    assert params["chat_id"] == 42
    assert params["reply_parameters"]["message_id"] == original.message_id


async def test_custom_codec_bot(persistence_of: Any, db: Any) -> None:
    bot = custom_codec_bot
    async with running(bot, persistence_of(bot)) as (app, request):
        await send(app, "/add milk eggs")

    stored = await db.user_data.find_one({"_id": 42})
    tagged = stored["data"]["list"]
    assert tagged["__type__"] == "custom"
    assert tagged["codec"] == "shopping_list"
    assert tagged["value"]["items"] == ["milk", "eggs"]
    assert tagged["value"]["updated"]["__type__"] == "datetime"

    async with running(bot, persistence_of(bot)) as (app, request):
        assert isinstance(app.user_data[42]["list"], bot.ShoppingList)
        await send(app, "/add bread")
        await send(app, "/list")
    assert replies(request)[0] == "Added bread. 3 item(s) on your list."
    assert replies(request)[1].startswith("Your list (ShoppingList, updated ")
    assert replies(request)[1].endswith("UTC): milk, eggs, bread")


async def test_custom_codec_bot_without_the_codec_names_the_culprit(persistence_of: Any) -> None:
    bot = custom_codec_bot
    errors: list[object] = []

    async def on_error(_: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        errors.append(context.error)

    async with running(bot, persistence_of(bot, codecs=[])) as (app, _):
        app.add_error_handler(on_error)
        await send(app, "/add milk")
        await app.update_persistence()
        app.remove_error_handler(on_error)
        app.user_data[42].clear()  # let the final write at shutdown pass
    [error] = errors
    assert isinstance(error, EncodingError)
    assert (error.entity, error.path) == ("user_data[42]", "['list']")
    assert "ShoppingList" in error.value_type


async def test_namespaces(client: Any, db_name: str, db: Any) -> None:
    def persistences() -> list[Any]:
        return [
            namespaces.build_persistence(client, ns, database=db_name, update_interval=3600)
            for ns in namespaces.NAMESPACES
        ]

    shop, support = persistences()
    async with (
        running(namespaces, shop) as (shop_app, _),
        running(namespaces, support) as (support_app, _),
    ):
        await send(shop_app, "/note buy milk")
        await send(support_app, "/note ticket 17")
        await send(support_app, "/note ticket 18", user_id=43)

    names = set(await db.list_collection_names())
    assert {"shop.user_data", "shop.bot_data", "support.user_data", "support.bot_data"} <= names
    assert not names & {"user_data", "bot_data"}

    shop, support = persistences()  # a restart of both bots
    async with (
        running(namespaces, shop) as (shop_app, shop_request),
        running(namespaces, support) as (support_app, support_request),
    ):
        await send(shop_app, "/notes")
        await send(support_app, "/notes")
        assert set(shop_app.user_data) == {42}
        assert set(support_app.user_data) == {42, 43}
    assert replies(shop_request) == ["[shop] 1 note(s): buy milk (1 on this bot)"]
    assert replies(support_request) == ["[support] 1 note(s): ticket 17 (2 on this bot)"]


async def test_lazy_refresh_bot(persistence_of: Any, db: Any) -> None:
    bot = lazy_refresh_bot
    await bot.set_plan(db, 42, "premium")  # written before the bot starts
    await bot.set_plan(db, 43, "free")

    async with running(bot, persistence_of(bot)) as (app, request):
        assert dict(app.user_data) == {}  # lazy: nobody is loaded at start-up
        await send(app, "/status")
        assert set(app.user_data) == {42}  # loaded when their first update arrived

        # Another program edits the database while the bot runs; the next update sees it.
        await bot.set_plan(db, 42, "pro")
        await bot.announce(db, "Maintenance at 22:00")
        await send(app, "/status")

        # The bot's own change (status_requests) and the other program's (plan) both survive.
        await app.update_persistence()
        user = await db.user_data.find_one({"_id": 42})
        assert user["data"] == {"plan": "pro", "status_requests": 2}

    assert replies(request) == [
        "Plan: premium. You asked 1 time.",
        "Plan: pro. You asked 2 times. News: Maintenance at 22:00",
    ]

    async with running(bot, persistence_of(bot)) as (app, request):
        await send(app, "/status")
    assert replies(request) == ["Plan: pro. You asked 3 times. News: Maintenance at 22:00"]


@pytest.mark.parametrize(
    "example",
    [
        arbitrary_callback_data_bot,
        custom_codec_bot,
        lazy_refresh_bot,
        namespaces,
        persistent_conversation_bot,
        telegram_objects_bot,
    ],
)
def test_main_needs_a_token(example: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOT_TOKEN", raising=False)
    monkeypatch.setattr(sys, "argv", [example.__file__])
    with pytest.raises(SystemExit, match="BOT_TOKEN"):
        example.main()


# ============================================================================ the README
README = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")


def test_readme_keeps_the_set_up_commands() -> None:
    head = README[: README.index("## Why")]
    assert "make demo" in head
    assert "make test" in head


def test_readme_documents_every_option() -> None:
    import inspect

    from mongo_persistence import MongoPersistence

    options = README.split("## Options", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(\w+)` \|", options, flags=re.MULTILINE))
    parameters = set(inspect.signature(MongoPersistence.__init__).parameters) - {"self"}
    assert documented == parameters


def test_readme_lists_every_example() -> None:
    table = README.split("## Examples", 1)[1].split("\n## ", 1)[0]
    for path in EXAMPLES.glob("*.py"):
        assert f"`examples/{path.name}`" in table


def test_readme_python_snippets_compile() -> None:
    snippets = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
    assert snippets
    for number, snippet in enumerate(snippets):
        compile(snippet, f"README.md python snippet {number}", "exec")
