"""``mongo-persistence export``, ``import`` and ``recover``: backups and recovery files."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TextIO, TypeVar

import click

from mongo_persistence._cli.app import CliError, bar, main, plural, run, warnings_as_notes
from mongo_persistence._cli.options import connection_options, progress_option
from mongo_persistence._cli.recovery import check_recovery_file
from mongo_persistence._cli.target import make_target, open_target
from mongo_persistence._cli.transfer import export_namespace, import_records, read_export
from mongo_persistence._errors import ExportFormatError
from mongo_persistence._storage.entity import COLLECTIONS
from mongo_persistence._storage.store import MongoStore

T = TypeVar("T")


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
    target = make_target(uri, database, namespace, timeout)
    to_stdout = output == "-"

    async def export() -> dict[str, int]:
        async with open_target(target) as opened:
            if to_stdout:
                return await _export(opened.store, sys.stdout, opened.name, progress)
            path = Path(output)
            part = path.with_name(f".{path.name}.part")
            try:
                with part.open("w", encoding="utf-8") as handle:
                    counts = await _export(opened.store, handle, opened.name, progress)
                os.replace(part, path)
            finally:
                part.unlink(missing_ok=True)
            return counts

    counts = run(target, export())
    destination = "standard output" if to_stdout else output
    click.echo(f"Exported {_counted(counts)} to {destination}.", err=to_stdout)


def _counted(counts: dict[str, int]) -> str:
    """``3 documents (user_data 2, chat_data 1, ...)``."""
    summary = ", ".join(f"{kind} {count}" for kind, count in counts.items())
    return f"{plural(sum(counts.values()), 'document')} ({summary})"


async def _export(
    store: MongoStore, handle: TextIO, database: str, progress: bool | None
) -> dict[str, int]:
    total = 0
    for kind in COLLECTIONS:
        total += await store.collection(kind).count_documents({})
    with bar(total, "exporting", progress) as shown:
        return await export_namespace(store, handle, database=database, progress=shown.update)


class _FileLines:
    """The lines of a file, read anew each time it is iterated."""

    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        self.path = path

    def __iter__(self) -> Iterator[str]:
        with self.path.open(encoding="utf-8") as handle:
            yield from handle


def _read(file: str, what: str, check: Callable[[Iterable[str], str], T]) -> tuple[T, str]:
    """``check(lines, where)`` of a file (or standard input); its errors as one-line messages.

    Args:
        file (:obj:`str`): The path, or ``-``.
        what (:obj:`str`): ``a mongo-persistence export``... for the message of a binary file.
        check: Reads the lines (perhaps several times), raises :class:`ExportFormatError`.
    """
    if file == "-":
        lines: Iterable[str] = list(sys.stdin)
        where = "standard input"
    else:
        path = Path(file)
        if not path.is_file():
            raise CliError(f"No such file: {file}" if not path.exists() else f"Not a file: {file}")
        lines, where = _FileLines(path), file
    try:
        with warnings_as_notes():
            return check(lines, where), where
    except ExportFormatError as exc:
        raise CliError(str(exc)) from None
    except UnicodeDecodeError:
        raise CliError(f"{where} is not {what} (not UTF-8 text)") from None
    except OSError as exc:
        raise CliError(f"Cannot read {where}: {exc.strerror or exc}") from None


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
    (header, records), where = _read(
        file, "a mongo-persistence export", lambda lines, where: read_export(lines, where=where)
    )
    target = make_target(
        uri, database, header.namespace if namespace is None else namespace, timeout
    )

    async def load() -> dict[str, int]:
        async with open_target(target) as opened:
            click.echo(
                f"Importing {plural(header.total, 'document')} from {where} "
                f"(exported from database {header.database!r}, "
                + (f"namespace {header.namespace!r}" if header.namespace else "no namespace")
                + f") into {target.describe(opened.name)}"
            )
            with bar(header.total, "importing", progress) as shown:
                return await import_records(opened.store, records, progress=shown.update)

    click.echo(f"Imported {_counted(run(target, load()))}.")


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
    info, where = _read(
        str(file), "a recovery file", lambda lines, where: check_recovery_file(lines, where=where)
    )
    if namespace is None and info.names_namespace:
        namespace = info.namespace
    target = make_target(uri, database or info.database, namespace, timeout)

    async def recover() -> tuple[int, int]:
        async with open_target(target) as opened:
            click.echo(
                f"Recovering {plural(info.total, 'entity')} ({info.ops['replace']} to write, "
                f"{info.ops['merge']} to merge, {info.ops['delete']} to delete) from {where} "
                f"into {target.describe(opened.name)}"
            )
            try:
                return await opened.store.restore_recovery_file(file)
            except ValueError as exc:  # the file belongs to another namespace
                raise CliError(str(exc)) from None

    restored, skipped = run(target, recover())
    click.echo(f"Restored {restored}, skipped {skipped} (the database holds a newer version).")
