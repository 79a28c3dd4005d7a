"""Migrations of the bot's own data (grammY's ``enhanceStorage({migrations})`` for PTB).

Bot authors change the shape of their data over the life of a bot: a key is renamed, a list
becomes a dict. A migration is a function taking the data of one entity as the previous version
left it and returning it in the shape of its own version. The version reached is stored in the
entity's document (``data_version``); when an entity is loaded (at start-up, lazily, or re-read),
every migration above its stored version runs in order, and the entity is written back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bson import Int64

from mongo_persistence._errors import MigrationError
from mongo_persistence._storage.entity import MIGRATABLE_KINDS

Migration = Callable[[Any], Any]


class Migrations:
    """The migrations of each kind of data, checked, in the order they run.

    Args:
        migrations (Mapping[:obj:`str`, Mapping[:obj:`int`, Callable]]): By kind
            (``"user_data"``, ``"chat_data"``, ``"bot_data"``), the migration functions by the
            version they produce (positive integers).

    Raises:
        :class:`ValueError`: An unknown kind, a version that is not a positive integer, or a
            migration that is not callable.
    """

    __slots__ = ("_by_kind",)

    def __init__(self, migrations: Mapping[str, Mapping[int, Migration]] | None = None) -> None:
        self._by_kind: dict[str, list[tuple[int, Migration]]] = {}
        for kind, steps in (migrations or {}).items():
            if kind not in MIGRATABLE_KINDS:
                raise ValueError(
                    f"migrations: unknown kind {kind!r}; use {', '.join(MIGRATABLE_KINDS)}"
                )
            ordered = []
            for version, function in steps.items():
                if type(version) is not int or version < 1:
                    raise ValueError(
                        f"migrations[{kind!r}]: versions are positive ints, not {version!r}"
                    )
                if not callable(function):
                    raise ValueError(f"migrations[{kind!r}][{version}] is not callable")
                ordered.append((version, function))
            if ordered:
                self._by_kind[kind] = sorted(ordered, key=lambda step: step[0])

    def version(self, kind: str) -> int | None:
        """The version data of this kind has once migrated (:obj:`None`: no migrations)."""
        steps = self._by_kind.get(kind)
        return steps[-1][0] if steps else None

    def stored_version(self, doc: Mapping[str, Any]) -> int:
        """The version a document's data has (0 when it records none, -1 when it is no int)."""
        stored = doc.get("data_version", 0)
        return int(stored) if type(stored) in (int, Int64) and stored >= 0 else -1

    def outdated(self, kind: str, doc: Mapping[str, Any]) -> bool:
        """Tells whether migrations of this document's data are due."""
        target = self.version(kind)
        return target is not None and self.stored_version(doc) < target

    def apply(self, kind: str, doc: Mapping[str, Any], data: Any, cls: type, entity: str) -> Any:
        """Runs the migrations above the document's version on its decoded data, in order.

        Raises:
            :class:`MigrationError`: A migration raised, or returned no instance of
                :paramref:`cls`; or the stored version is not an integer.
        """
        current = self.stored_version(doc)
        if current < 0:
            raise MigrationError(entity, 0, "its 'data_version' is not a non-negative integer")
        for version, function in self._by_kind.get(kind, ()):
            if version <= current:
                continue
            try:
                data = function(data)
            except Exception as exc:  # noqa: BLE001 - the entity is named, the others go on
                raise MigrationError(entity, version, f"raised {type(exc).__name__}") from None
            if not isinstance(data, cls):
                raise MigrationError(
                    entity,
                    version,
                    f"returned a {type(data).__name__}, not a {cls.__name__} (return the data)",
                )
        return data
