"""The codec through the public API: exact round trips, readable shapes, precise errors.

A value is written by ``update_*`` of one persistence and read back by a fresh one on the same
database (a restart); what is stored is read with the test's own client; documents a codec
refuses to load are planted with it.
"""

from __future__ import annotations

import collections
import datetime as dtm
import decimal
import enum
import typing
import uuid
import zoneinfo
from dataclasses import dataclass
from typing import Any

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, User
from telegram.ext import ConversationHandler, ExtBot
from telegram.warnings import PTBUserWarning

from mongo_persistence import DecodingError, EncodingError, MongoPersistence, TypeCodec
from tests.helpers.roundtrip import TAG, Factory, bad_documents, load_user, plant, round_trip

MAX_DEPTH = 96
"""The levels of containers an entity's data may nest (README "Limits", "Nesting")."""
MAX_DECODE_DEPTH = 100
"""Stored data nested deeper is a DecodingError (README "Errors" and "Security")."""


class Color(enum.Enum):
    RED = "r"
    GREEN = "g"


class State(enum.IntEnum):
    ASK = 1
    DONE = 2


class Perm(enum.Flag):
    R = 1
    W = 2


class Bits(enum.IntFlag):
    A = 1
    B = 4


Pair = collections.namedtuple("Pair", "left right")


class Span(typing.NamedTuple):
    start: int
    end: dtm.date


def same(a: Any, b: Any) -> bool:
    """Equality that also requires identical types all the way down (dict keys included)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict) and type(a) is dict:
        if len(a) != len(b):
            return False
        b_keys = {(type(k), k): k for k in b}
        for key, value in a.items():
            other = b_keys.get((type(key), key))
            if other is None and (type(key), key) not in b_keys:
                return False
            if not same(value, b[other]):
                return False
        return True
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, collections.Counter):
        return same(dict(a), dict(b))
    if isinstance(a, float | decimal.Decimal) and a != a:
        return b != b
    if isinstance(a, dtm.datetime | dtm.time):
        return a == b and a.tzinfo == b.tzinfo and a.tzname() == b.tzname() and a.fold == b.fold
    if isinstance(a, collections.OrderedDict):
        return list(a.items()) == list(b.items()) and same(dict(a), dict(b))
    if isinstance(a, collections.deque):
        return a.maxlen == b.maxlen and same(list(a), list(b))
    if isinstance(a, collections.defaultdict):
        return a.default_factory is b.default_factory and same(dict(a), dict(b))
    return bool(a == b)


BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")

ROUND_TRIP_CASES: list[tuple[str, Any]] = [
    ("plain", {"a": 1, "b": [1, 2.5, "x", None, True], "c": {"d": "e"}}),
    ("int keys", {3: "x", -7: "y", 2**40: "z"}),
    ("mixed keys", {"a": 1, 3: "b", None: "c", True: "d", 1.5: "e", (1, "x"): "f"}),
    ("bool, int and float keys", {True: "bool", 2.0: "float", 3: "int"}),
    ("frozenset key", {frozenset({1, 2}): "fs"}),
    ("bytes key", {b"k": "bytes"}),
    ("enum key", {Color.RED: 1, State.ASK: 2}),
    ("date key", {dtm.date(2024, 1, 2): "d"}),
    ("tuple", (1, (2, 3), [4, (5,)])),
    ("empty containers", ({}, [], (), set(), frozenset())),
    ("set", {1, 2, 3}),
    ("mixed set", {1, "a", (2, 3)}),
    ("frozenset", frozenset({"a", "b"})),
    ("bytes", b"\x00\x01binary"),
    ("bytearray", bytearray(b"abc")),
    ("naive datetime", dtm.datetime(2024, 5, 6, 7, 8, 9, 123456)),
    ("utc datetime", dtm.datetime(2024, 5, 6, 7, 8, 9, 654321, tzinfo=dtm.timezone.utc)),
    (
        "offset datetime",
        dtm.datetime(2024, 5, 6, 7, 8, tzinfo=dtm.timezone(dtm.timedelta(hours=5))),
    ),
    ("zoneinfo datetime", dtm.datetime(2024, 3, 31, 12, 0, 0, 1, tzinfo=BERLIN)),
    ("fold datetime", dtm.datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=BERLIN)),
    ("date", dtm.date(1999, 12, 31)),
    ("time", dtm.time(23, 59, 59, 999999)),
    ("tz time", dtm.time(1, 2, 3, tzinfo=dtm.timezone.utc)),
    ("timedelta", dtm.timedelta(days=-3, seconds=5, microseconds=7)),
    ("decimal", decimal.Decimal("3.14159265358979323846264338327950288419716939937510")),
    ("decimal nan", decimal.Decimal("NaN")),
    ("uuid", uuid.UUID("12345678-1234-5678-1234-567812345678")),
    ("big int", 2**100),
    ("negative big int", -(2**63) - 1),
    ("int64 edge", 2**63 - 1),
    ("complex", 1 + 2j),
    ("enum", Color.GREEN),
    ("int enum", State.DONE),
    ("ptb END", ConversationHandler.END),
    ("flag member", Perm.R),
    ("flag combination", Perm.R | Perm.W),
    ("empty flag", Perm(0)),
    ("int flag combination", Bits.A | Bits.B),
    ("namedtuple", Pair(1, (2, 3))),
    ("typed namedtuple", {"span": Span(1, dtm.date(2024, 2, 3))}),
    ("OrderedDict", collections.OrderedDict([("b", 1), (2, "a"), ("a", [3])])),
    ("Counter", collections.Counter("abracadabra")),
    ("deque", collections.deque([1, (2,)], maxlen=5)),
    ("defaultdict", collections.defaultdict(list, {"a": [1], 2: []})),
    (
        "named fixed offset",
        dtm.datetime(2024, 1, 1, tzinfo=dtm.timezone(dtm.timedelta(hours=-5), "EST")),
    ),
    ("floats", [float("inf"), float("-inf"), -0.0, 1e308]),
    ("nan", float("nan")),
    ("dollar and dot keys", {"$where": "1", "a.b": {"$set": 2}, "_id": 3, TAG: "not a tag"}),
    ("nul key", {"a\x00b": 1}),
    ("empty key", {"": 1}),
    ("nested everything", {"x": [({1: {2, 3}}, dtm.date(2020, 1, 1))], "y": {(1, 2): [b"z"]}}),
]


async def test_round_trip_is_exact(make_persistence: Factory, db: Any) -> None:
    """Every case in one user's data: one write, one restart."""
    values = {name: value for name, value in ROUND_TRIP_CASES}
    assert len(values) == len(ROUND_TRIP_CASES)
    _, restored = await round_trip(make_persistence, db, values)
    assert restored.keys() == values.keys()
    wrong = [name for name, value in values.items() if not same(restored[name], value)]
    assert not wrong, [(name, restored[name]) for name in wrong]


