"""A pytest plugin that runs python-telegram-bot's own persistence tests against MongoPersistence.

Loaded with ``-p ptb_conformance`` into a run of PTB's test suite (from the sdist of the installed
PTB, see ``run.py``). It

- starts a local server (or uses ``MONGODB_URI``) and gives every test its own database, dropped
  afterwards;
- rebuilds ``TrackingPersistence`` of ``test_basepersistence.py`` on MongoPersistence: PTB's
  counters and in-memory copies stay, every ``update_*``/``drop_*`` also goes to MongoDB and is
  read back by a second instance and compared, every ``get_*`` returns what MongoDB holds;
- offers the PicklePersistence stand-in the patched ``test_picklepersistence.py`` imports (a file
  path names a namespace: "reload from file" is a new MongoPersistence on the same database);
- leaves out the tests that cannot apply, each with its reason, printed at the end of the run.

``MP_CONFORMANCE_MODE`` = ``eager`` (default), ``lazy`` or ``refresh`` picks the loading mode.
"""

from __future__ import annotations

import collections
import copy
import importlib.util
import json
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient, MongoClient
from telegram.ext import ContextTypes, PersistenceInput

from mongo_persistence import MongoPersistence

MODE = os.environ.get("MP_CONFORMANCE_MODE", "eager")
if MODE not in ("eager", "lazy", "refresh"):
    raise ValueError(f"MP_CONFORMANCE_MODE must be eager, lazy or refresh, not {MODE!r}")
MODE_OPTIONS = {"lazy": MODE == "lazy", "refresh": MODE == "refresh"}

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent.parent


class _State:
    uri: str = ""
    database: str = ""
    client: Any = None  # the test's own async client: every read-back uses it
    sync_client: Any = None  # and its synchronous one, for what other programs do
    made: list[MongoPersistence[Any, Any, Any]] = []  # noqa: RUF012 - reset for every test
    failures: list[str] = []  # noqa: RUF012


STATE = _State()


# ------------------------------------------------------------------ what is left out, and why
# (module, test name regex, modes or None for all, reason)
LEFT_OUT: list[tuple[str, str, tuple[str, ...] | None, str]] = [
    (
        "test_picklepersistence",
        r"test_on_flush\b",
        None,
        "on_flush buffering: MongoPersistence writes every update (PTB's update_interval batches)",
    ),
    (
        "test_picklepersistence",
        r"test_save_on_flush_",
        None,
        "on_flush buffering: MongoPersistence writes every update (PTB's update_interval batches)",
    ),
    (
        "test_picklepersistence",
        r"test_filepath_argument_types",
        None,
        "file paths; it also stores an int as user_data of dict context types, which "
        "MongoPersistence refuses at write time (ints as data classes: test_with_context_types)",
    ),
    (
        "test_dictpersistence",
        r".*",
        None,
        "DictPersistence's interface is JSON strings given to and read from the instance "
        "(*_json attributes); the same behaviours run through test_picklepersistence.py here",
    ),
    # Lazy mode loads no user or chat data at start-up: by design, application.user_data and
    # chat_data hold only the entities seen since the start (README, loading modes).
    (
        "test_basepersistence",
        r"test_initialization_basic",
        ("lazy",),
        "lazy mode: no user/chat data is loaded at start-up, by design",
    ),
    (
        "test_basepersistence",
        r"test_(drop|migrate)_chat_data",
        ("lazy",),
        "lazy mode refuses to drop a never-loaded chat that holds data (a drop cannot be told from "
        "migrate_chat_data(), which would lose it); tests/test_conformance_behaviours.py",
    ),
]


def _left_out(module: str, name: str) -> str | None:
    for mod, pattern, modes, reason in LEFT_OUT:
        if mod == module and re.match(pattern, name) and (modes is None or MODE in modes):
            return reason
    return None


