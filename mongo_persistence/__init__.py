"""MongoDB persistence for python-telegram-bot.

One readable document per chat, user and conversation; a lossless, Bot-aware codec; writes that are
acknowledged, coalesced and never silently lost.
"""

from mongo_persistence._version import __version__
from mongo_persistence.codec import Codec, TypeCodec
from mongo_persistence.errors import (
    BadDocumentError,
    DecodingError,
    DocumentTooLargeError,
    EncodingError,
    MigrationError,
    MongoPersistenceError,
    PersistenceConnectionError,
    PersistenceWriteError,
    UnstorableJobError,
)
from mongo_persistence.persistence import DEFAULT_DATABASE, MongoPersistence
from mongo_persistence.store import Health
from mongo_persistence.uri import redact_uri

__all__ = [
    "DEFAULT_DATABASE",
    "BadDocumentError",
    "Codec",
    "DecodingError",
    "DocumentTooLargeError",
    "EncodingError",
    "Health",
    "MigrationError",
    "MongoPersistence",
    "MongoPersistenceError",
    "PersistenceConnectionError",
    "PersistenceWriteError",
    "TypeCodec",
    "UnstorableJobError",
    "__version__",
    "redact_uri",
]
