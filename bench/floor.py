"""Client CPU of mongo_persistence against the floor any persistence driven by PTB pays.

The floor is PTB's part of a persistence run (``Application.update_persistence()`` deep-copies each
entity's data and awaits one ``update_*`` coroutine per entity in one ``asyncio.gather``) plus one
raw unordered ``bulk_write`` of the same plain documents. An idle run (nothing changed) needs no
write: its floor is PTB's part alone. Measured as the CPU time of this process: the server is
another process, and a real ``mongod`` is far faster than the local one.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dtm
from collections.abc import Awaitable, Callable
from typing import Any

import bson
from pymongo import ReplaceOne, UpdateOne

from bench.common import EPOCH, Measure, Row, Settings
from bench.scenarios import OURS, Contender, Env, contest, human
from mongo_persistence._codec.codec import Codec
from mongo_persistence._storage.fingerprints import digest_raw

FLOOR = "floor: PTB's deep copies + gather, one raw bulk_write"
FLOOR_DIFF = "floor: PTB's deep copies + gather, one raw bulk_write ($set of the 2 keys)"
FLOOR_IDLE = "floor: PTB's deep copies + gather"
MAX_BSON_SIZE = 16 * 1024 * 1024
"""MongoDB's maximum document size."""
LEAN = "reference: the floor + the codec's check, BSON's size, a per-key diff (nothing else)"
"""What a persistence with the same codec and diff writes pays at least: no tracker, no plans, no
retries, no journal, nobody awaiting an answer (not a contender: it would lose data)."""


def six_keys(uid: int, rev: int = 0) -> dict[str, Any]:
    """A user's data of 6 top-level keys; ``rev`` changes 2 of them."""
    return {
        "name": f"User {uid}",
        "visits": uid + rev,
        "last_seen": EPOCH + dtm.timedelta(seconds=uid + rev),
        "cart": [{"sku": f"sku-{uid}-{k}", "qty": k + 1, "price": 9.99 + k} for k in range(3)],
        "settings": {"notify": True, "tz": "Europe/Rome", "theme": "dark", "digest": "weekly"},
        "history": [f"/command{k}" for k in range(10)],
    }


def held(n: int, rev: int) -> dict[int, dict[str, Any]]:
    """What the application holds in ``user_data``."""
    return {uid: six_keys(uid, rev) for uid in range(1, n + 1)}


async def ptb_run(persistence: Any, data: dict[int, Any]) -> None:
    """What ``Application.update_persistence()`` does for user data: deep copies, one gather."""
    await asyncio.gather(
        *(persistence.update_user_data(uid, copy.deepcopy(value)) for uid, value in data.items())
    )


class _Nothing:
    """A persistence that does nothing: PTB's part alone."""

    async def update_user_data(self, user_id: int, data: Any) -> None:
        return None


async def floor_run(
    env: Env, collection: str, data: dict[int, Any], *, changed: tuple[str, ...] = ()
) -> None:
    """PTB's part, then one raw bulk_write of the same plain documents (``changed``: a ``$set``
    of these keys only, as a hand-written diff would send)."""
    handed: list[tuple[int, Any]] = []

    class Collect(_Nothing):
        async def update_user_data(self, user_id: int, data: Any) -> None:
            handed.append((user_id, data))

    await ptb_run(Collect(), data)
    now = dtm.datetime.now(dtm.timezone.utc)
    models: list[Any]
    if changed:
        models = [
            UpdateOne(
                {"_id": uid},
                {"$set": {**{f"data.{k}": value[k] for k in changed}, "updated_at": now}},
                upsert=True,
            )
            for uid, value in handed
        ]
    else:
        models = [
            ReplaceOne({"_id": uid}, {"_id": uid, "data": value, "updated_at": now}, upsert=True)
            for uid, value in handed
        ]
    await env.db[collection].bulk_write(models, ordered=False)


_CODEC = Codec()
"""The reference's codec (made once, as a persistence makes its own before any run)."""


