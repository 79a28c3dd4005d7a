"""Faults: MongoDB going away while the bot runs, at shutdown and at start; the bot crashing.

Every test here runs against a dedicated server with its data on disk, killed (SIGKILL) and
restarted on the same port and storage inside the tests. Clients use a short
serverSelectionTimeoutMS, so each outage lasts longer than the driver's server selection timeout.
Writes use ``j=True``: SecantusDB (like mongod) may lose a plain ``w:1`` write of the last moment
before a SIGKILL of the server.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import os
import re
import signal
import stat
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bson import json_util
from click.testing import CliRunner
from pymongo import AsyncMongoClient, monitoring
from pymongo.write_concern import WriteConcern
from telegram import Update
from telegram.ext import (
    CallbackContext,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from mongo_persistence import MongoPersistence, PersistenceConnectionError
from tests.helpers.command import ENTRY_POINT as cli_main
from tests.helpers.compare import assert_same
from tests.helpers.local_server import LocalServer, free_port
from tests.helpers.servers import FAST_SELECTION_MS, disk_server, ensure_running, until_reachable
from tests.ptb_offline import build_application, message_update

Factory = Callable[..., MongoPersistence[Any, Any, Any]]
PASSWORD = "Pa55-w0rd-SECRET"

HELPERS = Path(__file__).resolve().parent / "helpers"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    srv = disk_server(tmp_path_factory.mktemp("faults"), "--sync-on-commit")
    try:
        yield srv
    finally:
        srv.kill()


@pytest.fixture
def live(server: LocalServer) -> LocalServer:
    """The dedicated server, running at the start of the test (a previous test may have killed
    it)."""
    ensure_running(server)
    return server


@pytest.fixture
async def raw(live: LocalServer, db_name: str) -> Any:
    """The test database through a plain client, to look at what is really stored."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(live.uri, serverSelectionTimeoutMS=5000)
    try:
        yield client[db_name]
    finally:
        ensure_running(live)
        await client.drop_database(db_name)
        await client.close()


@pytest.fixture
def make(live: LocalServer, db_name: str, tmp_path: Path) -> Factory:
    """A MongoPersistence on the dedicated server: fast server selection, journaled writes."""

    def factory(**kwargs: Any) -> MongoPersistence[Any, Any, Any]:
        kwargs.setdefault("database", db_name)
        kwargs.setdefault("update_interval", 3600)
        kwargs.setdefault("write_concern", WriteConcern(w="majority", j=True))
        kwargs.setdefault("client_kwargs", {"serverSelectionTimeoutMS": FAST_SELECTION_MS})
        kwargs.setdefault("flush_timeout", 20)
        kwargs.setdefault("recovery_dir", tmp_path / "recovery")
        return MongoPersistence(kwargs.pop("target", live.uri), **kwargs)

    return factory


async def load(make: Factory) -> dict[str, Any]:
    """Everything stored, as a restarted bot sees it."""
    persistence = make()
    try:
        return {
            "user_data": await persistence.get_user_data(),
            "chat_data": await persistence.get_chat_data(),
            "bot_data": await persistence.get_bot_data(),
            "talk": await persistence.get_conversations("talk"),
        }
    finally:
        await persistence.flush()


def talk_handler() -> ConversationHandler[Any]:
    async def start(update: Update, _: CallbackContext[Any, Any, Any, Any]) -> int:
        return 1

    async def stop(update: Update, _: CallbackContext[Any, Any, Any, Any]) -> int:
        return ConversationHandler.END

    return ConversationHandler(
        entry_points=[CommandHandler("start", start)],
        states={1: [CommandHandler("stop", stop)]},
        fallbacks=[],
        name="talk",
        persistent=True,
    )


