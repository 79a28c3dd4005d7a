"""The loggers of :mod:`mongo_persistence`: every line they emit is capped in length.

They log entity names, paths, types and the server's error codes and messages: never the
contents of a document.
"""

from __future__ import annotations

import logging
from typing import Final

LOG_LINE_MAX: Final = 1000
"""The longest message (in characters) a record of this library holds."""


class _Cap(logging.Filter):
    """Shortens a record's message to :data:`LOG_LINE_MAX` characters."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if len(message) > LOG_LINE_MAX:
            note = f"... [{len(message)} characters]"
            record.msg = message[: LOG_LINE_MAX - len(note)] + note
            record.args = None
        return True


def get_logger(name: str) -> logging.Logger:
    """The logger ``name``, with the length cap.

    The names of private packages and modules lose their leading underscore
    (``mongo_persistence._storage.store`` logs as ``mongo_persistence.storage.store``), so that a
    logger name does not change with the package's private layout more than it must.

    Args:
        name (:obj:`str`): E.g. ``__name__``.
    """
    logger = logging.getLogger(".".join(part.lstrip("_") or part for part in name.split(".")))
    if not any(isinstance(f, _Cap) for f in logger.filters):
        logger.addFilter(_Cap())
    return logger
