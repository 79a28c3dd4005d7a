"""One attempt of a read or a write: its deadline, and whether its failure is worth a retry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any, Final, TypeVar

import pymongo
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    OperationFailure,
    PyMongoError,
    WriteConcernError,
)

_T = TypeVar("_T")

_TRANSIENT_CODES: Final = frozenset(
    {6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 50, 64, 112}
)
MIN_ATTEMPT: Final = 0.05
"""Seconds an attempt gets at least, even when the flush deadline has passed."""
OPS_PER_TIMEOUT: Final = 1000
"""Operations of one ``bulk_write`` per :attr:`Attempts.timeout`: a batch of 10k entities gets
ten times the time of a batch of one (a big batch on a slow server must not time out forever)."""
_GRACE: Final = 0.5
"""Seconds beyond an attempt's deadline after which it is abandoned (clients ignoring it)."""


class WriteTimeoutError(ConnectionFailure):
    """A write attempt got no answer before its deadline (a transient error: it is kept)."""


def is_transient(exc: BaseException) -> bool:
    """Tells whether a failed write may succeed when simply tried again."""
    if isinstance(exc, ConnectionFailure | WriteConcernError | WriteTimeoutError):
        return True
    if isinstance(exc, asyncio.CancelledError | asyncio.TimeoutError):
        return True
    if isinstance(exc, PyMongoError) and exc.has_error_label("RetryableWriteError"):
        return True
    if isinstance(exc, OperationFailure) and not isinstance(exc, BulkWriteError):
        return exc.code in _TRANSIENT_CODES
    return False


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Retrieves the outcome of an attempt given up at its deadline."""
    if not task.cancelled():
        task.exception()


class Attempts:
    """The deadline of every attempt: :attr:`timeout`, or the earlier :attr:`deadline`.

    Args:
        timeout (:obj:`float`): Seconds every attempt may take (server selection included).

    Attributes:
        timeout (:obj:`float`): Seconds every attempt may take.
        deadline (:obj:`float` | :obj:`None`): While a flush runs: every attempt ends by this
            ``time.monotonic()`` value.
    """

    __slots__ = ("deadline", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.deadline: float | None = None

    async def run(self, operation: Awaitable[_T], *, size: int = 1) -> _T:
        """Runs one attempt within its deadline.

        The attempt of a batch of :paramref:`size` operations may take :attr:`timeout` for every
        :data:`OPS_PER_TIMEOUT` of them (at least :attr:`timeout`), never past :attr:`deadline`.

        PyMongo's timeout bounds server selection and every socket read; the outer bound also
        holds for clients that ignore it (motor runs PyMongo in threads). An attempt past the
        outer bound is not cancelled (cancelling the driver mid-operation breaks its locks): it
        ends on its own, and its data is kept for a retry in any case.

        Raises:
            :class:`WriteTimeoutError`: No answer in time.
        """
        limit = self.timeout * max(1, -(-size // OPS_PER_TIMEOUT))
        if self.deadline is not None:
            limit = min(limit, max(self.deadline - time.monotonic(), MIN_ATTEMPT))
        with pymongo.timeout(limit):
            attempt = asyncio.ensure_future(operation)
        attempt.add_done_callback(_retrieve)  # also when this waiter is cancelled
        done, _ = await asyncio.wait({attempt}, timeout=limit + _GRACE)
        if not done:
            raise WriteTimeoutError(f"no answer within {limit:g} s")
        return attempt.result()