# ------------------------------------------------------------------ server and databases
def _local_server() -> Any:
    spec = importlib.util.spec_from_file_location(
        "_mp_local_server", _ROOT / "tests" / "helpers" / "local_server.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LocalServer


_SERVER: Any = None


def pytest_configure(config: pytest.Config) -> None:
    global _SERVER  # noqa: PLW0603
    STATE.uri = os.environ.get("MONGODB_URI", "")
    if not STATE.uri:
        _SERVER = _local_server()(log_path=Path(config.rootpath) / f"secantusd-{MODE}.log")
        _SERVER.start()
        STATE.uri = _SERVER.uri


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SERVER is not None:
        _SERVER.stop()


@pytest.fixture(autouse=True)
async def _mongo_database() -> AsyncIterator[None]:
    STATE.database = f"mp_ptb_{uuid.uuid4().hex[:12]}"
    STATE.made = []
    STATE.failures = []
    STATE.client = AsyncMongoClient(STATE.uri, serverSelectionTimeoutMS=5000)
    STATE.sync_client = MongoClient(STATE.uri, serverSelectionTimeoutMS=5000)
    try:
        yield
        failures = list(STATE.failures)
        for made in STATE.made:
            await made.flush()  # closes the client it made
        STATE.sync_client.drop_database(STATE.database)
    finally:
        STATE.sync_client.close()
        await STATE.client.close()
    assert not failures, "MongoDB did not hold what PTB handed over:\n" + "\n".join(failures)


def persistence(namespace: str, **kwargs: Any) -> MongoPersistence[Any, Any, Any]:
    """A MongoPersistence on the test's database (a new one: a restart of the bot)."""
    kwargs = {**MODE_OPTIONS, **kwargs}
    made: MongoPersistence[Any, Any, Any] = MongoPersistence(
        STATE.uri, database=STATE.database, namespace=namespace, **kwargs
    )
    STATE.made.append(made)
    return made


def _namespace(filepath: object) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(filepath))


