"""The package's surface: what it imports, how it is installed, the shape of its public names."""

from __future__ import annotations

import ast
import dataclasses
import datetime as dtm
import importlib
import inspect
import re
import subprocess
import sys
import types as types_module
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from bson import json_util
from telegram.ext import ContextTypes

import mongo_persistence
import mongo_persistence as errors
from mongo_persistence import MongoPersistence, TypeCodec
from tests.helpers.command import cli

PACKAGE = Path(mongo_persistence.__file__).parent


def _imported_modules(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda path: str(path.relative_to(PACKAGE))
)
def test_no_private_ptb_module_is_imported(path: Path) -> None:
    private = [
        name
        for name in _imported_modules(path)
        if name.split(".")[0] == "telegram"
        and any(part.startswith("_") for part in name.split("."))
    ]
    assert private == []


def test_ptb_type_aliases_match_ptb() -> None:
    types = pytest.importorskip("telegram.ext._utils.types")
    # Compared by structure: PTB 21 spells them with typing.Tuple/Union, PTB 22 with builtins.
    conversation = typing.get_type_hints(MongoPersistence.update_conversation)["key"]
    callback_data = typing.get_type_hints(MongoPersistence.update_callback_data)["data"]
    assert _shape(conversation) == _shape(types.ConversationKey)
    assert _shape(callback_data) == _shape(types.CDCData)


def _shape(alias: Any) -> Any:
    origin = typing.get_origin(alias)
    if origin is None:
        return alias
    if origin is types_module.UnionType:
        origin = typing.Union
    args = tuple(_shape(arg) for arg in typing.get_args(alias))
    return (origin, frozenset(args) if origin is typing.Union else args)


# ====================================================================== _new_instance
class _Flaky(dict[str, Any]):
    """A data class whose ``__init__`` may itself raise a TypeError (a bug of the bot's)."""

    broken = False

    def __init__(self) -> None:
        super().__init__()
        if self.broken:
            raise TypeError("a bug inside __init__")


class _NeedsArguments(dict[str, Any]):
    def __init__(self, required: int) -> None:
        super().__init__(required=required)


async def test_refresh_makes_a_data_class_that_needs_arguments_without_calling_it(
    make_persistence: Callable[..., MongoPersistence[Any, Any, Any]],
) -> None:
    """The document is gone: a class whose __init__ needs arguments is made without calling it."""
    mongo = make_persistence(refresh=True, context_types=ContextTypes(user_data=_NeedsArguments))
    try:
        await mongo.get_user_data()
        user_data = _NeedsArguments(1)
        user_data.clear()  # nothing of the bot's to write: the entity is read as it is stored
        await mongo.refresh_user_data(1, user_data)
        assert type(user_data) is _NeedsArguments
        assert user_data == {}
    finally:
        await mongo.flush()


