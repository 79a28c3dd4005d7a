"""Hostile documents, planted in MongoDB over the wire by whoever can write to the database.

Loading one never imports a module, runs code other than the constructors of the stored types,
allocates more than the document's own size, or raises anything but a DecodingError naming the
entity and the path. With on_bad_document="skip" every other entity loads, the bad document is
logged once without its content, and it is never overwritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import enum
import logging
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest

from mongo_persistence import (
    BadDocumentError,
    DecodingError,
    MongoPersistence,
    PersistenceWriteError,
    TypeCodec,
)

Factory = Callable[..., MongoPersistence[Any, Any, Any]]
T = "__type__"  # the key of a tagged value (README "Types: the codec")
MAX_DECODE_DEPTH = 100  # deeper is a DecodingError (README "Security", "Loading never runs code")
LOG_LINE_MAX = 1000  # every log line of the library is capped (README "Security")

D0 = dtm.datetime(2024, 1, 1)
ONE_HOUR = dtm.timedelta(hours=1)
GOOD = {"name": "Ada", "cart": {T: "tuple", "value": [1, 2]}}
NOT_IMPORTED = "json.tool"  # a submodule of an imported package, harmless to import


class Color(enum.Enum):
    RED = "red"


class Pair(NamedTuple):
    a: int
    b: int


class Raising(enum.Enum):
    """An enum whose value lookup raises whatever the document asks for (a hostile __init__)."""

    A = 1

    @classmethod
    def _missing_(cls, value: object) -> Any:
        kinds: dict[Any, type[BaseException]] = {
            "exit": SystemExit,
            "interrupt": KeyboardInterrupt,
            "cancel": asyncio.CancelledError,
            "generator": GeneratorExit,
        }
        raise kinds[value]()


@dataclass(frozen=True)
class Case:
    id: str
    value: Any
    path: str
    """The path of the error; "" for the value itself, planted as user_data[2]['x']."""
    reason: str
    whole: bool = False
    """The value is the whole data field (its path is the error's path)."""


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"k": value}
    return value


def ref(name: str) -> str:
    return f"{__name__}:{name}"