# ------------------------------------------------------------------ PicklePersistence stand-in
class MongoPicklePersistence(MongoPersistence[Any, Any, Any]):
    """PicklePersistence's constructor on MongoDB: the file path names the namespace."""

    __slots__ = ("filepath", "on_flush", "single_file")

    def __init__(
        self,
        filepath: Any,
        store_data: PersistenceInput | None = None,
        single_file: bool = True,
        on_flush: bool = False,
        update_interval: float = 60,
        context_types: ContextTypes[Any, Any, Any, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        options = {**MODE_OPTIONS, **kwargs}
        if context_types is not None:
            options["context_types"] = context_types
        super().__init__(
            STATE.uri,
            database=STATE.database,
            namespace=_namespace(filepath),
            store_data=store_data,
            update_interval=update_interval,
            **options,
        )
        self.filepath = Path(filepath)
        self.single_file = single_file
        self.on_flush = on_flush
        STATE.made.append(self)


async def stored(like: MongoPersistence[Any, Any, Any], kind: str, *args: Any) -> Any:
    """What a fresh instance on the same database and namespace loads (``get_<kind>``)."""
    reader = MongoPersistence(
        STATE.client,  # handed in: the reader's flush() leaves it open
        database=STATE.database,
        namespace=like.namespace,
        context_types=like.context_types,
    )
    if like.bot is not None:
        reader.set_bot(like.bot)
    try:
        return await getattr(reader, f"get_{kind}")(*args)
    finally:
        await reader.flush()


async def write_documents(filepath: str, **data: Any) -> None:
    """Writes documents as a bot using the PicklePersistence ``filepath`` would have."""
    writer = MongoPersistence(STATE.client, database=STATE.database, namespace=_namespace(filepath))
    for user_id, value in data.get("user_data", {}).items():
        await writer.update_user_data(user_id, value)
    for chat_id, value in data.get("chat_data", {}).items():
        await writer.update_chat_data(chat_id, value)
    if "bot_data" in data:
        await writer.update_bot_data(data["bot_data"])
    if "callback_data" in data:
        await writer.update_callback_data(data["callback_data"])
    for name, states in data.get("conversations", {}).items():
        for key, state in states.items():
            await writer.update_conversation(name, key, state)
    await writer.flush()


def write_raw(filepath: str, collection: str, document: dict[str, Any]) -> None:
    """Writes one document as another program would (a corrupt "file")."""
    STATE.sync_client[STATE.database][f"{_namespace(filepath)}.{collection}"].insert_one(document)


def documents(filepath: str) -> int:
    """How many documents the bot using the PicklePersistence ``filepath`` has stored."""
    prefix = f"{_namespace(filepath)}."
    db = STATE.sync_client[STATE.database]
    names = [n for n in db.list_collection_names() if n.startswith(prefix)]
    return sum(db[name].count_documents({}) for name in names)


def drop_documents(filepath: str) -> None:
    """Deletes every document of that bot, behind its persistence's back (as deleting a file)."""
    prefix = f"{_namespace(filepath)}."
    db = STATE.sync_client[STATE.database]
    for name in db.list_collection_names():
        if name.startswith(prefix):
            db[name].delete_many({})


# ------------------------------------------------------------------ TrackingPersistence on MongoDB
class _Backed(MongoPersistence[Any, Any, Any]):
    __slots__ = ()

    def __init__(self, store_data: PersistenceInput | None = None, update_interval: float = 60):
        super().__init__(
            STATE.uri,
            database=STATE.database,
            # One namespace per instance: PTB's TrackingPersistence keeps its data per instance.
            namespace=f"tracking{len(STATE.made)}",
            store_data=store_data,
            update_interval=update_interval,
            **MODE_OPTIONS,
        )
        STATE.made.append(self)


def _tracking_on_mongo(original: type) -> type:
    """PTB's TrackingPersistence with MongoDB behind each of its methods."""
    namespace = {
        k: v
        for k, v in vars(original).items()
        if k not in ("__dict__", "__weakref__", "__init__", "__module__", "__qualname__")
    }
    call = {name: getattr(original, name) for name in namespace if callable(namespace[name])}

    def __init__(self: Any, store_data: Any = None, update_interval: float = 60, fill_data=False):
        _Backed.__init__(self, store_data=store_data, update_interval=update_interval)
        # PTB's own __init__, after its super().__init__() call:
        self.updated_chat_ids = collections.Counter()
        self.updated_user_ids = collections.Counter()
        self.refreshed_chat_ids = collections.Counter()
        self.refreshed_user_ids = collections.Counter()
        self.dropped_chat_ids = collections.Counter()
        self.dropped_user_ids = collections.Counter()
        self.updated_conversations = collections.defaultdict(collections.Counter)
        self.updated_bot_data = False
        self.refreshed_bot_data = False
        self.updated_callback_data = False
        self.flushed = False
        self.chat_data = collections.defaultdict(dict)
        self.user_data = collections.defaultdict(dict)
        self.conversations = collections.defaultdict(dict)
        self.bot_data = {}
        self.callback_data = ([], {})
        self._mp_seeded = False
        if fill_data:
            self.fill()

    async def seed(self: Any) -> None:
        """Puts PTB's prepared data (``fill()``) into MongoDB before anything is read."""
        if self._mp_seeded:
            return
        self._mp_seeded = True
        for user_id, value in self.user_data.items():
            await backed(self, "update_user_data", user_id, copy.deepcopy(value))
        for chat_id, value in self.chat_data.items():
            await backed(self, "update_chat_data", chat_id, copy.deepcopy(value))
        await backed(self, "update_bot_data", copy.deepcopy(self.bot_data))
        await backed(self, "update_callback_data", copy.deepcopy(self.callback_data))
        for name, states in self.conversations.items():
            for key, state in states.items():
                await backed(self, "update_conversation", name, key, state)

    async def backed(self: Any, method: str, *args: Any) -> Any:
        """Calls MongoPersistence's method; PTB hands errors to error handlers: record them."""
        try:
            return await getattr(_Backed, method)(self, *args)
        except Exception as exc:
            STATE.failures.append(f"{method}{args!r} raised {exc!r}")
            raise

    def expect(self: Any, what: str, found: Any, wanted: Any) -> None:
        if found != wanted:
            STATE.failures.append(f"{what}: MongoDB has {found!r}, PTB handed over {wanted!r}")

    async def get_loaded(self: Any, kind: str, *args: Any) -> Any:
        await seed(self)
        expected = await call[f"get_{kind}"](self, *args)
        loaded = await backed(self, f"get_{kind}", *args)
        if not (MODE == "lazy" and kind in ("user_data", "chat_data")):
            expect(self, f"get_{kind}{args}", loaded, expected)
        return loaded

    def getter(kind: str) -> Any:
        async def get(self: Any, *args: Any) -> Any:
            return await get_loaded(self, kind, *args)

        get.__name__ = f"get_{kind}"
        return get

    async def update_user_data(self: Any, user_id: int, data: Any) -> None:
        await call["update_user_data"](self, user_id, data)
        await backed(self, "update_user_data", user_id, data)
        expect(self, f"user_data[{user_id}]", (await stored(self, "user_data")).get(user_id), data)

    async def update_chat_data(self: Any, chat_id: int, data: Any) -> None:
        await call["update_chat_data"](self, chat_id, data)
        await backed(self, "update_chat_data", chat_id, data)
        expect(self, f"chat_data[{chat_id}]", (await stored(self, "chat_data")).get(chat_id), data)

    async def update_bot_data(self: Any, data: Any) -> None:
        await call["update_bot_data"](self, data)
        await backed(self, "update_bot_data", data)
        expect(self, "bot_data", await stored(self, "bot_data"), data)

    async def update_callback_data(self: Any, data: Any) -> None:
        await call["update_callback_data"](self, data)
        await backed(self, "update_callback_data", data)
        expect(self, "callback_data", await stored(self, "callback_data"), data)

    async def update_conversation(self: Any, name: str, key: Any, new_state: Any) -> None:
        await call["update_conversation"](self, name, key, new_state)
        await backed(self, "update_conversation", name, key, new_state)
        found = (await stored(self, "conversations", name)).get(key)
        expect(self, f"conversations[{name!r}][{key!r}]", found, new_state)

    async def drop_user_data(self: Any, user_id: int) -> None:
        await call["drop_user_data"](self, user_id)
        await backed(self, "drop_user_data", user_id)
        expect(
            self, f"dropped user_data[{user_id}]", user_id in await stored(self, "user_data"), False
        )

    async def drop_chat_data(self: Any, chat_id: int) -> None:
        await call["drop_chat_data"](self, chat_id)
        await backed(self, "drop_chat_data", chat_id)
        expect(
            self, f"dropped chat_data[{chat_id}]", chat_id in await stored(self, "chat_data"), False
        )

    async def refresh_user_data(self: Any, user_id: int, user_data: Any) -> None:
        await backed(self, "refresh_user_data", user_id, user_data)
        await call["refresh_user_data"](self, user_id, user_data)

    async def refresh_chat_data(self: Any, chat_id: int, chat_data: Any) -> None:
        await backed(self, "refresh_chat_data", chat_id, chat_data)
        await call["refresh_chat_data"](self, chat_id, chat_data)

    async def refresh_bot_data(self: Any, bot_data: Any) -> None:
        await backed(self, "refresh_bot_data", bot_data)
        await call["refresh_bot_data"](self, bot_data)

    async def flush(self: Any) -> None:
        await call["flush"](self)
        await _Backed.flush(self)

    namespace.update(
        __init__=__init__,
        __module__=original.__module__,
        __qualname__=original.__qualname__,
        __doc__=(original.__doc__ or "") + " Backed by MongoDB (mongo_persistence conformance).",
        get_user_data=getter("user_data"),
        get_chat_data=getter("chat_data"),
        get_bot_data=getter("bot_data"),
        get_callback_data=getter("callback_data"),
        get_conversations=getter("conversations"),
        update_user_data=update_user_data,
        update_chat_data=update_chat_data,
        update_bot_data=update_bot_data,
        update_callback_data=update_callback_data,
        update_conversation=update_conversation,
        drop_user_data=drop_user_data,
        drop_chat_data=drop_chat_data,
        refresh_user_data=refresh_user_data,
        refresh_chat_data=refresh_chat_data,
        refresh_bot_data=refresh_bot_data,
        flush=flush,
    )
    return type(original.__name__, (_Backed,), namespace)


# ------------------------------------------------------------------ collection and report
REPORT: dict[str, Any] = {"mode": MODE, "left_out": {}, "outcomes": {}}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    swapped: set[str] = set()
    kept = []
    for item in items:
        module = item.module if isinstance(item, pytest.Function) else None
        if module is None:
            kept.append(item)
            continue
        name = module.__name__.rpartition(".")[2]
        if name == "test_basepersistence" and module.__name__ not in swapped:
            swapped.add(module.__name__)
            module.TrackingPersistence = _tracking_on_mongo(module.TrackingPersistence)
        reason = _left_out(name, item.name)
        if reason is None:
            kept.append(item)
        else:
            REPORT["left_out"][f"{name}::{item.name}"] = reason
    config.hook.pytest_deselected(items=[i for i in items if i not in kept])
    items[:] = kept


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        outcome = REPORT["outcomes"].get(report.nodeid)
        if outcome in (None, "passed"):
            REPORT["outcomes"][report.nodeid] = report.outcome


def pytest_terminal_summary(terminalreporter: Any) -> None:
    reasons = collections.Counter(REPORT["left_out"].values())
    terminalreporter.section(f"mongo_persistence conformance ({MODE} mode): left out")
    for reason, count in sorted(reasons.items()):
        terminalreporter.write_line(f"{count:4d}  {reason}")
    out = os.environ.get("MP_CONFORMANCE_REPORT")
    if out:
        Path(out).write_text(json.dumps(REPORT, indent=1, sort_keys=True))
