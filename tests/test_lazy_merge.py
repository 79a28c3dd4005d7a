"""Lazy mode writes of entities not loaded yet: the keys are merged onto the stored document."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from pymongo.write_concern import WriteConcern

from mongo_persistence import MongoPersistence
from tests.helpers.servers import FAST_SELECTION_MS, disk_server

Factory = Callable[..., MongoPersistence[Any, Any, Any]]


async def test_unloaded_entity_is_merged_without_a_read(make_persistence: Factory, db: Any) -> None:
    await db.user_data.insert_one({"_id": 5, "data": {"name": "Ann", "visits": 3}})
    persistence = make_persistence(lazy=True)
    assert await persistence.get_user_data() == {}
    await persistence.update_user_data(5, {"note": "vip", "visits": 4})
    assert (await db.user_data.find_one({"_id": 5}))["data"] == {
        "name": "Ann",
        "visits": 4,
        "note": "vip",
    }
    # a user with no document yet gets one holding exactly what the bot has
    await persistence.update_user_data(6, {"new": True})
    assert (await db.user_data.find_one({"_id": 6}))["data"] == {"new": True}
    # once loaded through an update, the entity is written as usual (diff with $unset)
    user: dict[str, Any] = {}
    await persistence.refresh_user_data(5, user)
    assert user == {"name": "Ann", "visits": 4, "note": "vip"}
    del user["note"]
    await persistence.update_user_data(5, user)
    assert (await db.user_data.find_one({"_id": 5}))["data"] == {"name": "Ann", "visits": 4}
    await persistence.flush()


async def test_unloaded_entity_with_non_path_keys_is_read_then_merged(
    make_persistence: Factory, db: Any
) -> None:
    seed = make_persistence()
    await seed.update_user_data(7, {1: "one", "a.b": "dotted"})
    await seed.flush()
    persistence = make_persistence(lazy=True)
    await persistence.update_user_data(7, {2: "two"})
    await persistence.flush()
    assert await make_persistence().get_user_data() == {7: {1: "one", "a.b": "dotted", 2: "two"}}


async def test_a_kept_merge_goes_to_the_journal_and_is_replayed_as_a_merge(
    tmp_path: Path,
) -> None:
    server = disk_server(tmp_path / "server")
    try:
        uri = f"{server.uri}?serverSelectionTimeoutMS={FAST_SELECTION_MS}"
        with MongoClient(server.uri, serverSelectionTimeoutMS=5000) as client:
            users = client.lazy.get_collection("user_data", write_concern=WriteConcern(j=True))
            users.insert_one({"_id": 9, "data": {"name": "Bo", "visits": 1}})  # on disk
        persistence = MongoPersistence(
            uri, database="lazy", lazy=True, flush_timeout=0.3, recovery_dir=tmp_path / "journal"
        )
        assert await persistence.get_user_data() == {}
        server.kill()
        await persistence.update_user_data(9, {"visits": 2})  # kept in the journal
        assert persistence.health().pending == 1
        await persistence.flush()
        path = persistence.last_recovery_file
        assert path is not None
        (record,) = [json.loads(line) for line in path.read_text().splitlines()]
        assert record["op"] == "merge"

        server.start()
        restarted = MongoPersistence(uri, database="lazy", recovery_dir=tmp_path / "journal")
        assert await restarted.get_user_data() == {9: {"name": "Bo", "visits": 2}}
        assert not path.exists()  # replayed at the start, before loading
        await restarted.flush()
    finally:
        server.kill()
