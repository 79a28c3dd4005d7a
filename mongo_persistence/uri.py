"""Helpers for MongoDB connection strings."""

from __future__ import annotations

import re

__all__ = ["redact_uri"]

_USERINFO = re.compile(r"^(?P<scheme>mongodb(?:\+srv)?://)(?P<userinfo>[^@/]*)@", re.IGNORECASE)
_SECRET_PARAMS = re.compile(
    r"(?P<key>(?:password|authMechanismProperties|tlsCertificateKeyFilePassword)=)[^&]*",
    re.IGNORECASE,
)


def redact_uri(uri: str) -> str:
    """Returns :paramref:`uri` with its password (and other secrets) replaced by ``***``.

    Args:
        uri (:obj:`str`): A ``mongodb://`` or ``mongodb+srv://`` connection string.
    """

    def userinfo(match: re.Match[str]) -> str:
        user, sep, _ = match.group("userinfo").partition(":")
        return f"{match.group('scheme')}{user}{':***' if sep else ''}@"

    return _SECRET_PARAMS.sub(r"\g<key>***", _USERINFO.sub(userinfo, uri, count=1))
