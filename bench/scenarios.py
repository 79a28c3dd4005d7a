"""The bench scenarios S1-S5 and the memory probe, each run for every implementation side by side.

Every scenario returns :class:`bench.common.Row` objects; nothing here asserts on time.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dtm
import json
import pickle
import statistics
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bson
from pymongo import AsyncMongoClient, ReplaceOne, UpdateOne
from telegram.ext import DictPersistence, ExtBot, MessageHandler, PicklePersistence, filters

from bench import competitors
from bench.common import (
    DATABASE,
    EPOCH,
    ROOT,
    Measure,
    Row,
    Sample,
    Settings,
    chat_data,
    json_safe,
    rich_user_data,
    say,
    timed,
    timed_sync,
    user_data,
)
from bench.monitor import READ_COMMANDS, CommandLog
from mongo_persistence import MongoPersistence
from mongo_persistence._codec.codec import Codec
from tests.ptb_offline import TOKEN, build_application, message_update

OURS = "mongo_persistence"
RAW = "raw pymongo bulk_write"
RAW_DIFF = "raw pymongo bulk_write ($set diff)"
RAW_READ = "raw pymongo cursor"
DICT = "DictPersistence"
PICKLE = "PicklePersistence"
MP = competitors.LABEL


def human(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


class Env:
    """The connections the scenarios share: one client per implementation, each with its log."""

    def __init__(
        self, uri: str, settings: Settings, workdir: Path, *, install: bool = True
    ) -> None:
        self.uri = uri
        self.settings = settings
        self.workdir = workdir
        self.log = CommandLog(keep_documents=False)
        self.raw_log = CommandLog(keep_documents=False)
        self.mp_log = CommandLog(keep_documents=False)
        self.client: AsyncMongoClient[Any] = AsyncMongoClient(uri, event_listeners=[self.log])
        self.raw: AsyncMongoClient[Any] = AsyncMongoClient(uri, event_listeners=[self.raw_log])
        self.db = self.raw[DATABASE]
        self.bot = ExtBot(TOKEN)
        self.mp_class, self.mp_reason = competitors.load(install=install)
        self.motor: Any = None

    async def open(self) -> None:
        await self.raw.drop_database(DATABASE)
        await self.client.admin.command("ping")
        await self.raw.admin.command("ping")
        if self.mp_class is not None:
            self.motor = competitors.motor_client(self.uri, self.mp_log)
            await self.motor.admin.command("ping")

    async def close(self) -> None:
        await self.raw.drop_database(DATABASE)
        await self.client.close()
        await self.raw.close()
        if self.motor is not None:
            self.motor.close()

    def ours(self, namespace: str, **kwargs: Any) -> MongoPersistence[Any, Any, Any]:
        # The local server, written in Python, can take more than the default 2 s deadline for
        # one bulk_write of 10k documents on a busy machine: the bench measures the steady
        # state, not an outage (kept writes, their journal in the bench's own directory).
        kwargs.setdefault("write_timeout", 60.0)
        kwargs.setdefault("recovery_dir", self.workdir)
        return MongoPersistence(self.client, database=DATABASE, namespace=namespace, **kwargs)

    async def theirs(self, prefix: str, **kwargs: Any) -> Any:
        """A mongopersistence instance writing at every update_* call (load_on_flush=False)."""
        assert self.mp_class is not None
        instance = self.mp_class(
            kwargs.pop("client", self.motor),
            DATABASE,
            name_col_user_data=f"{prefix}.user_data",
            name_col_chat_data=f"{prefix}.chat_data",
            name_col_bot_data=f"{prefix}.bot_data",
            name_col_conversations_data=f"{prefix}.conversations",
            load_on_flush=kwargs.pop("load_on_flush", False),
            **kwargs,
        )
        await instance.post_init()
        return instance

    def pickle(self, name: str, **kwargs: Any) -> PicklePersistence[Any, Any, Any]:
        persistence = PicklePersistence(self.workdir / f"{name}.pickle", **kwargs)
        persistence.set_bot(self.bot)
        return persistence

    async def drop(self, *names: str) -> None:
        for name in names:
            await self.db.drop_collection(name)


async def gather_users(persistence: Any, items: list[tuple[int, Any]]) -> None:
    """Hands user data over as PTB's update_persistence() does: all calls in one gather."""
    results = await asyncio.gather(
        *(persistence.update_user_data(uid, data) for uid, data in items), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise errors[0]


def users(n: int, rev: int) -> list[tuple[int, dict[str, Any]]]:
    return [(uid, user_data(uid, rev)) for uid in range(1, n + 1)]


Prepare = Callable[[int], Awaitable[Callable[[], Awaitable[Any]]]]


@dataclass
class Contender:
    """One implementation in a scenario: ``prepare(rep)`` (untimed) returns the timed run."""

    label: str
    prepare: Prepare
    log: CommandLog | None = None
    after: Callable[[int], Awaitable[Any]] | None = None
    reps: int | None = None
    note: str = ""
    samples: list[Sample] = field(default_factory=list)


async def contest(
    settings: Settings, title: str, reps: int, contenders: list[Contender]
) -> dict[str, Measure]:
    """Runs the contenders' repetitions interleaved (rotating the order), so that a slow phase of
    the server or of the garbage collector does not hit one implementation only."""
    rounds = max(c.reps or reps for c in contenders)
    for rep in range(rounds):
        shift = rep % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            if rep >= (contender.reps or reps):
                continue
            say(settings, f"{title}: {contender.label} ({rep + 1}/{contender.reps or reps})")
            run = await contender.prepare(rep)
            contender.samples.append(await timed(run, contender.log))
            if contender.after is not None:
                await contender.after(rep)
    return {c.label: Measure.of(c.label, c.samples, c.note) for c in contenders}


def pickle_default_estimate(
    env: Env, label: str, entities: dict[str, dict[int, Any]], dumps: int
) -> Measure:
    """PicklePersistence(on_flush=False) rewrites its whole file once per changed entity: the time
    of one measured dump of this data times the number of dumps."""
    persistence = env.pickle("estimate")
    persistence.user_data = entities.get("user_data", {})
    persistence.chat_data = entities.get("chat_data", {})
    persistence.bot_data = {}
    persistence.conversations = {}
    samples = [timed_sync(persistence._dump_singlefile) for _ in range(3)]
    one = statistics.median(sample.wall for sample in samples)
    cpu = statistics.median(sample.cpu for sample in samples)
    return Measure(
        label,
        one * dumps,
        cpu * dumps,
        reps=0,
        note=f"estimated, not run: {dumps} dumps x {one * 1e3:.1f} ms (one measured dump); O(N²)",
    )


# =============================================================================== S1 + S2
async def s1_new(env: Env, n: int) -> Row:
    """First write of N users nobody knows yet: whole documents, upserted."""
    st = env.settings
    title = f"S1 new users N={n}"
    stored_all: list[bool] = []

    async def ours(rep: int) -> Callable[[], Awaitable[Any]]:
        persistence = env.ours(f"s1new{n}r{rep}")
        await persistence._store.ensure_ready()
        items = users(n, 0)
        return lambda: gather_users(persistence, items)

    async def drop_ours(rep: int) -> None:
        if rep == 0:
            count = await env.db[f"s1new{n}r{rep}.user_data"].count_documents({})
            stored_all.append(count == n)
        await env.drop(f"s1new{n}r{rep}.user_data")

    async def raw(rep: int) -> Callable[[], Awaitable[Any]]:
        collection = env.db[f"raws1new{n}r{rep}"]
        items = users(n, 0)

        async def run() -> None:
            now = dtm.datetime.now(dtm.timezone.utc)
            models = [
                ReplaceOne({"_id": uid}, {"_id": uid, "data": data, "updated_at": now}, upsert=True)
                for uid, data in items
            ]
            await collection.bulk_write(models, ordered=False)

        return run

    async def drop_raw(rep: int) -> None:
        await env.drop(f"raws1new{n}r{rep}")

    contenders = [
        Contender(OURS, ours, env.log, drop_ours),
        Contender(RAW, raw, env.raw_log, drop_raw),
        *ptb_contenders(env, n, "new"),
    ]
    if env.mp_class is not None:

        async def theirs(rep: int) -> Callable[[], Awaitable[Any]]:
            instance = await env.theirs(f"mps1new{n}r{rep}")
            items = users(n, 0)
            return lambda: gather_users(instance, items)

        async def drop_theirs(rep: int) -> None:
            await env.drop(f"mps1new{n}r{rep}.user_data")

        contenders.append(
            Contender(
                MP,
                theirs,
                env.mp_log,
                drop_theirs,
                reps=st.slow_reps_for(n),
                note="load_on_flush=False: find_one + insert_one per user",
            )
        )
    measures = await contest(st, title, st.reps_for(n), contenders)
    ours_m = measures.pop(OURS)
    baselines = list(measures.values())
    if env.mp_class is None:
        baselines.append(Measure.skipped(MP, env.mp_reason))
    if n > st.pickle_default_max:
        baselines.append(
            pickle_default_estimate(
                env, PICKLE_DEFAULT, {"user_data": dict(users(n, 0))}, dumps=n // 2
            )
        )
    return Row(
        f"S1 flush of {human(n)} new users (whole documents)",
        ours_m,
        baselines,
        "≤ 1.3x raw, 1 write command",
        ratio_to=RAW,
        limit=1.3,
        checks=[
            ("one write command per collection", ours_m.writes == 1),
            ("all documents stored", all(stored_all)),
        ],
    )


PICKLE_FLUSH = f"{PICKLE} (on_flush=True + flush())"
PICKLE_DEFAULT = f"{PICKLE} (default on_flush=False)"


def ptb_contenders(env: Env, n: int, kind: str) -> list[Contender]:
    """DictPersistence and PicklePersistence handed the same users."""
    st = env.settings

    def rev(rep: int) -> int:
        return rep + 1 if kind == "dirty" else 0

    async def dict_prepare(rep: int) -> Callable[[], Awaitable[Any]]:
        persistence = DictPersistence()
        await persistence.get_user_data()
        if kind == "dirty":
            await gather_users(persistence, users(n, 0))
        items = users(n, rev(rep))
        return lambda: gather_users(persistence, items)

    async def pickle_flush(rep: int) -> Callable[[], Awaitable[Any]]:
        persistence = env.pickle(f"s1{kind}{n}r{rep}", on_flush=True)
        await persistence.get_user_data()
        if kind == "dirty":
            await gather_users(persistence, users(n, 0))
            await persistence.flush()
        items = users(n, rev(rep))

        async def run() -> None:
            await gather_users(persistence, items)
            await persistence.flush()

        return run

    async def pickle_default(rep: int) -> Callable[[], Awaitable[Any]]:
        persistence = env.pickle(f"s1d{kind}{n}r{rep}")
        await persistence.get_user_data()
        if kind == "dirty":
            persistence.on_flush = True
            await gather_users(persistence, users(n, 0))
            persistence.on_flush = False
        items = users(n, rev(rep))
        return lambda: gather_users(persistence, items)

    out = [
        Contender(DICT, dict_prepare, note="in memory only, nothing saved"),
        Contender(PICKLE_FLUSH, pickle_flush, note="one dump of the whole file per run"),
    ]
    if n <= st.pickle_default_max:
        out.append(
            Contender(
                PICKLE_DEFAULT,
                pickle_default,
                reps=st.slow_reps_for(n),
                note="one dump of the whole file per changed user: O(N²)",
            )
        )
    return out


async def s1_dirty_and_s2_idle(env: Env, n: int) -> list[Row]:
    """N known users each changed two top-level keys; then the same data again (idle)."""
    st = env.settings
    title = f"S1 dirty users N={n}"
    say(st, f"{title}: seeding")
    persistence = env.ours(f"s1dirty{n}")
    await persistence._store.ensure_ready()
    await gather_users(persistence, users(n, 0))
    bot_data = {"motd": "hello", "counters": {"a": 1}}
    callback_data: Any = ([("kb", 1.0, {"b": "x"})], {"q": "kb"})
    await persistence.update_bot_data(copy.deepcopy(bot_data))
    await persistence.update_callback_data(copy.deepcopy(callback_data))
    raw_replace = env.db[f"raws1dirty{n}"]
    raw_diff = env.db[f"raws1diff{n}"]
    for collection in (raw_replace, raw_diff):
        await collection.insert_many(
            [{"_id": uid, "data": data, "updated_at": EPOCH} for uid, data in users(n, 0)]
        )
    last_rev: dict[str, int] = {}

    async def ours(rep: int) -> Callable[[], Awaitable[Any]]:
        items = users(n, rep + 1)
        last_rev[OURS] = rep + 1
        return lambda: gather_users(persistence, items)

    async def raw(rep: int) -> Callable[[], Awaitable[Any]]:
        items = users(n, rep + 1)

        async def run() -> None:
            now = dtm.datetime.now(dtm.timezone.utc)
            models = [
                ReplaceOne({"_id": uid}, {"_id": uid, "data": data, "updated_at": now}, upsert=True)
                for uid, data in items
            ]
            await raw_replace.bulk_write(models, ordered=False)

        return run

    async def diff(rep: int) -> Callable[[], Awaitable[Any]]:
        items = users(n, rep + 1)

        async def run() -> None:
            now = dtm.datetime.now(dtm.timezone.utc)
            models = [
                UpdateOne(
                    {"_id": uid},
                    {
                        "$set": {
                            "data.visits": data["visits"],
                            "data.last_seen": data["last_seen"],
                            "updated_at": now,
                        }
                    },
                    upsert=True,
                )
                for uid, data in items
            ]
            await raw_diff.bulk_write(models, ordered=False)

        return run

    contenders = [
        Contender(OURS, ours, env.log),
        Contender(RAW_DIFF, diff, env.raw_log, note="only the 2 changed keys"),
        Contender(RAW, raw, env.raw_log, note="whole documents"),
        *ptb_contenders(env, n, "dirty"),
    ]
    mp_instance: Any = None
    if env.mp_class is not None:
        mp_instance = await env.theirs(f"mps1dirty{n}")
        say(st, f"{title}: seeding {MP}")
        await gather_users(mp_instance, users(n, 0))

        async def theirs(rep: int) -> Callable[[], Awaitable[Any]]:
            items = users(n, rep + 1)
            last_rev[MP] = rep + 1
            return lambda: gather_users(mp_instance, items)

        contenders.append(
            Contender(
                MP,
                theirs,
                env.mp_log,
                reps=st.slow_reps_for(n),
                note="find_one + replace_one per user",
            )
        )
    measures = await contest(st, title, st.reps_for(n), contenders)
    ours_m = measures.pop(OURS)
    baselines = list(measures.values())
    if env.mp_class is None:
        baselines.append(Measure.skipped(MP, env.mp_reason))
    if n > st.pickle_default_max:
        baselines.append(
            pickle_default_estimate(env, PICKLE_DEFAULT, {"user_data": dict(users(n, 1))}, dumps=n)
        )
    stored = await env.db[f"s1dirty{n}.user_data"].find_one({"_id": n})
    dirty_ok = stored is not None and stored["data"]["visits"] == n + last_rev[OURS]
    dirty = Row(
        f"S1 flush of {human(n)} dirty users (2 keys changed each)",
        ours_m,
        baselines,
        "≤ 1.3x raw diff, 1 write command",
        ratio_to=RAW_DIFF,
        limit=1.3,
        checks=[("one write command per collection", ours_m.writes == 1), ("stored", dirty_ok)],
    )

    # ------------------------------------------------------------------ S2: the same data again
    title = f"S2 idle N={n}"
    commands: list[int] = []

    async def idle(rep: int) -> Callable[[], Awaitable[Any]]:
        items = users(n, last_rev[OURS])

        async def run() -> None:
            await asyncio.gather(
                gather_users(persistence, items),
                persistence.update_bot_data(copy.deepcopy(bot_data)),
                persistence.update_callback_data(copy.deepcopy(callback_data)),
            )
            commands.append(env.log.total())

        return run

    async def dict_idle(rep: int) -> Callable[[], Awaitable[Any]]:
        dict_persistence = DictPersistence()
        await gather_users(dict_persistence, users(n, 1))
        items = users(n, 1)
        return lambda: gather_users(dict_persistence, items)

    async def pickle_idle(rep: int) -> Callable[[], Awaitable[Any]]:
        pickle_persistence = env.pickle(f"s2{n}r{rep}", on_flush=True)
        await pickle_persistence.get_user_data()
        await gather_users(pickle_persistence, users(n, 1))
        pickle_persistence.on_flush = False
        items = users(n, 1)
        return lambda: gather_users(pickle_persistence, items)

    idle_contenders = [
        Contender(OURS, idle, env.log, note="+ idle update_bot_data/update_callback_data"),
        Contender(DICT, dict_idle),
        Contender(PICKLE_DEFAULT, pickle_idle, note="equal data: no dump"),
    ]
    if mp_instance is not None:

        async def mp_idle(rep: int) -> Callable[[], Awaitable[Any]]:
            items = users(n, last_rev[MP])
            return lambda: gather_users(mp_instance, items)

        idle_contenders.append(Contender(MP, mp_idle, env.mp_log, note="compares in memory"))
    measures = await contest(st, title, st.reps_for(n), idle_contenders)
    idle_m = measures.pop(OURS)
    idle_baselines = list(measures.values())
    if mp_instance is None:
        idle_baselines.append(Measure.skipped(MP, env.mp_reason))
    idle_row = Row(
        f"S2 idle flush of the same {human(n)} users",
        idle_m,
        idle_baselines,
        "0 write commands",
        ratio_to=DICT,
        checks=[
            ("0 write commands", idle_m.writes == 0 and not any(commands)),
            ("0 commands at all", not any(commands)),
        ],
    )
    await env.drop(
        f"s1dirty{n}.user_data",
        f"s1dirty{n}.bot_data",
        f"s1dirty{n}.callback_data",
        f"raws1dirty{n}",
        f"raws1diff{n}",
        f"mps1dirty{n}.user_data",
    )
    return [dirty, idle_row]


# =============================================================================== S3
async def seed_chats(env: Env, collection: str, count: int) -> None:
    codec = Codec()
    batch = 10_000
    for start in range(1, count + 1, batch):
        await env.db[collection].insert_many(
            [
                {"_id": -cid, "data": codec.encode(chat_data(cid)), "updated_at": EPOCH}
                for cid in range(start, min(start + batch, count + 1))
            ],
            ordered=False,
        )


async def s3_startup(env: Env) -> list[Row]:
    st = env.settings
    n, small = st.s3_chats, st.s3_lazy_small
    say(st, f"S3 seeding {human(n)} + {human(small)} chats (MongoDB and a pickle file)")
    await seed_chats(env, "s3.chat_data", n)
    await seed_chats(env, "s3small.chat_data", small)
    seeding = env.pickle("s3", on_flush=True)
    await seeding.get_chat_data()
    for cid in range(1, n + 1):
        await seeding.update_chat_data(-cid, chat_data(cid))
    await seeding.flush()
    chat_json = json.dumps({str(-cid): json_safe(chat_data(cid)) for cid in range(1, n + 1)})

    # ------------------------------------------------------------------ eager
    loaded_ok: list[bool] = []

    async def ours(rep: int) -> Callable[[], Awaitable[Any]]:
        persistence = env.ours("s3")
        await persistence._store.ensure_ready()

        async def run() -> None:
            data = await persistence.get_chat_data()
            if rep == 0:
                loaded_ok.append(len(data) == n and data[-7] == chat_data(7))

        return run

    async def raw(rep: int) -> Callable[[], Awaitable[Any]]:
        collection = env.db["s3.chat_data"]

        async def run() -> None:
            {doc["_id"]: doc["data"] async for doc in collection.find({})}

        return run

    async def pickled(rep: int) -> Callable[[], Awaitable[Any]]:
        persistence = env.pickle("s3")

        async def run() -> None:
            await persistence.get_chat_data()

        return run

    async def dicted(rep: int) -> Callable[[], Awaitable[Any]]:
        async def run() -> None:
            persistence = DictPersistence(chat_data_json=chat_json)
            await persistence.get_chat_data()

        return run

    contenders = [
        Contender(OURS, ours, env.log),
        Contender(RAW_READ, raw, env.raw_log, note="documents as the driver returns them"),
        Contender(PICKLE, pickled, note="unpickles one file"),
        Contender(DICT, dicted, note="parses chat_data_json (datetimes as strings)"),
    ]
    if env.mp_class is not None:

        async def theirs(rep: int) -> Callable[[], Awaitable[Any]]:
            instance = await env.theirs("s3")

            async def run() -> None:
                await instance.get_chat_data()

            return run

        contenders.append(
            Contender(
                MP, theirs, env.mp_log, note="same collection; to_list() + deepcopy, no decoding"
            )
        )
    measures = await contest(st, f"S3 eager load of {human(n)} chats", st.reps, contenders)
    ours_m = measures.pop(OURS)
    baselines = list(measures.values())
    if env.mp_class is None:
        baselines.append(Measure.skipped(MP, env.mp_reason))
    eager = Row(
        f"S3 eager startup with {human(n)} stored chats",
        ours_m,
        baselines,
        "≤ 1.5x raw cursor read (client CPU)",
        ratio_to=RAW_READ,
        limit=1.5,
        metric="cpu",
        checks=[("every chat loaded and decoded", all(loaded_ok))],
    )

    # ------------------------------------------------------------------ lazy
    reads_of_chats: list[int] = []

    def lazy(namespace: str) -> Prepare:
        async def prepare(rep: int) -> Callable[[], Awaitable[Any]]:
            persistence = env.ours(namespace, lazy=True)

            async def run() -> None:
                await persistence.get_user_data()
                await persistence.get_chat_data()
                await persistence.get_bot_data()
                await persistence.get_conversations("main")
                counts = env.log.counts(READ_COMMANDS)
                reads_of_chats.append(counts[("find", f"{namespace}.chat_data")])

            return run

        return prepare

    big_label, small_label = f"{OURS} lazy, {human(n)} chats", f"{OURS} lazy, {human(small)} chats"
    measures = await contest(
        st,
        "S3 lazy startup",
        st.reps * 3,  # milliseconds each: more runs for a stable median
        [
            Contender(big_label, lazy("s3"), env.log),
            Contender(small_label, lazy("s3small"), env.log),
        ],
    )
    lazy_row = Row(
        f"S3 lazy startup, {human(n)} vs {human(small)} stored chats",
        measures[big_label],
        [measures[small_label]],
        "constant: ≤ 1.5x the small one, no read of chats",
        ratio_to=small_label,
        limit=1.5,
        checks=[("no read of chat_data", not any(reads_of_chats))],
        notes=[
            "a fresh persistence each run: connection check (hello), index creation, "
            "get_user_data, get_chat_data, get_bot_data, get_conversations"
        ],
    )
    rows = [eager, lazy_row]
    if st.memory:
        rows.append(await s3_memory(env))
    return rows


def memprobe(env: Env, mode: str) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.memprobe",
        mode,
        "--uri",
        env.uri,
        "--database",
        DATABASE,
        "--namespace",
        "s3",
        "--pickle",
        str(env.workdir / "s3.pickle"),
    ]
    if env.mp_class is not None:
        command += ["--mp-path", str(competitors.TARGET)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


async def s3_memory(env: Env) -> Row:
    st = env.settings
    n = st.s3_chats
    say(st, f"S3 memory: peak RSS of loading {human(n)} chats (one subprocess each)")
    labels = {"ours": OURS, "raw": RAW_READ, "pickle": PICKLE, "mp": MP}
    modes = {mode: labels[mode] for mode in st.memory_modes if mode != "mp" or env.mp_class}
    measures: dict[str, Measure] = {}
    for mode, label in modes.items():
        probe = await asyncio.to_thread(memprobe, env, mode)
        if "error" in probe:
            measures[mode] = Measure.skipped(label, probe["error"])
            continue
        measure = Measure(label, None, reps=1, note=f"{probe['count']} chats loaded")
        measure.extra = {
            "peak_mib": probe["peak_kib"] / 1024,
            "delta_mib": (probe["peak_kib"] - probe["base_kib"]) / 1024,
        }
        measures[mode] = measure
    if env.mp_class is None and "mp" in st.memory_modes:
        measures["mp"] = Measure.skipped(MP, env.mp_reason)
    ours = measures.pop("ours")
    return Row(
        f"S3 memory: peak RSS of the eager load of {human(n)} chats",
        ours,
        list(measures.values()),
        "growth ≤ 1.15x the raw cursor's",
        ratio_to=RAW_READ,
        limit=1.15,
        metric="memory",
    )


# =============================================================================== S4
def s4_handler() -> MessageHandler[Any, Any]:
    async def handle(update: Any, context: Any) -> None:
        user = context.user_data
        message = update.effective_message
        user["messages"] = user.get("messages", 0) + 1
        user["last_text"] = message.text
        user["last_seen"] = message.date
        history = user.setdefault("history", [])
        history.append(len(message.text))
        del history[:-10]
        context.chat_data["count"] = context.chat_data.get("count", 0) + 1

    return MessageHandler(filters.TEXT, handle)


async def s4_end_to_end(env: Env) -> list[Row]:
    st = env.settings
    runs = st.s4_updates // st.s4_every
    title = (
        f"{human(st.s4_updates)} updates from {human(st.s4_users)} users, "
        f"update_persistence() every {human(st.s4_every)}"
    )
    expected_messages = sum(1 for k in range(st.s4_updates) if k % st.s4_users == 0)
    correct: list[bool] = []

    def app_run(
        label: str,
        make: Callable[[int], Any],
        log: CommandLog | None,
        final: Callable[[Any], Awaitable[Any]] | None = None,
    ) -> Prepare:
        async def prepare(rep: int) -> Callable[[], Awaitable[Any]]:
            persistence = make(rep)
            app, _ = build_application(persistence)
            app.add_handler(s4_handler())
            await app.initialize()
            apps.append(app)
            updates = [
                message_update(app, f"message number {k}", user_id=1 + k % st.s4_users)
                for k in range(st.s4_updates)
            ]

            async def run() -> None:
                for k, update in enumerate(updates, 1):
                    await app.process_update(update)
                    if k % st.s4_every == 0:
                        await app.update_persistence()
                await app.update_persistence()
                if final is not None:
                    await final(persistence)
                if label.startswith(OURS):
                    correct.append(app.user_data[1].get("messages") == expected_messages)

            return run

        return prepare

    apps: list[Any] = []

    async def shutdown(rep: int) -> None:
        while apps:
            await apps.pop().shutdown()

    async def pickle_dump(persistence: Any) -> None:
        await persistence.flush()

    contenders = [
        Contender("no persistence", app_run("none", lambda rep: None, None), after=shutdown),
        Contender(
            DICT,
            app_run(DICT, lambda rep: DictPersistence(), None),
            after=shutdown,
            note="in memory only, nothing saved",
        ),
        Contender(
            OURS,
            app_run(OURS, lambda rep: env.ours(f"s4r{rep}"), env.log),
            env.log,
            shutdown,
            note="eager (default)",
        ),
        Contender(
            f"{OURS} lazy",
            app_run(OURS, lambda rep: env.ours(f"s4lazyr{rep}", lazy=True), env.log),
            env.log,
            shutdown,
            reps=st.slow_reps,
            note="reads each user and chat once",
        ),
        Contender(
            f"{OURS} refresh",
            app_run(OURS, lambda rep: env.ours(f"s4refreshr{rep}", refresh=True), env.log),
            env.log,
            shutdown,
            reps=st.slow_reps,
            note="reads user, chat and bot data for every update",
        ),
        Contender(
            PICKLE_FLUSH,
            app_run(PICKLE, lambda rep: env.pickle(f"s4r{rep}", on_flush=True), None, pickle_dump),
            after=shutdown,
            note="writes the file once, at the end (timed: flush())",
        ),
    ]
    if st.s4_users <= st.pickle_default_max:
        contenders.append(
            Contender(
                PICKLE_DEFAULT,
                app_run(PICKLE, lambda rep: env.pickle(f"s4dr{rep}"), None),
                after=shutdown,
                reps=st.slow_reps,
                note="one dump of the whole file per changed user and chat",
            )
        )
    if env.mp_class is not None:
        mp_instances: dict[int, Any] = {}

        async def theirs(rep: int) -> Callable[[], Awaitable[Any]]:
            # Its flush() (called by shutdown()) closes the client it was given: one client each.
            motor = competitors.motor_client(env.uri, env.mp_log)
            await motor.admin.command("ping")
            mp_instances[rep] = await env.theirs(f"mps4r{rep}", client=motor)
            return await app_run(MP, lambda r: mp_instances[r], env.mp_log)(rep)

        contenders.append(
            Contender(
                MP, theirs, env.mp_log, shutdown, reps=st.slow_reps, note="load_on_flush=False"
            )
        )
    measures = await contest(st, f"S4 {title}", st.big_reps, contenders)
    ours_m = measures.pop(OURS)
    baselines = list(measures.values())
    if env.mp_class is None:
        baselines.append(Measure.skipped(MP, env.mp_reason))
    if st.s4_users > st.pickle_default_max:
        user = {
            "messages": 10,
            "last_text": "message number 1234",
            "last_seen": EPOCH,
            "history": [19] * 10,
        }
        entities: dict[str, dict[int, Any]] = {
            "user_data": {uid: dict(user) for uid in range(1, st.s4_users + 1)},
            "chat_data": {uid: {"count": 10} for uid in range(1, st.s4_users + 1)},
        }
        estimate = pickle_default_estimate(
            env, PICKLE_DEFAULT, entities, dumps=runs * 2 * st.s4_users
        )
        dict_m = measures[DICT]
        if dict_m.wall is not None and estimate.wall is not None:
            estimate.wall += dict_m.wall
            estimate.cpu = (estimate.cpu or 0) + (dict_m.cpu or 0)
            estimate.note += f"; plus the {DICT} time"
        baselines.append(estimate)
    checks = [("handlers' data persisted and correct", bool(correct) and all(correct))]
    notes = [
        f"{runs + 1} update_persistence() runs, each handing over up to {st.s4_users} users "
        f"and {st.s4_users} chats"
    ]
    wall = Row(
        f"S4 end to end: {title}",
        ours_m,
        baselines,
        "report (wall time: the local server's time dominates)",
        ratio_to=DICT,
        checks=checks,
        notes=notes,
    )
    cpu = Row(
        "S4 end to end, client CPU only (the server's time left out)",
        ours_m,
        baselines,
        "≤ 1.5x DictPersistence (client CPU)",
        ratio_to=DICT,
        limit=1.5,
        metric="cpu",
        checks=checks,
        repeats=True,
    )
    return [wall, cpu]


# =============================================================================== S5
def s5_codec(st: Settings) -> list[Row]:
    say(st, "S5 codec: encode + decode of realistic user data")
    bot = ExtBot(TOKEN)
    codec = Codec()
    data = rich_user_data(bot)
    iterations = st.s5_iterations
    round_trip_ok = codec.decode(codec.encode(data, bot=bot), bot=bot) == data
    encoded = codec.encode(data, bot=bot)
    blob = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
    raw_bson = bson.encode({"data": encoded})

    def ours() -> None:
        for _ in range(iterations):
            codec.decode(codec.encode(data, bot=bot), bot=bot)

    def encode_only() -> None:
        for _ in range(iterations):
            codec.encode(data, bot=bot)

    def decode_only() -> None:
        for _ in range(iterations):
            codec.decode(encoded, bot=bot)

    def with_bson() -> None:
        for _ in range(iterations):
            document = bson.encode({"data": codec.encode(data, bot=bot)})
            codec.decode(bson.decode(document)["data"], bot=bot)

    def pickled() -> None:
        for _ in range(iterations):
            pickle.loads(pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))

    def deepcopied() -> None:
        for _ in range(iterations):
            copy.deepcopy(data)

    def measure(label: str, run: Callable[[], None], note: str = "") -> Measure:
        samples = [timed_sync(run) for _ in range(st.reps)]
        for sample in samples:  # per call, in seconds
            sample.wall /= iterations
            sample.cpu /= iterations
        return Measure.of(label, samples, note=note)

    pickle_label = "pickle.dumps + pickle.loads"
    ours_m = measure(OURS, ours, "Codec.encode + Codec.decode")
    baselines = [
        measure(pickle_label, pickled, f"{len(blob)} bytes"),
        measure(f"{OURS} encode only", encode_only),
        measure(f"{OURS} decode only", decode_only),
        measure(f"{OURS} + BSON", with_bson, f"{len(raw_bson)} bytes of BSON"),
        measure("copy.deepcopy", deepcopied, "what PTB does before every update_* call"),
    ]
    return [
        Row(
            "S5 codec round trip of realistic user data (per call)",
            ours_m,
            baselines,
            "≤ 2x pickle",
            ratio_to=pickle_label,
            limit=2.0,
            checks=[("lossless round trip", round_trip_ok)],
        )
    ]
