"""The local journal of kept writes, and the recovery-file format (one mechanism, one module).

A write MongoDB did not acknowledge is appended to the journal (one Extended JSON record per line,
fsynced, readable by the bot's user only) before its caller is answered; the journal is compacted
when kept writes are acknowledged, and replayed at the next start before loading (an older record
never overwrites a newer document). While its process lives, a journal is locked
(:mod:`~mongo_persistence._storage.journal_lock`): only a journal left behind is replayed. A
journal left behind is also a recovery file for ``mongo-persistence recover``.
"""

from __future__ import annotations

import datetime as dtm
import errno
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

from bson import json_util

from mongo_persistence._storage.journal_lock import JournalLock
from mongo_persistence._storage.tracker import Entry, Plan
from mongo_persistence._util.logs import get_logger

_LOGGER = get_logger(__name__)
_PREFIX: Final = "mongo_persistence-journal-"

RECORD_KEYS: Final = frozenset({"collection", "_id", "op", "at", "document"})
"""The keys every record has (``database``, ``namespace``, ``entity`` and ``unset`` may follow)."""

OPS: Final = ("replace", "merge", "delete")
"""The operations of records (see :func:`record_line`)."""


def record_line(entry: Entry, plan: Plan, *, database: str | None, namespace: str | None) -> str:
    """One journal (recovery file) record: what to write for ``entry``, as Extended JSON.

    ``op`` is ``"delete"``, ``"replace"`` (the whole document) or ``"merge"`` (the keys of the
    document's ``data`` set onto the stored document, the keys of ``unset`` removed from it;
    inserted whole when there is none).
    """
    if entry.data is None:
        op = "delete"
    elif plan.kind in ("diff", "merge"):
        op = "merge"
    else:
        op = "replace"
    record: dict[str, Any] = {
        "database": database,
        "namespace": namespace,
        "collection": entry.collection,
        "_id": entry.doc_id,
        "entity": entry.entity,
        "op": op,
        "at": entry.handed_at,
        "document": None if entry.data is None else entry.replacement(),
    }
    if op == "merge" and plan.unset_keys:
        record["unset"] = list(plan.unset_keys)
    return json_util.dumps(record, json_options=json_util.CANONICAL_JSON_OPTIONS) + "\n"


def parse_record(line: str) -> Any:
    """One line of a journal or recovery file, parsed (not checked: see :func:`record_problem`).

    Raises:
        :class:`ValueError`: The line is not Extended JSON.
    """
    try:
        return json_util.loads(line, json_options=json_util.CANONICAL_JSON_OPTIONS)
    except (TypeError, KeyError, OverflowError) as exc:
        raise ValueError(str(exc)) from None


