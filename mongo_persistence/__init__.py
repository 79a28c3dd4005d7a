"""MongoDB persistence for python-telegram-bot.

One readable document per chat, user and conversation; a lossless, Bot-aware codec; writes that are
acknowledged, coalesced and never silently lost.
"""

from mongo_persistence._codec.codec import Codec, TypeCodec
from mongo_persistence._errors import (
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
from mongo_persistence._persistence.persistence import DEFAULT_DATABASE, MongoPersistence
from mongo_persistence._storage.store import Health
from mongo_persistence._util.uri import redact_uri
from mongo_persistence._version import __version__

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
