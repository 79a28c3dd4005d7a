"""Looking up a class by name among the modules already imported, never importing any."""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["resolve_class", "resolve_name"]


def resolve_name(ref: str) -> object:
    """Finds ``"module:qualname"`` among the modules the program has already imported.

    Nothing is imported and no code runs: the module must be in :data:`sys.modules`, and each part
    of the qualified name is looked up in the ``__dict__`` of the module or of the class (and its
    bases), so no module ``__getattr__``, property or other descriptor is called.

    Args:
        ref (:obj:`str`): E.g. ``"mybot.states:State"``, as written by the codec.

    Returns:
        :class:`object`: What the name refers to.

    Raises:
        :class:`LookupError`: The reference is malformed, its module is not imported, or the name
            does not exist there.
    """
    if type(ref) is not str or len(ref) > 1000:
        raise LookupError("a class reference must be a 'module:qualname' string")
    module_name, sep, qualname = ref.partition(":")
    parts = qualname.split(".")
    if not sep or not all(p.isidentifier() for p in [*module_name.split("."), *parts]):
        raise LookupError("a class reference must be a 'module:qualname' string")
    module = sys.modules.get(module_name)
    if module is None:
        raise LookupError(f"module {module_name!r} is not imported by the program")
    obj: object = module
    for part in parts:
        namespaces = [vars(obj)] if isinstance(obj, types.ModuleType) else _class_dicts(obj)
        for namespace in namespaces:
            if part in namespace:
                obj = namespace[part]
                break
        else:
            raise LookupError(f"{qualname!r} is not defined in module {module_name!r}")
    return obj


def _class_dicts(obj: object) -> list[Any]:
    if not isinstance(obj, type):
        return []
    return [vars(klass) for klass in obj.__mro__]


def resolve_class(ref: str) -> type:
    """Like :func:`resolve_name`, for a class.

    Args:
        ref (:obj:`str`): E.g. ``"mybot.states:State"``.

    Returns:
        :obj:`type`: The class.

    Raises:
        :class:`LookupError`: As :func:`resolve_name`, or the name is not a class.
    """
    obj = resolve_name(ref)
    if not isinstance(obj, type):
        raise LookupError(f"{ref!r} is not a class")
    return obj
