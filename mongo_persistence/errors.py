"""The exceptions raised by :mod:`mongo_persistence`."""

from __future__ import annotations

__all__ = [
    "BadDocumentError",
    "DecodingError",
    "DocumentTooLargeError",
    "EncodingError",
    "MongoPersistenceError",
    "PersistenceConnectionError",
    "PersistenceWriteError",
    "UnstorableJobError",
]


class MongoPersistenceError(Exception):
    """Base class of every error raised by :mod:`mongo_persistence`."""


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

    def __init__(self, entity: str, path: str, value_type: str, reason: str) -> None:
        self.entity = entity
        self.path = path
        self.value_type = value_type
        self.reason = reason
        super().__init__(f"Cannot store {entity}{path}: {reason} (value of type {value_type!r})")


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

    def __init__(self, entity: str, size: int, limit: int) -> None:
        self.entity = entity
        self.size = size
        self.limit = limit
        super().__init__(
            f"Cannot store {entity}: its document would be {size} bytes, over MongoDB's limit of "
            f"{limit} bytes. Keep large blobs elsewhere (e.g. GridFS) and store a reference."
        )


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

    def __init__(self, entity: str, path: str, reason: str) -> None:
        self.entity = entity
        self.path = path
        self.reason = reason
        super().__init__(f"Cannot load {entity}{path}: {reason}")


class PersistenceConnectionError(MongoPersistenceError, ConnectionError):
    """MongoDB cannot be reached or refused the connection (bad URI, auth failure, unknown host).

    The message never contains a password: the URI is shown redacted.
    """


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

    def __init__(self, entity: str, reason: str, *, kept: bool) -> None:
        self.entity = entity
        self.reason = reason
        self.kept = kept
        then = "it is kept and will be retried" if kept else "it will not be retried"
        super().__init__(f"Writing {entity} to MongoDB failed ({reason}); {then}")


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

    def __init__(self, name: str | None, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"Cannot store job {name!r} in MongoDB: {reason}")


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

    def __init__(self, entity: str) -> None:
        super().__init__(
            entity,
            "its stored document could not be loaded and is not overwritten; fix or delete it in "
            "MongoDB (`mongo-persistence check` lists it) or drop the entity to start it anew",
            kept=False,
        )
