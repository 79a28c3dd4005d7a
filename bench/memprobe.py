"""One eager load of the S3 chats in a fresh process; prints its memory use as JSON.

``python -m bench.memprobe MODE --uri URI ...`` with MODE one of ``ours``, ``raw``, ``pickle``,
``mp``. ``base_kib`` is the resident set after imports and connecting, ``peak_kib`` the peak
resident set of the process (``VmHWM``) after the load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
from pathlib import Path
from typing import Any


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def rss_kib() -> int:
    return status_kib("VmRSS")


def peak_kib() -> int:
    # VmHWM is this process's own peak; ru_maxrss would start at the parent's peak (Linux keeps
    # it across fork + exec).
    return status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from pymongo import AsyncMongoClient

    from mongo_persistence import MongoPersistence

    loaded: Any = None
    if args.mode in ("ours", "raw"):
        client: AsyncMongoClient[Any] = AsyncMongoClient(args.uri)
        await client.admin.command("ping")
        if args.mode == "ours":
            persistence = MongoPersistence(client, database=args.database, namespace=args.namespace)
            await persistence._store.ensure_ready()
            base = rss_kib()
            loaded = await persistence.get_chat_data()
        else:
            collection = client[args.database][f"{args.namespace}.chat_data"]
            base = rss_kib()
            loaded = {doc["_id"]: doc["data"] async for doc in collection.find({})}
        await client.close()
    elif args.mode == "pickle":
        from telegram.ext import ExtBot, PicklePersistence

        pickled: PicklePersistence[Any, Any, Any] = PicklePersistence(args.pickle)
        pickled.set_bot(ExtBot("1:x"))
        base = rss_kib()
        loaded = await pickled.get_chat_data()
    elif args.mode == "mp":
        sys.path.append(args.mp_path)
        from mongopersistence import (  # type: ignore[import-not-found]  # installed by the bench
            MongoPersistence as Theirs,
        )
        from motor.motor_asyncio import AsyncIOMotorClient

        motor: Any = AsyncIOMotorClient(args.uri)
        await motor.admin.command("ping")
        theirs = Theirs(
            motor,
            args.database,
            name_col_chat_data=f"{args.namespace}.chat_data",
            load_on_flush=False,
        )
        await theirs.post_init()
        base = rss_kib()
        loaded = await theirs.get_chat_data()
        motor.close()
    else:
        raise SystemExit(f"unknown mode {args.mode!r}")
    return {"mode": args.mode, "count": len(loaded), "base_kib": base, "peak_kib": peak_kib()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["ours", "raw", "pickle", "mp"])
    parser.add_argument("--uri", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--namespace", default="s3")
    parser.add_argument("--pickle", default="")
    parser.add_argument("--mp-path", default="")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
