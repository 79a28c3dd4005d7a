#!/usr/bin/env python
"""Storing instances of your own class: register a ``TypeCodec`` for it.

MongoPersistence stores plain data, many standard types and Telegram objects by itself. For a
class of your own it needs to know how to turn an instance into storable values and back: a
:class:`mongo_persistence.TypeCodec`. Here it is a dataclass, ``ShoppingList``::

    {"__type__": "custom", "codec": "shopping_list",
     "value": {"items": ["milk", "eggs"], "updated": {"__type__": "datetime", "value": "..."}}}

The codec's name ("shopping_list") is what is stored, not the class path: you may rename or move
the class later, old documents stay readable. Without the codec, writing ``user_data`` fails with
an :class:`mongo_persistence.EncodingError` that names the entity and the path, e.g.
``Cannot store user_data[42]['list']: this type is not supported ...``.

Usage::

    export BOT_TOKEN=123:ABC MONGODB_URI=mongodb://localhost:27017
    python examples/custom_codec_bot.py

Send ``/add milk eggs``, restart, send ``/list``.
"""

from __future__ import annotations

import datetime as dtm
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes

from mongo_persistence import MongoPersistence, TypeCodec

DEFAULT_URI = "mongodb://localhost:27017"
DATABASE = "custom_codec_bot"


@dataclass
class ShoppingList:
    """The user's shopping list."""

    items: list[str] = field(default_factory=list)
    updated: dtm.datetime | None = None


SHOPPING_LIST_CODEC = TypeCodec(
    ShoppingList,
    "shopping_list",
    # Return something storable; it is encoded further (the datetime becomes a tagged value).
    encode=lambda shopping_list: {"items": shopping_list.items, "updated": shopping_list.updated},
    decode=lambda value: ShoppingList(**value),
)


async def add(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """``/add milk eggs``: adds items to the list."""
    if not context.args:
        await update.message.reply_text("Usage: /add milk eggs")
        return
    shopping_list: ShoppingList = context.user_data.setdefault("list", ShoppingList())
    shopping_list.items.extend(context.args)
    shopping_list.updated = update.message.date
    await update.message.reply_text(
        f"Added {', '.join(context.args)}. {len(shopping_list.items)} item(s) on your list."
    )


async def show(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """``/list``: shows the list."""
    shopping_list: ShoppingList | None = context.user_data.get("list")
    if not shopping_list or not shopping_list.items:
        await update.message.reply_text("Your list is empty. Use /add milk eggs")
        return
    await update.message.reply_text(
        f"Your list ({type(shopping_list).__name__}, updated "
        f"{shopping_list.updated:%Y-%m-%d %H:%M} UTC): {', '.join(shopping_list.items)}"
    )


def build_persistence(uri: str | None = None, **kwargs: Any) -> MongoPersistence[Any, Any, Any]:
    """The persistence, with the codec of ``ShoppingList`` registered."""
    kwargs.setdefault("database", DATABASE)
    kwargs.setdefault("codecs", [SHOPPING_LIST_CODEC])
    return MongoPersistence(uri or os.environ.get("MONGODB_URI", DEFAULT_URI), **kwargs)


def add_handlers(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Registers /add and /list."""
    application.add_handler(CommandHandler("add", add))
    application.add_handler(CommandHandler("list", show))


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
