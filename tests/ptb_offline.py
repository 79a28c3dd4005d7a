"""Drive real PTB Applications offline: a request object that answers Bot API calls locally."""

from __future__ import annotations

import datetime as dtm
import itertools
import json
from typing import Any

from telegram import CallbackQuery, Chat, Message, Update, User
from telegram.ext import Application, ApplicationBuilder, BasePersistence
from telegram.request import BaseRequest, RequestData

BOT_ID = 777000
TOKEN = f"{BOT_ID}:TEST-TOKEN-offline"


class OfflineRequest(BaseRequest):
    """Answers the Bot API methods a bot uses, and records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._message_ids = itertools.count(1000)

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    def sent(self, method: str = "sendMessage") -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        name = url.rsplit("/", 1)[-1]
        params = request_data.parameters if request_data else {}
        self.calls.append((name, params))
        result: Any = True
        if name == "getMe":
            result = {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "Offline",
                "username": "offline_bot",
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        elif name in ("sendMessage", "editMessageText", "sendPhoto"):
            chat_id = params.get("chat_id", 1)
            result = {
                "message_id": params.get("message_id") or next(self._message_ids),
                "date": int(dtm.datetime.now(dtm.timezone.utc).timestamp()),
                "chat": {"id": chat_id, "type": "private" if int(chat_id) > 0 else "group"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Offline"},
                "text": params.get("text", ""),
            }
            if "reply_markup" in params:
                markup = params["reply_markup"]
                markup = json.loads(markup) if isinstance(markup, str) else markup
                if "inline_keyboard" in markup:  # only inline keyboards come back in a Message
                    result["reply_markup"] = markup
        elif name == "getUpdates":
            result = []
        return 200, json.dumps({"ok": True, "result": result}).encode()


def build_application(
    persistence: BasePersistence[Any, Any, Any] | None,
    *,
    request: OfflineRequest | None = None,
    arbitrary_callback_data: bool = False,
    **builder_kwargs: Any,
) -> tuple[Application[Any, Any, Any, Any, Any, Any], OfflineRequest]:
    request = request or OfflineRequest()
    builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder().token(TOKEN).request(request).get_updates_request(OfflineRequest())
    )
    if persistence is not None:
        builder = builder.persistence(persistence)
    if arbitrary_callback_data:
        builder = builder.arbitrary_callback_data(True)
    for key, value in builder_kwargs.items():
        builder = getattr(builder, key)(value)
    return builder.build(), request


_update_ids = itertools.count(1)


def user(user_id: int, name: str = "Alice") -> User:
    return User(id=user_id, first_name=name, is_bot=False)


def message_update(
    app: Application[Any, Any, Any, Any, Any, Any],
    text: str,
    *,
    user_id: int = 42,
    chat_id: int | None = None,
) -> Update:
    chat_id = user_id if chat_id is None else chat_id
    entities = []
    if text.startswith("/"):
        from telegram import MessageEntity

        entities = [MessageEntity(MessageEntity.BOT_COMMAND, 0, len(text.split(maxsplit=1)[0]))]
    msg = Message(
        message_id=next(_update_ids),
        date=dtm.datetime.now(dtm.timezone.utc),
        chat=Chat(chat_id, Chat.PRIVATE if chat_id > 0 else Chat.GROUP),
        from_user=user(user_id),
        text=text,
        entities=entities,
    )
    update = Update(update_id=next(_update_ids), message=msg)
    update.set_bot(app.bot)
    msg.set_bot(app.bot)
    return update


def callback_update(
    app: Application[Any, Any, Any, Any, Any, Any],
    sent_message: dict[str, Any],
    data: str,
    *,
    user_id: int = 42,
) -> Update:
    """A callback query pressing a button of a message the bot sent (as the Updater delivers it)."""
    message = Message.de_json(
        {**sent_message, "date": int(dtm.datetime.now(dtm.timezone.utc).timestamp())}, app.bot
    )
    query = CallbackQuery(
        id=str(next(_update_ids)),
        from_user=user(user_id),
        chat_instance="ci",
        data=data,
        message=message,
    )
    update = Update(update_id=next(_update_ids), callback_query=query)
    update.set_bot(app.bot)
    query.set_bot(app.bot)
    # What the Updater does before handing the update to the application:
    app.bot.insert_callback_data(update)
    return update


def last_buttons(request: OfflineRequest) -> tuple[dict[str, Any], list[str]]:
    """The last message with an inline keyboard and the callback_data strings of its buttons."""
    for name, params in reversed(request.calls):
        if name in ("sendMessage", "editMessageText") and "reply_markup" in params:
            markup = params["reply_markup"]
            markup = json.loads(markup) if isinstance(markup, str) else markup
            rows = markup["inline_keyboard"]
            message = {
                "message_id": int(params.get("message_id") or 1),
                "chat": {"id": int(params.get("chat_id", 42)), "type": "private"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Offline"},
                "text": params.get("text", ""),
                "reply_markup": markup,
            }
            return message, [
                b["callback_data"] for row in rows for b in row if "callback_data" in b
            ]
    raise AssertionError("no message with buttons was sent")
