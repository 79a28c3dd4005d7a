"""A strict, type-for-type comparison of restored values with the originals."""

from __future__ import annotations

import collections
import datetime as dtm
import decimal
import math
import zoneinfo
from typing import Any

from telegram import Bot


def _float_same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def _tz_same(a: dtm.tzinfo | None, b: dtm.tzinfo | None) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, zoneinfo.ZoneInfo):
        return a.key == b.key  # type: ignore[union-attr]
    if isinstance(a, dtm.timezone):
        return a == b and a.tzname(None) == b.tzname(None)  # named fixed offsets keep the name
    return a == b


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _match(key: Any, candidates: dict[Any, Any]) -> Any:
    """The key of ``candidates`` equal to ``key`` (NaN matches NaN), or ``_MISSING``."""
    if _is_nan(key):
        return next((other for other in candidates if _is_nan(other)), _MISSING)
    lookup = {k: k for k in candidates}
    return lookup.get(key, _MISSING)


_MISSING = object()


def same(expected: Any, actual: Any, path: str = "") -> str | None:
    """Returns a description of the first difference, or None when both are the same.

    Types must match exactly at every level, dict keys and set members included; NaN equals NaN
    and 0.0 differs from -0.0; datetimes and times must keep their tzinfo class (and zone key),
    fold and microseconds; Decimals must keep their exact digits and exponent; a Bot must be the
    very same object.
    """
    where = path or "<value>"
    if type(expected) is not type(actual):
        return f"{where}: type {type(actual).__qualname__}, expected {type(expected).__qualname__}"
    if isinstance(expected, dict):
        if len(expected) != len(actual):
            return f"{where}: {len(actual)} keys, expected {len(expected)}"
        if isinstance(expected, collections.defaultdict) and (
            expected.default_factory is not actual.default_factory
        ):
            return f"{where}: default_factory {actual.default_factory!r}"
        if isinstance(expected, collections.OrderedDict):
            problem = same(list(expected), list(actual), f"{path}<key order>")
            if problem:
                return problem
        for key, value in expected.items():
            other = _match(key, actual)
            if other is _MISSING:
                return f"{where}: key {key!r} is missing"
            problem = same(key, other, f"{path}<key {key!r}>") or same(
                value, actual[other], f"{path}[{key!r}]"
            )
            if problem:
                return problem
        return None
    if isinstance(expected, list | tuple | collections.deque):
        if isinstance(expected, collections.deque) and expected.maxlen != actual.maxlen:
            return f"{where}: maxlen {actual.maxlen}, expected {expected.maxlen}"
        if len(expected) != len(actual):
            return f"{where}: length {len(actual)}, expected {len(expected)}"
        for index, (a, b) in enumerate(zip(expected, actual, strict=True)):
            problem = same(a, b, f"{path}[{index}]")
            if problem:
                return problem
        return None
    if isinstance(expected, set | frozenset):
        if len(expected) != len(actual):
            return f"{where}: {len(actual)} members, expected {len(expected)}"
        members = dict.fromkeys(actual)
        for member in expected:
            other = _match(member, members)
            if other is _MISSING:
                return f"{where}: member {member!r} is missing"
            problem = same(member, other, f"{path}{{{member!r}}}")
            if problem:
                return problem
        return None
    if isinstance(expected, Bot):
        ok = expected is actual  # the placeholder must come back as the very bot
    elif isinstance(expected, float):
        ok = _float_same(expected, actual)
    elif isinstance(expected, complex):
        ok = _float_same(expected.real, actual.real) and _float_same(expected.imag, actual.imag)
    elif isinstance(expected, decimal.Decimal):
        ok = expected.as_tuple() == actual.as_tuple()
    elif isinstance(expected, dtm.datetime | dtm.time):
        ok = (
            expected.replace(tzinfo=None) == actual.replace(tzinfo=None)
            and expected.fold == actual.fold
            and _tz_same(expected.tzinfo, actual.tzinfo)
        )
    else:
        ok = expected == actual
    return None if ok else f"{where}: {actual!r}, expected {expected!r}"


def assert_same(expected: Any, actual: Any) -> None:
    """Fails with the first difference when ``actual`` is not exactly ``expected``."""
    problem = same(expected, actual)
    assert problem is None, problem
