"""Runs the ``mongo-persistence`` command in-process, through its console-script entry point.

``mongo_persistence.__main__.main`` is what the installed command runs; click's test runner
captures its output and exit status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from click.testing import CliRunner, Result

from mongo_persistence.__main__ import main as entry_point

PROG_NAME = "mongo-persistence"


class _EntryPoint:
    """The entry point, shaped as the command object click's test runner calls."""

    name = PROG_NAME

    @staticmethod
    def main(args: Sequence[str], prog_name: str, **_: Any) -> None:
        entry_point(list(args))


ENTRY_POINT: Any = _EntryPoint()
"""The console script's entry point, for ``CliRunner().invoke(ENTRY_POINT, args)``."""


def invoke(*args: str, stdin: str | None = None) -> Result:
    """``mongo-persistence ARGS...`` with ``stdin`` as standard input."""
    runner = CliRunner()
    return runner.invoke(ENTRY_POINT, list(args), input=stdin, prog_name=PROG_NAME)


async def cli(*args: str, stdin: str | None = None) -> Result:
    """:func:`invoke` in a thread: the command runs its own event loop."""
    return await asyncio.to_thread(invoke, *args, stdin=stdin)
