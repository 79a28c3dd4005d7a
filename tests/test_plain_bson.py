"""Untagged documents decoded by PyMongo's C decoder give exactly what the decoder's walk gives.

The eager load reads documents as BSON and decodes one that holds no codec tag with
:func:`~mongo_persistence._codec.plain_bson.decode_plain` instead of the walk; these tests hold
it to the walk's result, type for type, for every BSON type a server stores, to the walk's depth
limit, and to the codec options it depends on; and they hold the documents read as BSON to what
the driver's decoding gave: the tagged ones, the bad ones (alone), the ones written elsewhere.
"""

from __future__ import annotations

import datetime as dtm
import uuid
from collections.abc import AsyncGenerator, Callable
from typing import Any

import bson
import pytest
from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.codec_options import CodecOptions
from bson.datetime_ms import DatetimeMS
from bson.errors import InvalidBSON
from bson.son import SON
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo.asynchronous.collection import AsyncCollection

from mongo_persistence import BadDocumentError, DecodingError, MongoPersistence
from mongo_persistence._codec.codec import MAX_DECODE_DEPTH, Codec
from mongo_persistence._codec.plain_bson import (
    data_bson,
    decode_plain,
    holds_tag,
    read_plainly,
    split_documents,
)
from mongo_persistence._storage.store import MongoStore
from tests.helpers.compare import same

Factory = Callable[..., MongoPersistence[Any, Any, Any]]

# What a server may hold that no tag marks: every BSON type PyMongo reads back.
keys = st.text(max_size=6).filter(lambda k: "\x00" not in k and k != "__type__")
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**63), 2**63 - 1).map(Int64),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.builds(Binary, st.binary(max_size=8), st.sampled_from([1, 3, 4, 5, 128])),
    st.datetimes(min_value=dtm.datetime(1900, 1, 1), max_value=dtm.datetime(2200, 1, 1)).map(
        lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
    ),
    st.just(ObjectId("65a1b2c3d4e5f60718293a4b")),
    st.sampled_from(["1.5", "-0", "NaN", "1E+10"]).map(Decimal128),
    st.just(Regex("^a.*", "i")),
    st.just(Timestamp(1700000000, 3)),
    st.just(MinKey()),
    st.just(MaxKey()),
    st.just(Code("x => x")),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)
documents = st.dictionaries(keys, values, max_size=5)


def walked(raw: bytes) -> Any:
    """What the eager load made of a document before: the driver's decoding, then the walk."""
    return Codec().decode(bson.decode(raw), copy=False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_an_untagged_document_decodes_as_the_walk_decodes_it(doc: dict[str, Any]) -> None:
    raw = bson.encode(doc)
    plain = decode_plain(raw)
    if plain is None:  # only when its bytes hold the tag's name (a text "__type__" too)
        assert holds_tag(raw)
        return
    assert same(walked(raw), plain) is None


def _nested(depth: int) -> dict[str, Any]:
    """A document of ``depth`` nested documents and arrays (the outermost is a document)."""
    value: Any = {"leaf": 1}
    for level in range(1, depth):
        value = [value] if level % 2 and level < depth - 1 else {"k": value}
    return dict(value)


@pytest.mark.parametrize("depth", [MAX_DECODE_DEPTH - 40, MAX_DECODE_DEPTH, MAX_DECODE_DEPTH + 1])
def test_nesting_near_the_limit_is_left_to_the_walk(depth: int) -> None:
    """Every nested container costs a 3 or 4 byte: under the limit's count, the walk cannot
    refuse it; from there on the walk decides (and refuses what is deeper than the limit)."""
    raw = bson.encode(_nested(depth))
    plain = decode_plain(raw)
    if depth > MAX_DECODE_DEPTH:
        assert plain is None
        with pytest.raises(DecodingError, match="nested deeper"):
            walked(raw)
    elif plain is not None:
        assert same(walked(raw), plain) is None


def test_a_document_holding_a_tag_is_walked() -> None:
    encoded = Codec().encode({"t": (1, 2), "s": {3}})
    raw = bson.encode(encoded)
    assert decode_plain(raw) is None
    assert walked(raw) == {"t": (1, 2), "s": {3}}
    # a text that holds the tag's name is no tag: the walk leaves it as it is
    text = bson.encode({"note": "__type__", "k": {"__type__x": 1}})
    assert decode_plain(text) is None
    assert same({"note": "__type__", "k": {"__type__x": 1}}, walked(text)) is None


def test_only_the_default_codec_options_read_plainly() -> None:
    assert read_plainly(CodecOptions())
    assert read_plainly(CodecOptions(tz_aware=True, tzinfo=dtm.timezone(dtm.timedelta(hours=2))))
    assert not read_plainly(CodecOptions(document_class=SON))
    assert not read_plainly(CodecOptions(uuid_representation=4))
    assert not read_plainly(None)


async def test_an_eager_load_of_documents_written_elsewhere_gives_the_walks_values(
    make_persistence: Factory, db: Any
) -> None:
    """Documents another program wrote (int64s, dates, binary, a deep one): ints, aware UTC
    datetimes, and the deep one refused by name, as the walk does."""
    stored = {
        "big": Int64(2**40),
        "small": Int64(7),
        "when": dtm.datetime(2026, 1, 2, 3, 4, 5, 6000),
        "blob": b"\x00\x01",
        "ids": [Int64(5), 6],
    }
    await db.user_data.insert_many(
        [
            {"_id": 1, "data": stored},
            {"_id": 2, "data": _nested(MAX_DECODE_DEPTH + 5)},
            {"_id": 3, "data": {"t": {"__type__": "tuple", "value": [1, 2]}}},
        ]
    )
    persistence = make_persistence(on_bad_document="skip")
    loaded = await persistence.get_user_data()
    expected = {
        "big": 2**40,
        "small": 7,
        "when": dtm.datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=dtm.timezone.utc),
        "blob": b"\x00\x01",
        "ids": [5, 6],
    }
    assert same(expected, loaded[1]) is None
    assert 2 not in loaded
    assert set(persistence.bad_documents) == {"user_data[2]"}
    assert loaded[3] == {"t": (1, 2)}
    await persistence.flush()


