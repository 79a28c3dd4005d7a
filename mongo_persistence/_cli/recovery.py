"""Checking a recovery file (a journal left behind) before ``mongo-persistence recover``.

The format is written and parsed by :mod:`mongo_persistence._storage.journal`; this module only
counts a file's records and finds the database and namespace they name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mongo_persistence._errors import ExportFormatError
from mongo_persistence._storage.journal import OPS, parse_record
from mongo_persistence._storage.restore import record_error


@dataclass(slots=True)
class RecoveryFileInfo:
    """What a recovery file holds.

    Attributes:
        ops (dict[:obj:`str`, :obj:`int`]): Records per operation (``replace``, ``merge``,
            ``delete``).
        database (:obj:`str` | :obj:`None`): The bot's database, when the file names it.
        namespace (:obj:`str` | :obj:`None`): The bot's namespace, when the file names it.
        names_namespace (:obj:`bool`): Whether the file names the namespace (files of older
            versions do not).
    """

    ops: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OPS, 0))
    database: str | None = None
    namespace: str | None = None
    names_namespace: bool = False

    @property
    def total(self) -> int:
        """The number of records."""
        return sum(self.ops.values())


def _record(line: str, where: str) -> dict[str, Any]:
    """One line of the file, parsed and checked by the journal's rules."""
    if not line.lstrip().startswith("{"):
        raise ExportFormatError(f"{where}: not a recovery file record (not JSON)")
    try:
        record = parse_record(line)
    except ValueError as exc:
        raise ExportFormatError(f"{where}: not Extended JSON ({exc})") from None
    problem = record_error(record)
    if problem is not None:
        raise ExportFormatError(f"{where}: {problem}")
    return dict(record)


def check_recovery_file(lines: Iterable[str], *, where: str = "the file") -> RecoveryFileInfo:
    """Checks that every line is a record of a recovery file written by ``MongoPersistence.flush``.

    Args:
        lines (Iterable[:obj:`str`]): The lines of the file.
        where (:obj:`str`, optional): Names the file in error messages.

    Returns:
        :class:`RecoveryFileInfo`: Its counts, database and namespace.

    Raises:
        :class:`mongo_persistence.ExportFormatError`: It is not a recovery file, or its records
            name several databases or namespaces.
    """
    info = RecoveryFileInfo()
    databases: set[Any] = set()
    namespaces: set[Any] = set()
    for number, line in enumerate(lines, start=1):
        if line.strip():
            record = _record(line, f"{where}, line {number}")
            if "database" in record:
                databases.add(record["database"])
            if "namespace" in record:
                namespaces.add(record["namespace"])
            info.ops[record["op"]] += 1
    if not info.total:
        raise ExportFormatError(f"{where} holds no records: not a recovery file")
    if len(databases) > 1 or len(namespaces) > 1:
        raise ExportFormatError(f"{where} mixes records of several databases or namespaces")
    if databases:
        info.database = _name(databases.pop())
    if namespaces:
        info.names_namespace = True
        info.namespace = _name(namespaces.pop())
    return info


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