def parse_records(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The records of a journal or recovery file, with their line numbers (blank lines skipped)."""
    for number, line in enumerate(lines, 1):
        if line.strip():
            yield number, parse_record(line)


def record_problem(record: Any) -> str | None:
    """What makes :paramref:`record` (a parsed line) no record of this format, or :obj:`None`.

    The collection is not checked here: the storage layer knows its collections.
    """
    if not isinstance(record, dict) or not set(record) >= RECORD_KEYS:
        keys = ", ".join(sorted(RECORD_KEYS))
        return f"not a recovery file record (expected the keys {keys})"
    op, document = record["op"], record["document"]
    if op not in OPS:
        return f"unknown op {op!r}"
    if op != "delete" and (not isinstance(document, dict) or document.get("_id") != record["_id"]):
        return "the document does not match _id"
    if not isinstance(record["at"], dtm.datetime):
        return "'at' is not a date"
    return None


def _write_private(path: Path, lines: Iterable[str], *, append: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    # Only the bot's user may read it: it holds the bot's data.
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.writelines(lines)
        handle.flush()
        os.fsync(handle.fileno())


class Journal:
    """The journal file of one persistence (one database and namespace, one process).

    Its lock (:class:`~mongo_persistence._storage.journal_lock.JournalLock`) is held from the first
    record written until the file is removed (no kept writes left) or :meth:`release` is called.
    Blocking file calls: the store runs them in a worker thread.

    Args:
        directory (:class:`pathlib.Path`): Where it is kept (the temporary directory when that
            one cannot be written).
        database (:obj:`str` | :obj:`None`): The database name (part of the file name).
        namespace (:obj:`str` | :obj:`None`): The namespace (part of the file name).
    """

    __slots__ = ("_lock", "_stem", "directory", "path", "records", "size")

    def __init__(self, directory: Path, database: str | None, namespace: str | None) -> None:
        self.directory = directory
        self._stem = f"{_PREFIX}{database or '-'}.{namespace or '-'}."
        self.path = self._new_path()
        self._lock = JournalLock(self.path)
        self.records = 0  # records in the file
        self.size = 0  # bytes in the file

    def _new_path(self) -> Path:
        # one file per persistence object: a restarted persistence replays it
        return self.directory / f"{self._stem}{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"

    def _hold(self) -> None:
        """Takes the file's lock before it is written (see :meth:`release`).

        Raises:
            :class:`OSError`: The lock file cannot be created.
        """
        if self._lock.acquire():
            return
        # Released and now replayed by another process: the kept writes go to a new file.
        _LOGGER.info(
            "The journal %s is replayed by another process; using a new one", self.path.name
        )
        self.path, self.records, self.size = self._new_path(), 0, 0
        self._lock = JournalLock(self.path)
        self._lock.acquire()

    def release(self) -> None:
        """Releases the lock: the file, if any, is left behind for the next start to replay."""
        self._lock.release()

    def append(self, lines: list[str]) -> Path:
        """Appends records and fsyncs them; returns the file's path.

        Raises:
            :class:`OSError`: Neither the directory nor the temporary directory can hold it.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._hold()
            _write_private(self.path, lines, append=True)
        except OSError as exc:
            self._fall_back(exc)
            _write_private(self.path, lines, append=True)
        self.records += len(lines)
        self.size += sum(len(line.encode()) for line in lines)
        return self.path

    def _fall_back(self, error: OSError) -> None:
        """Moves the journal to the temporary directory (the directory cannot be written)."""
        fallback = Path(tempfile.gettempdir()) / self.path.name
        if fallback == self.path:
            raise error
        _LOGGER.error("Cannot write the journal %s; using %s", self.path, fallback)
        self._lock.release()
        self._lock = JournalLock(fallback)
        if not self._lock.acquire():
            raise OSError(errno.EAGAIN, "the journal's lock is held", str(fallback))
        if self.path.exists():
            fallback.write_bytes(self.path.read_bytes())
        self.path, self.directory = fallback, fallback.parent

    def rewrite(self, lines: list[str]) -> None:
        """Replaces the records by these (the file and its lock are removed when there are none)."""
        if not lines:
            if self._lock.held or self.path.exists():
                self._hold()  # not while another process replays it
                self.path.unlink(missing_ok=True)
                self._lock.release()
            self.records = self.size = 0
            return
        self._hold()
        temporary = self.path.with_suffix(".tmp")
        _write_private(temporary, lines, append=False)
        temporary.replace(self.path)
        self.records = len(lines)
        self.size = sum(len(line.encode()) for line in lines)

    def left_behind(self) -> list[Path]:
        """Journals of this bot (same database and namespace) but another persistence, oldest first.

        Some may belong to a process still running: see :meth:`take`.
        """
        found = []
        for path in self.directory.glob(f"{self._stem}*.jsonl"):
            try:
                found.append((path.stat().st_mtime, path))
            except FileNotFoundError:  # removed by its process or by another start meanwhile
                continue
        return [path for _, path in sorted(found) if path != self.path]

    @staticmethod
    def take(path: Path) -> JournalLock | None:
        """The lock of a journal found by :meth:`left_behind`, held, or :obj:`None`.

        :obj:`None`: the journal is still its process's own, or was removed meanwhile (replayed by
        another start, or emptied by its process).
        """
        lock = JournalLock(path)
        if not lock.acquire():
            return None
        if not path.exists():
            lock.release()
            return None
        return lock
