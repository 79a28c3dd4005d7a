"""Test session set-up: a real MongoDB-compatible server over the wire.

With ``MONGODB_URI`` set, the tests use that server; otherwise a local SecantusDB is started for the
session on a free port. Every test gets its own database, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from mongo_persistence import MongoPersistence
from tests.helpers.command_log import CommandLog
from tests.helpers.local_server import LocalServer

# PTB's own tests run in a venv of their own (``make conformance``), not in this suite.
collect_ignore = ["conformance"]


@pytest.fixture(scope="session")
def mongodb_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    uri = os.environ.get("MONGODB_URI")
    if uri:
        yield uri
        return
    log = tmp_path_factory.mktemp("server") / "secantusd.log"
    server = LocalServer(log_path=log)
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture
def db_name() -> str:
    return f"mp_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def client(mongodb_uri: str, db_name: str) -> AsyncIterator[AsyncMongoClient[Any]]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_uri, serverSelectionTimeoutMS=5000)
    try:
        yield client
    finally:
        await client.drop_database(db_name)
        await client.close()


@pytest.fixture
def db(client: AsyncMongoClient[Any], db_name: str) -> Any:
    return client[db_name]


@pytest.fixture
def make_persistence(
    mongodb_uri: str, db_name: str, tmp_path: Path
) -> Callable[..., MongoPersistence[Any, Any, Any]]:
    """Creates a MongoPersistence on the test database (a new one = a bot restart).

    Its journal of kept writes is in the test's own directory (``tmp_path / "journal"``).
    """

    def factory(**kwargs: Any) -> MongoPersistence[Any, Any, Any]:
        kwargs.setdefault("database", db_name)
        kwargs.setdefault("recovery_dir", tmp_path / "journal")
        kwargs.setdefault("update_interval", 3600)
        target = kwargs.pop("target", mongodb_uri)
        return MongoPersistence(target, **kwargs)

    return factory


class Monitored:
    """Creates persistences whose client reports to one command log; closes them all."""

    def __init__(self, make_persistence: Callable[..., MongoPersistence[Any, Any, Any]]) -> None:
        self._make = make_persistence
        self.log = CommandLog()
        self._made: list[MongoPersistence[Any, Any, Any]] = []

    def __call__(self, **kwargs: Any) -> MongoPersistence[Any, Any, Any]:
        kwargs.setdefault("client_kwargs", {"event_listeners": [self.log]})
        persistence = self._make(**kwargs)
        self._made.append(persistence)
        return persistence

    async def close(self) -> None:
        for persistence in self._made:
            await persistence.flush()


@pytest.fixture
async def monitored(
    make_persistence: Callable[..., MongoPersistence[Any, Any, Any]],
) -> AsyncIterator[Monitored]:
    """Persistences whose MongoDB commands are counted (``monitored.log``)."""
    made = Monitored(make_persistence)
    try:
        yield made
    finally:
        await made.close()
