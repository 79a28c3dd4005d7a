#!/usr/bin/env python
"""Lazy loading and refreshing: the bot sees what other programs write into MongoDB.

``lazy=True``: nothing of ``user_data``/``chat_data`` is loaded at start-up (fast with millions of
users); a user's document is read when their first update arrives.

``refresh=True``: before every update, the user's, the chat's and ``bot_data``'s documents are read
again, so edits made by another program (an admin tool, a web shop, a billing job, the
``mongo-persistence`` CLI, mongosh ...) are seen by the handlers at once. Changes the bot made and
has not written yet are written first - only the keys it changed - so neither side's changes are
lost as long as they touch different top-level keys.

Here the bot counts how often each user asks for /status (the bot's key ``status_requests``),
while another program sets the user's ``plan`` and posts an ``announcement`` in ``bot_data``.
This file is that program too::

    BOT_TOKEN=123:ABC python examples/lazy_refresh_bot.py             # the bot
    python examples/lazy_refresh_bot.py set-plan 123456789 premium    # another program
    python examples/lazy_refresh_bot.py announce "Maintenance at 22:00"

(or in mongosh: ``db.user_data.updateOne({_id: 123456789}, {$set: {"data.plan": "premium"}})``.)
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import os
import sys
from typing import Any

from pymongo import AsyncMongoClient
from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes

from mongo_persistence import MongoPersistence

DEFAULT_URI = "mongodb://localhost:27017"
DATABASE = "lazy_refresh_bot"


async def status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Shows the user's plan (set by another program) and counts the requests (set by the bot)."""
    count = context.user_data.get("status_requests", 0) + 1
    context.user_data["status_requests"] = count
    plan = context.user_data.get("plan", "free")
    text = f"Plan: {plan}. You asked {count} time{'s' if count > 1 else ''}."
    if context.bot_data.get("announcement"):
        text += f" News: {context.bot_data['announcement']}"
    await update.message.reply_text(text)


# ---------------------------------------------------------------------- the other program
async def set_plan(database: Any, user_id: int, plan: str) -> None:
    """What another program does: set one key of a user's data, leaving the others alone."""
    await database["user_data"].update_one(
        {"_id": user_id},
        {"$set": {"data.plan": plan, "updated_at": dtm.datetime.now(dtm.timezone.utc)}},
        upsert=True,
    )


async def announce(database: Any, text: str) -> None:
    """What another program does: set a key of ``bot_data``."""
    await database["bot_data"].update_one(
        {"_id": "bot_data"},
        {"$set": {"data.announcement": text, "updated_at": dtm.datetime.now(dtm.timezone.utc)}},
        upsert=True,
    )


# ---------------------------------------------------------------------- the bot
def build_persistence(uri: str | None = None, **kwargs: Any) -> MongoPersistence[Any, Any, Any]:
    """The persistence, loading lazily and refreshing on every update."""
    kwargs.setdefault("database", DATABASE)
    kwargs.setdefault("lazy", True)
    kwargs.setdefault("refresh", True)
    return MongoPersistence(uri or os.environ.get("MONGODB_URI", DEFAULT_URI), **kwargs)


def build_application(
    persistence: MongoPersistence[Any, Any, Any], **builder_kwargs: Any
) -> Application[Any, Any, Any, Any, Any, Any]:
    """Builds the bot; ``builder_kwargs`` are ApplicationBuilder calls, e.g. ``token=...``."""
    builder = Application.builder().persistence(persistence)
    for name, value in builder_kwargs.items():
        builder = getattr(builder, name)(value)
    application = builder.build()
    application.add_handler(CommandHandler("status", status))
    return application


async def _edit(args: list[str]) -> None:
    client: AsyncMongoClient[Any] = AsyncMongoClient(os.environ.get("MONGODB_URI", DEFAULT_URI))
    try:
        if args[0] == "set-plan":
            await set_plan(client[DATABASE], int(args[1]), args[2])
        else:
            await announce(client[DATABASE], " ".join(args[1:]))
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> None:
    """Runs the bot, or edits the database as another program would."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("set-plan", "announce"):
        asyncio.run(_edit(args))
        return
    logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s", level=logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    token = os.environ.get("BOT_TOKEN")
    if not token:
        sys.exit("Set BOT_TOKEN (and MONGODB_URI, default mongodb://localhost:27017).")
    application = build_application(build_persistence(), token=token)
    application.run_polling(allowed_updates=Update.ALL_TYPES)


if __name__ == "__main__":
    main()
