"""The codec's shared pieces: the tag, the format version, :class:`TypeCodec`, failures."""

from __future__ import annotations

import collections
import datetime as dtm
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

__all__ = ["FORMAT_VERSION", "MAX_DEPTH", "TAG", "TypeCodec", "find_unencodable_text"]

TAG: Final = "__type__"
"""The key that marks a tagged sub-document."""

FORMAT_VERSION: Final = 2
"""The version of the encoding this codec writes, stored as ``format`` in every document.

``1`` (no ``format`` field): written by 0.1.0, dates as ISO text. ``2``: dates as BSON dates (a
plain date for an aware UTC ``datetime`` with whole milliseconds, else a tagged value holding one),
durations as total seconds. Every version is read."""

_UTC: Final = dtm.timezone.utc

MAX_DEPTH: Final = 96
"""The deepest nesting of encoded containers accepted inside an entity's data.

MongoDB rejects documents nested deeper than 100 levels; the document and its ``data`` field take
two of them, and a little room is kept for the store's own wrapping."""

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TypeCodec(Generic[T]):
    """Teaches the codec to store instances of one of your own classes.

    Example:
        .. code:: python

            point_codec = TypeCodec(
                Point, "Point", encode=lambda p: {"x": p.x, "y": p.y}, decode=lambda d: Point(**d)
            )
            persistence = MongoPersistence(uri, codecs=[point_codec])

    Args:
        type (:obj:`type`): The class. Instances of subclasses are handled too, unless a more
            specific codec is registered for them.
        name (:obj:`str`): A stable name stored in the database (``{"__type__": "custom",
            "codec": name, ...}``). Renaming the class later keeps old documents readable as long as
            the name stays.
        encode (Callable[[T], Any]): Returns a value the codec can store (encoded recursively).
        decode (Callable[[Any], T]): Rebuilds the instance from what :paramref:`encode` returned.
    """

    type: type[T]
    name: str
    encode: Callable[[T], Any]
    decode: Callable[[Any], T]


class _Fail(Exception):
    """Raised inside the encoder; the path is collected while the stack unwinds."""

    def __init__(self, value: object, reason: str) -> None:
        super().__init__(reason)
        self.value = value
        self.reason = reason
        self.path: list[str] = []
        self.containers: list[int] = []


class _TooDeep(_Fail):
    pass


def _type_name(obj: object) -> str:
    cls = type(obj)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _class_ref(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


_KEY_REPR_MAX: Final = 80
"""Longer keys are shortened in paths, so that an error message stays short."""


def _key_repr(key: object) -> str:
    try:
        shown = repr(key)
    except ValueError:  # an int beyond sys.get_int_max_str_digits()
        return f"[<{_type_name(key)} of {key.bit_length() if isinstance(key, int) else '?'} bits>]"
    if len(shown) > _KEY_REPR_MAX:
        shown = f"{shown[: _KEY_REPR_MAX - 8]}...{shown[-4:]}"
    return f"[{shown}]"


def _items_before(value: dict[Any, Any], stop: object) -> dict[Any, Any]:
    """A copy of the items of :paramref:`value` before the key :paramref:`stop`.

    Copy on write: the encoder and the decoder copy a dict from its first changed item on.
    """
    out = {}
    for key, item in value.items():
        if key is stop:
            break
        out[key] = item
    return out


def find_unencodable_text(value: Any, _path: str = "", _depth: int = 0) -> str | None:
    """Returns the path to the first string (value or key) UTF-8 cannot encode, if any.

    Only used to explain an encoding failure: BSON holds UTF-8 text, and a lone surrogate
    (a code point from U+D800 to U+DFFF on its own) has no UTF-8 form.
    """
    if _depth > MAX_DEPTH + 8:
        return None
    if isinstance(value, str):
        return None if _utf8(value) else _path
    if isinstance(value, dict):
        return _unencodable_in_dict(value, _path, _depth)
    if isinstance(value, list | tuple | set | frozenset | collections.deque):
        for index, item in enumerate(value):
            found = find_unencodable_text(item, f"{_path}[{index}]", _depth + 1)
            if found is not None:
                return found
    return None


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _unencodable_in_dict(value: dict[Any, Any], path: str, depth: int) -> str | None:
    for key, item in value.items():
        if find_unencodable_text(key, path, depth + 1) is not None:
            return path
        found = find_unencodable_text(item, f"{path}{_key_repr(key)}", depth + 1)
        if found is not None:
            return found
    return None
