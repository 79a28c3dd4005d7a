#!/usr/bin/env python
"""PTB's persistentconversationbot example, made persistent in MongoDB.

The bot asks you about yourself in a conversation. It remembers what you told it (in
``user_data``) and where the conversation stands (a persistent ``ConversationHandler``) across
restarts: stop it in the middle of the conversation, start it again, and it carries on.

The only change from PTB's example is one line: ``MongoPersistence(...)`` instead of
``PicklePersistence(filepath=...)``.

Usage::

    export BOT_TOKEN=123:ABC MONGODB_URI=mongodb://localhost:27017
    python examples/persistent_conversation_bot.py

Send /start to begin, /show_data to see what the bot knows.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from telegram import ReplyKeyboardMarkup, ReplyKeyboardRemove, Update
from telegram.ext import (
    Application,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)

from mongo_persistence import MongoPersistence

DEFAULT_URI = "mongodb://localhost:27017"
DATABASE = "persistent_conversation_bot"

CHOOSING, TYPING_REPLY, TYPING_CHOICE = range(3)

reply_keyboard = [
    ["Age", "Favourite colour"],
    ["Number of siblings", "Something else..."],
    ["Done"],
]
markup = ReplyKeyboardMarkup(reply_keyboard, one_time_keyboard=True)


def facts_to_str(user_data: dict[str, str]) -> str:
    """Formats the gathered facts."""
    facts = [f"{key} - {value}" for key, value in user_data.items()]
    return "\n".join(facts).join(["\n", "\n"])


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Starts the conversation, shows what is known and asks for input."""
    reply_text = "Hi! My name is Doctor Botter."
    if context.user_data:
        reply_text += (
            f" You already told me your {', '.join(context.user_data.keys())}. Why don't you "
            "tell me something more about yourself? Or change anything I already know."
        )
    else:
        reply_text += (
            " I will hold a more complex conversation with you. Why don't you tell me "
            "something about yourself?"
        )
    await update.message.reply_text(reply_text, reply_markup=markup)
    return CHOOSING


async def regular_choice(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Asks for the value of the chosen category."""
    text = update.message.text.lower()
    context.user_data["choice"] = text
    if context.user_data.get(text):
        reply_text = (
            f"Your {text}? I already know the following about that: {context.user_data[text]}"
        )
    else:
        reply_text = f"Your {text}? Yes, I would love to hear about that!"
    await update.message.reply_text(reply_text)
    return TYPING_REPLY


async def custom_choice(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Asks for a custom category."""
    await update.message.reply_text(
        'Alright, please send me the category first, for example "Most impressive skill"'
    )
    return TYPING_CHOICE


async def received_information(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Stores the value and asks for the next category."""
    category = context.user_data.pop("choice")
    context.user_data[category] = update.message.text.lower()
    await update.message.reply_text(
        "Neat! Just so you know, this is what you already told me:"
        f"{facts_to_str(context.user_data)}"
        "You can tell me more, or change your opinion on something.",
        reply_markup=markup,
    )
    return CHOOSING


async def show_data(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Shows the gathered facts."""
    await update.message.reply_text(
        f"This is what you already told me: {facts_to_str(context.user_data)}"
    )


async def done(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Shows the gathered facts and ends the conversation."""
    context.user_data.pop("choice", None)
    await update.message.reply_text(
        f"I learned these facts about you: {facts_to_str(context.user_data)}Until next time!",
        reply_markup=ReplyKeyboardRemove(),
    )
    return ConversationHandler.END


def build_persistence(uri: str | None = None, **kwargs: Any) -> MongoPersistence[Any, Any, Any]:
    """The persistence: a URI (or a client), and the database of this bot."""
    kwargs.setdefault("database", DATABASE)
    return MongoPersistence(uri or os.environ.get("MONGODB_URI", DEFAULT_URI), **kwargs)


def add_handlers(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Registers the conversation (persistent: it needs a name) and /show_data."""
    text = filters.TEXT & ~(filters.COMMAND | filters.Regex("^Done$"))
    conversation = ConversationHandler(
        entry_points=[CommandHandler("start", start)],
        states={
            CHOOSING: [
                MessageHandler(
                    filters.Regex("^(Age|Favourite colour|Number of siblings)$"), regular_choice
                ),
                MessageHandler(filters.Regex("^Something else...$"), custom_choice),
            ],
            TYPING_CHOICE: [MessageHandler(text, regular_choice)],
            TYPING_REPLY: [MessageHandler(text, received_information)],
        },
        fallbacks=[MessageHandler(filters.Regex("^Done$"), done)],
        name="my_conversation",
        persistent=True,
    )
    application.add_handler(conversation)
    application.add_handler(CommandHandler("show_data", show_data))


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
