"""How to unit-test your bot's persistence without a MongoDB server: mongomock-motor.

``MongoPersistence`` takes a client object instead of a URI, so a test can hand it an in-memory
``mongomock_motor.AsyncMongoMockClient()``. A bot "restart" is simply a new Application with a new
MongoPersistence on the same client. Telegram is replaced by a small request object that answers
the Bot API calls locally, so no token and no network are needed.

Run it::

    pip install pytest pytest-asyncio mongomock-motor
    pytest examples/test_my_bot_with_mongomock.py

The bot under test is ``persistent_conversation_bot.py`` from this folder; put your own in its
place. mongomock is not a MongoDB server (no 16 MiB limit, no real bulk writes, ints come back
differently ...): it is fine for testing your bot's logic; test against a real MongoDB too
(``MONGODB_URI=mongodb://... pytest``) before you rely on storage details.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import persistent_conversation_bot as my_bot
import pytest
from mongomock_motor import AsyncMongoMockClient
from telegram import Update
from telegram.request import BaseRequest, RequestData

from mongo_persistence import MongoPersistence

DATABASE = "test_bot"
TOKEN = "123:TEST"  # noqa: S105 - any token will do: Telegram is never contacted
USER_ID = 42


class FakeTelegram(BaseRequest):
    """Answers the Bot API methods the bot calls, and records the texts it sends."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    @property
    def read_timeout(self) -> float:
        """Seconds to wait for an answer (unused here)."""
        return 1.0

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""

    async def do_request(
        self, url: str, method: str, request_data: RequestData | None = None, **_: Any
    ) -> tuple[int, bytes]:
        """Answers one Bot API call."""
        api_method = url.rsplit("/", 1)[-1]
        params = request_data.parameters if request_data else {}
        result: Any = True
        if api_method == "getMe":
            result = {"id": 1, "is_bot": True, "first_name": "Bot", "username": "my_test_bot"}
        elif api_method == "sendMessage":
            self.sent.append(str(params["text"]))
            chat = {"id": params["chat_id"], "type": "private"}
            result = {"message_id": len(self.sent), "date": 0, "chat": chat, "text": params["text"]}
        return 200, json.dumps({"ok": True, "result": result}).encode()


_ids = itertools.count(1)


def text_update(application: Any, text: str) -> Update:
    """An incoming private message from the test user, as Telegram would send it."""
    message: dict[str, Any] = {
        "message_id": next(_ids),
        "date": 0,
        "chat": {"id": USER_ID, "type": "private"},
        "from": {"id": USER_ID, "is_bot": False, "first_name": "Alice"},
        "text": text,
    }
    if text.startswith("/"):
        command_length = len(text.split(maxsplit=1)[0])
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": command_length}]
    return Update.de_json({"update_id": next(_ids), "message": message}, application.bot)


async def run_bot(client: AsyncMongoMockClient, texts: list[str]) -> list[str]:
    """Starts the bot on the client's database, sends it the texts and stops it: its replies."""
    telegram = FakeTelegram()
    # mongomock-motor's bulk_write does not work with PyMongo's models: one request per document
    persistence = MongoPersistence(client, database=DATABASE, bulk_write=False)
    application = my_bot.build_application(
        persistence, token=TOKEN, request=telegram, get_updates_request=FakeTelegram()
    )
    async with application:  # initialize() loads the data; leaving writes it and flushes
        for text in texts:
            await application.process_update(text_update(application, text))
    return telegram.sent


@pytest.mark.asyncio
async def test_facts_and_the_conversation_survive_a_restart() -> None:
    client = AsyncMongoMockClient()
    await run_bot(client, ["/start", "Age", "32", "Favourite colour"])

    # Restart: the conversation waits for the colour, and the age is remembered.
    replies = await run_bot(client, ["Blue", "/show_data"])

    assert replies[0].startswith("Neat! Just so you know, this is what you already told me:")
    assert "age - 32" in replies[1]
    assert "favourite colour - blue" in replies[1]


@pytest.mark.asyncio
async def test_what_is_stored() -> None:
    client = AsyncMongoMockClient()
    await run_bot(client, ["/start", "Age", "32"])

    database = client[DATABASE]
    user = await database["user_data"].find_one({"_id": USER_ID})
    assert user["data"] == {"age": "32"}
    conversation = await database["conversations"].find_one({"name": "my_conversation"})
    assert conversation["key"] == [USER_ID, USER_ID]
    assert conversation["state"] == my_bot.CHOOSING


@pytest.mark.asyncio
async def test_ending_the_conversation_removes_its_document() -> None:
    client = AsyncMongoMockClient()
    await run_bot(client, ["/start", "Done"])

    assert await client[DATABASE]["conversations"].count_documents({}) == 0
    replies = await run_bot(client, ["/start"])
    assert replies[0].startswith("Hi! My name is Doctor Botter. I will hold")
