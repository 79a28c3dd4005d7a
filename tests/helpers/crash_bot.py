"""A bot process for the crash test: persistence runs in a loop, each acknowledged one reported.

Run as ``python crash_bot.py URI DATABASE USERS``. After every ``update_persistence()`` whose writes
all succeeded it prints ``ACK <run>``; the test SIGKILLs it at some point and then checks that every
entity holds, whole, the data of the last acknowledged run (or of the run in progress).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pymongo.write_concern import WriteConcern  # noqa: E402

from mongo_persistence import MongoPersistence  # noqa: E402
from tests.ptb_offline import build_application  # noqa: E402


def user_data(user: int, run: int) -> dict[Any, Any]:
    """The data of ``user`` after ``run``: every part derives from the run, so a torn document
    (keys of different runs) is detected."""
    return {
        "user": user,  # unchanged between runs: diff writes leave it alone
        "run": run,
        "items": [run] * 20,
        "check": run * 1000 + user,
        "nested": {"run": run, "tags": (run, user)},
        f"k{run % 3}": {"mod": run},  # keys come and go: diffs both set and unset
    }


def chat_data(chat: int, run: int) -> dict[Any, Any]:
    return {"chat": chat, "run": run, "history": list(range(run % 7 + 1))}


async def main(uri: str, database: str, users: int) -> None:
    persistence = MongoPersistence(
        uri,
        database=database,
        update_interval=3600,
        write_concern=WriteConcern(w="majority", j=True),
    )
    app, _ = build_application(persistence)
    errors: list[object] = []

    async def on_error(_: object, context: Any) -> None:
        errors.append(context.error)

    app.add_error_handler(on_error)
    await app.initialize()
    run = 0
    while True:
        run += 1
        for user in range(users):
            app.user_data[user].clear()
            app.user_data[user].update(user_data(user, run))
            app.chat_data[-user - 1].clear()
            app.chat_data[-user - 1].update(chat_data(-user - 1, run))
        app.bot_data["run"] = run
        app.mark_data_for_update_persistence(user_ids=range(users), chat_ids=range(-users, 0))
        await app.update_persistence()
        if errors:
            print(f"ERROR {errors[0]!r}", flush=True)
            sys.exit(1)
        print(f"ACK {run}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