# ============================================================================ outage while running
async def test_an_outage_during_persistence_runs_loses_nothing(
    live: LocalServer, make: Factory, raw: Any
) -> None:
    """200 users before the outage, 200 more during it (plus changes, drops and ended
    conversations): after the server is back and the bot shut down, all of it is stored."""
    persistence = make()
    app, _ = build_application(persistence)
    app.add_handler(talk_handler())
    errors: list[BaseException] = []

    async def on_error(_: object, context: CallbackContext[Any, Any, Any, Any]) -> None:
        assert context.error is not None
        errors.append(context.error)

    app.add_error_handler(on_error)
    await app.initialize()

    expected_users: dict[int, Any] = {}
    expected_chats: dict[int, Any] = {}
    for i in range(200):
        app.user_data[i].update({"v": i, "phase": "before"})
        app.chat_data[-i - 1].update({"v": i})
        expected_users[i] = {"v": i, "phase": "before"}
        expected_chats[-i - 1] = {"v": i}
    app.mark_data_for_update_persistence(user_ids=range(200), chat_ids=range(-200, 0))
    for user in range(10):
        await app.process_update(message_update(app, "/start", user_id=1000 + user))
    await app.update_persistence()
    assert errors == []

    live.kill()
    for run in range(4):
        new = range(200 + 50 * run, 250 + 50 * run)
        for i in new:
            app.user_data[i].update({"v": i, "phase": "during", "run": run})
            expected_users[i] = {"v": i, "phase": "during", "run": run}
        changed = [run, run + 10]  # users written before, changed during the outage
        for i in changed:
            app.user_data[i]["phase"] = f"changed in run {run}"
            expected_users[i]["phase"] = f"changed in run {run}"
        app.mark_data_for_update_persistence(user_ids=[*new, *changed])
        for chat in (-run - 1, -run - 101):
            app.drop_chat_data(chat)
            expected_chats.pop(chat)
        await app.process_update(message_update(app, "/stop", user_id=1000 + run))
        await app.process_update(message_update(app, "/start", user_id=2000 + run))
        app.bot_data["run"] = run
        await app.update_persistence()
        # kept in the journal: nothing for PTB's error handlers, the health tells
        assert errors == []
        health = persistence.health()
        assert health.pending > 0 and health.journal_records > 0 and not health.ok
        assert health.last_error is not None and health.outage_since is not None

    live.start()
    await app.shutdown()  # the final update_persistence() and flush()
    assert persistence.last_recovery_file is None

    # the users of the conversation updates have (empty) data of their own, in private chats
    talkers = [*range(1000, 1010), *range(2000, 2004)]
    expected_users.update({talker: {} for talker in talkers})
    expected_chats.update({talker: {} for talker in talkers})
    stored = await load(make)
    assert set(expected_users) == set(stored["user_data"]), set(expected_users) ^ set(
        stored["user_data"]
    )
    assert_same(expected_users, stored["user_data"])
    assert_same(expected_chats, stored["chat_data"])
    assert stored["bot_data"] == {"run": 3}
    expected_talk = {(1000 + u, 1000 + u): 1 for u in range(4, 10)}
    expected_talk.update({(2000 + r, 2000 + r): 1 for r in range(4)})
    assert stored["talk"] == expected_talk
    during = [i for i in stored["user_data"] if 200 <= i < 1000]
    assert len(during) == 200


async def test_kept_writes_go_out_with_the_next_persistence_run(
    live: LocalServer, make: Factory, raw: Any
) -> None:
    persistence = make()
    await persistence.get_user_data()
    await persistence.update_user_data(1, {"v": 1})
    await persistence.update_conversation("talk", (1, 1), 1)

    live.kill()
    failures = await asyncio.gather(
        persistence.update_user_data(2, {"v": 2}),
        persistence.drop_user_data(1),
        persistence.update_conversation("talk", (1, 1), None),
        persistence.update_conversation("talk", (2, 2), 5),
        return_exceptions=True,
    )
    assert failures == [None] * 4  # kept in the journal
    assert persistence.health().pending == 4
    journal = persistence.health().journal_path
    assert journal is not None
    kept = {json_util.loads(line)["entity"] for line in journal.read_text().splitlines()}
    assert sorted(kept) == sorted(
        [
            "user_data[2]",
            "user_data[1]",
            "conversations['talk'][(1, 1)]",
            "conversations['talk'][(2, 2)]",
        ]
    )

    live.start()
    await until_reachable(persistence.database)
    # PTB calls update_bot_data in every run, changed or not: that run takes the kept writes along.
    await persistence.update_bot_data({})
    assert persistence.health().pending == 0
    assert await raw.user_data.find_one({"_id": 1}) is None
    assert (await raw.user_data.find_one({"_id": 2}))["data"] == {"v": 2}
    assert await raw.conversations.find_one({"_id": '["talk",1,1]'}) is None
    assert (await raw.conversations.find_one({"_id": '["talk",2,2]'}))["state"] == 5
    await persistence.flush()
    assert persistence.last_recovery_file is None


