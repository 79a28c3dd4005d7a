"""`make demo`: a bot conversation that survives a restart in a new process, and its documents.

Without MONGODB_URI a local SecantusDB (a MongoDB-compatible server) is started with its data on
disk under .demo/data; with MONGODB_URI that server is used. Either way the demo works in the
database ``mongo_persistence_demo`` (DEMO_DATABASE to change it), dropped first so every run starts
alike.

1. This process runs PTB's persistent conversation bot (examples/persistent_conversation_bot.py)
   offline - a real Application; only the Telegram servers are replaced by a stand-in - and chats
   with it. It stops in the middle of the conversation (with the local server, MongoDB stops too).
2. A new process (this script with --resume) starts the bot again on the same database: the
   conversation goes on where it stopped, with every fact remembered.
3. It prints the stored documents as mongosh shows them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

import persistent_conversation_bot as example  # noqa: E402
from bson import json_util  # noqa: E402
from pymongo import AsyncMongoClient  # noqa: E402
from telegram import Update  # noqa: E402
from telegram.ext import Application, ContextTypes, MessageHandler, filters  # noqa: E402

from tests.helpers.local_server import LocalServer  # noqa: E402
from tests.ptb_offline import (  # noqa: E402
    TOKEN,
    OfflineRequest,
    message_update,
)

DATABASE = os.environ.get("DEMO_DATABASE", "mongo_persistence_demo")
DEMO_DIR = Path(os.environ.get("DEMO_DIR", ROOT / ".demo"))
STATES = {
    example.CHOOSING: "CHOOSING",
    example.TYPING_REPLY: "TYPING_REPLY",
    example.TYPING_CHOICE: "TYPING_CHOICE",
}

FIRST_PART = ["/start", "Age", "32", "Favourite colour", "Blue", "Number of siblings"]
SECOND_PART = ["2", "/show_data"]


async def note_activity(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A demo extra (group 1, next to the example's handlers): values BSON cannot hold as-is."""
    context.chat_data["last_seen"] = update.message.date  # a timezone-aware datetime
    context.chat_data["last_from"] = update.effective_user  # a Telegram object
    context.bot_data["users"] = context.bot_data.get("users", set()) | {update.effective_user.id}
    context.bot_data["messages"] = context.bot_data.get("messages", 0) + 1


def say(who: str, text: str) -> None:
    lines = [
        wrapped
        for line in text.strip("\n").splitlines() or [""]
        for wrapped in textwrap.wrap(line, 80) or [""]
    ]
    print(f"  {who:<6} {lines[0]}")
    for line in lines[1:]:
        print(f"  {'':<6} {line}")


async def chat(uri: str, texts: list[str], *, fresh: bool) -> None:
    """One life of the bot: load, process the messages, write, stop."""
    if fresh:
        client: AsyncMongoClient[Any] = AsyncMongoClient(uri)
        await client.drop_database(DATABASE)
        await client.close()
    request = OfflineRequest()
    app: Application[Any, Any, Any, Any, Any, Any] = example.build_application(
        example.build_persistence(uri, database=DATABASE),
        token=TOKEN,
        request=request,
        get_updates_request=OfflineRequest(),
    )
    app.add_handler(MessageHandler(filters.ALL, note_activity), group=1)
    async with app:  # initialize() loads everything; leaving writes and flushes
        if not fresh:
            states = await app.persistence.get_conversations("my_conversation")  # type: ignore[union-attr]
            print(f"  loaded user_data[42]: {dict(app.user_data[42])}")
            for key, state in states.items():
                print(f"  loaded conversation 'my_conversation' {key}: {STATES.get(state, state)}")
            print()
        for text in texts:
            sent = len(request.sent())
            say("Alice:", text)
            await app.process_update(message_update(app, text))
            for reply in request.sent()[sent:]:
                say("bot:", reply["text"])


def pretty(value: Any, indent: str = "", width: int = 92) -> str:
    """JSON, with small objects and arrays kept on one line (as mongosh does)."""
    flat = json.dumps(value, ensure_ascii=False)
    if len(indent) + len(flat) <= width or not isinstance(value, dict | list) or not value:
        return flat
    inner = indent + "  "
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k)}: {pretty(v, inner, width)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    items = [f"{inner}{pretty(v, inner, width)}" for v in value]
    return "[\n" + ",\n".join(items) + f"\n{indent}]"


def as_mongosh_json(doc: Any) -> str:
    """A document in relaxed Extended JSON (dates as {"$date": ...}), pretty-printed."""
    relaxed = json.loads(json_util.dumps(doc, json_options=json_util.RELAXED_JSON_OPTIONS))
    return pretty(relaxed)


async def show_documents(uri: str) -> None:
    client: AsyncMongoClient[Any] = AsyncMongoClient(uri)
    try:
        database = client[DATABASE]
        for name in sorted(await database.list_collection_names()):
            where = f"db.{name}" if name.isidentifier() else f"db[{name!r}]"
            print(f"{DATABASE}> {where}.find()")
            async for doc in database[name].find():
                print(as_mongosh_json(doc))
            print()
    finally:
        await client.close()


@contextmanager
def mongodb(storage: Path | None) -> Iterator[str]:
    """The server: MONGODB_URI, or a local SecantusDB on the storage directory."""
    if storage is None:
        yield os.environ["MONGODB_URI"]
        return
    storage.mkdir(parents=True, exist_ok=True)
    server = LocalServer(storage=storage, log_path=storage.parent / "secantusd.log")
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()


def first_process() -> int:
    storage = None if os.environ.get("MONGODB_URI") else DEMO_DIR / "data"
    print("mongo_persistence demo")
    print("======================")
    if storage is None:
        print("MongoDB:  MONGODB_URI")
    else:
        print(f"MongoDB:  a local SecantusDB, data on disk in {storage} (MONGODB_URI to use yours)")
    print(f"Database: {DATABASE} (dropped first: every run starts alike)\n")

    print(f"-- Process 1 (pid {os.getpid()}): PTB's persistent conversation bot, a new user --")
    with mongodb(storage) as uri:
        asyncio.run(chat(uri, FIRST_PART, fresh=True))
    print(
        "-- The bot stops in the middle of the conversation"
        f"{' (and so does MongoDB)' if storage else ''}. --\n"
    )

    command = [sys.executable, str(Path(__file__).resolve()), "--resume"]
    if storage is not None:
        command += ["--storage", str(storage)]
    sys.stdout.flush()
    return subprocess.run(command, check=False).returncode


def second_process(storage: Path | None) -> int:
    print(f"-- Process 2 (pid {os.getpid()}): the bot starts again on the same database --")
    with mongodb(storage) as uri:
        asyncio.run(chat(uri, SECOND_PART, fresh=False))
        print("\n-- The documents in MongoDB, as mongosh shows them (relaxed Extended JSON) --")
        asyncio.run(show_documents(uri))
    if storage is None:
        print(f'Look for yourself: mongosh "$MONGODB_URI" then `use {DATABASE}`')
    else:
        print(f"The data stays in {storage}; with your own server: MONGODB_URI=... make demo")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resume", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--storage", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.resume:
        return second_process(args.storage)
    return first_process()


if __name__ == "__main__":
    sys.exit(main())
