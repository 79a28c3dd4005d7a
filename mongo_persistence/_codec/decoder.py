"""The decoder's core: the walk over a read value, and the checks of a tagged value's fields."""

from __future__ import annotations

import datetime as dtm
import os
import re
import sys
import zoneinfo
from typing import TYPE_CHECKING, Any, Final

from bson import Binary, Int64
from telegram import Bot

from mongo_persistence._codec.base import _UTC, TAG, _Fail, _items_before, _key_repr
from mongo_persistence._codec.interrupts import _InterruptWatch, _must_propagate

__all__ = ["MAX_DECODE_DEPTH"]

if TYPE_CHECKING:
    from mongo_persistence._codec.codec import Codec


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


def _dec_plain_dict(dec: _Decoder, value: dict[str, Any]) -> dict[Any, Any]:
    key = None
    out: dict[Any, Any] | None = {} if dec.copy else None
    sub = dec.dec
    try:
        for key, item in value.items():
            new = sub(item) if type(item) in _NEEDS_DECODING else item
            if out is None and new is not item:
                out = _items_before(value, key)  # copy on write (``copy=False``)
            if out is not None:
                out[key] = new
    except _Fail as exc:
        exc.path.append(_key_repr(key))
        raise
    return value if out is None else out


class _Decoder:
    __slots__ = ("bot", "codec", "copy", "decoders", "depth", "interrupts")

    def __init__(self, codec: Codec, bot: Bot | None, copy: bool = True) -> None:
        self.codec = codec
        self.bot = bot
        self.copy = copy
        self.decoders = codec._decoders
        self.depth = 0
        self.interrupts = _InterruptWatch.count

    def dec(self, value: Any) -> Any:
        """Decodes one value read (runs for every document, array, and BSON-typed scalar)."""
        cls = type(value)
        if cls is dict:
            return self.dec_document(value)
        if cls is list:
            return self.dec_array(value)
        if cls is Int64:
            return int(value)
        if cls is dtm.datetime:
            return _as_utc(value)
        if cls is Binary and value.subtype == 0:
            return bytes(value)
        return value

    def _deeper(self, value: object) -> None:
        self.depth += 1
        if self.depth > MAX_DECODE_DEPTH:
            raise _Fail(value, f"nested deeper than {MAX_DECODE_DEPTH} levels")

    def dec_document(self, value: dict[str, Any]) -> Any:
        """A document: a plain mapping, or a tagged value."""
        self._deeper(value)
        tag = value.get(TAG, _MISSING)
        out = _dec_plain_dict(self, value) if tag is _MISSING else self.dec_tagged(value, tag)
        self.depth -= 1
        return out

    def dec_tagged(self, value: dict[str, Any], tag: object) -> Any:
        """A tagged value, by its tag's decoder; whatever that raises is a :class:`_Fail`."""
        decoder = self.decoders.get(tag) if type(tag) is str else None
        if decoder is None:
            raise _Fail(value, f"unknown {TAG} tag {_brief(tag)}")
        # Tag decoders may change what they decoded (a mixed dict adds its items): always copies.
        copy, self.copy = self.copy, True
        try:
            return decoder(self, value, 0)
        except _Fail:
            raise
        except BaseException as exc:
            if _must_propagate(exc, self.interrupts):
                raise
            # Never the exception's text: it may quote the document's values.
            raise _Fail(value, f"bad {tag!r} value: {type(exc).__name__}") from None
        finally:
            self.copy = copy

    def dec_array(self, value: list[Any]) -> list[Any]:
        """An array."""
        self._deeper(value)
        index = 0
        items: list[Any] | None = [] if self.copy else None
        try:
            for index, item in enumerate(value):
                new = self.dec(item) if type(item) in _NEEDS_DECODING else item
                if items is None and new is not item:
                    items = value[:index]  # copy on write (``copy=False``)
                if items is not None:
                    items.append(new)
        except _Fail as exc:
            exc.path.append(f"[{index}]")
            raise
        self.depth -= 1
        return value if items is None else items

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
