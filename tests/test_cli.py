"""`mongo-persistence` inspect, export, import, recover, and the errors of every command."""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bson import Binary, Decimal128, Int64, json_util
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from click.testing import Result
from pymongo import AsyncMongoClient, MongoClient
from telegram.ext import ContextTypes, ExtBot

from mongo_persistence import MongoPersistence, PersistenceConnectionError
from tests.helpers.command import cli, invoke
from tests.helpers.local_server import LocalServer
from tests.helpers.servers import disk_server

DATA = Path(__file__).parent / "data" / "cli"
ROOT = Path(__file__).resolve().parent.parent
KINDS = ("user_data", "chat_data", "bot_data", "conversations", "callback_data")
SECRET = "s3cr3t-pässwörd"
SECRET_URI_PART = "s3cr3t-p%C3%A4ssw%C3%B6rd"


def assert_clean(result: Result, code: int = 0) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    if code:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    else:
        assert result.exception is None


async def migrate_fixture(uri: str, db_name: str, namespace: str | None = None) -> None:
    args = ["migrate", "--from-pickle", str(DATA / "ptb21_single.pickle"), "--uri", uri]
    args += ["-d", db_name] + (["-n", namespace] if namespace else [])
    assert_clean(await cli(*args))


async def raw_documents(db: Any, namespace: str | None) -> dict[str, list[bytes]]:
    """Every document byte for byte, by kind, in _id order."""
    options: CodecOptions[RawBSONDocument] = CodecOptions(document_class=RawBSONDocument)
    prefix = f"{namespace}." if namespace else ""
    out = {}
    for kind in KINDS:
        collection = db.get_collection(f"{prefix}{kind}", codec_options=options)
        out[kind] = [doc.raw async for doc in collection.find().sort("_id")]
    return out


# ----------------------------------------------------------------------------------- errors
def valid_export() -> str:
    header = {
        "format": "mongo_persistence-export",
        "version": 1,
        "database": "x",
        "namespace": None,
    }
    return f"{json.dumps(header)}\n{json.dumps({'end': {'documents': 0, 'counts': {}}})}\n"


def valid_recovery_file() -> str:
    at = dtm.datetime(2024, 1, 1, tzinfo=dtm.timezone.utc)
    record = {
        "collection": "user_data",
        "_id": 1,
        "entity": "user_data[1]",
        "op": "replace",
        "at": at,
        "document": {"_id": 1, "data": {"a": 1}, "updated_at": at},
    }
    return json_util.dumps(record, json_options=json_util.CANONICAL_JSON_OPTIONS) + "\n"


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, str]:
    export = tmp_path / "export.jsonl"
    export.write_text(valid_export())
    recovery = tmp_path / "recovery.jsonl"
    recovery.write_text(valid_recovery_file())
    return {"export": str(export), "recovery": str(recovery)}


@pytest.mark.parametrize(
    "command",
    [
        ["inspect"],
        ["inspect", "chat", "-100123"],
        ["export"],
        ["import", "{export}"],
        ["recover", "{recovery}"],
        ["migrate", "--from-pickle", str(DATA / "ptb20_single.pickle")],
    ],
    ids=lambda c: "-".join(c[:2]),
)
def test_unreachable_server_fails_fast_without_showing_the_password(
    command: list[str], inputs: dict[str, str]
) -> None:
    uri = f"mongodb://alice:{SECRET_URI_PART}@127.0.0.1:1/?authSource=admin"
    args = [part.format(**inputs) for part in command]
    result = invoke(*args, "--uri", uri, "--timeout", "0.3")
    assert_clean(result, 1)
    assert "Error: Cannot reach MongoDB at mongodb://alice:***@127.0.0.1:1/" in result.output
    assert "no server answered within 0.3 s" in result.output
    assert SECRET not in result.output and SECRET_URI_PART not in result.output


def test_the_uri_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGODB_URI", f"mongodb://bob:{SECRET_URI_PART}@127.0.0.1:1/")
    result = invoke("inspect", "--timeout", "0.2")
    assert_clean(result, 1)
    assert "mongodb://bob:***@127.0.0.1:1/" in result.output
    assert SECRET_URI_PART not in result.output