async def test_the_newest_kept_write_wins(live: LocalServer, make: Factory, raw: Any) -> None:
    persistence = make()
    await persistence.get_user_data()
    for user in (3, 4, 6):
        await persistence.update_user_data(user, {"v": "stored"})
    await persistence.update_conversation("talk", (7, 7), 1)

    live.kill()

    async def all_fail(*calls: Any) -> None:
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert results == [None] * len(calls)  # kept in the journal
        assert persistence.health().pending > 0

    # Two waves, each failing as a whole; within a document the second write is the newer one.
    await all_fail(
        persistence.update_user_data(1, {"v": "older"}),
        persistence.update_user_data(2, {"v": "older"}),
        persistence.drop_user_data(3),
        persistence.drop_user_data(4),
        persistence.update_user_data(5, {"v": "before the drop"}),
        persistence.update_user_data(6, {"v": "first"}),
        persistence.update_conversation("talk", (7, 7), None),
        persistence.update_conversation("talk", (8, 8), 2),
    )
    await all_fail(
        persistence.update_user_data(1, {"v": "newer"}),
        persistence.update_user_data(4, {"v": "after the drop"}),
        persistence.drop_user_data(5),
        persistence.update_user_data(6, {"v": "stored"}),  # back to what is stored
    )
    # one kept write per document: a newer one replaces the older
    assert persistence.health().pending == 8

    live.start()
    await until_reachable(persistence.database)
    await persistence.update_user_data(2, {"v": "newer, written at once"})
    await persistence.flush()
    assert persistence.last_recovery_file is None

    stored = await load(make)
    assert stored["user_data"] == {
        1: {"v": "newer"},
        2: {"v": "newer, written at once"},
        4: {"v": "after the drop"},
        6: {"v": "stored"},
    }
    assert stored["talk"] == {(8, 8): 2}


@pytest.mark.parametrize("mode", ["lazy", "refresh"])
async def test_an_outage_loses_nothing_in_lazy_and_refresh_modes(
    live: LocalServer, make: Factory, raw: Any, mode: str
) -> None:
    """Data edited outside handlers during the outage (never loaded in lazy mode) is kept too."""
    persistence = make(**{mode: True})
    app, _ = build_application(persistence)
    errors: list[BaseException] = []

    async def on_error(_: object, context: CallbackContext[Any, Any, Any, Any]) -> None:
        assert context.error is not None
        errors.append(context.error)

    app.add_error_handler(on_error)
    await app.initialize()
    app.user_data[1]["v"] = "before"
    app.mark_data_for_update_persistence(user_ids=[1])
    await app.update_persistence()
    assert errors == []

    live.kill()
    app.user_data[1]["v"] = "during"
    app.user_data[2]["v"] = "during"
    app.mark_data_for_update_persistence(user_ids=[1, 2])
    await app.update_persistence()
    assert errors == []  # kept in the journal
    assert persistence.health().pending == 2

    live.start()
    await app.shutdown()
    assert persistence.last_recovery_file is None
    assert (await load(make))["user_data"] == {1: {"v": "during"}, 2: {"v": "during"}}


@pytest.mark.parametrize("mode", ["lazy", "refresh"])
async def test_handlers_keep_answering_during_an_outage_in_lazy_and_refresh_modes(
    live: LocalServer, make: Factory, raw: Any, mode: str
) -> None:
    """refresh_* cannot read during the outage: the handler runs on the data in memory, and
    what it changes is written after the outage (merged onto stored keys in lazy mode)."""
    durable = raw.user_data.with_options(write_concern=WriteConcern(j=True))  # survives SIGKILL
    await durable.insert_one({"_id": 3, "data": {"name": "stored"}})
    persistence = make(**{mode: True})
    app, request = build_application(persistence)
    seen: list[dict[str, Any]] = []

    async def count(update: Update, context: CallbackContext[Any, Any, Any, Any]) -> None:
        assert context.user_data is not None and update.message is not None
        context.user_data["n"] = context.user_data.get("n", 0) + 1
        seen.append(dict(context.user_data))
        await update.message.reply_text(str(context.user_data["n"]))

    app.add_handler(MessageHandler(filters.ALL, count))
    app.add_error_handler(lambda *_: asyncio.sleep(0))
    await app.initialize()
    live.kill()
    await app.process_update(message_update(app, "hi", user_id=3))
    await app.process_update(message_update(app, "hi", user_id=3))
    assert [p["text"] for p in request.sent()] == ["1", "2"]
    if mode == "lazy":
        assert seen[-1] == {"n": 2}  # not loaded: the stored name is not known yet
    else:
        assert seen[-1]["n"] == 2
    await app.update_persistence()  # fails: kept
    live.start()
    await app.shutdown()
    assert persistence.last_recovery_file is None
    assert (await raw.user_data.find_one({"_id": 3}))["data"] == {"name": "stored", "n": 2}


