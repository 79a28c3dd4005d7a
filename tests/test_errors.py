"""The exceptions: one module, and each pickles and copies as PTB's own exceptions do."""

from __future__ import annotations

import copy
import inspect
import pickle
from typing import Any

import pytest

import mongo_persistence
from mongo_persistence import _errors as errors
from mongo_persistence._cli import migrate, transfer
from mongo_persistence._cli.migrate import MigrationResult, Problem

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


@pytest.mark.parametrize("module", [mongo_persistence, migrate, transfer])
def test_every_exception_lives_in_errors(module: Any) -> None:
    for cls in _exception_classes(module):
        assert cls.__module__ == "mongo_persistence._errors", cls


def test_old_import_places_still_work() -> None:
    assert migrate.MigrationAbortedError is errors.MigrationAbortedError
    assert migrate.SourceError is errors.SourceError
    assert transfer.ExportFormatError is errors.ExportFormatError


@pytest.mark.parametrize(("exc", "attributes"), EXAMPLES, ids=_ids())
def test_slotted(exc: BaseException, attributes: tuple[str, ...]) -> None:
    for klass in type(exc).__mro__:
        if klass.__module__ == "mongo_persistence._errors":
            assert "__slots__" in vars(klass), klass
