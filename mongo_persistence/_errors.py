"""The exceptions raised by :mod:`mongo_persistence`.

Every exception of the package is defined here. Each one pickles and unpickles (as
:mod:`telegram.error`'s do), so that it survives process pools and error reporters: the copy is
of the same class, with the same message and attributes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mongo_persistence._cli.migrate import MigrationResult

__all__ = [
    "BadDocumentError",
    "DecodingError",
    "DocumentTooLargeError",
    "EncodingError",
    "ExportFormatError",
    "MigrationAbortedError",
    "MigrationError",
    "MongoPersistenceError",
    "PersistenceConnectionError",
    "PersistenceWriteError",
    "SourceError",
    "UnstorableJobError",
]


class MongoPersistenceError(Exception):
    """Base class of every error raised by :mod:`mongo_persistence`."""

    __slots__ = ()

    def _state(self) -> dict[str, Any] | None:
        # What was set on the instance besides the constructor's arguments (``__notes__``...).
        return self.__dict__ or None

    def __reduce__(self) -> tuple[Any, ...]:
        """Defines how to serialize the exception for pickle.

        .. seealso::
               :py:meth:`object.__reduce__`, :mod:`pickle`.

        Returns:
            :obj:`tuple`
        """
        return self.__class__, self.args, self._state()


class EncodingError(MongoPersistenceError, TypeError):
    """A value handed to the persistence cannot be stored losslessly.

    Nothing of the entity is written; other entities of the same persistence run are not affected.

    Args:
        entity (:obj:`str`): The entity being written, e.g. ``user_data[42]``.
        path (:obj:`str`): The path to the offending value inside the entity, e.g. ``['cart'][2]``.
        value_type (:obj:`str`): The qualified name of the offending value's type.
        reason (:obj:`str`): What is wrong with it.

    Attributes:
        entity (:obj:`str`): The entity being written.
        path (:obj:`str`): The path to the offending value (empty for the entity itself).
        value_type (:obj:`str`): The qualified name of the offending value's type.
        reason (:obj:`str`): What is wrong with it.
    """

    __slots__ = ("entity", "path", "reason", "value_type")

    def __init__(self, entity: str, path: str, value_type: str, reason: str) -> None:
        self.entity = entity
        self.path = path
        self.value_type = value_type
        self.reason = reason
        super().__init__(f"Cannot store {entity}{path}: {reason} (value of type {value_type!r})")

    def __reduce__(self) -> tuple[Any, ...]:
        args = (self.entity, self.path, self.value_type, self.reason)
        return self.__class__, args, self._state()


class DocumentTooLargeError(MongoPersistenceError, ValueError):
    """The encoded document of an entity exceeds MongoDB's size limit (16 MiB).

    Args:
        entity (:obj:`str`): The entity being written.
        size (:obj:`int`): Its encoded size in bytes.
        limit (:obj:`int`): The server's limit in bytes.

    Attributes:
        entity (:obj:`str`): The entity being written.
        size (:obj:`int`): Its encoded size in bytes.
        limit (:obj:`int`): The server's limit in bytes.
    """

    __slots__ = ("entity", "limit", "size")

    def __init__(self, entity: str, size: int, limit: int) -> None:
        self.entity = entity
        self.size = size
        self.limit = limit
        super().__init__(
            f"Cannot store {entity}: its document would be {size} bytes, over MongoDB's limit of "
            f"{limit} bytes. Keep large blobs elsewhere (e.g. GridFS) and store a reference."
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, (self.entity, self.size, self.limit), self._state()


class DecodingError(MongoPersistenceError, ValueError, TypeError):
    """A stored document cannot be turned back into Python values.

    It is a :class:`TypeError` too, as PTB's own persistences raise for unreadable data.

    Args:
        entity (:obj:`str`): The entity being read.
        path (:obj:`str`): The path to the offending value inside the entity.
        reason (:obj:`str`): What is wrong with it.

    Attributes:
        entity (:obj:`str`): The entity being read.
        path (:obj:`str`): The path to the offending value.
        reason (:obj:`str`): What is wrong with it.
    """

    __slots__ = ("entity", "path", "reason")

    def __init__(self, entity: str, path: str, reason: str) -> None:
        self.entity = entity
        self.path = path
        self.reason = reason
        super().__init__(f"Cannot load {entity}{path}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, (self.entity, self.path, self.reason), self._state()


class MigrationError(DecodingError):
    """A migration of the bot's data raised, or returned something else than the data class.

    The entity is then left as it is stored (never overwritten, writes refused as for a bad
    document) and starts empty; every other entity loads. The message names the entity and the
    migration's version, never the data.

    Args:
        entity (:obj:`str`): The entity being migrated.
        version (:obj:`int`): The version of the migration that failed.
        reason (:obj:`str`): What went wrong.

    Attributes:
        version (:obj:`int`): The version of the migration that failed.
    """

    __slots__ = ("migration_reason", "version")

    def __init__(self, entity: str, version: int, reason: str) -> None:
        self.version = version
        self.migration_reason = reason
        super().__init__(entity, "", f"migration {version}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, (self.entity, self.version, self.migration_reason), self._state()


class PersistenceConnectionError(MongoPersistenceError, ConnectionError):
    """MongoDB cannot be reached or refused the connection (bad URI, auth failure, unknown host).

    The message never contains a password: the URI is shown redacted.
    """

    __slots__ = ()


class PersistenceWriteError(MongoPersistenceError):
    """MongoDB did not acknowledge the write of an entity.

    PTB hands this to the application's error handlers. When :attr:`kept` is :obj:`True` the
    newest data of the entity is kept and written again with the next persistence run and at
    :meth:`~mongo_persistence.MongoPersistence.flush`, so nothing is lost by a passing outage.

    Args:
        entity (:obj:`str`): The entity, e.g. ``chat_data[-100123]``.
        reason (:obj:`str`): The driver's message.
        kept (:obj:`bool`): Whether the write will be retried.

    Attributes:
        entity (:obj:`str`): The entity.
        reason (:obj:`str`): The driver's message.
        kept (:obj:`bool`): Whether the write will be retried.
    """

    __slots__ = ("entity", "kept", "reason")

    def __init__(self, entity: str, reason: str, *, kept: bool) -> None:
        self.entity = entity
        self.reason = reason
        self.kept = kept
        then = "it is kept and will be retried" if kept else "it will not be retried"
        super().__init__(f"Writing {entity} to MongoDB failed ({reason}); {then}")

    def __reduce__(self) -> tuple[Any, ...]:
        # pickle passes positional arguments only: kept goes by the class's own constructor
        return _write_error, (self.__class__, self.entity, self.reason, self.kept), self._state()


class UnstorableJobError(MongoPersistenceError, ValueError):
    """A JobQueue job cannot be stored in MongoDB.

    See :meth:`~mongo_persistence.MongoPersistence.store_jobs`. Raised when the job is
    scheduled, so the job is not scheduled: its callback cannot be found again by name (a lambda,
    a nested function, a bound method...), or its trigger or time zone has no plain form.

    Args:
        name (:obj:`str` | :obj:`None`): The job's name.
        reason (:obj:`str`): Why it cannot be stored.

    Attributes:
        name (:obj:`str` | :obj:`None`): The job's name.
        reason (:obj:`str`): Why it cannot be stored.
    """

    __slots__ = ("name", "reason")

    def __init__(self, name: str | None, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"Cannot store job {name!r} in MongoDB: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, (self.name, self.reason), self._state()


class BadDocumentError(PersistenceWriteError):
    """A write refused because the entity's stored document could not be loaded.

    With ``MongoPersistence(on_bad_document="skip")`` an entity whose document cannot be decoded
    starts empty in memory, and its stored document is never overwritten: it may hold data that a
    fix of the document (or of the program: a missing codec, an enum renamed) brings back. Fix or
    delete the document in MongoDB (``mongo-persistence check`` lists them) and restart the bot,
    or drop the entity (e.g. ``application.drop_user_data(user_id)``) to start it anew.

    Args:
        entity (:obj:`str`): The entity, e.g. ``user_data[42]``.

    Attributes:
        entity (:obj:`str`): The entity.
        kept (:obj:`bool`): Always :obj:`False`: the write is not retried.
    """

    __slots__ = ()

    def __init__(self, entity: str) -> None:
        super().__init__(
            entity,
            "its stored document could not be loaded and is not overwritten; fix or delete it in "
            "MongoDB (`mongo-persistence check` lists it) or drop the entity to start it anew",
            kept=False,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, (self.entity,), self._state()


def _write_error(
    cls: type[PersistenceWriteError], entity: str, reason: str, kept: bool
) -> PersistenceWriteError:
    """Unpickles a :class:`PersistenceWriteError` (its ``kept`` is keyword-only)."""
    return cls(entity, reason, kept=kept)


class SourceError(MongoPersistenceError):
    """The source of a migration is missing, unreadable or not in the expected format."""

    __slots__ = ()


class MigrationAbortedError(MongoPersistenceError):
    """MongoDB failed during a migration; what was written so far stays written.

    Args:
        message (:obj:`str`): What happened.
        result (:class:`~mongo_persistence._cli.migrate.MigrationResult`): The counts up to the
            failure.

    Attributes:
        result (:class:`~mongo_persistence._cli.migrate.MigrationResult`): The counts up to the
            failure.
    """

    __slots__ = ("result",)

    def __init__(self, message: str, result: MigrationResult) -> None:
        super().__init__(message)
        self.result = result

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, (*self.args, self.result), self._state()


class ExportFormatError(MongoPersistenceError, ValueError):
    """A file is not a complete export written by ``mongo-persistence export``."""

    __slots__ = ()