async def test_a_timed_out_write_is_kept_and_retried(
    live: LocalServer, make: Factory, raw: Any
) -> None:
    """The server hangs (SIGSTOP) instead of going away: the write times out, is kept, and is
    written once the server answers again."""
    persistence = make(
        client_kwargs={"serverSelectionTimeoutMS": FAST_SELECTION_MS, "socketTimeoutMS": 300}
    )
    await persistence.get_user_data()
    await persistence.update_user_data(1, {"v": "stored"})
    assert live.process is not None
    os.killpg(live.process.pid, signal.SIGSTOP)
    try:
        await persistence.update_user_data(1, {"v": "timed out"})  # kept in the journal
        health = persistence.health()
        assert health.pending == 1 and health.journal_records == 1
        assert health.last_error is not None and "time" in health.last_error.lower()
    finally:
        os.killpg(live.process.pid, signal.SIGCONT)
    await until_reachable(persistence.database)
    await persistence.update_bot_data({})  # the next run takes the kept write along
    assert persistence.health().pending == 0
    await persistence.flush()
    assert (await raw.user_data.find_one({"_id": 1}))["data"] == {"v": "timed out"}


async def test_a_run_during_an_outage_keeps_its_bookkeeping_linear(
    live: LocalServer, make: Factory, raw: Any
) -> None:
    """300 writes kept during an outage, then a run of 300 more: the run's waiting costs O(N).

    Every write of a run waits for the kept writes it takes along. One future per write and kept
    write (N² of them: 100 million for 10k users) froze the bot for minutes after an outage.
    """
    n = 300
    # Each attempt waits this long for the killed server; the retry after the restart must get
    # the time 301 writes take on a busy machine (0.3 s did not always suffice).
    persistence = make(write_timeout=2.0)
    await persistence.get_user_data()
    live.kill()
    await asyncio.gather(*(persistence.update_user_data(u, {"v": 1}) for u in range(n)))
    assert persistence.health().pending == n
    loop = asyncio.get_running_loop()
    made = 0
    create_future = loop.create_future

    def counting() -> asyncio.Future[Any]:
        nonlocal made
        made += 1
        return create_future()

    loop.create_future = counting  # type: ignore[method-assign]
    try:
        await asyncio.gather(*(persistence.update_user_data(u, {"v": 2}) for u in range(n)))
    finally:
        del loop.create_future
    assert made < 5 * n, made
    assert persistence.health().pending == n
    ensure_running(live)
    await until_reachable(persistence.database)
    await persistence.update_bot_data({})  # the next run takes the kept writes along
    assert persistence.health().pending == 0
    await persistence.flush()
    assert await raw.user_data.count_documents({"data.v": 2}) == n


