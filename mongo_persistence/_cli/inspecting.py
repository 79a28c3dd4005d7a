"""``mongo-persistence inspect``: sizes per collection, or one entity decoded and raw."""

from __future__ import annotations

import pprint
from pathlib import Path
from typing import Any, Final

import click
from bson import json_util

from mongo_persistence._cli.app import CliError, main, plural, run
from mongo_persistence._cli.options import codec_options, connection_options, load_codec
from mongo_persistence._cli.stats import collection_stats, find_namespaces
from mongo_persistence._cli.target import Target, make_target, open_target
from mongo_persistence._codec.codec import Codec
from mongo_persistence._errors import MongoPersistenceError
from mongo_persistence._storage.entity import COLLECTIONS, conversation_id
from mongo_persistence._storage.store import MongoStore

_ENTITY_KINDS: Final = {
    "user": "user_data",
    "chat": "chat_data",
    "bot": "bot_data",
    "conversation": "conversations",
    "callback": "callback_data",
    "jobs": "jobs",
}


@main.command(name="inspect", context_settings={"ignore_unknown_options": True})
@click.argument("what", required=False, type=click.Choice(list(_ENTITY_KINDS)))
@click.argument("ident", required=False, metavar="[ID|NAME]")
@codec_options
@connection_options
def inspect_command(
    *,
    what: str | None,
    ident: str | None,
    codec_refs: tuple[str, ...],
    pickle_fallback: bool,
    pythonpath: tuple[Path, ...],
    uri: str,
    database: str | None,
    namespace: str | None,
    timeout: float,
) -> None:
    """Show sizes per collection, or one entity decoded and raw.

    \b
    mongo-persistence inspect                     counts and sizes of every namespace
    mongo-persistence inspect -n NS               ... of namespace NS only
    mongo-persistence inspect user 42             user_data of user 42
    mongo-persistence inspect chat -100123        chat_data of chat -100123
    mongo-persistence inspect bot                 bot_data
    mongo-persistence inspect conversation NAME   every key of conversation handler NAME
    mongo-persistence inspect callback            the callback data cache
    mongo-persistence inspect jobs [NAME]         the stored JobQueue jobs (named NAME)

    An entity is shown decoded (Python repr, through the codec) and raw (relaxed Extended JSON).
    """  # noqa: D301 - \b keeps click from rewrapping the examples
    target = make_target(uri, database, namespace, timeout)
    if what is None:
        if ident is not None:
            raise click.UsageError(f"Unexpected argument {ident!r}.")
        run(target, _inspect_overview(target))
        return
    number = _checked_ident(what, ident)
    codec = load_codec(codec_refs, pythonpath, pickle_fallback=pickle_fallback)
    if what == "jobs":
        run(target, _inspect_jobs(target, codec, ident))
    else:
        run(target, _inspect_entity(target, codec, what, number, ident))


def _checked_ident(what: str, ident: str | None) -> int | None:
    """The id of ``inspect user|chat ID``; checks that the other kinds got what they need."""
    if what in ("user", "chat"):
        if ident is None:
            raise click.UsageError(f"Give the id: inspect {what} ID.")
        try:
            return int(ident)
        except ValueError:
            raise click.BadParameter(f"{ident!r} is not an integer id", param_hint="ID") from None
    if what == "conversation" and ident is None:
        raise click.UsageError("Give the handler's name: inspect conversation NAME.")
    if what not in ("conversation", "jobs") and ident is not None:
        raise click.UsageError(f"inspect {what} takes no argument (got {ident!r}).")
    return None


async def _inspect_overview(target: Target) -> None:
    async with open_target(target) as opened:
        click.echo(f"Database {opened.name!r} at {target.redacted}")
        namespaces: list[str | None] = (
            [target.namespace] if target.namespace else await find_namespaces(opened.database)
        )
        if not namespaces:
            click.echo("  no mongo_persistence collections in this database")
            return
        for namespace in namespaces:
            label = f"namespace {namespace!r}" if namespace else "no namespace"
            click.echo(f"\n{label}:")
            await _echo_stats(MongoStore(opened.database, namespace=namespace))


async def _echo_stats(store: MongoStore) -> None:
    """The table of sizes of a namespace's collections."""
    click.echo(
        f"  {'collection':<32} {'documents':>10} {'data':>10} {'largest':>10} "
        f"{'storage':>10} {'indexes':>10}"
    )
    total_docs = total_size = 0
    for kind in COLLECTIONS:
        stats = await collection_stats(store, kind)
        total_docs += stats.count
        total_size += stats.data_size
        click.echo(
            f"  {stats.name:<32} {stats.count:>10} {_size(stats.data_size):>10} "
            f"{_size(stats.largest):>10} {_size(stats.storage_size):>10} "
            f"{_size(stats.index_size):>10}"
        )
    click.echo(f"  {'total':<32} {total_docs:>10} {_size(total_size):>10}")


