"""A lossless, Bot-aware mapping between Python values and BSON-ready values.

The codec is pure: it knows nothing about MongoDB connections. Plain JSON-like data (``str``-keyed
dicts, lists, strings, numbers, booleans, ``None``) is stored as it is. Every other supported value
becomes a small readable sub-document tagged with the key ``"__type__"``, e.g.
``{"__type__": "tuple", "value": [1, 2]}``; :meth:`Codec.decode` turns it back into the very same
type.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dtm
import decimal
import enum
import os
import pickle
import re
import signal
import sys
import threading
import types
import uuid
import warnings
import zoneinfo
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import telegram
from bson import Binary, DatetimeMS, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from telegram import Bot, TelegramObject
from telegram.warnings import PTBUserWarning

from mongo_persistence._errors import DecodingError, EncodingError

__all__ = [
    "FORMAT_VERSION",
    "TAG",
    "Codec",
    "TypeCodec",
    "resolve_class",
    "resolve_name",
    "watching_interrupts",
]

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


def find_unencodable_text(  # noqa: PLR0911, C901
    value: Any, _path: str = "", _depth: int = 0
) -> str | None:
    """Returns the path to the first string (value or key) UTF-8 cannot encode, if any.

    Only used to explain an encoding failure: BSON holds UTF-8 text, and a lone surrogate
    (a code point from U+D800 to U+DFFF on its own) has no UTF-8 form.
    """
    if _depth > MAX_DEPTH + 8:
        return None
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return _path
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if find_unencodable_text(key, _path, _depth + 1) is not None:
                return _path
            found = find_unencodable_text(item, f"{_path}{_key_repr(key)}", _depth + 1)
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple | set | frozenset | collections.deque):
        for index, item in enumerate(value):
            found = find_unencodable_text(item, f"{_path}[{index}]", _depth + 1)
            if found is not None:
                return found
    return None


class Codec:
    """Encodes Python values into BSON-ready values and back, without losing types.

    Args:
        codecs (Iterable[:class:`TypeCodec`], optional): Encoders for your own classes.
        pickle_fallback (:obj:`bool`, optional): Store values of any other type with :mod:`pickle`.
            Off by default: anyone who can write to the database can then run code in the bot.
    """

    __slots__ = ("_custom", "_custom_by_name", "_decoders", "_dispatch", "pickle_fallback")

    def __init__(self, codecs: Iterable[TypeCodec[Any]] = (), *, pickle_fallback: bool = False):
        self.pickle_fallback = pickle_fallback
        self._custom: dict[type, TypeCodec[Any]] = {}
        self._custom_by_name: dict[str, TypeCodec[Any]] = {}
        for codec in codecs:
            if codec.name in self._custom_by_name:
                raise ValueError(f"Two codecs are registered under the name {codec.name!r}")
            self._custom[codec.type] = codec
            self._custom_by_name[codec.name] = codec
        self._dispatch: dict[type, Callable[[_Encoder, Any, int], Any]] = dict(_BASE_DISPATCH)
        self._decoders: dict[str, Callable[[_Decoder, dict[str, Any], int], Any]] = dict(
            _TAG_DECODERS
        )

    # ---------------------------------------------------------------- encoding
    def encode(
        self, value: object, *, bot: Bot | None = None, entity: str = "value", copy: bool = True
    ) -> Any:
        """Turns :paramref:`value` into something :func:`bson.encode` stores losslessly.

        Args:
            value: The value.
            bot (:class:`telegram.Bot`, optional): The running bot: it is stored as a placeholder.
            entity (:obj:`str`, optional): Names the value in error messages.
            copy (:obj:`bool`, optional): :obj:`False` lets the result share the dicts and lists
                of :paramref:`value` that need no change (plain data is not copied). Only for a
                value nobody changes afterwards, such as the deep copies PTB hands over.

        Raises:
            :class:`mongo_persistence.EncodingError`: The value, or something inside it, cannot be
                stored. The message names the entity, the path to the value and its type.
        """
        encoder = _Encoder(self, bot, copy, entity)
        for attempt in range(3):
            try:
                return encoder.enc(value, 0)
            except _Fail as exc:
                parts = exc.path[::-1]
                path = "".join(parts)
                reason = exc.reason
                outermost_first = exc.containers[::-1]
                seen: set[int] = set()
                for depth, container in enumerate(outermost_first):
                    if isinstance(exc, _TooDeep) and container in seen:
                        # Name the path once around the cycle, not down to the depth limit.
                        path = "".join(parts[:depth])
                        reason = "the structure contains itself (a reference cycle)"
                        break
                    seen.add(container)
                raise EncodingError(entity, path, _type_name(exc.value), reason) from None
            except RuntimeError as exc:
                # "dictionary changed size during iteration": another thread mutates the data.
                if "changed size during iteration" not in str(exc) or attempt == 2:
                    raise EncodingError(
                        entity, "", _type_name(value), f"the data changed while it was read ({exc})"
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _resolve(self, cls: type) -> Callable[[_Encoder, Any, int], Any]:
        for klass in cls.__mro__:
            if klass in self._custom:
                handler: Callable[[_Encoder, Any, int], Any] = _enc_custom
                break
        else:
            if issubclass(cls, Bot):
                handler = _enc_bot
            elif issubclass(cls, TelegramObject):
                handler = _enc_telegram
            elif issubclass(cls, enum.Enum):
                handler = _enc_enum
            elif issubclass(cls, tuple) and hasattr(cls, "_fields"):
                handler = _enc_namedtuple
            elif self.pickle_fallback:
                handler = _enc_pickle
            else:
                handler = _enc_unsupported
        self._dispatch[cls] = handler
        return handler

    # ---------------------------------------------------------------- decoding
    def decode(self, value: Any, *, bot: Bot | None = None, entity: str = "value") -> Any:
        """Turns a value read from MongoDB back into the Python value that was stored.

        Args:
            value: What the driver returned.
            bot (:class:`telegram.Bot`, optional): The running bot: Telegram objects are bound to
                it and the bot placeholder becomes this bot.
            entity (:obj:`str`, optional): Names the value in error messages.

        Nothing read is imported or run: classes are looked up only among the modules the program
        imported (:func:`resolve_name`), every tagged value's fields are checked before anything is
        built from them, and whatever code the value's own types run (an enum's ``_missing_``, a
        :class:`TypeCodec`, ``de_json``) cannot raise anything but a
        :class:`~mongo_persistence.DecodingError`, even :class:`SystemExit`. Only a real Ctrl-C
        (a SIGINT received while decoding) propagates as :class:`KeyboardInterrupt`.

        Raises:
            :class:`mongo_persistence.DecodingError`: A tagged value cannot be restored. The
                message names the entity and the path, never the document's values.
        """
        if _InterruptWatch.users:  # the loading loop watches already (the common case)
            return self._decode(value, bot, entity)
        with watching_interrupts():
            return self._decode(value, bot, entity)

    def _decode(self, value: Any, bot: Bot | None, entity: str) -> Any:
        decoder = _Decoder(self, bot)
        try:
            return decoder.dec(value)
        except _Fail as exc:
            raise DecodingError(entity, "".join(reversed(exc.path)), exc.reason) from None
        except BaseException as exc:
            if _must_propagate(exc, decoder.interrupts):
                raise
            reason = f"decoding raised {type(exc).__name__}"
            if isinstance(exc, RecursionError):
                reason = "nested too deeply to decode"
            raise DecodingError(entity, "", reason) from None


class _Encoder:
    __slots__ = ("bot", "codec", "copy", "dispatch", "entity", "warned_unknown_bot")

    def __init__(
        self, codec: Codec, bot: Bot | None, copy: bool = True, entity: str = "value"
    ) -> None:
        self.codec = codec
        self.bot = bot
        self.copy = copy
        self.entity = entity
        self.dispatch = codec._dispatch
        # One warning per encoded value about bots other than the running one, not one per object.
        self.warned_unknown_bot = False

    def enc(self, value: Any, depth: int) -> Any:
        handler = self.dispatch.get(type(value))
        if handler is None:
            handler = self.codec._resolve(type(value))
        return handler(self, value, depth)

    def tagged(self, tag: str, depth: int, obj: object, **fields: Any) -> dict[str, Any]:
        if depth >= MAX_DEPTH:
            raise _TooDeep(obj, f"nesting deeper than {MAX_DEPTH} levels")
        return {TAG: tag, **fields}

    def seq(self, items: Iterable[Any], depth: int, container: object) -> list[Any]:
        if depth >= MAX_DEPTH:
            raise _TooDeep(container, f"nesting deeper than {MAX_DEPTH} levels")
        out: list[Any] = []
        append = out.append
        enc = self.enc
        inner = depth + 1
        index = 0
        try:
            for index, item in enumerate(items):  # noqa: B007 - index is read on failure
                kind = type(item)
                if kind in _SCALARS or (kind is int and _INT64_MIN <= item <= _INT64_MAX):
                    if kind is str and not item.isascii():
                        _check_text(item)
                    append(item)
                else:
                    append(enc(item, inner))
        except _Fail as exc:
            exc.path.append(f"[{index}]")
            exc.containers.append(id(container))
            raise
        return out


_SCALARS: Final = frozenset({str, bool, float, type(None), bytes})
"""Types stored as they are, whatever their value (``int`` needs a range check)."""


def _enc_plain(_: _Encoder, value: Any, __: int) -> Any:
    return value


def _enc_int(enc: _Encoder, value: int, depth: int) -> Any:
    if _INT64_MIN <= value <= _INT64_MAX:
        return value
    return enc.tagged("int", depth, value, value=_int_to_text(value))


def _int_to_text(value: int) -> str:
    try:
        return str(value)
    except ValueError:  # over sys.get_int_max_str_digits(): loading would refuse it too
        raise _Fail(
            value,
            f"an int of more than {sys.get_int_max_str_digits()} digits cannot be stored "
            "(Python's limit for int/str conversion, sys.set_int_max_str_digits())",
        ) from None


def _check_text(text: str, what: str = "text") -> None:
    """Fails on a string UTF-8 cannot encode (a lone surrogate): BSON holds UTF-8 text."""
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise _Fail(text, f"the {what} cannot be stored as UTF-8 ({exc.reason})") from None


def _enc_str(_: _Encoder, value: str, __: int) -> Any:
    if not value.isascii():
        _check_text(value)
    return value


def _safe_key(key: object) -> bool:
    return type(key) is str and key[:1] != "$" and key != TAG and "\x00" not in key


def _enc_dict(enc: _Encoder, value: dict[Any, Any], depth: int) -> Any:  # noqa: PLR0912, C901
    if depth >= MAX_DEPTH:
        raise _TooDeep(value, f"nesting deeper than {MAX_DEPTH} levels")
    inner = depth + 1
    sub = enc.enc
    key: Any = None
    try:
        # Copy on write: without copy=True, a dict whose values all encode to themselves is
        # returned as it is (no allocation for plain data).
        out: dict[Any, Any] | None = None
        for key, item in value.items():
            if type(key) is not str or key[:1] == "$" or key == TAG or "\x00" in key:
                break
            if not key.isascii():
                _check_text(key, "key")
            kind = type(item)
            if kind in _SCALARS or (kind is int and _INT64_MIN <= item <= _INT64_MAX):
                if kind is str and not item.isascii():
                    _check_text(item)
                if out is not None:
                    out[key] = item
                continue
            new = sub(item, inner)
            if out is None and new is not item:
                out = _items_before(value, key)
            if out is not None:
                out[key] = new
        else:
            if out is None:
                return dict(value) if enc.copy else value
            return out
        if all(type(k) is int for k in value):
            # The common case of id-keyed maps stays readable: {"__type__": "intdict", ...}.
            if inner >= MAX_DEPTH:
                raise _TooDeep(value, f"nesting deeper than {MAX_DEPTH} levels")
            out = {}
            for key, item in value.items():
                out[_int_to_text(key)] = sub(item, inner + 1)
            return {TAG: "intdict", "value": out}
        # Mixed keys: the str keys stay a readable sub-document, the others become [key, value]
        # pairs: {"__type__": "dict", "value": {"name": ...}, "items": [[3, ...]]}.
        if inner >= MAX_DEPTH:
            raise _TooDeep(value, f"nesting deeper than {MAX_DEPTH} levels")
        plain = {}
        items = []
        for key, item in value.items():
            if _safe_key(key):
                _check_text(key, "key")
                plain[key] = sub(item, inner + 1)
            else:
                items.append([sub(key, inner + 2), sub(item, inner + 2)])
        return enc.tagged("dict", depth, value, value=plain, items=items)
    except _Fail as exc:
        exc.path.append(_key_repr(key))
        exc.containers.append(id(value))
        raise


def _items_before(value: dict[Any, Any], stop: object) -> dict[Any, Any]:
    out = {}
    for key, item in value.items():
        if key is stop:
            break
        out[key] = item
    return out


def _enc_list(enc: _Encoder, value: list[Any], depth: int) -> Any:
    if enc.copy:
        return enc.seq(value, depth, value)
    if depth >= MAX_DEPTH:
        raise _TooDeep(value, f"nesting deeper than {MAX_DEPTH} levels")
    # Copy on write, as for dicts: a list of values that encode to themselves is kept.
    inner = depth + 1
    out: list[Any] | None = None
    index = 0
    try:
        for index, item in enumerate(value):
            kind = type(item)
            if kind in _SCALARS or (kind is int and _INT64_MIN <= item <= _INT64_MAX):
                if kind is str and not item.isascii():
                    _check_text(item)
                if out is not None:
                    out.append(item)
                continue
            new = enc.enc(item, inner)
            if out is None and new is not item:
                out = value[:index]
            if out is not None:
                out.append(new)
    except _Fail as exc:
        exc.path.append(f"[{index}]")
        exc.containers.append(id(value))
        raise
    return value if out is None else out


def _enc_tuple(enc: _Encoder, value: tuple[Any, ...], depth: int) -> Any:
    return enc.tagged("tuple", depth, value, value=enc.seq(value, depth + 1, value))


def _sorted_if_possible(value: set[Any] | frozenset[Any]) -> list[Any]:
    try:
        return sorted(value)
    except TypeError:
        return list(value)


def _enc_set(enc: _Encoder, value: set[Any], depth: int) -> Any:
    return enc.tagged(
        "set", depth, value, value=enc.seq(_sorted_if_possible(value), depth + 1, value)
    )


def _enc_frozenset(enc: _Encoder, value: frozenset[Any], depth: int) -> Any:
    items = enc.seq(_sorted_if_possible(value), depth + 1, value)
    return enc.tagged("frozenset", depth, value, value=items)


def _enc_bytearray(enc: _Encoder, value: bytearray, depth: int) -> Any:
    return enc.tagged("bytearray", depth, value, value=bytes(value))


def _tz_fields(value: dtm.datetime | dtm.time) -> dict[str, Any]:
    """How the zone of a datetime or time is stored, so that it loads as the same zone."""
    tzinfo = value.tzinfo
    if tzinfo is None:
        return {}
    if type(tzinfo) is dtm.timezone:
        name = tzinfo.tzname(None)
        if name != dtm.timezone(tzinfo.utcoffset(None)).tzname(None):
            return {"tzname": name}  # a named fixed offset, e.g. timezone(-5h, "EST")
        return {}
    if type(tzinfo) is zoneinfo.ZoneInfo:
        if tzinfo.key:
            return {"tz": tzinfo.key}
        raise _Fail(value, "a ZoneInfo without a key (ZoneInfo.from_file) cannot be stored")
    zone = _pytz_name(value)
    if zone is not None:
        return {"pytz": zone}
    raise _Fail(
        value,
        f"its tzinfo ({_type_name(tzinfo)}) cannot be stored faithfully; use zoneinfo.ZoneInfo, "
        "datetime.timezone or a pytz zone",
    )


def _pytz_name(value: dtm.datetime | dtm.time) -> str | None:
    """The zone name of a datetime localized with pytz (None: not a pytz zone)."""
    tzinfo = value.tzinfo
    zone = getattr(tzinfo, "zone", None)
    pytz: Any = sys.modules.get("pytz")
    if pytz is None or not isinstance(tzinfo, pytz.BaseTzInfo) or type(zone) is not str:
        return None
    if not isinstance(value, dtm.datetime):
        raise _Fail(value, "a time with a pytz zone cannot be stored (its offset is unknown)")
    again = value.astimezone(dtm.timezone.utc).astimezone(pytz.timezone(zone))
    if again.tzinfo is not tzinfo or again.replace(tzinfo=None) != value.replace(tzinfo=None):
        raise _Fail(
            value,
            "its pytz zone was not set by zone.localize() (it has the zone's first offset, often "
            "LMT); use zone.localize(naive) or a zoneinfo.ZoneInfo",
        )
    return zone


def _offset_text(offset: dtm.timedelta) -> str:
    """A UTC offset as ISO 8601 text: ``+05:30``, ``-00:00:30``, ``+01:00:00.000001``."""
    sign = "-" if offset < dtm.timedelta(0) else "+"
    offset = abs(offset)
    minutes, seconds = divmod(offset.seconds, 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    if seconds or offset.microseconds:
        text += f":{seconds:02d}"
        if offset.microseconds:
            text += f".{offset.microseconds:06d}"
    return text


def _enc_datetime(enc: _Encoder, value: dtm.datetime, depth: int) -> Any:
    # An aware UTC datetime with whole milliseconds is exactly what a BSON date holds.
    if value.tzinfo is _UTC and not value.microsecond % 1000 and not value.fold:
        return value
    # Else a real BSON date (the instant, to the millisecond; for a naive datetime its wall
    # clock read as UTC) and what it cannot hold next to it.
    offset = value.utcoffset()
    fields: dict[str, Any] = {}
    try:
        instant = value.replace(tzinfo=None) - (offset or dtm.timedelta(0))
    except OverflowError:  # the instant is before year 1 or after 9999: the ISO text of 0.1.0
        extra = _tz_fields(value)
        if value.fold:
            extra["fold"] = 1
        return enc.tagged("datetime", depth, value, value=value.isoformat(), **extra)
    fields["date"] = instant.replace(microsecond=instant.microsecond // 1000 * 1000, tzinfo=_UTC)
    if instant.microsecond % 1000:
        fields["us"] = instant.microsecond % 1000
    if offset is None:
        fields["naive"] = True
    elif value.tzinfo is not _UTC:
        fields["offset"] = _offset_text(offset)
        fields.update(_tz_fields(value))
    if value.fold:
        fields["fold"] = 1
    return enc.tagged("datetime", depth, value, **fields)


def _enc_date(enc: _Encoder, value: dtm.date, depth: int) -> Any:
    midnight = dtm.datetime(value.year, value.month, value.day, tzinfo=_UTC)
    return enc.tagged("date", depth, value, date=midnight)


def _enc_time(enc: _Encoder, value: dtm.time, depth: int) -> Any:
    # ISO text ("07:30:00", "12:15:30.123456") sorts and compares as the time of day it is.
    extra = _tz_fields(value)
    if value.fold:
        extra["fold"] = 1
    return enc.tagged("time", depth, value, value=value.isoformat(), **extra)


def _enc_timedelta(enc: _Encoder, value: dtm.timedelta, depth: int) -> Any:
    # The whole seconds of the duration (what a query compares), and the microseconds beyond.
    fields: dict[str, Any] = {"seconds": value.days * 86400 + value.seconds}
    if value.microseconds:
        fields["microseconds"] = value.microseconds
    return enc.tagged("timedelta", depth, value, **fields)


def _enc_decimal(enc: _Encoder, value: decimal.Decimal, depth: int) -> Any:
    return enc.tagged("decimal", depth, value, value=str(value))


def _enc_uuid(enc: _Encoder, value: uuid.UUID, depth: int) -> Any:
    return enc.tagged("uuid", depth, value, value=str(value))


def _enc_complex(enc: _Encoder, value: complex, depth: int) -> Any:
    return enc.tagged("complex", depth, value, value=[value.real, value.imag])


def _enc_enum(enc: _Encoder, value: enum.Enum, depth: int) -> Any:
    fields: dict[str, Any] = {"class": _class_ref(type(value)), "name": value.name}
    if isinstance(value, enum.Flag):
        # A combination (R|W) or an empty flag has no member name of its own: keep the value.
        fields["value"] = enc.enc(value.value, depth + 1)
    return enc.tagged("enum", depth, value, **fields)


def _enc_namedtuple(enc: _Encoder, value: tuple[Any, ...], depth: int) -> Any:
    items = enc.seq(value, depth + 1, value)
    return enc.tagged(
        "namedtuple", depth, value, **{"class": _class_ref(type(value)), "value": items}
    )


def _enc_ordereddict(enc: _Encoder, value: collections.OrderedDict[Any, Any], depth: int) -> Any:
    pairs = enc.seq(([k, v] for k, v in value.items()), depth + 1, value)
    return enc.tagged("OrderedDict", depth, value, items=pairs)


def _enc_counter(enc: _Encoder, value: collections.Counter[Any], depth: int) -> Any:
    return enc.tagged("Counter", depth, value, value=_enc_dict(enc, dict(value), depth + 1))


def _enc_deque(enc: _Encoder, value: collections.deque[Any], depth: int) -> Any:
    items = enc.seq(value, depth + 1, value)
    return enc.tagged("deque", depth, value, value=items, maxlen=value.maxlen)


_FACTORIES: Final[dict[Any, str]] = {
    None: "None",
    list: "list",
    dict: "dict",
    set: "set",
    int: "int",
    float: "float",
    str: "str",
    tuple: "tuple",
    frozenset: "frozenset",
}
_FACTORY_BY_NAME: Final = {name: factory for factory, name in _FACTORIES.items()}


def _enc_defaultdict(enc: _Encoder, value: collections.defaultdict[Any, Any], depth: int) -> Any:
    factory = _FACTORIES.get(value.default_factory)
    if factory is None:
        raise _Fail(
            value,
            f"a defaultdict's default_factory must be one of {', '.join(_FACTORY_BY_NAME)} "
            f"to be stored, not {value.default_factory!r}",
        )
    payload = _enc_dict(enc, dict(value), depth + 1)
    return enc.tagged("defaultdict", depth, value, factory=factory, value=payload)


def _enc_bot(enc: _Encoder, value: Bot, depth: int) -> Any:
    if value is enc.bot:
        return enc.tagged("bot", depth, value)
    if not enc.warned_unknown_bot:
        enc.warned_unknown_bot = True
        warnings.warn(
            f"Unknown bot instance found. A telegram.Bot other than the application's bot is in "
            f"{enc.entity}: it is stored as an unknown bot and will be loaded as None.",
            PTBUserWarning,
            stacklevel=2,
        )
    return enc.tagged("bot", depth, value, unknown=True)


def _telegram_class_name(cls: type) -> str:
    if getattr(telegram, cls.__name__, None) is cls:
        return str(cls.__name__)
    return _class_ref(cls)


def _telegram_slots(cls: type) -> Iterable[str]:
    """The slot names of a TelegramObject class, its bases included."""
    for klass in cls.__mro__[:-1]:
        slots = klass.__dict__.get("__slots__", ())
        yield from (slots,) if isinstance(slots, str) else (s for s in slots if s[:2] != "__")


def _telegram_state(value: TelegramObject) -> dict[str, Any]:
    """What PicklePersistence pickles of a TelegramObject, without what its loader fills in.

    Attribute values of ``None`` held in slots and an empty ``api_kwargs`` are left out (the
    decoder puts them back), so the stored state stays close to what the object shows.
    """
    state: dict[str, Any] = value._get_attrs(include_private=True)
    slots = set(_telegram_slots(type(value)))
    out = {k: v for k, v in state.items() if v is not None or k not in slots}
    api_kwargs = out.pop("api_kwargs", None)
    if api_kwargs:
        out["api_kwargs"] = dict(api_kwargs)
    return out


def _enc_telegram(enc: _Encoder, value: TelegramObject, depth: int) -> Any:
    # The object's state (as PicklePersistence keeps it) rather than to_dict(): private
    # attributes, naive dates, subclasses with their own __init__ and the bot binding (the
    # running bot, another bot, none) all come back as they were.
    try:
        state = _telegram_state(value)
    except Exception as exc:
        raise _Fail(value, f"its state cannot be read: {exc!r}") from exc
    try:
        payload = _enc_dict(enc, state, depth + 1)
    except _Fail as exc:
        exc.path.append(f".{type(value).__name__}")
        exc.containers.append(id(value))
        raise
    return enc.tagged(
        "telegram", depth, value, **{"class": _telegram_class_name(type(value)), "state": payload}
    )


def _enc_custom(enc: _Encoder, value: Any, depth: int) -> Any:
    codec = next(enc.codec._custom[k] for k in type(value).__mro__ if k in enc.codec._custom)
    try:
        raw = codec.encode(value)
    except Exception as exc:
        raise _Fail(value, f"the encoder of codec {codec.name!r} failed: {exc!r}") from exc
    try:
        payload = enc.enc(raw, depth + 1)
    except _Fail as exc:
        exc.path.append(f"<codec {codec.name!r}>")
        exc.containers.append(id(value))
        raise
    return enc.tagged("custom", depth, value, codec=codec.name, value=payload)


def _enc_pickle(enc: _Encoder, value: Any, depth: int) -> Any:
    try:
        blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise _Fail(value, f"it cannot be pickled either: {exc!r}") from exc
    return enc.tagged("pickle", depth, value, value=Binary(blob))


def _enc_unsupported(_: _Encoder, value: Any, __: int) -> Any:
    raise _Fail(
        value,
        "this type is not supported; register a TypeCodec for it (MongoPersistence(codecs=[...])) "
        "or store plain data instead",
    )


_BASE_DISPATCH: dict[type, Callable[[_Encoder, Any, int], Any]] = {
    str: _enc_str,
    bool: _enc_plain,
    float: _enc_plain,
    type(None): _enc_plain,
    bytes: _enc_plain,
    ObjectId: _enc_plain,
    Decimal128: _enc_plain,
    Regex: _enc_plain,
    Timestamp: _enc_plain,
    MinKey: _enc_plain,
    MaxKey: _enc_plain,
    Int64: _enc_plain,
    DatetimeMS: _enc_plain,
    int: _enc_int,
    dict: _enc_dict,
    list: _enc_list,
    tuple: _enc_tuple,
    set: _enc_set,
    frozenset: _enc_frozenset,
    bytearray: _enc_bytearray,
    dtm.datetime: _enc_datetime,
    dtm.date: _enc_date,
    dtm.time: _enc_time,
    dtm.timedelta: _enc_timedelta,
    decimal.Decimal: _enc_decimal,
    uuid.UUID: _enc_uuid,
    complex: _enc_complex,
    collections.OrderedDict: _enc_ordereddict,
    collections.Counter: _enc_counter,
    collections.deque: _enc_deque,
    collections.defaultdict: _enc_defaultdict,
}


# ==================================================================== decoding
_NEEDS_DECODING: Final = frozenset({dict, list, Int64, Binary, dtm.datetime})

MAX_DECODE_DEPTH: Final = 100
"""The deepest nesting of documents and arrays :meth:`Codec.decode` accepts (MongoDB's limit).

Anything this library wrote is well within it; a deeper value (from a server that accepts more)
is a :class:`~mongo_persistence.DecodingError`, never a :class:`RecursionError`."""

_MISSING: Final = object()
_STR: Final = (str,)
_INT: Final = (int, Int64)
_LIST: Final = (list,)
_DICT: Final = (dict,)
_BYTES: Final = (bytes, Binary)
_DATE: Final = (dtm.datetime,)
_BOOL: Final = (bool,)
_ANY: Final = ()
_INT_TEXT: Final = re.compile(r"-?(?:0|[1-9][0-9]*)")
_ZONE_KEY: Final = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*")
_SHORT_TEXT: Final = 64
"""The longest text field of a date, time or zone a tag may hold."""

_BSON_NAMES: Final[dict[type, str]] = {
    str: "a string",
    int: "an int",
    Int64: "an int",
    float: "a double",
    bool: "a bool",
    type(None): "null",
    dict: "a document",
    list: "an array",
    bytes: "binary data",
    Binary: "binary data",
    dtm.datetime: "a date",
}


def _bson_name(value: object) -> str:
    return _BSON_NAMES.get(type(value), type(value).__name__)


def _brief(text: object, limit: int = 60) -> str:
    """A short repr of a name read from a document (tags, classes, codecs), for messages."""
    shown = repr(text)
    return shown if len(shown) <= limit else f"{shown[: limit - 4]}...{shown[-1]}"


def resolve_name(ref: str) -> object:
    """Finds ``"module:qualname"`` among the modules the program has already imported.

    Nothing is imported and no code runs: the module must be in :data:`sys.modules`, and each part
    of the qualified name is looked up in the ``__dict__`` of the module or of the class (and its
    bases), so no module ``__getattr__``, property or other descriptor is called.

    Args:
        ref (:obj:`str`): E.g. ``"mybot.states:State"``, as written by the codec.

    Returns:
        :class:`object`: What the name refers to.

    Raises:
        :class:`LookupError`: The reference is malformed, its module is not imported, or the name
            does not exist there.
    """
    if type(ref) is not str or len(ref) > 1000:
        raise LookupError("a class reference must be a 'module:qualname' string")
    module_name, sep, qualname = ref.partition(":")
    parts = qualname.split(".")
    if not sep or not all(p.isidentifier() for p in [*module_name.split("."), *parts]):
        raise LookupError("a class reference must be a 'module:qualname' string")
    module = sys.modules.get(module_name)
    if module is None:
        raise LookupError(f"module {module_name!r} is not imported by the program")
    obj: object = module
    for part in parts:
        namespaces = [vars(obj)] if isinstance(obj, types.ModuleType) else _class_dicts(obj)
        for namespace in namespaces:
            if part in namespace:
                obj = namespace[part]
                break
        else:
            raise LookupError(f"{qualname!r} is not defined in module {module_name!r}")
    return obj


def _class_dicts(obj: object) -> list[Any]:
    if not isinstance(obj, type):
        return []
    return [vars(klass) for klass in obj.__mro__]


def resolve_class(ref: str) -> type:
    """Like :func:`resolve_name`, for a class.

    Args:
        ref (:obj:`str`): E.g. ``"mybot.states:State"``.

    Returns:
        :obj:`type`: The class.

    Raises:
        :class:`LookupError`: As :func:`resolve_name`, or the name is not a class.
    """
    obj = resolve_name(ref)
    if not isinstance(obj, type):
        raise LookupError(f"{ref!r} is not a class")
    return obj


class _InterruptWatch:
    """Tells a real Ctrl-C from a :class:`KeyboardInterrupt` raised by code run while decoding.

    While :func:`watching_interrupts` is active in the main thread, the SIGINT handler is wrapped
    so that every SIGINT delivered is counted before the program's own handler runs (and raises
    :class:`KeyboardInterrupt`, or cancels the main task). Python delivers signals to the main
    thread only, so elsewhere (or with no Python-level handler) a :class:`KeyboardInterrupt` is
    never a real one.
    """

    users = 0
    count = 0
    installed: tuple[Any, Any] | None = None

    @classmethod
    def restore(cls) -> None:
        """Puts the program's handler back once no block watches any more."""
        if cls.users or cls.installed is None:
            return
        counting, previous = cls.installed
        cls.installed = None
        if signal.getsignal(signal.SIGINT) is counting:
            signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def watching_interrupts() -> Iterator[None]:
    """Counts the SIGINTs delivered while the block runs (see :class:`_InterruptWatch`).

    Re-entrant, also across concurrent tasks (the handler is restored when the last block ends);
    does nothing outside the main thread or when SIGINT has no Python handler.
    """
    if _InterruptWatch.users:
        _InterruptWatch.users += 1
        try:
            yield
        finally:
            _InterruptWatch.users -= 1
            _InterruptWatch.restore()
        return
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield
        return

    def counting(signum: int, frame: types.FrameType | None) -> Any:
        _InterruptWatch.count += 1
        return previous(signum, frame)

    try:
        signal.signal(signal.SIGINT, counting)
    except ValueError:  # not the main interpreter
        yield
        return
    _InterruptWatch.users = 1
    _InterruptWatch.installed = (counting, previous)
    try:
        yield
    finally:
        _InterruptWatch.users -= 1
        _InterruptWatch.restore()


