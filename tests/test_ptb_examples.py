"""PTB's own example bots, unchanged, with MongoPersistence in place of PicklePersistence.

Each example's real ``main()`` runs several times on the same storage (bot restarts). Inside the
example module, ``PicklePersistence`` is replaced by a factory and ``Application.builder()`` by an
offline builder whose application plays a scripted list of updates where ``run_polling`` would
poll Telegram. Every scenario is played once with the real ``PicklePersistence`` and once with
``MongoPersistence``: the bot must say exactly the same things in both.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import itertools
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pymongo import MongoClient
from telegram import Update
from telegram.ext import Application, ApplicationBuilder, PicklePersistence

from mongo_persistence import MongoPersistence
from tests.ptb_offline import OfflineRequest, callback_update, message_update

pytest.importorskip(
    "cachetools", reason="arbitrary callback data needs python-telegram-bot[callback-data]"
)

EXAMPLES_DIR = Path(__file__).parent / "ptb_examples"
SHA256 = {
    "persistentconversationbot": "6db0eb2d5a4e7da5964c1e83585f9625b4416ac15acf3e8116dfa694dc1fed84",
    "arbitrarycallbackdatabot": "a3ff25c987088db7b0586d5d31d02b38460aa1568b93f4d50dface4c097ca253",
    "timerbot": "b2d049265f36fc58d49de75151218f10121b9f1eae6d726bfebae399cecce528",  # test_jobs.py
}

# A step makes the next update; it sees the application and the requests of all runs so far.
Step = Callable[[Application[Any, Any, Any, Any, Any, Any], list["OfflineRequest"]], Update]
_module_ids = itertools.count()


# ============================================================================ harness
class ScriptedApplication(Application[Any, Any, Any, Any, Any, Any]):
    """An Application whose ``run_polling`` plays a script instead of polling Telegram."""

    def __init__(self, *, script: list[Step], runs: list[OfflineRequest], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.script = script
        self.runs = runs

    def run_polling(self, *_: Any, **__: Any) -> None:  # type: ignore[override]
        asyncio.run(self._play())

    async def _play(self) -> None:
        # What run_polling does around the polling loop: initialize, start ... stop, shutdown
        # (shutdown runs update_persistence() once more and then persistence.flush()).
        async with self:
            await self.start()
            try:
                for step in self.script:
                    await self.process_update(step(self, self.runs))
                await self.update_persistence()  # as the periodic persistence job would
            finally:
                await self.stop()


def load_example(name: str) -> ModuleType:
    """A fresh copy of a vendored example module (its global state starts anew)."""
    path = EXAMPLES_DIR / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_ptb_example_{name}_{next(_module_ids)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def play(
    name: str,
    persistence_factory: Callable[..., Any],
    scripts: list[list[Step]],
    runs: list[OfflineRequest] | None = None,
) -> list[OfflineRequest]:
    """Runs the example's ``main()`` once per script (each one is a bot restart).

    :paramref:`runs` are earlier runs (of another persistence) that the steps may refer to.
    """
    runs = [] if runs is None else list(runs)
    for script in scripts:
        module = load_example(name)
        request = OfflineRequest()
        runs.append(request)

        class OfflineApplication:
            """Stands in for ``telegram.ext.Application`` inside the example module."""

            @staticmethod
            def builder(
                script: list[Step] = script, request: OfflineRequest = request
            ) -> ApplicationBuilder[Any, Any, Any, Any, Any, Any]:
                return (
                    ApplicationBuilder()
                    .application_class(ScriptedApplication, {"script": script, "runs": runs})
                    .request(request)
                    .get_updates_request(OfflineRequest())
                )

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(module, "Application", OfflineApplication)
            patch.setattr(module, "PicklePersistence", persistence_factory)
            module.main()
    return runs


def say(text: str) -> Step:
    return lambda app, _: message_update(app, text)


def keyboards(request: OfflineRequest) -> list[tuple[dict[str, Any], list[str]]]:
    """Every message with an inline keyboard the bot sent or edited in one run, in order."""
    out = []
    new_ids = itertools.count(1000)  # OfflineRequest numbers new messages this way
    for name, params in request.calls:
        if name not in ("sendMessage", "editMessageText"):
            continue
        message_id = params.get("message_id") or next(new_ids)
        markup = params.get("reply_markup")
        markup = json.loads(markup) if isinstance(markup, str) else markup
        if not markup or "inline_keyboard" not in markup:
            continue
        message = {
            "message_id": int(message_id),
            "chat": {"id": int(params["chat_id"]), "type": "private"},
            "from": {"id": 777000, "is_bot": True, "first_name": "Offline"},
            "text": params.get("text", ""),
            "reply_markup": markup,
        }
        buttons = [b["callback_data"] for row in markup["inline_keyboard"] for b in row]
        out.append((message, buttons))
    return out


def press(run: int, keyboard: int, button: int) -> Step:
    """Presses a button of a keyboard the bot sent in an earlier (or the current) run."""

    def step(app: Application[Any, Any, Any, Any, Any, Any], runs: list[OfflineRequest]) -> Update:
        message, data = keyboards(runs[run])[keyboard]
        return callback_update(app, message, data[button])

    return step


def transcript(runs: list[OfflineRequest]) -> list[tuple[Any, ...]]:
    """What the bot said, run by run; callback data ids are numbered by first appearance."""
    ids: dict[str, str] = {}
    out = []
    for number, request in enumerate(runs):
        for name, params in request.calls:
            if name not in ("sendMessage", "editMessageText"):
                continue
            markup = params.get("reply_markup")
            markup = json.loads(markup) if isinstance(markup, str) else markup
            if markup and "inline_keyboard" in markup:
                markup = [
                    [(b["text"], ids.setdefault(b["callback_data"], f"cb{len(ids)}")) for b in row]
                    for row in markup["inline_keyboard"]
                ]
            out.append(
                (number, name, params.get("message_id"), params.get("text"), json.dumps(markup))
            )
    return out


def texts(runs: list[OfflineRequest], run: int) -> list[str]:
    return [t for n, _, _, t, _ in transcript(runs) if n == run]


@pytest.fixture
def mongo_db(mongodb_uri: str, db_name: str) -> Iterator[str]:
    yield db_name
    with MongoClient(mongodb_uri) as client:
        client.drop_database(db_name)


@pytest.fixture
def factories(mongodb_uri: str, mongo_db: str, tmp_path: Path) -> dict[str, Callable[..., Any]]:
    def mongo(filepath: str, **_: Any) -> MongoPersistence[Any, Any, Any]:
        return MongoPersistence(mongodb_uri, database=mongo_db, update_interval=3600)

    def pickle(filepath: str, **kwargs: Any) -> PicklePersistence[Any, Any, Any]:
        return PicklePersistence(filepath=tmp_path / filepath, **kwargs)

    return {"mongo": mongo, "pickle": pickle}


# ============================================================================ tests
@pytest.mark.parametrize("name", sorted(SHA256))
def test_vendored_examples_are_unchanged(name: str) -> None:
    data = (EXAMPLES_DIR / f"{name}.py").read_bytes()
    assert hashlib.sha256(data).hexdigest() == SHA256[name]
    assert b"dedicated to the public domain under the CC0 license" in data


CONVERSATION = [
    [say("/start"), say("Age"), say("32"), say("Favourite colour")],
    # restart in the middle of the conversation: the bot waits for the colour
    [say("Blue"), say("Something else..."), say("Pet"), say("Cat"), say("/show_data"), say("Done")],
    # the conversation ended: /start is an entry point again and the facts are remembered
    [say("/start"), say("Age")],
]


def test_persistentconversationbot_resumes_like_with_pickle(
    factories: dict[str, Callable[..., Any]], mongodb_uri: str, mongo_db: str
) -> None:
    mongo = play("persistentconversationbot", factories["mongo"], CONVERSATION)
    pickle = play("persistentconversationbot", factories["pickle"], CONVERSATION)
    assert transcript(mongo) == transcript(pickle)

    # After the restart, "Blue" is the answer to the question asked before it.
    after_restart = texts(mongo, 1)
    assert after_restart[0].startswith("Neat! Just so you know, this is what you already told me:")
    assert "age - 32" in after_restart[0]
    assert "favourite colour - blue" in after_restart[0]
    assert "pet - cat" in after_restart[4]  # /show_data
    assert after_restart[5].startswith("I learned these facts about you:")
    third = texts(mongo, 2)
    assert "You already told me your age, favourite colour, pet." in third[0]
    assert third[1] == "Your age? I already know the following about that: 32"

    with MongoClient(mongodb_uri) as client:
        db = client[mongo_db]
        user = db.user_data.find_one({"_id": 42})
        assert user["data"] == {
            "age": "32",
            "favourite colour": "blue",
            "pet": "cat",
            "choice": "age",
        }
        conversation = db.conversations.find_one({"_id": '["my_conversation",42,42]'})
        assert conversation["name"] == "my_conversation"
        assert conversation["key"] == [42, 42]
        assert conversation["state"] == 1  # TYPING_REPLY


CALLBACKS = [
    # K0 = the keyboard of /start; pressing 2 edits the message: K1, and drops K0's data
    [say("/start"), press(0, 0, 1)],
    # after the restart: K1 still works, K0 is invalid, /start sends K3
    [press(0, 1, 3), press(0, 0, 0), say("/start")],
    # again: the keyboard edited in the previous run still works; /clear invalidates the rest
    [press(1, 0, 4), say("/clear"), press(1, 1, 0)],
]


def test_arbitrarycallbackdatabot_buttons_survive_restart_like_with_pickle(
    factories: dict[str, Callable[..., Any]], mongodb_uri: str, mongo_db: str
) -> None:
    mongo = play("arbitrarycallbackdatabot", factories["mongo"], CALLBACKS)
    pickle = play("arbitrarycallbackdatabot", factories["pickle"], CALLBACKS)
    assert transcript(mongo) == transcript(pickle)

    sorry = (
        "Sorry, I could not process this button click 😕 Please send /start to get a new keyboard."
    )
    assert texts(mongo, 0) == [
        "Please choose:",
        "So far you've selected [2]. Choose the next item:",
    ]
    assert texts(mongo, 1) == [
        "So far you've selected [2, 4]. Choose the next item:",
        sorry,
        "Please choose:",
    ]
    assert texts(mongo, 2) == [
        "So far you've selected [2, 4, 5]. Choose the next item:",
        "All clear!",
        sorry,
    ]

    with MongoClient(mongodb_uri) as client:
        stored = client[mongo_db].callback_data.find_one({"_id": "callback_data"})
    assert stored["data"] == {"keyboards": [], "queries": {}}  # /clear emptied the cache


# ============================================================================ migration
@pytest.mark.parametrize(
    ("name", "scripts"),
    [("persistentconversationbot", CONVERSATION), ("arbitrarycallbackdatabot", CALLBACKS)],
    ids=["conversation", "callback-data"],
)
def test_a_pickle_file_of_the_example_migrates_with_one_command_and_the_bot_resumes(
    name: str,
    scripts: list[list[Step]],
    mongodb_uri: str,
    mongo_db: str,
    tmp_path: Path,
    factories: dict[str, Callable[..., Any]],
) -> None:
    """The example runs on PicklePersistence, `mongo-persistence migrate` moves its file, and the
    example goes on on MongoPersistence exactly as it would have gone on on the pickle file."""
    first = play(name, factories["pickle"], scripts[:1])
    (pickle_file,) = [p for p in tmp_path.iterdir() if p.is_file()]
    migrate = subprocess.run(
        [sys.executable, "-m", "mongo_persistence", "migrate", "--from-pickle", str(pickle_file),
         "--uri", mongodb_uri, "--database", mongo_db, "--no-progress"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    migrated = play(name, factories["mongo"], scripts[1:], runs=first)

    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()

    def reference(filepath: str, **kwargs: Any) -> PicklePersistence[Any, Any, Any]:
        return PicklePersistence(filepath=reference_dir / filepath, **kwargs)

    assert transcript(migrated) == transcript(play(name, reference, scripts))