async def test_plain_data_is_stored_as_is(make_persistence: Factory, db: Any) -> None:
    value = {"age": "30", "tags": ["a", "b"], "n": 1, "f": 1.5, "ok": True, "none": None}
    stored, restored = await round_trip(make_persistence, db, value)
    assert stored == value
    assert same(restored, value)


async def test_shapes_are_readable(make_persistence: Factory, db: Any) -> None:
    value = {
        "tuple": (1, 2),
        "intdict": {3: "x"},
        "date": dtm.date(2024, 1, 2),
        "enum": Color.RED,
        "dollar": {"$where": 1},
        "mixed": {"name": "x", 3: "y"},
    }
    stored, _ = await round_trip(make_persistence, db, value)
    assert stored["tuple"] == {TAG: "tuple", "value": [1, 2]}
    assert stored["intdict"] == {TAG: "intdict", "value": {"3": "x"}}
    assert stored["date"] == {TAG: "date", "date": dtm.datetime(2024, 1, 2)}  # read naive
    assert stored["enum"] == {TAG: "enum", "class": f"{__name__}:Color", "name": "RED"}
    assert stored["dollar"] == {TAG: "dict", "value": {}, "items": [["$where", 1]]}
    assert stored["mixed"] == {TAG: "dict", "value": {"name": "x"}, "items": [[3, "y"]]}


async def test_int_subtypes_come_back_as_int(make_persistence: Factory, db: Any) -> None:
    _, restored = await round_trip(make_persistence, db, {"big": 2**40, "small": 5})
    assert type(restored["big"]) is int
    assert type(restored["small"]) is int


def a_message(bot: ExtBot[Any]) -> Message:
    return Message.de_json(
        {
            "message_id": 5,
            "date": 1700000000,
            "chat": {"id": 42, "type": "private"},
            "from": {"id": 42, "is_bot": False, "first_name": "Al"},
            "text": "hi",
        },
        bot,
    )