def _must_propagate(exc: BaseException, interrupts_before: int) -> bool:
    """Tells whether an exception raised while decoding is a real Ctrl-C, which propagates.

    A :class:`KeyboardInterrupt` raised by code does not. Decoding is synchronous: an
    :class:`asyncio.CancelledError` inside it was raised by code, never by a cancellation of the
    task, which arrives at the next ``await``.
    """
    return isinstance(exc, KeyboardInterrupt) and _InterruptWatch.count > interrupts_before


def _dec_plain_dict(dec: _Decoder, value: dict[str, Any]) -> dict[Any, Any]:
    key = None
    out = {}
    sub = dec.dec
    try:
        for key, item in value.items():
            out[key] = sub(item) if type(item) in _NEEDS_DECODING else item
    except _Fail as exc:
        exc.path.append(_key_repr(key))
        raise
    return out


class _Decoder:
    __slots__ = ("bot", "codec", "decoders", "depth", "interrupts")

    def __init__(self, codec: Codec, bot: Bot | None) -> None:
        self.codec = codec
        self.bot = bot
        self.decoders = codec._decoders
        self.depth = 0
        self.interrupts = _InterruptWatch.count

    def dec(self, value: Any) -> Any:  # noqa: PLR0911, PLR0912, C901 - one function: runs for every value
        cls = type(value)
        if cls is dict:
            self.depth += 1
            if self.depth > MAX_DECODE_DEPTH:
                raise _Fail(value, f"nested deeper than {MAX_DECODE_DEPTH} levels")
            tag = value.get(TAG, _MISSING)
            if tag is _MISSING:
                out = _dec_plain_dict(self, value)
                self.depth -= 1
                return out
            decoder = self.decoders.get(tag) if type(tag) is str else None
            if decoder is None:
                raise _Fail(value, f"unknown {TAG} tag {_brief(tag)}")
            try:
                result = decoder(self, value, 0)
            except _Fail:
                raise
            except BaseException as exc:
                if _must_propagate(exc, self.interrupts):
                    raise
                # Never the exception's text: it may quote the document's values.
                raise _Fail(value, f"bad {tag!r} value: {type(exc).__name__}") from None
            self.depth -= 1
            return result
        if cls is list:
            self.depth += 1
            if self.depth > MAX_DECODE_DEPTH:
                raise _Fail(value, f"nested deeper than {MAX_DECODE_DEPTH} levels")
            index = 0
            try:
                items: list[Any] = []
                append = items.append
                for index, item in enumerate(value):  # noqa: B007 - read on failure
                    append(self.dec(item) if type(item) in _NEEDS_DECODING else item)
            except _Fail as exc:
                exc.path.append(f"[{index}]")
                raise
            self.depth -= 1
            return items
        if cls is Int64:
            return int(value)
        if cls is dtm.datetime:
            return _as_utc(value)
        if cls is Binary and value.subtype == 0:
            return bytes(value)
        return value

    def dec_dict(self, doc: dict[str, Any], field: str) -> dict[Any, Any]:
        """Decodes a field that must hold a mapping (a plain or a tagged document)."""
        decoded = self.dec(doc[field])
        if not isinstance(decoded, dict):
            raise _Fail(doc, f"bad {doc[TAG]!r} value: field {field!r} is not a mapping")
        return decoded


