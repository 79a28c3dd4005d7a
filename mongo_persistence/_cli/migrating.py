"""``mongo-persistence migrate``: PTB's PicklePersistence or DictPersistence into MongoDB.

The reading and the writing are :mod:`mongo_persistence._cli.migrate`'s; this module is the
command line around them.
"""

from __future__ import annotations

from pathlib import Path

import click

from mongo_persistence._cli.app import MAX_PROBLEMS_SHOWN, CliError, bar, main, plural, run
from mongo_persistence._cli.migrate import MigrationResult, migrate, migration_store
from mongo_persistence._cli.options import (
    codec_options,
    connection_options,
    load_codecs,
    progress_option,
)
from mongo_persistence._cli.sources import (
    DICT_JSON_FILES,
    KINDS,
    PICKLE_SUFFIXES,
    SourceData,
    dummy_bot,
    load_dict_json,
    load_pickle,
)
from mongo_persistence._cli.target import make_target, open_target
from mongo_persistence._codec.codec import Codec
from mongo_persistence._errors import MigrationAbortedError
from mongo_persistence._storage.store import MongoStore


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
    target = make_target(uri, database, namespace, timeout)
    codecs = load_codecs(codec_refs, pythonpath)
    if pickle_fallback:
        click.echo(
            "Note: --pickle-fallback: values of unsupported types are stored with pickle.",
            err=True,
        )

    async def copy() -> MigrationResult:
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
        async with open_target(target) as opened:
            store = migration_store(opened.database, namespace=target.namespace)
            click.echo(f"Target: {target.describe(opened.name)}")
            return await _migrate(source, store, codec, chunk_size, progress)

    _echo_result(run(target, copy()), dry_run=dry_run)


def _echo_result(result: MigrationResult, *, dry_run: bool) -> None:
    """The problems and the counts of a migration; exit status 1 when any entity failed."""
    _echo_problems(result)
    done = result.total_written
    if dry_run:
        click.echo(f"Dry run: nothing was written. {plural(done, 'entity')} can be migrated.")
    else:
        click.echo(f"Migrated {plural(done, 'entity')}.")
    if result.problems:
        raise CliError(
            f"{plural(len(result.problems), 'entity')} cannot be migrated (listed above)"
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
    """Migrates :paramref:`source` through :paramref:`store` (:obj:`None`: a dry run)."""
    with bar(source.total, "migrating", progress, unit="entity") as shown:
        try:
            return await migrate(
                source, store, codec=codec, chunk_size=chunk_size, progress=shown.update
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
            extra = f"  ({plural(len(source.conversations), 'handler')}: "
            extra += ", ".join(sorted(source.conversations)) + ")"
        click.echo(f"  {kind:<14} {counts[kind]:>8}{extra}")
    click.echo(
        "  jobs: none. PTB's PicklePersistence and DictPersistence never store JobQueue jobs; "
        "schedule them again in the bot (MongoPersistence.store_jobs keeps them from then on)."
    )


def _echo_problems(result: MigrationResult) -> None:
    for problem in result.problems[:MAX_PROBLEMS_SHOWN]:
        click.echo(f"  ! {problem.message}")
    hidden = len(result.problems) - MAX_PROBLEMS_SHOWN
    if hidden > 0:
        click.echo(f"  ! ... and {hidden} more")
