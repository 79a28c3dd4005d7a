"""PTB's JobQueue jobs kept in MongoDB: an APScheduler 3 job store mirrored to ``jobs``.

The in-memory schedule stays authoritative (:class:`MongoJobStore` is a
:class:`~apscheduler.jobstores.memory.MemoryJobStore`): APScheduler calls job store methods
synchronously on the event loop, so every add, update and removal is sent to MongoDB as an
asynchronous, acknowledged and retried write through :class:`MongoStore`.
Nothing here blocks the event loop. At start-up the stored jobs are read asynchronously and
scheduled again (:meth:`mongo_persistence.MongoPersistence.store_jobs`).

A document is readable: the job's name, its callback as ``module:qualname``, the trigger in plain
fields, the next run time as a BSON date, chat and user ids and ``data`` through the codec. No
pickle. Callbacks are looked up among the modules the program has already imported; a job whose
callback is missing stays in MongoDB, is reported once and is not run.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import inspect
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.job import Job as APSJob
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from bson.errors import InvalidDocument
from telegram.ext import ConversationHandler, Job, JobQueue

from mongo_persistence._codec.codec import resolve_name
from mongo_persistence._errors import (
    DecodingError,
    DocumentTooLargeError,
    EncodingError,
    MongoPersistenceError,
    PersistenceWriteError,
    UnstorableJobError,
)
from mongo_persistence._storage.tracker import Entry, digest_fields
from mongo_persistence._util.logs import get_logger

if TYPE_CHECKING:
    from mongo_persistence._persistence.persistence import MongoPersistence

__all__ = [
    "JOBS",
    "MongoJobStore",
    "UnstorableJobError",
    "callback_ref",
    "decode_trigger",
    "encode_trigger",
    "resolve_callback",
]

_LOGGER = get_logger(__name__)

JOBS: Final = "jobs"
"""The kind (collection name without namespace) of the job documents."""

FORMAT_VERSION: Final = 1
"""The ``v`` field of a job document."""

_UTC: Final = dtm.timezone.utc
_CRON_FIELDS: Final = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
_OFFSET = re.compile(r"^([+-])(\d\d):(\d\d)(?::(\d\d))?$")
_RETRY_FIRST: Final = 0.5
_RETRY_MAX: Final = 30.0


# ====================================================================== callbacks
def resolve_callback(ref: str) -> Callable[..., Any]:
    """Finds the async function ``module:qualname`` among the modules already imported.

    The codec's rule (:func:`resolve_name`): nothing is ever imported and
    no code runs, so a crafted document cannot make the bot load code.

    Args:
        ref (:obj:`str`): ``module:qualname``.

    Returns:
        The callable.

    Raises:
        :class:`LookupError`: The module is not imported, or has no such async function.
    """
    obj = resolve_name(ref)
    if isinstance(obj, staticmethod):  # read from the class __dict__, not through the descriptor
        obj = obj.__func__
    if not inspect.iscoroutinefunction(obj):
        # PTB awaits job callbacks: only an ``async def`` can be one (this also keeps a crafted
        # document from naming a plain function such as os.system).
        raise LookupError(f"{ref!r} is not an async function")
    return obj


def callback_ref(callback: object, name: str | None = None) -> str:
    """The ``module:qualname`` reference of a job callback, checked to find that same callback.

    Args:
        callback: The callback.
        name (:obj:`str`, optional): The job's name, for the error message.

    Raises:
        :class:`UnstorableJobError`: The callback cannot be found again by its name (a lambda,
            a nested function, a bound method, a ``functools.partial``...).
    """
    qualname = getattr(callback, "__qualname__", None)
    module = getattr(callback, "__module__", None)
    shown = qualname or type(callback).__qualname__
    if not isinstance(qualname, str) or not isinstance(module, str):
        raise UnstorableJobError(
            name,
            f"its callback {shown!r} has no module-level name (a callable object or a "
            "functools.partial?); use a function defined at the top level of a module",
        )
    if "<lambda>" in qualname:
        raise UnstorableJobError(
            name, f"its callback {qualname!r} is a lambda; use a function defined at module level"
        )
    if "<locals>" in qualname:
        raise UnstorableJobError(
            name,
            f"its callback {qualname!r} is a nested function; define it at module level and "
            "pass what it needs in the job's data",
        )
    ref = f"{module}:{qualname}"
    try:
        found = resolve_callback(ref)
    except LookupError as exc:
        raise UnstorableJobError(
            name, f"its callback cannot be found again as {ref!r}: {exc}"
        ) from None
    if found is not callback:
        kind = "a bound method" if hasattr(callback, "__self__") else "not the object of that name"
        raise UnstorableJobError(
            name,
            f"its callback is {kind}: {ref!r} names another object; use a plain module-level "
            "function (or a staticmethod)",
        )
    return ref


# ====================================================================== timezones and dates
def _encode_tz(tz: dtm.tzinfo | None, name: str | None) -> str | None:
    if tz is None:
        return None
    key = getattr(tz, "key", None)  # zoneinfo.ZoneInfo
    if isinstance(key, str):
        return key
    zone = getattr(tz, "zone", None)  # pytz
    if isinstance(zone, str):
        return zone
    if isinstance(tz, dtm.timezone):
        offset = tz.utcoffset(None)
        if not offset:
            return "UTC"
        sign = "-" if offset < dtm.timedelta(0) else "+"
        seconds = int(abs(offset).total_seconds())
        text = f"{sign}{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"
        return text + (f":{seconds % 60:02d}" if seconds % 60 else "")
    raise UnstorableJobError(name, f"its time zone {tz!r} has no name (use zoneinfo.ZoneInfo)")


def _decode_tz(value: Any) -> dtm.tzinfo | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"the time zone {value!r} is not a string")
    if value == "UTC":
        return _UTC
    match = _OFFSET.match(value)
    if match:
        sign, hours, minutes, seconds = match.groups()
        delta = dtm.timedelta(hours=int(hours), minutes=int(minutes), seconds=int(seconds or 0))
        return dtm.timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc


def _encode_date(value: dtm.datetime | None) -> dtm.datetime | None:
    """A BSON date: UTC, milliseconds (what BSON keeps)."""
    if value is None:
        return None
    value = value.astimezone(_UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _decode_date(value: Any, tz: dtm.tzinfo | None) -> dtm.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dtm.datetime):
        raise ValueError(f"{value!r} is not a date")
    aware: dtm.datetime = value if value.tzinfo is not None else value.replace(tzinfo=_UTC)
    return aware.astimezone(tz or _UTC)


# ====================================================================== triggers
def encode_trigger(trigger: BaseTrigger, name: str | None = None) -> dict[str, Any]:
    """The plain fields of an APScheduler trigger (date, interval, cron, and/or of those).

    Args:
        trigger: The trigger.
        name (:obj:`str`, optional): The job's name, for the error message.

    Raises:
        :class:`UnstorableJobError`: Another kind of trigger.
    """
    if isinstance(trigger, DateTrigger):
        run_date = trigger.run_date
        return {
            "type": "date",
            "run_date": _encode_date(run_date),
            "timezone": _encode_tz(run_date.tzinfo, name),
        }
    if isinstance(trigger, IntervalTrigger):
        return {
            "type": "interval",
            "seconds": float(trigger.interval_length),
            "start_date": _encode_date(trigger.start_date),
            "end_date": _encode_date(trigger.end_date),
            "timezone": _encode_tz(trigger.timezone, name),
            "jitter": trigger.jitter,
        }
    if isinstance(trigger, CronTrigger):
        # The fields the trigger was given; None for the ones CronTrigger fills in itself.
        fields = {field.name: None if field.is_default else str(field) for field in trigger.fields}
        return {
            "type": "cron",
            **{key: fields[key] for key in _CRON_FIELDS},
            "start_date": _encode_date(trigger.start_date),
            "end_date": _encode_date(trigger.end_date),
            "timezone": _encode_tz(trigger.timezone, name),
            "jitter": trigger.jitter,
        }
    if isinstance(trigger, AndTrigger | OrTrigger):
        return {
            "type": "and" if isinstance(trigger, AndTrigger) else "or",
            "triggers": [encode_trigger(sub, name) for sub in trigger.triggers],
            "jitter": trigger.jitter,
        }
    raise UnstorableJobError(
        name,
        f"its trigger {type(trigger).__qualname__} is not one of date, interval, cron, and/or",
    )


def decode_trigger(doc: Any) -> BaseTrigger:
    """Rebuilds a trigger from the fields written by :func:`encode_trigger`.

    Raises:
        :class:`ValueError`: The fields do not describe a trigger.
    """
    if not isinstance(doc, dict):
        raise ValueError("the trigger is not a document")
    kind = doc.get("type")
    if kind in ("and", "or"):
        triggers = [decode_trigger(sub) for sub in doc.get("triggers", [])]
        cls = AndTrigger if kind == "and" else OrTrigger
        return cls(triggers, jitter=doc.get("jitter"))
    tz = _decode_tz(doc.get("timezone"))
    if kind == "date":
        return DateTrigger(run_date=_decode_date(doc["run_date"], tz), timezone=tz or _UTC)
    if kind == "interval":
        return IntervalTrigger(
            seconds=float(doc["seconds"]),
            start_date=_decode_date(doc.get("start_date"), tz),
            end_date=_decode_date(doc.get("end_date"), tz),
            timezone=tz or _UTC,
            jitter=doc.get("jitter"),
        )
    if kind == "cron":
        fields = {key: doc[key] for key in _CRON_FIELDS if doc.get(key) is not None}
        if not all(isinstance(value, str) for value in fields.values()):
            raise ValueError("the cron fields must be strings")
        return CronTrigger(
            **fields,
            start_date=_decode_date(doc.get("start_date"), tz),
            end_date=_decode_date(doc.get("end_date"), tz),
            timezone=tz or _UTC,
            jitter=doc.get("jitter"),
        )
    raise ValueError(f"unknown trigger type {kind!r}")


# ====================================================================== the job store
def _ptb_job(job: APSJob) -> Job[Any] | None:
    """The :class:`telegram.ext.Job` of an APScheduler job made by a JobQueue, else None."""
    args = job.args
    if len(args) != 2 or not isinstance(args[0], JobQueue) or not isinstance(args[1], Job):
        return None
    if job.func is not type(args[0]).job_callback:
        return None
    return args[1]


def _is_conversation_timeout(callback: object) -> bool:
    return isinstance(getattr(callback, "__self__", None), ConversationHandler)


class MongoJobStore(MemoryJobStore):  # type: ignore[misc]
    """The JobQueue's default job store: jobs in memory, every change mirrored to MongoDB.

    Made by :meth:`mongo_persistence.MongoPersistence.store_jobs`; not meant to be created by hand.

    Jobs made with ``job_queue.run_*`` are stored. ConversationHandler timeouts and jobs added to
    the scheduler directly (not through the JobQueue) are kept in memory only.

    Args:
        persistence (:class:`mongo_persistence.MongoPersistence`): Its store, codec and bot are
            used.
        job_queue (:class:`telegram.ext.JobQueue`): The application's job queue.
    """

    def __init__(self, persistence: MongoPersistence[Any, Any, Any], job_queue: JobQueue[Any]):
        super().__init__()
        self._persistence = persistence
        self._job_queue = job_queue
        self._store = persistence.store
        self._loop = asyncio.get_running_loop()
        self._transient: set[str] = set()
        self._warned: set[str] = set()
        # The newest entry handed to the writer per job id; retries only re-send that one.
        self._latest: dict[str, Entry] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sleeping: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._listening: Any = None

    # ------------------------------------------------------------------ encoding
    def encode(self, job: APSJob) -> dict[str, Any] | None:
        """The fields of a job's document, or :obj:`None` for a job kept in memory only.

        Raises:
            :class:`UnstorableJobError`: The callback, the trigger or the options cannot be stored.
            :class:`mongo_persistence.EncodingError`: The job's data cannot be stored.
        """
        ptb_job = _ptb_job(job)
        if ptb_job is None or _is_conversation_timeout(ptb_job.callback):
            return None
        name = ptb_job.name
        if job.kwargs:
            raise UnstorableJobError(name, "keyword arguments for the callback cannot be stored")
        codec, bot = self._persistence.codec, self._persistence.bot
        entity = f"jobs[{name!r}]"
        return {
            "name": name,
            "callback": callback_ref(ptb_job.callback, name),
            "trigger": encode_trigger(job.trigger, name),
            "next_run_time": _encode_date(job.next_run_time),
            "chat_id": ptb_job.chat_id,
            "user_id": ptb_job.user_id,
            "data": codec.encode(ptb_job.data, bot=bot, entity=f"{entity}.data"),
            "misfire_grace_time": job.misfire_grace_time,
            "coalesce": job.coalesce,
            "max_instances": job.max_instances,
            "executor": job.executor,
            "v": FORMAT_VERSION,
        }

    def _entry(self, job: APSJob, fields: dict[str, Any]) -> Entry:
        entity = f"jobs[{fields['name']!r}]"
        try:
            digests, size = digest_fields(fields)
        except (InvalidDocument, UnicodeEncodeError, OverflowError) as exc:
            raise EncodingError(
                entity, "", type(job).__qualname__, f"BSON cannot hold it ({type(exc).__name__})"
            ) from None
        if size > self._store.max_bson_size:
            raise DocumentTooLargeError(entity, size, self._store.max_bson_size)
        return Entry(JOBS, job.id, entity, fields, digests, diffable=False, field_name="")

    # ------------------------------------------------------------------ BaseJobStore
    def start(self, scheduler: Any, alias: str) -> None:
        """Called by APScheduler when the scheduler starts."""
        super().start(scheduler, alias)
        if self._listening is None:
            self._listening = self._after_run
            scheduler.add_listener(self._after_run, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)

    def shutdown(self) -> None:
        """Called by APScheduler at shutdown: the jobs stay in MongoDB (and in memory)."""
        if self._listening is not None and self._scheduler is not None:
            self._scheduler.remove_listener(self._listening)
            self._listening = None

    def _prepare(self, job: APSJob) -> Entry | None:
        """The entry writing a new job, or :obj:`None` for one kept in memory only (raises)."""
        fields = self.encode(job)
        return None if fields is None else self._entry(job, fields)

    def _stored(self, job: APSJob, entry: Entry | None) -> None:
        if entry is None:
            self._transient.add(job.id)
            self._memory_only(job)
        else:
            self._transient.discard(job.id)
            self._submit(entry)

    def add_job(self, job: APSJob) -> None:
        """Adds a job and writes it to MongoDB (in the background).

        Raises:
            :class:`UnstorableJobError`: The job cannot be stored; it is not scheduled.
            :class:`mongo_persistence.EncodingError`: Its data cannot be stored; it is not
                scheduled.
        """
        if job.id in self._jobs_index:
            super().add_job(job)  # raises ConflictingIdError
        entry = self._prepare(job)  # raises before anything is scheduled
        super().add_job(job)
        self._stored(job, entry)

    def update_job(self, job: APSJob) -> None:
        """Replaces a job (e.g. its next run time after a run) and writes it to MongoDB.

        Raises:
            :class:`UnstorableJobError`: A new job replacing a stored one (``replace_existing``)
                cannot be stored; the stored one stays scheduled.
        """
        current = self.lookup_job(job.id)
        if current is not None and current is not job:  # replace_existing: a new job
            entry = self._prepare(job)
            super().update_job(job)
            self._stored(job, entry)
            return
        super().update_job(job)
        if job.id not in self._transient:
            self._mirror(job)

    def remove_job(self, job_id: str) -> None:
        """Removes a job and deletes its document."""
        job = self.lookup_job(job_id)
        super().remove_job(job_id)
        if job_id in self._transient:
            self._transient.discard(job_id)
            return
        self._submit(Entry(JOBS, job_id, f"jobs[{job.name!r}]", None, None))

    def remove_all_jobs(self) -> None:
        """Removes every scheduled job and deletes their documents.

        Documents of jobs that were not scheduled (their callback was not found) are kept.
        """
        for job in self.get_all_jobs():
            self.remove_job(job.id)

    # ------------------------------------------------------------------ writes
    def _mirror(self, job: APSJob) -> None:
        """Writes the job again; never raises (it runs inside the scheduler's loop)."""
        try:
            fields = self.encode(job)
            if fields is not None:
                self._submit(self._entry(job, fields))
        except Exception as exc:  # noqa: BLE001 - must never break the scheduler's loop
            # Its data changed into something unstorable: the stored document stays as it was.
            _LOGGER.error(  # no traceback: it would show the data
                "Job %r (id %r) cannot be written to MongoDB, its stored document is left as it "
                "was: %s",
                job.name,
                job.id,
                type(exc).__name__,
            )

    def _after_run(self, event: JobExecutionEvent) -> None:
        # The callback may have changed job.data: write it (unchanged documents are not sent).
        job = self.lookup_job(event.job_id)
        if job is not None and job.id not in self._transient:
            self._mirror(job)

    def _memory_only(self, job: APSJob) -> None:
        ptb_job = _ptb_job(job)
        if ptb_job is not None:  # a ConversationHandler timeout
            _LOGGER.debug("Conversation timeout job %r is kept in memory only", job.id)
        elif job.id not in self._warned:
            self._warned.add(job.id)
            _LOGGER.warning(
                "APScheduler job %r was not made by JobQueue.run_*: it is kept in memory only, "
                "not in MongoDB",
                job.name,
            )

    def _submit(self, entry: Entry) -> None:
        self._latest[entry.doc_id] = entry
        task = self._loop.create_task(self._write(entry), name=f"mongo_persistence:{entry.entity}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _current(self, entry: Entry) -> bool:
        return (
            not self._stopping and not entry.abandoned and self._latest.get(entry.doc_id) is entry
        )

    async def _write(self, entry: Entry) -> None:
        """Writes an entry; while MongoDB fails, sends it again (unless a newer one came)."""
        delay = _RETRY_FIRST
        try:
            while True:
                try:
                    await self._store.write(entry)
                    if not self._store.is_kept(entry):
                        return
                    # kept (journaled) for the next writes: this loop sends it again soon
                except PersistenceWriteError as exc:
                    if not exc.kept:
                        _LOGGER.error("%s was not written to MongoDB: %s", entry.entity, exc.reason)
                        return
                except Exception as exc:  # noqa: BLE001 - a background task: report, never raise
                    _LOGGER.error(
                        "%s was not written to MongoDB: %s", entry.entity, type(exc).__name__
                    )
                    return
                # The store keeps it and sends it with the next write or at flush(); sending it
                # again soon saves it as soon as MongoDB is back.
                if not self._current(entry):
                    return
                task = asyncio.current_task()
                assert task is not None
                self._sleeping.add(task)
                try:
                    await asyncio.sleep(delay)
                finally:
                    self._sleeping.discard(task)
                delay = min(delay * 2, _RETRY_MAX)
                if not self._current(entry):
                    return
        finally:
            if self._latest.get(entry.doc_id) is entry:
                del self._latest[entry.doc_id]

    async def stop_retries(self) -> None:
        """Ends the retry loops: :meth:`MongoStore.flush` takes over what is still unsaved."""
        self._stopping = True
        sleeping = list(self._sleeping)
        for task in sleeping:
            task.cancel()
        await asyncio.gather(*sleeping, return_exceptions=True)

    def resume_retries(self) -> None:
        """Lets writes made from now on be retried again (after :meth:`stop_retries`)."""
        self._stopping = False

    # ------------------------------------------------------------------ loading
    def restore(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of ``scheduler.add_job`` for a stored document.

        Raises:
            :class:`LookupError`: The callback is not among the imported modules.
            :class:`mongo_persistence.DecodingError`: The document cannot be read.
        """
        entity = f"jobs[{doc.get('name')!r}]"
        callback = resolve_callback(str(doc.get("callback")))
        try:
            trigger = decode_trigger(doc.get("trigger"))
            tz = getattr(trigger, "timezone", None)
            next_run_time = _decode_date(doc.get("next_run_time"), tz)
            name, chat_id, user_id = doc.get("name"), doc.get("chat_id"), doc.get("user_id")
            grace, executor = doc.get("misfire_grace_time"), doc.get("executor", "default")
            if not isinstance(doc["_id"], str) or not isinstance(name, str | None):
                raise ValueError("the _id and the name must be strings")
            for value in (chat_id, user_id, grace):
                if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                    raise ValueError(f"{value!r} is not an integer")
            if executor != "default":
                self._scheduler_of_queue()._lookup_executor(executor)  # noqa: SLF001 - KeyError
            options = {
                "misfire_grace_time": grace,
                "coalesce": bool(doc.get("coalesce", True)),
                "max_instances": int(doc.get("max_instances", 1)),
                "next_run_time": next_run_time,
                "executor": executor,
            }
        except (ValueError, TypeError, KeyError) as exc:
            raise DecodingError(entity, "", f"not a valid job document: {exc}") from None
        data = self._persistence.codec.decode(
            doc.get("data"), bot=self._persistence.bot, entity=f"{entity}.data"
        )
        ptb_job: Job[Any] = Job(
            callback=callback, data=data, name=name, chat_id=chat_id, user_id=user_id
        )
        return {
            "func": type(self._job_queue).job_callback,
            "trigger": trigger,
            "args": (self._job_queue, ptb_job),
            "id": doc["_id"],
            "name": ptb_job.name,
            **options,
        }

    def _scheduler_of_queue(self) -> Any:
        return self._job_queue.scheduler

    @property
    def job_queue(self) -> JobQueue[Any]:
        """The job queue whose jobs this store holds."""
        return self._job_queue


def _reason(exc: Exception) -> str:
    """Why a stored job cannot be scheduled, without any of its data."""
    if isinstance(exc, DecodingError):
        if exc.entity.endswith(".data"):
            return f"its data cannot be decoded (at {exc.path or 'the top level'})"
        return exc.reason
    if isinstance(exc, LookupError):
        return str(exc)
    return f"APScheduler refused it ({type(exc).__name__})"


async def restore_jobs(
    persistence: MongoPersistence[Any, Any, Any], job_queue: JobQueue[Any]
) -> MongoJobStore:
    """Installs a :class:`MongoJobStore` and schedules the stored jobs again.

    See :meth:`mongo_persistence.MongoPersistence.store_jobs`.
    """
    scheduler = job_queue.scheduler
    if scheduler.running:
        raise RuntimeError(
            "store_jobs() must run before the JobQueue starts: pass it to "
            "ApplicationBuilder.post_init(), or await it between application.initialize() and "
            "application.start()"
        )
    previous = persistence._job_store  # noqa: SLF001 - the persistence's own helper
    if previous is not None and previous.job_queue is job_queue:
        # The same application set up again (after a shutdown): reload from MongoDB.
        scheduler.remove_jobstore("default", shutdown=False)
    job_store = MongoJobStore(persistence, job_queue)
    try:
        scheduler.add_jobstore(job_store, "default")
    except ValueError:
        raise RuntimeError(
            "The JobQueue's scheduler already has a 'default' job store; store_jobs() installs "
            "its own one there"
        ) from None
    store = persistence.store
    pending = {job.id for job in scheduler.get_jobs()}  # added before: the code's version wins
    restored = 0
    async for doc in store.iter_documents(JOBS):
        fields = {k: v for k, v in doc.items() if k not in ("_id", "updated_at")}
        try:
            kwargs = job_store.restore(doc)
            if doc["_id"] in pending:
                store.tracker.loaded(JOBS, doc["_id"], fields)
                continue
            aps_job = scheduler.add_job(**kwargs, jobstore="default")
        except (MongoPersistenceError, LookupError, ValueError, TypeError) as exc:
            _LOGGER.warning(
                "Stored job %r (callback %r) is not scheduled: %s. Its document stays in MongoDB.",
                doc.get("name"),
                doc.get("callback"),
                _reason(exc),
            )
            continue
        store.tracker.loaded(JOBS, doc["_id"], fields)
        Job.from_aps_job(aps_job)
        restored += 1
    if restored:
        _LOGGER.info("Restored %d job(s) from MongoDB", restored)
    return job_store