def _check(
    doc: dict[str, Any],
    required: dict[str, tuple[type, ...]],
    optional: dict[str, tuple[type, ...]] | None = None,
) -> None:
    """Checks that a tagged value has exactly these fields, of exactly these BSON types."""
    tag = doc[TAG]
    for key, value in doc.items():
        if key == TAG:
            continue
        kinds = required.get(key)
        if kinds is None:
            kinds = optional.get(key) if optional else None
            if kinds is None:
                raise _Fail(doc, f"bad {tag!r} value: unexpected field {_brief(key)}")
        if kinds and type(value) not in kinds:
            expected = " or ".join(dict.fromkeys(_BSON_NAMES.get(k, k.__name__) for k in kinds))
            raise _Fail(
                doc, f"bad {tag!r} value: field {key!r} must be {expected}, not {_bson_name(value)}"
            )
    for key in required:
        if key not in doc:
            raise _Fail(doc, f"bad {tag!r} value: field {key!r} is missing")


def _short_text(doc: dict[str, Any], field: str) -> str:
    text: str = doc[field]
    if len(text) > _SHORT_TEXT:
        raise _Fail(doc, f"bad {doc[TAG]!r} value: field {field!r} is too long")
    return text


def _pairs(doc: dict[str, Any], field: str) -> list[list[Any]]:
    pairs: list[Any] = doc[field]
    for index, pair in enumerate(pairs):
        if type(pair) is not list or len(pair) != 2:
            raise _Fail(doc, f"bad {doc[TAG]!r} value: {field}[{index}] is not a [key, value] pair")
    return pairs