async def test_refresh_reports_a_type_error_raised_by_the_data_class(
    make_persistence: Callable[..., MongoPersistence[Any, Any, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The document of the entity is gone: the data is replaced by a new instance of the class."""
    mongo = make_persistence(refresh=True, context_types=ContextTypes(user_data=_Flaky))
    try:
        await mongo.get_user_data()
        user_data = _Flaky()
        monkeypatch.setattr(_Flaky, "broken", True)
        with pytest.raises(TypeError, match="a bug inside __init__"):
            await mongo.refresh_user_data(1, user_data)
    finally:
        await mongo.flush()


# ====================================================================== import from a stream
@pytest.mark.parametrize("source", ["stdin", "file"])
async def test_import_reads_a_one_shot_stream(
    source: str, tmp_path: Path, mongodb_uri: str, db_name: str, client: Any
) -> None:
    """An export read from standard input (read once, no seeking) is imported whole."""
    original = MongoPersistence(client, database=db_name, namespace="src")
    await original.update_user_data(1, {"a": 1})
    await original.update_chat_data(-5, {"b": [1, 2]})
    await original.update_bot_data({"c": "x"})
    await original.flush()
    exported = await cli("export", "--uri", mongodb_uri, "-d", db_name, "-n", "src")
    assert exported.exit_code == 0, exported.output
    target = ["--uri", mongodb_uri, "-d", db_name, "-n", "dst"]
    if source == "stdin":
        result = await cli("import", "-", *target, stdin=exported.stdout)
    else:
        (tmp_path / "backup.jsonl").write_text(exported.stdout)
        result = await cli("import", str(tmp_path / "backup.jsonl"), *target)
    assert result.exit_code == 0, result.output
    copy = MongoPersistence(client, database=db_name, namespace="dst")
    assert await copy.get_user_data() == {1: {"a": 1}}
    assert await copy.get_chat_data() == {-5: {"b": [1, 2]}}
    assert await copy.get_bot_data() == {"c": "x"}
    await copy.flush()


# ====================================================================== recover
def _recovery_line(op: str, doc_id: int, document: dict[str, Any] | None) -> str:
    at = dtm.datetime(2024, 1, 1, tzinfo=dtm.timezone.utc)
    record = {
        "collection": "user_data",
        "_id": doc_id,
        "entity": f"user_data[{doc_id}]",
        "op": op,
        "at": at,
        "document": document,
    }
    return json_util.dumps(record, json_options=json_util.CANONICAL_JSON_OPTIONS) + "\n"


async def test_recover_counts_the_merge_records(
    tmp_path: Path, mongodb_uri: str, db_name: str
) -> None:
    recovery = tmp_path / "recovery.jsonl"
    recovery.write_text(
        _recovery_line("replace", 1, {"_id": 1, "data": {"a": 1}})
        + _recovery_line("merge", 2, {"_id": 2, "data": {"b": 2}})
        + _recovery_line("merge", 3, {"_id": 3, "data": {"c": 3}})
        + _recovery_line("delete", 4, None)
    )
    args = ["recover", str(recovery), "--uri", mongodb_uri, "-d", db_name]
    result = await cli(*args)
    assert result.exit_code == 0, result.output
    assert "Recovering 4 entities (1 to write, 2 to merge, 1 to delete)" in result.output
    assert "Restored 4, skipped 0" in result.output


# ====================================================================== failures of the command
async def test_a_failing_command_never_prints_the_password() -> None:
    result = await cli("inspect", "--uri", "mongodb://bot:s3cret@127.0.0.1:1/", "--timeout", "0.3")
    assert result.exit_code == 1
    assert "bot:***@" in result.output
    assert "s3cret" not in result.output


# ====================================================================== the cli extra
ROOT = PACKAGE.parent


def _project() -> dict[str, Any]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return cast(dict[str, Any], tomllib.load(handle)["project"])


def test_click_and_tqdm_are_in_the_cli_extra_only() -> None:
    project = _project()
    required = {re.split(r"[<>=\[ ]", spec)[0] for spec in project["dependencies"]}
    assert required == {"python-telegram-bot", "pymongo"}
    extras = project["optional-dependencies"]
    assert {re.split(r"[<>= ]", spec)[0] for spec in extras["cli"]} == {"click", "tqdm"}
    assert "mongo-persistence[cli]" in extras["test"]


def test_the_console_script_imports_neither_click_nor_tqdm_before_it_can_say_so() -> None:
    module, _, function = _project()["scripts"]["mongo-persistence"].partition(":")
    assert (module, function) == ("mongo_persistence.__main__", "main")
    path = ROOT / (module.replace(".", "/") + ".py")
    top_level = [
        node
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    names = {
        alias.name for node in top_level if isinstance(node, ast.Import) for alias in node.names
    }
    names |= {node.module or "" for node in top_level if isinstance(node, ast.ImportFrom)}
    assert not names & {"click", "tqdm", "mongo_persistence._cli.cli"}


def _run_command(*args: str, hide: str | None = None) -> subprocess.CompletedProcess[str]:
    hiding = f"sys.modules[{hide!r}] = None; " if hide else ""
    code = (
        f"import sys; {hiding}sys.argv = ['mongo-persistence', *sys.argv[1:]]; "
        "from mongo_persistence.__main__ import main; main()"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False, cwd=ROOT
    )


@pytest.mark.parametrize("missing", ["click", "tqdm"])
def test_without_the_cli_extra_the_command_names_it(missing: str) -> None:
    result = _run_command("--help", hide=missing)
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"needs {missing}, which comes with the [cli] extra" in result.stderr
    assert 'pip install "mongo-persistence[cli]"' in result.stderr
    assert "Traceback" not in result.stderr


def test_with_the_cli_extra_the_command_runs() -> None:
    result = _run_command("--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: mongo-persistence" in result.stdout
    module = subprocess.run(
        [sys.executable, "-m", "mongo_persistence", "--version"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert module.returncode == 0, module.stderr
    assert mongo_persistence.__version__ in module.stdout


def test_the_library_imports_without_the_cli_extra() -> None:
    code = (
        "import sys; sys.modules['click'] = sys.modules['tqdm'] = None; "
        "import mongo_persistence, mongo_persistence._persistence.persistence, "
        "mongo_persistence._persistence.jobs"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


# ====================================================================== __slots__
# Classes without __slots__ and why (PTB slots every class of its own; see its test_slots.py).
UNSLOTTED = {
    "MongoJobStore": "APScheduler's MemoryJobStore has a __dict__ anyway",
    "_Cap": "a logging.Filter, which has a __dict__ anyway",
    "_InterruptWatch": "never instantiated: class attributes only",
    "MigrationResult": "pickled (protocol 0 too) inside a MigrationAbortedError",
    "CliError": "a click.ClickException, which has a __dict__ anyway",
    "_Fail": "the encoder's internal control flow; never leaves codec.py",
    "_TooDeep": "the encoder's internal control flow; never leaves codec.py",
    "WriteTimeoutError": "a PyMongo ConnectionFailure, which has a __dict__ anyway",
}


def _package_classes() -> list[type]:
    classes = []
    for path in sorted(PACKAGE.rglob("*.py")):
        dotted = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        module = importlib.import_module(dotted.removesuffix(".__init__"))
        classes += [
            obj
            for _, obj in inspect.getmembers(module, inspect.isclass)
            if obj.__module__ == module.__name__
        ]
    return classes


@pytest.mark.parametrize(
    "cls",
    [c for c in _package_classes() if c.__name__ not in UNSLOTTED],
    ids=lambda cls: cls.__qualname__,
)
def test_classes_are_slotted(cls: type) -> None:
    assert "__slots__" in vars(cls)


def test_the_unslotted_classes_exist_and_have_no_slots() -> None:
    found = {c.__name__: c for c in _package_classes() if c.__name__ in UNSLOTTED}
    assert set(found) == set(UNSLOTTED)  # a stale entry would hide nothing
    assert not [name for name, c in found.items() if "__slots__" in vars(c)]


def test_type_codec_is_slotted_and_frozen() -> None:
    codec = TypeCodec(complex, "complex", encode=str, decode=complex)
    assert not hasattr(codec, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        codec.name = "other"  # type: ignore[misc]


# ====================================================================== from_uri
@pytest.mark.parametrize(
    ("uri", "database", "expected"),
    [
        ("mongodb://127.0.0.1:1", None, "ptb_persistence"),
        ("mongodb://127.0.0.1:1/", None, "ptb_persistence"),
        ("mongodb://127.0.0.1:1/mydb", None, "mydb"),
        ("mongodb://127.0.0.1:1/mydb?connectTimeoutMS=100", None, "mydb"),
        ("mongodb://127.0.0.1:1/mydb", "other", "other"),
        ("mongodb://127.0.0.1:1", "other", "other"),
    ],
)
async def test_from_uri_picks_the_database_by_the_constructor_s_rule(
    uri: str, database: str | None, expected: str
) -> None:
    made = MongoPersistence.from_uri(uri, database=database)
    constructed = MongoPersistence(uri, database=database)
    try:
        assert made.database.name == constructed.database.name == expected
    finally:
        await made.flush()
        await constructed.flush()


async def test_from_uri_passes_every_option_on(tmp_path: Path) -> None:
    made = MongoPersistence.from_uri(
        "mongodb://127.0.0.1:1/db",
        client_kwargs={"serverSelectionTimeoutMS": 1234},
        namespace="shop",
        lazy=True,
        refresh=True,
        flush_timeout=0.5,
        recovery_dir=tmp_path,
        on_bad_document="skip",
        context_types=ContextTypes(user_data=_NeedsArguments),
    )
    try:
        assert type(made) is MongoPersistence
        assert made.database.client.options.server_selection_timeout == 1.234
        assert made.namespace == "shop"
        assert (made.lazy, made.refresh, made.flush_timeout) == (True, True, 0.5)
        assert (made.recovery_dir, made.on_bad_document) == (tmp_path, "skip")
        assert made.context_types.user_data is _NeedsArguments
    finally:
        await made.flush()


async def test_from_uri_refuses_what_cannot_apply(client: Any, db: Any) -> None:
    for target in (client, db):
        with pytest.raises(TypeError, match=r"from_uri\(\) needs a connection string"):
            MongoPersistence.from_uri(target)
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        MongoPersistence.from_uri("mongodb://127.0.0.1:1", colour="red")
    with pytest.raises(ValueError, match="Invalid database name"):
        MongoPersistence.from_uri("mongodb://127.0.0.1:1", database="a b")
    with pytest.raises(errors.PersistenceConnectionError, match=r"alice:\*\*\*@"):
        MongoPersistence.from_uri("mongodb://alice:secret@host:port/")


async def test_from_uri_persists(mongodb_uri: str, db_name: str) -> None:
    writer = MongoPersistence.from_uri(mongodb_uri, database=db_name, namespace="from_uri")
    await writer.update_user_data(7, {"a": 1})
    await writer.flush()
    reader = MongoPersistence(mongodb_uri, database=db_name, namespace="from_uri")
    try:
        assert await reader.get_user_data() == {7: {"a": 1}}
    finally:
        await reader.flush()
