"""The shapes PTB hands over and gets back, checked: data classes, conversation keys, callback data.

Pure functions (no I/O): what a stored document must look like to become PTB's data again, and
how an object of a ``context_types`` class is filled in place.
"""

from __future__ import annotations

import inspect
from typing import Any, TypeAlias

from mongo_persistence._codec.codec import Codec
from mongo_persistence._errors import DecodingError
from mongo_persistence._storage.entity import ConversationKey, EntityRef

ConversationDict: TypeAlias = dict[ConversationKey, object]
"""The states of a :class:`telegram.ext.ConversationHandler`, by conversation key."""
CDCData: TypeAlias = tuple[list[tuple[str, float, dict[str, Any]]], dict[str, str]]
"""The data of :attr:`telegram.ext.CallbackDataCache.persistence_data`: keyboards and queries."""

_KEYBOARD_FIELDS = frozenset({"keyboard", "access_time", "buttons"})


def new_instance(cls: Any) -> Any:
    """An empty instance of a data class: ``cls()``, or ``cls.__new__(cls)`` if it needs arguments.

    Only a signature that cannot be called without arguments falls back; a :class:`TypeError`
    raised by the class's own ``__init__`` propagates (it is a bug of the bot to report).
    """
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # no signature to read (some built-in classes)
        return cls()
    try:
        signature.bind()
    except TypeError:  # an __init__ that needs arguments
        return cls.__new__(cls)
    return cls()


def is_scalar_class(cls: type) -> bool:
    """Tells whether instances of a data class hold no keys nor attributes (int, complex...)."""
    return not issubclass(cls, dict) and getattr(cls, "__dictoffset__", 0) == 0


def conversation_key(codec: Codec, doc: Any, where: str) -> ConversationKey:
    """The key of a conversation document, checked: a list of ints and strings.

    Args:
        codec (:class:`mongo_persistence._codec.codec.Codec`): Decodes the key.
        doc: The document.
        where (:obj:`str`): Names the handler in errors, e.g. ``conversations['talk']``.

    Raises:
        :class:`mongo_persistence.DecodingError`: The key is not such a list.
    """
    entity = f"{where}[_id={doc.get('_id')!r}]"
    raw = doc.get("key")
    if not isinstance(raw, list):
        raise DecodingError(entity, "['key']", "the key is not an array of ids")
    key = tuple(codec.decode(raw, entity=entity))
    if not all(type(part) in (int, str) for part in key):
        raise DecodingError(entity, "['key']", "the key holds other values than ints and text")
    return key


def _keyboard(entity: str, index: int, keyboard: Any) -> tuple[str, float, dict[str, Any]]:
    path = f"['keyboards'][{index}]"
    if not isinstance(keyboard, dict) or set(keyboard) != _KEYBOARD_FIELDS:
        raise DecodingError(entity, path, f"a keyboard needs exactly {sorted(_KEYBOARD_FIELDS)}")
    uuid, access_time, buttons = (keyboard[k] for k in ("keyboard", "access_time", "buttons"))
    if not isinstance(uuid, str) or not isinstance(buttons, dict):
        raise DecodingError(entity, path, "'keyboard' must be a string, 'buttons' a document")
    if type(access_time) not in (int, float):
        raise DecodingError(entity, f"{path}['access_time']", "it is not a number")
    return uuid, float(access_time), buttons


def callback_data_from(data: Any) -> CDCData:
    """PTB's callback data cache from the decoded ``data`` field, its shape checked."""
    entity = EntityRef.callback_data().label
    if not isinstance(data, dict) or set(data) != {"keyboards", "queries"}:
        raise DecodingError(entity, "", "its 'data' field must hold 'keyboards' and 'queries'")
    if not isinstance(data["keyboards"], list):
        raise DecodingError(entity, "['keyboards']", "it is not an array")
    keyboards = [_keyboard(entity, i, keyboard) for i, keyboard in enumerate(data["keyboards"])]
    queries = data["queries"]
    if not isinstance(queries, dict) or not all(isinstance(v, str) for v in queries.values()):
        raise DecodingError(entity, "['queries']", "it must map query ids to keyboard ids")
    return keyboards, dict(queries)


def callback_data_document(data: CDCData) -> dict[str, Any]:
    """The callback data cache as its ``data`` field holds it, before encoding."""
    keyboards, queries = data
    return {
        "keyboards": [
            {"keyboard": uuid, "access_time": access_time, "buttons": buttons}
            for uuid, access_time, buttons in keyboards
        ],
        "queries": dict(queries),
    }


def decode_entity(
    codec: Codec,
    doc: Any,
    cls: Any,
    entity: str,
    bot: Any,
    *,
    copy: bool = True,
    plain: bool = False,
) -> Any:
    """An instance of the data class :paramref:`cls` from a user's, chat's or the bot's document.

    ``copy=False``: the data may share the dicts and lists of :paramref:`doc` (a document just
    read, used for nothing else; see :meth:`~mongo_persistence._codec.codec.Codec.decode`).
    ``plain``: its ``data`` is decoded already (see :func:`~mongo_persistence._codec.
    plain_bson.decode_plain`).

    Raises:
        :class:`mongo_persistence.DecodingError`: The document cannot be such an instance.
    """
    if is_scalar_class(cls):
        value = codec.decode(doc.get("data"), bot=bot, entity=entity)
        if not isinstance(value, cls):
            found = type(value).__name__
            raise DecodingError(entity, "", f"its 'data' is a {found}, not a {cls.__name__}")
        return value
    data = doc.get("data", {})
    if not isinstance(data, dict):
        raise DecodingError(
            entity, "", f"its 'data' field is a {type(data).__name__}, not a document"
        )
    decoded = data if plain else codec.decode(data, bot=bot, entity=entity, copy=copy)
    if cls is dict:
        if not isinstance(decoded, dict):
            raise DecodingError(entity, "", "its 'data' field is not a mapping")
        return decoded
    obj = cls.__new__(cls)
    if isinstance(obj, dict):
        dict.update(obj, decoded)
        if "attrs" in doc:
            obj.__dict__.update(codec.decode(doc["attrs"], bot=bot, entity=entity))
    else:
        obj.__dict__.update(decoded)
    return obj


def _fill(target: dict[str, Any], loaded: Any, *, replace: bool) -> None:
    if replace:
        target.clear()
        target.update(loaded)
    else:
        for key, value in loaded.items():
            target.setdefault(key, value)


def fill_in_place(target: Any, loaded: Any, *, replace: bool) -> None:
    """Puts what was loaded into the object PTB holds.

    ``replace=True``: :paramref:`target` becomes :paramref:`loaded` (keys and attributes);
    otherwise only the keys (attributes) it lacks are added: PTB's own win.
    """
    if isinstance(target, dict):
        _fill(target, loaded, replace=replace)
        source_attrs = getattr(loaded, "__dict__", None)
        if source_attrs is not None and hasattr(target, "__dict__"):
            if replace:
                vars(target).clear()
            vars(target).update(source_attrs)
    else:
        _fill(vars(target), vars(loaded), replace=replace)
