"""Decoding of each tagged value, and the table of decoders by tag."""

from __future__ import annotations

import collections
import datetime as dtm
import decimal
import enum
import pickle
import re
import sys
import uuid
from collections.abc import Callable
from typing import Any, Final

import telegram
from telegram import Bot, TelegramObject

from mongo_persistence._codec.base import TAG, _Fail, _key_repr
from mongo_persistence._codec.decoder import (
    _ANY,
    _BOOL,
    _BYTES,
    _DATE,
    _DICT,
    _INT,
    _LIST,
    _MISSING,
    _STR,
    _TZ_FIELDS,
    _as_utc,
    _brief,
    _check,
    _dec_plain_dict,
    _dec_tz,
    _Decoder,
    _int_text,
    _pairs,
    _pytz_zone,
    _short_text,
    _zone,
)
from mongo_persistence._codec.encode_types import _FACTORY_BY_NAME, _telegram_slots
from mongo_persistence._codec.interrupts import _must_propagate
from mongo_persistence._codec.names import resolve_class

__all__: list[str] = []

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
