"""Security: no pickle without opt-in, no credentials in messages or logs, user keys are data,
namespaces isolate bots."""

from __future__ import annotations

import asyncio
import logging
import pickle
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bson import Binary
from click.testing import CliRunner
from pymongo.write_concern import WriteConcern
from telegram.warnings import PTBUserWarning

from mongo_persistence import (
    DecodingError,
    EncodingError,
    MongoPersistence,
    PersistenceConnectionError,
)
from tests.helpers.command import ENTRY_POINT as cli_main
from tests.helpers.compare import assert_same
from tests.helpers.local_server import LocalServer
from tests.helpers.servers import (
    FAST_SELECTION_MS,
    auth_server,
    disk_server,
    ensure_running,
    until_reachable,
    with_credentials,
)
from tests.helpers.unreachable import UNREACHABLE, messages
from tests.ptb_offline import build_application

Factory = Callable[..., MongoPersistence[Any, Any, Any]]

USER = "alice"
PASSWORD = "c0rrect-H0rse-SECRET"
WRONG = "wr0ng-Battery-SECRET"


class Point:
    """An ordinary class: stored only with pickle_fallback=True."""

    def __init__(self, x: int, y: int) -> None:
        self.x = x
        self.y = y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    __hash__ = None  # type: ignore[assignment]


UNPICKLED: list[str] = []


def _record(what: str) -> None:
    UNPICKLED.append(what)


