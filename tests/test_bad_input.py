"""Bad input, table-driven, over the wire through the public API.

Every value either round-trips exactly (type for type) or fails with a clear error naming the
entity, the path inside it and the type, while the other entities of the same persistence run are
written all the same.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dtm
import decimal
import enum
import math
import socket
import threading
import uuid
import warnings
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytz
from telegram import Bot, Update
from telegram.ext import CallbackContext, ContextTypes, ExtBot, MessageHandler, filters
from telegram.warnings import PTBUserWarning

from mongo_persistence import (
    DocumentTooLargeError,
    EncodingError,
    MongoPersistence,
    MongoPersistenceError,
)
from tests.helpers.compare import assert_same
from tests.ptb_offline import TOKEN, OfflineRequest, build_application, message_update

Factory = Callable[..., MongoPersistence[Any, Any, Any]]
MiB = 1024 * 1024


class Plain:
    def __init__(self, x: int) -> None:
        self.x = x


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    LOW = 1


class Plus2(dtm.tzinfo):
    """A tzinfo of its own (as dateutil's): it cannot be stored faithfully."""

    def utcoffset(self, _: dtm.datetime | None) -> dtm.timedelta:
        return dtm.timedelta(hours=2)

    def dst(self, _: dtm.datetime | None) -> dtm.timedelta:
        return dtm.timedelta(0)


def berlin_file() -> zoneinfo.ZoneInfo:
    with Path(zoneinfo.TZPATH[0], "Europe", "Berlin").open("rb") as handle:
        return zoneinfo.ZoneInfo.from_file(handle)


def generator() -> Iterator[int]:
    yield 1


def function() -> None:
    return None


def cycle_dict() -> dict[str, Any]:
    value: dict[str, Any] = {"a": 1}
    value["self"] = value
    return value


def cycle_list() -> list[Any]:
    value: list[Any] = [0]
    value.append(value)
    return value


def cycle_through_list() -> dict[str, Any]:
    outer: dict[str, Any] = {}
    outer["items"] = [1, {"back": outer}]
    return outer


def nest_lists(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


OPEN: list[Any] = []


def opened_file() -> Any:
    handle = Path(__file__).open(encoding="utf-8")  # noqa: SIM115 - closed by the fixture below
    OPEN.append(handle)
    return handle


def new_socket() -> socket.socket:
    sock = socket.socket()
    OPEN.append(sock)
    return sock


@pytest.fixture(autouse=True)
def _close_opened() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


@dataclass(frozen=True)
class Case:
    """One bad input: ``make(bot)`` returns the whole user_data of user 2.

    Without ``error`` it must round-trip to ``expected(loading_bot)`` (default: what was made).
    With ``error``, that exception is raised with ``path``, ``value_type`` and ``reason`` (a part of
    the reason), and nothing of user 2 is written.
    """

    id: str
    make: Callable[[Bot], Any]
    error: type[Exception] | None = None
    path: str | None = None
    value_type: str | None = None
    reason: str | None = None
    expected: Callable[[Bot], Any] | None = None
    warns: str | None = None
    marks: tuple[Any, ...] = field(default=())


NOT_SUPPORTED = "not supported"
ENC = EncodingError

CASES = [
    # --- objects that cannot be stored
    Case("custom-instance", lambda _: {"bad": Plain(1)}, ENC, "['bad']",
         "tests.test_bad_input.Plain", NOT_SUPPORTED),
    Case("lambda", lambda _: {"bad": lambda: 1}, ENC, "['bad']", "function", NOT_SUPPORTED),
    Case("function", lambda _: {"bad": [function]}, ENC, "['bad'][0]", "function", NOT_SUPPORTED),
    Case("builtin", lambda _: {"bad": {"f": print}}, ENC, "['bad']['f']",
         "builtin_function_or_method", NOT_SUPPORTED),
    Case("generator", lambda _: {"bad": generator()}, ENC, "['bad']", "generator", NOT_SUPPORTED),
    Case("open-file", lambda _: {"bad": opened_file()}, ENC, "['bad']", "_io.TextIOWrapper",
         NOT_SUPPORTED),
    Case("socket", lambda _: {"bad": new_socket()}, ENC, "['bad']", "socket.socket",
         NOT_SUPPORTED),
    Case("class", lambda _: {"bad": Plain}, ENC, "['bad']", "type", NOT_SUPPORTED),
    Case("memoryview", lambda _: {"bad": memoryview(b"x")}, ENC, "['bad']", "memoryview",
         NOT_SUPPORTED),
    Case("defaultdict-of-a-lambda", lambda _: {"bad": collections.defaultdict(lambda: 0)}, ENC,
         "['bad']", "collections.defaultdict", "default_factory"),
    Case("instance-as-key", lambda _: {"bad": {Plain(1): 1}}, ENC, None,
         "tests.test_bad_input.Plain", NOT_SUPPORTED),
    # --- standard containers beyond the JSON-like ones
    Case("collections", lambda _: {"dd": collections.defaultdict(list, {1: [2]}),
                                   "od": collections.OrderedDict([("b", 1), ("a", 2)]),
                                   "counter": collections.Counter("abracadabra"),
                                   "deque": collections.deque([1, (2,)], maxlen=5),
                                   "bytearray": bytearray(b"\x00\x01"),
                                   "sets": [set(), frozenset({1, "a", (2,)})]}),
    # --- bots
    Case("bot-of-another-token", lambda _: {"bad": Bot("123:OTHER-TOKEN"), "n": 1},
         expected=lambda _: {"bad": None, "n": 1}, warns="other than the application's bot"),
    Case("the-application-bot", lambda bot: {"bot": bot, "n": [bot]},
         expected=lambda bot: {"bot": bot, "n": [bot]}),
    # --- cycles
    Case("self-referencing-dict", lambda _: {"bad": cycle_dict()}, ENC, "['bad']['self']",
         "dict", "reference cycle"),
    Case("self-referencing-list", lambda _: {"bad": cycle_list()}, ENC, "['bad'][1]", "list",
         "reference cycle"),
    Case("cycle-through-a-list", lambda _: {"bad": cycle_through_list()}, ENC,
         "['bad']['items'][1]['back']", "dict", "reference cycle"),
    Case("shared-not-cyclic", lambda _: {"a": (shared := [1, 2]), "b": shared, "c": [shared]}),
    # --- size
    Case("string-over-16MiB", lambda _: {"bad": "x" * (17 * MiB)}, DocumentTooLargeError),
    Case("bytes-of-16MiB", lambda _: {"bad": b"\x00" * (16 * MiB)}, DocumentTooLargeError),
    Case("many-small-values-over-16MiB", lambda _: {str(i): "y" * 1024 for i in range(17 * 1024)},
         DocumentTooLargeError),
    Case("just-under-the-limit", lambda _: {"big": "z" * (15 * MiB)}),
    # --- numbers
    Case("ints-beyond-64-bits", lambda _: {"bad": [2**63, -(2**63) - 1, 2**64, -(2**100), 10**40],
                                           "edges": [2**63 - 1, -(2**63), 2**31, -(2**31) - 1]}),
    Case("big-int-keys", lambda _: {2**64: "a", -(2**70): "b", 10**30: {2**65: 1}}),
    Case("nan-and-infinities", lambda _: {"bad": [math.nan, math.inf, -math.inf, -0.0],
                                          "nan": math.nan, "nested": {"inf": (math.inf,)}}),
    Case("decimal-specials", lambda _: {"d": [decimal.Decimal("NaN"), decimal.Decimal("-Infinity"),
                                              decimal.Decimal("-0"), decimal.Decimal("1E+400"),
                                              decimal.Decimal("1.10")]}),
    Case("complex", lambda _: {"c": [complex(1, -0.0), complex(math.inf, math.nan)]}),
    # --- keys that MongoDB treats specially
    Case("keys-with-dots", lambda _: {"a.b": 1, "x": {"c.d.e": [1]}, ".": 2, "a.": 3, ".b": 4}),
    Case("keys-starting-with-dollar", lambda _: {"$where": "1", "$set": {"$inc": 2}, "$": 3,
                                                 "x": [{"$gt": ""}]}),
    Case("key-named-_id", lambda _: {"_id": 1, "n": {"_id": {"_id": 2}}}),
    Case("key-named-__type__", lambda _: {"__type__": "tuple", "value": [1],
                                          "n": {"__type__": "set", "value": []}}),
    Case("empty-and-nul-keys", lambda _: {"": 1, "a\x00b": 2, "n": {"": {"\x00": 3}}}),
    # --- non-str keys of every kind
    Case("int-keys", lambda _: {1: "a", 2: {3: "b"}}),
    Case("negative-int-keys", lambda _: {-1: "a", -(2**40): "b"}),
    Case("bool-keys", lambda _: {True: "t", False: "f", "s": 1}),
    Case("none-key", lambda _: {None: "n", "s": {None: None}}),
    Case("float-keys", lambda _: {1.5: "a", -0.25: "b", math.inf: "c", 1e300: "d"}),
    Case("tuple-keys", lambda _: {(1, "a"): 1, (): 2, ((1, 2), (3,)): 3}),
    Case("frozenset-keys", lambda _: {frozenset({1, 2}): "a", frozenset(): "b"}),
    Case("bytes-keys", lambda _: {b"a": 1, b"\x00\xff": 2, b"": 3}),
    Case("enum-keys", lambda _: {Color.RED: 1, Level.LOW: 2}),
    Case("datetime-keys", lambda _: {dtm.datetime(2024, 1, 2, 3, 4, 5, 6): "naive",
                                     dtm.datetime(2024, 1, 2, tzinfo=dtm.timezone.utc): "utc",
                                     dtm.date(2024, 1, 2): "date", dtm.time(1, 2): "time"}),
    Case("decimal-uuid-keys", lambda _: {decimal.Decimal("1.50"): "d",
                                         uuid.UUID(int=1): "u", dtm.timedelta(days=1): "td"}),
    Case("mixed-keys", lambda _: {1: "int", "1": "str", 1.5: "float", None: "none",
                                  (1,): "tuple", b"1": "bytes", frozenset({1}): "fs"}),
    # --- nesting
    Case("nesting-beyond-bson-limit", lambda _: {"bad": nest_lists(150)}, ENC, None, "list",
         "nesting deeper"),
    Case("deep-but-fine", lambda _: {"ok": nest_lists(60)}),
    # --- strings BSON cannot hold
    Case("lone-surrogate", lambda _: {"bad": "\ud800"}, ENC, "['bad']", "str", "surrogate"),
    Case("lone-surrogate-in-key", lambda _: {"n": {"\udfff": 1}}, ENC, "['n']", "str",
         "surrogate"),
    # a top-level key is checked by the encoder too: the batch of the other entities is written
    Case("lone-surrogate-in-a-top-level-key", lambda _: {"ok": 1, "\ud800": 2}, ENC,
         "['\\ud800']", "str", "the key cannot be stored as UTF-8"),
    Case("lone-surrogate-in-a-mixed-dict-key", lambda _: {1: 1, "\ud800": 2}, ENC,
         "['\\ud800']", "str", "the key cannot be stored as UTF-8"),
    Case("int-over-the-digit-limit", lambda _: {"n": [10**5000]}, ENC, "['n'][0]", "int",
         "digits cannot be stored"),
    Case("int-key-over-the-digit-limit", lambda _: {10**5000: 1}, ENC, "[<int of 16610 bits>]",
         "int", "digits cannot be stored"),
    # --- time zones: stored faithfully or refused, never changed to a fixed offset
    Case("pytz-zones", lambda _: {"at": [pytz.timezone("Europe/Berlin").localize(
        dtm.datetime(2024, 7, 1, 12)), pytz.timezone("America/New_York").localize(
        dtm.datetime(2024, 1, 1, 12)), dtm.datetime(2024, 1, 1, tzinfo=pytz.utc),
        pytz.timezone("EST").localize(dtm.datetime(2024, 7, 1))]}),
    Case("pytz-zone-not-localized", lambda _: {"at": dtm.datetime(
        2024, 7, 1, tzinfo=pytz.timezone("Europe/Berlin"))}, ENC, "['at']", "datetime.datetime",
        "localize"),
    Case("zoneinfo-from-file", lambda _: {"at": dtm.datetime(2024, 7, 1, tzinfo=berlin_file())},
         ENC, "['at']", "datetime.datetime", "ZoneInfo without a key"),
    Case("other-tzinfo", lambda _: {"at": dtm.datetime(2024, 7, 1, tzinfo=Plus2())}, ENC, "['at']",
         "datetime.datetime", "cannot be stored faithfully"),
]  # fmt: skip


def others() -> dict[str, Any]:
    return {"user": {"ok": 1}, "chat": {"ok": -1}, "bot": {"ok": "bot"}}


def new_bot() -> ExtBot[Any]:
    return ExtBot(TOKEN, request=OfflineRequest(), get_updates_request=OfflineRequest())


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
async def test_bad_input(case: Case, make_persistence: Factory, db: Any) -> None:
    bot = new_bot()
    persistence = make_persistence()
    persistence.set_bot(bot)
    await persistence.get_user_data()
    value = case.make(bot)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = await asyncio.gather(
            persistence.update_user_data(1, others()["user"]),
            persistence.update_user_data(2, value),
            persistence.update_chat_data(-1, others()["chat"]),
            persistence.update_bot_data(others()["bot"]),
            persistence.update_conversation("talk", (1, 1), 3),
            return_exceptions=True,
        )
    outcome = results.pop(1)
    assert results == [None] * 4, results
    ptb_warnings = [str(w.message) for w in caught if issubclass(w.category, PTBUserWarning)]
    if case.warns:
        assert any(case.warns in text for text in ptb_warnings), ptb_warnings
    else:
        assert ptb_warnings == []

    if case.error is None:
        assert outcome is None, outcome
    else:
        assert isinstance(outcome, case.error), repr(outcome)
        assert isinstance(outcome, MongoPersistenceError)
        assert outcome.entity == "user_data[2]"  # type: ignore[attr-defined]
        if isinstance(outcome, EncodingError):
            if case.path is not None:
                assert outcome.path.startswith(case.path), outcome.path
            assert outcome.value_type == case.value_type
            assert case.reason in outcome.reason, outcome.reason
            assert outcome.entity in str(outcome) and outcome.value_type in str(outcome)
        else:
            assert isinstance(outcome, DocumentTooLargeError)
            assert outcome.size > outcome.limit
    await persistence.flush()

    loading_bot = new_bot()
    loader = make_persistence()
    loader.set_bot(loading_bot)
    users = await loader.get_user_data()
    assert users[1] == others()["user"]
    assert await loader.get_chat_data() == {-1: others()["chat"]}
    assert await loader.get_bot_data() == others()["bot"]
    assert await loader.get_conversations("talk") == {(1, 1): 3}
    if case.error is None:
        expected = case.expected(loading_bot) if case.expected else case.make(loading_bot)
        assert_same(expected, users[2])
        if case.id == "the-application-bot":
            assert users[2]["bot"] is loading_bot
    else:
        assert 2 not in users
    await loader.flush()


@pytest.mark.parametrize("kind", ["list", "dict", "tuple", "set-in-list", "int-keys", "mixed-keys"])
async def test_whatever_nesting_the_codec_accepts_the_server_stores(
    kind: str, make_persistence: Factory
) -> None:
    """The deepest value the codec accepts round-trips over the wire; one level more is refused
    with an EncodingError (and not by the server)."""
    wrap: dict[str, Callable[[Any], Any]] = {
        "list": lambda v: [v],
        "dict": lambda v: {"k": v},
        "tuple": lambda v: (v,),
        "set-in-list": lambda v: [frozenset({v}) if not isinstance(v, list) else v],
        "int-keys": lambda v: {7: v},
        "mixed-keys": lambda v: {7: v, "s": 0},
    }
    make = wrap[kind]

    def nest(levels: int) -> Any:
        value: Any = 1
        for _ in range(levels):
            value = make(value)
        return value

    persistence = make_persistence()
    await persistence.get_user_data()
    levels = 200  # from far too deep down to the first level update_user_data accepts
    while True:
        assert levels > 1
        try:
            await persistence.update_user_data(1, {"v": nest(levels)})
        except EncodingError as exc:
            assert "nesting deeper" in str(exc)
            levels -= 1
        else:
            break
    assert levels < 200
    with pytest.raises(EncodingError, match="nesting deeper"):
        await persistence.update_user_data(2, {"v": nest(levels + 1)})
    await persistence.flush()
    loader = make_persistence()
    assert_same({1: {"v": nest(levels)}}, await loader.get_user_data())
    await loader.flush()


# ============================================================================ context types
class Profile:
    """A user_data class whose __init__ needs arguments."""

    def __init__(self, owner: str, *, visits: int = 0) -> None:
        self.owner = owner
        self.visits = visits
        self.tags: set[str] = set()


class Room(dict):  # type: ignore[type-arg]
    """A chat_data dict subclass whose __init__ needs arguments and that has attributes."""

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title = title


class Slotted:
    __slots__ = ("x",)

    def __init__(self, x: int) -> None:
        self.x = x


async def test_context_types_whose_init_takes_arguments(make_persistence: Factory, db: Any) -> None:
    types = ContextTypes(user_data=Profile, chat_data=Room)
    persistence = make_persistence(context_types=types)
    await persistence.get_user_data()
    profile = Profile("ann", visits=3)
    profile.tags.add("vip")
    room = Room("lobby")
    room[1] = ("x", 2)
    await persistence.update_user_data(1, profile)
    await persistence.update_chat_data(-1, room)
    await persistence.flush()

    loader = make_persistence(context_types=types)
    users = await loader.get_user_data()
    chats = await loader.get_chat_data()
    await loader.flush()
    assert type(users[1]) is Profile
    assert_same({"owner": "ann", "visits": 3, "tags": {"vip"}}, vars(users[1]))
    assert type(chats[-1]) is Room
    assert_same({1: ("x", 2)}, dict(chats[-1]))
    assert chats[-1].title == "lobby"


async def test_a_data_class_without_dict_is_refused_clearly(
    make_persistence: Factory, db: Any
) -> None:
    persistence = make_persistence(context_types=ContextTypes(user_data=Slotted))
    await persistence.get_user_data()
    results = await asyncio.gather(
        persistence.update_user_data(1, Slotted(1)),
        persistence.update_bot_data({"ok": 1}),
        return_exceptions=True,
    )
    assert isinstance(results[0], EncodingError)
    assert results[0].entity == "user_data[1]"
    assert "Slotted" in results[0].value_type
    assert results[1] is None
    await persistence.flush()


# ============================================================================ concurrent mutation
async def test_data_mutated_by_another_thread_while_it_is_encoded(
    make_persistence: Factory,
    db: Any,
) -> None:
    """Each write either stores a consistent snapshot or fails with a clear EncodingError; the
    other entities of the run are written."""
    data: dict[Any, Any] = {i: {"n": i, "s": {i, -i}} for i in range(2000)}
    stop = threading.Event()
    mutations = [0]

    def mutate() -> None:
        i = 0
        while not stop.is_set():
            mutations[0] = i
            data[f"k{i % 300}"] = {i}
            data.pop(f"k{(i + 150) % 300}", None)
            data[i % 2000]["s"].add(i)
            data[i % 2000]["s"].discard(i - 2000)
            i += 1

    persistence = make_persistence()
    await persistence.get_user_data()
    worker = threading.Thread(target=mutate)
    worker.start()
    outcomes: list[Any] = []
    try:
        for run in range(10):
            results = await asyncio.gather(
                persistence.update_user_data(1, data),
                persistence.update_user_data(2, {"run": run}),
                return_exceptions=True,
            )
            outcomes.append(results[0])
            assert results[1] is None, results[1]
    finally:
        stop.set()
        worker.join()
    for outcome in outcomes:
        assert outcome is None or (
            isinstance(outcome, EncodingError)
            and outcome.entity == "user_data[1]"
            and "changed while it was read" in outcome.reason
        ), repr(outcome)
    await persistence.flush()

    loader = make_persistence()
    users = await loader.get_user_data()
    await loader.flush()
    assert mutations[0] > 0
    assert users[2] == {"run": 9}
    if any(outcome is None for outcome in outcomes):
        stored = users[1]
        for key, value in stored.items():
            if isinstance(key, int):
                assert value["n"] == key and isinstance(value["s"], set)
            else:
                assert key.startswith("k") and isinstance(value, set)
        assert all(i in stored for i in range(2000))


# ============================================================================ a real Application
def bad_data_handler() -> MessageHandler[Any, Any, None]:
    async def callback(update: Update, context: CallbackContext[Any, Any, Any, Any]) -> None:
        assert update.effective_user is not None and context.user_data is not None
        uid = update.effective_user.id
        bad: dict[int, Any] = {
            1: lambda: "a lambda",
            2: cycle_dict(),
            3: "x" * (17 * MiB),
            4: nest_lists(150),
            5: Plain(5),
        }
        context.user_data["value"] = bad.get(uid, {2**70: "fine", "$where": "fine", "a.b": 1})

    return MessageHandler(filters.ALL, callback)


async def test_bad_data_in_a_real_application_reaches_the_error_handler(
    make_persistence: Factory,
    db: Any,
) -> None:
    persistence = make_persistence()
    app, _ = build_application(persistence)
    app.add_handler(bad_data_handler())
    errors: list[BaseException] = []

    async def on_error(_: object, context: CallbackContext[Any, Any, Any, Any]) -> None:
        assert context.error is not None
        errors.append(context.error)

    app.add_error_handler(on_error)
    async with app:
        for uid in range(1, 9):
            await app.process_update(message_update(app, "hi", user_id=uid))
        app.bot_data["fine"] = True
        await app.update_persistence()
        by_entity = {getattr(error, "entity", repr(error)): error for error in errors}
        assert set(by_entity) == {f"user_data[{uid}]" for uid in range(1, 6)}, errors
        assert isinstance(by_entity["user_data[3]"], DocumentTooLargeError)
        assert all(
            isinstance(by_entity[f"user_data[{uid}]"], EncodingError) for uid in (1, 2, 4, 5)
        )
        for uid in range(1, 6):
            app.user_data[uid].pop("value")  # so that the shutdown's final run writes them
        app.mark_data_for_update_persistence(user_ids=range(1, 6))

    loader = make_persistence()
    users = await loader.get_user_data()
    bot_data = await loader.get_bot_data()
    await loader.flush()
    assert_same(
        {uid: {"value": {2**70: "fine", "$where": "fine", "a.b": 1}} for uid in range(6, 9)},
        {uid: users[uid] for uid in range(6, 9)},
    )
    assert all(users[uid] == {} for uid in range(1, 6))
    assert bot_data == {"fine": True}
