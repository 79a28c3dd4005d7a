"""The ``mongo-persistence`` command (also ``python -m mongo_persistence``).

Commands: ``migrate`` (from PTB's PicklePersistence or DictPersistence JSON), ``inspect``,
``check``, ``export``, ``import`` and ``recover``. Every command takes ``--uri`` (or the
environment variable ``MONGODB_URI``), ``--database``, ``--namespace`` and ``--timeout``.
Passwords are never printed.
Expected errors end with a one-line message and exit status 1 (2 for a wrong command line).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import pprint
import sys
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO, TypeVar

import click
from bson import json_util
from pymongo import AsyncMongoClient
from pymongo.errors import (
    ConfigurationError,
    ConnectionFailure,
    InvalidURI,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)
from tqdm import tqdm  # type: ignore[import-untyped]

from mongo_persistence._cli.migrate import (
    DICT_JSON_FILES,
    KINDS,
    PICKLE_SUFFIXES,
    MigrationAbortedError,
    MigrationResult,
    SourceData,
    dummy_bot,
    load_dict_json,
    load_pickle,
    migrate,
    migration_store,
)
from mongo_persistence._cli.transfer import (
    ExportFormatError,
    check_recovery_file,
    collection_stats,
    export_namespace,
    find_namespaces,
    import_records,
    read_export,
)
from mongo_persistence._codec.codec import Codec, TypeCodec
from mongo_persistence._errors import DecodingError, MongoPersistenceError
from mongo_persistence._persistence.persistence import (
    DEFAULT_DATABASE,
    MongoPersistence,
    callback_data_from,
    conversation_id,
    conversation_key,
)
from mongo_persistence._storage.store import COLLECTIONS, MongoStore
from mongo_persistence._util.names import check_database_name, check_namespace
from mongo_persistence._util.uri import redact_text, redact_uri
from mongo_persistence._version import __version__

__all__ = ["main"]

DEFAULT_URI: Final = "mongodb://localhost:27017"
DEFAULT_TIMEOUT: Final = 5.0
_MAX_PROBLEMS_SHOWN: Final = 50

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


# ====================================================================== connection
@dataclass(slots=True)
class Target:
    """Where a command reads or writes: server, database and namespace.

    Attributes:
        uri (:obj:`str`): The connection string, as given (never printed as it is).
        database (:obj:`str` | :obj:`None`): The database name; the URI's, else
            :data:`~mongo_persistence.DEFAULT_DATABASE`, when :obj:`None`.
        namespace (:obj:`str` | :obj:`None`): The namespace.
        timeout (:obj:`float`): Seconds to wait for a server.
    """

    uri: str
    database: str | None
    namespace: str | None
    timeout: float

    @property
    def redacted(self) -> str:
        """The URI without its password."""
        return redact_uri(self.uri)

    def scrub(self, text: str) -> str:
        """Removes the URI's secrets from a message (:func:`redact_text`); keeps its first line."""
        return redact_text(text, self.uri).strip().split("\n", 1)[0]

    def describe(self, database: str) -> str:
        """``database 'x', namespace 'y' at mongodb://...`` for messages."""
        namespace = f"namespace {self.namespace!r}" if self.namespace else "no namespace"
        return f"database {database!r}, {namespace} at {self.redacted}"


class CliError(click.ClickException):
    """An expected error: printed as one line, exit status 1."""


def _short(exc: BaseException) -> str:
    text = str(exc).strip().split("\n", 1)[0]
    for cut in (" (configured timeouts", ", Timeout:"):
        if cut in text:
            text = text.split(cut, 1)[0]
    return text[:300]


@contextlib.asynccontextmanager
async def connect(target: Target) -> AsyncIterator[tuple[Any, str]]:
    """Opens a client, checks that the server answers, and yields (database, its name).

    Raises:
        :class:`CliError`: The URI is invalid, or the server does not answer or refuses access.
    """
    where = target.redacted
    timeout_ms = max(1, int(target.timeout * 1000))
    try:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            target.uri,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            appname="mongo-persistence-cli",
        )
    except (InvalidURI, ConfigurationError, ValueError, TypeError) as exc:
        raise CliError(target.scrub(f"Invalid MongoDB URI {where}: {_short(exc)}")) from None
    try:
        try:
            name = target.database or client.get_default_database(default=DEFAULT_DATABASE).name
            try:
                check_database_name(name, where=" in the connection string")
            except ValueError as exc:
                raise CliError(str(exc)) from None
            database = client.get_database(name)
            await database.command("ping")
        except (InvalidURI, ConfigurationError) as exc:
            raise CliError(target.scrub(f"Invalid MongoDB URI {where}: {_short(exc)}")) from None
        except ServerSelectionTimeoutError as exc:
            raise CliError(
                target.scrub(
                    f"Cannot reach MongoDB at {where}: no server answered within "
                    f"{target.timeout:g} s ({_short(exc)})"
                )
            ) from None
        except OperationFailure as exc:
            reason = (exc.details or {}).get("errmsg") or _short(exc)
            if exc.code in (18, 13, 8000) or "auth" in str(exc).lower():
                raise CliError(
                    target.scrub(f"MongoDB at {where} refused the credentials: {reason}")
                ) from None
            raise CliError(target.scrub(f"MongoDB at {where} failed: {reason}")) from None
        except ConnectionFailure as exc:
            raise CliError(
                target.scrub(f"Cannot connect to MongoDB at {where}: {_short(exc)}")
            ) from None
        yield database, name
    finally:
        await client.close()


