"""MongoDB persistence for python-telegram-bot.

One readable document per chat, user and conversation; a lossless, Bot-aware codec; writes that are
acknowledged, coalesced and never silently lost.

The public API is what this module exports: :class:`MongoPersistence`, :class:`TypeCodec`,
:class:`Health`, the exception classes and ``__version__``. Everything else lives in private
modules (``mongo_persistence._*``) and may change in any release.
"""

from mongo_persistence._codec.codec import TypeCodec
from mongo_persistence._errors import (
    BadDocumentError,
    DecodingError,
    DocumentTooLargeError,
    EncodingError,
    ExportFormatError,
    MigrationAbortedError,
    MigrationError,
    MongoPersistenceError,
    PersistenceConnectionError,
    PersistenceWriteError,
    SourceError,
    UnstorableJobError,
)
from mongo_persistence._persistence.persistence import MongoPersistence
from mongo_persistence._storage.health import Health
from mongo_persistence._version import __version__

__all__ = [
    "BadDocumentError",
    "DecodingError",
    "DocumentTooLargeError",
    "EncodingError",
    "ExportFormatError",
    "Health",
    "MigrationAbortedError",
    "MigrationError",
    "MongoPersistence",
    "MongoPersistenceError",
    "PersistenceConnectionError",
    "PersistenceWriteError",
    "SourceError",
    "TypeCodec",
    "UnstorableJobError",
    "__version__",
]
