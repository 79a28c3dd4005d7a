"""The rules for database names and namespaces, shared by :class:`MongoPersistence` and the CLI."""

from __future__ import annotations

import re
from typing import Final

NAMESPACE_MAX: Final = 64
NAMESPACE_RULE: Final = f"1 to {NAMESPACE_MAX} letters, digits, '_' or '-'"
_NAMESPACE: Final = re.compile(rf"[A-Za-z0-9_-]{{1,{NAMESPACE_MAX}}}")

DATABASE_NAME_MAX: Final = 63
DATABASE_NAME_RULE: Final = (
    f'1 to {DATABASE_NAME_MAX} bytes, without spaces, NUL or any of / \\ . " $ * < > : | ?'
)
_DATABASE_FORBIDDEN: Final = frozenset('/\\. "$*<>:|?\x00')


def check_namespace(namespace: object) -> str | None:
    """Returns :paramref:`namespace` if it is a valid namespace (or :obj:`None`: no namespace).

    Args:
        namespace (:obj:`str` | :obj:`None`): The prefix of the collection names.

    Raises:
        :class:`ValueError`: It breaks the rule (:data:`NAMESPACE_RULE`).
    """
    if namespace is None:
        return None
    if type(namespace) is not str or not _NAMESPACE.fullmatch(namespace):
        raise ValueError(f"Invalid namespace {namespace!r}: use {NAMESPACE_RULE}")
    return namespace


def check_database_name(name: object, *, where: str = "") -> str:
    """Returns :paramref:`name` if MongoDB accepts it as a database name on every platform.

    Args:
        name (:obj:`str`): The database name.
        where (:obj:`str`, optional): Where the name comes from, for the message (e.g.
            ``" in the connection string"``).

    Raises:
        :class:`ValueError`: It breaks the rule (:data:`DATABASE_NAME_RULE`).
    """
    if (
        type(name) is not str
        or not name
        or len(name.encode("utf-8", "surrogatepass")) > DATABASE_NAME_MAX
        or not _DATABASE_FORBIDDEN.isdisjoint(name)
        or not name.isprintable()
    ):
        raise ValueError(f"Invalid database name {name!r}{where}: use {DATABASE_NAME_RULE}")
    return name
