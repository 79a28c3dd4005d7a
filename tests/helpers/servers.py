"""Dedicated test servers: killed and restarted inside the tests, or started with ``--auth``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from pymongo.errors import ConnectionFailure

from tests.helpers.local_server import LocalServer

FAST_SELECTION_MS = 400
"""serverSelectionTimeoutMS of the clients of the fault tests: outages last longer than this."""


def disk_server(path: Path, *extra_args: str) -> LocalServer:
    """A started server on its own port with its data in ``path`` (restartable on both)."""
    path.mkdir(parents=True, exist_ok=True)
    server = LocalServer(storage=path / "data", extra_args=extra_args, log_path=path / "server.log")
    server.start()
    return server


def ensure_running(server: LocalServer) -> None:
    """Restarts ``server`` (same port, same data) when a test killed it."""
    if server.process is None or server.process.poll() is not None:
        server.start()


def auth_server(path: Path, user: str, password: str) -> LocalServer:
    """A started server with ``--auth`` and one root user ``user``/``password``.

    SecantusDB provisions users like mongod: run ``createUser`` on a server without ``--auth``,
    then restart it with ``--auth`` on the same storage.
    """
    server = disk_server(path)
    with MongoClient(server.uri, serverSelectionTimeoutMS=5000) as client:
        client.admin.command("createUser", user, pwd=password, roles=["root"])
    server.stop()  # a clean shutdown: the user must survive the restart
    server.extra_args = ("--auth",)
    server.start()
    return server


def with_credentials(server: LocalServer, user: str, password: str, options: str = "") -> str:
    """The server's URI with credentials (and optional query options)."""
    uri = f"mongodb://{user}:{password}@127.0.0.1:{server.port}/"
    return f"{uri}?{options}" if options else uri


async def until_reachable(database: Any, timeout: float = 30.0) -> None:
    """Polls until the client of ``database`` sees the (restarted) server again.

    The driver re-checks a server it saw down at most every 500 ms, so a first write right after
    a restart may still fail (and be kept); tests that need it to succeed wait for this first.
    Each ping waits for server selection (no busy loop).

    Raises:
        AssertionError: The server is not reachable within ``timeout`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await database.command("ping")
        except ConnectionFailure as exc:
            if loop.time() >= deadline:
                raise AssertionError(f"the server is not reachable within {timeout:g} s") from exc
            continue
        return
