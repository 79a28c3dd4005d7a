"""Encoding of plain data: scalars, ``str``-keyed dicts, lists, tuples and sets."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from telegram import Bot

from mongo_persistence._codec.base import (
    _INT64_MAX,
    _INT64_MIN,
    MAX_DEPTH,
    TAG,
    _Fail,
    _items_before,
    _key_repr,
    _TooDeep,
)

if TYPE_CHECKING:
    from mongo_persistence._codec.codec import Codec

__all__: list[str] = []


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


_KEYED: Final = object()
"""Returned by :func:`_enc_str_dict` for a dict with a key that is not a plain string."""
_TOO_DEEP: Final = f"nesting deeper than {MAX_DEPTH} levels"


def _enc_dict(enc: _Encoder, value: dict[Any, Any], depth: int) -> Any:
    if depth >= MAX_DEPTH:
        raise _TooDeep(value, _TOO_DEEP)
    out = _enc_str_dict(enc, value, depth + 1)
    if out is not _KEYED:
        return out
    if all(type(k) is int for k in value):
        # The common case of id-keyed maps stays readable: {"__type__": "intdict", ...}.
        return _enc_intdict(enc, value, depth + 1)
    return _enc_mixed_dict(enc, value, depth)


def _enc_str_dict(enc: _Encoder, value: dict[Any, Any], inner: int) -> Any:
    """A dict of plain string keys, or :data:`_KEYED` at the first other key.

    Copy on write: without ``copy=True``, a dict whose values all encode to themselves is
    returned as it is (no allocation for plain data).
    """
    sub = enc.enc
    key: Any = None
    out: dict[Any, Any] | None = None
    try:
        for key, item in value.items():
            if type(key) is not str or key[:1] == "$" or key == TAG or "\x00" in key:
                return _KEYED
            if not key.isascii():
                _check_text(key, "key")
            kind = type(item)
            if kind in _SCALARS or (kind is int and _INT64_MIN <= item <= _INT64_MAX):
                if kind is str and not item.isascii():
                    _check_text(item)
                new = item
            else:
                new = sub(item, inner)
                if out is None and new is not item:
                    out = _items_before(value, key)
            if out is not None:
                out[key] = new
    except _Fail as exc:
        raise _failed_at(exc, _key_repr(key), value) from None
    if out is None:
        return dict(value) if enc.copy else value
    return out


def _failed_at(exc: _Fail, step: str, container: object) -> _Fail:
    """Adds one step (a key or an index) of the path to a failure raised inside a container."""
    exc.path.append(step)
    exc.containers.append(id(container))
    return exc


def _enc_intdict(enc: _Encoder, value: dict[int, Any], inner: int) -> Any:
    """``{"__type__": "intdict", "value": {"<key>": ...}}``: a dict of int keys."""
    if inner >= MAX_DEPTH:
        raise _TooDeep(value, _TOO_DEEP)
    sub = enc.enc
    key: Any = None
    out = {}
    try:
        for key, item in value.items():
            out[_int_to_text(key)] = sub(item, inner + 1)
    except _Fail as exc:
        raise _failed_at(exc, _key_repr(key), value) from None
    return {TAG: "intdict", "value": out}


def _enc_mixed_dict(enc: _Encoder, value: dict[Any, Any], depth: int) -> Any:
    """A dict of mixed keys: ``{"__type__": "dict", "value": {...}, "items": [[3, ...]]}``.

    The str keys stay a readable sub-document, the others become ``[key, value]`` pairs.
    """
    inner = depth + 1
    if inner >= MAX_DEPTH:
        raise _TooDeep(value, _TOO_DEEP)
    sub = enc.enc
    key: Any = None
    plain = {}
    items = []
    try:
        for key, item in value.items():
            if _safe_key(key):
                _check_text(key, "key")
                plain[key] = sub(item, inner + 1)
            else:
                items.append([sub(key, inner + 2), sub(item, inner + 2)])
    except _Fail as exc:
        raise _failed_at(exc, _key_repr(key), value) from None
    return enc.tagged("dict", depth, value, value=plain, items=items)


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
