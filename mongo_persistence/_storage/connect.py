"""Opening a database: a client with deadlines, and the one translation of connection errors.

Both the persistence's store (at start-up) and the ``mongo-persistence`` command tell the user
why MongoDB cannot be used in the same words: unreachable, refused credentials, a bad
connection string. The messages carry the redacted URI only (``where``), never a password, and
never a document (:mod:`mongo_persistence._util.errors` words them).
"""

from __future__ import annotations

from typing import Any, Final

from pymongo import AsyncMongoClient
from pymongo.errors import (
    PyMongoError,
)

from mongo_persistence._errors import PersistenceConnectionError
from mongo_persistence._util.errors import connection_error, short_error
from mongo_persistence._util.uri import redact_text, redact_uri

ANSWER_DEADLINE: Final = 60.0
"""Seconds a client of :func:`open_client` waits at most for any one answer of a server (its
``socketTimeoutMS``; longer when the timeout asked for is longer)."""


def open_client(uri: str, *, timeout: float, appname: str) -> AsyncMongoClient[dict[str, Any]]:
    """A client of :paramref:`uri` whose every wait has a deadline.

    Server selection and connecting wait :paramref:`timeout` seconds at most; any one answer
    :data:`ANSWER_DEADLINE` seconds (or :paramref:`timeout`, when longer). Creating the client does
    not connect.

    Args:
        uri (:obj:`str`): A ``mongodb://`` or ``mongodb+srv://`` connection string.
        timeout (:obj:`float`): Seconds.
        appname (:obj:`str`): Shown in the server's logs.

    Raises:
        :class:`mongo_persistence.PersistenceConnectionError`: The URI is invalid (the message
            shows it redacted).
    """
    timeout_ms = max(1, int(timeout * 1000))
    try:
        return AsyncMongoClient(
            uri,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=max(timeout_ms, int(ANSWER_DEADLINE * 1000)),
            appname=appname,
        )
    except (PyMongoError, ValueError, TypeError) as exc:
        first_line = redact_text(short_error(exc), uri)
        raise PersistenceConnectionError(
            f"Invalid MongoDB URI {redact_uri(uri)}: {first_line}"
        ) from None


async def ping(database: Any, *, where: str = "", timeout: float | None = None) -> None:
    """Checks that the server of :paramref:`database` answers and accepts the credentials.

    Args:
        database: A database object of PyMongo's async API.
        where (:obj:`str`, optional): `` at <redacted URI>`` or ``""``, for the message.
        timeout (:obj:`float`, optional): The client's server selection timeout in seconds.

    Raises:
        :class:`mongo_persistence.PersistenceConnectionError`: It does not (see
            :func:`~mongo_persistence._util.errors.connection_error`).
    """
    try:
        await database.command("ping")
    except PyMongoError as exc:
        raise connection_error(exc, where=where, timeout=timeout) from None
