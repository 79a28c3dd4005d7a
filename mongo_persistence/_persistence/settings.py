"""Construction: the options of a :class:`~mongo_persistence.MongoPersistence`.

The options are checked once (:class:`Settings`); the database and store they name are opened
here (:func:`open_store`).
"""

from __future__ import annotations

import datetime as dtm
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import pymongo
from pymongo import AsyncMongoClient
from pymongo.database import Database as SyncDatabase
from pymongo.errors import PyMongoError
from pymongo.write_concern import WriteConcern
from telegram.warnings import PTBUserWarning

from mongo_persistence._errors import PersistenceConnectionError
from mongo_persistence._persistence.migrations import Migrations
from mongo_persistence._persistence.shapes import is_scalar_class
from mongo_persistence._storage.retention import parse_expire_after
from mongo_persistence._storage.store import MongoStore
from mongo_persistence._util.names import check_database_name, check_namespace
from mongo_persistence._util.uri import redact_text, redact_uri

DEFAULT_DATABASE: Final = "ptb_persistence"
"""The database used when neither the URI nor ``database`` names one."""

_BAD_DOCUMENT_CHOICES: Final = ("raise", "skip")


def _uri_opener(
    uri: str, database: str | None, client_kwargs: dict[str, Any] | None
) -> Callable[[], Any]:
    def opener() -> Any:
        client: AsyncMongoClient[Any] = AsyncMongoClient(
            uri, appname="mongo_persistence", **(client_kwargs or {})
        )
        default_db = client.get_default_database(default=DEFAULT_DATABASE).name
        return client[
            database or check_database_name(default_db, where=" in the connection string")
        ]

    return opener


def open_database(
    target: Any, database: str | None, client_kwargs: dict[str, Any] | None
) -> tuple[Any, Callable[[], Any] | None]:
    """The database object of :paramref:`target`, and for a URI how to open it again.

    Raises:
        :class:`TypeError`: :paramref:`target` is neither a URI, an async client nor a database.
        :class:`mongo_persistence.PersistenceConnectionError`: The URI is malformed.
    """
    if isinstance(target, str):
        opener = _uri_opener(target, database, client_kwargs)
        try:
            return opener(), opener
        except (PyMongoError, ValueError, TypeError) as exc:
            if isinstance(exc, ValueError) and "database name" in str(exc):
                raise
            raise PersistenceConnectionError(
                f"Invalid MongoDB connection string {redact_uri(target)}: "
                f"{redact_text(str(exc), target)}"
            ) from None
    # Checked on the class: clients and databases answer any attribute with a sub-object.
    if hasattr(type(target), "get_database"):
        return target.get_database(database or DEFAULT_DATABASE), None
    if hasattr(type(target), "get_collection"):
        return target, None
    raise TypeError(
        "MongoPersistence needs a MongoDB URI, an async client or an async database, "
        f"not {type(target).__name__}"
    )


def check_target(target: object, client_kwargs: dict[str, Any] | None) -> None:
    """Refuses at once what would fail later: a synchronous client, ignored client_kwargs."""
    if isinstance(target, pymongo.MongoClient | SyncDatabase):
        raise TypeError(
            f"MongoPersistence needs an async client: {type(target).__name__} is PyMongo's "
            "synchronous API. Use pymongo.AsyncMongoClient (same arguments) instead."
        )
    if client_kwargs is not None and not isinstance(target, str):
        raise TypeError(
            "client_kwargs are only used when MongoPersistence creates the client from a URI; "
            "pass these options to the client you hand in instead"
        )


def _warn_pickle() -> None:
    warnings.warn(
        "MongoPersistence(pickle_fallback=True): values of unsupported types are stored "
        "with pickle. Anyone who can write to the database can then run code in this bot.",
        PTBUserWarning,
        stacklevel=4,
    )


class Settings:
    """The checked options of one persistence (see :class:`~mongo_persistence.MongoPersistence`).

    Raises:
        :class:`ValueError`: An option breaks its rule (names, kinds, durations, choices).
        :class:`TypeError`: A synchronous client, or ``client_kwargs`` with a client handed in.
    """

    __slots__ = (
        "classes",
        "expire_after",
        "flush_timeout",
        "lazy",
        "migrations",
        "namespace",
        "on_bad_document",
        "recovery_dir",
        "refresh",
        "scalar_kinds",
    )

    def __init__(
        self,
        *,
        classes: dict[str, Any],
        namespace: str | None,
        lazy: bool,
        refresh: bool,
        flush_timeout: float,
        recovery_dir: str | Path | None,
        on_bad_document: str,
        migrations: Mapping[str, Mapping[int, Callable[[Any], Any]]] | None,
        expire_after: Mapping[str, dtm.timedelta | float | str] | None,
    ) -> None:
        if on_bad_document not in _BAD_DOCUMENT_CHOICES:
            raise ValueError(f"on_bad_document must be 'raise' or 'skip', not {on_bad_document!r}")
        self.on_bad_document = on_bad_document
        self.migrations = Migrations(migrations)
        self.expire_after = parse_expire_after(expire_after)
        self.namespace = check_namespace(namespace)
        self.lazy = lazy
        self.refresh = refresh
        self.flush_timeout = flush_timeout
        self.recovery_dir = Path(recovery_dir) if recovery_dir is not None else None
        self.classes = classes
        # Data classes such as int or complex (PTB accepts any class constructible without
        # arguments): the value itself is stored, not its keys or attributes.
        self.scalar_kinds = frozenset(k for k, cls in classes.items() if is_scalar_class(cls))


def open_store(
    settings: Settings,
    target: Any,
    *,
    database: str | None,
    client_kwargs: dict[str, Any] | None,
    write_concern: WriteConcern | None,
    write_timeout: float,
    bulk_write: bool,
    pickle_fallback: bool,
) -> MongoStore:
    """Checks the target, opens its database and makes the persistence's store."""
    if database is not None:
        check_database_name(database)
    check_target(target, client_kwargs)
    if pickle_fallback:
        _warn_pickle()
    db, opener = open_database(target, database, client_kwargs)
    store = MongoStore(
        db,
        namespace=settings.namespace,
        write_concern=write_concern,
        bulk=bulk_write,
        write_timeout=write_timeout,
        journal_dir=settings.recovery_dir or Path.cwd(),
        uri_for_errors=target if isinstance(target, str) else None,
        opener=opener,
    )
    store.ttl_kinds = frozenset(settings.expire_after)
    return store
