"""Writes the PicklePersistence fixture files of this folder with the installed PTB version.

Run it with an interpreter that has the PTB version to capture, e.g.::

    python -m venv /tmp/ptb20 && /tmp/ptb20/bin/pip install python-telegram-bot==20.0
    /tmp/ptb20/bin/python tests/data/cli/make_pickles.py tests/data/cli

It writes ``ptb<major>_single.pickle`` (``single_file=True``) and ``ptb<major>_multi_<kind>``
(``single_file=False``) holding :func:`fixture_values`; ``tests/test_migrate.py`` checks that a
migration restores them exactly.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import sys
from pathlib import Path

import telegram
from telegram import Bot, Chat, Message, User
from telegram.ext import PicklePersistence

TOKEN = "123:ABC"


def fixture_values(bot: Bot) -> dict:
    """The data the fixture files hold; ``bot`` is the bot the persistence knows."""
    date = dtm.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dtm.timezone.utc)
    message = Message(
        message_id=17,
        date=date,
        chat=Chat(42, Chat.PRIVATE, first_name="Alice"),
        from_user=User(42, "Alice", False, username="alice"),
        text="hello",
    )
    message.set_bot(bot)
    return {
        "user_data": {
            42: {
                "name": "Alice",
                "visits": 3,
                "cart": ("apple", 2),
                "tags": {"a", "b"},
                7: {"nested": {3: "x"}},
                "when": date,
                "last_message": message,
                "ratio": 0.25,
                "blob": b"\x00\x01",
            },
            43: {},
        },
        "chat_data": {
            -100123: {"title": "group", "members": [42, 43], "frozen": frozenset({1, 2})}
        },
        "bot_data": {"counter": 5, "ids": {1: "a", 2: "b"}, "big": 2**70},
        "callback_data": (
            [("kb-uuid-1", 1700000000.5, {"btn-1": ("action", 1), "btn-2": {"k": "v"}})],
            {"query-1": "kb-uuid-1"},
        ),
        "conversations": {
            "order": {(42, 42): 1, (-100123, 43): "STATE_B", (42, 43): None},
            "survey": {(42,): 2},
        },
    }


async def write(path: Path, *, single_file: bool) -> None:
    persistence = PicklePersistence(path, single_file=single_file, on_flush=True)
    bot = telegram.ext.ExtBot(TOKEN)
    persistence.set_bot(bot)
    values = fixture_values(bot)
    for user_id, data in values["user_data"].items():
        await persistence.update_user_data(user_id, data)
    for chat_id, data in values["chat_data"].items():
        await persistence.update_chat_data(chat_id, data)
    await persistence.update_bot_data(values["bot_data"])
    await persistence.update_callback_data(values["callback_data"])
    for name, states in values["conversations"].items():
        for key, state in states.items():
            await persistence.update_conversation(name, key, state)
    await persistence.flush()


def main() -> None:
    out = Path(sys.argv[1])
    major = telegram.__version__.split(".")[0]
    asyncio.run(write(out / f"ptb{major}_single.pickle", single_file=True))
    asyncio.run(write(out / f"ptb{major}_multi", single_file=False))


if __name__ == "__main__":
    main()