async def test_a_client_with_other_codec_options_keeps_the_walk(
    make_persistence: Factory, db: Any
) -> None:
    """A UUID representation of the bot's client gives ``uuid.UUID`` values: decoding the
    re-encoded BSON with the defaults would give ``Binary``; the walk keeps what the client read."""
    value = uuid.UUID("12345678-1234-5678-1234-567812345678")
    await db.user_data.insert_one({"_id": 1, "data": {"u": Binary.from_uuid(value)}})
    persistence = make_persistence(client_kwargs={"uuidRepresentation": "standard"})
    loaded = await persistence.get_user_data()
    assert type(loaded[1]["u"]) is uuid.UUID
    assert loaded[1]["u"] == value
    await persistence.flush()


# ----------------------------------------------------------------------- documents read as BSON
def test_a_batch_splits_into_its_documents() -> None:
    docs = [{"_id": 1, "data": {"a": [1, 2]}}, {"_id": 2}, {"_id": 3, "data": {}}]
    batch = b"".join(bson.encode(doc) for doc in docs)
    assert [bson.decode(part) for part in split_documents(batch)] == docs
    assert list(split_documents(b"")) == []
    with pytest.raises(InvalidBSON):
        list(split_documents(batch[:-3]))  # the last one cut short
    with pytest.raises(InvalidBSON):
        list(split_documents(b"\x02\x00\x00\x00"))  # a size no document has


def test_the_data_field_is_cut_out_of_the_documents_bson() -> None:
    data = {"b": Int64(5), "when": dtm.datetime(2026, 1, 1), "l": [{"x": 1}]}
    assert data_bson(bson.encode({"_id": 1, "x": 2, "data": data})) == bson.encode(data)
    assert data_bson(bson.encode({"_id": 1})) == bson.encode({})
    with pytest.raises(ValueError, match="not a document"):
        data_bson(bson.encode({"_id": 1, "data": [1, 2]}))


def _past_year_9999(doc_id: Any, *, where: str = "data") -> bytes:
    """A document a real MongoDB stores (``new Date(8.64e15)`` in mongosh), Python cannot."""
    far = DatetimeMS(8_640_000_000_000_000)
    if where == "data":
        return bson.encode({"_id": doc_id, "data": {"ok": "SECRET", "when": far}})
    return bson.encode({"_id": doc_id, "updated_at": far, "data": {"ok": "SECRET"}})


def _with_documents(monkeypatch: pytest.MonkeyPatch, *extra: bytes) -> None:
    """Eager loads also get these documents' BSON (the local server refuses to store them)."""
    read = MongoStore.iter_bson

    async def iter_bson(store: MongoStore, kind: str, *args: Any) -> AsyncGenerator[bytes, None]:
        async for batch in read(store, kind, *args):
            yield batch
        yield b"".join(extra)

    monkeypatch.setattr(MongoStore, "iter_bson", iter_bson)


