"""The codec alone (pure, no server): exact round trips, readable shapes, precise errors."""

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

import bson
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, User
from telegram.ext import ConversationHandler

from mongo_persistence import DecodingError, EncodingError, TypeCodec
from mongo_persistence._codec.codec import MAX_DEPTH, TAG, Codec


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


def through_bson(codec: Codec, value: Any, bot: Bot | None = None) -> Any:
    """Encode, push through real BSON bytes (as MongoDB would store it), decode."""
    raw = bson.encode({"v": codec.encode(value, bot=bot)})
    return codec.decode(bson.decode(raw)["v"], bot=bot)


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


@pytest.mark.parametrize(("name", "value"), ROUND_TRIP_CASES, ids=[c[0] for c in ROUND_TRIP_CASES])
def test_round_trip_is_exact(name: str, value: Any) -> None:
    codec = Codec()
    restored = through_bson(codec, value)
    assert same(restored, value), (name, restored)


def test_plain_data_is_stored_as_is() -> None:
    value = {"age": "30", "tags": ["a", "b"], "n": 1, "f": 1.5, "ok": True, "none": None}
    assert Codec().encode(value) == value


def test_shapes_are_readable() -> None:
    codec = Codec()
    assert codec.encode((1, 2)) == {TAG: "tuple", "value": [1, 2]}
    assert codec.encode({3: "x"}) == {TAG: "intdict", "value": {"3": "x"}}
    assert codec.encode(dtm.date(2024, 1, 2)) == {
        TAG: "date",
        "date": dtm.datetime(2024, 1, 2, tzinfo=dtm.timezone.utc),
    }
    assert codec.encode(Color.RED) == {TAG: "enum", "class": f"{__name__}:Color", "name": "RED"}
    assert codec.encode({"$where": 1}) == {TAG: "dict", "value": {}, "items": [["$where", 1]]}
    assert codec.encode({"name": "x", 3: "y"}) == {
        TAG: "dict",
        "value": {"name": "x"},
        "items": [[3, "y"]],
    }


def test_int_subtypes_come_back_as_int() -> None:
    codec = Codec()
    restored = through_bson(codec, {"big": 2**40, "small": 5})
    assert type(restored["big"]) is int
    assert type(restored["small"]) is int


def test_telegram_objects_are_readable_and_bound_to_the_bot() -> None:
    bot = Bot("123:ABC")
    message = Message.de_json(
        {
            "message_id": 5,
            "date": 1700000000,
            "chat": {"id": 42, "type": "private"},
            "from": {"id": 42, "is_bot": False, "first_name": "Al"},
            "text": "hi",
        },
        bot,
    )
    codec = Codec()
    encoded = codec.encode({"m": message, "u": User(1, "B", False)}, bot=bot)
    assert encoded["m"][TAG] == "telegram"
    assert encoded["m"]["class"] == "Message"
    assert encoded["m"]["state"]["text"] == "hi"
    assert encoded["m"]["state"]["chat"]["state"]["id"] == 42
    restored = through_bson(codec, {"m": message, "u": User(1, "B", False)}, bot=bot)
    assert restored["m"] == message
    assert restored["m"].text == "hi"
    assert restored["m"].get_bot() is bot
    assert restored["m"].chat.get_bot() is bot
    assert restored["u"] == User(1, "B", False)


def test_keyboard_round_trips() -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("a", callback_data="1")]])
    restored = through_bson(Codec(), [markup])
    assert restored == [markup]


def test_running_bot_becomes_a_placeholder_and_comes_back() -> None:
    bot = Bot("123:ABC")
    codec = Codec()
    encoded = codec.encode({"bot": bot}, bot=bot)
    assert encoded == {"bot": {TAG: "bot"}}
    assert codec.decode(encoded, bot=bot)["bot"] is bot


def test_other_bot_is_stored_as_unknown_and_loads_as_none() -> None:
    bot, other = Bot("123:ABC"), Bot("456:DEF")
    codec = Codec()
    with pytest.warns(UserWarning, match="unknown bot"):
        encoded = codec.encode({"bot": other}, bot=bot)
    assert "456:DEF" not in repr(encoded)
    assert codec.decode(encoded, bot=bot) == {"bot": None}


class Opaque:
    pass