# ============================================================================ shutdown while down
async def test_flush_while_unreachable_saves_a_recovery_file_that_restores(
    live: LocalServer, make: Factory, raw: Any, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    persistence = make(flush_timeout=1.0)
    app, _ = build_application(persistence)
    app.add_error_handler(lambda *_: asyncio.sleep(0))
    await app.initialize()
    for user in (1, 2, 3):
        app.user_data[user]["v"] = f"before {user}"
    app.mark_data_for_update_persistence(user_ids=[1, 2, 3])
    await app.update_persistence()

    live.kill()
    app.user_data[2]["v"] = "during 2"
    app.user_data[3]["v"] = "during 3"
    app.user_data[4]["v"] = ("during", 4, {5: b"\x00"})
    app.bot_data["when"] = "during"
    app.drop_user_data(1)
    app.mark_data_for_update_persistence(user_ids=[2, 3, 4])
    await app.update_persistence()  # fails: kept

    caplog.set_level(logging.ERROR, logger="mongo_persistence")
    await app.shutdown()  # update_persistence() fails again, flush() gives up after 1 s
    path = persistence.last_recovery_file
    assert path is not None and path.parent == tmp_path / "recovery"
    assert any(
        record.levelno == logging.ERROR and str(path) in record.getMessage()
        for record in caplog.records
    ), caplog.text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    lines = path.read_text(encoding="utf-8").splitlines()
    records = [json_util.loads(line) for line in lines]
    assert sorted(r["entity"] for r in records) == [
        "bot_data",
        "user_data[1]",
        "user_data[2]",
        "user_data[3]",
        "user_data[4]",
    ]
    assert {r["entity"]: r["op"] for r in records}["user_data[1]"] == "delete"

    live.start()
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(path.read_bytes())
    # Meanwhile another program wrote user 3 again: the older record must not win.
    await raw.user_data.update_one(
        {"_id": 3}, {"$set": {"data.v": "newer than the file", "updated_at": dtm.datetime.now()}}
    )

    restarted = make()  # the next start replays the journal before loading
    assert (await restarted.get_user_data())[3] == {"v": "newer than the file"}
    assert not path.exists()
    # The file restored again with the command: each record is restored or skipped (never lost).
    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli_main,
        ["recover", str(copy), "--uri", live.uri, "--database", raw.name],
    )
    assert result.exit_code == 0, result.output
    counts = re.search(r"Restored (\d+), skipped (\d+)", result.output)
    assert counts is not None, result.output
    assert int(counts.group(1)) + int(counts.group(2)) == 5
    await restarted.flush()

    stored = await load(make)
    assert_same(
        {
            2: {"v": "during 2"},
            3: {"v": "newer than the file"},
            4: {"v": ("during", 4, {5: b"\x00"})},
        },
        stored["user_data"],
    )
    assert stored["bot_data"] == {"when": "during"}


async def test_flush_is_bounded_by_flush_timeout_not_by_server_selection(
    live: LocalServer, make: Factory, raw: Any
) -> None:
    """Server selection alone would wait ten minutes; flush() gives up after its flush_timeout and
    saves the write that was still in flight."""
    persistence = make(flush_timeout=0.5, client_kwargs={"serverSelectionTimeoutMS": 600_000})
    await persistence.get_user_data()
    await persistence.update_user_data(1, {"v": "stored"})

    live.kill()
    stuck = asyncio.create_task(persistence.update_user_data(1, {"v": "in flight"}))
    while not persistence.health().unsaved:
        await asyncio.sleep(0)
    # A hang guard, not a timing assertion: far above flush_timeout, far below server selection.
    await asyncio.wait_for(persistence.flush(), timeout=120)
    path = persistence.last_recovery_file
    assert path is not None
    assert await stuck is None  # handed over: it is in the journal
    (record,) = [json_util.loads(line) for line in path.read_text().splitlines()]
    assert record["entity"] == "user_data[1]"

    live.start()
    restorer = make()
    await restorer.get_user_data()  # replays the journal
    assert not path.exists()
    await restorer.flush()
    assert (await load(make))["user_data"] == {1: {"v": "in flight"}}


