"""A lossless, Bot-aware mapping between Python values and BSON-ready values.

The codec is pure: it knows nothing about MongoDB connections. Plain JSON-like data (``str``-keyed
dicts, lists, strings, numbers, booleans, ``None``) is stored as it is. Every other supported value
becomes a small readable sub-document tagged with the key ``"__type__"``, e.g.
``{"__type__": "tuple", "value": [1, 2]}``; :meth:`Codec.decode` turns it back into the very same
type.
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
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import telegram
from bson import Binary, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from telegram import Bot, TelegramObject
from telegram.warnings import PTBUserWarning

from mongo_persistence.errors import DecodingError, EncodingError

__all__ = ["TAG", "Codec", "TypeCodec"]

TAG: Final = "__type__"
"""The key that marks a tagged sub-document."""

MAX_DEPTH: Final = 96
"""The deepest nesting of encoded containers accepted inside an entity's data.

MongoDB rejects documents nested deeper than 100 levels; the document and its ``data`` field take
two of them, and a little room is kept for the store's own wrapping."""

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

T = TypeVar("T")


@dataclass(frozen=True)
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


def _resolve_class(ref: str) -> type:
    """Finds ``module:qualname`` among the modules the program has already imported.

    Only already imported modules (or submodules of imported packages) are looked at, so a crafted
    document cannot make the bot import arbitrary code.
    """
    module_name, _, qualname = ref.partition(":")
    module = sys.modules.get(module_name)
    if module is None:
        top = module_name.partition(".")[0]
        if top not in sys.modules:
            raise LookupError(f"module {module_name!r} is not imported by the program")
        import importlib

        module = importlib.import_module(module_name)
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, type):
        raise LookupError(f"{ref!r} is not a class")
    return obj


def _key_repr(key: object) -> str:
    return f"[{key!r}]"