async def test_telegram_objects_are_readable_and_bound_to_the_bot(
    make_persistence: Factory, db: Any
) -> None:
    bot: ExtBot[Any] = ExtBot("123:ABC")
    message = a_message(bot)
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("a", callback_data="1")]])
    value = {"m": message, "u": User(1, "B", False), "keyboard": [markup]}
    stored, restored = await round_trip(make_persistence, db, value, bot=bot)
    assert stored["m"][TAG] == "telegram"
    assert stored["m"]["class"] == "Message"
    assert stored["m"]["state"]["text"] == "hi"
    assert stored["m"]["state"]["chat"]["state"]["id"] == 42
    assert restored["m"] == message
    assert restored["m"].text == "hi"
    assert restored["m"].get_bot() is bot
    assert restored["m"].chat.get_bot() is bot
    assert restored["u"] == User(1, "B", False)
    assert restored["keyboard"] == [markup]


async def test_running_bot_becomes_a_placeholder_and_comes_back(
    make_persistence: Factory, db: Any
) -> None:
    bot: ExtBot[Any] = ExtBot("123:ABC")
    restarted: ExtBot[Any] = ExtBot("123:ABC")  # the new process's bot
    stored = await round_trip(make_persistence, db, {"bot": bot}, bot=bot)
    assert stored[0] == {"bot": {TAG: "bot"}}
    assert (await load_user(make_persistence, bot=restarted))["bot"] is restarted


async def test_other_bot_is_stored_as_unknown_and_loads_as_none(
    make_persistence: Factory, db: Any
) -> None:
    bot: ExtBot[Any] = ExtBot("123:ABC")
    with pytest.warns(UserWarning, match="unknown bot"):
        stored, restored = await round_trip(make_persistence, db, {"bot": Bot("456:DEF")}, bot=bot)
    assert "456:DEF" not in repr(stored)
    assert restored == {"bot": None}


class Opaque:
    pass


async def refused(persistence: MongoPersistence[Any, Any, Any], kind: str, value: Any) -> Any:
    """The EncodingError of ``update_<kind>`` (user_data[42], chat_data[1] or bot_data)."""
    try:
        with pytest.raises(EncodingError) as info:
            if kind == "bot_data":
                await persistence.update_bot_data(value)
            else:
                await getattr(persistence, f"update_{kind}")(
                    42 if kind == "user_data" else 1, value
                )
        return info.value
    finally:
        await persistence.flush()


@pytest.mark.parametrize(
    ("value", "path", "type_name"),
    [
        ({"cart": [1, 2, Opaque()]}, "['cart'][2]", "Opaque"),
        ({"f": lambda: 1}, "['f']", "function"),
        ({"k": {5: [(1, object())]}}, "['k'][5][0][1]", "object"),
        ({"gen": (x for x in [])}, "['gen']", "generator"),
    ],
)
async def test_unsupported_values_name_entity_path_and_type(
    value: Any, path: str, type_name: str, make_persistence: Factory, db: Any
) -> None:
    err = await refused(make_persistence(), "user_data", value)
    assert isinstance(err, TypeError)
    assert err.entity == "user_data[42]"
    assert err.path == path
    assert err.value_type.endswith(type_name)
    assert f"user_data[42]{path}" in str(err)
    assert await db["user_data"].count_documents({}) == 0  # nothing of that entity is written


async def test_cycle_is_reported_once_around(make_persistence: Factory) -> None:
    data: dict[str, Any] = {"a": [1, {"b": None}]}
    data["a"][1]["b"] = data
    err = await refused(make_persistence(), "chat_data", data)
    assert "contains itself" in str(err)
    assert err.entity == "chat_data[1]"
    assert err.path == "['a'][1]['b']"


def lists(levels: int) -> Any:
    """``levels`` lists around a string: with the data's own dict, ``levels + 1`` levels."""
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


async def test_too_deep_nesting_is_rejected_clearly(make_persistence: Factory, db: Any) -> None:
    err = await refused(make_persistence(), "bot_data", {"d": lists(MAX_DEPTH + 5)})
    assert "nesting deeper" in str(err) and err.entity == "bot_data"
    err = await refused(make_persistence(), "bot_data", {"d": lists(MAX_DEPTH)})
    assert "nesting deeper" in str(err)
    deepest = {"d": lists(MAX_DEPTH - 1)}  # MAX_DEPTH levels: the data's dict and the lists
    assert (await round_trip(make_persistence, db, deepest))[1] == deepest


