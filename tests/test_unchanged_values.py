"""A plain value found unchanged is skipped before it is encoded the next time, and only then.

PTB hands over a deep copy of every entity it marked, changed or not. Once a plain value was found
unchanged, the next equal one is recognised by the fingerprint of its pickle (in memory only):
no encoding, no write. A value equal to it by ``==`` but of other types, and any change of what
MongoDB holds since, go through the encoding and are written.
"""

from __future__ import annotations

import copy
import datetime as dtm
import enum
import threading
from collections import OrderedDict
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mongo_persistence._codec.codec import Codec
from mongo_persistence._storage.values import value_digest
from tests.conftest import Monitored
from tests.helpers.command_log import WRITE_COMMANDS
from tests.helpers.compare import same

UTC = dtm.timezone.utc


class Level(enum.IntEnum):
    ONE = 1


def counting(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Counts the codec's encodings of data (the calls, not their results)."""
    calls: list[object] = []
    encode = Codec.encode

    def spy(self: Codec, value: object, **kwargs: Any) -> Any:
        calls.append(value)
        return encode(self, value, **kwargs)

    monkeypatch.setattr(Codec, "encode", spy)
    return calls


PLAIN = {
    "name": "Ada",
    "visits": 3,
    "ratio": 0.5,
    "seen": dtm.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    "cart": [{"sku": "a", "qty": 1}],
    "flags": {"beta": True, "none": None},
    "blob": b"\x00",
}


async def test_an_unchanged_plain_value_is_not_encoded_again(
    monitored: Monitored, monkeypatch: pytest.MonkeyPatch
) -> None:
    persistence = monitored()
    calls = counting(monkeypatch)
    await persistence.update_user_data(1, copy.deepcopy(PLAIN))
    await persistence.update_user_data(1, copy.deepcopy(PLAIN))  # found unchanged: encoded
    assert len(calls) == 2
    monitored.log.clear()
    for _ in range(3):
        await persistence.update_user_data(1, copy.deepcopy(PLAIN))
    assert len(calls) == 2
    assert monitored.log.total(WRITE_COMMANDS) == 0


SAME_BY_EQ = [
    pytest.param({"v": 1}, {"v": True}, id="int-bool"),
    pytest.param({"v": 1}, {"v": 1.0}, id="int-float"),
    pytest.param({"v": 1}, {"v": Level.ONE}, id="int-intenum"),
    pytest.param({"v": 0.0}, {"v": -0.0}, id="zero-negative-zero"),
    pytest.param({"v": {1}}, {"v": frozenset({1})}, id="set-frozenset"),
    pytest.param({"v": {"k": 1}}, {"v": OrderedDict(k=1)}, id="dict-ordereddict"),
    pytest.param({"v": b"x"}, {"v": bytearray(b"x")}, id="bytes-bytearray"),
    pytest.param(
        {"v": dtm.datetime(2026, 1, 1, 12, tzinfo=UTC)},
        {"v": dtm.datetime(2026, 1, 1, 13, tzinfo=dtm.timezone(dtm.timedelta(hours=1)))},
        id="datetime-other-zone",
    ),
    pytest.param(
        {"v": dtm.datetime(2026, 1, 1, 12, tzinfo=UTC)},
        {"v": dtm.datetime(2026, 1, 1, 12, tzinfo=ZoneInfo("UTC"))},
        id="datetime-zoneinfo-utc",
    ),
    pytest.param(
        {"v": dtm.datetime(2026, 1, 1, 12, tzinfo=UTC)},
        {"v": dtm.datetime(2026, 1, 1, 12, tzinfo=dtm.timezone(dtm.timedelta(0), "Z"))},
        id="datetime-named-utc",
    ),
    pytest.param({"v": [1, 2]}, {"v": [1, 2.0]}, id="nested-int-float"),
]


@pytest.mark.parametrize(("old", "new"), SAME_BY_EQ)
async def test_an_equal_value_of_other_types_is_written(
    monitored: Monitored, old: dict[str, Any], new: dict[str, Any]
) -> None:
    assert old == new
    persistence = monitored()
    for _ in range(3):  # written, then found unchanged, then recognised
        await persistence.update_user_data(1, copy.deepcopy(old))
    await persistence.update_user_data(1, copy.deepcopy(new))
    loaded = (await monitored().get_user_data())[1]
    assert same(new, loaded) is None


async def test_a_value_found_unchanged_is_written_again_after_another_write(
    monitored: Monitored,
) -> None:
    """A → A (remembered) → B → A: the last A is not what MongoDB holds any more."""
    persistence = monitored()
    changed = {**PLAIN, "visits": 4}
    for value in (PLAIN, PLAIN, changed, PLAIN):
        await persistence.update_user_data(1, copy.deepcopy(value))
    assert (await monitored().get_user_data())[1] == PLAIN


async def test_a_value_found_unchanged_is_written_again_after_a_drop(
    monitored: Monitored, db: Any
) -> None:
    persistence = monitored()
    for _ in range(2):
        await persistence.update_user_data(1, copy.deepcopy(PLAIN))
    await persistence.drop_user_data(1)
    assert await db.user_data.find_one({"_id": 1}) is None
    await persistence.update_user_data(1, copy.deepcopy(PLAIN))
    assert (await monitored().get_user_data())[1] == PLAIN


async def test_a_tagged_value_is_encoded_every_time(
    monitored: Monitored, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only plain values are recognised by their pickle: a tuple, a set or an int key is encoded
    (and compared by its BSON) at every write."""
    persistence = monitored()
    calls = counting(monkeypatch)
    value = {"t": (1, 2), "ids": {5: "x"}}
    for _ in range(3):
        await persistence.update_user_data(1, copy.deepcopy(value))
    assert len(calls) == 3


# ----------------------------------------------------------------------- the fingerprint itself
def test_the_fingerprint_tells_values_apart_and_equal_ones_alike() -> None:
    """Seeded with the datetime class and the UTC zone, the pickle still names every other
    zone, subclass and type; an equal value of the same types has the same fingerprint."""
    when = dtm.datetime(2026, 1, 1, 12, tzinfo=UTC)
    values = [
        {"v": when},
        {"v": when.replace(tzinfo=ZoneInfo("UTC"))},
        {"v": when.replace(tzinfo=dtm.timezone(dtm.timedelta(0), "Z"))},
        {"v": when.replace(tzinfo=None)},
        {"v": when.replace(microsecond=1)},
        {"v": when.date()},
        {"v": [when, when]},
        {"v": [when, when.replace(fold=1)]},
    ]
    digests = [value_digest(value) for value in values]
    assert None not in digests
    assert len(set(digests)) == len(values)
    assert [value_digest(copy.deepcopy(value)) for value in values] == digests


class _Reentrant:
    """Asks for a fingerprint while it is being pickled."""

    def __reduce__(self) -> tuple[Any, ...]:
        assert value_digest({"inner": [1, 2]}) == value_digest({"inner": [1, 2]})
        return (_Reentrant, ())


def test_the_fingerprint_survives_reentry_failures_and_threads() -> None:
    expected = value_digest(PLAIN)
    assert value_digest([_Reentrant()]) is not None
    assert value_digest([1, lambda: 1]) is None  # a pickle refused half-way
    assert value_digest(PLAIN) == expected
    results: list[bytes | None] = []

    def work() -> None:
        results.extend(value_digest(copy.deepcopy(PLAIN)) for _ in range(200))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 800
