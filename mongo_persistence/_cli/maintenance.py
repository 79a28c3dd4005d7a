"""``mongo-persistence upgrade``, ``purge`` and ``shell``: looking after a bot's database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
from bson import json_util
from pymongo.errors import ConfigurationError, InvalidURI
from pymongo.uri_parser import parse_uri

from mongo_persistence._cli.app import MAX_PROBLEMS_SHOWN, CliError, bar, main, plural, run
from mongo_persistence._cli.options import connection_options, progress_option
from mongo_persistence._cli.target import make_target, open_target
from mongo_persistence._codec.upgrade import upgrade_documents
from mongo_persistence._persistence.settings import DEFAULT_DATABASE
from mongo_persistence._storage.retention import parse_age, purge
from mongo_persistence._util.errors import short_error
from mongo_persistence._util.names import check_database_name
from mongo_persistence._util.uri import redact_text, redact_uri


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
    target = make_target(uri, database, namespace, timeout)

    async def upgrade() -> Any:
        async with open_target(target) as opened:
            verb = "Checking" if dry_run else "Upgrading"
            click.echo(f"{verb} the documents of {target.describe(opened.name)}")
            with bar(None, "upgrading", progress) as shown:

                def total(count: int) -> None:
                    shown.total = count
                    shown.refresh()

                return await upgrade_documents(
                    opened.database,
                    target.namespace,
                    dry_run=dry_run,
                    progress=shown.update,
                    on_total=total,
                )

    _echo_upgraded(run(target, upgrade()), dry_run=dry_run)


def _echo_upgraded(result: Any, *, dry_run: bool) -> None:
    """What ``upgrade`` did or would do; exit status 1 when a document cannot be upgraded."""
    for problem in result.failed[:MAX_PROBLEMS_SHOWN]:
        click.echo(f"Cannot upgrade {problem}", err=True)
    found = sum(result.found.values())
    summary = ", ".join(f"{kind} {count}" for kind, count in result.found.items() if count)
    if not found:
        click.echo("Every document is in the current format.")
    elif dry_run:
        click.echo(
            f"{plural(result.upgraded, 'document')} to upgrade ({summary}); nothing written."
        )
    else:
        click.echo(
            f"Upgraded {result.upgraded} of {plural(found, 'document')} ({summary})"
            + (f"; {result.raced} written by the bot meanwhile" if result.raced else "")
            + "."
        )
    if result.failed:
        raise CliError(f"{plural(len(result.failed), 'document')} cannot be upgraded (see above)")


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
    try:
        age = parse_age(older_than)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    target = make_target(uri, database, namespace, timeout)
    chosen = list(kinds or ("users", "chats", "conversations"))

    async def delete() -> dict[str, int]:
        async with open_target(target) as opened:
            click.echo(
                f"Purging {', '.join(chosen)} older than {older_than} in "
                f"{target.describe(opened.name)}"
            )
            return await purge(opened.database, target.namespace, chosen, age, dry_run=dry_run)

    counts = run(target, delete())
    summary = ", ".join(f"{kind} {count}" for kind, count in counts.items())
    total = plural(sum(counts.values()), "document")
    click.echo(
        f"{total} to delete ({summary}); nothing deleted."
        if dry_run
        else f"Deleted {total} ({summary})."
    )


def find_mongosh(explicit: str | None = None) -> str:
    """The mongosh executable to run.

    ``--mongosh``, ``$MONGOSH``, ``mongosh`` on PATH, else the copy ``make test`` installs
    (``.cache/mongosh/node_modules/.bin/mongosh``).
    """
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
    target = make_target(uri, database, namespace, timeout)
    name = target.database or _uri_database(uri)
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


def _uri_database(uri: str) -> str:
    """The database a URI names, else the default one; checked."""
    try:
        name = parse_uri(uri).get("database") or DEFAULT_DATABASE
    except (InvalidURI, ConfigurationError, ValueError) as exc:
        message = f"Invalid MongoDB URI {redact_uri(uri)}: {short_error(exc)}"
        raise CliError(redact_text(message, uri)) from None
    try:
        return check_database_name(name, where=" in the connection string")
    except ValueError as exc:
        raise CliError(str(exc)) from None
