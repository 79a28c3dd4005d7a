"""Reading PTB's own persistences: PicklePersistence files and DictPersistence JSON.

The files are read with PTB's own classes (:class:`telegram.ext.PicklePersistence`,
:class:`telegram.ext.DictPersistence`), so they are understood exactly as the bot understood them;
:mod:`mongo_persistence._cli.migrate` writes what they hold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from telegram import Bot
from telegram.ext import BasePersistence, DictPersistence, ExtBot, PicklePersistence

from mongo_persistence._errors import SourceError

KINDS: Final = ("user_data", "chat_data", "bot_data", "callback_data", "conversations")
"""The kinds of data a PTB persistence holds, in the order they are migrated."""

PICKLE_SUFFIXES: Final = tuple(f"_{kind}" for kind in KINDS)
"""The file name suffixes of a ``PicklePersistence(single_file=False)``."""

DICT_JSON_FILES: Final = {kind: f"{kind}.json" for kind in KINDS}
"""The file names looked for when ``--from-dict-json`` names a directory."""

DUMMY_TOKEN: Final = "123:ABC"  # noqa: S105 - a placeholder, never sent anywhere


def dummy_bot() -> ExtBot[None]:
    """A bot that is never initialised nor sent anything: it stands for the bot of the source.

    Telegram objects of the source are bound to it, and references to the source's bot become
    references to it; :class:`~mongo_persistence.MongoPersistence` stores those as the bot
    placeholder, which a bot started on MongoDB turns into itself.
    """
    return ExtBot(DUMMY_TOKEN)


@dataclass(slots=True)
class SourceData:
    """Everything a PTB persistence holds, as its ``get_*`` methods returned it.

    Attributes:
        description (:obj:`str`): Where it came from, for messages.
        user_data (dict[:obj:`int`, :obj:`object`]): By user id.
        chat_data (dict[:obj:`int`, :obj:`object`]): By chat id.
        bot_data (:obj:`object`): The bot data; :obj:`None` when there is none.
        callback_data (:obj:`tuple` | :obj:`None`): ``(keyboards, queries)`` or :obj:`None`.
        conversations (dict[:obj:`str`, dict[:obj:`tuple`, :obj:`object`]]): The states of every
            conversation, by handler name and conversation key.
        bot (:class:`telegram.Bot`): The bot the data was loaded with.
    """

    description: str
    user_data: dict[Any, Any] = field(default_factory=dict)
    chat_data: dict[Any, Any] = field(default_factory=dict)
    bot_data: Any = None
    callback_data: Any = None
    conversations: dict[str, dict[Any, Any]] = field(default_factory=dict)
    bot: Bot | None = None

    def counts(self) -> dict[str, int]:
        """The number of entities of each kind (a conversation entity is one key of a handler)."""
        return {
            "user_data": len(self.user_data),
            "chat_data": len(self.chat_data),
            "bot_data": int(self.bot_data is not None),
            "callback_data": int(self.callback_data is not None),
            "conversations": sum(len(states) for states in self.conversations.values()),
        }

    @property
    def total(self) -> int:
        """The number of entities of all kinds."""
        return sum(self.counts().values())


# ====================================================================== reading the sources
def is_id(key: object) -> bool:
    """Tells whether a key of user or chat data is an int id (not a bool)."""
    return isinstance(key, int) and not isinstance(key, bool)


async def _read(
    persistence: BasePersistence[Any, Any, Any], bot: Bot, description: str
) -> SourceData:
    user_data = await persistence.get_user_data()
    chat_data = await persistence.get_chat_data()
    bot_data = await persistence.get_bot_data()
    callback_data = await persistence.get_callback_data()
    # None: that kind was not stored by the bot (store_data flag off)
    user_data = {} if user_data is None else user_data
    chat_data = {} if chat_data is None else chat_data
    for kind, value in (("user_data", user_data), ("chat_data", chat_data)):
        if not isinstance(value, dict):
            raise SourceError(
                f"{description}: its {kind} is a {type(value).__name__}, not a dict by id"
            )
    if not callback_data:  # None, or {} from an old single file without callback data
        callback_data = None
    elif not (
        isinstance(callback_data, tuple | list)
        and len(callback_data) == 2
        and isinstance(callback_data[0], list)
        and isinstance(callback_data[1], dict)
        and all(isinstance(kb, tuple | list) and len(kb) == 3 for kb in callback_data[0])
    ):
        raise SourceError(
            f"{description}: its callback_data is not in the format "
            "(list of (uuid, access time, buttons), dict of queries)"
        )
    return SourceData(
        description=description,
        user_data=user_data,
        chat_data=chat_data,
        bot_data=bot_data if bot_data or not isinstance(bot_data, dict | None) else None,
        callback_data=callback_data,
        conversations={},
        bot=bot,
    )


def _conversations(description: str, raw: Any) -> dict[str, dict[Any, Any]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(states, dict) for states in raw.values()):
        raise SourceError(
            f"{description}: its conversations are not a dict of handler names to dicts of states"
        )
    out: dict[str, dict[Any, Any]] = {}
    for name, states in raw.items():
        if not isinstance(name, str):
            raise SourceError(f"{description}: conversation handler name {name!r} is not a str")
        if states:
            out[name] = dict(states)
    return out


def _unwrap(exc: BaseException) -> str:
    message = str(exc)
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in message:
        message = f"{message} ({type(cause).__name__}: {cause})"
    return message


def pickle_files(path: Path) -> tuple[bool, list[Path]]:
    """Finds the files of a PicklePersistence.

    Args:
        path (:class:`pathlib.Path`): The ``filepath`` the bot gave to PicklePersistence.

    Returns:
        (:obj:`bool`, list[:class:`pathlib.Path`]): Whether it is a single file, and the files.

    Raises:
        :class:`SourceError`: Neither the file nor any of the ``<path>_<kind>`` files exist.
    """
    if path.is_dir():
        raise SourceError(f"{path} is a directory, not a PicklePersistence file or prefix")
    if path.is_file():
        return True, [path]
    parts = [Path(f"{path}{suffix}") for suffix in PICKLE_SUFFIXES]
    found = [part for part in parts if part.is_file()]
    if not found:
        raise SourceError(
            f"No PicklePersistence data at {path}: neither that file nor any of "
            f"{', '.join(p.name for p in parts)} exists"
        )
    return False, found


async def load_pickle(
    path: str | Path, *, bot: Bot | None = None, single_file: bool | None = None
) -> SourceData:
    """Reads the files of a :class:`telegram.ext.PicklePersistence` with PTB's own class.

    Args:
        path (:obj:`str` | :class:`pathlib.Path`): The ``filepath`` of the PicklePersistence: the
            file itself, or with ``single_file=False`` the prefix of the ``<path>_user_data``...
            files.
        bot (:class:`telegram.Bot`, optional): The bot to bind Telegram objects to. Defaults to
            :func:`dummy_bot`.
        single_file (:obj:`bool`, optional): Found out from the files present when not given.

    Raises:
        :class:`SourceError`: The files are missing or not PicklePersistence data.
    """
    path = Path(path)
    detected, files = pickle_files(path)
    if single_file is None:
        single_file = detected
    bot = bot or dummy_bot()
    kind = "single file" if single_file else f"{len(files)} files {path.name}_*"
    description = f"{path} (PicklePersistence, {kind})"
    persistence: PicklePersistence[Any, Any, Any] = PicklePersistence(
        path, single_file=single_file, update_interval=3600
    )
    persistence.set_bot(bot)
    try:
        data = await _read(persistence, bot, description)
        if not single_file:
            await persistence.get_conversations("")  # loads the file of every handler's states
        # A single file holds None when the bot had no persistent conversation handler.
        data.conversations = _conversations(description, persistence.conversations)
    except SourceError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OSError) as exc:
        hint = ""
        suffix = next((x for x in PICKLE_SUFFIXES if path.name.endswith(x)), None)
        if single_file and suffix:
            prefix = path.with_name(path.name[: -len(suffix)])
            hint = f"; for the files of single_file=False give their prefix: {prefix}"
        raise SourceError(f"Cannot read {description}: {_unwrap(exc)}{hint}") from exc
    return data


async def load_dict_json(path: str | Path, *, bot: Bot | None = None) -> SourceData:
    """Reads DictPersistence JSON with PTB's own :class:`telegram.ext.DictPersistence`.

    Args:
        path (:obj:`str` | :class:`pathlib.Path`): Either a JSON file holding an object with any
            of the keys ``user_data``, ``chat_data``, ``bot_data``, ``callback_data`` and
            ``conversations``, each the text of the matching ``DictPersistence.*_json`` property
            (a JSON string) or that JSON itself; or a directory holding any of the files
            ``user_data.json``, ``chat_data.json``, ``bot_data.json``, ``callback_data.json`` and
            ``conversations.json``, each the text of the matching ``*_json`` property.
        bot (:class:`telegram.Bot`, optional): Defaults to :func:`dummy_bot`.

    Raises:
        :class:`SourceError`: Missing, unreadable or not DictPersistence JSON.
    """
    path = Path(path)
    if path.is_dir():
        texts = _dict_json_dir(path)
        description = f"{path}/ (DictPersistence JSON, {len(texts)} files)"
    elif path.is_file():
        texts = _dict_json_file(path)
        description = f"{path} (DictPersistence JSON)"
    else:
        raise SourceError(f"No such file or directory: {path}")

    bot = bot or dummy_bot()
    try:
        persistence = DictPersistence(
            user_data_json=texts.get("user_data", ""),
            chat_data_json=texts.get("chat_data", ""),
            bot_data_json=texts.get("bot_data", ""),
            callback_data_json=texts.get("callback_data", ""),
            conversations_json=texts.get("conversations", ""),
            update_interval=3600,
        )
        persistence.set_bot(bot)
        data = await _read(persistence, bot, description)
    except SourceError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise SourceError(f"Cannot read {description}: {_unwrap(exc)}") from exc
    data.conversations = _conversations(description, persistence.conversations)
    return data


def _dict_json_dir(path: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    for kind, name in DICT_JSON_FILES.items():
        part = path / name
        if part.is_file():
            texts[kind] = _read_text(part)
    if not texts:
        raise SourceError(
            f"No DictPersistence JSON in directory {path}: expected any of "
            f"{', '.join(DICT_JSON_FILES.values())}"
        )
    return texts


def _dict_json_file(path: Path) -> dict[str, str]:
    try:
        combined = json.loads(_read_text(path))
    except ValueError as exc:
        raise SourceError(f"{path} is not a JSON file: {exc}") from None
    if not isinstance(combined, dict):
        raise SourceError(f"{path} does not hold a JSON object with the keys {', '.join(KINDS)}")
    unknown = sorted(set(combined) - set(KINDS))
    if unknown or not combined:
        raise SourceError(
            f"{path} is not DictPersistence JSON: "
            + (f"unknown keys {', '.join(map(repr, unknown))}; " if unknown else "")
            + f"expected keys {', '.join(KINDS)}"
        )
    return {
        kind: value if isinstance(value, str) else json.dumps(value)
        for kind, value in combined.items()
        if value is not None and value != ""
    }


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SourceError(f"{path} is not a UTF-8 text file") from None
    except OSError as exc:
        raise SourceError(f"Cannot read {path}: {exc.strerror or exc}") from None
