"""What the library and the command say about a URI: the scrubber seen from outside.

The messages of :class:`~mongo_persistence.PersistenceConnectionError` (from
:meth:`MongoPersistence.from_uri` and a first load) and the output of ``mongo-persistence
inspect``, for a URI that is malformed or whose server does not answer (port 1 of 127.0.0.1:
refused at once; short timeouts).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from mongo_persistence import MongoPersistence, PersistenceConnectionError
from tests.helpers.command import invoke

UNREACHABLE = "127.0.0.1:1"
"""A host and port nothing listens on."""
TIMEOUT_MS = 200
"""The server selection and connect timeouts of the library's client."""
_ONE_COMMAND_AT_A_TIME = threading.Lock()  # click's runner swaps sys.stdout for its run


async def library_message(uri: str) -> str:
    """The PersistenceConnectionError of creating a persistence for ``uri`` and loading."""
    with pytest.raises(PersistenceConnectionError) as info:
        persistence = MongoPersistence.from_uri(
            uri,
            database="unreachable",
            update_interval=3600,
            client_kwargs={"serverSelectionTimeoutMS": TIMEOUT_MS, "connectTimeoutMS": TIMEOUT_MS},
        )
        try:
            await persistence.get_user_data()
        finally:
            await persistence.flush()
    return str(info.value)


async def command_output(uri: str) -> str:
    """The output of ``mongo-persistence inspect --uri URI``, which must fail (exit status 1)."""
    timeout = str(TIMEOUT_MS / 1000)

    def run() -> Any:
        with _ONE_COMMAND_AT_A_TIME:
            return invoke("inspect", "--uri", uri, "-d", "unreachable", "--timeout", timeout)

    result = await asyncio.to_thread(run)
    assert result.exit_code == 1, result.output
    return result.output


async def messages(*uris: str) -> dict[str, tuple[str, str]]:
    """(the library's message, the command's output) of each URI: the library's all at the same
    time, the commands one after the other meanwhile (each waits for its server at most ~0.5 s)."""

    async def outputs() -> list[str]:
        return [await command_output(uri) for uri in uris]

    *library, command = await asyncio.gather(*map(library_message, uris), outputs())
    return {uri: (library[i], command[i]) for i, uri in enumerate(uris)}
