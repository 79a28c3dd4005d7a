"""An outage drill (not a test): a bot keeps running through a MongoDB outage of several seconds.

    python tests/helpers/outage_drill.py [--before 200] [--during 200] [--outage 6]

A real PTB Application writes ``--before`` users, then the server is SIGKILLed; for ``--outage``
seconds persistence runs continue (every 0.5 s), each writing a share of ``--during`` new users and
reporting its failures to the error handler; the server is restarted and the application shut
down. The drill prints how many users written during the outage ended up in the database.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pymongo import AsyncMongoClient  # noqa: E402
from pymongo.write_concern import WriteConcern  # noqa: E402

from mongo_persistence import MongoPersistence  # noqa: E402
from tests.helpers.servers import disk_server  # noqa: E402
from tests.ptb_offline import build_application  # noqa: E402


async def drill(before: int, during: int, outage: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = disk_server(Path(tmp))
        try:
            persistence = MongoPersistence(
                server.uri,
                database="drill",
                update_interval=3600,
                write_concern=WriteConcern(j=True),
                client_kwargs={"serverSelectionTimeoutMS": 400},
                recovery_dir=tmp,
            )
            app, _ = build_application(persistence)
            errors: list[BaseException] = []

            async def on_error(_: object, context: Any) -> None:
                errors.append(context.error)

            app.add_error_handler(on_error)
            await app.initialize()
            for user in range(before):
                app.user_data[user]["v"] = user
            app.mark_data_for_update_persistence(user_ids=range(before))
            await app.update_persistence()
            assert not errors, errors

            server.kill()
            started = time.monotonic()
            runs = 0
            new_users = iter(range(before, before + during))
            while time.monotonic() - started < outage:
                batch = [u for _, u in zip(range(max(1, during // 10)), new_users, strict=False)]
                for user in batch:
                    app.user_data[user]["v"] = user
                app.mark_data_for_update_persistence(user_ids=batch)
                await app.update_persistence()
                runs += 1
                await asyncio.sleep(0.5)
            rest = list(new_users)  # whatever the runs did not reach yet
            for user in rest:
                app.user_data[user]["v"] = user
            app.mark_data_for_update_persistence(user_ids=rest)
            await app.update_persistence()
            runs += 1
            down = time.monotonic() - started
            kept = persistence.health().pending

            server.start()
            await app.shutdown()
            async with AsyncMongoClient(server.uri) as client:
                ids = [doc["_id"] async for doc in client.drill.user_data.find({}, {"_id": 1})]
            saved_before = sum(1 for i in ids if i < before)
            saved_during = sum(1 for i in ids if i >= before)
            print(
                f"outage {down:.1f} s, {runs} persistence runs during it, {len(errors)} errors "
                f"reported to the error handler, {kept} entities kept at the restart; "
                f"stored: {saved_before}/{before} written before, {saved_during}/{during} written "
                f"during the outage; recovery file: {persistence.last_recovery_file}"
            )
        finally:
            server.kill()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=int, default=200)
    parser.add_argument("--during", type=int, default=200)
    parser.add_argument("--outage", type=float, default=6.0)
    args = parser.parse_args()
    asyncio.run(drill(args.before, args.during, args.outage))