def _int_text(doc: dict[str, Any], text: str) -> int:
    if len(text) > sys.get_int_max_str_digits() + 1 or not _INT_TEXT.fullmatch(text):
        raise _Fail(doc, f"bad {doc[TAG]!r} value: not the decimal text of an int")
    return int(text)


def _zone(doc: dict[str, Any], key: str) -> zoneinfo.ZoneInfo:
    """The zone named ``key``, never importing anything.

    Only from a file of the system's time zone database, or from the ``tzdata`` package when the
    program imported it (for an unknown key, :class:`zoneinfo.ZoneInfo` would import ``tzdata``).
    """
    if not _ZONE_KEY.fullmatch(key) or (
        "tzdata" not in sys.modules
        and not any(os.path.isfile(os.path.join(root, key)) for root in zoneinfo.TZPATH)
    ):
        raise _Fail(doc, f"bad {doc[TAG]!r} value: unknown time zone")
    return zoneinfo.ZoneInfo(key)


def _pytz_zone(doc: dict[str, Any], key: str) -> dtm.tzinfo:
    pytz: Any = sys.modules.get("pytz")
    if pytz is None:
        raise _Fail(doc, f"bad {doc[TAG]!r} value: stored with a pytz zone, pytz is not imported")
    if key not in pytz.all_timezones_set:  # else pytz.timezone() may import pkg_resources
        raise _Fail(doc, f"bad {doc[TAG]!r} value: unknown time zone")
    zone: dtm.tzinfo = pytz.timezone(key)
    return zone


