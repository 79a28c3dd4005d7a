"""A running process's journal is its own: another start on the same namespace leaves it alone.

A bot process (``helpers/outage_bot.py``) writes to a server that is then killed, so its writes
are kept in its journal; a second persistence starts on the same database, namespace and recovery
directory, on a live server (a deploy overlap). It must neither replay nor remove the first
process's journal; once that process is SIGKILLed, the next start replays it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mongo_persistence import MongoPersistence
from tests.helpers.local_server import LocalServer
from tests.helpers.servers import disk_server

Factory = Callable[..., MongoPersistence[Any, Any, Any]]
HELPERS = Path(__file__).resolve().parent / "helpers"
USERS = 5


@pytest.fixture
def gone(tmp_path: Path) -> Iterator[LocalServer]:
    """A server of the bot process only, killed once the bot has written to it."""
    server = disk_server(tmp_path / "gone")
    try:
        yield server
    finally:
        server.kill()


class Bot:
    """The bot process, started once it keeps writes in its journal (its server killed)."""

    def __init__(self, gone: LocalServer, db_name: str, journal: Path) -> None:
        args = [gone.uri, db_name, str(USERS), str(journal)]
        self.process = subprocess.Popen(
            [sys.executable, str(HELPERS / "outage_bot.py"), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.pid = self.process.pid
        self.last = 0  # the last run it reported
        try:
            assert self.read_run() == 0
            gone.kill()
            while self.read_run() == 0:
                pass
        except BaseException:
            self.kill()
            raise

    def read_run(self) -> int:
        """Reads the next ``RUN <run> <pending>`` line of the bot; returns ``pending``."""
        bot = self.process
        assert bot.stdout is not None
        line = bot.stdout.readline()
        assert line.startswith("RUN "), (line, bot.stderr.read() if bot.stderr else "")
        _, run, pending = line.split()
        self.last = int(run)
        return int(pending)

    def kill(self) -> int:
        """SIGKILLs the bot; returns the last run it reported."""
        os.kill(self.pid, signal.SIGKILL)
        out, _ = self.process.communicate()
        assert self.process.returncode == -signal.SIGKILL
        runs = [int(line.split()[1]) for line in out.splitlines() if line.startswith("RUN ")]
        return max([self.last, *runs])


def _journals(directory: Path, pid: int) -> list[Path]:
    return list(directory.glob(f"mongo_persistence-journal-*.{pid}-*.jsonl"))


def _replays(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "Replayed the journal" in r.getMessage()]


def _assert_last_run(users: dict[int, Any], last: int) -> None:
    assert set(users) == set(range(USERS))
    for user, data in users.items():
        assert data["run"] in (last, last + 1), (user, data, last)
        assert data == {"run": data["run"], f"k{data['run'] % 3}": user}


async def test_a_running_process_journal_is_neither_replayed_nor_removed(
    gone: LocalServer,
    make_persistence: Factory,
    db: Any,
    db_name: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mongo_persistence")
    journal = tmp_path / "journal"
    bot = Bot(gone, db_name, journal)
    try:
        assert _journals(journal, bot.pid)
        second = make_persistence()
        assert await second.get_user_data() == {}
        assert await second.get_bot_data() == {}
        assert await db.user_data.count_documents({}) == 0
        assert _replays(caplog) == []
        assert any("held by a running process" in r.getMessage() for r in caplog.records)
        assert _journals(journal, bot.pid)  # still there, still the bot's
        assert bot.process.poll() is None
        await second.flush()
        assert bot.read_run() > 0  # the bot goes on keeping its writes
    finally:
        last = bot.kill()
    assert len(_journals(journal, bot.pid)) == 1

    restarted = make_persistence()
    _assert_last_run(await restarted.get_user_data(), last)
    assert (await restarted.get_bot_data())["run"] in (last, last + 1)
    assert _journals(journal, bot.pid) == []
    assert list(journal.glob("*.lock")) == []  # the replay removed the lock file too
    await restarted.flush()


async def test_two_starts_at_once_replay_a_journal_left_behind_once(
    gone: LocalServer,
    make_persistence: Factory,
    db_name: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mongo_persistence")
    journal = tmp_path / "journal"
    bot = Bot(gone, db_name, journal)
    last = bot.kill()
    (left,) = _journals(journal, bot.pid)

    first, second = make_persistence(), make_persistence()
    await asyncio.gather(first.get_user_data(), second.get_user_data())
    assert len(_replays(caplog)) == 1, _replays(caplog)
    assert left.name in _replays(caplog)[0]
    assert not left.exists()
    _assert_last_run(await make_persistence().get_user_data(), last)
    await first.flush()
    await second.flush()


async def test_a_journal_left_at_a_flush_is_replayed_while_its_process_still_runs(
    gone: LocalServer, make_persistence: Factory, db_name: str, tmp_path: Path
) -> None:
    """An old bot shut down during an outage (its flush left the journal) but its process has not
    exited yet: the new bot's start replays the journal (the lock was released at the flush)."""
    old = make_persistence(target=gone.uri, flush_timeout=0.3, write_timeout=0.5)
    assert await old.get_user_data() == {}
    gone.kill()
    await old.update_user_data(3, {"kept": True})
    assert old.health().pending == 1
    second = make_persistence()
    assert await second.get_user_data() == {}  # the old bot still runs: its journal is its own
    await second.flush()
    await old.flush()
    left = old.last_recovery_file
    assert left is not None and left.exists()
    assert list(left.parent.glob("*.lock")) == []

    new = make_persistence()
    assert await new.get_user_data() == {3: {"kept": True}}
    assert not left.exists()
    await new.flush()
