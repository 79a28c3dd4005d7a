"""A lossless, Bot-aware mapping between Python values and BSON-ready values.

The codec is pure: it knows nothing about MongoDB connections. Plain JSON-like data (``str``-keyed
dicts, lists, strings, numbers, booleans, ``None``) is stored as it is. Every other supported value
becomes a small readable sub-document tagged with the key ``"__type__"``, e.g.
``{"__type__": "tuple", "value": [1, 2]}``; :meth:`Codec.decode` turns it back into the very same
type.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import Any

from telegram import Bot, TelegramObject

from mongo_persistence._codec.base import (
    FORMAT_VERSION,
    MAX_DEPTH,
    TAG,
    TypeCodec,
    _Fail,
    _TooDeep,
    _type_name,
    find_unencodable_text,
)
from mongo_persistence._codec.decode_types import _TAG_DECODERS
from mongo_persistence._codec.decoder import MAX_DECODE_DEPTH, _Decoder
from mongo_persistence._codec.encode_plain import _Encoder
from mongo_persistence._codec.encode_types import (
    _BASE_DISPATCH,
    _enc_bot,
    _enc_custom,
    _enc_enum,
    _enc_namedtuple,
    _enc_pickle,
    _enc_telegram,
    _enc_unsupported,
)
from mongo_persistence._codec.interrupts import (
    _InterruptWatch,
    _must_propagate,
    watching_interrupts,
)
from mongo_persistence._codec.names import resolve_class, resolve_name
from mongo_persistence._errors import DecodingError, EncodingError

__all__ = [
    "FORMAT_VERSION",
    "MAX_DECODE_DEPTH",
    "MAX_DEPTH",
    "TAG",
    "Codec",
    "TypeCodec",
    "find_unencodable_text",
    "resolve_class",
    "resolve_name",
    "watching_interrupts",
]


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
                raise _encoding_error(entity, exc) from None
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
    def decode(
        self,
        value: Any,
        *,
        bot: Bot | None = None,
        entity: str = "value",
        copy: bool = True,
    ) -> Any:
        """Turns a value read from MongoDB back into the Python value that was stored.

        Args:
            value: What the driver returned.
            bot (:class:`telegram.Bot`, optional): The running bot: Telegram objects are bound to
                it and the bot placeholder becomes this bot.
            entity (:obj:`str`, optional): Names the value in error messages.
            copy (:obj:`bool`, optional): :obj:`False` lets the result share the documents and
                arrays of :paramref:`value` that need no decoding. Only for a value nobody uses
                afterwards, such as a document just read.

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
            return self._decode(value, bot, entity, copy)
        with watching_interrupts():
            return self._decode(value, bot, entity, copy)

    def _decode(self, value: Any, bot: Bot | None, entity: str, copy: bool) -> Any:
        decoder = _Decoder(self, bot, copy)
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


def _encoding_error(entity: str, exc: _Fail) -> EncodingError:
    """The :class:`~mongo_persistence.EncodingError` of a failure, naming its path."""
    parts = exc.path[::-1]
    path = "".join(parts)
    reason = exc.reason
    seen: set[int] = set()
    for depth, container in enumerate(exc.containers[::-1]):  # outermost first
        if isinstance(exc, _TooDeep) and container in seen:
            # Name the path once around the cycle, not down to the depth limit.
            path = "".join(parts[:depth])
            reason = "the structure contains itself (a reference cycle)"
            break
        seen.add(container)
    return EncodingError(entity, path, _type_name(exc.value), reason)