CASES = [
    # ---------------------------------------------------------------- names: never imported
    Case(
        "enum-imports", {T: "enum", "class": f"{NOT_IMPORTED}:X", "name": "A"}, "", "not imported"
    ),
    Case(
        "namedtuple-imports",
        {T: "namedtuple", "class": f"{NOT_IMPORTED}:X", "value": [1]},
        "",
        "not imported",
    ),
    Case(
        "telegram-imports",
        {T: "telegram", "class": f"{NOT_IMPORTED}:X", "value": {}},
        "",
        "not imported",
    ),
    Case("enum-class-not-text", {T: "enum", "class": 5, "name": "A"}, "", "must be a string"),
    Case("enum-no-member", {T: "enum", "class": ref("Color"), "name": "mro"}, "", "no member"),
    Case(
        "namedtuple-arity",
        {T: "namedtuple", "class": ref("Pair"), "value": [1, 2, 3]},
        "",
        "2 fields, 3 values",
    ),
    Case("telegram-bot", {T: "telegram", "class": "Bot", "value": {}}, "", "not a TelegramObject"),
    Case(
        "telegram-function",
        {T: "telegram", "class": "helpers", "value": {}},
        "",
        "not a TelegramObject",
    ),
    Case(
        "telegram-dunder",
        {T: "telegram", "class": "__loader__", "value": {}},
        "",
        "not a TelegramObject",
    ),
    Case(
        "telegram-state-imports",
        {T: "telegram", "class": f"{NOT_IMPORTED}:X", "state": {}},
        "",
        "not imported",
    ),
    Case(
        "telegram-state-dunder-attribute",
        {T: "telegram", "class": "User", "state": {"__class__": "x", "id": 1}},
        "",
        "no attribute name",
    ),
    Case(
        "telegram-state-bot-not-a-bot",
        {T: "telegram", "class": "User", "state": {"_bot": "SECRET", "id": 1}},
        "",
        "'_bot' is not a bot",
    ),
    Case(
        "telegram-state-not-a-document",
        {T: "telegram", "class": "User", "state": "SECRET"},
        "",
        "must be",
    ),
    Case(
        "qualname-not-identifier",
        {T: "enum", "class": "os:path.__class__.mro", "name": "A"},
        "",
        "not defined",
    ),
    # ---------------------------------------------------------------- hostile code raising
    Case(
        "system-exit",
        {T: "enum", "class": ref("Raising"), "name": None, "value": "exit"},
        "",
        "SystemExit",
    ),
    Case(
        "keyboard-interrupt",
        {T: "enum", "class": ref("Raising"), "name": None, "value": "interrupt"},
        "",
        "KeyboardInterrupt",
    ),
    Case(
        "cancelled-error",
        {T: "enum", "class": ref("Raising"), "name": None, "value": "cancel"},
        "",
        "CancelledError",
    ),
    Case(
        "generator-exit",
        {T: "enum", "class": ref("Raising"), "name": None, "value": "generator"},
        "",
        "GeneratorExit",
    ),
    # ---------------------------------------------------------------- fields: exact types
    Case("bytearray-of-1GB", {T: "bytearray", "value": 1_000_000_000}, "", "must be binary data"),
    Case("set-of-a-string", {T: "set", "value": "xyz"}, "", "must be an array"),
    Case("tuple-of-a-string", {T: "tuple", "value": "1,2"}, "", "must be an array"),
    Case("frozenset-of-a-document", {T: "frozenset", "value": {"a": 1}}, "", "must be an array"),
    Case("tuple-missing-value", {T: "tuple"}, "", "'value' is missing"),
    Case("tuple-extra-field", {T: "tuple", "value": [], "x": 1}, "", "unexpected field"),
    Case("int-not-text", {T: "int", "value": 5}, "", "must be a string"),
    Case("int-underscores", {T: "int", "value": "1_000"}, "", "decimal text of an int"),
    Case("int-spaces", {T: "int", "value": " 12 "}, "", "decimal text of an int"),
    Case("int-too-long", {T: "int", "value": "9" * 5000}, "", "decimal text of an int"),
    Case("intdict-key", {T: "intdict", "value": {"abc": 1}}, "['abc']", "decimal text of an int"),
    Case("intdict-leading-zero", {T: "intdict", "value": {"01": 1}}, "['01']", "decimal text"),
    Case("intdict-of-a-list", {T: "intdict", "value": [1]}, "", "must be a document"),
    Case("dict-items-not-pairs", {T: "dict", "value": {}, "items": [["a"]]}, "", "pair"),
    Case("dict-items-not-a-list", {T: "dict", "value": {}, "items": "ab"}, "", "must be an array"),
    Case("ordereddict-triples", {T: "OrderedDict", "items": [[1, 2, 3]]}, "", "pair"),
    Case("counter-of-a-string", {T: "Counter", "value": "aab"}, "", "must be a document"),
    Case(
        "counter-of-a-tagged-list",
        {T: "Counter", "value": {T: "tuple", "value": ["a"]}},
        "",
        "not a mapping",
    ),
    Case("deque-maxlen-negative", {T: "deque", "value": [], "maxlen": -1}, "", "out of range"),
    Case("deque-maxlen-text", {T: "deque", "value": [], "maxlen": "3"}, "", "'maxlen' must be"),
    Case("deque-overfull", {T: "deque", "value": [1, 2, 3], "maxlen": 2}, "", "more items"),
    Case(
        "defaultdict-factory",
        {T: "defaultdict", "factory": "os.system", "value": {}},
        "",
        "unknown factory",
    ),
    Case(
        "timedelta-text",
        {T: "timedelta", "days": "1", "seconds": 0, "microseconds": 0},
        "",
        "'days' must be an int",
    ),
    Case(
        "timedelta-float",
        {T: "timedelta", "days": 1.5, "seconds": 0, "microseconds": 0},
        "",
        "'days' must be an int",
    ),
    Case(
        "timedelta-bool",
        {T: "timedelta", "days": True, "seconds": 0, "microseconds": 0},
        "",
        "'days' must be an int",
    ),
    Case("complex-short", {T: "complex", "value": [1.0]}, "", "[real, imag]"),
    Case("complex-texts", {T: "complex", "value": ["1", "2"]}, "", "[real, imag]"),
    Case("datetime-not-text", {T: "datetime", "value": 5}, "", "must be a string"),
    Case("datetime-bad-text", {T: "datetime", "value": "SECRET-day"}, "", "ValueError"),
    Case(
        "datetime-zone-path",
        {T: "datetime", "value": "2024-01-01T00:00:00", "tz": "../../../etc/passwd"},
        "",
        "unknown time zone",
    ),
    Case(
        "datetime-unknown-zone",  # zoneinfo would import the tzdata package for it
        {T: "datetime", "value": "2024-01-01T00:00:00", "tz": "Nowhere/Atlantis"},
        "",
        "unknown time zone",
    ),
    Case(
        "datetime-fold",
        {T: "datetime", "value": "2024-01-01T00:00:00", "fold": 7},
        "",
        "'fold' must be 0 or 1",
    ),
    # ---------------------------------------------------------------- format 2 dates
    Case("datetime-date-text", {T: "datetime", "date": "2024-01-01"}, "", "'date' must be a date"),
    Case("datetime-us-over", {T: "datetime", "date": D0, "us": 1000}, "", "'us' must be 0 to 999"),
    Case("datetime-us-negative", {T: "datetime", "date": D0, "us": -1}, "", "'us' must be 0 to"),
    Case("datetime-us-float", {T: "datetime", "date": D0, "us": 1.5}, "", "'us' must be an int"),
    Case("datetime-naive-false", {T: "datetime", "date": D0, "naive": False}, "", "must be true"),
    Case(
        "datetime-naive-with-offset",
        {T: "datetime", "date": D0, "naive": True, "offset": "+01:00"},
        "",
        "without offset or zone",
    ),
    Case(
        "datetime-offset-text",
        {T: "datetime", "date": D0, "offset": "SECRET"},
        "",
        "not a UTC offset",
    ),
    Case(
        "datetime-offset-range",
        {T: "datetime", "date": D0, "offset": "+24:00"},
        "",
        "'offset' is out of range",
    ),
    Case(
        "datetime-zone-without-offset",
        {T: "datetime", "date": D0, "tz": "Europe/Berlin"},
        "",
        "a time zone without an offset",
    ),
    Case(
        "datetime-offset-not-the-zones",
        {T: "datetime", "date": D0, "offset": "+05:00", "tz": "Europe/Berlin"},
        "",
        "not the zone's",
    ),
    Case(
        "datetime-two-zones",
        {T: "datetime", "date": D0, "offset": "+01:00", "tz": "Europe/Berlin", "tzname": "CET"},
        "",
        "more than one time zone",
    ),
    Case(
        "datetime-new-zone-path",
        {T: "datetime", "date": D0, "offset": "+01:00", "tz": "../../../etc/passwd"},
        "",
        "unknown time zone",
    ),
    Case("datetime-extra-field", {T: "datetime", "date": D0, "x": 1}, "", "unexpected field"),
    Case("datetime-new-fold", {T: "datetime", "date": D0, "fold": 2}, "", "'fold' must be 0 or 1"),
    Case("date-not-midnight", {T: "date", "date": D0 + ONE_HOUR}, "", "midnight UTC"),
    Case("date-text-in-date", {T: "date", "date": "2024-01-01"}, "", "'date' must be a date"),
    Case("date-both", {T: "date", "date": D0, "value": "2024-01-01"}, "", "unexpected field"),
    Case(
        "timedelta-micro-over",
        {T: "timedelta", "seconds": 1, "microseconds": 10**6},
        "",
        "'microseconds' must be 0 to 999999",
    ),
    Case("timedelta-seconds-float", {T: "timedelta", "seconds": 1.5}, "", "'seconds' must be an"),
    Case("timedelta-huge", {T: "timedelta", "seconds": 2**62}, "", "OverflowError"),
    Case("timedelta-no-seconds", {T: "timedelta", "microseconds": 1}, "", "'seconds' is missing"),
    Case("uuid-not-text", {T: "uuid", "value": 12}, "", "must be a string"),
    Case("decimal-not-text", {T: "decimal", "value": 1.5}, "", "must be a string"),
    Case("bot-unknown-text", {T: "bot", "unknown": "yes"}, "", "must be a bool"),
    Case("custom-missing-value", {T: "custom", "codec": "x"}, "", "'value' is missing"),
    Case("pickle-not-binary", {T: "pickle", "value": "x"}, "", "must be binary data"),
    Case("tag-null", {T: None}, "", "unknown __type__ tag None"),
    # ---------------------------------------------------------------- paths and depth
    Case(
        "nested-path",
        {"a": [0, {"b": {T: "set", "value": "x"}}]},
        "['a'][1]['b']",
        "must be an array",
        whole=True,
    ),
    Case(
        "too-deep", nested(MAX_DECODE_DEPTH + 50), "['k']" * MAX_DECODE_DEPTH, "nested deeper", True
    ),
]


