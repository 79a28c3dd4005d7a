"""`make demo` (scripts/demo.py) as a user runs it: a subprocess that restarts itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "scripts" / "demo.py"


def run_demo(env_update: dict[str, str], unset: tuple[str, ...] = ()) -> str:
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(env_update)
    result = subprocess.run(
        [sys.executable, str(DEMO)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def assert_resumed(output: str) -> None:
    pids = re.findall(r"-- Process (\d) \(pid (\d+)\)", output)
    assert [n for n, _ in pids] == ["1", "2"]
    assert pids[0][1] != pids[1][1]  # really two processes
    first, _, second = output.partition("-- Process 2")
    assert "Alice: Number of siblings" in first
    assert "bot:   Your number of siblings? Yes, I would love to hear about that!" in first
    # The new process loads the facts and the conversation state...
    assert (
        "loaded user_data[42]: {'age': '32', 'favourite colour': 'blue', "
        "'choice': 'number of siblings'}" in second
    )
    assert "loaded conversation 'my_conversation' (42, 42): TYPING_REPLY" in second
    # ... so "2" is the answer to the question asked before the restart.
    answer = second.split("Alice: 2\n", 1)[1].split("Alice:", 1)[0]
    assert "Neat! Just so you know" in answer
    assert "age - 32" in answer
    assert "favourite colour - blue" in answer
    assert "number of siblings - 2" in answer
    # The documents, as mongosh shows them.
    documents = output.split("as mongosh shows them", 1)[1]
    for collection in ("bot_data", "chat_data", "conversations", "user_data"):
        assert f"> db.{collection}.find()" in documents
    assert '"data": {"age": "32", "favourite colour": "blue", "number of siblings": "2"}' in (
        documents
    )
    assert '"_id": "[\\"my_conversation\\",42,42]"' in documents
    assert '"__type__": "telegram"' in documents
    assert '"updated_at": {"$date": "' in documents


@pytest.fixture
def demo_db(mongodb_uri: str, db_name: str) -> Iterator[str]:
    yield db_name
    with MongoClient(mongodb_uri) as client:
        client.drop_database(db_name)


def test_demo_with_mongodb_uri(mongodb_uri: str, demo_db: str) -> None:
    env = {"MONGODB_URI": mongodb_uri, "DEMO_DATABASE": demo_db}
    output = run_demo(env)
    assert "MongoDB:  MONGODB_URI" in output
    assert_resumed(output)

    # The database is dropped first: a second run tells the same story.
    def story(text: str) -> str:
        return re.sub(r"pid \d+|\d{4}-\d\d-\d\dT[\d:.+Z]+|\"us\": \d+", "", text)

    assert story(run_demo(env)) == story(output)


def test_demo_with_its_own_server_on_disk(tmp_path: Path, db_name: str) -> None:
    output = run_demo(
        {"DEMO_DIR": str(tmp_path / "demo"), "DEMO_DATABASE": db_name}, unset=("MONGODB_URI",)
    )
    assert f"data on disk in {tmp_path / 'demo' / 'data'}" in output
    assert "(and so does MongoDB)" in output  # the second process restarts the server
    assert_resumed(output)
    assert (tmp_path / "demo" / "data").is_dir()