class Exploit:
    """Unpickling it runs code (here: harmlessly records that it ran)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_record, ("code ran",))


# ============================================================================ pickle
async def test_no_pickle_without_the_opt_in(make_persistence: Factory, db: Any) -> None:
    persistence = make_persistence()
    await persistence.get_user_data()
    with pytest.raises(EncodingError) as info:
        await persistence.update_user_data(1, {"point": Point(1, 2)})
    assert info.value.entity == "user_data[1]"
    assert info.value.path == "['point']"
    assert info.value.value_type == "tests.test_security.Point"
    assert "TypeCodec" in str(info.value)
    await persistence.update_user_data(2, {"fine": 1})
    await persistence.flush()
    assert await db.user_data.find_one({"_id": 1}) is None


async def test_pickle_fallback_warns_round_trips_and_is_refused_without_it(
    make_persistence: Factory, db: Any
) -> None:
    with pytest.warns(PTBUserWarning, match="pickle"):
        writer = make_persistence(pickle_fallback=True)
    await writer.get_user_data()
    await writer.update_user_data(1, {"point": Point(1, 2), "plain": [1]})
    await writer.flush()

    with pytest.warns(PTBUserWarning, match="pickle"):
        reader = make_persistence(pickle_fallback=True)
    assert await reader.get_user_data() == {1: {"point": Point(1, 2), "plain": [1]}}
    await reader.flush()

    careful = make_persistence()
    with pytest.raises(DecodingError, match="pickle") as info:
        await careful.get_user_data()
    assert info.value.entity == "user_data[1]"
    assert info.value.path == "['point']"
    await careful.flush()


async def test_a_pickle_planted_in_the_database_is_never_unpickled(
    make_persistence: Factory, db: Any
) -> None:
    blob = Binary(pickle.dumps(Exploit()))
    await db.user_data.insert_one({"_id": 1, "data": {"x": {"__type__": "pickle", "value": blob}}})
    await db.bot_data.insert_one({"_id": "bot_data", "data": {"__type__": "pickle", "value": blob}})
    UNPICKLED.clear()
    persistence = make_persistence()
    with pytest.raises(DecodingError, match="pickle_fallback=True"):
        await persistence.get_user_data()
    with pytest.raises(DecodingError, match="pickle_fallback=True"):
        await persistence.get_bot_data()
    await persistence.flush()
    assert UNPICKLED == []


# ============================================================================ credentials
@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """A server with --auth and the user alice (password PASSWORD)."""
    server = auth_server(tmp_path_factory.mktemp("auth"), USER, PASSWORD)
    try:
        yield server
    finally:
        server.kill()


def leaks(text: str) -> bool:
    return PASSWORD in text or WRONG in text


def every_text_of(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


async def test_a_wrong_password_fails_initialize_with_one_clear_error(
    secured: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    ensure_running(secured)
    caplog.set_level(logging.DEBUG)
    uri = with_credentials(secured, USER, WRONG, f"serverSelectionTimeoutMS={FAST_SELECTION_MS}")
    persistence = MongoPersistence(uri, database="secured", update_interval=3600)
    app, _ = build_application(persistence)
    with pytest.raises(PersistenceConnectionError) as info:
        await app.initialize()
    message = str(info.value)
    assert "refused the credentials" in message
    assert "Authentication failed" in message or "authentication failed" in message
    assert f"mongodb://{USER}:***@127.0.0.1:{secured.port}/" in message
    assert not leaks(every_text_of(info.value))
    assert not leaks(caplog.text)
    assert not leaks(repr(persistence)) and not leaks(repr(persistence.database))
    await persistence.flush()


async def test_missing_credentials_fail_initialize_with_one_clear_error(
    secured: LocalServer,
) -> None:
    ensure_running(secured)
    persistence = MongoPersistence(
        f"{secured.uri}?serverSelectionTimeoutMS={FAST_SELECTION_MS}",
        database="secured",
        update_interval=3600,
    )
    with pytest.raises(PersistenceConnectionError, match="refused the credentials or the access"):
        await persistence.get_user_data()
    await persistence.flush()


async def test_credentials_never_leak_when_the_server_goes_away(
    secured: LocalServer, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """Right password; then the server dies: write errors, retry logs, the flush's recovery file and
    its log line show no password."""
    ensure_running(secured)
    caplog.set_level(logging.DEBUG)
    uri = with_credentials(secured, USER, PASSWORD, f"serverSelectionTimeoutMS={FAST_SELECTION_MS}")
    persistence = MongoPersistence(
        uri,
        database="secured",
        update_interval=3600,
        write_concern=WriteConcern(j=True),
        flush_timeout=0.5,
        recovery_dir=tmp_path,
    )
    await persistence.get_user_data()
    await persistence.update_user_data(1, {"v": 1})
    secured.kill()
    await persistence.update_user_data(2, {"v": 2})  # kept in the journal
    assert not leaks(repr(persistence.health()))
    await persistence.flush()
    assert persistence.last_recovery_file is not None
    assert not leaks(persistence.last_recovery_file.read_text())
    assert str(persistence.last_recovery_file) in caplog.text
    assert not leaks(caplog.text)

    secured.start()
    # The next start replays the journal it finds in its recovery_dir, before loading.
    restorer = MongoPersistence(
        uri, database="secured", update_interval=3600, recovery_dir=tmp_path
    )
    await until_reachable(restorer.database)
    assert await restorer.get_user_data() == {1: {"v": 1}, 2: {"v": 2}}
    assert not persistence.last_recovery_file.exists()
    await restorer.database.client.drop_database("secured")
    await restorer.flush()


H = UNREACHABLE  # nothing listens there: the URI is shown in a "Cannot reach" error


SHOWN = [
    (f"mongodb://alice:SECRET@{H}/db?w=1", f"mongodb://alice:***@{H}/db?w=1"),
    (f"mongodb://alice:SE%40CRET@{H}/", f"mongodb://alice:***@{H}/"),
    ("mongodb+srv://alice:SECRET@c.example.net/", "mongodb+srv://alice:***@c.example.net/"),
    (f"mongodb://alice@{H}/", f"mongodb://alice@{H}/"),
    (f"mongodb://{H},127.0.0.1:2/?replicaSet=r", f"mongodb://{H},127.0.0.1:2/?replicaSet=r"),
    (f"mongodb://:SECRET@{H}/", f"mongodb://:***@{H}/"),
    # malformed: the driver refuses them, and error messages must not show the password
    (f"mongodb://alice:SE@CRET@{H}/", f"mongodb://alice:***@{H}/"),
    (f"mongodb://alice:SE:CR@ET@{H}/", f"mongodb://alice:***@{H}/"),
    (f"mongodb://alice:SE/CRET@{H}/", f"mongodb://alice:***@{H}/"),
    (f"mongodb://alice:SE?CRET@{H}/", f"mongodb://alice:***@{H}/"),
    (f"http://alice:SECRET@{H}/", f"http://alice:***@{H}/"),
    (f"alice:SECRET@{H}", f"alice:***@{H}"),
    (
        f"mongodb://{H}/?authMechanismProperties=AWS_SESSION_TOKEN:SECRET&w=1",
        f"mongodb://{H}/?authMechanismProperties=***&w=1",
    ),
    (
        f"mongodb://{H}/?tlsCertificateKeyFilePassword=SECRET",
        f"mongodb://{H}/?tlsCertificateKeyFilePassword=***",
    ),
]


async def test_a_uri_is_shown_redacted() -> None:
    """By the library's connection errors and by the command alike."""
    found = await messages(*(uri for uri, _ in SHOWN))
    for uri, shown in SHOWN:
        for message in found[uri]:
            assert shown in message, (uri, message)
            assert "SECRET" not in message and "SE%40" not in message, (uri, message)


