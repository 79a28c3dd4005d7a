#!/usr/bin/env python
"""Two bots in one database, kept apart by namespaces.

``MongoPersistence(..., namespace="shop")`` prefixes the collection names: this bot's data lives in
``shop.user_data``, ``shop.chat_data``, ``shop.bot_data`` ... and a bot with
``namespace="support"`` uses ``support.user_data`` ... in the same database. Neither sees the
other's data, though both may talk to the same users. (Handy for staging and production bots
sharing one cluster, too.)

Both bots here share one ``AsyncMongoClient`` (one connection pool). A client handed to
MongoPersistence is not closed by it: the program closes it at the end.

Usage (two bot tokens)::

    export BOT_TOKEN=123:ABC BOT_TOKEN_2=456:DEF MONGODB_URI=mongodb://localhost:27017
    python examples/namespaces.py

Send ``/note buy milk`` to one bot and ``/notes`` to both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from typing import Any

from pymongo import AsyncMongoClient
from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes

from mongo_persistence import MongoPersistence

DEFAULT_URI = "mongodb://localhost:27017"
DATABASE = "namespaces_example"
NAMESPACES = ("shop", "support")


def make_handlers(name: str) -> list[CommandHandler[Any, Any]]:
    """The commands of one bot; ``name`` (its namespace) appears in its replies."""

    async def note(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/note text``: keeps a note for the user, and counts all notes of this bot."""
        text = " ".join(context.args or ())
        if not text:
            await update.message.reply_text("Usage: /note buy milk")
            return
        context.user_data.setdefault("notes", []).append(text)
        context.bot_data["notes_total"] = context.bot_data.get("notes_total", 0) + 1
        await update.message.reply_text(f"[{name}] Noted: {text}")

    async def notes(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/notes``: the user's notes on this bot."""
        mine = context.user_data.get("notes", [])
        await update.message.reply_text(
            f"[{name}] {len(mine)} note(s): {'; '.join(mine) or '-'} "
            f"({context.bot_data.get('notes_total', 0)} on this bot)"
        )

    return [CommandHandler("note", note), CommandHandler("notes", notes)]


def build_persistence(
    target: Any, namespace: str, **kwargs: Any
) -> MongoPersistence[Any, Any, Any]:
    """The persistence of one bot: a shared client (or a URI) and its namespace."""
    kwargs.setdefault("database", DATABASE)
    return MongoPersistence(target, namespace=namespace, **kwargs)


def build_application(
    persistence: MongoPersistence[Any, Any, Any], **builder_kwargs: Any
) -> Application[Any, Any, Any, Any, Any, Any]:
    """Builds one bot; its name (in replies) is its persistence's namespace."""
    builder = Application.builder().persistence(persistence)
    for name, value in builder_kwargs.items():
        builder = getattr(builder, name)(value)
    application = builder.build()
    application.add_handlers(make_handlers(persistence.namespace or "bot"))
    return application


async def run_both(tokens: list[str], uri: str) -> None:
    """Runs both bots in one process until Ctrl-C."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(uri)
    applications = [
        build_application(build_persistence(client, namespace), token=token)
        for namespace, token in zip(NAMESPACES, tokens, strict=True)
    ]
    try:
        async with contextlib.AsyncExitStack() as stack:
            for application in applications:
                await stack.enter_async_context(application)  # initialize() ... shutdown()
                await application.updater.start_polling(allowed_updates=Update.ALL_TYPES)  # type: ignore[union-attr]
                await application.start()
            try:
                await asyncio.Event().wait()
            finally:
                for application in applications:
                    await application.updater.stop()  # type: ignore[union-attr]
                    await application.stop()
    finally:
        await client.close()


def main() -> None:
    """Runs the two bots."""
    logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s", level=logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    tokens = [os.environ.get("BOT_TOKEN"), os.environ.get("BOT_TOKEN_2")]
    if not all(tokens):
        sys.exit(
            "Set BOT_TOKEN and BOT_TOKEN_2 (and MONGODB_URI, default mongodb://localhost:27017)."
        )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_both(tokens, os.environ.get("MONGODB_URI", DEFAULT_URI)))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
