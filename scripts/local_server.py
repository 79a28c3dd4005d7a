"""``make server``: a local MongoDB-compatible server (SecantusDB) for trying a bot, until Ctrl-C.

The server itself is :class:`tests.helpers.local_server.LocalServer` (re-exported here for the
scripts that start one).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.helpers.local_server import LocalServer, free_port  # noqa: E402

__all__ = ["LocalServer", "free_port", "main"]


def main() -> int:
    """Starts the server, prints its URI, and stops it at Ctrl-C."""
    parser = argparse.ArgumentParser(
        description="Start a local MongoDB-compatible server (SecantusDB) and print its URI."
    )
    parser.add_argument("--port", type=int, default=27017, help="default: 27017")
    parser.add_argument(
        "--storage",
        default=str(Path(".cache") / "server-data"),
        help="data directory (kept across restarts), or :memory: (default: .cache/server-data)",
    )
    args = parser.parse_args()
    if args.storage != ":memory:":
        Path(args.storage).mkdir(parents=True, exist_ok=True)
    server = LocalServer(storage=args.storage, port=args.port)
    server.start()
    print(f"MONGODB_URI={server.uri}", flush=True)
    print(f"  data in {args.storage}; mongosh: mongo-persistence shell --uri {server.uri}")
    print("  Ctrl-C stops it.", flush=True)
    try:
        assert server.process is not None
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