@pytest.mark.parametrize(
    ("value", "path", "type_name"),
    [
        ({"cart": [1, 2, Opaque()]}, "['cart'][2]", "Opaque"),
        ({"f": lambda: 1}, "['f']", "function"),
        ({"k": {5: [(1, object())]}}, "['k'][5][0][1]", "object"),
        ({"gen": (x for x in [])}, "['gen']", "generator"),
    ],
)
def test_unsupported_values_name_entity_path_and_type(
    value: Any, path: str, type_name: str
) -> None:
    with pytest.raises(EncodingError) as info:
        Codec().encode(value, entity="user_data[42]")
    err = info.value
    assert isinstance(err, TypeError)
    assert err.entity == "user_data[42]"
    assert err.path == path
    assert err.value_type.endswith(type_name)
    assert f"user_data[42]{path}" in str(err)


def test_cycle_is_reported_once_around() -> None:
    data: dict[str, Any] = {"a": [1, {"b": None}]}
    data["a"][1]["b"] = data
    with pytest.raises(EncodingError, match="contains itself") as info:
        Codec().encode(data, entity="chat_data[1]")
    assert info.value.path == "['a'][1]['b']"


def test_too_deep_nesting_is_rejected_clearly() -> None:
    deep: Any = "leaf"
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(EncodingError, match="nesting deeper"):
        Codec().encode({"d": deep}, entity="bot_data")
    fine: Any = "leaf"
    for _ in range(MAX_DEPTH - 10):
        fine = [fine]
    assert through_bson(Codec(), fine) == fine


@dataclass
class Point:
    x: int
    y: int


def test_custom_type_codec() -> None:
    codec = Codec([TypeCodec(Point, "Point", lambda p: {"x": p.x, "y": p.y}, lambda d: Point(**d))])
    value = {"where": Point(1, 2), "path": (Point(3, 4),)}
    encoded = codec.encode(value)
    assert encoded["where"] == {TAG: "custom", "codec": "Point", "value": {"x": 1, "y": 2}}
    assert through_bson(codec, value) == value
    with pytest.raises(DecodingError, match="no TypeCodec named 'Point'"):
        Codec().decode(encoded, entity="user_data[1]")


def test_duplicate_codec_names_are_refused() -> None:
    with pytest.raises(ValueError, match="Two codecs"):
        Codec([TypeCodec(Point, "P", vars, dict), TypeCodec(Opaque, "P", vars, dict)])


def test_pickle_is_off_by_default_and_refused_on_load() -> None:
    with pytest.raises(EncodingError):
        Codec().encode(Opaque())
    pickled = Codec(pickle_fallback=True).encode({"o": Point(1, 2)})
    assert pickled["o"][TAG] == "pickle"
    with pytest.raises(DecodingError, match="pickle_fallback=True"):
        Codec().decode(pickled)
    assert Codec(pickle_fallback=True).decode(pickled) == {"o": Point(1, 2)}


def test_unknown_tag_and_missing_enum_class_are_decoding_errors() -> None:
    with pytest.raises(DecodingError, match="unknown __type__"):
        Codec().decode({"x": {TAG: "martian"}}, entity="chat_data[1]")
    with pytest.raises(DecodingError, match="cannot find class"):
        Codec().decode({TAG: "enum", "class": "no_such_module_xyz:Color", "name": "RED"})
    with pytest.raises(DecodingError, match="is not a Enum"):
        Codec().decode({TAG: "enum", "class": "builtins:dict", "name": "x"})


def test_decoding_errors_name_the_path() -> None:
    stored = {"a": [{"b": {TAG: "martian"}}], "c": {TAG: "intdict", "value": {"7": {TAG: "x"}}}}
    with pytest.raises(DecodingError) as info:
        Codec().decode(stored, entity="user_data[1]")
    assert info.value.path == "['a'][0]['b']"
    with pytest.raises(DecodingError) as info:
        Codec().decode({"c": stored["c"]}, entity="user_data[1]")
    assert info.value.path == "['c']['7']"


def test_defaultdict_with_an_arbitrary_factory_is_refused_clearly() -> None:
    value = {"d": collections.defaultdict(lambda: 5)}
    with pytest.raises(EncodingError, match="default_factory") as info:
        Codec().encode(value, entity="bot_data")
    assert info.value.path == "['d']"