def _persistence(
    database: Any,
    target: Target,
    *,
    codecs: Iterable[TypeCodec[Any]] = (),
    pickle_fallback: bool = False,
) -> MongoPersistence[Any, Any, Any]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the pickle_fallback warning: the CLI says it itself
            return MongoPersistence(
                database, namespace=target.namespace, codecs=codecs, pickle_fallback=pickle_fallback
            )
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _run(target: Target, coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs a command's coroutine; turns the errors one expects into one-line messages."""
    scrub = target.scrub
    try:
        with _warnings_as_notes():
            return asyncio.run(coroutine)
    except click.ClickException:
        raise
    except ServerSelectionTimeoutError as exc:
        raise CliError(scrub(f"Lost the connection to {target.redacted}: {_short(exc)}")) from None
    except PyMongoError as exc:
        raise CliError(scrub(f"MongoDB failed: {_short(exc)}")) from None
    except MongoPersistenceError as exc:
        raise CliError(scrub(str(exc))) from None
    except OSError as exc:
        raise CliError(scrub(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))) from None
    except KeyboardInterrupt:
        raise click.Abort() from None


@contextlib.contextmanager
def _warnings_as_notes() -> Iterator[None]:
    seen: set[str] = set()

    def show(message: Warning | str, *_: Any, **__: Any) -> None:
        text = str(message).strip().split("\n", 1)[0]
        if text not in seen:
            seen.add(text)
            click.echo(f"Warning: {text}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        # Sockets garbage-collected by the driver are no news for the user of a command.
        warnings.simplefilter("ignore", ResourceWarning)
        warnings.showwarning = show
        yield


# ====================================================================== shared options
def connection_options(function: F) -> F:
    """Adds ``--uri``, ``--database``, ``--namespace`` and ``--timeout`` to a command."""
    options = [
        click.option(
            "--uri",
            envvar="MONGODB_URI",
            default=DEFAULT_URI,
            show_default=True,
            show_envvar=True,
            metavar="URI",
            help="MongoDB connection string (mongodb:// or mongodb+srv://). Its password is never "
            "printed.",
        ),
        click.option(
            "--database",
            "-d",
            metavar="NAME",
            help=f"Database. Defaults to the URI's database, else {DEFAULT_DATABASE!r}.",
        ),
        click.option(
            "--namespace",
            "-n",
            metavar="NS",
            help="Namespace: the collections are '<NS>.user_data'... "
            "(MongoPersistence(namespace=...)). None by default.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0.1),
            default=DEFAULT_TIMEOUT,
            show_default=True,
            metavar="SECONDS",
            help="How long to wait for a server to answer.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def codec_options(function: F) -> F:
    """Adds ``--codec``, ``--pickle-fallback`` and ``--pythonpath`` to a command."""
    options = [
        click.option(
            "--codec",
            "codec_refs",
            multiple=True,
            metavar="MODULE:NAME",
            help="A TypeCodec (or a list of them) of your bot, as given to "
            "MongoPersistence(codecs=...). Repeatable.",
        ),
        click.option(
            "--pickle-fallback",
            is_flag=True,
            help="Values of unsupported types are stored (and loaded) with pickle, as "
            "MongoPersistence(pickle_fallback=True) does. Only if you trust everyone who can "
            "write to the database.",
        ),
        click.option(
            "--pythonpath",
            multiple=True,
            type=click.Path(file_okay=False, path_type=Path),
            metavar="DIR",
            help="Put DIR on the import path (for your bot's own classes and codecs). Repeatable.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def progress_option(function: F) -> F:
    """Adds ``--progress/--no-progress``."""
    return click.option(
        "--progress/--no-progress",
        default=None,
        help="Show a progress bar (on standard error). Shown when it is a terminal by default.",
    )(function)


def _target(uri: str, database: str | None, namespace: str | None, timeout: float) -> Target:
    """The target of a command; ``--namespace ''`` means no namespace."""
    try:
        if database is not None:
            check_database_name(database)
        namespace = check_namespace(namespace or None)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return Target(uri=uri, database=database, namespace=namespace, timeout=timeout)


def _load_codecs(refs: Iterable[str], paths: Iterable[Path]) -> list[TypeCodec[Any]]:
    for path in paths:
        sys.path.insert(0, str(path.resolve()))
    codecs: list[TypeCodec[Any]] = []
    for ref in refs:
        module_name, colon, attribute = ref.partition(":")
        if not colon or not module_name or not attribute:
            raise click.BadParameter(f"{ref!r} is not MODULE:NAME", param_hint="--codec")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise click.BadParameter(f"cannot load {ref!r}: {exc}", param_hint="--codec") from None
        items = [obj] if isinstance(obj, TypeCodec) else list(obj) if _iterable(obj) else [obj]
        for item in items:
            if not isinstance(item, TypeCodec):
                raise click.BadParameter(
                    f"{ref!r} is a {type(item).__name__}, not a TypeCodec", param_hint="--codec"
                )
            codecs.append(item)
    return codecs


def _iterable(obj: object) -> bool:
    return isinstance(obj, list | tuple | set | frozenset)


def _bar(total: int | None, description: str, enabled: bool | None, unit: str = "doc") -> Any:
    show = sys.stderr.isatty() if enabled is None else enabled
    return tqdm(
        total=total,
        desc=description,
        unit=unit,
        disable=not show,
        file=sys.stderr,
        dynamic_ncols=True,
        leave=True,
    )


def _plural(count: int, word: str) -> str:
    if count == 1:
        return f"{count} {word}"
    return f"{count} entities" if word == "entity" else f"{count} {word}s"


# ====================================================================== the group
@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", "-V", prog_name="mongo-persistence")
def main() -> None:
    """Migrate, inspect, back up and recover the MongoDB data of python-telegram-bot bots.

    The connection comes from --uri or the environment variable MONGODB_URI; passwords are never
    printed. Run `mongo-persistence COMMAND --help` for the options of a command.
    """


# ====================================================================== migrate
@main.command(name="migrate")
@click.option(
    "--from-pickle",
    "pickle_path",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="The filepath of a PicklePersistence: the file itself (single_file=True), or the "
    f"prefix of the files PATH{', PATH'.join(PICKLE_SUFFIXES)} (single_file=False; found out "
    "from the files present).",
)
@click.option(
    "--from-dict-json",
    "dict_path",
    type=click.Path(path_type=Path),
    metavar="FILE|DIR",
    help="DictPersistence JSON: a FILE holding a JSON object with any of the keys "
    f"{', '.join(KINDS)} (each the text of the DictPersistence *_json property, or that JSON "
    f"inline), or a DIR holding any of {', '.join(DICT_JSON_FILES.values())} (each the text of "
    "the matching *_json property).",
)
@click.option(
    "--single-file/--multi-file",
    default=None,
    help="Read the PicklePersistence as single_file=True/False instead of finding it out.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Write nothing and need no server: count the entities per kind and list every value "
    "that cannot be stored.",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Entities written concurrently (one bulk write per collection and chunk).",
)
@codec_options
@progress_option
@connection_options
def migrate_command(
    *,
    pickle_path: Path | None,
    dict_path: Path | None,
    single_file: bool | None,
    dry_run: bool,
    chunk_size: int,
    codec_refs: tuple[str, ...],
    pickle_fallback: bool,
    pythonpath: tuple[Path, ...],
    progress: bool | None,
    uri: str,
    database: str | None,
    namespace: str | None,
    timeout: float,
) -> None:
    """Copy the data of PTB's PicklePersistence or DictPersistence into MongoDB.

    The files are read with PTB's own classes; every user, chat, bot data, conversation state
    and the callback data cache are written through MongoPersistence, so the documents are the
    ones the bot itself writes. Running it twice writes the same documents again. Entities of
    the target that the source does not have are left alone.

    Exit status 1 when any entity cannot be migrated (also with --dry-run): the others are
    written, and each failure is listed with the path of the value at fault.
    """
    if (pickle_path is None) == (dict_path is None):
        raise click.UsageError("Give exactly one of --from-pickle and --from-dict-json.")
    if single_file is not None and pickle_path is None:
        raise click.UsageError("--single-file/--multi-file go with --from-pickle.")
    target = _target(uri, database, namespace, timeout)
    codecs = _load_codecs(codec_refs, pythonpath)
    if pickle_fallback:
        click.echo(
            "Note: --pickle-fallback: values of unsupported types are stored with pickle.",
            err=True,
        )

    async def run() -> MigrationResult:
        bot = dummy_bot()
        if pickle_path is not None:
            source = await load_pickle(pickle_path, bot=bot, single_file=single_file)
        else:
            assert dict_path is not None
            source = await load_dict_json(dict_path, bot=bot)
        _echo_source(source)
        codec = Codec(codecs, pickle_fallback=pickle_fallback)
        if dry_run:
            return await _migrate(source, None, codec, chunk_size, progress)
        async with connect(target) as (db, name):
            store = migration_store(db, namespace=target.namespace)
            click.echo(f"Target: {target.describe(name)}")
            return await _migrate(source, store, codec, chunk_size, progress)

    result = _run(target, run())
    _echo_problems(result)
    done = result.total_written
    if dry_run:
        click.echo(f"Dry run: nothing was written. {_plural(done, 'entity')} can be migrated.")
    else:
        click.echo(f"Migrated {_plural(done, 'entity')}.")
    if result.problems:
        raise CliError(
            f"{_plural(len(result.problems), 'entity')} cannot be migrated (listed above)"
            + ("" if dry_run else f"; the other {done} were written")
            + "."
        )


async def _migrate(
    source: SourceData,
    store: MongoStore | None,
    codec: Codec,
    chunk_size: int,
    progress: bool | None,
) -> MigrationResult:
    with _bar(source.total, "migrating", progress, unit="entity") as bar:
        try:
            return await migrate(
                source, store, codec=codec, chunk_size=chunk_size, progress=bar.update
            )
        except MigrationAbortedError as exc:
            _echo_problems(exc.result)
            raise


def _echo_source(source: SourceData) -> None:
    click.echo(f"Source: {source.description}")
    counts = source.counts()
    for kind in KINDS:
        extra = ""
        if kind == "conversations" and source.conversations:
            extra = f"  ({_plural(len(source.conversations), 'handler')}: "
            extra += ", ".join(sorted(source.conversations)) + ")"
        click.echo(f"  {kind:<14} {counts[kind]:>8}{extra}")
    click.echo(
        "  jobs: none. PTB's PicklePersistence and DictPersistence never store JobQueue jobs; "
        "schedule them again in the bot (MongoPersistence.store_jobs keeps them from then on)."
    )


def _echo_problems(result: MigrationResult) -> None:
    for problem in result.problems[:_MAX_PROBLEMS_SHOWN]:
        click.echo(f"  ! {problem.message}")
    hidden = len(result.problems) - _MAX_PROBLEMS_SHOWN
    if hidden > 0:
        click.echo(f"  ! ... and {hidden} more")


# ====================================================================== inspect
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
    target = _target(uri, database, namespace, timeout)
    if what is None:
        if ident is not None:
            raise click.UsageError(f"Unexpected argument {ident!r}.")
        _run(target, _inspect_overview(target))
        return
    number: int | None = None
    if what in ("user", "chat"):
        if ident is None:
            raise click.UsageError(f"Give the id: inspect {what} ID.")
        try:
            number = int(ident)
        except ValueError:
            raise click.BadParameter(f"{ident!r} is not an integer id", param_hint="ID") from None
    elif what == "conversation":
        if ident is None:
            raise click.UsageError("Give the handler's name: inspect conversation NAME.")
    elif what == "jobs":
        codec = Codec(_load_codecs(codec_refs, pythonpath), pickle_fallback=pickle_fallback)
        _run(target, _inspect_jobs(target, codec, ident))
        return
    elif ident is not None:
        raise click.UsageError(f"inspect {what} takes no argument (got {ident!r}).")
    codec = Codec(_load_codecs(codec_refs, pythonpath), pickle_fallback=pickle_fallback)
    _run(target, _inspect_entity(target, codec, what, number, ident))


async def _inspect_overview(target: Target) -> None:
    async with connect(target) as (db, name):
        click.echo(f"Database {name!r} at {target.redacted}")
        namespaces: list[str | None] = (
            [target.namespace] if target.namespace else await find_namespaces(db)
        )
        if not namespaces:
            click.echo("  no mongo_persistence collections in this database")
            return
        for namespace in namespaces:
            label = f"namespace {namespace!r}" if namespace else "no namespace"
            click.echo(f"\n{label}:")
            store = _persistence(db, _target(target.uri, name, namespace, target.timeout)).store
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
    async with connect(target) as (db, db_name):
        store = _persistence(db, target).store
        where = f"{store.collection_name('jobs')} ({target.describe(db_name)})"
        query = {} if name is None else {"name": name}
        docs = [doc async for doc in store.iter_documents("jobs", query)]
    docs.sort(key=lambda doc: (doc.get("next_run_time") is None, str(doc.get("next_run_time"))))
    if not docs:
        subject = "jobs" if name is None else f"job named {name!r}"
        raise CliError(f"No {subject} in {where}.")
    click.echo(f"{where}: {_plural(len(docs), 'job')}")
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
    async with connect(target) as (db, db_name):
        store = _persistence(db, target).store
        where = f"{store.collection_name(kind)} ({target.describe(db_name)})"
        if kind == "conversations":
            docs = [doc async for doc in store.iter_documents(kind, {"name": name})]
            docs.sort(key=lambda doc: str(doc["_id"]))
        else:
            doc_id = number if number is not None else kind
            doc = await store.find_one(kind, doc_id)
            docs = [] if doc is None else [doc]
    if not docs:
        subject = {
            "user_data": f"user {number}",
            "chat_data": f"chat {number}",
            "conversations": f"conversation {name!r}",
        }.get(kind, kind)
        raise CliError(f"No {subject} in {where}.")
    click.echo(f"{where}:")
    if kind == "conversations":
        click.echo(f"{_plural(len(docs), 'key')} of conversation {name!r}:")
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


# ====================================================================== export / import
@main.command(name="check")
@codec_options
@connection_options
def check_command(
    *,
    codec_refs: tuple[str, ...],
    pickle_fallback: bool,
    pythonpath: tuple[Path, ...],
    uri: str,
    database: str | None,
    namespace: str | None,
    timeout: float,
) -> None:
    """List the documents of a namespace that the bot cannot load.

    Every document is decoded as the bot loads it (give the same --codec options as the bot);
    nothing is written and nothing is imported. Each bad document is listed with its entity, the
    path of the value at fault and what is wrong, never its content. Exit status 1 when there is
    any (MongoPersistence(on_bad_document="raise") would not start; "skip" starts without them).
    """
    target = _target(uri, database, namespace, timeout)
    codecs = _load_codecs(codec_refs, pythonpath)

    async def run() -> tuple[int, list[str]]:
        async with connect(target) as (db, name):
            persistence = _persistence(db, target, codecs=codecs, pickle_fallback=pickle_fallback)
            click.echo(f"Checking {target.describe(name)}")
            return await _check_documents(persistence)

    checked, problems = _run(target, run())
    for problem in problems:
        click.echo(f"  {problem}")
    click.echo(f"Checked {_plural(checked, 'document')}: {len(problems) or 'none'} bad.")
    if problems:
        raise CliError(f"{_plural(len(problems), 'document')} cannot be loaded (listed above).")


async def _check_documents(persistence: MongoPersistence[Any, Any, Any]) -> tuple[int, list[str]]:
    """Decodes every document of the persistence's namespace; returns (count, problems)."""
    checked = 0
    problems: list[str] = []
    for kind in COLLECTIONS:
        async for doc in persistence.store.iter_documents(kind):
            checked += 1
            problem = _document_problem(persistence, kind, doc)
            if problem is not None:
                problems.append(problem)
    return checked, problems


def _document_problem(
    persistence: MongoPersistence[Any, Any, Any], kind: str, doc: dict[str, Any]
) -> str | None:
    """What keeps the bot from loading a document, or :obj:`None`."""
    codec = persistence.codec
    doc_id = doc.get("_id")
    entity = f"{kind}[{doc_id!r}]" if kind in ("user_data", "chat_data") else kind
    try:
        if kind in ("user_data", "chat_data") and (type(doc_id) is not int):
            return (
                f"{entity}: its _id is a {type(doc_id).__name__}, not an int (the bot ignores it)"
            )
        if kind == "conversations":
            entity = f"conversations[{doc_id!r}]"
            if "state" not in doc:
                return f"{entity}: not a conversation document (a 'key' array and a 'state')"
            conversation_key(codec, doc, f"conversations[{doc.get('name')!r}]")
            codec.decode(doc["state"], entity=entity)
            return None
        if not isinstance(doc.get("data", {}), dict):
            return f"{entity}: its 'data' field is {type(doc['data']).__name__}, not a document"
        data = codec.decode(doc.get("data", {}), entity=entity)
        if kind == "callback_data":
            callback_data_from(data)  # the shape the bot checks when it loads the cache
        if "attrs" in doc:
            codec.decode(doc["attrs"], entity=f"{entity}.attrs")
    except DecodingError as exc:
        return f"{exc.entity}{exc.path}: {exc.reason}"
    return None


@main.command(name="export")
@click.option(
    "--output",
    "-o",
    default="-",
    show_default=True,
    type=click.Path(dir_okay=False, allow_dash=True, path_type=str),
    metavar="FILE|-",
    help="Where to write; '-' is standard output. A file is written whole or not at all.",
)
@progress_option
@connection_options
def export_command(
    *,
    output: str,
    progress: bool | None,
    uri: str,
    database: str | None,
    namespace: str | None,
    timeout: float,
) -> None:
    """Write all documents of a namespace as Extended JSON lines (a backup).

    One document per line, in canonical Extended JSON (every BSON type is kept exactly), with
    the kind of data it belongs to; a header line first and an end line last. `import` restores
    it into any database and namespace.
    """
    target = _target(uri, database, namespace, timeout)
    to_stdout = output == "-"

    async def run() -> dict[str, int]:
        async with connect(target) as (db, name):
            store = _persistence(db, target).store
            if to_stdout:
                return await _export(store, sys.stdout, name, progress)
            path = Path(output)
            part = path.with_name(f".{path.name}.part")
            try:
                with part.open("w", encoding="utf-8") as handle:
                    counts = await _export(store, handle, name, progress)
                os.replace(part, path)
            finally:
                part.unlink(missing_ok=True)
            return counts

    counts = _run(target, run())
    summary = ", ".join(f"{kind} {count}" for kind, count in counts.items())
    destination = "standard output" if to_stdout else output
    click.echo(
        f"Exported {_plural(sum(counts.values()), 'document')} ({summary}) to {destination}.",
        err=to_stdout,
    )


async def _export(
    store: Any, handle: TextIO, database: str, progress: bool | None
) -> dict[str, int]:
    total = 0
    for kind in COLLECTIONS:
        total += await store.collection(kind).count_documents({})
    with _bar(total, "exporting", progress) as bar:
        return await export_namespace(store, handle, database=database, progress=bar.update)


class _FileLines:
    """The lines of a file, read anew each time it is iterated."""

    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        self.path = path

    def __iter__(self) -> Iterator[str]:
        with self.path.open(encoding="utf-8") as handle:
            yield from handle


def _lines(file: str) -> tuple[Iterable[str], str]:
    if file == "-":
        return list(sys.stdin), "standard input"
    path = Path(file)
    if not path.is_file():
        raise CliError(f"No such file: {file}" if not path.exists() else f"Not a file: {file}")
    return _FileLines(path), file


@main.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=str))
@progress_option
@connection_options
def import_command(
    *,
    file: str,
    progress: bool | None,
    uri: str,
    database: str | None,
    namespace: str | None,
    timeout: float,
) -> None:
    """Load a file written by `export` (FILE, or '-' for standard input).

    Each document replaces the one with the same _id (upsert), so importing twice changes
    nothing. The documents go into the export's own namespace unless --namespace is given
    (--namespace '' for the collections without a namespace). The whole file is checked before
    anything is written.
    """
    lines, where = _lines(file)
    try:
        with _warnings_as_notes():
            header, _ = read_export(lines, where=where)
    except ExportFormatError as exc:
        raise CliError(str(exc)) from None
    except UnicodeDecodeError:
        raise CliError(f"{where} is not a mongo-persistence export (not UTF-8 text)") from None
    except OSError as exc:
        raise CliError(f"Cannot read {where}: {exc.strerror or exc}") from None
    chosen = header.namespace if namespace is None else namespace
    target = _target(uri, database, chosen, timeout)

    async def run() -> dict[str, int]:
        async with connect(target) as (db, name):
            click.echo(
                f"Importing {_plural(header.total, 'document')} from {where} "
                f"(exported from database {header.database!r}, "
                + (f"namespace {header.namespace!r}" if header.namespace else "no namespace")
                + f") into {target.describe(name)}"
            )
            store = _persistence(db, target).store
            _, records = read_export(lines, where=where)
            with _bar(header.total, "importing", progress) as bar:
                return await import_records(store, records, progress=bar.update)

    counts = _run(target, run())
    summary = ", ".join(f"{kind} {count}" for kind, count in counts.items())
    click.echo(f"Imported {_plural(sum(counts.values()), 'document')} ({summary}).")


# ====================================================================== recover
@main.command(name="recover")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@connection_options
def recover_command(
    *, file: Path, uri: str, database: str | None, namespace: str | None, timeout: float
) -> None:
    """Load a recovery file written by MongoPersistence.flush() back into MongoDB.

    When MongoDB could not be reached at shutdown, the unsaved entities went to a file
    `mongo_persistence-unsaved-<time>.jsonl`. They go back into the database and namespace the
    file names, unless --database/--namespace say otherwise (files of older versions name
    neither: give the bot's own). A document written again after the file was made is left as
    it is (counted as skipped): an older save never overwrites a newer one. Running it twice is
    harmless.
    """
    lines, where = _lines(str(file))
    try:
        info = check_recovery_file(lines, where=where)
    except ExportFormatError as exc:
        raise CliError(str(exc)) from None
    except UnicodeDecodeError:
        raise CliError(f"{where} is not a recovery file (not UTF-8 text)") from None
    except OSError as exc:
        raise CliError(f"Cannot read {where}: {exc.strerror or exc}") from None
    if namespace is None and info.names_namespace:
        namespace = info.namespace
    target = _target(uri, database or info.database, namespace, timeout)

    async def run() -> tuple[int, int]:
        async with connect(target) as (db, name):
            click.echo(
                f"Recovering {_plural(info.total, 'entity')} ({info.ops['replace']} to write, "
                f"{info.ops['merge']} to merge, {info.ops['delete']} to delete) from {where} "
                f"into {target.describe(name)}"
            )
            store = _persistence(db, target).store
            try:
                return await store.restore_recovery_file(file)
            except ValueError as exc:  # the file belongs to another namespace
                raise CliError(str(exc)) from None

    restored, skipped = _run(target, run())
    click.echo(f"Restored {restored}, skipped {skipped} (the database holds a newer version).")


# ====================================================================== upgrade (issue 12)
@main.command(name="upgrade")
@click.option("--dry-run", is_flag=True, help="Count and check the documents, write nothing.")
@progress_option
@connection_options
def upgrade_command(
    *,
    dry_run: bool,
    progress: bool | None,
    uri: str,
    database: str | None,
    namespace: str | None,
    timeout: float,
) -> None:
    """Rewrite documents of an older format (0.1.0: dates as ISO text) in the current one.

    Only the dates, times and durations are rewritten (dates become BSON dates); every other
    value stays as stored. A running bot rewrites each document at its next write anyway: this
    does all of them at once. Idempotent and safe to stop and run again; a document the bot
    writes meanwhile is left to the bot.
    """
    from mongo_persistence._codec.upgrade import upgrade_documents

    target = _target(uri, database, namespace, timeout)

    async def run() -> Any:
        async with connect(target) as (db, name):
            verb = "Checking" if dry_run else "Upgrading"
            click.echo(f"{verb} the documents of {target.describe(name)}")
            with _bar(None, "upgrading", progress) as bar:

                def total(count: int) -> None:
                    bar.total = count
                    bar.refresh()

                return await upgrade_documents(
                    db, target.namespace, dry_run=dry_run, progress=bar.update, on_total=total
                )

    result = _run(target, run())
    for problem in result.failed[:_MAX_PROBLEMS_SHOWN]:
        click.echo(f"Cannot upgrade {problem}", err=True)
    found = sum(result.found.values())
    summary = ", ".join(f"{kind} {count}" for kind, count in result.found.items() if count)
    if not found:
        click.echo("Every document is in the current format.")
    elif dry_run:
        click.echo(
            f"{_plural(result.upgraded, 'document')} to upgrade ({summary}); nothing written."
        )
    else:
        click.echo(
            f"Upgraded {result.upgraded} of {_plural(found, 'document')} ({summary})"
            + (f"; {result.raced} written by the bot meanwhile" if result.raced else "")
            + "."
        )
    if result.failed:
        raise CliError(f"{_plural(len(result.failed), 'document')} cannot be upgraded (see above)")


# ====================================================================== purge (issue 12)
@main.command(name="purge")
@click.option(
    "--older-than",
    required=True,
    metavar="AGE",
    help="Delete documents not written for this long: 180d, 12h, 30m, 90s or 2w.",
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(["users", "chats", "conversations"]),
    help="Which documents (repeatable). All three by default; never bot_data, callback_data or "
    "jobs.",
)
@click.option("--dry-run", is_flag=True, help="Count the documents, delete nothing.")
@connection_options
def purge_command(
    *,
    older_than: str,
    kinds: tuple[str, ...],
    dry_run: bool,
    uri: str,
    database: str | None,
    namespace: str | None,
    timeout: float,
) -> None:
    """Delete the users, chats and conversations the bot has not written for a while.

    A one-off clean-up, by each document's `updated_at`. For a lasting policy, let MongoDB do it:
    MongoPersistence(expire_after={"users": "180d"}). A running bot keeps what it holds in
    memory and writes an entity again when it changes.
    """
    from mongo_persistence._storage.retention import parse_age, purge

    try:
        age = parse_age(older_than)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    target = _target(uri, database, namespace, timeout)
    chosen = list(kinds or ("users", "chats", "conversations"))

    async def run() -> dict[str, int]:
        async with connect(target) as (db, name):
            click.echo(
                f"Purging {', '.join(chosen)} older than {older_than} in {target.describe(name)}"
            )
            return await purge(db, target.namespace, chosen, age, dry_run=dry_run)

    counts = _run(target, run())
    summary = ", ".join(f"{kind} {count}" for kind, count in counts.items())
    total = _plural(sum(counts.values()), "document")
    click.echo(
        f"{total} to delete ({summary}); nothing deleted."
        if dry_run
        else f"Deleted {total} ({summary})."
    )


# ====================================================================== shell (issue 12)
def find_mongosh(explicit: str | None = None) -> str:
    """The mongosh executable to run.

    ``--mongosh``, ``$MONGOSH``, ``mongosh`` on PATH, else the copy ``make test`` installs
    (``.cache/mongosh/node_modules/.bin/mongosh``).
    """
    import shutil

    candidates = [explicit, os.environ.get("MONGOSH"), shutil.which("mongosh")]
    candidates.append(str(Path.cwd() / ".cache" / "mongosh" / "node_modules" / ".bin" / "mongosh"))
    for candidate in candidates:
        if candidate and (shutil.which(candidate) or Path(candidate).is_file()):
            return candidate
    raise CliError(
        "mongosh not found: install it (npm install -g mongosh, or see "
        "https://www.mongodb.com/docs/mongodb-shell/install/) or pass --mongosh PATH"
    )


def shell_script(database: str, namespace: str | None) -> str:
    """The JavaScript run first: the bot's database, and its collections as variables."""
    prefix = f"{namespace}." if namespace else ""
    names = {
        "users": "user_data",
        "chats": "chat_data",
        "bot_data": "bot_data",
        "conversations": "conversations",
        "callback_data": "callback_data",
        "jobs": "jobs",
    }
    lines = [f"db = db.getSiblingDB({json_util.dumps(database)});"]
    lines += [
        f"var {var} = db.getCollection({json_util.dumps(prefix + kind)});"
        for var, kind in names.items()
    ]
    return " ".join(lines)


@main.command(name="shell", context_settings={"ignore_unknown_options": True})
@click.option("--mongosh", "mongosh_path", metavar="PATH", help="The mongosh executable.")
@click.argument("mongosh_args", nargs=-1, type=click.UNPROCESSED)
@connection_options
def shell_command(
    *,
    mongosh_path: str | None,
    mongosh_args: tuple[str, ...],
    uri: str,
    database: str | None,
    namespace: str | None,
    timeout: float,
) -> None:
    """Open mongosh on the bot's database, its collections as variables.

    `users`, `chats`, `bot_data`, `conversations`, `callback_data` and `jobs` are the bot's
    collections (with the namespace): `users.findOne({_id: 42})`. Arguments after `--` go to
    mongosh, e.g. `mongo-persistence shell -- --quiet --eval 'printjson(users.findOne())'`.
    """
    import subprocess

    target = _target(uri, database, namespace, timeout)
    name = target.database
    if name is None:
        try:
            from pymongo.uri_parser import parse_uri

            name = parse_uri(uri).get("database") or DEFAULT_DATABASE
        except (InvalidURI, ConfigurationError, ValueError) as exc:
            raise CliError(
                target.scrub(f"Invalid MongoDB URI {target.redacted}: {_short(exc)}")
            ) from None
    check_database_name(name)
    executable = find_mongosh(mongosh_path)
    script = shell_script(name, target.namespace)
    extra = list(mongosh_args)
    command = [executable, uri, "--eval", script]
    if "--eval" not in extra and "--file" not in extra and "-f" not in extra:
        command.append("--shell")
    click.echo(f"mongosh on {target.describe(name)}", err=True)
    completed = subprocess.run([*command, *extra], check=False)  # noqa: S603 - the user's own
    if completed.returncode:
        sys.exit(completed.returncode)


if __name__ == "__main__":  # pragma: no cover
    main()
