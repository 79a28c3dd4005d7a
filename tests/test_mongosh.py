"""The real Mongo shell (mongosh, the npm package installed by ``make mongosh``) against the test
server: what a user sees and does in the shell, and what the bot makes of it (issue 12).

mongosh missing is a failure, not a skip: ``make test`` installs it; run ``make mongosh``.
"""

from __future__ import annotations

import datetime as dtm
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bson import json_util

from mongo_persistence import MongoPersistence
from tests.ptb_offline import build_application, message_update

Factory = Callable[..., MongoPersistence[Any, Any, Any]]
ROOT = Path(__file__).resolve().parent.parent
MONGOSH = ROOT / ".cache" / "mongosh" / "node_modules" / ".bin" / "mongosh"
PINNED = re.search(r"^MONGOSH_VERSION \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M)
UTC = dtm.timezone.utc


@pytest.fixture(scope="module")
def mongosh() -> str:
    assert PINNED is not None, "the Makefile pins MONGOSH_VERSION"
    if not MONGOSH.exists():
        pytest.fail(
            f"mongosh {PINNED.group(1)} is not installed at {MONGOSH}: `make mongosh` installs it "
            "with npm (Node 20 and npm needed); if npm could not install it, its error is in the "
            "output of make.",
            pytrace=False,
        )
    version = subprocess.run(
        [str(MONGOSH), "--version"], capture_output=True, text=True, check=False, timeout=60
    ).stdout.strip()
    assert version == PINNED.group(1), f"mongosh {version}, but the Makefile pins {PINNED.group(1)}"
    return str(MONGOSH)


def shell_uri(mongodb_uri: str, db_name: str) -> str:
    base, _, query = mongodb_uri.partition("?")
    base = base.rstrip("/")
    if base.count("/") > 2:  # the URI names a database: replace it
        base = base.rsplit("/", 1)[0]
    return f"{base}/{db_name}?{query or 'directConnection=true'}"


@pytest.fixture
def sh(mongosh: str, mongodb_uri: str, db_name: str) -> Callable[[str], str]:
    """Runs JavaScript in mongosh on the test database; returns what it printed."""

    def run(script: str) -> str:
        done = subprocess.run(
            [mongosh, shell_uri(mongodb_uri, db_name), "--quiet", "--norc", "--eval", script],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    return run


def test_the_readme_documents_block_is_what_mongosh_prints(mongosh: str, mongodb_uri: str) -> None:
    """scripts/readme_documents.py runs a real bot and mongosh; README.md must show exactly that."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "readme_documents.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"MONGODB_URI": mongodb_uri, "MONGOSH": mongosh, "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    readme = (ROOT / "README.md").read_text()
    assert "ISODate('2026-03-01T12:30:15.250Z')" in readme  # real mongosh output: unquoted keys
    assert "  _id: 42,\n" in readme


async def test_mongosh_shows_dates_and_a_date_range_query_finds_the_right_users(
    sh: Callable[[str], str], make_persistence: Factory
) -> None:
    persistence = make_persistence()
    signups = {
        1: dtm.datetime(2025, 12, 31, 23, 0, tzinfo=UTC),
        2: dtm.datetime(2026, 1, 10, tzinfo=UTC),
        3: dtm.datetime(2026, 1, 20, 8, 0, 0, 1, tzinfo=UTC),  # microseconds: tagged
        4: dtm.datetime(2026, 2, 2, tzinfo=UTC),
    }
    for user_id, signup in signups.items():
        await persistence.update_user_data(user_id, {"signup": signup})
    await persistence.flush()
    signup = sh("print(db.user_data.findOne({_id: 2}).data.signup)")
    assert signup == "ISODate('2026-01-10T00:00:00.000Z')"
    shown = sh("printjson(db.user_data.findOne({_id: 2}).data)")
    assert shown == "{\n  signup: ISODate('2026-01-10T00:00:00.000Z')\n}"
    # the README's query
    found = sh(
        "const january = {$gte: ISODate('2026-01-01'), $lt: ISODate('2026-02-01')};"
        "print(JSON.stringify(db.user_data.find("
        "{$or: [{'data.signup': january}, {'data.signup.date': january}]}"
        ").sort({_id: 1}).toArray().map(d => d._id)))"
    )
    assert found == "[2,3]"


async def test_an_edit_in_mongosh_is_what_the_bot_sees_with_refresh_and_after_a_restart(
    sh: Callable[[str], str], make_persistence: Factory, db: Any
) -> None:
    seen: list[Any] = []

    async def record(update: Any, context: Any) -> None:
        seen.append(dict(context.user_data))
        context.user_data["visits"] = context.user_data.get("visits", 0) + 1

    from telegram.ext import MessageHandler, filters

    persistence = make_persistence(refresh=True)
    app, _ = build_application(persistence)
    app.add_handler(MessageHandler(filters.ALL, record))
    async with app:
        await app.process_update(message_update(app, "hi"))
        await app.update_persistence()
        await persistence.update_user_data(42, {**app.user_data[42], "age": 30})
        app.user_data[42]["age"] = 30
        sh(
            "db.user_data.updateOne({_id: 42}, {$set: {'data.age': '31',"
            " 'data.since': ISODate('2026-01-01T10:00:00Z')}})"
        )
        await app.process_update(message_update(app, "again"))
        since = dtm.datetime(2026, 1, 1, 10, tzinfo=UTC)  # aware UTC, as every BSON date
        assert seen[-1] == {"visits": 1, "age": "31", "since": since}
        assert seen[-1]["since"].tzinfo is UTC
        await app.update_persistence()
    stored = (await db["user_data"].find_one({"_id": 42}))["data"]
    assert stored == {"visits": 2, "age": "31", "since": since.replace(tzinfo=None)}

    sh("db.user_data.updateOne({_id: 42}, {$set: {'data.age': '32'}})")
    restarted = make_persistence()  # eager, no refresh: the restart reads the edit
    assert (await restarted.get_user_data())[42] == {"visits": 2, "age": "32", "since": since}
    await restarted.flush()


async def test_values_the_bot_did_not_change_stay_byte_for_byte_what_mongosh_wrote(
    sh: Callable[[str], str], make_persistence: Factory, db: Any
) -> None:
    sh(
        "db.user_data.insertOne({_id: 42, data: {"
        "signup: ISODate('2026-05-04T03:02:01.005Z'), n: 1, ratio: 0.5, big: NumberLong(5),"
        "nested: {at: ISODate('2020-01-01'), list: [1, 'two', ISODate('2021-02-03')]},"
        "id: ObjectId('64b7f0000000000000000000'), price: NumberDecimal('9.99')}})"
    )
    before = json_util.loads(sh("print(EJSON.stringify(db.user_data.findOne({_id: 42}).data))"))
    persistence = make_persistence()
    data = (await persistence.get_user_data())[42]
    assert data["signup"] == dtm.datetime(2026, 5, 4, 3, 2, 1, 5000, tzinfo=UTC)
    data["n"] = 2
    await persistence.update_user_data(42, data)
    await persistence.flush()
    after_js = sh("print(EJSON.stringify(db.user_data.findOne({_id: 42}).data))")
    after = json_util.loads(after_js)
    for key in ("signup", "ratio", "big", "nested", "id", "price"):
        assert json_util.dumps(after[key]) == json_util.dumps(before[key]), key
    assert after["n"] == 2
    # as mongosh sees them: still an ISODate, still a NumberLong
    types = sh(
        "const d = db.user_data.findOne({_id: 42}).data;"
        "print(d.signup instanceof Date, d.nested.list[2] instanceof Date, typeof d.big)"
    )
    assert types == "true true object"
    assert (
        sh("print(db.user_data.countDocuments({'data.signup': {$gte: ISODate('2026-05-01')}}))")
        == "1"
    )


def test_mongo_persistence_shell_opens_mongosh_on_the_bots_collections(
    mongosh: str, mongodb_uri: str, db_name: str
) -> None:
    from pymongo import MongoClient

    with MongoClient(mongodb_uri) as client:
        client[db_name]["mybot.user_data"].insert_one({"_id": 42, "data": {"name": "Ada"}})
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mongo_persistence",
                "shell",
                "--mongosh",
                mongosh,
                "--uri",
                shell_uri(mongodb_uri, db_name),
                "-n",
                "mybot",
                "--",
                "--quiet",
                "--norc",
                "--eval",
                "print(users.findOne({_id: 42}).data.name)",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "Ada"
        assert f"database '{db_name}', namespace 'mybot'" in done.stderr
    finally:
        with MongoClient(mongodb_uri) as client:
            client.drop_database(db_name)
