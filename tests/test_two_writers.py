"""Two writers on one database: nothing the bot did not read or write is clobbered.

Two real persistences (or a persistence and a plain client, as an admin panel or mongosh) on one
server. The granularity is the top-level key: two writers changing *different* keys both win;
the same key: the last write wins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from mongo_persistence import MongoPersistence

Factory = Callable[..., MongoPersistence[Any, Any, Any]]


async def started(persistence: MongoPersistence[Any, Any, Any]) -> MongoPersistence[Any, Any, Any]:
    await persistence.get_user_data()
    await persistence.get_chat_data()
    await persistence.get_bot_data()
    return persistence


async def test_eager_mode_a_document_created_after_start_up_is_not_replaced(
    make_persistence: Factory, db: Any
) -> None:
    bot = await started(make_persistence())
    # created by another program after the bot loaded everything
    await db.user_data.insert_one({"_id": 1, "data": {"admin_note": "vip"}})
    await bot.update_user_data(1, {"score": 3})
    assert (await db.user_data.find_one({"_id": 1}))["data"] == {"admin_note": "vip", "score": 3}
    # the bot's own keys are known now: removing one of them unsets it alone
    await bot.update_user_data(1, {})
    assert (await db.user_data.find_one({"_id": 1}))["data"] == {"admin_note": "vip"}
    await bot.flush()


async def test_two_bots_changing_different_int_keys_both_win(
    make_persistence: Factory, db: Any
) -> None:
    seed = await started(make_persistence())
    await seed.update_chat_data(-5, {101: 1, 102: 1, 103: 1})
    await seed.flush()
    first, second = await started(make_persistence()), await started(make_persistence())
    await first.update_chat_data(-5, {101: 2, 102: 1, 103: 1})  # chat_data[user_id] = score
    await second.update_chat_data(-5, {101: 1, 102: 7})  # changes 102, removes 103
    stored = await make_persistence().get_chat_data()
    assert stored[-5] == {101: 2, 102: 7}
    doc = await db.chat_data.find_one({"_id": -5})
    assert doc["data"]["__type__"] == "intdict"  # still the readable id-keyed form
    await first.flush()
    await second.flush()


async def test_two_bots_changing_different_keys_of_a_mixed_dict_both_win(
    make_persistence: Factory,
) -> None:
    seed = await started(make_persistence())
    await seed.update_user_data(1, {"name": "Ann", "city": "Oslo", 5: "five"})
    await seed.flush()
    first, second = await started(make_persistence()), await started(make_persistence())
    await first.update_user_data(1, {"name": "Anna", "city": "Oslo", 5: "five"})
    await second.update_user_data(1, {"name": "Ann", "city": "Bergen", 5: "five"})
    assert (await make_persistence().get_user_data())[1] == {
        "name": "Anna",
        "city": "Bergen",
        5: "five",
    }
    await first.flush()
    await second.flush()


async def test_the_same_key_last_write_wins(make_persistence: Factory) -> None:
    seed = await started(make_persistence())
    await seed.update_user_data(1, {"n": 0, "other": "x"})
    first, second = await started(make_persistence()), await started(make_persistence())
    await first.update_user_data(1, {"n": 1, "other": "x"})
    await second.update_user_data(1, {"n": 2, "other": "x"})
    assert (await make_persistence().get_user_data())[1] == {"n": 2, "other": "x"}
    await asyncio.gather(seed.flush(), first.flush(), second.flush())


async def test_eager_mode_keys_no_path_can_address_are_set_without_replacing_the_document(
    make_persistence: Factory, db: Any
) -> None:
    """Keys such as ``"a.b"`` (an e-mail address, a URL) cannot be set by ``data.<key>``: they
    are set with ``$setField``, so a document another bot created after start-up keeps its keys."""
    first = await started(make_persistence())
    second = await started(make_persistence())
    await second.update_user_data(1, {"other": "kept"})  # created after the first started
    await first.update_user_data(1, {"a.b": 1, "ann@example.org": "$y", "plain": [1]})
    stored = (await make_persistence().get_user_data())[1]
    assert stored == {"other": "kept", "a.b": 1, "ann@example.org": "$y", "plain": [1]}
    # a diff of such keys (changed, removed) touches them alone
    await second.update_user_data(1, {"other": "kept", "more": 2})
    await first.update_user_data(1, {"a.b": 2, "plain": [1]})
    stored = (await make_persistence().get_user_data())[1]
    assert stored == {"other": "kept", "more": 2, "a.b": 2, "plain": [1]}
    await asyncio.gather(first.flush(), second.flush())