def test_refused_credentials_and_bad_uris_are_one_line_without_password(mongodb_uri: str) -> None:
    # The test server has no users: credentials are refused (as by a MongoDB without that user).
    # A deadline, not a wait: the answer comes as soon as the (busy) server has checked them.
    with_password = mongodb_uri.replace("mongodb://", f"mongodb://alice:{SECRET_URI_PART}@", 1)
    result = invoke("inspect", "--uri", with_password, "--timeout", "30")
    assert_clean(result, 1)
    assert "refused the credentials" in result.output
    assert result.output.count("\n") == 1
    assert SECRET not in result.output and SECRET_URI_PART not in result.output
    for uri, message in [
        (f"http://alice:{SECRET_URI_PART}@host/", "Invalid MongoDB URI http://alice:***@host/"),
        (
            f"mongodb://alice:{SECRET_URI_PART}@host:port/",
            "Invalid MongoDB URI mongodb://alice:***@",
        ),
    ]:
        result = invoke("inspect", "--uri", uri)
        assert_clean(result, 1)
        assert message in result.output
        assert result.output.count("\n") == 1
        assert SECRET not in result.output and SECRET_URI_PART not in result.output


def test_missing_and_wrong_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x80\x04\x95 not text \xff")
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    other_json = tmp_path / "other.jsonl"
    other_json.write_text('{"some": "json"}\n')
    truncated = tmp_path / "cut.jsonl"
    truncated.write_text(valid_export().splitlines()[0] + "\n")
    bad_line = tmp_path / "bad_line.jsonl"
    bad_line.write_text(valid_export().replace("\n", '\n{"kind": "nope", "document": {}}\n', 1))
    recovery_with_bad_op = tmp_path / "bad_op.jsonl"
    recovery_with_bad_op.write_text(valid_recovery_file().replace('"replace"', '"upsert"'))
    cases = [
        (["import", str(tmp_path / "missing.jsonl")], "No such file"),
        (["import", str(junk)], "not a mongo-persistence export"),
        (["import", str(text)], "not a mongo-persistence export"),
        (["import", str(other_json)], "first line must be the header"),
        (["import", str(truncated)], "is incomplete: its end line is missing"),
        (["import", str(bad_line)], "line 2: unknown kind 'nope'"),
        (["recover", str(tmp_path / "missing.jsonl")], "No such file"),
        (["recover", str(text)], "not a recovery file record"),
        (["recover", str(other_json)], "not a recovery file record (expected the keys"),
        (["recover", str(junk)], "not a recovery file"),
        (["recover", str(recovery_with_bad_op)], "unknown op 'upsert'"),
    ]
    for args, message in cases:
        result = invoke(*args, "--uri", "mongodb://127.0.0.1:1", "--timeout", "0.2")
        assert_clean(result, 1)
        assert message in result.output, (args, result.output)
        assert result.output.count("\n") == 1, result.output


def test_help_and_version() -> None:
    result = invoke("--help")
    assert_clean(result)
    for command in ("migrate", "inspect", "export", "import", "recover"):
        assert command in result.output
        assert_clean(invoke(command, "--help"))
    assert "MONGODB_URI" in invoke("export", "--help").output
    version = invoke("--version")
    assert_clean(version)
    assert version.output.startswith("mongo-persistence, version ")


def test_python_m_mongo_persistence_runs() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mongo_persistence",
            "inspect",
            "--uri",
            "mongodb://127.0.0.1:1",
            "--timeout",
            "0.2",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("Error: Cannot reach MongoDB at mongodb://127.0.0.1:1")
    assert "Traceback" not in done.stderr


# ----------------------------------------------------------------------------------- inspect
async def test_inspect_shows_every_namespace_or_the_one_asked_for(
    mongodb_uri: str, db_name: str, db: Any
) -> None:
    await migrate_fixture(mongodb_uri, db_name)
    await migrate_fixture(mongodb_uri, db_name, "shop-bot")
    result = await cli("inspect", "--uri", mongodb_uri, "-d", db_name)
    assert_clean(result)
    assert "no namespace:" in result.output
    assert "namespace 'shop-bot':" in result.output
    lines = result.output.splitlines()
    row = next(line for line in lines if line.strip().startswith("shop-bot.user_data"))
    count, data_size = row.split()[1:3]
    assert count == "2" and float(data_size) > 0
    assert any(line.split()[:2] == ["total", "8"] for line in lines)

    only = await cli("inspect", "--uri", mongodb_uri, "-d", db_name, "-n", "shop-bot")
    assert_clean(only)
    assert "namespace 'shop-bot':" in only.output and "no namespace:" not in only.output

    empty = await cli("inspect", "--uri", mongodb_uri, "-d", f"{db_name}_none")
    assert_clean(empty)
    assert "no mongo_persistence collections" in empty.output


