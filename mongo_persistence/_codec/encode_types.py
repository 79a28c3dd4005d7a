"""Encoding of the other supported types, and the table of encoders by type.

Dates and times, numbers, collections, Telegram objects, your :class:`TypeCodec` classes.
"""

from __future__ import annotations

import collections
import datetime as dtm
import decimal
import enum
import pickle
import sys
import uuid
import warnings
import zoneinfo
from collections.abc import Callable, Iterable
from typing import Any, Final

import telegram
from bson import Binary, DatetimeMS, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from telegram import Bot, TelegramObject
from telegram.warnings import PTBUserWarning

from mongo_persistence._codec.base import _UTC, _class_ref, _Fail, _type_name
from mongo_persistence._codec.encode_plain import (
    _enc_bytearray,
    _enc_dict,
    _enc_frozenset,
    _enc_int,
    _enc_list,
    _enc_plain,
    _enc_set,
    _enc_str,
    _enc_tuple,
    _Encoder,
)

__all__: list[str] = []


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
