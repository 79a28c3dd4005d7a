"""What is not saved yet: :class:`Health`, and the outage log.

An outage (writes not acknowledged) is logged once when it starts and once when it ends.
"""

from __future__ import annotations

import datetime as dtm
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mongo_persistence._storage.entry import now_utc
from mongo_persistence._util.errors import short_error
from mongo_persistence._util.logs import get_logger

_LOGGER = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Health:
    """What a persistence has not saved in MongoDB yet (:meth:`MongoPersistence.health`).

    Attributes:
        pending (:obj:`int`): Entities whose write failed, kept and retried with the next writes.
        unsaved (:obj:`int`): Entities not acknowledged yet: pending, queued or in flight.
        oldest_unsaved_age (:obj:`float` | :obj:`None`): Seconds since the oldest unsaved change
            was handed over, or :obj:`None` when everything is saved.
        journal_path (:class:`pathlib.Path` | :obj:`None`): The journal holding the kept writes,
            or :obj:`None` when it is empty.
        journal_records (:obj:`int`): Records in the journal (compacted once MongoDB answers).
        journal_bytes (:obj:`int`): Its size in bytes.
        last_error (:obj:`str` | :obj:`None`): The last write error of the current outage
            (without any data), or :obj:`None`.
        outage_since (:class:`datetime.datetime` | :obj:`None`): When MongoDB stopped
            acknowledging writes (UTC), or :obj:`None`.
    """

    pending: int
    unsaved: int
    oldest_unsaved_age: float | None
    journal_path: Path | None
    journal_records: int
    journal_bytes: int
    last_error: str | None
    outage_since: dtm.datetime | None

    @property
    def ok(self) -> bool:
        """Whether MongoDB acknowledges writes and nothing waits for a retry."""
        return self.pending == 0 and self.outage_since is None


class OutageLog:
    """The current outage (writes not acknowledged), logged once when it starts and ends.

    Attributes:
        last_error (:obj:`str` | :obj:`None`): The last write error (type and short message).
    """

    __slots__ = ("_kept", "_started", "last_error")

    def __init__(self) -> None:
        self.last_error: str | None = None
        self._started: float | None = None
        self._kept: set[tuple[str, Any]] = set()

    @property
    def active(self) -> bool:
        """Whether writes are not acknowledged at the moment."""
        return self._started is not None

    @property
    def since(self) -> dtm.datetime | None:
        """When the outage started (UTC, wall clock), or :obj:`None`."""
        if self._started is None:
            return None
        return now_utc() - dtm.timedelta(seconds=time.monotonic() - self._started)

    def failed(self, error: BaseException) -> None:
        """Records a failed attempt's error (without any data)."""
        self.last_error = f"{type(error).__name__}: {short_error(error)}"

    def kept(self, keys: list[tuple[str, Any]], error: BaseException | None, where: Path) -> None:
        """Writes of these documents were kept in the journal :paramref:`where`."""
        if self._started is None:
            self._started = time.monotonic()
            _LOGGER.warning(
                "MongoDB does not acknowledge writes (%s): they are kept in the journal %s and "
                "retried with the next writes.",
                self.last_error if error is None else short_error(error),
                where,
            )
        self._kept.update(keys)

    def ended(self) -> bool:
        """Every kept write is saved: logs the end of the outage; tells whether there was one."""
        if self._started is None:
            return False
        _LOGGER.warning(
            "MongoDB acknowledges writes again after %.1f s: the writes of %d entities kept "
            "during the outage are saved.",
            time.monotonic() - self._started,
            len(self._kept),
        )
        self._started = None
        self._kept = set()
        self.last_error = None
        return True