def planted(case: Case) -> Any:
    return case.value if case.whole else {"x": case.value}


async def plant(db: Any, case: Case) -> list[Any]:
    """One good user, one hostile user, one good chat; returns what the database holds."""
    await db["user_data"].insert_many(
        [{"_id": 1, "data": GOOD}, {"_id": 2, "data": planted(case)}, {"_id": 3, "data": GOOD}]
    )
    await db["chat_data"].insert_one({"_id": -1, "data": GOOD})
    return await stored(db)


async def stored(db: Any) -> list[Any]:
    docs = []
    for kind in ("user_data", "chat_data", "bot_data"):
        docs += await db[kind].find({}, sort=[("_id", 1)]).to_list()
    return docs


def modules() -> set[str]:
    return set(sys.modules)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
async def test_a_hostile_document_is_a_clean_decoding_error(
    case: Case, make_persistence: Factory, db: Any
) -> None:
    before = await plant(db, case)
    path = case.path if case.whole else f"['x']{case.path}"

    imported = modules()
    persistence = make_persistence()
    with pytest.raises(DecodingError) as info:
        await persistence.get_user_data()
    assert modules() == imported
    assert info.value.entity == "user_data[2]"
    assert info.value.path == path, info.value.path
    assert case.reason in info.value.reason, info.value.reason
    assert "SECRET" not in str(info.value)  # never a value of the document
    await persistence.flush()
    assert await stored(db) == before


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES[::7]])
async def test_skip_loads_everything_else_and_never_overwrites_the_bad_document(
    case: Case, make_persistence: Factory, db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    before = await plant(db, case)
    imported = modules()
    persistence = make_persistence(on_bad_document="skip")
    caplog.set_level(logging.DEBUG, logger="mongo_persistence")
    users = await persistence.get_user_data()
    assert modules() == imported
    assert users == {1: {"name": "Ada", "cart": (1, 2)}, 3: {"name": "Ada", "cart": (1, 2)}}
    assert await persistence.get_chat_data() == {-1: {"name": "Ada", "cart": (1, 2)}}
    assert list(persistence.bad_documents) == ["user_data[2]"]
    records = [r for r in caplog.records if "user_data[2]" in r.getMessage()]
    assert len(records) == 1 and records[0].levelno == logging.ERROR

    # The bot goes on: the skipped user starts empty, and a write of it is refused...
    with pytest.raises(BadDocumentError) as info:
        await persistence.update_user_data(2, {"name": "new"})
    assert info.value.entity == "user_data[2]" and not info.value.kept
    await persistence.update_user_data(1, {"name": "Bob"})
    assert await stored(db) != before
    assert (await db["user_data"].find_one({"_id": 2}))["data"] == planted(case)
    # ...until the user decides: dropping the entity deletes the document.
    await persistence.drop_user_data(2)
    await persistence.update_user_data(2, {"name": "new"})
    assert (await db["user_data"].find_one({"_id": 2}))["data"] == {"name": "new"}
    await persistence.flush()


async def test_skip_in_lazy_mode_and_for_bot_data(make_persistence: Factory, db: Any) -> None:
    bad = {"x": {T: "set", "value": "xyz"}}
    await db["user_data"].insert_one({"_id": 2, "data": bad})
    await db["bot_data"].insert_one({"_id": "bot_data", "data": bad})
    persistence = make_persistence(on_bad_document="skip", lazy=True)
    assert await persistence.get_bot_data() == {}
    user: dict[str, Any] = {}
    await persistence.refresh_user_data(2, user)
    assert user == {}
    assert sorted(persistence.bad_documents) == ["bot_data", "user_data[2]"]
    for write in (
        persistence.update_bot_data({"a": 1}),
        persistence.update_user_data(2, {"a": 1}),
    ):
        with pytest.raises(BadDocumentError):
            await write
    assert (await db["bot_data"].find_one({}))["data"] == bad
    assert (await db["user_data"].find_one({}))["data"] == bad
    await persistence.flush()

    raising = make_persistence(lazy=True)
    with pytest.raises(DecodingError, match=r"user_data\[2\]\['x'\]"):
        await raising.refresh_user_data(2, {})
    await raising.flush()


def test_on_bad_document_is_checked() -> None:
    with pytest.raises(ValueError, match="on_bad_document must be 'raise' or 'skip'"):
        MongoPersistence("mongodb://127.0.0.1:1", on_bad_document="ignore")


# ============================================================================ interrupts
def interrupting(value: Any) -> Any:
    """A TypeCodec's decoder during which the user presses Ctrl-C."""
    signal.raise_signal(signal.SIGINT)
    return value  # the signal handler runs here at the latest


def cancelling(value: Any) -> Any:
    """A TypeCodec's decoder during which the loading task is cancelled (e.g. by a shutdown)."""
    task = asyncio.current_task()
    assert task is not None
    task.cancel()
    return value


@contextlib.contextmanager
def ctrl_c_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt where the program is (Python's default handler; PTB's
    run_polling(stop_signals=None)). Under asyncio.run it cancels the main task instead: that is
    the cancellation case below."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("mode", ["raise", "skip"])
async def test_a_real_ctrl_c_while_decoding_propagates(
    mode: str, make_persistence: Factory, db: Any
) -> None:
    doc = {"_id": 1, "data": {"x": {T: "custom", "codec": "c", "value": 1}}}
    await db["user_data"].insert_one(doc)
    await db["bot_data"].insert_one({**doc, "_id": "bot_data"})
    codec = TypeCodec(int, "c", encode=int, decode=interrupting)
    persistence = make_persistence(codecs=[codec], on_bad_document=mode)
    with ctrl_c_raises():
        with pytest.raises(KeyboardInterrupt):
            await persistence.get_user_data()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        # Through the loading of bot_data too.
        with pytest.raises(KeyboardInterrupt):
            await persistence.get_bot_data()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert persistence.bad_documents == {}
    await persistence.flush()


@pytest.mark.parametrize("mode", ["raise", "skip"])
async def test_a_cancellation_while_loading_propagates(
    mode: str, make_persistence: Factory, db: Any
) -> None:
    await db["user_data"].insert_many(
        [{"_id": i, "data": {"x": {T: "custom", "codec": "c", "value": i}}} for i in range(3)]
    )
    codec = TypeCodec(int, "c", encode=int, decode=cancelling)
    persistence = make_persistence(codecs=[codec], on_bad_document=mode)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(persistence.get_user_data())
    assert persistence.bad_documents == {}
    await persistence.flush()


async def test_a_user_codec_raising_system_exit_is_a_decoding_error(
    make_persistence: Factory, db: Any
) -> None:
    def exits(_: Any) -> Any:
        raise SystemExit(0)

    doc = {"_id": "bot_data", "data": {"a": {T: "custom", "codec": "c", "value": 1}}, "format": 2}
    await db["bot_data"].insert_one(doc)
    persistence = make_persistence(codecs=[TypeCodec(int, "c", encode=int, decode=exits)])
    with pytest.raises(DecodingError, match="the decoder of codec 'c' failed: SystemExit") as info:
        await persistence.get_bot_data()
    assert info.value.entity == "bot_data" and info.value.path == "['a']"
    await persistence.flush()
    assert await db["bot_data"].find_one() == doc


# ============================================================================ logs
SECRETS = ["ada.private@example.org", "IBAN-DE00-SECRET", "diagnosis-SECRET"]


def every_text(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


async def test_no_log_record_holds_user_data_and_none_exceeds_the_cap(
    make_persistence: Factory, db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A DBA adds a unique index: the refused writes are logged and raised with the entity, the
    operation and the server's code and message, never the document (the driver's 'full error'
    holds it whole). Skipped bad documents are logged without their content. Every line is capped,
    also for an entity whose name alone is longer than the cap."""
    caplog.set_level(logging.DEBUG)
    email, iban, diagnosis = SECRETS
    await db["user_data"].create_index("data.email", unique=True)
    await db["conversations"].create_index("state", unique=True)
    await db["chat_data"].insert_one(
        {"_id": -5, "data": {"iban": iban, "bad": {T: "set", "value": diagnosis}}}
    )
    persistence = make_persistence(on_bad_document="skip")
    assert await persistence.get_chat_data() == {}
    await persistence.update_user_data(1, {"email": email, "iban": iban})
    await persistence.update_conversation("n" * 5000, (1,), diagnosis)

    results = await asyncio.gather(
        persistence.update_user_data(2, {"email": email, "note": diagnosis}),
        persistence.update_conversation("m" * 5000, (2,), diagnosis),
        return_exceptions=True,
    )
    for error in results:
        assert isinstance(error, PersistenceWriteError), error
        assert "E11000" in error.reason and "11000" in error.reason
        assert not any(secret in every_text(error) for secret in SECRETS), every_text(error)
    assert "user_data[2]" in str(results[0]) and "update" in str(results[0])

    records = [r for r in caplog.records if r.name.startswith("mongo_persistence")]
    assert any("user_data[2]" in r.getMessage() for r in records)
    assert any("chat_data[-5]" in r.getMessage() for r in records)
    capped = [r.getMessage() for r in records if r.getMessage().endswith("characters]")]
    assert capped  # the long names
    assert {len(message) for message in capped} == {LOG_LINE_MAX}  # cut at the cap, not before
    for record in records:
        message = record.getMessage()
        assert len(message) <= LOG_LINE_MAX, len(message)
        assert not any(secret in message for secret in SECRETS), message
    await persistence.flush()


@pytest.mark.parametrize("lazy", [False, True])
async def test_skip_with_refresh_never_merges_into_the_bad_document(
    lazy: bool, make_persistence: Factory, db: Any
) -> None:
    """refresh=True writes the bot's changed keys before reading: never into a skipped document,
    whether it was found bad at start-up (eager) or at its first update (lazy)."""
    bad = {"x": {T: "tuple", "value": "1,2"}, "keep": "me"}
    await db["user_data"].insert_one({"_id": 2, "data": bad})
    persistence = make_persistence(on_bad_document="skip", refresh=True, lazy=lazy)
    assert await persistence.get_user_data() == {}
    user: dict[str, Any] = {"new": 1}
    await persistence.refresh_user_data(2, user)
    assert user == {"new": 1}
    assert list(persistence.bad_documents) == ["user_data[2]"]
    with pytest.raises(BadDocumentError):
        await persistence.update_user_data(2, user)
    await persistence.refresh_user_data(2, user)
    assert (await db["user_data"].find_one({"_id": 2}))["data"] == bad
    await persistence.flush()