async def test_stored_nesting_deeper_than_the_read_limit_is_a_decoding_error(
    make_persistence: Factory, db: Any
) -> None:
    """Documents another program wrote: MAX_DECODE_DEPTH levels load, one more does not."""
    await plant(
        db,
        "user_data",
        {1: {"d": lists(MAX_DECODE_DEPTH - 1)}, 2: {"d": lists(MAX_DECODE_DEPTH)}},
    )
    bad = await bad_documents(make_persistence, "user_data")
    assert list(bad) == ["user_data[2]"]
    assert f"nested deeper than {MAX_DECODE_DEPTH} levels" in str(bad["user_data[2]"])
    assert (await load_user(make_persistence, on_bad_document="skip")) == {
        "d": lists(MAX_DECODE_DEPTH - 1)
    }


@dataclass
class Point:
    x: int
    y: int


POINT = TypeCodec(Point, "Point", lambda p: {"x": p.x, "y": p.y}, lambda d: Point(**d))


async def test_custom_type_codec(make_persistence: Factory, db: Any) -> None:
    value = {"where": Point(1, 2), "path": (Point(3, 4),)}
    stored, restored = await round_trip(make_persistence, db, value, codecs=[POINT])
    assert stored["where"] == {TAG: "custom", "codec": "Point", "value": {"x": 1, "y": 2}}
    assert restored == value
    with pytest.raises(DecodingError, match="no TypeCodec named 'Point'") as info:
        await load_user(make_persistence)
    assert info.value.entity == "user_data[1]"


def test_duplicate_codec_names_are_refused() -> None:
    with pytest.raises(ValueError, match="Two codecs"):
        MongoPersistence.from_uri(
            "mongodb://127.0.0.1:1",
            codecs=[TypeCodec(Point, "P", vars, dict), TypeCodec(Opaque, "P", vars, dict)],
        )


async def test_pickle_is_off_by_default_and_refused_on_load(
    make_persistence: Factory, db: Any
) -> None:
    await refused(make_persistence(), "user_data", {"o": Opaque()})
    with pytest.warns(PTBUserWarning, match="pickle"):
        stored, restored = await round_trip(
            make_persistence, db, {"o": Point(1, 2)}, pickle_fallback=True
        )
    assert stored["o"][TAG] == "pickle"
    assert restored == {"o": Point(1, 2)}
    with pytest.raises(DecodingError, match="pickle_fallback=True"):
        await load_user(make_persistence)


async def test_unknown_tag_and_missing_enum_class_are_decoding_errors(
    make_persistence: Factory, db: Any
) -> None:
    await plant(
        db,
        "chat_data",
        {
            1: {"x": {TAG: "martian"}},
            2: {"e": {TAG: "enum", "class": "no_such_module_xyz:Color", "name": "RED"}},
            3: {"e": {TAG: "enum", "class": "builtins:dict", "name": "x"}},
            4: {"fine": 1},
        },
    )
    bad = await bad_documents(make_persistence, "chat_data")
    assert sorted(bad) == ["chat_data[1]", "chat_data[2]", "chat_data[3]"]
    assert "unknown __type__" in str(bad["chat_data[1]"])
    assert "cannot find class" in str(bad["chat_data[2]"])
    assert "is not a Enum" in str(bad["chat_data[3]"])


async def test_decoding_errors_name_the_path(make_persistence: Factory, db: Any) -> None:
    intdict = {TAG: "intdict", "value": {"7": {TAG: "x"}}}
    await plant(
        db, "user_data", {1: {"a": [{"b": {TAG: "martian"}}], "c": intdict}, 2: {"c": intdict}}
    )
    bad = await bad_documents(make_persistence, "user_data")
    assert bad["user_data[1]"].path == "['a'][0]['b']"
    assert bad["user_data[2]"].path == "['c']['7']"


async def test_defaultdict_with_an_arbitrary_factory_is_refused_clearly(
    make_persistence: Factory,
) -> None:
    err = await refused(make_persistence(), "bot_data", {"d": collections.defaultdict(lambda: 5)})
    assert "default_factory" in str(err)
    assert err.path == "['d']"