async def lean_run(
    env: Env, collection: str, data: dict[int, Any], known: dict[int, Any] | None = None
) -> None:
    """PTB's part, each value checked and encoded by the codec and BSON (its size), then one raw
    bulk_write: whole documents, or (``known``: the per-key fingerprints of what was written
    last, updated) a ``$set`` of the changed keys."""
    codec = _CODEC
    now = dtm.datetime.now(dtm.timezone.utc)
    models: list[Any] = []

    class Lean(_Nothing):
        async def update_user_data(self, user_id: int, data: Any) -> None:
            encoded = codec.encode(data, bot=None, entity="user_data", copy=False)
            raw = bson.encode(encoded)
            if len(raw) > MAX_BSON_SIZE:
                raise ValueError(user_id)
            if known is None:
                document = {"_id": user_id, "data": encoded, "updated_at": now}
                models.append(ReplaceOne({"_id": user_id}, document, upsert=True))
                return
            new, old = digest_raw(raw, False), known.get(user_id, {})
            known[user_id] = new
            fields = {f"data.{k}": encoded[k] for k, v in new.items() if old.get(k) != v}
            fields["updated_at"] = now
            models.append(UpdateOne({"_id": user_id}, {"$set": fields}, upsert=True))

    await ptb_run(Lean(), data)
    await env.db[collection].bulk_write(models, ordered=False)


def _stored(doc: Any, expected: dict[str, Any]) -> bool:
    """The stored data is the data handed over (the driver returns naive UTC datetimes)."""
    data = dict(doc["data"])
    data["last_seen"] = data["last_seen"].replace(tzinfo=dtm.timezone.utc)
    return bool(data == expected)


def _row(title: str, measures: dict[str, Measure], base: str, limit: float, ok: bool) -> Row:
    ours = measures.pop(OURS)
    notes = ["wall times are dominated by the local server (another process)"]
    lean, floor = measures.get(LEAN), measures[base]
    if lean is not None and lean.cpu and floor.cpu and ours.cpu:
        notes.append(
            f"client CPU: the reference is {lean.cpu / floor.cpu:.2f}x the floor, "
            f"mongo_persistence {ours.cpu / lean.cpu:.2f}x the reference"
        )
    notes.append(_without_gc(ours, floor, lean))
    return Row(
        title,
        ours,
        list(measures.values()),
        f"≤ {limit}x the floor (client CPU)",
        ratio_to=base,
        limit=limit,
        metric="cpu",
        checks=[("stored as handed over", ok)],
        notes=notes,
    )


def _without_gc(ours: Measure, floor: Measure, lean: Measure | None) -> str:
    """The note of a CPU row on its CPU less the garbage collector's time.

    A full collection costs a fixed tens of ms (the whole heap: PTB, PyMongo, the held data) and
    lands in a run when its allocations cross the collector's thresholds: then it is in both
    sides of a ratio and pulls it towards 1, or in one side only. Without it, the ratio is that
    of the code's own work.
    """

    def ms(measure: Measure) -> str:
        return f"{(measure.cpu_without_gc or 0) * 1000:.1f} ms"

    def full(measure: Measure) -> str:
        return "/".join(str(count) for count in measure.full_gcs) or "-"

    text = f"client CPU less the garbage collector's time: mongo_persistence {ms(ours)}"
    if ours.cpu_without_gc and floor.cpu_without_gc:
        text += f" ({ours.cpu_without_gc / floor.cpu_without_gc:.2f}x the floor)"
    text += f", floor {ms(floor)}"
    if lean is not None and lean.cpu_without_gc and floor.cpu_without_gc:
        text += f", reference {ms(lean)} ({lean.cpu_without_gc / floor.cpu_without_gc:.2f}x)"
    text += f"; full collections per run: mongo_persistence {full(ours)}, floor {full(floor)}"
    if lean is not None:
        text += f", reference {full(lean)}"
    return text


