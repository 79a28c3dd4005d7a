"""Counts MongoDB round trips with PyMongo's command monitoring (for the bench and the tests)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pymongo import monitoring

WRITE_COMMANDS = frozenset({"insert", "update", "delete", "findAndModify"})
READ_COMMANDS = frozenset({"find", "getMore", "aggregate", "count", "distinct"})

Key = tuple[str, "str | None"]


def _collection_of(name: str, command: Any) -> str | None:
    value = command.get("collection" if name == "getMore" else name)
    return value if isinstance(value, str) else None


class CommandLog(monitoring.CommandListener):
    """Records every command a client sends (pass it in ``event_listeners=[...]``).

    Args:
        keep_documents: Keep the command documents (the tests inspect them); the bench only counts.
    """

    def __init__(self, *, keep_documents: bool = True) -> None:
        self.keep_documents = keep_documents
        self._events: list[tuple[str, str | None, Any]] = []
        self._ok: Counter[Key] = Counter()
        self._errors: Counter[Key] = Counter()
        self._in_flight: dict[int, Key] = {}

    # ------------------------------------------------------------ listener API
    def started(self, event: monitoring.CommandStartedEvent) -> None:
        key = (event.command_name, _collection_of(event.command_name, event.command))
        self._in_flight[event.request_id] = key
        document = dict(event.command) if self.keep_documents else None
        self._events.append((key[0], key[1], document))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._ok[self._in_flight.pop(event.request_id, (event.command_name, None))] += 1

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._errors[self._in_flight.pop(event.request_id, (event.command_name, None))] += 1

    # ------------------------------------------------------------ queries
    def clear(self) -> None:
        """Forgets everything recorded so far."""
        self._events.clear()
        self._ok.clear()
        self._errors.clear()

    def counts(self, names: frozenset[str] | None = None) -> Counter[Key]:
        """Commands started, by (command name, collection)."""
        return Counter(
            (name, coll) for name, coll, _ in self._events if names is None or name in names
        )

    def writes(self) -> dict[Key, int]:
        """Write commands started, by (command name, collection)."""
        return dict(self.counts(WRITE_COMMANDS))

    def reads(self) -> dict[Key, int]:
        """Read commands started, by (command name, collection)."""
        return dict(self.counts(READ_COMMANDS))

    def total(self, names: frozenset[str] | None = None) -> int:
        """How many commands were started (of these names; all of them by default)."""
        return sum(self.counts(names).values())

    def names(self) -> list[str]:
        """The names of the commands started, in order."""
        return [name for name, _, _ in self._events]

    def documents(self, name: str, collection: str | None = None) -> list[Any]:
        """The command documents of the commands started with this name (and collection)."""
        return [
            doc
            for n, coll, doc in self._events
            if n == name and (collection is None or coll == collection)
        ]

    def acknowledged(self, name: str, collection: str | None) -> int:
        """How many replies to this command (on this collection) arrived without error."""
        return self._ok[(name, collection)]