async def test_inspect_one_entity_decoded_and_raw(mongodb_uri: str, db_name: str) -> None:
    await migrate_fixture(mongodb_uri, db_name, "ns")
    base = ["--uri", mongodb_uri, "-d", db_name, "-n", "ns"]

    user = await cli("inspect", "user", "42", *base)
    assert_clean(user)
    assert "'cart': ('apple', 2)" in user.output  # decoded: a tuple
    assert "7: {'nested': {3: 'x'}}" in user.output  # decoded: int keys
    assert '"__type__": "tuple"' in user.output  # raw, relaxed Extended JSON
    assert '"$date":' in user.output

    chat = await cli("inspect", "chat", "-100123", *base)
    assert_clean(chat)
    assert "_id: -100123" in chat.output and "frozenset({1, 2})" in chat.output

    bot = await cli("inspect", "bot", *base)
    assert_clean(bot)
    assert "'big': 1180591620717411303424" in bot.output

    conversation = await cli("inspect", "conversation", "order", *base)
    assert_clean(conversation)
    assert "2 keys of conversation 'order'" in conversation.output
    assert "{(42, 42): 1}" in conversation.output
    assert "{(-100123, 43): 'STATE_B'}" in conversation.output
    assert "_id: '[\"order\",42,42]'" in conversation.output

    callback = await cli("inspect", "callback", *base)
    assert_clean(callback)
    assert "'kb-uuid-1'" in callback.output

    missing = await cli("inspect", "user", "99", *base)
    assert_clean(missing, 1)
    assert "No user 99 in ns.user_data" in missing.output
    no_conversation = await cli("inspect", "conversation", "nope", *base)
    assert_clean(no_conversation, 1)
    assert_clean(await cli("inspect", "user", "abc", *base), 2)
    assert_clean(await cli("inspect", "user", *base), 2)
    assert_clean(await cli("inspect", "bot", "1", *base), 2)


# ----------------------------------------------------------------------------- export/import
async def add_odd_values(db: Any, namespace: str) -> None:
    """Values whose BSON type an export must keep exactly."""
    await db[f"{namespace}.user_data"].insert_one(
        {
            "_id": Int64(5),
            "data": {
                "i32": 1,
                "i64": Int64(1),
                "double": 1.0,
                "dec": Decimal128("1.10"),
                "bin": Binary(b"\x00\xff", 0),
                "uuid": Binary(b"0123456789abcdef", 4),
                "when": dtm.datetime(2024, 5, 6, 7, 8, 9, 123000),
                "unicode": "äöü ✓",
            },
            "updated_at": dtm.datetime(2024, 1, 1),
        }
    )


async def test_export_then_import_into_another_database_and_namespace_is_exact(
    tmp_path: Path, mongodb_uri: str, db_name: str, db: Any, client: AsyncMongoClient[Any]
) -> None:
    await migrate_fixture(mongodb_uri, db_name, "src")
    await add_odd_values(db, "src")
    backup = tmp_path / "backup.jsonl"
    result = await cli(
        "export", "-o", str(backup), "--uri", mongodb_uri, "-d", db_name, "-n", "src"
    )
    assert_clean(result)
    assert "Exported 9 documents" in result.output
    lines = backup.read_text().splitlines()
    assert len(lines) == 11
    assert json.loads(lines[0])["format"] == "mongo_persistence-export"
    assert {json.loads(line)["kind"] for line in lines[1:-1]} == set(KINDS)
    assert '"$numberLong"' in backup.read_text()  # canonical Extended JSON

    other_db = f"{db_name}_copy"
    try:
        args = ["import", str(backup), "--uri", mongodb_uri, "-d", other_db, "-n", "dst"]
        first = await cli(*args)
        assert_clean(first)
        assert "Imported 9 documents" in first.output
        expected = await raw_documents(db, "src")
        assert await raw_documents(client[other_db], "dst") == expected
        # twice: the same documents, no duplicates
        assert_clean(await cli(*args))
        assert await raw_documents(client[other_db], "dst") == expected
        # a bot on the copy sees what the original sees
        copy = MongoPersistence(client, database=other_db, namespace="dst")
        original = MongoPersistence(client, database=db_name, namespace="src")
        bot = ExtBot("999:NEW")
        for persistence in (copy, original):
            persistence.set_bot(bot)
        assert await copy.get_chat_data() == await original.get_chat_data()
        assert await copy.get_conversations("order") == await original.get_conversations("order")
    finally:
        await client.drop_database(other_db)