async def test_a_document_python_cannot_decode_fails_alone(
    make_persistence: Factory,
    db: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Decoded one by one, a document holding a date past year 9999 is skipped by name (or
    raised, by name): the other documents load; nothing of its content is shown."""
    await db.chat_data.insert_many([{"_id": -1, "data": {"a": 1}}, {"_id": -2, "data": {}}])
    skipping = make_persistence(on_bad_document="skip")
    bad = (_past_year_9999(-3), _past_year_9999(Int64(-5)), _past_year_9999(-4, where="top"))
    _with_documents(monkeypatch, *bad)
    loaded = await skipping.get_chat_data()
    assert loaded == {-1: {"a": 1}, -2: {}}
    assert set(skipping.bad_documents) == {"chat_data[-3]", "chat_data[-5]"}
    assert "InvalidBSON" in str(skipping.bad_documents["chat_data[-3]"])
    assert "cannot be decoded" in caplog.text  # the one whose _id cannot be read either
    assert "SECRET" not in caplog.text and "275760" not in caplog.text
    # a skipped document is never written: the bot's data for it is refused
    await skipping.flush()

    raising = make_persistence()
    with pytest.raises(DecodingError, match=r"chat_data\[-3\]") as error:
        await raising.get_chat_data()
    assert "SECRET" not in str(error.value) and "275760" not in str(error.value)
    await raising.flush()


async def test_documents_read_as_bson_load_as_the_driver_decoded_them(
    make_persistence: Factory, db: Any
) -> None:
    """Tagged values, attributes, no data, an int64 _id, a data that is no document: what the
    driver's decoding and the walk gave; then a write of one key is a diff of the stored BSON."""
    codec = Codec()
    await db.chat_data.insert_many(
        [
            {"_id": -1, "data": {"n": Int64(3), "when": dtm.datetime(2026, 5, 1)}},
            {"_id": -2, "data": codec.encode({"t": (1, 2), 5: "five"})},
            {"_id": Int64(-(2**40)), "data": {"k": "v"}},
            {"_id": -4},
            {"_id": -5, "data": [1, 2]},
            {"_id": "text", "data": {}},
        ]
    )
    persistence = make_persistence(on_bad_document="skip")
    loaded = await persistence.get_chat_data()
    utc = dtm.timezone.utc
    expected = {-1: {"n": 3, "when": dtm.datetime(2026, 5, 1, tzinfo=utc)}, -4: {}}
    expected |= {-2: {"t": (1, 2), 5: "five"}, -(2**40): {"k": "v"}}
    assert same(expected, loaded) is None
    assert set(persistence.bad_documents) == {"chat_data[-5]"}
    # another program edits another key after the load: the bot's diff keeps it
    await db.chat_data.update_one({"_id": -1}, {"$set": {"data.admin": "kept"}})
    await db.chat_data.update_one({"_id": -2}, {"$set": {"data.admin": "kept"}})
    await persistence.update_chat_data(-1, {**loaded[-1], "n": 4})
    await persistence.update_chat_data(-2, {**loaded[-2], 6: "six"})
    await persistence.update_chat_data(-(2**40), loaded[-(2**40)])  # unchanged: not written
    await persistence.flush()
    one = await db.chat_data.find_one({"_id": -1})
    assert one["data"] == {"n": 4, "when": dtm.datetime(2026, 5, 1), "admin": "kept"}
    assert (await db.chat_data.find_one({"_id": -2}))["data"]["admin"] == "kept"
    assert "updated_at" not in await db.chat_data.find_one({"_id": -(2**40)})


async def test_a_document_python_cannot_decode_is_named_when_read_alone(
    make_persistence: Factory, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read by ``_id`` (lazy mode, bot_data), the driver's own error quotes the value: it is a
    bad document like any other, raised naming the entity (the error's type only), or skipped:
    the entity starts empty and its document is never overwritten."""
    await db.user_data.insert_one({"_id": 7, "data": {"a": 1}})
    await db.bot_data.insert_one({"_id": "bot_data", "data": {"b": 2}})
    raising = make_persistence(lazy=True)
    skipping = make_persistence(lazy=True, on_bad_document="skip")
    for persistence in (raising, skipping):
        await persistence.get_user_data()
    real = AsyncCollection.find_one

    async def find_one(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.name in ("user_data", "bot_data"):
            raise InvalidBSON("year 275760 is out of range (SECRET)")  # what PyMongo raises
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(AsyncCollection, "find_one", find_one)
    with pytest.raises(DecodingError, match=r"user_data\[7\].*InvalidBSON") as error:
        await raising.refresh_user_data(7, {})
    assert "SECRET" not in str(error.value) and "275760" not in str(error.value)
    with pytest.raises(DecodingError, match="bot_data"):
        await raising.get_bot_data()

    target: dict[str, Any] = {}
    await skipping.refresh_user_data(7, target)
    assert target == {}
    assert await skipping.get_bot_data() == {}
    assert set(skipping.bad_documents) == {"user_data[7]", "bot_data"}
    with pytest.raises(BadDocumentError):
        await skipping.update_user_data(7, {"a": 2})
    monkeypatch.undo()
    for persistence in (raising, skipping):
        await persistence.flush()
    assert (await db.user_data.find_one({"_id": 7}))["data"] == {"a": 1}
