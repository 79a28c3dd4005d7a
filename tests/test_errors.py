"""The exceptions: one module, and each pickles and copies as PTB's own exceptions do."""

from __future__ import annotations

import copy
import importlib
import inspect
import pickle
from pathlib import Path
from typing import Any

import pytest

import mongo_persistence
import mongo_persistence as errors

# The one private import: a MigrationAbortedError carries the migration's result.
from mongo_persistence._cli.migrate import MigrationResult, Problem

PACKAGE = Path(mongo_persistence.__file__).parent

_RESULT = MigrationResult(
    written={"user_data": 3, "chat_data": 0}, problems=[Problem("user_data", "user_data[1]", "x")]
)

# (the exception, the attributes that must survive)
EXAMPLES: list[tuple[BaseException, tuple[str, ...]]] = [
    (errors.MongoPersistenceError("plain message"), ()),
    (
        errors.EncodingError("user_data[42]", "['cart'][2]", "mybot.Thing", "not supported"),
        ("entity", "path", "value_type", "reason"),
    ),
    (errors.DecodingError("chat_data[-1]", "['a']", "unknown tag"), ("entity", "path", "reason")),
    (errors.DocumentTooLargeError("bot_data", 17_000_000, 16_777_216), ("entity", "size", "limit")),
    (
        errors.PersistenceWriteError("user_data[1]", "timeout", kept=True),
        ("entity", "reason", "kept"),
    ),
    (
        errors.PersistenceWriteError("user_data[1]", "denied", kept=False),
        ("entity", "reason", "kept"),
    ),
    (errors.BadDocumentError("user_data[7]"), ("entity", "reason", "kept")),
    (errors.MigrationError("user_data[7]", 2, "KeyError"), ("entity", "version", "reason")),
    (errors.PersistenceConnectionError("Cannot reach MongoDB at mongodb://h/"), ()),
    (errors.UnstorableJobError("daily", "a lambda cannot be found again"), ("name", "reason")),
    (errors.UnstorableJobError(None, "a lambda"), ("name", "reason")),
    (errors.MigrationAbortedError("MongoDB failed", _RESULT), ("result",)),
    (errors.SourceError("no such file"), ()),
    (errors.ExportFormatError("not an export"), ()),
]


def _ids() -> list[str]:
    return [f"{type(exc).__name__}-{number}" for number, (exc, _) in enumerate(EXAMPLES)]


def _assert_same(
    copied: BaseException, original: BaseException, attributes: tuple[str, ...]
) -> None:
    assert type(copied) is type(original)
    assert str(copied) == str(original)
    assert copied.args == original.args
    for name in attributes:
        assert getattr(copied, name) == getattr(original, name), name


@pytest.mark.parametrize(("exc", "attributes"), EXAMPLES, ids=_ids())
@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickles_and_unpickles(
    exc: BaseException, attributes: tuple[str, ...], protocol: int
) -> None:
    _assert_same(pickle.loads(pickle.dumps(exc, protocol=protocol)), exc, attributes)


@pytest.mark.parametrize(("exc", "attributes"), EXAMPLES, ids=_ids())
def test_copies(exc: BaseException, attributes: tuple[str, ...]) -> None:
    _assert_same(copy.copy(exc), exc, attributes)
    _assert_same(copy.deepcopy(exc), exc, attributes)


def test_notes_survive_pickling() -> None:
    exc = errors.DecodingError("user_data[1]", "", "bad")
    exc.__notes__ = ["while loading"]  # what add_note() sets (Python 3.11+)
    assert pickle.loads(pickle.dumps(exc)).__notes__ == ["while loading"]


def _exception_classes(module: Any) -> set[type[BaseException]]:
    return {
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__.startswith("mongo_persistence")
    }


def test_every_exception_class_is_tested() -> None:
    tested = {type(exc) for exc, _ in EXAMPLES}
    assert _exception_classes(errors) <= tested


def _package_modules() -> list[Any]:
    names = [
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.stem != "__main__"
    ]
    return [importlib.import_module(name) for name in names]


_INTERNAL: dict[str, str] = {
    "CliError": "the command's one-line failure (a click.ClickException), printed",
    "WriteTimeoutError": "a write attempt's deadline (a ConnectionFailure): kept, retried",
    "_Fail": "the codec's walk unwinding to the entity's EncodingError",
    "_TooDeep": "the codec's walk unwinding to the entity's EncodingError",
}


def test_every_exception_is_defined_in_one_module_and_exported() -> None:
    found = set().union(*(_exception_classes(module) for module in _package_modules()))
    public = {cls for cls in found if cls.__name__ not in _INTERNAL}
    assert public, "no exception class found"
    assert {cls.__module__ for cls in public} == {"mongo_persistence._errors"}
    assert public == _exception_classes(mongo_persistence)
    assert {cls.__name__ for cls in found - public} == set(_INTERNAL)


@pytest.mark.parametrize(("exc", "attributes"), EXAMPLES, ids=_ids())
def test_slotted(exc: BaseException, attributes: tuple[str, ...]) -> None:
    for klass in type(exc).__mro__:
        if klass.__module__ == "mongo_persistence._errors":
            assert "__slots__" in vars(klass), klass