# ============================================================================ bot crash
async def test_a_sigkilled_bot_leaves_every_acknowledged_entity_whole(
    live: LocalServer, raw: Any, db_name: str, make: Factory
) -> None:
    """The bot process is SIGKILLed in the middle of its persistence runs (w="majority", j=True),
    then the server is SIGKILLed too: every entity holds, whole, the data of the last acknowledged
    run, or of the run in progress when the bot died."""
    from tests.helpers.crash_bot import chat_data, user_data

    users = 60
    bot = subprocess.Popen(
        [sys.executable, str(HELPERS / "crash_bot.py"), live.uri, db_name, str(users)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked = 0
    try:
        assert bot.stdout is not None
        while acked < 4:
            line = bot.stdout.readline()
            assert line.startswith("ACK "), (line, bot.stderr.read() if bot.stderr else "")
            acked = int(line.split()[1])
    finally:
        os.kill(bot.pid, signal.SIGKILL)
        out, _ = bot.communicate()
    acked = max([acked, *(int(line.split()[1]) for line in out.splitlines() if "ACK" in line)])
    assert bot.returncode == -signal.SIGKILL

    async def check() -> None:
        stored = await load(make)
        assert set(stored["user_data"]) == set(range(users))
        assert set(stored["chat_data"]) == set(range(-users, 0))
        for user, data in stored["user_data"].items():
            run = data["run"]
            assert run in (acked, acked + 1), (user, run, acked)
            assert_same(user_data(user, run), data)
        for chat, data in stored["chat_data"].items():
            assert data["run"] in (acked, acked + 1)
            assert_same(chat_data(chat, data["run"]), data)
        assert stored["bot_data"]["run"] in (acked, acked + 1)

    await check()
    live.kill()  # and now the server crashes too: journaled writes survive it
    live.start()
    await check()


# ============================================================================ start while down
def unreachable_uris() -> list[Any]:
    closed = free_port()
    fast = f"serverSelectionTimeoutMS={FAST_SELECTION_MS}&connectTimeoutMS=2000"
    return [
        pytest.param(
            f"mongodb://alice:{PASSWORD}@127.0.0.1:{closed}/?{fast}",
            ["Cannot reach MongoDB", f"127.0.0.1:{closed}", "server selection"],
            id="nothing-listens",
        ),
        pytest.param(
            f"mongodb://alice:{PASSWORD}@no-such-host.invalid:27017/?{fast}",
            ["Cannot reach MongoDB", "no-such-host.invalid"],
            id="unknown-host",
        ),
        pytest.param(
            f"mongodb+srv://alice:{PASSWORD}@no-such-host.invalid/?{fast}",
            ["MongoDB", "no-such-host.invalid"],
            id="unknown-srv-host",
        ),
    ]


@pytest.mark.parametrize(("uri", "mentions"), unreachable_uris())
async def test_start_with_an_unreachable_server_fails_with_one_clear_error(
    uri: str, mentions: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    persistence = MongoPersistence(uri, update_interval=3600)
    app, _ = build_application(persistence)
    with pytest.raises(PersistenceConnectionError) as info:
        await app.initialize()
    message = str(info.value)
    for mention in mentions:
        assert mention in message, message
    assert "alice:***@" in message
    assert PASSWORD not in message and PASSWORD not in repr(info.value)
    assert info.value.__cause__ is None
    assert PASSWORD not in caplog.text
    await persistence.flush()


@pytest.mark.parametrize(
    "uri",
    [
        f"mongodb://alice:{PASSWORD}@127.0.0.1:notaport/",
        f"mongodb://alice:{PASSWORD}:x@y@127.0.0.1:1/",
        f"http://alice:{PASSWORD}@127.0.0.1:1/",
        f"mongodb://alice:{PASSWORD}@127.0.0.1:1/bad$name",
    ],
    ids=["port", "unescaped-password", "scheme", "database-name"],
)
async def test_start_with_a_malformed_uri_fails_with_one_clear_error(uri: str) -> None:
    with pytest.raises(PersistenceConnectionError) as info:
        persistence = MongoPersistence(uri, update_interval=3600)
        app, _ = build_application(persistence)
        await app.initialize()
    assert "alice:***@" in str(info.value)
    shown = "".join([str(info.value), repr(info.value), *traceback.format_exception(info.value)])
    assert PASSWORD not in shown


class _WriteCommands(monitoring.CommandListener):
    """The write concern of every write command a client sends, by collection."""

    def __init__(self) -> None:
        self.concerns: dict[str, Any] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in ("insert", "update", "delete"):
            self.concerns[event.command[event.command_name]] = event.command.get("writeConcern")

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_the_write_concern_is_used_for_every_collection(make: Factory) -> None:
    listener = _WriteCommands()
    persistence = make(
        write_concern=WriteConcern(w="majority", j=True),
        client_kwargs={
            "serverSelectionTimeoutMS": FAST_SELECTION_MS,
            "event_listeners": [listener],
        },
    )
    await persistence.get_user_data()
    await asyncio.gather(
        persistence.update_user_data(1, {"v": 1}),
        persistence.update_chat_data(1, {"v": 1}),
        persistence.update_bot_data({"v": 1}),
        persistence.update_conversation("talk", (1,), 1),
        persistence.update_callback_data(([("k", 1.0, {"b": 1})], {})),
    )
    await persistence.flush()
    kinds = ("user_data", "chat_data", "bot_data", "conversations", "callback_data")
    assert listener.concerns == {kind: {"w": "majority", "j": True} for kind in kinds}


# ============================================================================ issue 10
async def test_two_bots_retrying_after_a_shared_outage_keep_each_others_keys(
    live: LocalServer, make: Factory, raw: Any
) -> None:
    """Retries send the diff against what MongoDB acknowledged, never a whole replacement."""
    seed = make()
    await seed.get_user_data()
    await seed.update_user_data(1, {"a": 0, "b": 0, 7: "int key"})
    await seed.flush()
    first, second = make(), make()
    await first.get_user_data()
    await second.get_user_data()

    live.kill()
    await first.update_user_data(1, {"a": 1, "b": 0, 7: "int key"})  # kept
    await second.update_user_data(1, {"a": 0, "b": 2, 7: "int key", 8: "new"})  # kept
    assert first.health().pending == 1 and second.health().pending == 1

    live.start()
    await until_reachable(first.database)
    await until_reachable(second.database)
    await first.flush()
    await second.flush()
    assert first.last_recovery_file is None and second.last_recovery_file is None
    stored = (await load(make))["user_data"]
    assert stored[1] == {"a": 1, "b": 2, 7: "int key", 8: "new"}


async def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    live: LocalServer, make: Factory, raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    persistence = make()
    app, _ = build_application(persistence)
    errors: list[object] = []
    app.add_error_handler(lambda _, context: asyncio.sleep(0, errors.append(context.error)))
    await app.initialize()
    caplog.set_level(logging.DEBUG, logger="mongo_persistence")
    live.kill()
    for run in range(3):
        for user in range(3):
            app.user_data[user]["run"] = run
        app.mark_data_for_update_persistence(user_ids=range(3))
        await app.update_persistence()
    live.start()
    await until_reachable(persistence.database)
    await app.shutdown()
    assert errors == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2, warnings
    assert "do" in warnings[0] and "not acknowledge" in warnings[0]
    assert "again" in warnings[1] and "4 entities" in warnings[1]  # 3 users + bot_data
    assert persistence.health().ok and persistence.health().journal_records == 0
    assert (await load(make))["user_data"] == {u: {"run": 2} for u in range(3)}


def _stop(server: LocalServer) -> None:
    assert server.process is not None
    os.killpg(server.process.pid, signal.SIGSTOP)


def _resume(server: LocalServer) -> None:
    assert server.process is not None
    os.killpg(server.process.pid, signal.SIGCONT)


async def test_a_bot_stopped_with_a_hung_server_ends_within_10_s_and_loses_nothing(
    live: LocalServer, make: Factory, raw: Any, tmp_path: Path
) -> None:
    """With the default timeouts, PTB's shutdown (its last update_persistence() and flush(),
    closing the owned client) ends within a container's stop grace period, whatever the
    (SIGSTOPped) server does; the data is in the journal, and in MongoDB after the next start."""
    persistence = MongoPersistence(
        live.uri,
        database=raw.name,
        update_interval=3600,
        write_concern=WriteConcern(w="majority", j=True),
        recovery_dir=tmp_path / "recovery",
    )
    app, _ = build_application(persistence)
    await app.initialize()
    for user in range(50):
        app.user_data[user]["v"] = "before"
    app.mark_data_for_update_persistence(user_ids=range(50))
    await app.update_persistence()
    _stop(live)
    try:
        for user in range(50):
            app.user_data[user]["v"] = "during"
        app.mark_data_for_update_persistence(user_ids=range(50))
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.wait_for(app.shutdown(), timeout=60)  # a hang guard
        took = loop.time() - started
        assert took < 10, took
        health = persistence.health()
        assert persistence.last_recovery_file is not None
        assert health.journal_records >= 50
    finally:
        _resume(live)
    restarted = make()
    stored = await restarted.get_user_data()  # replays the journal before loading
    assert stored == {user: {"v": "during"} for user in range(50)}
    await restarted.flush()


async def test_flush_with_a_hung_server_returns_within_flush_timeout_and_a_constant(
    live: LocalServer, make: Factory, raw: Any
) -> None:
    persistence = make(flush_timeout=1.0, write_timeout=30)  # a long attempt in flight
    await persistence.get_user_data()
    await persistence.update_user_data(1, {"v": 1})
    _stop(live)
    try:
        stuck = asyncio.create_task(persistence.update_user_data(1, {"v": 2}))
        while not persistence.health().unsaved:
            await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.wait_for(persistence.flush(), timeout=60)  # a hang guard
        took = loop.time() - started
        assert took < 1.0 + 2.0, took  # flush_timeout, closing the client (1 s), a margin
        assert await stuck is None
        assert persistence.last_recovery_file is not None
    finally:
        _resume(live)


async def test_a_cancelled_lazy_write_that_reads_first_is_still_written(
    live: LocalServer, make: Factory, raw: Any
) -> None:
    """Lazy mode, an entity never loaded whose keys cannot be set one by one (int keys mixed
    with text keys): its document is read before the write. Cancelling the caller while that
    read waits does not cancel the write."""
    durable = raw.user_data.with_options(write_concern=WriteConcern(j=True))
    await durable.insert_one({"_id": 4, "data": {"name": "stored"}})
    persistence = make(lazy=True, write_timeout=30)
    await persistence.get_user_data()
    await persistence.get_bot_data()
    _stop(live)
    try:
        task = asyncio.create_task(persistence.update_user_data(4, {"name": "x", 9: "nine"}))
        await asyncio.wait({task}, timeout=0.2)  # a chance to start its read
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        _resume(live)
    await persistence.flush()
    assert (await load(make))["user_data"][4] == {"name": "x", 9: "nine"}


async def test_a_caller_cancelled_during_the_set_up_does_not_cancel_it_for_the_others(
    live: LocalServer, make: Factory, raw: Any
) -> None:
    """Two loads start together on a hung server (the first one connects, the second waits for
    it); the second is cancelled. The first still ends, with the set-up done for everyone."""
    await raw.user_data.insert_one({"_id": 1, "data": {"v": 1}})
    persistence = make(write_timeout=30)
    _stop(live)
    try:
        first = asyncio.create_task(persistence.get_user_data())
        second = asyncio.create_task(persistence.get_chat_data())
        await asyncio.wait({first, second}, timeout=0.2)  # both wait for the set-up now
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
    finally:
        _resume(live)
    assert await asyncio.wait_for(first, timeout=30) == {1: {"v": 1}}  # a hang guard
    assert await persistence.get_chat_data() == {}
    await persistence.flush()


async def test_a_sigkilled_bot_during_an_outage_loses_nothing_it_handed_over(
    live: LocalServer, raw: Any, db_name: str, make: Factory, tmp_path: Path
) -> None:
    """The server goes away, the bot keeps running (its writes are kept in the journal), then it
    is SIGKILLed: the next start replays the journal, every user holds the last run's data."""
    users = 20
    journal = str(tmp_path / "recovery")
    bot = subprocess.Popen(
        [sys.executable, str(HELPERS / "outage_bot.py"), live.uri, db_name, str(users), journal],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    last = 0
    try:
        assert bot.stdout is not None
        line = bot.stdout.readline()
        assert line.startswith("RUN 1 0"), (line, bot.stderr.read() if bot.stderr else "")
        live.kill()
        kept_runs = 0
        while kept_runs < 3:
            line = bot.stdout.readline()
            assert line.startswith("RUN "), (line, bot.stderr.read() if bot.stderr else "")
            _, run, pending = line.split()
            last = int(run)
            kept_runs += int(pending) > 0
    finally:
        os.kill(bot.pid, signal.SIGKILL)
        out, _ = bot.communicate()
    last = max([last, *(int(line.split()[1]) for line in out.splitlines() if "RUN" in line)])
    live.start()
    stored = await load(make)  # replays the journal first
    assert set(stored["user_data"]) == set(range(users))
    for user, data in stored["user_data"].items():
        assert data["run"] in (last, last + 1), (user, data, last)
        assert data == {"run": data["run"], f"k{data['run'] % 3}": user}
    assert stored["bot_data"]["run"] in (last, last + 1)
