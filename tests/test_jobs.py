"""JobQueue jobs kept in MongoDB (``MongoPersistence.store_jobs``), over the wire.

A restart is a new persistence and a new Application on the same database. Jobs that must fire
use short real timings; everything else waits on a condition with a deadline, never on a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import importlib.util
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.date import DateTrigger
from click.testing import CliRunner
from pymongo import AsyncMongoClient, MongoClient
from pymongo.write_concern import WriteConcern
from telegram import Chat, User
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackContext,
    CommandHandler,
    ConversationHandler,
)

from mongo_persistence import EncodingError, MongoPersistence, UnstorableJobError
from tests.helpers.command import ENTRY_POINT as cli_main
from tests.helpers.local_server import LocalServer
from tests.helpers.servers import FAST_SELECTION_MS, disk_server, ensure_running
from tests.ptb_offline import OfflineRequest, build_application, message_update

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


async def poison_data(context: Context) -> None:
    job = context.job
    assert job is not None
    job.data["runs"] += 1
    job.data["lock"] = asyncio.Lock()  # the codec cannot store it
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


def _persistence(app: App) -> MongoPersistence[Any, Any, Any]:
    assert isinstance(app.persistence, MongoPersistence)
    return app.persistence


async def settle(app: App) -> None:
    """Waits until every job document write of the application is acknowledged (health())."""
    persistence = _persistence(app)
    # One turn of the event loop: the job store's write tasks (created by the scheduler's calls)
    # hand their writes over; from then on health() counts them until they are acknowledged.
    await asyncio.sleep(0)
    await until(lambda: persistence.health().unsaved == 0)


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
        settle_at_exit: bool = True,
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
            if store_jobs and settle_at_exit:
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
        user = User(42, "Ann", False)
        user.set_bot(app.bot)  # bound to the running bot; the chat is not bound to any
        data = {"message": message, "user": user, "chat": Chat(-7, "group")}
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


async def test_late_runs_allowed_for_every_job_through_the_scheduler_defaults(
    boot: Boot, db: Any
) -> None:
    def run_late_jobs(app: App) -> None:  # as the README shows it
        queue = jq(app)
        queue.scheduler.configure(
            job_defaults={"misfire_grace_time": None}, **queue.scheduler_configuration
        )

    async with boot(setup=run_late_jobs) as app:
        jq(app).run_once(record, 3600, name="late")
        await settle(app)
    assert (await stored(db))["late"]["misfire_grace_time"] is None
    await past_due(db, "late", dtm.timedelta(hours=2))
    async with boot(setup=run_late_jobs):
        await until(lambda: len(runs_of("late")) == 1)


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


async def test_jobs_added_before_store_jobs_are_stored_and_win_over_their_stored_copy(
    boot: Boot, db: Any
) -> None:
    def in_main(callback: Any) -> Callable[[App], None]:
        def add(app: App) -> None:  # before initialize(), as in a bot's main()
            jq(app).run_repeating(
                callback, 600, name="early", job_kwargs={"id": "early", "replace_existing": True}
            )

        return add

    async with boot(setup=in_main(record)):
        pass
    assert [(d["_id"], d["callback"]) async for d in db.jobs.find()] == [
        ("early", "tests.test_jobs:record")
    ]
    async with boot(setup=in_main(Holder.static_callback)) as app:  # the code changed
        assert [job.callback for job in jq(app).jobs()] == [Holder.static_callback]
    assert [(d["_id"], d["callback"]) async for d in db.jobs.find()] == [
        ("early", "tests.test_jobs:Holder.static_callback")
    ]


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


async def test_broken_job_documents_are_reported_kept_and_not_run(
    boot: Boot, db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with boot() as app:
        jq(app).run_once(record, 3600, name="fine")
        await settle(app)
    template = dict((await stored(db))["fine"])
    del template["_id"]
    broken = {
        "int-id": {"_id": 12345},
        "bad-trigger": {"trigger": {"type": "sometimes"}},
        "bad-zone": {"trigger": {**template["trigger"], "timezone": "Mars/Olympus"}},
        "bad-executor": {"executor": "nowhere"},
        "bad-chat": {"chat_id": "not-a-number"},
        "bad-grace": {"misfire_grace_time": -5},
        "bad-data": {"data": {"__type__": "no-such-tag", "value": SECRET}},
    }
    for name, changes in broken.items():
        doc = {"_id": f"id-{name}", **template, "name": name, **changes}
        await db.jobs.insert_one(doc)
    before = sorted([str(doc["_id"]) async for doc in db.jobs.find()])
    with caplog.at_level(logging.WARNING, logger="mongo_persistence"):
        async with boot() as app:
            assert [job.name for job in jq(app).jobs()] == ["fine"]
    reports = [r.getMessage() for r in caplog.records if "is not scheduled" in r.getMessage()]
    assert len(reports) == len(broken), reports
    assert SECRET not in caplog.text
    assert sorted([str(doc["_id"]) async for doc in db.jobs.find()]) == before


async def test_data_turned_unstorable_by_the_callback_keeps_the_job_running(
    boot: Boot, db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="mongo_persistence"):
        async with boot() as app:
            jq(app).run_repeating(poison_data, 0.1, name="poisoned", data={"runs": 0, "s": SECRET})
            await until(lambda: len(runs_of("poisoned")) >= 3)
            await settle(app)
            assert (await stored(db))["poisoned"]["data"] == {"runs": 0, "s": SECRET}
    assert "'poisoned'" in caplog.text and "its stored document is left as it was" in caplog.text
    assert SECRET not in caplog.text


async def test_replacing_a_job_by_an_unstorable_one_fails_and_keeps_the_old_one(
    boot: Boot, db: Any
) -> None:
    async with boot() as app:
        same_id = {"id": "slot", "replace_existing": True}
        jq(app).run_once(record, 3600, name="slot", job_kwargs=same_id)
        with pytest.raises(UnstorableJobError, match="'slot'"):
            jq(app).run_once(lambda context: None, 60, name="slot", job_kwargs=same_id)
        assert [job.callback for job in jq(app).jobs()] == [record]
        jq(app).run_repeating(Holder.static_callback, 60, name="slot", job_kwargs=same_id)
        await settle(app)
        assert (await stored(db))["slot"]["callback"] == "tests.test_jobs:Holder.static_callback"
        assert await db.jobs.count_documents({}) == 1


async def test_callbacks_are_only_looked_up_among_imported_modules(boot: Boot, db: Any) -> None:
    async with boot() as app:
        jq(app).run_once(record, 3600, name="model")
    model = await db.jobs.find_one({"name": "model"})
    refs = {
        "static": "tests.test_jobs:Holder.static_callback",
        "not imported": "not_imported_module_xyz:callback",
        "missing": "tests.test_jobs:missing",
        "not async": "os:system",  # imported, but not an async function
        "not a function": "tests.test_jobs:__dict__",
        "no colon": "no-colon",
    }
    await db.jobs.insert_many(
        [
            {**model, "_id": f"id {name}", "name": name, "callback": ref}
            for name, ref in refs.items()
        ]
    )
    async with boot() as app:
        scheduled = {job.name: job.callback for job in jq(app).jobs()}
    assert scheduled == {"model": record, "static": Holder.static_callback}
    assert "not_imported_module_xyz" not in sys.modules
    assert await db.jobs.count_documents({}) == len(refs) + 1  # the others stay stored


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


async def test_namespaces_keep_the_jobs_of_two_bots_apart(boot: Boot, db: Any) -> None:
    async with boot(namespace="bot_a") as app:
        jq(app).run_once(record, 3600, name="a")
    async with boot(namespace="bot_b") as app:
        assert jq(app).jobs() == ()
        jq(app).run_once(record, 3600, name="b")
    assert [doc["name"] async for doc in db["bot_a.jobs"].find()] == ["a"]
    assert [doc["name"] async for doc in db["bot_b.jobs"].find()] == ["b"]
    assert "jobs" not in await db.list_collection_names()


async def test_the_same_application_set_up_again_reloads_its_jobs(
    make_persistence: Callable[..., MongoPersistence[Any, Any, Any]],
    client: AsyncMongoClient[Any],
    db: Any,
) -> None:
    persistence = make_persistence(target=client)  # a client handed in stays open at flush()
    app, _ = build_application(persistence)
    for life in range(2):
        await app.initialize()
        await persistence.store_jobs(app)
        await app.start()
        if life == 0:
            jq(app).run_repeating(record, 600, name="again")
        assert [job.name for job in jq(app).jobs()] == ["again"]
        await app.stop()
        await app.shutdown()
    assert await db.jobs.count_documents({}) == 1


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
            persistence = _persistence(app)

            outage_server.kill()
            queue.run_daily(record, dtm.time(12, 0), name="added-during-outage", data=[SECRET])
            gone.schedule_removal()
            ticks = len(runs_of("ticker"))
            # the loop is not blocked: the ticker keeps running while the writes fail
            await until(
                lambda: len(runs_of("ticker")) >= ticks + 5 and persistence.health().pending >= 2
            )
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


async def test_jobs_unsaved_at_a_shutdown_during_an_outage_go_to_the_recovery_file(
    outage_server: LocalServer, boot: Boot, db_name: str, tmp_path: Path
) -> None:
    ensure_running(outage_server)
    options: dict[str, Any] = {
        "target": outage_server.uri,
        "write_concern": WriteConcern(w="majority", j=True),
        "client_kwargs": {"serverSelectionTimeoutMS": FAST_SELECTION_MS},
        "recovery_dir": tmp_path,
        "flush_timeout": 1,
    }
    raw_client: AsyncMongoClient[Any] = AsyncMongoClient(
        outage_server.uri, serverSelectionTimeoutMS=5000
    )
    try:
        async with boot(settle_at_exit=False, **options) as app:
            jq(app).run_once(record, 3600, name="old")
            await settle(app)
            outage_server.kill()
            jq(app).run_once(record, 3600, name="new", data={"n": 1})
            jq(app).get_jobs_by_name("old")[0].schedule_removal()
        files = list(tmp_path.iterdir())
        assert len(files) == 1
        outage_server.start()
        result = await asyncio.to_thread(
            CliRunner().invoke,
            cli_main,
            ["recover", str(files[0]), "--uri", outage_server.uri, "-d", db_name],
        )
        # the two jobs, and bot_data (written by every persistence run)
        assert "Restored 3, skipped 0" in result.output, result.output
        async with boot(**options) as app:
            assert [(job.name, job.data) for job in jq(app).jobs()] == [("new", {"n": 1})]
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


# ============================================================================ PTB's timerbot
TIMERBOT = Path(__file__).parent / "ptb_examples" / "timerbot.py"
TimerStep = Callable[[App, OfflineRequest], Awaitable[None]]


class TimerApplication(Application[Any, Any, Any, Any, Any, Any]):
    """An Application whose ``run_polling`` plays async steps instead of polling Telegram."""

    def __init__(self, *, script: list[TimerStep], request: OfflineRequest, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.script = script
        self.request = request

    def run_polling(self, *_: Any, **__: Any) -> None:  # type: ignore[override]
        asyncio.run(self._play())

    async def _play(self) -> None:
        # What run_polling does around polling: initialize, post_init, start ... stop, shutdown.
        async with self:
            if self.post_init is not None:
                await self.post_init(self)
            await self.start()
            try:
                for step in self.script:
                    await step(self, self.request)
            finally:
                await self.stop()


def run_timerbot(mongodb_uri: str, db_name: str, script: list[TimerStep]) -> OfflineRequest:
    """Runs the unchanged ``main()`` of PTB's timerbot once (one process life of the bot)."""
    spec = importlib.util.spec_from_file_location("timerbot", TIMERBOT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # The callbacks live in this module, as they live in __main__ when the bot runs as a script.
    sys.modules["timerbot"] = module
    try:
        spec.loader.exec_module(module)
        request = OfflineRequest()
        persistence = MongoPersistence(mongodb_uri, database=db_name, update_interval=3600)

        class OfflineApplication:
            @staticmethod
            def builder() -> ApplicationBuilder[Any, Any, Any, Any, Any, Any]:
                return (
                    ApplicationBuilder()
                    .application_class(TimerApplication, {"script": script, "request": request})
                    .request(request)
                    .get_updates_request(OfflineRequest())
                    # The one line the bot's author adds to the builder:
                    .persistence(persistence)
                    .post_init(persistence.store_jobs)
                )

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(module, "Application", OfflineApplication)
            module.main()
        return request
    finally:
        sys.modules.pop("timerbot", None)


def say(text: str) -> TimerStep:
    async def step(app: App, _: OfflineRequest) -> None:
        await app.process_update(message_update(app, text))

    return step


async def wait_for_beep(_: App, request: OfflineRequest) -> None:
    await until(lambda: any("Beep!" in call["text"] for call in request.sent()))


async def wait_until_no_jobs_stored(app: App, _: OfflineRequest) -> None:
    persistence = _persistence(app)
    namespace = persistence.namespace
    collection = persistence.database[f"{namespace}.jobs" if namespace else "jobs"]
    deadline = time.monotonic() + DEADLINE
    while await collection.count_documents({}):
        assert time.monotonic() < deadline, "the missed timer is still stored"
        await asyncio.sleep(0.02)


def texts(request: OfflineRequest) -> list[str]:
    return [str(call["text"]) for call in request.sent()]


@pytest.fixture
def sync_db(mongodb_uri: str, db_name: str) -> Iterator[Any]:
    with MongoClient(mongodb_uri, serverSelectionTimeoutMS=5000) as client:
        yield client[db_name]
        client.drop_database(db_name)


def test_timerbot_fires_a_timer_set_before_a_restart_once(
    mongodb_uri: str, db_name: str, sync_db: Any
) -> None:
    first = run_timerbot(mongodb_uri, db_name, [say("/set 2")])
    assert texts(first) == ["Timer successfully set!"]
    doc = sync_db.jobs.find_one()
    assert (doc["name"], doc["callback"], doc["chat_id"], doc["data"]) == (
        "42",
        "timerbot:alarm",
        42,
        2.0,
    )
    # restarted before the timer is due: it fires on time, once
    second = run_timerbot(mongodb_uri, db_name, [wait_for_beep])
    assert texts(second) == ["Beep! 2.0 seconds are over!"]
    assert [call["chat_id"] for call in second.sent()] == [42]
    assert sync_db.jobs.count_documents({}) == 0
    third = run_timerbot(mongodb_uri, db_name, [say("/unset")])
    assert texts(third) == ["You have no active timer."]


def test_timerbot_replaces_and_unsets_timers_across_restarts(
    mongodb_uri: str, db_name: str, sync_db: Any
) -> None:
    run_timerbot(mongodb_uri, db_name, [say("/set 600")])
    second = run_timerbot(mongodb_uri, db_name, [say("/set 900")])
    assert texts(second) == ["Timer successfully set! Old one was removed."]
    assert [doc["data"] for doc in sync_db.jobs.find()] == [900.0]
    third = run_timerbot(mongodb_uri, db_name, [say("/unset")])
    assert texts(third) == ["Timer successfully cancelled!"]
    assert sync_db.jobs.count_documents({}) == 0


def test_timerbot_drops_a_timer_missed_while_down_by_more_than_the_grace_time(
    mongodb_uri: str, db_name: str, sync_db: Any
) -> None:
    """APScheduler's default misfire_grace_time (1 s): a timer due an hour ago does not fire."""
    run_timerbot(mongodb_uri, db_name, [say("/set 600")])
    doc = sync_db.jobs.find_one()
    overdue = dtm.datetime.now(dtm.timezone.utc) - dtm.timedelta(hours=1)  # down for 70 minutes
    sync_db.jobs.update_one(
        {"_id": doc["_id"]}, {"$set": {"next_run_time": overdue, "trigger.run_date": overdue}}
    )
    second = run_timerbot(mongodb_uri, db_name, [wait_until_no_jobs_stored, say("/unset")])
    assert texts(second) == ["You have no active timer."]


async def test_a_job_document_bson_cannot_hold_is_refused_naming_the_field(
    boot: Boot, db: Any
) -> None:
    """A job goes through the encoded-entity step: text UTF-8 cannot hold is refused, with its
    path (the job store had a size and BSON check of its own, without the path)."""
    async with boot() as app:
        with pytest.raises(EncodingError) as info:
            jq(app).run_once(record, 600, name="bad \ud800")
        assert info.value.path == "['name']"
        assert await db.jobs.count_documents({}) == 0