async def test_import_defaults_to_the_exports_namespace_and_reads_stdin(
    mongodb_uri: str, db_name: str, db: Any
) -> None:
    await migrate_fixture(mongodb_uri, db_name, "orig")
    exported = await cli("export", "--uri", mongodb_uri, "-d", db_name, "-n", "orig")
    assert_clean(exported)
    assert "Exported 8 documents" in exported.stderr  # the summary stays off standard output
    text = exported.stdout
    assert text.count("\n") == 10
    expected = await raw_documents(db, "orig")

    await db["orig.user_data"].delete_many({})
    await db["orig.conversations"].delete_one({"_id": '["order",42,42]'})
    result = await cli("import", "-", "--uri", mongodb_uri, "-d", db_name, stdin=text)
    assert_clean(result)
    assert "namespace 'orig'" in result.output
    assert await raw_documents(db, "orig") == expected

    plain = await cli("import", "-", "--uri", mongodb_uri, "-d", db_name, "-n", "", stdin=text)
    assert_clean(plain)
    assert "no namespace" in plain.output
    assert await raw_documents(db, None) == expected


async def test_export_to_a_file_is_written_whole_or_not_at_all(
    tmp_path: Path, mongodb_uri: str, db_name: str
) -> None:
    target = tmp_path / "out.jsonl"
    result = await cli(
        "export", "-o", str(target), "--uri", "mongodb://127.0.0.1:1", "--timeout", "0.2"
    )
    assert_clean(result, 1)
    assert not target.exists() and list(tmp_path.iterdir()) == []
    result = await cli("export", "-o", str(target), "--uri", mongodb_uri, "-d", db_name)
    assert_clean(result)
    assert "Exported 0 documents" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


# ----------------------------------------------------------------------------------- recover
async def test_recover_loads_what_flush_could_not_save(
    tmp_path: Path, mongodb_uri: str, db_name: str, db: Any
) -> None:
    server = LocalServer()
    server.start()
    try:
        persistence = MongoPersistence(
            server.uri,
            database=db_name,
            namespace="rec",
            flush_timeout=0.5,
            recovery_dir=tmp_path,
            client_kwargs={"serverSelectionTimeoutMS": 200},
        )
        await persistence.update_user_data(1, {"v": 1})
        await persistence.update_chat_data(-3, {"gone": True})
        server.kill()
        results = await asyncio.gather(
            persistence.update_user_data(1, {"v": 2, "t": (1, 2)}),
            persistence.update_bot_data({"b": 1}),
            persistence.drop_chat_data(-3),
            return_exceptions=True,
        )
        assert results == [None, None, None]  # kept in the journal
        await persistence.flush()
    finally:
        server.stop()
    recovery = persistence.last_recovery_file
    assert recovery is not None and recovery.exists()
    await db["rec.chat_data"].insert_one(
        {"_id": -3, "data": {}, "updated_at": dtm.datetime(2000, 1, 1)}
    )

    elsewhere = await cli("recover", str(recovery), "--uri", mongodb_uri, "-n", "other")
    assert_clean(elsewhere, 1)
    assert "belongs to namespace 'rec', not to 'other'; nothing was restored" in elsewhere.output

    # the file names the bot's database and namespace
    args = ["recover", str(recovery), "--uri", mongodb_uri]
    result = await cli(*args)
    assert_clean(result)
    # kept writes are diffs or merges (never blind replacements), and recorded as such
    assert "Recovering 3 entities (0 to write, 2 to merge, 1 to delete)" in result.output
    assert f"into database {db_name!r}, namespace 'rec'" in result.output
    assert "Restored 3, skipped 0" in result.output
    loader = MongoPersistence(mongodb_uri, database=db_name, namespace="rec")
    try:
        assert await loader.get_user_data() == {1: {"v": 2, "t": (1, 2)}}
        assert await loader.get_bot_data() == {"b": 1}
        assert await loader.get_chat_data() == {}
    finally:
        await loader.flush()
    # again: the database holds these very saves now, nothing older overwrites them
    again = await cli(*args)
    assert_clean(again)
    assert "skipped 2" in again.output


