"""JobQueue jobs kept in MongoDB (``MongoPersistence.store_jobs``), over the wire.

A restart is a new persistence and a new Application on the same database. Jobs that must fire
use short real timings; everything else waits on a condition with a deadline, never on a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.date import DateTrigger
from click.testing import CliRunner
from pymongo import AsyncMongoClient
from pymongo.write_concern import WriteConcern
from telegram import Chat, User
from telegram.ext import Application, CallbackContext, CommandHandler, ConversationHandler

from mongo_persistence import MongoPersistence, UnstorableJobError
from mongo_persistence.cli import main as cli_main
from mongo_persistence.jobs import resolve_callback
from scripts.local_server import LocalServer
from tests.helpers.servers import FAST_SELECTION_MS, disk_server, ensure_running
from tests.ptb_offline import build_application, message_update

App = Application[Any, Any, Any, Any, Any, Any]
Context = CallbackContext[Any, Any, Any, Any]
DEADLINE = 15.0
SECRET = "the-secret-in-job-data"


# ============================================================================ callbacks
@dataclass
class Run:
    name: str | None
    data: Any
    chat_data: Any
    user_data: Any
    bot: Any


RUNS: list[Run] = []
MISSED: list[str] = []
_CHANGED: list[asyncio.Event] = []  # the event of the current until(), if any


def _wake() -> None:
    for event in _CHANGED:
        event.set()


async def record(context: Context) -> None:
    job = context.job
    assert job is not None
    RUNS.append(Run(job.name, job.data, context.chat_data, context.user_data, context.bot))
    _wake()


async def count_twice_then_pause(context: Context) -> None:
    job = context.job
    assert job is not None
    job.data["count"] += 1
    if job.data["count"] % 2 == 0:
        job.enabled = False  # paused: stored with no next run time
    await record(context)


def plain_function(context: Context) -> None:  # not async: cannot be a stored callback
    return None


class Holder:
    @staticmethod
    async def static_callback(context: Context) -> None:
        await record(context)

    async def method(self, context: Context) -> None:
        await record(context)


async def until(predicate: Callable[[], bool], timeout: float = DEADLINE) -> None:
    """Waits until a callback (or a check every 20 ms) finds ``predicate`` true, or fails."""
    changed = asyncio.Event()
    _CHANGED[:] = [changed]
    deadline = time.monotonic() + timeout
    try:
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("condition not met before the deadline")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(changed.wait(), min(left, 0.02))
            changed.clear()
    finally:
        _CHANGED.clear()


def runs_of(name: str) -> list[Run]:
    return [run for run in RUNS if run.name == name]


@pytest.fixture(autouse=True)
def _clear_runs() -> Iterator[None]:
    RUNS.clear()
    MISSED.clear()
    yield
    RUNS.clear()
    MISSED.clear()


# ============================================================================ harness
Boot = Callable[..., contextlib.AbstractAsyncContextManager[App]]


async def settle(app: App) -> None:
    """Waits until every job document write of the application is acknowledged."""
    job_store = app.persistence._job_store  # type: ignore[union-attr]
    deadline = time.monotonic() + DEADLINE
    while job_store._tasks:
        left = deadline - time.monotonic()
        assert left > 0, "job writes still running at the deadline"
        await asyncio.wait(set(job_store._tasks), timeout=left)


def on_missed(event: JobExecutionEvent) -> None:
    MISSED.append(event.job_id)
    _wake()


@pytest.fixture
def boot(make_persistence: Callable[..., MongoPersistence[Any, Any, Any]]) -> Boot:
    @contextlib.asynccontextmanager
    async def run(
        *,
        store_jobs: bool = True,
        setup: Callable[[App], Any] | None = None,
        post_init: Callable[[App], Any] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[App]:
        persistence = make_persistence(**kwargs)
        app, _ = build_application(persistence)
        if setup is not None:
            setup(app)
        await app.initialize()
        if store_jobs:
            await persistence.store_jobs(app)
        if post_init is not None:
            post_init(app)
        assert app.job_queue is not None
        app.job_queue.scheduler.add_listener(on_missed, EVENT_JOB_MISSED)
        await app.start()
        try:
            yield app
            if store_jobs:
                await settle(app)
        finally:
            if app.running:
                await app.stop()
            await app.shutdown()

    return run


def jq(app: App) -> Any:
    assert app.job_queue is not None
    return app.job_queue


def by_name(app: App) -> dict[str | None, Any]:
    jobs = jq(app).jobs()
    assert len({job.name for job in jobs}) == len(jobs), [job.name for job in jobs]
    return {job.name: job for job in jobs}


async def stored(db: Any) -> dict[str, dict[str, Any]]:
    return {doc["name"]: doc async for doc in db.jobs.find()}


def near(a: dtm.datetime | None, b: dtm.datetime | None) -> bool:
    """Equal to the millisecond (BSON dates keep milliseconds)."""
    if a is None or b is None:
        return a is b
    return abs(a - b) < dtm.timedelta(milliseconds=1)


# ============================================================================ documents
async def test_documents_are_readable(boot: Boot, db: Any) -> None:
    async with boot() as app:
        jq(app).run_once(
            record, 3600, name="reminder", data={"text": "tea"}, chat_id=-100, user_id=42
        )
        jq(app).run_daily(record, dtm.time(9, 30), days=(1, 3), name="daily")
        await settle(app)
        docs = await stored(db)
    reminder = docs["reminder"]
    assert reminder["callback"] == "tests.test_jobs:record"
    assert reminder["trigger"]["type"] == "date"
    assert isinstance(reminder["trigger"]["run_date"], dtm.datetime)
    assert reminder["trigger"]["timezone"] == "UTC"
    assert isinstance(reminder["next_run_time"], dtm.datetime)
    assert (reminder["chat_id"], reminder["user_id"]) == (-100, 42)
    assert reminder["data"] == {"text": "tea"}
    assert reminder["misfire_grace_time"] == 1 and reminder["coalesce"] is True
    assert "pickle" not in str(reminder).lower()
    daily = docs["daily"]["trigger"]
    assert daily["type"] == "cron"
    assert (daily["day_of_week"], daily["hour"], daily["minute"], daily["second"]) == (
        "mon,wed",
        "9",
        "30",
        "0",
    )


# ============================================================================ restarts
def schedule_every_kind(app: App) -> None:
    queue = jq(app)
    berlin = ZoneInfo("Europe/Berlin")
    india = dtm.timezone(dtm.timedelta(hours=5, minutes=30))
    now = dtm.datetime.now(dtm.timezone.utc)
    queue.run_once(record, 3600, name="once", data=[1, (2, 3)], chat_id=1, user_id=2)
    queue.run_once(record, now + dtm.timedelta(days=3), name="once-datetime")
    queue.run_repeating(record, 600, first=30, last=86400, name="repeating", data={"n": 0})
    queue.run_daily(record, dtm.time(7, 15, tzinfo=berlin), days=(0, 6), name="daily-berlin")
    queue.run_daily(record, dtm.time(22, 0, tzinfo=india), name="daily-india")
    queue.run_monthly(record, dtm.time(8, 0), day=15, name="monthly")
    queue.run_monthly(record, dtm.time(8, 0), day=-1, name="monthly-last")
    queue.run_custom(
        record, {"trigger": "cron", "day_of_week": "fri", "hour": 17}, name="custom-cron"
    )
    queue.run_custom(
        Holder.static_callback,
        {
            "trigger": OrTrigger(
                [
                    DateTrigger(now + dtm.timedelta(hours=5)),
                    DateTrigger(now + dtm.timedelta(hours=7)),
                ]
            )
        },
        name="custom-or",
    )


async def test_every_trigger_kind_survives_a_restart(boot: Boot, db: Any) -> None:
    async with boot() as app:
        schedule_every_kind(app)
        await settle(app)
        before = {
            name: (job.next_t, str(job.trigger), job.data, job.chat_id, job.user_id)
            for name, job in by_name(app).items()
        }
    assert len(before) == 9
    async with boot() as app:
        after = by_name(app)
        assert set(after) == set(before)
        now = dtm.datetime.now(dtm.timezone.utc)
        for name, (next_t, trigger, data, chat_id, user_id) in before.items():
            job = after[name]
            assert near(job.next_t, next_t), name
            assert str(job.trigger) == trigger, name
            assert (job.data, job.chat_id, job.user_id) == (data, chat_id, user_id), name
            fire = job.trigger.get_next_fire_time(None, now)
            assert fire is not None, name
        assert after["once"].data == [1, (2, 3)]
        assert after["custom-or"].callback is Holder.static_callback
        assert str(after["daily-berlin"].trigger.timezone) == "Europe/Berlin"
        assert after["daily-india"].trigger.timezone.utcoffset(None) == dtm.timedelta(
            hours=5, minutes=30
        )
        # nothing was written again: the restored jobs are what is stored
        docs = await stored(db)
        assert len(docs) == 9


async def test_a_run_once_job_fires_once_after_a_restart_and_is_deleted(
    boot: Boot, db: Any
) -> None:
    async with boot() as app:
        app.chat_data[-5]["lang"] = "de"
        app.user_data[7]["name"] = "Ann"
        app.mark_data_for_update_persistence(chat_ids=-5, user_ids=7)
        jq(app).run_once(record, 2.0, name="soon", data={"x": 1}, chat_id=-5, user_id=7)
    assert RUNS == []  # stopped before it was due
    async with boot() as app:
        await until(lambda: len(runs_of("soon")) == 1)
        run = runs_of("soon")[0]
        assert run.data == {"x": 1}
        assert run.chat_data == {"lang": "de"}
        assert run.user_data == {"name": "Ann"}
        assert run.bot is app.bot
        await settle(app)
        assert await db.jobs.count_documents({}) == 0
        assert jq(app).jobs() == ()
    async with boot():
        pass
    assert len(runs_of("soon")) == 1


async def test_removed_jobs_are_deleted(boot: Boot, db: Any) -> None:
    async with boot() as app:
        keep = jq(app).run_repeating(record, 600, name="keep")
        gone = jq(app).run_once(record, 600, name="gone")
        await settle(app)
        assert set(await stored(db)) == {"keep", "gone"}
        gone.schedule_removal()
        await settle(app)
        assert set(await stored(db)) == {"keep"}
        jq(app).scheduler.remove_all_jobs()
        await settle(app)
        assert await db.jobs.count_documents({}) == 0
        assert keep.job.id not in {job.id for job in jq(app).jobs()}


async def test_data_changed_by_the_callback_pause_and_two_restarts(boot: Boot, db: Any) -> None:
    async with boot() as app:
        jq(app).run_repeating(count_twice_then_pause, 0.2, name="counter", data={"count": 0})
        await until(lambda: len(runs_of("counter")) == 2)
        await settle(app)
    doc = (await stored(db))["counter"]
    assert doc["data"] == {"count": 2}
    assert doc["next_run_time"] is None  # paused
    for _ in range(2):  # two restarts in a row: the same, single, paused job
        async with boot() as app:
            jobs = jq(app).get_jobs_by_name("counter")
            assert len(jobs) == 1
            assert jobs[0].data == {"count": 2}
            assert jobs[0].next_t is None
    assert len(runs_of("counter")) == 2
    async with boot() as app:
        jq(app).get_jobs_by_name("counter")[0].enabled = True
        await until(lambda: len(runs_of("counter")) == 4)
        await settle(app)
    assert (await stored(db))["counter"]["data"] == {"count": 4}
    assert await db.jobs.count_documents({}) == 1


async def test_telegram_objects_in_data_come_back_bound_to_the_new_bot(boot: Boot) -> None:
    async with boot() as app:
        message = message_update(app, "hello", user_id=42).message
        assert message is not None
        data = {"message": message, "user": User(42, "Ann", False), "chat": Chat(-7, "group")}
        jq(app).run_once(record, 3600, name="tg", data=data)
    async with boot() as app:
        restored = jq(app).get_jobs_by_name("tg")[0].data
        assert restored["message"] == message
        assert restored["message"].to_dict() == message.to_dict()
        assert restored["message"].get_bot() is app.bot
        assert restored["user"].get_bot() is app.bot
        assert restored["chat"] == Chat(-7, "group")


# ============================================================================ misfires
async def past_due(db: Any, name: str, ago: dtm.timedelta) -> None:
    """Makes a stored job overdue, as if the bot had been down for ``ago``."""
    doc = (await stored(db))[name]
    when = doc["next_run_time"] - ago
    fields: dict[str, Any] = {"next_run_time": when}
    if doc["trigger"]["type"] == "date":
        fields["trigger.run_date"] = when
    await db.jobs.update_one({"_id": doc["_id"]}, {"$set": fields})


async def test_missed_runs_follow_misfire_grace_time_and_coalesce(boot: Boot, db: Any) -> None:
    day = dtm.timedelta(days=1)
    async with boot() as app:
        queue = jq(app)
        at = dtm.time(3, 0)
        queue.run_daily(record, at, name="daily-strict")  # APScheduler's default grace: 1 s
        queue.run_daily(record, at, name="daily-late-ok", job_kwargs={"misfire_grace_time": None})
        queue.run_once(record, 3600, name="once-strict")
        queue.run_once(record, 3600, name="once-late-ok", job_kwargs={"misfire_grace_time": None})
        queue.run_repeating(
            record,
            3600,
            name="hourly-no-coalesce",
            job_kwargs={"misfire_grace_time": None, "coalesce": False},
        )
        await settle(app)
    for name in ("daily-strict", "daily-late-ok"):
        await past_due(db, name, 2 * day)  # missed by two days
    for name in ("once-strict", "once-late-ok"):
        await past_due(db, name, 2 * 3600 * dtm.timedelta(seconds=1))
    await past_due(db, "hourly-no-coalesce", 3 * dtm.timedelta(hours=1))
    ids = {name: doc["_id"] for name, doc in (await stored(db)).items()}
    async with boot() as app:
        await until(
            lambda: (
                len(runs_of("daily-late-ok")) == 1
                and len(runs_of("once-late-ok")) == 1
                and len(runs_of("hourly-no-coalesce")) == 3
                and {ids["daily-strict"], ids["once-strict"]} <= set(MISSED)
            )
        )
        await settle(app)
        docs = await stored(db)
        now = dtm.datetime.now(dtm.timezone.utc).replace(tzinfo=None)
        # the daily jobs (ran once, or not at all) are due again tomorrow, the run_once ones gone
        assert set(docs) == {"daily-strict", "daily-late-ok", "hourly-no-coalesce"}
        for name in docs:
            assert docs[name]["next_run_time"] > now, name
    assert runs_of("daily-strict") == [] and runs_of("once-strict") == []


# ============================================================================ re-adding at start
def add_daily_with_id(app: App) -> None:
    jq(app).run_daily(
        record,
        dtm.time(6, 0),
        name="report",
        job_kwargs={"id": "report", "replace_existing": True},
    )


def add_if_missing(app: App) -> None:
    if not jq(app).get_jobs_by_name("digest"):
        jq(app).run_repeating(record, 900, name="digest")


async def test_jobs_re_added_at_start_up_are_not_duplicated(boot: Boot, db: Any) -> None:
    for _ in range(3):
        async with boot(post_init=lambda app: (add_daily_with_id(app), add_if_missing(app))) as app:
            assert sorted(job.name for job in jq(app).jobs()) == ["digest", "report"]
    docs = [doc async for doc in db.jobs.find()]
    assert sorted(doc["name"] for doc in docs) == ["digest", "report"]
    assert {doc["_id"] for doc in docs if doc["name"] == "report"} == {"report"}


# ============================================================================ what cannot be stored
async def test_unstorable_callbacks_fail_when_scheduled_naming_the_job(boot: Boot, db: Any) -> None:
    async def nested(context: Context) -> None:
        return None

    cases = {
        "with-lambda": lambda context: None,
        "with-nested": nested,
        "with-method": Holder().method,
        "with-sync": plain_function,
    }
    async with boot() as app:
        for name, callback in cases.items():
            with pytest.raises(UnstorableJobError, match=f"'{name}'") as info:
                jq(app).run_once(callback, 60, name=name)
            assert info.value.name == name
        with pytest.raises(UnstorableJobError, match="lambda"):
            jq(app).run_once(lambda context: None, 60, name="again")
        assert jq(app).jobs() == ()
    assert await db.jobs.count_documents({}) == 0


async def test_a_missing_callback_is_reported_once_kept_and_not_run(
    boot: Boot, db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with boot() as app:
        late_ok = {"misfire_grace_time": None}
        jq(app).run_once(record, 3600, name="orphan", data={"secret": SECRET}, job_kwargs=late_ok)
        jq(app).run_once(record, 3600, name="foreign", data={"secret": SECRET}, job_kwargs=late_ok)
        jq(app).run_once(record, 3600, name="fine")
        await settle(app)
    for name in ("orphan", "foreign"):  # overdue: they would run at once if they were scheduled
        await past_due(db, name, dtm.timedelta(hours=2))
    await db.jobs.update_one({"name": "orphan"}, {"$set": {"callback": "tests.test_jobs:gone"}})
    await db.jobs.update_one({"name": "foreign"}, {"$set": {"callback": "os:system"}})
    before = await stored(db)
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="mongo_persistence"):
            async with boot() as app:
                assert [job.name for job in jq(app).jobs()] == ["fine"]
        reports = [r.getMessage() for r in caplog.records if "is not scheduled" in r.getMessage()]
        assert len(reports) == 2, reports
        assert any("'orphan'" in r and "tests.test_jobs:gone" in r for r in reports)
        assert any("'foreign'" in r and "os:system" in r for r in reports)
        assert SECRET not in caplog.text
        assert await stored(db) == before  # never deleted, nor changed
    assert RUNS == []


def test_callbacks_are_only_looked_up_among_imported_modules() -> None:
    assert resolve_callback("tests.test_jobs:record") is record
    assert resolve_callback("tests.test_jobs:Holder.static_callback") is Holder.static_callback
    for ref in (
        "not_imported_module_xyz:callback",
        "tests.test_jobs:missing",
        "os:system",  # imported, but not an async function
        "tests.test_jobs:__dict__",
        "no-colon",
    ):
        with pytest.raises(LookupError):
            resolve_callback(ref)
    import sys

    assert "not_imported_module_xyz" not in sys.modules


async def test_unencodable_data_fails_when_scheduled(boot: Boot, db: Any) -> None:
    async with boot() as app:
        with pytest.raises(TypeError, match="jobs\\['bad'\\]"):
            jq(app).run_once(record, 60, name="bad", data={"lock": asyncio.Lock()})
        assert jq(app).jobs() == ()
    assert await db.jobs.count_documents({}) == 0


# ============================================================================ without the option
async def test_a_bot_without_store_jobs_writes_no_jobs(boot: Boot, db: Any) -> None:
    async with boot(store_jobs=False) as app:
        jq(app).run_once(record, 0.2, name="plain", chat_id=3)
        jq(app).run_repeating(record, 600, name="plain-repeating")
        await until(lambda: len(runs_of("plain")) == 1)
    assert "jobs" not in await db.list_collection_names()
    async with boot(store_jobs=False) as app:
        assert jq(app).jobs() == ()


async def test_store_jobs_needs_a_job_queue_that_is_not_running(
    make_persistence: Callable[..., MongoPersistence[Any, Any, Any]],
) -> None:
    persistence = make_persistence()
    app, _ = build_application(persistence, job_queue=None)
    async with app:
        with pytest.raises(RuntimeError, match="job-queue"):
            await persistence.store_jobs(app)
    persistence = make_persistence()
    app, _ = build_application(persistence)
    async with app:
        await app.start()
        try:
            with pytest.raises(RuntimeError, match="before the JobQueue starts"):
                await persistence.store_jobs(app)
        finally:
            await app.stop()


# ============================================================================ conversation timeouts
async def test_conversation_timeouts_are_kept_in_memory_only(boot: Boot, db: Any) -> None:
    async def enter(update: Any, context: Context) -> int:
        return 1

    def add_handler(app: App) -> None:
        app.add_handler(
            ConversationHandler(
                entry_points=[CommandHandler("start", enter)],
                states={1: []},
                fallbacks=[],
                conversation_timeout=600,
                name="talk",
                persistent=True,
            )
        )

    persistence_app: App
    async with boot(setup=add_handler) as persistence_app:
        await persistence_app.process_update(message_update(persistence_app, "/start"))
        await until(lambda: len(jq(persistence_app).jobs()) == 1)
        await settle(persistence_app)
        assert await db.jobs.count_documents({}) == 0


# ============================================================================ outage
@pytest.fixture(scope="module")
def outage_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    srv = disk_server(tmp_path_factory.mktemp("jobs-outage"), "--sync-on-commit")
    try:
        yield srv
    finally:
        srv.kill()


async def test_jobs_added_and_removed_during_an_outage_are_saved(
    outage_server: LocalServer, boot: Boot, db_name: str, tmp_path: Path
) -> None:
    ensure_running(outage_server)
    options: dict[str, Any] = {
        "target": outage_server.uri,
        "write_concern": WriteConcern(w="majority", j=True),
        "client_kwargs": {"serverSelectionTimeoutMS": FAST_SELECTION_MS},
        "recovery_dir": tmp_path,
    }
    raw_client: AsyncMongoClient[Any] = AsyncMongoClient(
        outage_server.uri, serverSelectionTimeoutMS=5000
    )
    raw = raw_client[db_name]
    try:
        async with boot(**options) as app:
            queue = jq(app)
            queue.run_once(record, 3600, name="kept")
            gone = queue.run_once(record, 3600, name="removed-during-outage")
            ticker = queue.run_repeating(record, 0.1, name="ticker")
            await settle(app)
            store = app.persistence.store  # type: ignore[union-attr]

            outage_server.kill()
            queue.run_daily(record, dtm.time(12, 0), name="added-during-outage", data=[SECRET])
            gone.schedule_removal()
            ticks = len(runs_of("ticker"))
            # the loop is not blocked: the ticker keeps running while the writes fail
            await until(lambda: len(runs_of("ticker")) >= ticks + 5 and store.pending_count >= 2)
            ticker.schedule_removal()
            outage_server.start()
            await settle(app)  # re-sent until MongoDB is back
            names = {doc["name"] async for doc in raw.jobs.find()}
            assert names == {"kept", "added-during-outage"}
        assert list(tmp_path.iterdir()) == []  # no recovery file: nothing was left unsaved
        async with boot(**options) as app:
            assert sorted(job.name for job in jq(app).jobs()) == ["added-during-outage", "kept"]
            assert jq(app).get_jobs_by_name("added-during-outage")[0].data == [SECRET]
    finally:
        ensure_running(outage_server)
        await raw_client.drop_database(db_name)
        await raw_client.close()


# ============================================================================ CLI
async def test_cli_inspect_jobs(boot: Boot, mongodb_uri: str, db_name: str) -> None:
    async with boot() as app:
        jq(app).run_daily(record, dtm.time(9, 30), days=(1,), name="daily", chat_id=5)
        jq(app).run_once(record, 3600, name="once", data={"k": (1, 2)})
    runner = CliRunner()
    result = await asyncio.to_thread(
        runner.invoke, cli_main, ["inspect", "jobs", "--uri", mongodb_uri, "-d", db_name]
    )
    assert result.exit_code == 0, result.output
    assert "2 jobs" in result.output
    assert "tests.test_jobs:record" in result.output
    assert "cron day_of_week=mon hour=9 minute=30 second=0 (UTC)" in result.output
    assert "{'k': (1, 2)}" in result.output
    result = await asyncio.to_thread(
        runner.invoke, cli_main, ["inspect", "jobs", "once", "--uri", mongodb_uri, "-d", db_name]
    )
    assert result.exit_code == 0 and "1 job" in result.output and "'daily'" not in result.output
    result = await asyncio.to_thread(
        runner.invoke, cli_main, ["inspect", "jobs", "nope", "--uri", mongodb_uri, "-d", db_name]
    )
    assert result.exit_code == 1 and "No job named 'nope'" in result.output


async def test_cli_migrate_says_a_pickle_file_holds_no_jobs(mongodb_uri: str, db_name: str) -> None:
    source = Path(__file__).parent / "data" / "cli" / "ptb21_single.pickle"
    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli_main,
        ["migrate", "--from-pickle", str(source), "--dry-run", "--uri", mongodb_uri, "-d", db_name],
    )
    assert result.exit_code == 0, result.output
    assert "jobs: none. PTB's PicklePersistence and DictPersistence never store JobQueue jobs" in (
        result.output
    )