async def _inspect_jobs(target: Target, codec: Codec, name: str | None) -> None:
    async with open_target(target) as opened:
        where = f"{opened.store.collection_name('jobs')} ({target.describe(opened.name)})"
        query = {} if name is None else {"name": name}
        docs = [doc async for doc in opened.documents("jobs", query)]
    docs.sort(key=lambda doc: (doc.get("next_run_time") is None, str(doc.get("next_run_time"))))
    if not docs:
        subject = "jobs" if name is None else f"job named {name!r}"
        raise CliError(f"No {subject} in {where}.")
    click.echo(f"{where}: {plural(len(docs), 'job')}")
    for doc in docs:
        trigger = doc.get("trigger") or {}
        when = doc.get("next_run_time")
        click.echo("")
        click.echo(f"_id: {doc['_id']!r}")
        click.echo(f"  name:      {doc.get('name')!r}")
        click.echo(f"  callback:  {doc.get('callback')}")
        click.echo(f"  trigger:   {_trigger_text(trigger)}")
        click.echo(f"  next run:  {'paused' if when is None else f'{when:%Y-%m-%d %H:%M:%S} UTC'}")
        click.echo(f"  chat_id:   {doc.get('chat_id')}   user_id: {doc.get('user_id')}")
        try:
            data = pprint.pformat(
                codec.decode(doc.get("data"), entity=f"jobs[{doc.get('name')!r}].data"), width=80
            )
        except MongoPersistenceError as exc:
            data = f"(cannot be decoded: {exc})"
        click.echo(f"  data:      {data}")


def _trigger_text(trigger: dict[str, Any]) -> str:
    kind = trigger.get("type")
    tz = trigger.get("timezone")
    if kind == "date":
        return f"once at {trigger.get('run_date'):%Y-%m-%d %H:%M:%S} UTC ({tz})"
    if kind == "interval":
        return f"every {trigger.get('seconds')} s ({tz})"
    if kind == "cron":
        fields = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
        parts = [f"{f}={trigger[f]}" for f in fields if trigger.get(f) not in (None, "*")]
        return f"cron {' '.join(parts)} ({tz})"
    if kind in ("and", "or"):
        subs = [_trigger_text(sub) for sub in trigger.get("triggers", [])]
        return f" {kind} ".join(f"[{sub}]" for sub in subs)
    return repr(trigger)


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


async def _inspect_entity(
    target: Target, codec: Codec, what: str, number: int | None, name: str | None
) -> None:
    kind = _ENTITY_KINDS[what]
    doc_id = kind if number is None else number  # bot_data and callback_data: the kind
    query = {"name": name} if kind == "conversations" else {"_id": doc_id}
    async with open_target(target) as opened:
        where = f"{opened.store.collection_name(kind)} ({target.describe(opened.name)})"
        docs = sorted(
            [doc async for doc in opened.documents(kind, query)], key=lambda doc: str(doc["_id"])
        )
    if not docs:
        subject = {
            "user_data": f"user {number}",
            "chat_data": f"chat {number}",
            "conversations": f"conversation {name!r}",
        }.get(kind, kind)
        raise CliError(f"No {subject} in {where}.")
    click.echo(f"{where}:")
    if kind == "conversations":
        click.echo(f"{plural(len(docs), 'key')} of conversation {name!r}:")
    for doc in docs:
        click.echo("")
        click.echo(f"_id: {doc['_id']!r}")
        click.echo("decoded:")
        click.echo(_indent(_decoded(codec, kind, doc)))
        click.echo("raw:")
        raw = json_util.dumps(doc, json_options=json_util.RELAXED_JSON_OPTIONS, indent=2)
        click.echo(_indent(raw))


def _decoded(codec: Codec, kind: str, doc: dict[str, Any]) -> str:
    try:
        if kind == "conversations":
            key = tuple(codec.decode(doc.get("key", []), entity=str(doc["_id"])))
            state = codec.decode(doc.get("state"), entity=str(doc["_id"]))
            value: Any = {key: state}
            if conversation_id(str(doc.get("name")), key) != doc["_id"]:
                value = {"key": key, "state": state, "note": "the _id does not match the key"}
        else:
            value = codec.decode(doc.get("data", {}), entity=kind)
            if "attrs" in doc:
                attrs = codec.decode(doc["attrs"], entity=f"{kind}.attrs")
                value = {"data": value, "attrs": attrs}
    except MongoPersistenceError as exc:
        return f"(cannot be decoded: {exc})"
    return pprint.pformat(value, width=96, sort_dicts=False)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
