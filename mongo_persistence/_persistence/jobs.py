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
from typing import TYPE_CHECKING, Any, Final

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.job import Job as APSJob
from apscheduler.jobstores.memory import MemoryJobStore
from telegram.ext import ConversationHandler, Job, JobQueue

from mongo_persistence._errors import (
    DecodingError,
    PersistenceWriteError,
    UnstorableJobError,
)
from mongo_persistence._persistence.job_documents import (
    FORMAT_VERSION,
    JOBS,
    callback_ref,
    decode_trigger,
    encode_date,
    encode_trigger,
    job_options,
    resolve_callback,
)
from mongo_persistence._storage.encode import Encoder
from mongo_persistence._storage.entity import EntityRef
from mongo_persistence._storage.tracker import Entry
from mongo_persistence._util.logs import get_logger

if TYPE_CHECKING:
    from mongo_persistence._persistence.persistence import MongoPersistence

_LOGGER = get_logger(__name__)

_RETRY_FIRST: Final = 0.5
_RETRY_MAX: Final = 30.0


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
        self._store = persistence._store  # noqa: SLF001 - the persistence's own job store
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
        entity = EntityRef.job(job.id, name).label
        return {
            "name": name,
            "callback": callback_ref(ptb_job.callback, name),
            "trigger": encode_trigger(job.trigger, name),
            "next_run_time": encode_date(job.next_run_time),
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
        """The job's document through the encoded-entity step (exact size, fingerprints)."""
        ref = EntityRef.job(job.id, fields["name"])
        persistence = self._persistence
        encoder = Encoder(persistence.codec, persistence.bot, self._store.max_bson_size)
        return encoder.whole((ref.collection, ref.doc_id), ref.label, fields)

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
        ref = EntityRef.job(job_id, job.name)
        self._submit(Entry(ref.collection, ref.doc_id, ref.label, None, None))

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
        entity = EntityRef.of_document(JOBS, doc).label
        callback = resolve_callback(str(doc.get("callback")))
        try:
            trigger = decode_trigger(doc.get("trigger"))
            options = job_options(doc, trigger)
            if options["executor"] != "default":
                # KeyError for an unknown executor
                self._scheduler_of_queue()._lookup_executor(options["executor"])  # noqa: SLF001
        except (ValueError, TypeError, KeyError) as exc:
            raise DecodingError(entity, "", f"not a valid job document: {exc}") from None
        data = self._persistence.codec.decode(
            doc.get("data"), bot=self._persistence.bot, entity=f"{entity}.data"
        )
        ptb_job: Job[Any] = Job(
            callback=callback,
            data=data,
            name=doc.get("name"),
            chat_id=doc.get("chat_id"),
            user_id=doc.get("user_id"),
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
    def store(self) -> Any:
        """The persistence's store (:class:`~mongo_persistence._storage.store.MongoStore`)."""
        return self._store

    @property
    def job_queue(self) -> JobQueue[Any]:
        """The job queue whose jobs this store holds."""
        return self._job_queue
