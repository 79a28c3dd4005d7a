#!/usr/bin/env python
"""Telegram objects in ``chat_data`` and ``user_data``, still usable after a restart.

Send the bot any text: it keeps the whole :class:`telegram.Message` in ``chat_data`` and your
:class:`telegram.User` in ``user_data``. Restart the bot and send /recall: it answers by calling
``reply_text`` on the stored message, quoting it. Shortcuts such as ``message.reply_text`` work on
loaded objects because MongoPersistence binds them to the running bot.

In MongoDB the message is a readable sub-document::

    {"__type__": "telegram", "class": "Message", "value": {"message_id": 7, "text": "...", ...}}

Usage::

    export BOT_TOKEN=123:ABC MONGODB_URI=mongodb://localhost:27017
    python examples/telegram_objects_bot.py
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from telegram import Message, Update, User
from telegram.ext import Application, CommandHandler, ContextTypes, MessageHandler, filters

from mongo_persistence import MongoPersistence

DEFAULT_URI = "mongodb://localhost:27017"
DATABASE = "telegram_objects_bot"


async def remember(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Keeps the message and its sender."""
    context.chat_data["last_message"] = update.message
    context.user_data["me"] = update.effective_user
    await update.message.reply_text("Noted. Restart me and send /recall.")


async def recall(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answers the remembered message itself, using its reply_text shortcut."""
    message: Message | None = context.chat_data.get("last_message")
    user: User | None = context.user_data.get("me")
    if message is None or user is None:
        await update.message.reply_text("Send me some text first.")
        return
    await message.reply_text(
        f"{user.first_name}, you said this on {message.date:%Y-%m-%d at %H:%M} UTC.",
        do_quote=True,
    )


def build_persistence(uri: str | None = None, **kwargs: Any) -> MongoPersistence[Any, Any, Any]:
    """The persistence: a URI (or a client), and the database of this bot."""
    kwargs.setdefault("database", DATABASE)
    return MongoPersistence(uri or os.environ.get("MONGODB_URI", DEFAULT_URI), **kwargs)


def add_handlers(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Registers /recall and the text handler."""
    application.add_handler(CommandHandler("recall", recall))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, remember))


def build_application(
    persistence: MongoPersistence[Any, Any, Any], **builder_kwargs: Any
) -> Application[Any, Any, Any, Any, Any, Any]:
    """Builds the bot; ``builder_kwargs`` are ApplicationBuilder calls, e.g. ``token=...``."""
    builder = Application.builder().persistence(persistence)
    for name, value in builder_kwargs.items():
        builder = getattr(builder, name)(value)
    application = builder.build()
    add_handlers(application)
    return application


def main() -> None:
    """Runs the bot until Ctrl-C."""
    logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s", level=logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    token = os.environ.get("BOT_TOKEN")
    if not token:
        sys.exit("Set BOT_TOKEN (and MONGODB_URI, default mongodb://localhost:27017).")
    application = build_application(build_persistence(), token=token)
    application.run_polling(allowed_updates=Update.ALL_TYPES)


if __name__ == "__main__":
    main()
