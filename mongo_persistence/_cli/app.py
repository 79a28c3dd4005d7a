"""The ``mongo-persistence`` click group, and how a command runs and fails.

Expected errors end with a one-line message and exit status 1 (2 for a wrong command line);
the URI's secrets are scrubbed from every message
(:func:`~mongo_persistence._util.uri.redact_text`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import warnings
from collections.abc import Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Final, TypeVar

import click
from pymongo.errors import PyMongoError, ServerSelectionTimeoutError
from tqdm import tqdm  # type: ignore[import-untyped]

from mongo_persistence._errors import MongoPersistenceError
from mongo_persistence._util.errors import short_error
from mongo_persistence._util.uri import redact_text
from mongo_persistence._version import __version__

if TYPE_CHECKING:
    from mongo_persistence._cli.target import Target

T = TypeVar("T")

MAX_PROBLEMS_SHOWN: Final = 50
"""Problems a command lists at most; then a count of the others."""


class CliError(click.ClickException):
    """An expected error: printed as one line (its first), exit status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(message.strip().split("\n", 1)[0])


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", "-V", prog_name="mongo-persistence")
def main() -> None:
    """Migrate, inspect, back up and recover the MongoDB data of python-telegram-bot bots.

    The connection comes from --uri or the environment variable MONGODB_URI; passwords are never
    printed. Run `mongo-persistence COMMAND --help` for the options of a command.
    """


def run(target: Target, coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs a command's coroutine; turns the errors one expects into one-line messages.

    Raises:
        :class:`CliError`: A driver's or the persistence's error, or a file that cannot be read,
            its message without the URI's secrets.
    """
    try:
        with warnings_as_notes():
            return asyncio.run(coroutine)
    except click.ClickException:
        raise
    except ServerSelectionTimeoutError as exc:
        message = f"Lost the connection to {target.redacted}: {short_error(exc)}"
    except PyMongoError as exc:
        message = f"MongoDB failed: {short_error(exc)}"
    except MongoPersistenceError as exc:
        message = str(exc)
    except OSError as exc:
        message = f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
    except KeyboardInterrupt:
        raise click.Abort() from None
    raise CliError(redact_text(message, target.uri))


@contextlib.contextmanager
def warnings_as_notes() -> Iterator[None]:
    """Shows each warning once, as one line on standard error (no source line, no category)."""
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


def bar(total: int | None, description: str, enabled: bool | None, unit: str = "doc") -> Any:
    """A progress bar on standard error; shown when it is a terminal unless told otherwise."""
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


def plural(count: int, word: str) -> str:
    """``1 document``, ``2 documents``, ``2 entities``."""
    if count == 1:
        return f"{count} {word}"
    return f"{count} entities" if word == "entity" else f"{count} {word}s"
