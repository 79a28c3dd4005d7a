"""The lock that makes a journal its process's own: a lock file beside it, held with ``flock``.

The process that writes a journal holds an exclusive advisory lock on ``<journal>.lock`` while the
journal exists (the OS releases it when the process dies, however it dies); a starting persistence
replays only the journals whose lock it can take, and holds it while it replays them. Blocking
file calls: run them in a worker thread.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Final

from mongo_persistence._util.logs import get_logger

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock, every journal found is taken as
    # left behind (the behaviour before journals were locked): one bot per namespace at a time.
    fcntl = None  # type: ignore[assignment]

_LOGGER = get_logger(__name__)
_TRIES: Final = 3
"""Attempts to lock the file at the path (its last holder may remove it in between)."""
_BUSY: Final = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES})


def lock_path(journal: Path) -> Path:
    """The lock file of a journal: ``<journal>.lock`` (no ``.jsonl`` name: never replayed)."""
    return journal.with_name(f"{journal.name}.lock")


def _same_file(fd: int, path: Path) -> bool:
    """Tells whether ``fd`` is still the file at ``path`` (not removed nor replaced since)."""
    try:
        at_path = path.stat()
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (opened.st_dev, opened.st_ino) == (at_path.st_dev, at_path.st_ino)


class JournalLock:
    """The exclusive lock on one journal (not reentrant across objects, even in one process).

    Args:
        journal (:class:`pathlib.Path`): The journal it guards.
    """

    __slots__ = ("_fd", "held", "path")

    def __init__(self, journal: Path) -> None:
        self.path = lock_path(journal)
        self._fd: int | None = None
        self.held = False

    def acquire(self) -> bool:
        """Takes the lock without waiting; tells whether this object holds it now.

        Raises:
            :class:`OSError`: The lock file cannot be created (the directory cannot be written).
        """
        if self.held:
            return True
        if fcntl is None:  # pragma: no cover - Windows (see the import)
            self.held = True
            return True
        for _ in range(_TRIES):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            if not self._lock(fd):
                os.close(fd)
                return False
            if self.held:  # locked, or no locks on this file system
                self._fd = fd
                return True
            os.close(fd)  # removed by its last holder in between: lock the new file
        return False

    def _lock(self, fd: int) -> bool:
        """Locks ``fd``; False when another process holds it. Sets :attr:`held` on success."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in _BUSY:
                return False
            # a file system without locks (some network mounts): as before journals were locked
            _LOGGER.warning("Cannot lock %s (%s); it is not locked", self.path.name, exc.strerror)
            self.held = True
            return True
        self.held = _same_file(fd, self.path)
        return True

    def release(self) -> None:
        """Removes the lock file, then releases the lock.

        Removing it while it is locked is safe: a process that opened it before takes the lock of
        a removed file, which :meth:`acquire` tells from the file at the path.
        """
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None
        self.held = False
