"""Helpers for MongoDB connection strings."""

from __future__ import annotations

import re

__all__ = ["redact_uri"]

_SCHEME = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.\-]*://")
_HOSTS = re.compile(r"[A-Za-z0-9.\-_:,\[\]%]*(?:[/?#]|$)")
"""What follows the ``@`` that ends the user information: a host list, then a path or query."""
_SECRET_PARAMS = re.compile(
    r"(?P<key>(?:password|authMechanismProperties|tlsCertificateKeyFilePassword)=)[^&]*",
    re.IGNORECASE,
)


def _userinfo_end(rest: str) -> int:
    """The index of the ``@`` closing the user information in ``rest`` (after the scheme), or -1.

    Well-formed URIs have it before the first ``/``. A password with an unescaped ``@``, ``/`` or
    ``:`` (which the driver refuses) must not leak through an error message either, so then the
    last ``@`` followed by something that looks like a host list is taken, else the last ``@``.
    """
    slash = rest.find("/")
    head = rest if slash == -1 else rest[:slash]
    if "@" in head:
        return head.rindex("@")
    ats = [i for i, char in enumerate(rest) if char == "@"]
    for index in reversed(ats):
        if _HOSTS.match(rest, index + 1):
            return index
    return ats[-1] if ats else -1


def redact_uri(uri: str) -> str:
    """Returns :paramref:`uri` with its password (and other secrets) replaced by ``***``.

    Malformed URIs (e.g. a password with unescaped ``@`` or ``/``) are redacted too, erring on the
    side of hiding too much.

    Args:
        uri (:obj:`str`): A ``mongodb://`` or ``mongodb+srv://`` connection string.
    """
    match = _SCHEME.match(uri)
    start = match.end() if match else 0
    rest = uri[start:]
    end = _userinfo_end(rest)
    if end != -1:
        user, sep, _ = rest[:end].partition(":")
        rest = f"{user}{':***' if sep else ''}{rest[end:]}"
    return _SECRET_PARAMS.sub(r"\g<key>***", uri[:start] + rest)
