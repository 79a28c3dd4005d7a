"""Untagged documents decoded by PyMongo's C decoder give exactly what the decoder's walk gives.

The eager load decodes a document whose BSON holds no codec tag with
:func:`~mongo_persistence._codec.plain_bson.decode_plain` instead of the walk; these tests hold
it to the walk's result, type for type, for every BSON type a server stores, to the walk's depth
limit, and to the codec options it depends on.
"""

from __future__ import annotations

import datetime as dtm
import uuid
from collections.abc import Callable
from typing import Any

import bson
import pytest
from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.codec_options import CodecOptions
from bson.son import SON
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mongo_persistence import DecodingError, MongoPersistence
from mongo_persistence._codec.codec import MAX_DECODE_DEPTH, Codec
from mongo_persistence._codec.plain_bson import decode_plain, read_plainly
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
    assert plain is not None
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
            Codec().decode(bson.decode(raw), raw=raw)
    elif plain is not None:
        assert same(walked(raw), plain) is None
    else:
        assert same(walked(raw), Codec().decode(bson.decode(raw), raw=raw)) is None


def test_a_document_holding_a_tag_is_walked() -> None:
    encoded = Codec().encode({"t": (1, 2), "s": {3}})
    raw = bson.encode(encoded)
    assert decode_plain(raw) is None
    assert Codec().decode(bson.decode(raw), raw=raw) == {"t": (1, 2), "s": {3}}
    # a text that holds the tag's name is no tag: decoded either way, the same
    text = bson.encode({"note": "__type__", "k": {"__type__x": 1}})
    assert same(walked(text), Codec().decode(bson.decode(text), raw=text)) is None


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