# ============================================================================ keys are data
LITERAL_KEYS: dict[Any, Any] = {
    "$where": "function() { return true }",
    "$set": {"$gt": ""},
    "a.b": {"c.d": 1},
    "_id": "not the document id",
    "__type__": "tuple",
    "$": 1,
    "": "empty key",
    "nested": {"$where": 1, "_id": 2, "x.y": 3, "__type__": "set"},
}


def raw_keys(value: Any) -> Iterator[str]:
    """Every field name of a stored document, at every level."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from raw_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from raw_keys(item)


async def test_user_keys_are_stored_and_restored_literally(
    make_persistence: Factory, db: Any
) -> None:
    persistence = make_persistence()
    await persistence.get_user_data()
    await persistence.update_user_data(7, dict(LITERAL_KEYS))
    await persistence.update_chat_data(-7, {"a.b": 1, "_id": 2})
    changed = {**LITERAL_KEYS, "a.b": {"c.d": 2}, "_id": "changed"}
    # a second write: a diff must not take these keys for paths
    await persistence.update_user_data(7, changed)
    await persistence.update_chat_data(-7, {"a.b": 2, "_id": 3})
    await persistence.flush()

    user = await db.user_data.find_one({"_id": 7})
    assert user["_id"] == 7
    chat = await db.chat_data.find_one({"_id": -7})
    assert chat["_id"] == -7 and chat["data"] == {"a.b": 2, "_id": 3}
    assert "a" not in chat["data"]
    assert not [key for key in raw_keys(user) if key.startswith("$")]
    loaded = make_persistence()
    assert_same({7: changed}, await loaded.get_user_data())
    assert_same({-7: {"a.b": 2, "_id": 3}}, await loaded.get_chat_data())
    await loaded.flush()


async def test_conversation_names_and_keys_are_data(make_persistence: Factory, db: Any) -> None:
    persistence = make_persistence()
    names = ['x", 1]', "$where", "a.b", '["talk",1,2]']
    for name in names:
        await persistence.update_conversation(name, (1, 2), name)
    await persistence.flush()
    loaded = make_persistence()
    for name in names:
        assert await loaded.get_conversations(name) == {(1, 2): name}
    await loaded.flush()
    assert await db.conversations.count_documents({}) == len(names)


# ============================================================================ namespaces
async def test_namespaces_isolate_bots_completely(
    make_persistence: Factory, db: Any, tmp_path: Path
) -> None:
    bots = {ns: make_persistence(namespace=ns) for ns in ("bot_a", "bot_b", None)}
    for ns, persistence in bots.items():
        await persistence.get_user_data()
        await persistence.update_user_data(1, {"owner": ns})
        await persistence.update_chat_data(-1, {"owner": ns})
        await persistence.update_bot_data({"owner": ns})
        await persistence.update_conversation("talk", (1, 1), ns or "none")
        await persistence.update_callback_data(([("kb", 1.0, {"b": ns})], {"q": "kb"}))

    first = bots["bot_a"]
    await first.drop_user_data(1)
    await first.drop_chat_data(-1)
    await first.update_conversation("talk", (1, 1), None)
    for persistence in bots.values():
        await persistence.flush()

    for ns in ("bot_b", None):
        other = make_persistence(namespace=ns)
        assert await other.get_user_data() == {1: {"owner": ns}}
        assert await other.get_chat_data() == {-1: {"owner": ns}}
        assert await other.get_bot_data() == {"owner": ns}
        assert await other.get_conversations("talk") == {(1, 1): ns or "none"}
        assert await other.get_callback_data() == ([("kb", 1.0, {"b": ns})], {"q": "kb"})
        await other.flush()
    again = make_persistence(namespace="bot_a")
    assert await again.get_user_data() == {}
    assert await again.get_chat_data() == {}
    assert await again.get_bot_data() == {"owner": "bot_a"}
    assert await again.get_conversations("talk") == {}
    await again.flush()
    names = set(await db.list_collection_names())
    assert {"bot_a.user_data", "bot_b.user_data", "user_data"} <= names


async def test_a_recovery_file_is_only_restored_into_its_own_namespace(
    tmp_path: Path,
) -> None:
    server = disk_server(tmp_path / "server")
    try:
        uri = f"{server.uri}?serverSelectionTimeoutMS={FAST_SELECTION_MS}"
        persistence = MongoPersistence(
            uri, database="ns", namespace="bot_a", flush_timeout=0, recovery_dir=tmp_path / "a"
        )
        await persistence.get_user_data()
        server.kill()  # the write fails and is kept in the journal
        await persistence.update_user_data(1, {"v": 1})
        await persistence.flush()
        path = persistence.last_recovery_file
        assert path is not None
        server.start()

        async def recover(namespace: str) -> Any:
            args = ["recover", str(path), "--uri", server.uri, "--database", "ns"]
            return await asyncio.to_thread(
                CliRunner().invoke, cli_main, [*args, "--namespace", namespace]
            )

        wrong = await recover("bot_b")
        assert wrong.exit_code == 1 and "namespace 'bot_a'" in wrong.output, wrong.output
        other = MongoPersistence(server.uri, database="ns", namespace="bot_b")
        assert await other.get_user_data() == {}
        await other.flush()
        right = await recover("bot_a")
        assert right.exit_code == 0 and "Restored 1, skipped 0" in right.output, right.output
        mine = MongoPersistence(server.uri, database="ns", namespace="bot_a")
        assert await mine.get_user_data() == {1: {"v": 1}}
        await mine.flush()
    finally:
        server.kill()


@pytest.mark.parametrize("password", ["a", "e", "t", "1", "admin", "MongoDB", "alice", "%61"])
async def test_redaction_is_structural_whatever_the_password(
    secured: LocalServer, password: str
) -> None:
    """Replacing the password's text everywhere turned 'authSource=admin' into '***dmin' for the
    password 'a' (and showed its letters by what was missing). Only the URI's userinfo is hidden;
    the rest of the message stays readable, in the library and in the CLI alike."""
    ensure_running(secured)
    options = f"authSource=admin&serverSelectionTimeoutMS={FAST_SELECTION_MS}"
    uri = with_credentials(secured, USER, password, options)
    shown = f"mongodb://{USER}:***@127.0.0.1:{secured.port}/?{options}"
    persistence = MongoPersistence(uri, database="secured", update_interval=3600)
    with pytest.raises(PersistenceConnectionError) as info:
        await persistence.get_user_data()
    await persistence.flush()
    result = await asyncio.to_thread(
        CliRunner().invoke, cli_main, ["inspect", "--uri", uri, "-d", "secured"]
    )
    assert result.exit_code == 1
    for message in (str(info.value), result.output):
        assert shown in message, message
        assert message.count("***") == 1, message
        assert "refused the credentials" in message
        assert "uthentication failed" in message


async def test_the_rest_of_a_message_stays_readable_whatever_the_password() -> None:
    """Only the URI's userinfo is replaced: the message for any password is the one for the
    password ``***`` (the host, the options and the driver's text intact), and the decoded
    password (``p@ss`` for ``p%40ss``) is not shown either."""
    options = "authSource=admin&appname=u-a-1"
    shown = f"mongodb://u:***@{H}/?{options}"
    passwords = ["a", "1", "127", "Connect", "admin", "p%40ss"]
    found = await messages(shown, *(f"mongodb://u:{p}@{H}/?{options}" for p in passwords))
    expected = found.pop(shown)
    for message in expected:
        assert shown in message and message.count("***") == 1, message
    assert "('127.0.0.1', 1)" in expected[0], expected
    assert len(found) == len(passwords)
    for uri, said in found.items():
        assert said == expected, uri


async def test_secret_uri_options_are_hidden_and_the_rest_shown() -> None:
    uri = f"mongodb://{H}/?authMechanismProperties=AWS_SESSION_TOKEN:1&w=1"
    for message in (await messages(uri))[uri]:
        assert f"mongodb://{H}/?authMechanismProperties=***&w=1" in message, message
        assert "TOKEN" not in message, message