@pytest.mark.parametrize(
    ("option", "value", "kwarg"),
    [("-n", "shop bot", "namespace"), ("-n", "a.b", "namespace"), ("-n", "x/y", "namespace"),
     ("-d", "a b", "database"), ("-d", "", "database"), ("-d", "a/b", "database")],
)  # fmt: skip
def test_names_are_checked_by_the_library_s_rule(option: str, value: str, kwarg: str) -> None:
    with pytest.raises(ValueError) as info:
        MongoPersistence("mongodb://127.0.0.1:1", **{kwarg: value})
    result = invoke("inspect", "--uri", "mongodb://127.0.0.1:1", option, value)
    assert_clean(result, 1)
    assert result.output.strip() == f"Error: {info.value}"


async def test_check_lists_the_bad_documents_without_their_content(
    mongodb_uri: str, db_name: str, db: Any
) -> None:
    secret = "private-SECRET-value"
    bad = {"x": {"__type__": "set", "value": secret}}
    good = {"ok": {"__type__": "tuple", "value": [secret]}}
    assert sys.modules.get("json.tool") is None
    await db["user_data"].insert_many([{"_id": 1, "data": good}, {"_id": 2, "data": bad}])
    await db["chat_data"].insert_one(
        {"_id": -1, "data": {"e": {"__type__": "enum", "class": "json.tool:X", "name": secret}}}
    )
    await db["bot_data"].insert_one({"_id": "bot_data", "data": good})
    await db["conversations"].insert_many(
        [
            {
                "_id": '["c",1]',
                "name": "c",
                "key": [1],
                "state": {"__type__": "int", "value": secret},
            },
            {"_id": '["c",1.5]', "name": "c", "key": [1.5], "state": 1},  # the bot refuses it
        ]
    )
    # the bot refuses a callback data cache without its queries
    await db["callback_data"].insert_one({"_id": "callback_data", "data": {"keyboards": []}})
    result = await cli("check", "--uri", mongodb_uri, "-d", db_name)
    assert_clean(result, 1)
    assert "user_data[2]['x']: bad 'set' value: field 'value' must be an array" in result.output
    assert "chat_data[-1]['e']: cannot find class 'json.tool:X'" in result.output
    assert "conversations['[\"c\",1]']: bad 'int' value" in result.output
    assert "conversations['c'][_id='[\"c\",1.5]']['key']: the key holds" in result.output
    assert "callback_data: its 'data' field must hold 'keyboards' and 'queries'" in result.output
    assert "Checked 7 documents: 5 bad." in result.output
    assert "Error: 5 documents cannot be loaded" in result.output
    assert "user_data[1]" not in result.output and "bot_data" not in result.output
    assert secret not in result.output
    inspected = await cli("inspect", "--uri", mongodb_uri, "-d", db_name, "chat", "-1")
    assert "cannot find class 'json.tool:X'" in inspected.output, inspected.output
    assert secret not in inspected.output.split("raw", 1)[0]  # the decoded part
    assert sys.modules.get("json.tool") is None

    await db["user_data"].delete_one({"_id": 2})
    await db["chat_data"].delete_many({})
    await db["conversations"].delete_many({})
    await db["callback_data"].delete_many({})
    fine = await cli("check", "--uri", mongodb_uri, "-d", db_name)
    assert_clean(fine)
    assert "Checked 2 documents: none bad." in fine.output