def find_unencodable_text(  # noqa: PLR0911
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

        Raises:
            :class:`mongo_persistence.DecodingError`: A tagged value cannot be restored.
        """
        decoder = _Decoder(self, bot)
        try:
            return decoder.dec(value)
        except _Fail as exc:
            raise DecodingError(entity, "".join(reversed(exc.path)), exc.reason) from None


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
    return enc.tagged("int", depth, value, value=str(value))


def _safe_key(key: object) -> bool:
    return type(key) is str and key[:1] != "$" and key != TAG and "\x00" not in key


def _enc_dict(enc: _Encoder, value: dict[Any, Any], depth: int) -> Any:  # noqa: PLR0912
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
            kind = type(item)
            if kind in _SCALARS or (kind is int and _INT64_MIN <= item <= _INT64_MAX):
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
                out[str(key)] = sub(item, inner + 1)
            return {TAG: "intdict", "value": out}
        # Mixed keys: the str keys stay a readable sub-document, the others become [key, value]
        # pairs: {"__type__": "dict", "value": {"name": ...}, "items": [[3, ...]]}.
        if inner >= MAX_DEPTH:
            raise _TooDeep(value, f"nesting deeper than {MAX_DEPTH} levels")
        plain = {}
        items = []
        for key, item in value.items():
            if _safe_key(key):
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


def _tz_fields(tzinfo: dtm.tzinfo | None) -> dict[str, Any]:
    if isinstance(tzinfo, zoneinfo.ZoneInfo) and tzinfo.key:
        return {"tz": tzinfo.key}
    if type(tzinfo) is dtm.timezone:
        name = tzinfo.tzname(None)
        if name != dtm.timezone(tzinfo.utcoffset(None)).tzname(None):
            return {"tzname": name}  # a named fixed offset, e.g. timezone(-5h, "EST")
    return {}


def _enc_datetime(enc: _Encoder, value: dtm.datetime, depth: int) -> Any:
    extra = _tz_fields(value.tzinfo)
    if value.fold:
        extra["fold"] = 1
    return enc.tagged("datetime", depth, value, value=value.isoformat(), **extra)


def _enc_date(enc: _Encoder, value: dtm.date, depth: int) -> Any:
    return enc.tagged("date", depth, value, value=value.isoformat())


def _enc_time(enc: _Encoder, value: dtm.time, depth: int) -> Any:
    extra = _tz_fields(value.tzinfo)
    if value.fold:
        extra["fold"] = 1
    return enc.tagged("time", depth, value, value=value.isoformat(), **extra)


def _enc_timedelta(enc: _Encoder, value: dtm.timedelta, depth: int) -> Any:
    return enc.tagged(
        "timedelta",
        depth,
        value,
        days=value.days,
        seconds=value.seconds,
        microseconds=value.microseconds,
    )


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
    str: _enc_plain,
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
_NEEDS_DECODING: Final = frozenset({dict, list, Int64, Binary})


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
    __slots__ = ("bot", "codec", "decoders")

    def __init__(self, codec: Codec, bot: Bot | None) -> None:
        self.codec = codec
        self.bot = bot
        self.decoders = codec._decoders

    def dec(self, value: Any) -> Any:
        cls = type(value)
        if cls is dict:
            tag = value.get(TAG)
            if tag is None:
                return _dec_plain_dict(self, value)
            decoder = self.decoders.get(tag) if type(tag) is str else None
            if decoder is None:
                raise _Fail(value, f"unknown {TAG} tag {tag!r}")
            try:
                return decoder(self, value, 0)
            except _Fail:
                raise
            except Exception as exc:
                raise _Fail(value, f"bad {tag!r} value: {exc!r}") from exc
        if cls is list:
            index = 0
            try:
                out: list[Any] = []
                append = out.append
                for index, item in enumerate(value):  # noqa: B007 - read on failure
                    append(self.dec(item) if type(item) in _NEEDS_DECODING else item)
            except _Fail as exc:
                exc.path.append(f"[{index}]")
                raise
            return out
        if cls is Int64:
            return int(value)
        if cls is Binary and value.subtype == 0:
            return bytes(value)
        return value


def _dec_tz(doc: dict[str, Any], parsed: Any) -> Any:
    if "tz" in doc:
        parsed = parsed.replace(tzinfo=zoneinfo.ZoneInfo(doc["tz"]))
    elif "tzname" in doc:
        parsed = parsed.replace(tzinfo=dtm.timezone(parsed.utcoffset(), doc["tzname"]))
    if doc.get("fold"):
        parsed = parsed.replace(fold=1)
    return parsed


def _dec_resolved_class(doc: dict[str, Any], base: type) -> type:
    try:
        cls = _resolve_class(doc["class"])
    except (LookupError, AttributeError, ImportError) as exc:
        raise _Fail(doc, f"cannot find class {doc['class']!r}: {exc}") from exc
    if not issubclass(cls, base):
        raise _Fail(doc, f"{doc['class']!r} is not a {base.__name__}")
    return cls


def _dec_enum(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
    cls: Any = _dec_resolved_class(doc, enum.Enum)
    if "value" in doc:
        return cls(dec.dec(doc["value"]))
    return cls[doc["name"]]


def _dec_namedtuple(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
    cls: Any = _dec_resolved_class(doc, tuple)
    if not hasattr(cls, "_fields"):
        raise _Fail(doc, f"{doc['class']!r} is not a namedtuple")
    return cls._make(dec.dec(doc["value"]))


def _dec_defaultdict(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
    factory = _FACTORY_BY_NAME[doc["factory"]]
    return collections.defaultdict(factory, dec.dec(doc["value"]))


def _dec_telegram(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
    name = doc["class"]
    cls: Any = getattr(telegram, name, None) if ":" not in name else None
    if not (isinstance(cls, type) and issubclass(cls, TelegramObject)):
        cls = _dec_resolved_class(doc, TelegramObject)
    if "state" not in doc:  # written by 0.1: the Bot API JSON of to_dict()
        return cls.de_json(dec.dec(doc["value"]), dec.bot)
    stored = dec.dec(doc["state"])
    if not isinstance(stored, dict) or not all(type(k) is str for k in stored):
        raise _Fail(doc, "its 'state' is not a document of attribute names")
    state: dict[str, Any] = dict.fromkeys(_telegram_slots(cls))
    state["api_kwargs"] = {}
    state.update(stored)
    obj = cls.__new__(cls)
    obj.__setstate__(state)
    return obj


def _dec_bot(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
    if doc.get("unknown"):
        return None
    return dec.bot


def _dec_custom(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
    codec = dec.codec._custom_by_name.get(doc["codec"])
    if codec is None:
        raise _Fail(doc, f"no TypeCodec named {doc['codec']!r} is registered")
    return codec.decode(dec.dec(doc["value"]))


def _dec_pickle(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
    if not dec.codec.pickle_fallback:
        raise _Fail(
            doc,
            "this value was stored with pickle; pass pickle_fallback=True to load it "
            "(only if you trust everyone who can write to the database)",
        )
    return pickle.loads(bytes(doc["value"]))  # noqa: S301 - explicit opt-in


def _dec_dict_items(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
    out = _dec_plain_dict(dec, doc.get("value", {}))
    for index, (key, item) in enumerate(doc["items"]):
        try:
            out[dec.dec(key)] = dec.dec(item)
        except _Fail as exc:
            exc.path.append(f"[<item {index}>]")
            raise
    return out


def _dec_intdict(dec: _Decoder, doc: dict[str, Any], _: int) -> Any:
    key = None
    out = {}
    try:
        for key, item in doc["value"].items():
            out[int(key)] = dec.dec(item)
    except _Fail as exc:
        exc.path.append(_key_repr(key))
        raise
    return out


_TAG_DECODERS: dict[str, Callable[[_Decoder, dict[str, Any], int], Any]] = {
    "tuple": lambda dec, doc, _: tuple(dec.dec(doc["value"])),
    "set": lambda dec, doc, _: set(dec.dec(doc["value"])),
    "frozenset": lambda dec, doc, _: frozenset(dec.dec(doc["value"])),
    "dict": _dec_dict_items,
    "intdict": _dec_intdict,
    "int": lambda _, doc, __: int(doc["value"]),
    "bytearray": lambda _, doc, __: bytearray(doc["value"]),
    "datetime": lambda _, doc, __: _dec_tz(doc, dtm.datetime.fromisoformat(doc["value"])),
    "date": lambda _, doc, __: dtm.date.fromisoformat(doc["value"]),
    "time": lambda _, doc, __: _dec_tz(doc, dtm.time.fromisoformat(doc["value"])),
    "timedelta": lambda _, doc, __: dtm.timedelta(
        days=doc["days"], seconds=doc["seconds"], microseconds=doc["microseconds"]
    ),
    "decimal": lambda _, doc, __: decimal.Decimal(doc["value"]),
    "uuid": lambda _, doc, __: uuid.UUID(doc["value"]),
    "complex": lambda _, doc, __: complex(*doc["value"]),
    "enum": _dec_enum,
    "namedtuple": _dec_namedtuple,
    "OrderedDict": lambda dec, doc, _: collections.OrderedDict(
        (dec.dec(k), dec.dec(v)) for k, v in doc["items"]
    ),
    "Counter": lambda dec, doc, _: collections.Counter(dec.dec(doc["value"])),
    "deque": lambda dec, doc, _: collections.deque(dec.dec(doc["value"]), doc.get("maxlen")),
    "defaultdict": _dec_defaultdict,
    "telegram": _dec_telegram,
    "bot": _dec_bot,
    "custom": _dec_custom,
    "pickle": _dec_pickle,
}
