"""The job documents: callbacks by name, time zones, dates and triggers as plain fields.

A job document is readable: the job's name, its callback as ``module:qualname``, the trigger in
plain fields, the next run time as a BSON date. No pickle. Callbacks are looked up among the
modules the program has already imported (nothing is ever imported, no code runs).
"""

from __future__ import annotations

import datetime as dtm
import inspect
import re
from collections.abc import Callable
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from mongo_persistence._codec.codec import resolve_name
from mongo_persistence._errors import UnstorableJobError

JOBS: Final = "jobs"
"""The kind (collection name without namespace) of the job documents."""

FORMAT_VERSION: Final = 1
"""The ``v`` field of a job document."""

_UTC: Final = dtm.timezone.utc
_CRON_FIELDS: Final = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
_OFFSET = re.compile(r"^([+-])(\d\d):(\d\d)(?::(\d\d))?$")


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


def encode_date(value: dtm.datetime | None) -> dtm.datetime | None:
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
def _encode_date_trigger(trigger: DateTrigger, name: str | None) -> dict[str, Any]:
    run_date = trigger.run_date
    return {
        "type": "date",
        "run_date": encode_date(run_date),
        "timezone": _encode_tz(run_date.tzinfo, name),
    }


def _encode_interval(trigger: IntervalTrigger, name: str | None) -> dict[str, Any]:
    return {
        "type": "interval",
        "seconds": float(trigger.interval_length),
        "start_date": encode_date(trigger.start_date),
        "end_date": encode_date(trigger.end_date),
        "timezone": _encode_tz(trigger.timezone, name),
        "jitter": trigger.jitter,
    }


def _encode_cron(trigger: CronTrigger, name: str | None) -> dict[str, Any]:
    # The fields the trigger was given; None for the ones CronTrigger fills in itself.
    fields = {field.name: None if field.is_default else str(field) for field in trigger.fields}
    return {
        "type": "cron",
        **{key: fields[key] for key in _CRON_FIELDS},
        "start_date": encode_date(trigger.start_date),
        "end_date": encode_date(trigger.end_date),
        "timezone": _encode_tz(trigger.timezone, name),
        "jitter": trigger.jitter,
    }


def encode_trigger(trigger: BaseTrigger, name: str | None = None) -> dict[str, Any]:
    """The plain fields of an APScheduler trigger (date, interval, cron, and/or of those).

    Args:
        trigger: The trigger.
        name (:obj:`str`, optional): The job's name, for the error message.

    Raises:
        :class:`UnstorableJobError`: Another kind of trigger.
    """
    if isinstance(trigger, DateTrigger):
        return _encode_date_trigger(trigger, name)
    if isinstance(trigger, IntervalTrigger):
        return _encode_interval(trigger, name)
    if isinstance(trigger, CronTrigger):
        return _encode_cron(trigger, name)
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


def _check_int(value: Any) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise ValueError(f"{value!r} is not an integer")


def job_options(doc: dict[str, Any], trigger: BaseTrigger) -> dict[str, Any]:
    """The scheduling options of a stored job (``misfire_grace_time``, ``next_run_time``...).

    Raises:
        :class:`ValueError`: A field has the wrong type.
    """
    name, grace = doc.get("name"), doc.get("misfire_grace_time")
    if not isinstance(doc["_id"], str) or not isinstance(name, str | None):
        raise ValueError("the _id and the name must be strings")
    for value in (doc.get("chat_id"), doc.get("user_id"), grace):
        _check_int(value)
    return {
        "misfire_grace_time": grace,
        "coalesce": bool(doc.get("coalesce", True)),
        "max_instances": int(doc.get("max_instances", 1)),
        "next_run_time": _decode_date(doc.get("next_run_time"), getattr(trigger, "timezone", None)),
        "executor": doc.get("executor", "default"),
    }
