"""Property-based: nested values of every supported type round-trip exactly, over the wire.

Each example writes two generated values one after the other to the same entities (so both whole
writes and diffs are exercised) through the public API of MongoPersistence, reads them back with a
new MongoPersistence (a restarted bot) and compares them type for type, dict keys included.
A small number of examples runs by default; ``make fuzz`` runs the ``slow`` variant.
"""

from __future__ import annotations

import datetime as dtm
import decimal
import enum
import math
import zoneinfo
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import User

from mongo_persistence import MongoPersistence, TypeCodec
from tests.helpers.compare import same

Factory = Callable[..., MongoPersistence[Any, Any, Any]]


class Fruit(enum.Enum):
    APPLE = "apple"
    PEAR = 2


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Perm(enum.Flag):
    R = 1
    W = 2
    X = 4


class Pair(NamedTuple):
    left: Any
    right: Any


@dataclass(frozen=True)
class Money:
    cents: int
    currency: str


MONEY = TypeCodec(
    Money,
    "money",
    encode=lambda m: [m.cents, m.currency],
    decode=lambda v: Money(v[0], v[1]),
)

# ---------------------------------------------------------------------------- strategies
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
time_zones = st.one_of(
    st.none(),
    st.just(dtm.timezone.utc),
    st.integers(-23 * 3600, 23 * 3600).map(lambda s: dtm.timezone(dtm.timedelta(seconds=s))),
    st.builds(
        dtm.timezone,
        st.integers(-23 * 60, 23 * 60).map(lambda m: dtm.timedelta(minutes=m)),
        st.sampled_from(["EST", "CET", "My Zone"]),
    ),
    st.sampled_from(ZONES).map(zoneinfo.ZoneInfo),
)
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
ints = st.one_of(
    st.integers(-1000, 1000),
    st.integers(),
    st.integers(-(2**200), 2**200),
    st.sampled_from([2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64]),
)
plain_floats = st.floats(allow_nan=False)
datetimes = st.datetimes(timezones=time_zones)
times = st.times(timezones=time_zones)


def hashables() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        texts,
        ints,
        st.booleans(),
        st.none(),
        plain_floats,
        st.binary(max_size=6),
        st.dates(),
        datetimes,
        times,
        st.timedeltas(),
        st.decimals(allow_nan=False),
        st.uuids(),
        st.sampled_from([*Fruit, *Priority, Perm.R, Perm.R | Perm.W, Perm(0)]),
        st.builds(Money, st.integers(), st.sampled_from(["EUR", "USD"])),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3).map(tuple),
            st.frozensets(inner, max_size=3),
            st.builds(Pair, inner, inner),
        ),
        max_leaves=5,
    )


keys = hashables()
leaves = st.one_of(
    hashables(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.complex_numbers(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True),
    st.binary(max_size=6).map(bytearray),
    st.builds(
        User,
        id=st.integers(1, 2**40),
        first_name=texts.filter(bool),
        is_bot=st.booleans(),
    ),
)


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(texts, children, max_size=4),
        st.dictionaries(keys, children, max_size=4),
        st.sets(keys, max_size=4),
        st.frozensets(keys, max_size=4),
        st.dictionaries(keys, children, max_size=3).map(OrderedDict),
        st.dictionaries(keys, st.lists(children, max_size=2), max_size=3).map(
            lambda d: defaultdict(list, d)
        ),
        st.dictionaries(keys, st.integers(-5, 5), max_size=3).map(Counter),
        st.lists(children, max_size=3).map(deque),
    )


values = st.recursive(leaves, containers, max_leaves=25)
entity_data = st.dictionaries(keys, values, max_size=6)
states = values.filter(lambda v: v is not None)  # None ends a conversation: nothing is stored


