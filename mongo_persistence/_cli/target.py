"""Where a command reads or writes (server, database, namespace), and opening it.

The database is opened with the storage layer (:mod:`mongo_persistence._storage.connect`: a
client with deadlines, the connection errors in the bot's own words); a namespace's collections
are a :class:`~mongo_persistence._storage.store.MongoStore`. No :class:`MongoPersistence` is
built for that.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from mongo_persistence._cli.app import CliError
from mongo_persistence._persistence.settings import DEFAULT_DATABASE
from mongo_persistence._storage.connect import open_client, ping
from mongo_persistence._storage.store import MongoStore
from mongo_persistence._util.names import check_database_name, check_namespace
from mongo_persistence._util.uri import redact_uri

APPNAME: Final = "mongo-persistence-cli"
"""The client's name in the server's logs."""

READ_BATCH: Final = 1000
"""Documents per batch of a read."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a command reads or writes: server, database and namespace.

    Attributes:
        uri (:obj:`str`): The connection string, as given (never printed as it is).
        database (:obj:`str` | :obj:`None`): The database name; the URI's, else
            :data:`~mongo_persistence._persistence.persistence.DEFAULT_DATABASE`, when
            :obj:`None`.
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

    def describe(self, database: str) -> str:
        """``database 'x', namespace 'y' at mongodb://...`` for messages."""
        namespace = f"namespace {self.namespace!r}" if self.namespace else "no namespace"
        return f"database {database!r}, {namespace} at {self.redacted}"

    def with_namespace(self, database: str, namespace: str | None) -> Target:
        """The same server, another database and namespace."""
        return Target(self.uri, database, namespace, self.timeout)


def make_target(uri: str, database: str | None, namespace: str | None, timeout: float) -> Target:
    """The target of a command, its names checked; ``--namespace ''`` means no namespace.

    Raises:
        :class:`~mongo_persistence._cli.app.CliError`: A name MongoDB or the bot would refuse.
    """
    try:
        if database is not None:
            check_database_name(database)
        return Target(uri, database, check_namespace(namespace or None), timeout)
    except ValueError as exc:
        raise CliError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Opened:
    """A target opened: its database object and name, and its namespace's collections.

    Attributes:
        database: The async database object.
        name (:obj:`str`): The database's name.
        store (:class:`~mongo_persistence._storage.store.MongoStore`): The namespace's
            collections, reads and writes.
    """

    database: Any
    name: str
    store: MongoStore

    async def documents(
        self, kind: str, query: Mapping[str, Any] | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Streams the documents of one of the namespace's collections (``user_data``...).

        Only reads: unlike the bot's start-up, it creates no index, so that a user allowed to
        read only can run the commands that only read.
        """
        cursor = self.store.collection(kind).find(dict(query or {}), batch_size=READ_BATCH)
        try:
            async for doc in cursor:
                yield doc
        finally:
            await cursor.close()


@contextlib.asynccontextmanager
async def open_target(target: Target) -> AsyncIterator[Opened]:
    """Opens a client, checks that the server answers, and yields the target opened.

    Raises:
        :class:`mongo_persistence.PersistenceConnectionError`: The URI is invalid, or the server
            does not answer or refuses access.
        :class:`~mongo_persistence._cli.app.CliError`: The URI names a database MongoDB would
            refuse.
    """
    client = open_client(target.uri, timeout=target.timeout, appname=APPNAME)
    try:
        name = target.database or client.get_default_database(default=DEFAULT_DATABASE).name
        try:
            check_database_name(name, where=" in the connection string")
        except ValueError as exc:
            raise CliError(str(exc)) from None
        database = client.get_database(name)
        await ping(database, where=f" at {target.redacted}", timeout=target.timeout)
        store = MongoStore(database, namespace=target.namespace, uri_for_errors=target.uri)
        yield Opened(database, name, store)
    finally:
        await client.close()
