"""Scheduling the stored jobs again, at start-up.

The :class:`~mongo_persistence._persistence.jobs.MongoJobStore` is installed, and every stored
job whose callback is found is added back.

See :meth:`mongo_persistence.MongoPersistence.store_jobs`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from telegram.ext import Job, JobQueue

from mongo_persistence._errors import DecodingError, MongoPersistenceError
from mongo_persistence._persistence.job_documents import JOBS
from mongo_persistence._persistence.jobs import MongoJobStore
from mongo_persistence._util.logs import get_logger

if TYPE_CHECKING:
    from mongo_persistence._persistence.persistence import MongoPersistence

_LOGGER = get_logger(__name__)


def _reason(exc: Exception) -> str:
    """Why a stored job cannot be scheduled, without any of its data."""
    if isinstance(exc, DecodingError):
        if exc.entity.endswith(".data"):
            return f"its data cannot be decoded (at {exc.path or 'the top level'})"
        return exc.reason
    if isinstance(exc, LookupError):
        return str(exc)
    return f"APScheduler refused it ({type(exc).__name__})"


def _install(
    persistence: MongoPersistence[Any, Any, Any], job_queue: JobQueue[Any]
) -> MongoJobStore:
    """Puts a new :class:`MongoJobStore` in the scheduler as its ``default`` job store."""
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
    return job_store


def _schedule(job_store: MongoJobStore, doc: dict[str, Any], pending: set[str]) -> bool:
    """Schedules one stored job again (unless the code added it first); tells whether it did."""
    store = job_store.store
    scheduler = job_store.job_queue.scheduler
    fields = {k: v for k, v in doc.items() if k not in ("_id", "updated_at")}
    try:
        kwargs = job_store.restore(doc)
        if doc["_id"] in pending:
            store.tracker.loaded(JOBS, doc["_id"], fields)
            return False
        aps_job = scheduler.add_job(**kwargs, jobstore="default")
    except (MongoPersistenceError, LookupError, ValueError, TypeError) as exc:
        _LOGGER.warning(
            "Stored job %r (callback %r) is not scheduled: %s. Its document stays in MongoDB.",
            doc.get("name"),
            doc.get("callback"),
            _reason(exc),
        )
        return False
    store.tracker.loaded(JOBS, doc["_id"], fields)
    Job.from_aps_job(aps_job)
    return True


async def restore_jobs(
    persistence: MongoPersistence[Any, Any, Any], job_queue: JobQueue[Any]
) -> MongoJobStore:
    """Installs a :class:`MongoJobStore` and schedules the stored jobs again.

    See :meth:`mongo_persistence.MongoPersistence.store_jobs`.
    """
    job_store = _install(persistence, job_queue)
    pending = {job.id for job in job_queue.scheduler.get_jobs()}  # added before: the code wins
    restored = 0
    async for doc in persistence._store.iter_documents(JOBS):  # noqa: SLF001 - its own
        restored += _schedule(job_store, doc, pending)
    if restored:
        _LOGGER.info("Restored %d job(s) from MongoDB", restored)
    return job_store
