#!/usr/bin/env python
"""PTB's arbitrarycallbackdatabot example, made persistent in MongoDB.

Buttons carry Python objects as callback data (here a tuple ``(number, list_so_far)``). The
callback data cache is stored in MongoDB, so buttons sent before a restart still work after it.

Needs ``pip install "python-telegram-bot[callback-data]"``.

Usage::

    export BOT_TOKEN=123:ABC MONGODB_URI=mongodb://localhost:27017
    python examples/arbitrary_callback_data_bot.py

Send /start and press buttons; restart the bot and press one of the old buttons: it still works.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, cast

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    InvalidCallbackData,
)

from mongo_persistence import MongoPersistence

DEFAULT_URI = "mongodb://localhost:27017"
DATABASE = "arbitrary_callback_data_bot"


def build_keyboard(current_list: list[int]) -> InlineKeyboardMarkup:
    """Five buttons; each one's callback data is ``(its number, the numbers chosen so far)``."""
    return InlineKeyboardMarkup.from_column(
        [InlineKeyboardButton(str(i), callback_data=(i, current_list)) for i in range(1, 6)]
    )


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Sends a message with five inline buttons."""
    await update.message.reply_text("Please choose:", reply_markup=build_keyboard([]))


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Explains the bot."""
    await update.message.reply_text(
        "Use /start to test this bot. Use /clear to clear the stored data so that you can see "
        "what happens, if the button data is not available. "
    )


async def clear(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Clears the callback data cache."""
    context.bot.callback_data_cache.clear_callback_data()
    context.bot.callback_data_cache.clear_callback_queries()
    await update.effective_message.reply_text("All clear!")


async def list_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Appends the pressed number and shows the next keyboard."""
    query = update.callback_query
    await query.answer()
    number, number_list = cast("tuple[int, list[int]]", query.data)
    number_list.append(number)
    await query.edit_message_text(
        text=f"So far you've selected {number_list}. Choose the next item:",
        reply_markup=build_keyboard(number_list),
    )
    # The buttons were replaced: their data is not needed any more.
    context.drop_callback_data(query)


async def handle_invalid_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button whose data is gone (e.g. after /clear)."""
    await update.callback_query.answer()
    await update.effective_message.edit_text(
        "Sorry, I could not process this button click 😕 Please send /start to get a new keyboard."
    )


def build_persistence(uri: str | None = None, **kwargs: Any) -> MongoPersistence[Any, Any, Any]:
    """The persistence: a URI (or a client), and the database of this bot."""
    kwargs.setdefault("database", DATABASE)
    return MongoPersistence(uri or os.environ.get("MONGODB_URI", DEFAULT_URI), **kwargs)


def add_handlers(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Registers the commands and the button handlers."""
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CommandHandler("help", help_command))
    application.add_handler(CommandHandler("clear", clear))
    application.add_handler(
        CallbackQueryHandler(handle_invalid_button, pattern=InvalidCallbackData)
    )
    application.add_handler(CallbackQueryHandler(list_button))


def build_application(
    persistence: MongoPersistence[Any, Any, Any], **builder_kwargs: Any
) -> Application[Any, Any, Any, Any, Any, Any]:
    """Builds the bot with arbitrary callback data; ``builder_kwargs`` are builder calls."""
    builder = Application.builder().persistence(persistence).arbitrary_callback_data(True)
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
