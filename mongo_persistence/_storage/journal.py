"""The local journal of kept writes, and the recovery-file format (one mechanism, one module).

A write MongoDB did not acknowledge is appended to the journal (one Extended JSON record per line,
fsynced, readable by the bot's user only) before its caller is answered; the journal is compacted
when kept writes are acknowledged, and replayed at the next start before loading (an older record
never overwrites a newer document). A journal left behind is also a recovery file for
``mongo-persistence recover``.
"""

from __future__ import annotations

import datetime as dtm
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

from bson import json_util

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
        "at": entry.at,
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

    Blocking file calls: the store runs them in a worker thread.

    Args:
        directory (:class:`pathlib.Path`): Where it is kept (the temporary directory when that
            one cannot be written).
        database (:obj:`str` | :obj:`None`): The database name (part of the file name).
        namespace (:obj:`str` | :obj:`None`): The namespace (part of the file name).
    """

    __slots__ = ("_stem", "directory", "path", "records", "size")

    def __init__(self, directory: Path, database: str | None, namespace: str | None) -> None:
        self.directory = directory
        self._stem = f"{_PREFIX}{database or '-'}.{namespace or '-'}."
        # one file per persistence object: a restarted persistence replays it
        self.path = directory / f"{self._stem}{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self.records = 0  # records in the file
        self.size = 0  # bytes in the file

    def append(self, lines: list[str]) -> Path:
        """Appends records and fsyncs them; returns the file's path.

        Raises:
            :class:`OSError`: Neither the directory nor the temporary directory can hold it.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            _write_private(self.path, lines, append=True)
        except OSError:
            fallback = Path(tempfile.gettempdir()) / self.path.name
            if fallback == self.path:
                raise
            _LOGGER.error("Cannot write the journal %s; using %s", self.path, fallback)
            if self.path.exists():
                fallback.write_bytes(self.path.read_bytes())
            self.path, self.directory = fallback, fallback.parent
            _write_private(self.path, lines, append=True)
        self.records += len(lines)
        self.size += sum(len(line.encode()) for line in lines)
        return self.path

    def rewrite(self, lines: list[str]) -> None:
        """Replaces the records by these (the file is removed when there are none)."""
        if not lines:
            self.path.unlink(missing_ok=True)
            self.records = self.size = 0
            return
        temporary = self.path.with_suffix(".tmp")
        _write_private(temporary, lines, append=False)
        temporary.replace(self.path)
        self.records = len(lines)
        self.size = sum(len(line.encode()) for line in lines)

    def left_behind(self) -> list[Path]:
        """Journals of earlier runs of this bot (same database and namespace), oldest first."""
        found = [p for p in self.directory.glob(f"{self._stem}*.jsonl") if p != self.path]
        return sorted(found, key=lambda p: p.stat().st_mtime)
