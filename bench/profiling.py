"""``python -m bench --profile``: cProfile of mongo_persistence in S1 (new and dirty) and S5.

Prints the top functions by own time, and those of mongo_persistence by cumulative time.
"""

from __future__ import annotations

import cProfile
import io
import pstats
from pathlib import Path
from typing import Any

from bench.common import CACHE, DATABASE, ROOT, Settings, rich_user_data
from bench.scenarios import gather_users, users


def _print(profiler: cProfile.Profile, title: str, name: str) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(str(CACHE / f"{name}.prof"))
    for sort, ours_only, heading in (
        ("tottime", False, "top functions by own time"),
        ("tottime", True, "mongo_persistence functions by own time"),
        ("cumulative", True, "mongo_persistence functions by cumulative time"),
    ):
        stream = io.StringIO()
        stats = pstats.Stats(profiler, stream=stream).sort_stats(sort)
        if ours_only:
            stats.print_stats(r"mongo_persistence/", 20)
        else:
            stats.print_stats(25)
        body = stream.getvalue()
        body = body[body.find("   ncalls") :] if "   ncalls" in body else body
        body = body.replace(str(ROOT) + "/", "").replace(str(Path(pstats.__file__).parent), "")
        print(f"\n===== {title}: {heading} =====\n{body.rstrip()}")
    print(f"(raw profile: {CACHE / f'{name}.prof'})")


async def profile(uri: str, settings: Settings) -> None:
    from pymongo import AsyncMongoClient
    from telegram import Bot

    from mongo_persistence import MongoPersistence
    from mongo_persistence._codec.codec import Codec

    n = max(settings.s1_sizes)
    client: AsyncMongoClient[Any] = AsyncMongoClient(uri)
    try:
        await client.drop_database(DATABASE)
        persistence = MongoPersistence(client, database=DATABASE, namespace="profile")
        await persistence._store.ensure_ready()
        for title, name, rev in (
            (f"S1 new, N={n}", "s1_new", 0),
            (f"S1 dirty, N={n}", "s1_dirty", 1),
        ):
            items = users(n, rev)
            profiler = cProfile.Profile()
            profiler.enable()
            await gather_users(persistence, items)
            profiler.disable()
            _print(profiler, title, name)
    finally:
        await client.drop_database(DATABASE)
        await client.close()

    bot = Bot("1:x")
    codec = Codec()
    data = rich_user_data(bot)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(settings.s5_iterations):
        codec.decode(codec.encode(data, bot=bot), bot=bot)
    profiler.disable()
    _print(profiler, f"S5 codec x{settings.s5_iterations}", "s5_codec")