_TZ_FIELDS: Final = {"tz": _STR, "tzname": _STR, "pytz": _STR, "fold": _INT}


def _dec_tz(doc: dict[str, Any], parsed: Any) -> Any:
    if "tz" in doc:
        parsed = parsed.replace(tzinfo=_zone(doc, _short_text(doc, "tz")))
    elif "tzname" in doc:
        if parsed.utcoffset() is None:
            raise _Fail(doc, f"bad {doc[TAG]!r} value: a tzname without an offset")
        parsed = parsed.replace(tzinfo=dtm.timezone(parsed.utcoffset(), _short_text(doc, "tzname")))
    elif "pytz" in doc:
        zone: Any = _pytz_zone(doc, _short_text(doc, "pytz"))
        if not isinstance(parsed, dtm.datetime) or parsed.utcoffset() is None:
            raise _Fail(doc, f"bad {doc[TAG]!r} value: a pytz zone without an offset")
        # via UTC: astimezone() returns a datetime unchanged when it already has this tzinfo
        parsed = parsed.astimezone(dtm.timezone.utc).astimezone(zone)
    fold = doc.get("fold", 0)
    if fold not in (0, 1):
        raise _Fail(doc, f"bad {doc[TAG]!r} value: field 'fold' must be 0 or 1")
    if fold:
        parsed = parsed.replace(fold=1)
    return parsed


