"""Driver and server errors as short texts without data.

The one error shortener, and the one translation of a failed first contact into a
:class:`~mongo_persistence.PersistenceConnectionError`.
"""

from __future__ import annotations

import re
from typing import Final

from pymongo.errors import (
    ConfigurationError,
    ConnectionFailure,
    InvalidURI,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)

from mongo_persistence._errors import PersistenceConnectionError

ERROR_MAX: Final = 300
"""The longest error text (in characters) :func:`short_error` returns."""
_BRACES: Final = re.compile(r"\{.*\}", re.DOTALL)
_NOISE: Final = (", full error:", ", Topology Description:", " (configured timeouts", ", Timeout:")
"""Where the driver's additions start: the document written, the topology dump, the timeouts."""
AUTH_CODES: Final = frozenset({18, 13, 8000})
"""The server's codes of refused credentials or access (AuthenticationFailed, Unauthorized...)."""


def _first_part(text: str) -> str:
    text = text.strip().split("\n", 1)[0]
    for cut in _NOISE:
        text = text.split(cut, 1)[0]
    return text


def short_error(exc: BaseException) -> str:
    """The driver's or the server's message, without anything from a document.

    Only the server's code and message (without the document the driver appends as ``full
    error``, and with every ``{...}`` in it, such as the ``dup key`` of a duplicate key error,
    replaced by ``{...}``), and without the topology dump and timeouts of server selection errors.
    """
    if isinstance(exc, OperationFailure):
        details = exc.details or {}
        message = details.get("errmsg")
        if not isinstance(message, str):
            message = str(exc)
        name = details.get("codeName")
        code = f" (code {exc.code}{f', {name}' if isinstance(name, str) else ''})"
        text = _BRACES.sub("{...}", _first_part(message))[:ERROR_MAX] + code
    else:
        text = _BRACES.sub("{...}", _first_part(str(exc)))[:ERROR_MAX]
    return text or type(exc).__name__


def without_document(exc: BaseException) -> BaseException:
    """The exception itself, or for a server's error a copy holding only its code and message.

    A driver's :class:`~pymongo.errors.OperationFailure` of a write holds the document it was
    writing (``details["op"]``), shown in tracebacks as ``full error``.
    """
    if not isinstance(exc, OperationFailure):
        return exc
    details = exc.details or {}
    message = short_error(exc)
    clean = {"ok": 0, "code": exc.code, "codeName": details.get("codeName"), "errmsg": message}
    try:
        copy = type(exc)(message, exc.code, clean)
    except TypeError:
        copy = OperationFailure(message, exc.code, clean)
    copy.__traceback__ = exc.__traceback__
    return copy


def is_auth_failure(exc: OperationFailure) -> bool:
    """Tells whether the server refused the credentials or the access."""
    return exc.code in AUTH_CODES or "auth" in str(exc).lower()


def connection_error(
    exc: PyMongoError, where: str = "", *, timeout: float | None = None
) -> PersistenceConnectionError:
    """The :class:`~mongo_persistence.PersistenceConnectionError` of a failed first contact.

    The bot's start-up and the ``mongo-persistence`` command say it in these same words.

    Args:
        exc (:class:`pymongo.errors.PyMongoError`): The driver's error.
        where (:obj:`str`, optional): `` at <redacted URI>`` or ``""``.
        timeout (:obj:`float`, optional): The server selection timeout in seconds, when known
            (named in the message of an unreachable server).
    """
    if isinstance(exc, ServerSelectionTimeoutError):
        within = "the server selection timeout" if timeout is None else f"{timeout:g} s"
        message = (
            f"Cannot reach MongoDB{where}: no server answered within {within} ({short_error(exc)})"
        )
    elif isinstance(exc, OperationFailure):
        if is_auth_failure(exc):
            reason = (exc.details or {}).get("errmsg") or short_error(exc)
            message = f"MongoDB{where} refused the credentials or the access: {reason}"
        else:
            message = f"MongoDB{where} failed: {short_error(exc)}"
    elif isinstance(exc, ConnectionFailure):
        message = f"Cannot connect to MongoDB{where}: {short_error(exc)}"
    elif isinstance(exc, InvalidURI | ConfigurationError):
        # e.g. a mongodb+srv:// host without SRV record (resolved at the first operation)
        message = f"Cannot use MongoDB{where}, check the connection settings: {short_error(exc)}"
    else:
        message = f"Cannot use MongoDB{where}: {type(exc).__name__}: {short_error(exc)}"
    return PersistenceConnectionError(message)
