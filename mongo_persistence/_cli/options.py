"""The options shared by the commands, and loading the bot's own codecs."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from mongo_persistence._codec.codec import Codec, TypeCodec
from mongo_persistence._persistence.settings import DEFAULT_DATABASE
from mongo_persistence._storage.connect import ANSWER_DEADLINE

DEFAULT_URI: Final = "mongodb://localhost:27017"
DEFAULT_TIMEOUT: Final = 5.0

F = TypeVar("F", bound=Callable[..., Any])


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
            help="How long to wait for a server to answer at first (any one answer after that: "
            f"at most {ANSWER_DEADLINE:g} s, or SECONDS when longer).",
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


def load_codecs(refs: Iterable[str], paths: Iterable[Path]) -> list[TypeCodec[Any]]:
    """The codecs named by ``--codec MODULE:NAME`` (a codec or a list of them each).

    Raises:
        :class:`click.BadParameter`: A name that cannot be imported or is no
            :class:`~mongo_persistence.TypeCodec`.
    """
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


def load_codec(refs: Iterable[str], paths: Iterable[Path], *, pickle_fallback: bool) -> Codec:
    """The codec of ``--codec``, ``--pythonpath`` and ``--pickle-fallback``: the bot's own."""
    return Codec(load_codecs(refs, paths), pickle_fallback=pickle_fallback)