async def test_check_accepts_the_documents_of_data_classes_holding_a_plain_value(
    make_persistence: Any, mongodb_uri: str, db_name: str, db: Any
) -> None:
    """context_types with int, float and complex data: the documents the bot writes and reads."""
    types = ContextTypes(user_data=int, chat_data=float, bot_data=complex)
    persistence = make_persistence(context_types=types)
    await persistence.update_user_data(1, 5)
    await persistence.update_chat_data(-1, 2.5)
    await persistence.update_bot_data(1 + 2j)
    await persistence.flush()
    assert (await db.user_data.find_one({"_id": 1}))["data"] == 5
    assert (await db.chat_data.find_one({"_id": -1}))["data"] == 2.5
    restarted = make_persistence(context_types=types)
    assert await restarted.get_user_data() == {1: 5}
    assert await restarted.get_bot_data() == 1 + 2j
    result = await cli("check", "--uri", mongodb_uri, "-d", db_name)
    assert_clean(result)
    assert "Checked 3 documents: none bad." in result.output
    # a plain value is no callback data cache
    await db["callback_data"].insert_one({"_id": "callback_data", "data": 5})
    refused = await cli("check", "--uri", mongodb_uri, "-d", db_name)
    assert_clean(refused, 1)
    assert "callback_data: its 'data' field is int, not a document" in refused.output
    await restarted.flush()


# ----------------------------------------------------------------------- the storage layer only
async def test_reading_commands_need_no_mongo_persistence(
    mongodb_uri: str, db_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """inspect, check, export, import and recover open the database with the storage layer."""
    await migrate_fixture(mongodb_uri, db_name)

    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("a command built a MongoPersistence")

    monkeypatch.setattr(MongoPersistence, "__init__", refuse)
    recovery = tmp_path / "recovery.jsonl"
    recovery.write_text(valid_recovery_file())
    export = tmp_path / "export.jsonl"
    target = ["--uri", mongodb_uri, "-d", db_name]
    for args in (
        ["inspect"],
        ["inspect", "user", "42"],
        ["check"],
        ["export", "-o", str(export)],
        ["import", str(export), "-n", "copy"],
        ["recover", str(recovery)],
    ):
        result = await cli(*args, *target)
        assert_clean(result)
    copied = await cli("inspect", "-n", "copy", *target)
    assert_clean(copied)
    assert "copy.user_data" in copied.output


async def test_a_refused_login_reads_the_same_from_the_command_and_from_the_bot(
    mongodb_uri: str, db_name: str
) -> None:
    """One translation of connection errors: the command says what the bot's start-up says."""
    uri = mongodb_uri.replace("mongodb://", f"mongodb://alice:{SECRET_URI_PART}@", 1)
    result = await cli("check", "--uri", uri, "-d", db_name, "--timeout", "30")
    assert_clean(result, 1)
    persistence = MongoPersistence(uri, database=db_name)
    with pytest.raises(PersistenceConnectionError) as raised:
        await persistence.get_bot_data()
    await persistence.flush()
    assert "refused the credentials or the access" in str(raised.value)
    assert result.output == f"Error: {raised.value}\n"
    assert SECRET_URI_PART not in result.output


def test_a_user_allowed_to_read_only_can_run_the_commands_that_only_read(tmp_path: Path) -> None:
    """inspect, check and export create no index: a read-only role is enough for them."""
    server = disk_server(tmp_path / "server")
    try:
        with MongoClient(server.uri, serverSelectionTimeoutMS=5000) as client:
            client.admin.command(
                "createUser", "reader", pwd="pw", roles=[{"role": "read", "db": "bot"}]
            )
        assert_clean(
            invoke(
                "migrate",
                "--from-pickle",
                str(DATA / "ptb21_single.pickle"),
                "--uri",
                server.uri,
                "-d",
                "bot",
            )
        )
        server.stop()  # a clean shutdown: the user must survive the restart
        server.extra_args = ("--auth",)
        server.start()
        reader = [
            "--uri",
            f"mongodb://reader:pw@127.0.0.1:{server.port}/?authSource=admin",
            "-d",
            "bot",
        ]
        for args in (
            ["inspect"],
            ["inspect", "user", "42"],
            ["inspect", "conversation", "order"],
            ["check"],
            ["export", "-o", str(tmp_path / "backup.jsonl")],
        ):
            assert_clean(invoke(*args, *reader))
        refused = invoke("import", str(tmp_path / "backup.jsonl"), *reader)
        assert_clean(refused, 1)
        assert "refused the credentials or the access" in refused.output
    finally:
        server.stop()