async def cpu_floor(env: Env, n: int) -> list[Row]:
    """New users, 2 of 6 keys changed, and an idle run, each against its floor."""
    st: Settings = env.settings
    reps = st.reps_for(n)
    rows: list[Row] = []
    checks: list[bool] = []

    async def new_ours(rep: int) -> Callable[[], Awaitable[Any]]:
        persistence = env.ours(f"cpunew{n}r{rep}")
        await persistence._store.ensure_ready()
        data = held(n, 0)
        return lambda: ptb_run(persistence, data)

    async def new_check(rep: int) -> None:
        name = f"cpunew{n}r{rep}.user_data"
        if rep == 0:
            doc = await env.db[name].find_one({"_id": n})
            checks.append(doc is not None and _stored(doc, six_keys(n, 0)))
        await env.drop(name)

    async def new_floor(rep: int) -> Callable[[], Awaitable[Any]]:
        data = held(n, 0)
        return lambda: floor_run(env, f"cpufloornew{n}r{rep}", data)

    async def drop_floor(rep: int) -> None:
        await env.drop(f"cpufloornew{n}r{rep}", f"cpufloorchg{n}", f"cpuleannew{n}r{rep}")

    async def new_lean(rep: int) -> Callable[[], Awaitable[Any]]:
        data = held(n, 0)
        return lambda: lean_run(env, f"cpuleannew{n}r{rep}", data)

    measures = await contest(
        st,
        f"CPU new users N={n}",
        reps,
        [
            Contender(OURS, new_ours, env.log, new_check),
            Contender(FLOOR, new_floor, after=drop_floor),
            Contender(LEAN, new_lean),
        ],
    )
    rows.append(_row(f"CPU {human(n)} new users of 6 keys", measures, FLOOR, 1.5, all(checks)))

    persistence = env.ours(f"cpuchg{n}")
    await persistence._store.ensure_ready()
    await ptb_run(persistence, held(n, 0))
    await env.db[f"cpufloorchg{n}"].insert_many(
        [{"_id": uid, "data": value, "updated_at": EPOCH} for uid, value in held(n, 0).items()]
    )
    lean_known = {uid: digest_raw(bson.encode(value), False) for uid, value in held(n, 0).items()}
    await env.db[f"cpuleanchg{n}"].insert_many(
        [{"_id": uid, "data": value, "updated_at": EPOCH} for uid, value in held(n, 0).items()]
    )
    checks.clear()

    async def changed_lean(rep: int) -> Callable[[], Awaitable[Any]]:
        data = held(n, rep + 1)
        return lambda: lean_run(env, f"cpuleanchg{n}", data, lean_known)

    async def changed_ours(rep: int) -> Callable[[], Awaitable[Any]]:
        data = held(n, rep + 1)
        return lambda: ptb_run(persistence, data)

    async def changed_check(rep: int) -> None:
        doc = await env.db[f"cpuchg{n}.user_data"].find_one({"_id": n})
        checks.append(doc is not None and _stored(doc, six_keys(n, rep + 1)))

    async def changed_floor(rep: int) -> Callable[[], Awaitable[Any]]:
        data = held(n, rep + 1)
        return lambda: floor_run(env, f"cpufloorchg{n}", data, changed=("visits", "last_seen"))

    measures = await contest(
        st,
        f"CPU changed users N={n}",
        reps,
        [
            Contender(OURS, changed_ours, env.log, changed_check),
            Contender(FLOOR_DIFF, changed_floor),
            Contender(LEAN, changed_lean),
        ],
    )
    title = f"CPU {human(n)} users, 2 of 6 keys changed"
    rows.append(_row(title, measures, FLOOR_DIFF, 1.5, all(checks)))

    last = held(n, reps)  # what the changed runs wrote last
    await ptb_run(persistence, last)

    async def idle_ours(rep: int) -> Callable[[], Awaitable[Any]]:
        return lambda: ptb_run(persistence, last)

    async def idle_floor(rep: int) -> Callable[[], Awaitable[Any]]:
        return lambda: ptb_run(_Nothing(), last)

    measures = await contest(
        st,
        f"CPU idle run N={n}",
        reps,
        [Contender(OURS, idle_ours, env.log), Contender(FLOOR_IDLE, idle_floor)],
    )
    idle = _row(f"CPU idle run of {human(n)} users", measures, FLOOR_IDLE, 1.3, True)
    idle.checks = [("0 write commands", idle.ours.writes == 0)]
    rows.append(idle)
    await env.drop(f"cpuchg{n}.user_data", f"cpufloorchg{n}", f"cpuleanchg{n}")
    return rows
