"""Helpers for MongoDB connection strings."""

from __future__ import annotations

import re
import urllib.parse

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


def _split(uri: str) -> tuple[str, str, str]:
    """``(scheme with ://, user information without its @ or "", the rest)``."""
    match = _SCHEME.match(uri)
    start = match.end() if match else 0
    rest = uri[start:]
    end = _userinfo_end(rest)
    if end == -1:
        return uri[:start], "", rest
    return uri[:start], rest[:end], rest[end:]


def redact_text(text: str, uri: str) -> str:
    """Returns :paramref:`text`, a message about :paramref:`uri`, without the URI's secrets.

    Structural: the URI as written becomes :func:`redact_uri`'s form, its user information
    (``user:password@``, as written and percent-decoded) becomes ``user:***@`` and each secret
    option (``key=value``) becomes ``key=***``. The password's letters are never searched for
    elsewhere, so the rest of the message stays as it is, whatever the password (a password
    ``a`` leaves ``authSource=admin`` readable, and reveals nothing by what is replaced).

    Args:
        text (:obj:`str`): E.g. a driver's error message.
        uri (:obj:`str`): The connection string the message is about.
    """
    replacements: dict[str, str] = {}
    for form in (uri, uri.strip()):
        if form:
            replacements[form] = redact_uri(form)
    _, userinfo, _ = _split(uri)
    user, sep, password = userinfo.partition(":")
    if sep:
        for written in {password, urllib.parse.unquote(password)}:
            for name in {user, urllib.parse.unquote(user)}:
                replacements[f"{name}:{written}@"] = f"{name}:***@"
    for match in _SECRET_PARAMS.finditer(uri):
        if match.group(0) != match.group("key"):
            replacements[match.group(0)] = f"{match.group('key')}***"
    # Longest first: the whole URI before the parts it contains.
    for secret in sorted(replacements, key=len, reverse=True):
        text = text.replace(secret, replacements[secret])
    return text
