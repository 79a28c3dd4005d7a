"""A bot process for the crash-during-an-outage test: persistence runs in a loop.

Run as ``python outage_bot.py URI DATABASE USERS JOURNAL_DIR``. After every
``update_persistence()`` it prints ``RUN <run> <pending>`` (the writes MongoDB did not acknowledge,
kept in the journal); the test stops the server, SIGKILLs this process, and checks that a restarted
bot finds the data of the last reported run.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pymongo.write_concern import WriteConcern  # noqa: E402

from mongo_persistence import MongoPersistence  # noqa: E402
from tests.helpers.servers import FAST_SELECTION_MS  # noqa: E402
from tests.ptb_offline import build_application  # noqa: E402


async def main(uri: str, database: str, users: int, journal_dir: str) -> None:
    persistence = MongoPersistence(
        uri,
        database=database,
        update_interval=3600,
        write_concern=WriteConcern(w="majority", j=True),
        client_kwargs={"serverSelectionTimeoutMS": FAST_SELECTION_MS},
        write_timeout=0.5,
        recovery_dir=journal_dir,
    )
    app, _ = build_application(persistence)
    errors: list[object] = []
    app.add_error_handler(lambda _, context: asyncio.sleep(0, errors.append(context.error)))
    await app.initialize()
    run = 0
    while True:
        run += 1
        for user in range(users):
            app.user_data[user]["run"] = run
            app.user_data[user][f"k{run % 3}"] = user  # keys come and go
            for gone in (run + 1, run + 2):
                app.user_data[user].pop(f"k{gone % 3}", None)
        app.bot_data["run"] = run
        app.mark_data_for_update_persistence(user_ids=range(users))
        await app.update_persistence()
        if errors:
            print(f"ERROR {errors[0]!r}", flush=True)
            sys.exit(1)
        print(f"RUN {run} {persistence.health().pending}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