# ---------------------------------------------------------------------------- the comparator
def test_the_comparator_is_strict() -> None:
    assert same([1], (1,))
    assert same({1: "a"}, {True: "a"})
    assert same({"k": 1}, {"k": True})
    assert same({"k": 1.0}, {"k": 1})
    assert same(0.0, -0.0)
    assert same(decimal.Decimal("1.0"), decimal.Decimal("1.00"))
    assert same(dtm.datetime(2024, 1, 1), dtm.datetime(2024, 1, 1, tzinfo=dtm.timezone.utc))
    assert same(
        dtm.datetime(2024, 1, 1, tzinfo=dtm.timezone.utc),
        dtm.datetime(2024, 1, 1, tzinfo=zoneinfo.ZoneInfo("UTC")),
    )
    assert same(dtm.time(1, 2, 3, 4), dtm.time(1, 2, 3))
    assert same(
        dtm.datetime(2024, 1, 1, tzinfo=dtm.timezone(dtm.timedelta(hours=1), "CET")),
        dtm.datetime(2024, 1, 1, tzinfo=dtm.timezone(dtm.timedelta(hours=1))),
    )
    assert same({frozenset({1})}, {frozenset({True})})
    assert same(OrderedDict(a=1, b=2), OrderedDict(b=2, a=1))
    assert same(defaultdict(list), defaultdict(set))
    assert same(Pair(1, 2), (1, 2))
    assert same(b"x", bytearray(b"x"))
    assert same(Fruit.PEAR, 2) and same(Priority.LOW, 1)
    assert same(math.nan, math.nan) is None
    assert same({"a": [1, (2.0, {None: b""})]}, {"a": [1, (2.0, {None: b""})]}) is None


# ---------------------------------------------------------------------------- the property
class RoundTrip:
    """Writes generated data with one persistence, reads it back with a new one each time."""

    def __init__(self, make: Factory) -> None:
        self.make = make
        self.writer = make(codecs=[MONEY])
        self.number = 0

    async def check(self, first: Any, second: Any, state: Any) -> None:
        self.number += 1
        uid = self.number
        writer = self.writer
        await writer.get_user_data()
        await writer.update_user_data(uid, first)
        await writer.update_user_data(uid, second)  # a diff, or a whole replace
        await writer.update_chat_data(-uid, first)
        await writer.update_bot_data(second)
        await writer.update_conversation("fuzz", (uid, "k"), state)

        reader = self.make(codecs=[MONEY])
        try:
            loaded = {
                "user": (await reader.get_user_data())[uid],
                "chat": (await reader.get_chat_data())[-uid],
                "bot": await reader.get_bot_data(),
                "state": (await reader.get_conversations("fuzz"))[(uid, "k")],
            }
        finally:
            await reader.flush()
        expected = {"user": second, "chat": first, "bot": second, "state": state}
        for name, value in expected.items():
            problem = same(value, loaded[name])
            assert problem is None, f"{name}: {problem}"
        # The next example's reader then loads one user and one chat, not all of them so far.
        store = writer._store
        await store.collection("user_data").delete_one({"_id": uid})
        await store.collection("chat_data").delete_one({"_id": -uid})
        store.tracker.forget("user_data", uid)
        store.tracker.forget("chat_data", -uid)

    async def close(self) -> None:
        await self.writer.flush()


@pytest.fixture
async def round_trip(make_persistence: Factory, db: Any) -> Any:
    """One writer for all examples of a test (the fixture is deliberately shared by them): its
    tracker sees one example after the other, as a long-running bot would."""
    checker = RoundTrip(make_persistence)
    yield checker
    await checker.close()


SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


@settings(max_examples=40, **SETTINGS)  # type: ignore[arg-type]
@given(first=entity_data, second=entity_data, state=states)
async def test_every_supported_value_round_trips_exactly(
    round_trip: RoundTrip, first: Any, second: Any, state: Any
) -> None:
    await round_trip.check(first, second, state)


@pytest.mark.slow
@settings(max_examples=500, **SETTINGS)  # type: ignore[arg-type]
@given(first=entity_data, second=entity_data, state=states)
async def test_every_supported_value_round_trips_exactly_fuzz(
    round_trip: RoundTrip, first: Any, second: Any, state: Any
) -> None:
    await round_trip.check(first, second, state)