def _as_utc(value: dtm.datetime) -> dtm.datetime:
    """A BSON date as the driver returned it, as an aware UTC datetime.

    Naive (the driver's default, ``tz_aware=False``) means UTC; a client made with
    ``tz_aware=True`` returns it in its ``tzinfo``.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=_UTC)
    if value.tzinfo is _UTC:
        return value
    return value.astimezone(_UTC)


_OFFSET_TEXT: Final = re.compile(r"([+-])([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{6}))?)?")
_DATETIME_FIELDS: Final = {"us": _INT, "naive": _BOOL, "offset": _STR, **_TZ_FIELDS}


def _offset(doc: dict[str, Any]) -> dtm.timedelta:
    match = _OFFSET_TEXT.fullmatch(doc["offset"])
    if match is None:
        raise _Fail(doc, f"bad {doc[TAG]!r} value: field 'offset' is not a UTC offset")
    sign, hours, minutes, seconds, micros = match.groups()
    if int(hours) > 23 or int(minutes) > 59 or int(seconds or 0) > 59:
        raise _Fail(doc, f"bad {doc[TAG]!r} value: field 'offset' is out of range")
    offset = dtm.timedelta(
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(seconds or 0),
        microseconds=int(micros or 0),
    )
    return -offset if sign == "-" else offset


def _dec_datetime(_: _Decoder, doc: dict[str, Any], __: int) -> Any:
    if "value" in doc:  # format 1 (0.1.0), or an instant BSON cannot hold: ISO text
        _check(doc, {"value": _STR}, _TZ_FIELDS)
        return _dec_tz(doc, dtm.datetime.fromisoformat(_short_text(doc, "value")))
    _check(doc, {"date": _DATE}, _DATETIME_FIELDS)
    tag = doc[TAG]
    instant = _as_utc(doc["date"])
    micros = doc.get("us", 0)
    if not 0 <= micros <= 999 or instant.microsecond % 1000:
        raise _Fail(doc, f"bad {tag!r} value: field 'us' must be 0 to 999")
    instant += dtm.timedelta(microseconds=int(micros))
    fold = doc.get("fold", 0)
    if fold not in (0, 1):
        raise _Fail(doc, f"bad {tag!r} value: field 'fold' must be 0 or 1")
    return _dec_datetime_zone(doc, instant, fold)


def _dec_datetime_zone(doc: dict[str, Any], instant: dtm.datetime, fold: int) -> dtm.datetime:
    """The datetime of an instant (aware UTC) in the zone, offset or naive form of its tag."""
    tag = doc[TAG]
    zone_fields = [key for key in ("tz", "tzname", "pytz") if key in doc]
    if "naive" in doc:
        if doc["naive"] is not True or "offset" in doc or zone_fields:
            raise _Fail(doc, f"bad {tag!r} value: 'naive' must be true, without offset or zone")
        return instant.replace(tzinfo=None, fold=fold)
    if "offset" not in doc:
        if zone_fields:
            raise _Fail(doc, f"bad {tag!r} value: a time zone without an offset")
        return instant.replace(fold=fold)
    if len(zone_fields) > 1:
        raise _Fail(doc, f"bad {tag!r} value: more than one time zone")
    offset = _offset(doc)
    result = _dec_zoned(doc, instant, offset, fold)
    if result.utcoffset() != offset:
        raise _Fail(doc, f"bad {tag!r} value: the offset is not the zone's at that time")
    return result


def _dec_zoned(
    doc: dict[str, Any], instant: dtm.datetime, offset: dtm.timedelta, fold: int
) -> dtm.datetime:
    tag = doc[TAG]
    wall = (instant + offset).replace(tzinfo=None, fold=fold)
    result: dtm.datetime
    if "tz" in doc:
        result = wall.replace(tzinfo=_zone(doc, _short_text(doc, "tz")))
    elif "pytz" in doc:
        result = instant.astimezone(_pytz_zone(doc, _short_text(doc, "pytz")))
        if fold:
            raise _Fail(doc, f"bad {tag!r} value: a pytz zone has no fold")
    elif "tzname" in doc:
        result = wall.replace(tzinfo=dtm.timezone(offset, _short_text(doc, "tzname")))
    else:
        result = wall.replace(tzinfo=dtm.timezone(offset))
    return result


def _dec_time(_: _Decoder, doc: dict[str, Any], __: int) -> Any:
    _check(doc, {"value": _STR}, _TZ_FIELDS)
    return _dec_tz(doc, dtm.time.fromisoformat(_short_text(doc, "value")))


def _dec_date(_: _Decoder, doc: dict[str, Any], __: int) -> Any:
    if "value" in doc:  # format 1 (0.1.0): ISO text
        _check(doc, {"value": _STR})
        return dtm.date.fromisoformat(_short_text(doc, "value"))
    _check(doc, {"date": _DATE})
    midnight = _as_utc(doc["date"])
    if midnight.time() != dtm.time(0):
        raise _Fail(doc, "bad 'date' value: field 'date' must be a midnight UTC")
    return midnight.date()


def _dec_timedelta(_: _Decoder, doc: dict[str, Any], __: int) -> Any:
    if "days" in doc:  # format 1 (0.1.0)
        _check(doc, {"days": _INT, "seconds": _INT, "microseconds": _INT})
        return dtm.timedelta(
            days=int(doc["days"]),
            seconds=int(doc["seconds"]),
            microseconds=int(doc["microseconds"]),
        )
    _check(doc, {"seconds": _INT}, {"microseconds": _INT})
    micros = doc.get("microseconds", 0)
    if not 0 <= micros <= 999_999:
        raise _Fail(doc, "bad 'timedelta' value: field 'microseconds' must be 0 to 999999")
    return dtm.timedelta(seconds=int(doc["seconds"]), microseconds=int(micros))


def _dec_resolved_class(doc: dict[str, Any], base: type) -> type:
    try:
        cls = resolve_class(doc["class"])
    except LookupError as exc:
        raise _Fail(doc, f"cannot find class {_brief(doc['class'])}: {exc}") from None
    if not issubclass(cls, base):
        raise _Fail(doc, f"{_brief(doc['class'])} is not a {base.__name__}")
    return cls


def _dec_enum(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
    # A flag's combination (R|W) or empty flag has no name: its value is stored.
    _check(doc, {"class": _STR, "name": (str, type(None))}, {"value": _ANY})
    cls: Any = _dec_resolved_class(doc, enum.Enum)
    if "value" in doc:
        return cls(dec.dec(doc["value"]))
    member = cls.__members__.get(doc["name"]) if type(doc["name"]) is str else None
    if member is None:
        raise _Fail(doc, f"{_brief(doc['class'])} has no member {_brief(doc['name'])}")
    return member


def _dec_namedtuple(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
    _check(doc, {"class": _STR, "value": _LIST})
    cls: Any = _dec_resolved_class(doc, tuple)
    fields = vars(cls).get("_fields")
    if type(fields) is not tuple or not all(type(f) is str for f in fields):
        raise _Fail(doc, f"{_brief(doc['class'])} is not a namedtuple")
    items = dec.dec(doc["value"])
    if len(items) != len(fields):
        raise _Fail(doc, f"bad 'namedtuple' value: {len(fields)} fields, {len(items)} values")
    return tuple.__new__(cls, items)  # what namedtuple's _make does, without calling any method


def _dec_defaultdict(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
    _check(doc, {"factory": _STR, "value": _DICT})
    factory = _FACTORY_BY_NAME.get(doc["factory"], _MISSING)
    if factory is _MISSING:
        raise _Fail(doc, f"bad 'defaultdict' value: unknown factory {_brief(doc['factory'])}")
    return collections.defaultdict(factory, dec.dec_dict(doc, "value"))


def _telegram_class(doc: dict[str, Any]) -> Any:
    name = doc["class"]
    cls: Any = vars(telegram).get(name) if ":" not in name else None
    if cls is None:
        return _dec_resolved_class(doc, TelegramObject)
    if not isinstance(cls, type) or not issubclass(cls, TelegramObject) or issubclass(cls, Bot):
        raise _Fail(doc, f"{_brief(name)} is not a TelegramObject")
    return cls


def _dec_telegram(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
    if "state" not in doc:  # written by 0.1: the Bot API JSON of to_dict()
        _check(doc, {"class": _STR, "value": _DICT})
        return _telegram_class(doc).de_json(dec.dec(doc["value"]), dec.bot)
    _check(doc, {"class": _STR, "state": _DICT})
    cls: Any = _telegram_class(doc)
    stored = dec.dec(doc["state"])
    if not all(type(k) is str and k.isidentifier() and k[:2] != "__" for k in stored):
        raise _Fail(doc, "bad 'telegram' value: its state holds a key that is no attribute name")
    if not (stored.get("_bot") is None or isinstance(stored["_bot"], Bot)):
        raise _Fail(doc, "bad 'telegram' value: its '_bot' is not a bot")
    if not isinstance(stored.get("api_kwargs", {}), dict):
        raise _Fail(doc, "bad 'telegram' value: its 'api_kwargs' is not a document")
    state: dict[str, Any] = dict.fromkeys(_telegram_slots(cls))
    state["api_kwargs"] = {}
    state.update(stored)
    obj = cls.__new__(cls)
    obj.__setstate__(state)
    return obj


def _dec_bot(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
    _check(doc, {}, {"unknown": (bool,)})
    if doc.get("unknown"):
        return None
    return dec.bot


def _dec_custom(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
    _check(doc, {"codec": _STR, "value": _ANY})
    codec = dec.codec._custom_by_name.get(doc["codec"])
    if codec is None:
        raise _Fail(doc, f"no TypeCodec named {_brief(doc['codec'])} is registered")
    value = dec.dec(doc["value"])
    try:
        return codec.decode(value)
    except BaseException as exc:
        if _must_propagate(exc, dec.interrupts):
            raise
        raise _Fail(
            doc, f"the decoder of codec {codec.name!r} failed: {type(exc).__name__}"
        ) from None


def _dec_pickle(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
    _check(doc, {"value": _BYTES})
    if not dec.codec.pickle_fallback:
        raise _Fail(
            doc,
            "this value was stored with pickle; pass pickle_fallback=True to load it "
            "(only if you trust everyone who can write to the database)",
        )
    return pickle.loads(bytes(doc["value"]))  # noqa: S301 - explicit opt-in


def _dec_dict_items(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
    _check(doc, {"items": _LIST}, {"value": _DICT})
    value = doc.get("value", {})
    if TAG in value:
        raise _Fail(doc, "bad 'dict' value: field 'value' must be a plain document")
    out = _dec_plain_dict(dec, value)
    for index, (key, item) in enumerate(_pairs(doc, "items")):
        try:
            out[dec.dec(key)] = dec.dec(item)
        except _Fail as exc:
            exc.path.append(f"[<item {index}>]")
            raise
    return out


def _dec_intdict(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
    _check(doc, {"value": _DICT})
    key = None
    out = {}
    try:
        for key, item in doc["value"].items():
            out[_int_text(doc, key)] = dec.dec(item)
    except _Fail as exc:
        exc.path.append(_key_repr(key))
        raise
    return out


def _dec_list_of(
    kind: Callable[[list[Any]], Any],
) -> Callable[[_Decoder, dict[str, Any], int], Any]:
    def decode(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
        _check(doc, {"value": _LIST})
        return kind(dec.dec(doc["value"]))

    return decode


def _dec_int(_: _Decoder, doc: dict[str, Any], __: int) -> Any:
    _check(doc, {"value": _STR})
    return _int_text(doc, doc["value"])


def _dec_bytearray(_: _Decoder, doc: dict[str, Any], __: int) -> Any:
    _check(doc, {"value": _BYTES})
    return bytearray(bytes(doc["value"]))  # a copy of the document's own bytes, no more


def _dec_decimal(_: _Decoder, doc: dict[str, Any], __: int) -> Any:
    _check(doc, {"value": _STR})
    return decimal.Decimal(doc["value"])


def _dec_uuid(_: _Decoder, doc: dict[str, Any], __: int) -> Any:
    _check(doc, {"value": _STR})
    return uuid.UUID(_short_text(doc, "value"))


def _dec_complex(_: _Decoder, doc: dict[str, Any], __: int) -> Any:
    _check(doc, {"value": _LIST})
    parts = doc["value"]
    if len(parts) != 2 or not all(type(p) is float for p in parts):
        raise _Fail(doc, "bad 'complex' value: field 'value' must be [real, imag] doubles")
    return complex(parts[0], parts[1])


def _dec_ordereddict(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
    _check(doc, {"items": _LIST})
    return collections.OrderedDict((dec.dec(k), dec.dec(v)) for k, v in _pairs(doc, "items"))


def _dec_counter(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
    _check(doc, {"value": _DICT})
    return collections.Counter(dec.dec_dict(doc, "value"))


def _dec_deque(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
    _check(doc, {"value": _LIST, "maxlen": (*_INT, type(None))}, {})
    maxlen = doc["maxlen"]
    if maxlen is not None and not 0 <= maxlen <= sys.maxsize:
        raise _Fail(doc, "bad 'deque' value: field 'maxlen' is out of range")
    items = dec.dec(doc["value"])
    if maxlen is not None and len(items) > maxlen:
        raise _Fail(doc, "bad 'deque' value: more items than its maxlen")
    return collections.deque(items, None if maxlen is None else int(maxlen))


_TAG_DECODERS: dict[str, Callable[[_Decoder, dict[str, Any], int], Any]] = {
    "tuple": _dec_list_of(tuple),
    "set": _dec_list_of(set),
    "frozenset": _dec_list_of(frozenset),
    "dict": _dec_dict_items,
    "intdict": _dec_intdict,
    "int": _dec_int,
    "bytearray": _dec_bytearray,
    "datetime": _dec_datetime,
    "date": _dec_date,
    "time": _dec_time,
    "timedelta": _dec_timedelta,
    "decimal": _dec_decimal,
    "uuid": _dec_uuid,
    "complex": _dec_complex,
    "enum": _dec_enum,
    "namedtuple": _dec_namedtuple,
    "OrderedDict": _dec_ordereddict,
    "Counter": _dec_counter,
    "deque": _dec_deque,
    "defaultdict": _dec_defaultdict,
    "telegram": _dec_telegram,
    "bot": _dec_bot,
    "custom": _dec_custom,
    "pickle": _dec_pickle,
}
