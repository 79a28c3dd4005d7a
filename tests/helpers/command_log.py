"""The MongoDB commands a client sends, from PyMongo's command monitoring (for the tests).

``bench/`` has a counter of its own: the tests do not depend on the bench tool.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pymongo import monitoring

WRITE_COMMANDS = frozenset({"insert", "update", "delete", "findAndModify"})
READ_COMMANDS = frozenset({"find", "getMore", "aggregate", "count", "distinct"})

Key = tuple[str, "str | None"]
"""(command name, collection)."""


def _collection_of(name: str, command: Any) -> str | None:
    if name == "getMore":
        return command.get("collection")
    value = command.get(name)
    return value if isinstance(value, str) else None


class CommandLog(monitoring.CommandListener):
    """Records every command a client sends, with its document (``event_listeners=[log]``)."""

    def __init__(self) -> None:
        self._events: list[tuple[str, str | None, dict[str, Any]]] = []
        self._ok: Counter[Key] = Counter()
        self._in_flight: dict[int, Key] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        key = (event.command_name, _collection_of(event.command_name, event.command))
        self._in_flight[event.request_id] = key
        self._events.append((*key, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._ok[self._in_flight.pop(event.request_id, (event.command_name, None))] += 1

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._in_flight.pop(event.request_id, None)

    def clear(self) -> None:
        """Forgets everything recorded so far."""
        self._events.clear()
        self._ok.clear()

    def counts(self, names: frozenset[str] | None = None) -> Counter[Key]:
        """Commands started (of these names; all by default), by (name, collection)."""
        return Counter((n, c) for n, c, _ in self._events if names is None or n in names)

    def writes(self) -> dict[Key, int]:
        """Write commands started, by (name, collection)."""
        return dict(self.counts(WRITE_COMMANDS))

    def reads(self) -> dict[Key, int]:
        """Read commands started, by (name, collection)."""
        return dict(self.counts(READ_COMMANDS))

    def total(self, names: frozenset[str] | None = None) -> int:
        """How many commands were started (of these names; all by default)."""
        return sum(self.counts(names).values())

    def documents(self, name: str, collection: str | None = None) -> list[dict[str, Any]]:
        """The documents of the commands started with this name (and collection)."""
        return [d for n, c, d in self._events if n == name and collection in (None, c)]

    def acknowledged(self, name: str, collection: str | None) -> int:
        """How many replies to this command (on this collection) arrived without error."""
        return self._ok[(name, collection)]
